# Newcomer entry points (see README.md). PYTHON can point at another interpreter.
PYTHON ?= python

.PHONY: setup test test-fast lint quickstart

setup:
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[dev]"

## The whole test suite (offline, 1 torch thread, real data slices bundled in the package); CI runs this.
test:
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q

## Unit tests only (seconds each: no training runs, command lines or processes; under a minute on one thread).
test-fast:
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -m unit

lint:
	ruff check . && ruff format --check .

## Train the smoke recipe on the bundled IMDB slice and classify a sentence with the result.
quickstart:
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 hf-rnn train configs/imdb_tiny.yaml --data-dir sample --output-dir runs/imdb-tiny
	hf-rnn classify runs/imdb-tiny "A wonderful, moving film." "Two hours I will never get back."

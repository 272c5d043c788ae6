#!/usr/bin/env bash
# The quickstart as a new user meets it: hf_rnn built as a wheel, installed (not editable) into a fresh virtual
# environment, and run from a folder outside the repository. Trains the smoke recipe on the bundled IMDB slice,
# classifies with the result, and checks that the run folder is complete (model card with model-index, model code
# with auto_map, tokenizer). CI runs it after the test suite.
#   PYTHON=.venv/bin/python scripts/wheel_quickstart.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" "$repo"
python3 -m venv "$work/venv"
# torch first, pinned: the CPU build on this machine's disk (an unpinned torch would pull a CUDA build).
"$work/venv/bin/pip" install --quiet torch==2.13.0
"$work/venv/bin/pip" install --quiet "$work"/dist/hf_rnn-*.whl

cd "$work"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1
"$work/venv/bin/hf-rnn" recipes
"$work/venv/bin/hf-rnn" train imdb_tiny --data-dir sample --output-dir run
"$work/venv/bin/hf-rnn" classify run "A wonderful, moving film." "Two hours I will never get back."
"$work/venv/bin/python" - <<'PYTHON'
import json
from pathlib import Path

import hf_rnn

assert "site-packages" in hf_rnn.__file__, f"hf_rnn imported from {hf_rnn.__file__}, not the installed wheel"
run = Path("run")
card = (run / "README.md").read_text()
assert "model-index:" in card and "license: apache-2.0" in card, "model card incomplete"
config = json.loads((run / "config.json").read_text())
assert config["auto_map"]["AutoModelForSequenceClassification"] == "modeling_rnn_classifier.RnnForSequenceClassification"
for name in ("modeling_rnn_classifier.py", "configuration_rnn_classifier.py", "tokenizer.json", "test_results.json"):
    assert (run / name).is_file(), f"{name} missing from the run folder"
accuracy = json.loads((run / "test_results.json").read_text())["test_accuracy"]
print(f"wheel quickstart: ok (hf_rnn from {hf_rnn.__file__}, test accuracy {accuracy:.4f})")
PYTHON

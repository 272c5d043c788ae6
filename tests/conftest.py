"""Test-wide settings: never touch the network, one torch thread (the machines are shared and small)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("HF_RNN_DATA_DIR", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from hf_rnn.recipe import load_recipe  # noqa: E402
from hf_rnn.training import train  # noqa: E402

torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@pytest.fixture
def shared_data_dir() -> str:
    """The full datasets beside the checkout; tests that need them skip (saying why) when absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"full data not found at {SHARED_DATA} (only present on the team's machines)")
    return SHARED_DATA


# Tiny trained runs, one per model family, shared by every test module that needs a finished run.
REPO = Path(REPO_ROOT)
TINY_IMDB = [
    "training.num_train_epochs=1",
    "training.threads=1",
    "data.max_train_samples=300",
    "data.validation_size=100",
    "data.max_test_samples=100",
    "tokenizer.vocab_size=800",
    "tokenizer.model_max_length=64",
    "training.push_to_hub_repo=someone/imdb-tiny",
]
TINY_M30K = [
    "training.num_train_epochs=1",
    "data.max_train_samples=300",
    "data.max_eval_samples=30",
    "data.max_test_samples=30",
    "tokenizer.vocab_size=600",
    "model.hidden_size=32",
    "model.embedding_size=32",
    "training.generation_max_new_tokens=20",
]

TINY_LM = [
    "training.num_train_epochs=1",
    "training.threads=1",
    "data.max_train_samples=600",
    "data.validation_size=100",
    "data.max_test_samples=100",
    "tokenizer.vocab_size=1000",
    "model.adaptive_cutoffs=[200, 500]",
    "model.embedding_size=32",
    "model.hidden_size=64",
    "training.per_device_train_batch_size=8",
    "training.learning_rate=1e-2",
]


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory) -> Path:
    """A finished tiny run of the classifier family (about 5 s), built once per session; `push` is replaced by a recorder to check that training calls it."""
    output_dir = tmp_path_factory.mktemp("imdb-run")
    pushes = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("hf_rnn.training.push", lambda model_dir, repo_id: pushes.append((Path(model_dir), repo_id)))
        patch.setattr("hf_rnn.training.hub_is_offline", lambda: False)
        train(load_recipe(REPO / "configs" / "imdb_tiny.yaml", TINY_IMDB), output_dir, data_dir="sample")
    assert pushes == [(output_dir, "someone/imdb-tiny")]
    return output_dir


@pytest.fixture(scope="session")
def seq2seq_run(tmp_path_factory) -> Path:
    """A finished tiny run of the encoder-decoder family (about 5 s), built once per session."""
    output_dir = tmp_path_factory.mktemp("m30k-run")
    train(load_recipe(REPO / "configs" / "multi30k_tiny.yaml", TINY_M30K), output_dir, data_dir="sample")
    return output_dir


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory) -> Path:
    """A finished tiny run of the language-model family (about 10 s), built once per session."""
    output_dir = tmp_path_factory.mktemp("lm-run")
    train(load_recipe("imdb_lm_tiny", TINY_LM), output_dir, data_dir="sample")
    return output_dir


def pytest_itemcollected(item) -> None:
    """Tiers: `slow` (trains for tens of seconds or launches processes), `integration` (whole paths: training, the
    command line, files on disk, subprocesses), and `unit` for everything else (`make test-fast`)."""
    if not any(item.get_closest_marker(name) for name in ("slow", "integration")):
        item.add_marker(pytest.mark.unit)

"""Test-wide settings: never touch the network, one torch thread (the machines are shared and small)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("HF_RNN_DATA_DIR", None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@pytest.fixture
def shared_data_dir() -> str:
    """The full datasets beside the checkout; tests that need them skip (saying why) when absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"full data not found at {SHARED_DATA} (only present on the team's machines)")
    return SHARED_DATA

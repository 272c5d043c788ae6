"""Data loading: local parquet in the Hub schema, bundled slices, and fast, clear offline errors."""

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_rnn.data import DataConfig, DataError, load_eval_split, load_task_splits, resolve_data_dir


def test_bundled_sample_loads_with_the_hub_schema():
    splits = load_task_splits(DataConfig(validation_size=500), "sample", ["text", "label"])
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (3500, 500, 1000)
    assert splits["train"].features["label"].names == ["neg", "pos"]


def test_validation_carve_is_seeded_and_disjoint():
    first = load_task_splits(DataConfig(validation_size=300), "sample", ["text", "label"])
    second = load_task_splits(DataConfig(validation_size=300), "sample", ["text", "label"])
    assert first["validation"]["text"] == second["validation"]["text"]
    assert not set(first["validation"]["text"]) & set(first["train"]["text"]) - {""}


def test_caps_take_a_seeded_subset():
    splits = load_task_splits(DataConfig(validation_size=100, max_train_samples=50, max_test_samples=20), "sample", [])
    assert (len(splits["train"]), len(splits["test"])) == (50, 20)


def test_data_dir_from_environment(monkeypatch):
    monkeypatch.setenv("HF_RNN_DATA_DIR", "sample")
    assert resolve_data_dir(None).name == "sample_data"


def test_offline_hub_dataset_fails_in_under_a_second():
    started = time.perf_counter()
    with pytest.raises(DataError, match="offline.*--data-dir"):
        load_task_splits(DataConfig(dataset="stanfordnlp/imdb"), None, ["text", "label"])
    assert time.perf_counter() - started < 1.0


def test_missing_data_dir_and_files_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "nowhere")
    (tmp_path / "imdb").mkdir()
    with pytest.raises(DataError, match=r"missing data file\(s\).*train.parquet"):
        load_task_splits(DataConfig(), tmp_path, ["text", "label"])


def test_wrong_columns_are_named(tmp_path):
    (tmp_path / "imdb").mkdir()
    table = pa.table({"review": ["good", "bad"], "sentiment": [1, 0]})
    for split in ("train", "test"):
        pq.write_table(table, tmp_path / "imdb" / f"{split}.parquet")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['text', 'label'\]"):
        load_task_splits(DataConfig(validation_size=1), tmp_path, ["text", "label"])


def test_newstest_split_loads_from_the_wmt_folder():
    split = load_eval_split(DataConfig(local_name="wmt-newstest"), "sample", "newstest2014", ["translation"])
    assert len(split) == 200 and set(split[0]["translation"]) == {"de", "en"}


def test_full_imdb_when_present(shared_data_dir):
    splits = load_task_splits(DataConfig(), shared_data_dir, ["text", "label"])
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (22500, 2500, 25000)

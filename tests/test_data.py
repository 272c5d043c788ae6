"""Data loading: local parquet in the Hub schema, bundled slices, and fast, clear offline errors."""

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_rnn.data import DataConfig, DataError, load_eval_split, load_task_splits, resolve_data_dir
from hf_rnn.groupings import example_groups


def test_bundled_sample_loads_with_the_hub_schema():
    splits = load_task_splits(DataConfig(validation_size=500), "sample", ["text", "label"])
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (3500, 500, 1000)
    assert splits["train"].features["label"].names == ["neg", "pos"]


def test_validation_carve_is_seeded_and_disjoint():
    first = load_task_splits(DataConfig(validation_size=300), "sample", ["text", "label"])
    second = load_task_splits(DataConfig(validation_size=300), "sample", ["text", "label"])
    assert first["validation"]["text"] == second["validation"]["text"]
    assert not set(first["validation"]["text"]) & set(first["train"]["text"]) - {""}


def movies_of(texts: list[str]) -> set[str]:
    groups, unknown = example_groups(texts, "imdb_movies")
    assert unknown == 0
    return set(groups)


def test_movie_grouped_carve_keeps_every_movie_on_one_side():
    """A random carve of IMDB's training reviews validates on movies it trains on; `imdb_movies` does not."""
    random_carve = load_task_splits(DataConfig(validation_size=500), "sample", ["text", "label"])
    shared = movies_of(random_carve["validation"]["text"]) & movies_of(random_carve["train"]["text"])
    assert len(shared) > 100  # the leak: most validation movies also have reviews in training

    config = DataConfig(validation_size=500, validation_groups="imdb_movies")
    grouped = load_task_splits(config, "sample", ["text", "label"])
    assert not movies_of(grouped["validation"]["text"]) & movies_of(grouped["train"]["text"])
    assert 500 <= len(grouped["validation"]) < 530  # whole movies (at most 30 reviews each) until 500 are reached
    assert len(grouped["train"]) + len(grouped["validation"]) == 4000
    again = load_task_splits(config, "sample", ["text", "label"])
    assert again["validation"]["text"] == grouped["validation"]["text"]
    reseeded = load_task_splits(DataConfig(validation_size=500, validation_groups="imdb_movies", seed=7), "sample", [])
    assert reseeded["validation"]["text"] != grouped["validation"]["text"]


def test_validation_groups_from_a_column(tmp_path):
    folder = tmp_path / "grouped"
    folder.mkdir()
    rows = {"text": [f"review {i}" for i in range(100)], "label": [i % 2 for i in range(100)]}
    pq.write_table(pa.table({**rows, "movie": [i // 10 for i in range(100)]}), folder / "train.parquet")
    pq.write_table(pa.table(rows), folder / "test.parquet")
    config = DataConfig(local_name="grouped", validation_size=0.25, validation_groups="movie")
    splits = load_task_splits(config, tmp_path, ["text", "label"])
    assert len(splits["validation"]) == 30  # three whole groups of ten reach a quarter of 100
    assert not set(splits["validation"]["movie"]) & set(splits["train"]["movie"])


def test_validation_groups_that_do_not_fit_are_named(tmp_path):
    with pytest.raises(DataError, match=r"neither a column .* nor a grouping .*imdb_movies"):
        load_task_splits(DataConfig(validation_groups="films"), "sample", ["text", "label"])
    folder = tmp_path / "other"
    folder.mkdir()
    rows = pa.table({"text": [f"not an IMDB review {i}" for i in range(50)], "label": [i % 2 for i in range(50)]})
    for split in ("train", "test"):
        pq.write_table(rows, folder / f"{split}.parquet")
    config = DataConfig(local_name="other", validation_size=10, validation_groups="imdb_movies")
    with pytest.raises(DataError, match="does not match this data: 50 of 50 texts"):
        load_task_splits(config, tmp_path, ["text", "label"])


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


def test_movie_grouping_covers_the_full_imdb_training_split(shared_data_dir):
    """Every one of the 25,000 training reviews has its movie; held out by movie, none is shared with training."""
    splits = load_task_splits(DataConfig(validation_groups="imdb_movies"), shared_data_dir, ["text", "label"])
    assert len(splits["train"]) + len(splits["validation"]) == 25000
    assert 2500 <= len(splits["validation"]) < 2530
    assert not movies_of(splits["validation"]["text"]) & movies_of(splits["train"]["text"])


def test_a_split_of_several_files_concatenates_them_in_order():
    """`a+b` (the `datasets` split syntax) reads both files; `other/split` reads another dataset's file."""
    parts = {
        name: load_eval_split(DataConfig(local_name="multi30k"), "sample", name, ["translation"])
        for name in ("train", "validation")
    }
    config = DataConfig(local_name="multi30k", train_split="train+validation", validation_split="validation")
    splits = load_task_splits(config, "sample", ["translation"])
    assert list(splits["train"]["translation"]) == [*parts["train"]["translation"], *parts["validation"]["translation"]]
    mixed = DataConfig(
        local_name="multi30k", train_split="validation+wmt-newstest/newstest2014", validation_split="validation"
    )
    train = load_task_splits(mixed, "sample", ["translation"])["train"]
    newstest = load_eval_split(DataConfig(local_name="wmt-newstest"), "sample", "newstest2014", ["translation"])
    assert len(train) == len(parts["validation"]) + len(newstest)
    with pytest.raises(DataError, match="newstest2099"):
        load_task_splits(DataConfig(local_name="multi30k", train_split="train+newstest2099"), "sample", ["translation"])


def test_training_evaluations_use_a_fixed_subset_and_the_final_one_the_whole_validation_set():
    config = DataConfig(local_name="multi30k", validation_split="validation", training_eval_samples=50)
    splits = load_task_splits(config, "sample", ["translation"])
    assert len(splits["validation"]) == 50 and len(splits["validation_full"]) > 50
    assert set(map(str, splits["validation"]["translation"])) <= set(map(str, splits["validation_full"]["translation"]))
    capped = load_task_splits(
        DataConfig(local_name="multi30k", validation_split="validation", max_eval_samples=50), "sample", ["translation"]
    )
    assert len(capped["validation"]) == 50 and "validation_full" not in capped

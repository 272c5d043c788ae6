"""Hub datasets in their real shapes: each recipe's Hub id, as a local folder laid out like the Hub repository.

The folders come from `hub_layouts` (which says where each layout was taken from). They are read through
`data.dataset=<folder>` with the Hub switched off (conftest sets the offline variables), so the same loader path a
user takes after `huggingface-cli download` runs here, flat `en`/`de` columns and shard names included.
"""

import json

import pytest
from hub_layouts import imdb_layout, multi30k_layout, wmt14_layout

from hf_rnn.commands import main as cli_main
from hf_rnn.data import DataConfig, DataError, load_eval_split, load_task_splits
from hf_rnn.recipe import load_recipe
from hf_rnn.tasks import task_adapter

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

# The Hub splits are called validation / test; the recipe names WMT14's by the test sets they hold.
WMT14_SPLITS = ["data.validation_split=validation", "data.test_split=test"]
WMT14_SMALL = [  # the GPU recipe's data path at CPU-test size
    "model.hidden_size=64",
    "model.embedding_size=64",
    "model.attentional_size=64",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "tokenizer.vocab_size=2000",
    "tokenizer.training_texts=1200",
    "training.max_steps=10",
    "training.eval_steps=10",
    "training.save_steps=10",
    "training.per_device_train_batch_size=32",
    "training.dataloader_num_workers=0",
    "data.max_eval_samples=20",
]


def recipe_splits(name: str, folder, extra: list[str] = ()):
    recipe = load_recipe(name, [f"data.dataset={folder}", *extra])
    return load_task_splits(recipe.data, None, task_adapter(recipe.task).required_columns(recipe.data))


@pytest.mark.parametrize("recipe", ["imdb_tiny", "imdb_bilstm"])
def test_stanfordnlp_imdb_layout(recipe, tmp_path):
    splits = recipe_splits(recipe, imdb_layout(tmp_path / "imdb"))
    assert len(splits["train"]) + len(splits["validation"]) == 4000 and len(splits["test"]) == 1000
    assert splits["train"].features["label"].names == ["neg", "pos"]


@pytest.mark.parametrize("recipe", ["multi30k_tiny", "multi30k_de_en"])
def test_bentrevett_multi30k_layout_with_flat_language_columns(recipe, tmp_path):
    """Before: "lacks column(s) ['translation']" and a hint about text_column / label_column."""
    folder = multi30k_layout(tmp_path / "multi30k")
    splits = recipe_splits(recipe, folder)
    assert len(splits["train"]) == 5000 and len(splits["test"]) == 1000  # val.jsonl became `validation`
    first = json.loads((folder / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert splits["train"][0]["translation"] == {"de": first["de"], "en": first["en"]}
    reverse = recipe_splits(recipe, folder, ["data.source_lang=en", "data.target_lang=de"])
    assert reverse["train"][0]["translation"] == {"en": first["en"], "de": first["de"]}


def test_wmt14_layout_with_a_config_folder_and_shards(tmp_path):
    splits = recipe_splits("wmt14_de_en", wmt14_layout(tmp_path / "wmt14"), WMT14_SPLITS)
    assert len(splits["train"]) == 5000  # three shards read as one split
    assert len(splits["validation"]) == 100 and len(splits["test"]) == 100


def test_missing_split_in_a_folder_names_what_is_there(tmp_path):
    with pytest.raises(
        DataError, match=r"\['newstest2014', 'newstest2013'\] not found .* has \['test', 'train', 'validation'\]"
    ):
        recipe_splits("wmt14_de_en", wmt14_layout(tmp_path / "wmt14"))


@pytest.mark.parametrize(
    ("columns", "config"),
    [
        ({"src": ["ein Hund"], "tgt": ["a dog"]}, {}),
        ({"source": ["ein Hund"], "target": ["a dog"]}, {}),
        ({"german": ["ein Hund"], "english": ["a dog"]}, {"source_column": "german", "target_column": "english"}),
        ({"translation": [{"de": "ein Hund", "en": "a dog"}]}, {}),
    ],
)
def test_translation_shapes_read_into_one_form(columns, config, tmp_path):
    rows = [json.dumps({key: values[0] for key, values in columns.items()})]
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    split = load_eval_split(DataConfig(dataset=str(tmp_path), **config), None, "train", ["translation"])
    assert split["translation"] == [{"de": "ein Hund", "en": "a dog"}]


def test_unknown_translation_shape_says_what_is_accepted(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"a": "x", "b": "y"}\n')
    with pytest.raises(DataError, match=r"among the columns \['a', 'b'\].*`data.source_column`"):
        load_eval_split(DataConfig(dataset=str(tmp_path)), None, "train", ["translation"])


def test_a_single_local_file_is_the_train_split(tmp_path):
    imdb_layout(tmp_path / "imdb")
    file = tmp_path / "imdb" / "plain_text" / "test-00000-of-00001.parquet"
    split = load_eval_split(DataConfig(dataset=str(file)), None, "train", ["text", "label"])
    assert len(split) == 1000
    with pytest.raises(DataError, match="cannot read .*notes.txt"):
        (tmp_path / "notes.txt").write_text("x")
        load_eval_split(DataConfig(dataset=str(tmp_path / "notes.txt")), None, "train", ["text"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("recipe", "layout", "extra"),
    [
        ("multi30k_tiny", multi30k_layout, ["training.num_train_epochs=1", "data.max_train_samples=600"]),
        ("wmt14_de_en", wmt14_layout, [*WMT14_SPLITS, *WMT14_SMALL]),
        ("imdb_tiny", imdb_layout, ["training.num_train_epochs=1", "data.max_train_samples=600"]),
    ],
)
def test_train_cli_on_a_hub_shaped_folder_without_data_dir(recipe, layout, extra, tmp_path, capsys):
    """`hf-rnn train RECIPE --set data.dataset=<folder>`: no --data-dir, no Hub, the folder as downloaded."""
    folder = layout(tmp_path / "data", rows=600)
    overrides = [f"data.dataset={folder}", "training.threads=1", "data.max_test_samples=50", *extra]
    arguments = ["train", recipe, "--output-dir", str(tmp_path / "run")]
    for override in overrides:
        arguments += ["--set", override]
    assert cli_main(arguments) == 0, capsys.readouterr().err[-2000:]
    results = json.loads((tmp_path / "run" / "all_results.json").read_text())
    assert results["test_examples"] == 50

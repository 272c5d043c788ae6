"""Recipes: YAML sections, --set overrides, and errors that name the key before anything runs."""

from pathlib import Path

import pytest

from hf_rnn.recipe import RecipeError, apply_overrides, load_recipe, parse_override, recipe_from_dict

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.task in ("classification", "translation")


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("training.learning_rate=2e-3", (["training", "learning_rate"], 0.002)),
        ("model.bidirectional=false", (["model", "bidirectional"], False)),
        ("data.max_train_samples=null", (["data", "max_train_samples"], None)),
        ("model.cell_type=gru", (["model", "cell_type"], "gru")),
        ("training.report_to=[]", (["training", "report_to"], [])),
    ],
)
def test_parse_override(assignment, expected):
    assert parse_override(assignment) == expected


def test_overrides_apply_and_are_kept_in_the_resolved_recipe():
    recipe = load_recipe(
        CONFIGS / "imdb_tiny.yaml", ["training.learning_rate=2e-3", "model.cell_type=lstm", "training.threads=1"]
    )
    assert recipe.training["learning_rate"] == 0.002
    assert recipe.model["cell_type"] == "lstm"
    assert recipe.options.threads == 1
    assert "learning_rate: 0.002" in recipe.to_yaml()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"modle": {}}, "unknown recipe section"),
        ({"task": "summarization"}, "`task` must be one of"),
        ({"tokenizer": {"vocab": 10}}, r"unknown key\(s\) in `tokenizer`: \['vocab'\]"),
        ({"data": {"max_train_samples": "many"}}, "`data.max_train_samples` must be of type int"),
        ({"tokenizer": {"model": "sentencepiece"}}, "tokenizer.model"),
        ({"training": {"teacher_forcing_schedule": "cosine"}}, "teacher_forcing_schedule"),
        ({"model": [1, 2]}, "section `model` must be a mapping"),
    ],
)
def test_bad_recipes_fail_with_a_message_naming_the_key(raw, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict(raw)


def test_bad_override_syntax():
    with pytest.raises(RecipeError, match="dotted.key=value"):
        apply_overrides({}, ["training.learning_rate"])
    with pytest.raises(RecipeError, match="unknown section"):
        apply_overrides({}, ["optimizer.lr=1"])


def test_missing_recipe_file():
    with pytest.raises(RecipeError, match="not found"):
        load_recipe("configs/does_not_exist.yaml")

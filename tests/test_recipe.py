"""Recipes: YAML sections, --set overrides, and errors that name the key before anything runs."""

from pathlib import Path

import pytest

from hf_rnn.commands import main
from hf_rnn.families import tasks
from hf_rnn.recipe import (
    RecipeError,
    apply_overrides,
    load_recipe,
    parse_override,
    recipe_from_dict,
    shipped_recipes,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.task in tasks()


def test_configs_folder_is_the_packaged_recipes():
    """`configs/NAME.yaml` (the README's paths) and the recipes inside the package are the same files."""
    assert sorted(path.name for path in CONFIGS.glob("*.yaml")) == sorted(f"{name}.yaml" for name in shipped_recipes())
    assert all(
        path.parent.name == "recipes" and path.parent.parent.name == "hf_rnn" for path in shipped_recipes().values()
    )


@pytest.mark.parametrize("name", ["imdb_tiny", "imdb_tiny.yaml"])
def test_a_shipped_recipe_loads_by_name_from_any_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the name resolves inside the installed package
    recipe = load_recipe(name, ["training.num_train_epochs=2"])
    assert recipe.training["num_train_epochs"] == 2
    assert recipe.model == load_recipe(CONFIGS / "imdb_tiny.yaml").model


def test_a_local_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imdb_tiny.yaml").write_text("task: translation\n")
    assert load_recipe("imdb_tiny.yaml").task == "translation"


def test_recipes_command_lists_every_shipped_recipe(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in shipped_recipes():
        assert f"\n{name} " in "\n" + out
    assert "Smoke recipe: a small BiGRU on the IMDB slice" in out


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
    with pytest.raises(RecipeError, match=r"not found: give a YAML file or the name .*imdb_bilstm, .*imdb_tiny"):
        load_recipe("imdb_huge")


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_every_shipped_recipe_builds_its_model_config_and_training_arguments(name, tmp_path):
    """A typo in a shipped recipe fails here, without reading any data (the values the data decides are stand-ins)."""
    from hf_rnn.families import family_for_task
    from hf_rnn.tasks import build_config, task_adapter
    from hf_rnn.training import build_training_arguments

    recipe = load_recipe(name)
    adapter = task_adapter(recipe.task)
    # `init_from` names a trained run (its architecture is checked against it in tests/test_language_modeling.py).
    values = {key: value for key, value in recipe.model.items() if key != "init_from"}
    config = build_config(adapter.config_class, values, adapter.placeholder_fixed)
    assert config.model_type == family_for_task(recipe.task).model_type
    assert all(getattr(config, key) == value for key, value in values.items())
    args = build_training_arguments(adapter, recipe, tmp_path)
    assert isinstance(args, adapter.arguments_class)
    for key, value in recipe.training.items():
        if hasattr(args, key) and not isinstance(getattr(args, key), (list, dict)) and value is not None:
            assert getattr(args, key) == value or str(getattr(args, key)).endswith(str(value)), key


@pytest.mark.parametrize("name", ["1node_8gpu", "2nodes_8gpu"])
def test_the_accelerate_configs_load_as_multi_gpu_bf16(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / "accelerate" / f"{name}.yaml"))
    machines = 1 if name.startswith("1node") else 2
    assert (config.distributed_type.value, config.mixed_precision) == ("MULTI_GPU", "bf16")
    assert (config.num_machines, config.num_processes) == (machines, 8 * machines)

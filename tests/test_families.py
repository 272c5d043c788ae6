"""The family registry: every place that depends on which families exist reads `hf_rnn.families.FAMILIES`."""

import dataclasses
import json

import pytest
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from hf_rnn import RnnClassifierConfig, RnnClassifierModel, RnnForSequenceClassification, families, hub
from hf_rnn.families import FAMILIES, CardMetric, family_for_task, family_of
from hf_rnn.model_card import eval_results, result_rows
from hf_rnn.recipe import RecipeError, recipe_from_dict


class DummyConfig(RnnClassifierConfig):
    model_type = "rnn_dummy"


class DummyModel(RnnClassifierModel):
    config_class = DummyConfig


class DummyForSequenceClassification(RnnForSequenceClassification):
    config_class = DummyConfig


@pytest.fixture
def dummy_family(monkeypatch):
    """A third family added the way a new one is: one `Family` entry (its model classes stand in for a folder)."""
    classifier = family_for_task("classification")
    dummy = dataclasses.replace(
        classifier,
        task="dummy-task",
        config_class=DummyConfig,
        base_model_class=DummyModel,
        head_model_class=DummyForSequenceClassification,
        card_task_type="text-classification",
        card_metrics=(CardMetric("accuracy", "accuracy", "dummy accuracy", {}),),
        describe=lambda config: f"dummy {config.get('cell_type')}",
    )
    monkeypatch.setattr(families, "FAMILIES", (*FAMILIES, dummy))
    return dummy


def test_every_family_is_registered_with_the_auto_classes():
    for family in FAMILIES:
        config = family.config_class()
        assert isinstance(config, AutoConfig.for_model(family.model_type).__class__)
        assert type(AutoModel.from_config(config)) is family.base_model_class
        assert type(family.head_auto_class.from_config(config)) is family.head_model_class


def test_lookups_by_model_type_and_task_agree():
    for family in FAMILIES:
        assert family_of(family.model_type) is family and family_for_task(family.task) is family
    with pytest.raises(families.UnknownFamilyError, match="bert"):
        family_of("bert")


def test_a_new_family_is_one_registry_entry(dummy_family, tmp_path):
    # Registration with the Auto classes.
    families.register_families()
    config = AutoConfig.for_model("rnn_dummy", vocab_size=40, num_labels=2)
    assert type(AutoModelForSequenceClassification.from_config(config)) is DummyForSequenceClassification
    # Recipes accept its task; lookups, the Hub export and the card read it.
    assert recipe_from_dict({"task": "dummy-task"}).task == "dummy-task"
    assert family_of("rnn_dummy") is dummy_family and family_for_task("dummy-task") is dummy_family
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "rnn_dummy"}))
    assert hub.read_model_type(tmp_path) == "rnn_dummy"
    sets = [{"dataset": "d", "dataset_config": None, "split": "test", "examples": 4, "values": {"accuracy": 0.5}}]
    sets[0]["signatures"] = {}
    (entry,) = eval_results("rnn_dummy", sets)
    assert (entry.task_type, entry.metric_name, entry.metric_value) == ("text-classification", "dummy accuracy", 0.5)
    assert [row["metric"] for row in result_rows("rnn_dummy", sets, {}, None)] == ["dummy accuracy"]
    # The training adapter and evaluator come from the entry too.
    assert dummy_family.load_task_adapter().config_class is RnnClassifierConfig
    assert callable(dummy_family.load_evaluator())


def test_recipes_refuse_a_task_no_family_trains():
    with pytest.raises(RecipeError, match="classification"):
        recipe_from_dict({"task": "summarisation"})


def test_family_names_appear_only_in_the_registry_and_the_model_folders():
    """Adding a family must not mean editing modules that restate which families exist."""
    import pathlib

    package = pathlib.Path(families.__file__).parent
    literals = [family.model_type for family in FAMILIES]
    offenders = []
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        if relative == "families.py" or relative.startswith("models/"):
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{relative}: {name}" for name in literals if f'"{name}"' in text or f"'{name}'" in text]
    assert offenders == []

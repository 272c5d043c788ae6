"""`hf_rnn.runs`: the one reader of run folders."""

import json

import pytest

from hf_rnn.recipe import load_recipe
from hf_rnn.runs import Run, RunFileError, write_recipe


def test_a_run_folder_is_read_through_one_class(tmp_path):
    recipe = load_recipe("imdb_tiny")
    write_recipe(tmp_path, recipe)
    (tmp_path / "all_results.json").write_text(json.dumps({"test_accuracy": 0.75, "peak_rss_mb": 512.0}))
    (tmp_path / "train_results.json").write_text(json.dumps({"epoch": 1.0}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "rnn_classifier", "cell_type": "gru"}))
    run = Run(tmp_path)
    assert run.recipe().to_yaml() == recipe.to_yaml()
    assert run.data_config() == recipe.data
    assert run.results()["test_accuracy"] == 0.75 and run.peak_rss_mb() == 512.0
    assert run.train_results() == {"epoch": 1.0} and run.test_results() == {} and run.run_info() == {}
    assert run.description() == " (classification, gru)"


def test_a_model_folder_without_recipe_has_the_default_data_config(tmp_path):
    run = Run(tmp_path)
    assert run.recipe() is None and run.data_config().dataset == load_recipe("imdb_tiny").data.__class__().dataset
    assert run.description() == ""


def test_a_broken_recipe_is_one_clear_error(tmp_path):
    (tmp_path / "recipe.yaml").write_text("task: [unclosed\n")
    with pytest.raises(RunFileError, match="not a valid hf_rnn recipe"):
        Run(tmp_path).recipe()
    (tmp_path / "recipe.yaml").write_text("task: poetry\n")
    with pytest.raises(RunFileError, match="task"):
        Run(tmp_path).recipe()


def test_trainer_state_is_the_roots_else_the_latest_checkpoints(tmp_path):
    for step in (5, 40, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert Run(tmp_path).trainer_state_path() == tmp_path / "checkpoint-100" / "trainer_state.json"
    state = tmp_path / "checkpoint-5" / "trainer_state.json"
    assert Run(state).trainer_state_path() == state and Run(state).test_results() == {}
    with pytest.raises(RunFileError, match="no trainer_state.json"):
        Run(tmp_path / "checkpoint-5" / "missing").trainer_state_path()

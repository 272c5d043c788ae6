"""`hf-rnn diagnose gradients|gates`, `compare-cells` and `plot`: files written, real numbers, real batches."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from helpers import all_numbers

from hf_rnn import RnnClassifierConfig, RnnForSequenceClassification
from hf_rnn.commands import main as cli_main
from hf_rnn.data import SAMPLE_DATA_DIR
from hf_rnn.lab.diagnostics import gradient_norms_per_step
from hf_rnn.lab.inspection import comparison_markdown
from hf_rnn.plotting import training_curves
from hf_rnn.runs import Run
from hf_rnn.tokenization import TokenizerConfig, train_tokenizer

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_RECIPE_OVERRIDES = [
    "--set",
    "tokenizer.training_texts=300",
    "--set",
    "tokenizer.vocab_size=1000",
    "--set",
    "model.hidden_size=8",
    "--set",
    "model.embedding_size=8",
]


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000, path


def assert_finite_json(path: Path) -> dict:
    document = json.loads(path.read_text())
    numbers = list(all_numbers(document))
    assert numbers and all(math.isfinite(value) for value in numbers)
    return document


@pytest.fixture(scope="module")
def tokenizer():
    import pandas as pd

    texts = pd.read_parquet(SAMPLE_DATA_DIR / "imdb" / "train.parquet", columns=["text"])["text"][:300].tolist()
    return train_tokenizer(texts, TokenizerConfig(vocab_size=800, model_max_length=64))


@pytest.fixture(scope="module")
def saved_classifiers(tmp_path_factory, tokenizer) -> dict[str, Path]:
    """Untrained unidirectional last-state classifiers, one per cell type, saved as a run would save them."""
    root = tmp_path_factory.mktemp("saved")
    folders = {}
    for cell_type in ("rnn", "lstm", "gru"):
        torch.manual_seed(0)
        config = RnnClassifierConfig(
            vocab_size=len(tokenizer),
            embedding_size=8,
            hidden_size=8,
            cell_type=cell_type,
            bidirectional=False,
            pooling="last",
            id2label={0: "neg", 1: "pos"},
            label2id={"neg": 0, "pos": 1},
        )
        folder = root / cell_type
        RnnForSequenceClassification(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "recipe.yaml").write_text(yaml.safe_dump({"data": {"local_name": "imdb"}}))
        folders[cell_type] = folder
    return folders


# ---------------------------------------------------------------------------------------------------------
# diagnose gradients


def test_grad_norm_from_end_lines_up_each_sequence_by_its_own_last_token():
    torch.manual_seed(0)
    config = RnnClassifierConfig(vocab_size=30, embedding_size=6, hidden_size=6, bidirectional=False, pooling="last")
    model = RnnForSequenceClassification(config).double()
    lengths = [9, 4, 6]
    input_ids = torch.randint(1, 30, (3, 9))
    attention_mask = (torch.arange(9) < torch.tensor(lengths).unsqueeze(1)).long()
    batch = {
        "input_ids": input_ids * attention_mask,
        "attention_mask": attention_mask,
        "labels": torch.tensor([0, 1, 1]),
    }
    result = gradient_norms_per_step(model, batch)

    # Each sequence alone: the batch loss is the mean, so in the batch its gradients are a third as large.
    alone = [
        gradient_norms_per_step(
            model,
            {
                "input_ids": batch["input_ids"][row : row + 1, : lengths[row]],
                "labels": batch["labels"][row : row + 1],
            },
        )
        for row in range(3)
    ]
    for distance in range(9):
        rows = [row for row in range(3) if lengths[row] > distance]
        expected = sum(alone[row]["grad_norm_per_step"][lengths[row] - 1 - distance] / 3 for row in rows) / len(rows)
        assert result["grad_norm_from_end"][distance] == pytest.approx(expected, rel=1e-9)
    assert result["num_sequences_per_step"] == [3, 3, 3, 3, 2, 2, 1, 1, 1]


def test_diagnose_gradients_on_saved_models_writes_plots_and_json(saved_classifiers, tmp_path, capsys):
    out = tmp_path / "gradients"
    code = cli_main(
        [
            "diagnose",
            "gradients",
            str(saved_classifiers["rnn"]),
            str(saved_classifiers["lstm"]),
            "--data-dir",
            "sample",
            "--batch-size",
            "3",
            "--max-length",
            "40",
            "--min-length",
            "40",
            "--max-grad-norm",
            "1e-4",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert_png(out / "gradients.png")
    assert_png(out / "gradients_by_position.png")
    document = assert_finite_json(out / "gradients.json")
    assert document["settings"]["state"] == "saved models"  # no train_results.json: not trained by hf-rnn
    assert document["settings"]["texts"] == 3 and document["settings"]["token_lengths"] == {
        "min": 40,
        "median": 40,
        "max": 40,
    }
    assert list(document["models"]) == ["rnn", "lstm"]
    for result in document["models"].values():
        from_end, per_step = result["grad_norm_from_end"], result["grad_norm_per_step"]
        assert len(from_end) == 40 and all(value > 0 for value in from_end)
        # Every text fills the window, so counting back from the end is reading the positions backwards.
        assert from_end == pytest.approx(per_step[::-1], rel=1e-12)
        # A 1e-4 threshold clips: every gradient is scaled down by one common factor.
        assert 0 < result["clip_coefficient"] < 1
        assert result["clipped_parameter_grad_norm"] == pytest.approx(1e-4, rel=1e-3)
        assert result["decay_from_end"]["10"] == pytest.approx(from_end[10] / from_end[0])
    assert "rnn" in capsys.readouterr().out


def test_diagnose_gradients_fresh_models_from_a_recipe(tmp_path):
    out = tmp_path / "fresh"
    code = cli_main(
        [
            "diagnose",
            "gradients",
            str(REPO / "configs" / "imdb_tiny.yaml"),
            "--data-dir",
            "sample",
            "--cells",
            "rnn,gru",
            "--batch-size",
            "2",
            "--max-length",
            "30",
            *TINY_RECIPE_OVERRIDES,
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert_png(out / "gradients.png")
    document = assert_finite_json(out / "gradients.json")
    assert document["settings"]["state"] == "at initialisation"
    assert list(document["models"]) == ["rnn", "gru"]
    for cell_type, result in document["models"].items():
        assert result["cell_type"] == cell_type
        # The recipe is a BiGRU with mean+max pooling; the diagnostic reads left to right from the last state.
        assert result["architecture"]["bidirectional"] is False and result["architecture"]["pooling"] == "last"
        assert result["architecture"]["hidden_size"] == 8
        assert result["grad_norm_from_end"][0] > result["grad_norm_from_end"][-1] > 0


def test_diagnose_gradients_after_brief_training(tmp_path):
    out = tmp_path / "trained"
    code = cli_main(
        [
            "diagnose",
            "gradients",
            str(REPO / "configs" / "imdb_tiny.yaml"),
            "--data-dir",
            "sample",
            "--cells",
            "lstm",
            "--train-steps",
            "2",
            "--batch-size",
            "2",
            "--max-length",
            "30",
            "--precision",
            "float32",
            *TINY_RECIPE_OVERRIDES,
            "--set",
            "training.per_device_train_batch_size=4",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    document = assert_finite_json(out / "gradients.json")
    assert document["settings"]["state"] == "after 2 training steps"
    trained = out / "models" / "lstm"
    assert (trained / "model.safetensors").is_file()
    assert yaml.safe_load((trained / "recipe.yaml").read_text())["training"]["max_steps"] == 2
    assert json.loads((trained / "train_results.json").read_text())["train_examples"] > 0


def test_diagnose_gradients_refuses_recipe_options_for_saved_models(saved_classifiers, tmp_path, capsys):
    code = cli_main(
        ["diagnose", "gradients", str(saved_classifiers["lstm"]), "--train-steps", "5", "--output", str(tmp_path)]
    )
    assert code == 2
    assert "apply to a recipe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["diagnose", "gradients", "x.yaml", "--cells", "rnn,transformer", "--output", str(tmp_path)])


# ---------------------------------------------------------------------------------------------------------
# diagnose gates


@pytest.mark.parametrize(
    ("cell_type", "gates"), [("lstm", ["input", "forget", "output"]), ("gru", ["reset", "update"])]
)
def test_diagnose_gates_writes_a_heatmap_with_one_column_per_token(saved_classifiers, tmp_path, cell_type, gates):
    output = tmp_path / "gates.png"
    text = "A wonderful, moving film with a terrible ending."
    code = cli_main(["diagnose", "gates", str(saved_classifiers[cell_type]), text, "--output", str(output)])
    assert code == 0
    assert_png(output)
    document = assert_finite_json(output.with_suffix(".json"))
    assert list(document["gates"]) == gates
    assert document["predicted"] in ("neg", "pos")
    assert len(document["tokens"]) > 8 and document["tokens"][-1] == "</s>"
    for values in document["gates"].values():
        assert len(values) == len(document["tokens"]) and all(0 < value < 1 for value in values)


def test_diagnose_gates_units_has_every_hidden_unit(saved_classifiers, tmp_path):
    output = tmp_path / "units.png"
    code = cli_main(
        ["diagnose", "gates", str(saved_classifiers["lstm"]), "Not bad at all.", "--units", "--output", str(output)]
    )
    assert code == 0
    assert_png(output)
    document = assert_finite_json(output.with_suffix(".json"))
    assert list(document["gates"]) == ["input", "forget", "output"]
    for rows in document["gates"].values():
        assert len(rows) == 8  # hidden_size units, each with one value per token
        assert all(len(row) == len(document["tokens"]) and all(0 < value < 1 for value in row) for row in rows)
    # The unit view averages to the mean view.
    mean_output = tmp_path / "mean.png"
    assert (
        cli_main(["diagnose", "gates", str(saved_classifiers["lstm"]), "Not bad at all.", "--output", str(mean_output)])
        == 0
    )
    means = json.loads(mean_output.with_suffix(".json").read_text())["gates"]
    for name, rows in document["gates"].items():
        assert means[name] == pytest.approx([sum(column) / len(column) for column in zip(*rows)], rel=1e-5)


def test_diagnose_gates_refuses_the_plain_rnn(saved_classifiers, tmp_path, capsys):
    code = cli_main(["diagnose", "gates", str(saved_classifiers["rnn"]), "text", "--output", str(tmp_path / "g.png")])
    assert code == 2
    assert "no gates" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# plot


def fake_state(steps: int, metric: str = "accuracy", best: int | None = None) -> dict:
    history = [
        {"step": step, "epoch": step / 10, "loss": 1.0 / step, "learning_rate": 1e-3} for step in range(2, steps + 1, 2)
    ]
    for step in range(10, steps + 1, 10):
        history.append(
            {"step": step, "epoch": step / 10, "eval_loss": 0.5, f"eval_{metric}": step / 100, "eval_runtime": 1.0}
        )
    history.append({"step": steps, "epoch": steps / 10, "train_loss": 0.3, "train_runtime": 9.0})
    return {"log_history": history, "best_global_step": best, "global_step": steps}


def test_training_curves_keep_losses_and_metrics_only():
    curves = training_curves(fake_state(20, "bleu")["log_history"])
    assert set(curves) == {"loss", "eval_loss", "eval_bleu"}
    assert curves["eval_bleu"] == {"step": [10, 20], "value": [0.1, 0.2]}
    assert len(curves["loss"]["step"]) == 10


def test_plot_reads_the_latest_checkpoint_and_prefers_the_run_root(tmp_path, capsys):
    run = tmp_path / "run"
    for steps in (20, 100, 30):  # checkpoint-100 is the latest, though not last in name order
        (run / f"checkpoint-{steps}").mkdir(parents=True)
        (run / f"checkpoint-{steps}" / "trainer_state.json").write_text(json.dumps(fake_state(steps, best=20)))
    (run / "test_results.json").write_text(json.dumps({"test_accuracy": 0.8}))
    assert Run(run).trainer_state_path() == run / "checkpoint-100" / "trainer_state.json"
    records = [
        {"step": step, "cell_type": "lstm", "grad_norm_from_end": [1.0 / (1 + step + k) for k in range(12)]}
        for step in range(0, 100, 10)
    ]
    (run / "gradient_flow.json").write_text(json.dumps({"every_n_steps": 10, "records": records}))

    code = cli_main(["plot", str(run)])
    assert code == 0
    assert_png(run / "training_curves.png")
    assert_png(run / "training_curves_gradient_flow.png")
    assert "checkpoint-100" in capsys.readouterr().out

    (run / "trainer_state.json").write_text(json.dumps(fake_state(40, "bleu")))
    assert Run(run).trainer_state_path() == run / "trainer_state.json"
    assert cli_main(["plot", str(run), "--output", str(tmp_path / "curves" / "bleu.png")]) == 0
    assert_png(tmp_path / "curves" / "bleu.png")


def test_plot_without_a_trainer_state_fails_with_a_message(tmp_path, capsys):
    assert cli_main(["plot", str(tmp_path)]) == 2
    assert "trainer_state.json" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# compare-cells


def test_comparison_markdown_has_one_row_per_cell():
    rows = [
        {
            "cell_type": cell,
            "bidirectional": False,
            "pooling": "last",
            "hidden_size": 64,
            "parameters": 1000 * (index + 1),
            "train_runtime_s": 1.5,
            "train_examples_per_second": 100.0,
            "eval_accuracy": 0.7,
            "test_accuracy": 0.75,
            "test_macro_f1": 0.74,
        }
        for index, cell in enumerate(("rnn", "lstm"))
    ]
    settings = {"recipe": "r.yaml", "data": "sample", "train_samples": 10, "epochs": 1, "test_samples": 5}
    table = comparison_markdown(rows, {**settings, "max_length": 64, "threads": 1})
    lines = table.strip().splitlines()
    assert lines[-2].startswith("| RNN | 1,000 |") and lines[-1].startswith("| LSTM | 2,000 |")
    assert "0.7500" in table and "(left to right, last-state pooling, hidden 64)" in lines[0]


@pytest.mark.slow
def test_compare_cells_trains_every_cell_with_the_same_budget(tmp_path, capsys):
    out = tmp_path / "compare"
    code = cli_main(
        [
            "compare-cells",
            "--data-dir",
            "sample",
            "--train-samples",
            "120",
            "--eval-samples",
            "40",
            "--test-samples",
            "60",
            "--epochs",
            "1",
            "--max-length",
            "48",
            "--set",
            "tokenizer.vocab_size=1500",
            "--set",
            "training.disable_tqdm=true",
            "--set",
            "training.gradient_flow_every=2",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert_png(out / "comparison.png")
    document = assert_finite_json(out / "comparison.json")
    rows = {row["cell_type"]: row for row in document["rows"]}
    assert list(rows) == ["rnn", "lstm", "gru"]
    for cell, row in rows.items():
        assert row["train_examples"] == 120 and row["test_examples"] == 60
        assert row["epochs"] == pytest.approx(1.0)
        assert 0.0 <= row["test_accuracy"] <= 1.0 and row["train_examples_per_second"] > 0
        recipe = yaml.safe_load((out / cell / "recipe.yaml").read_text())
        assert recipe["model"]["cell_type"] == cell
        assert recipe["tokenizer"]["model_max_length"] == 48
    # Same sizes, different gate counts: the recurrent weights grow 1 : 3 : 4 (RNN : GRU : LSTM).
    assert rows["rnn"]["parameters"] < rows["gru"]["parameters"] < rows["lstm"]["parameters"]
    table = (out / "comparison.md").read_text()
    assert all(f"| {cell.upper()} |" in table for cell in rows)

    # The runs are ordinary training runs: `hf-rnn plot` draws their curves, and the gradient flow recorded
    # every 2 steps by `training.gradient_flow_every` (4 steps of 32 of the 120 texts: steps 0, 2, 4).
    records = json.loads((out / "lstm" / "gradient_flow.json").read_text())["records"]
    assert [record["step"] for record in records] == [0, 2, 4] and records[0]["cell_type"] == "lstm"
    capsys.readouterr()
    assert cli_main(["plot", str(out / "lstm")]) == 0
    assert_png(out / "lstm" / "training_curves.png")
    assert_png(out / "lstm" / "training_curves_gradient_flow.png")
    # The run root holds the whole log history (the checkpoints may keep only the best step).
    assert f"(from {out / 'lstm' / 'trainer_state.json'})" in capsys.readouterr().out
    assert json.loads((out / "lstm" / "trainer_state.json").read_text())["global_step"] == 4


def test_gradient_flow_every_adds_the_callback_to_classification_training():
    from hf_rnn.lab.diagnostics import GradientFlowCallback
    from hf_rnn.recipe import RecipeError, load_recipe
    from hf_rnn.tasks import task_adapter

    recipe = load_recipe(REPO / "configs" / "imdb_tiny.yaml", ["training.gradient_flow_every=25"])
    (callback,) = task_adapter("classification").callbacks(recipe)
    assert isinstance(callback, GradientFlowCallback) and callback.every_n_steps == 25
    assert task_adapter("classification").callbacks(load_recipe(REPO / "configs" / "imdb_tiny.yaml")) == []
    with pytest.raises(RecipeError, match="gradient_flow_every"):
        load_recipe(REPO / "configs" / "imdb_tiny.yaml", ["training.gradient_flow_every=0"])

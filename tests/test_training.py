"""End-to-end training on real data slices (bundled with the package), through the CLI and the library."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_M30K
from hub_layouts import multi30k_layout
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

import hf_rnn  # noqa: F401
from hf_rnn.commands import main as cli_main
from hf_rnn.models.rnn_seq2seq import RnnSeq2SeqForConditionalGeneration
from hf_rnn.recipe import load_recipe
from hf_rnn.training import train

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

REPO = Path(__file__).resolve().parent.parent
IMDB_QUICK = [
    "training.num_train_epochs=3",
    "training.threads=1",
    "data.max_train_samples=2500",
    "tokenizer.model_max_length=128",
    "tokenizer.vocab_size=6000",
]
M30K_QUICK = ["training.num_train_epochs=4", "data.max_eval_samples=100", "data.max_test_samples=300"]


@pytest.fixture(scope="module")
def imdb_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("imdb-tiny")
    recipe = load_recipe(REPO / "configs" / "imdb_tiny.yaml", IMDB_QUICK)
    train(recipe, output_dir, data_dir="sample")
    return output_dir


@pytest.fixture(scope="module")
def m30k_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("m30k-tiny")
    recipe = load_recipe(REPO / "configs" / "multi30k_tiny.yaml", M30K_QUICK)
    train(recipe, output_dir, data_dir="sample")
    return output_dir


@pytest.mark.slow
def test_imdb_slice_training_beats_chance_and_writes_a_full_run(imdb_run):
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "recipe.yaml",
        "README.md",
        "all_results.json",
        "train_results.json",
        "eval_results.json",
        "test_results.json",
    ):
        assert (imdb_run / name).is_file(), name
    results = json.loads((imdb_run / "test_results.json").read_text())
    assert results["test_accuracy"] > 0.65, results
    assert results["test_examples"] == 1000
    card = (imdb_run / "README.md").read_text()
    assert f"{results['test_accuracy']}" in card
    assert "max_train_samples: 2500" in (imdb_run / "recipe.yaml").read_text()
    # the best checkpoint (by validation accuracy) was kept and loaded at the end
    state = json.loads(next(imdb_run.glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["best_metric"] is not None


@pytest.mark.slow
def test_evaluate_cli_reproduces_the_training_test_accuracy(imdb_run, tmp_path, capsys):
    out = tmp_path / "test.json"
    code = cli_main(["evaluate", str(imdb_run), "--data-dir", "sample", "--split", "test", "--json", str(out)])
    assert code == 0
    metrics = json.loads(out.read_text())
    trained = json.loads((imdb_run / "test_results.json").read_text())
    assert metrics["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-9)
    assert metrics["examples"] == 1000 and metrics["peak_rss_mb"] > 0


@pytest.mark.slow
def test_classify_cli_and_pipeline_on_the_trained_model(imdb_run, capsys):
    assert cli_main(["classify", str(imdb_run), "A wonderful, moving film.", ""]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["label"] in ("neg", "pos") for line in lines] == [True, True]
    classifier = pipeline("text-classification", model=str(imdb_run))
    assert classifier("This was a terrible, boring waste of time.")[0]["label"] == "neg"


@pytest.mark.slow
def test_multi30k_slice_training_gives_bleu_above_zero(m30k_run):
    results = json.loads((m30k_run / "test_results.json").read_text())
    assert results["test_bleu"] > 1.0, results
    assert results["test_examples"] == 300


@pytest.mark.slow
def test_training_bleu_is_scored_on_the_raw_references(m30k_run):
    """The run's test BLEU equals sacreBLEU of the same greedy translations against the reference strings as they
    are in the data (as `hf-rnn evaluate` scores), not against references tokenized and decoded again."""
    from hf_rnn.data import load_task_splits
    from hf_rnn.metrics import translation_metrics
    from hf_rnn.translation import generate_translations

    recipe = load_recipe(m30k_run / "recipe.yaml")
    pairs = load_task_splits(recipe.data, "sample", ["translation"])["test"]["translation"]
    tokenizer = AutoTokenizer.from_pretrained(m30k_run)
    model = AutoModelForSeq2SeqLM.from_pretrained(m30k_run).eval()
    sources, references = [pair["de"] for pair in pairs], [pair["en"] for pair in pairs]
    hypotheses = generate_translations(model, tokenizer, sources, num_beams=1, max_new_tokens=60, progress=False)
    results = json.loads((m30k_run / "test_results.json").read_text())
    assert results["test_bleu"] == translation_metrics(hypotheses, references)["bleu"]


@pytest.mark.slow
def test_translation_training_steps_skip_the_full_vocabulary_logits(tmp_path, monkeypatch):
    """Training steps read the loss only: the Trainer asks for logits over the output tokens; evaluation does not."""
    forward = RnnSeq2SeqForConditionalGeneration.forward
    calls = []

    @functools.wraps(forward)  # the Trainer keeps the dataset columns that the signature names
    def recording_forward(self, *args, **kwargs):
        outputs = forward(self, *args, **kwargs)
        calls.append((self.training, kwargs.get("full_vocabulary_logits", True), outputs.logits.shape[-1]))
        return outputs

    monkeypatch.setattr(RnnSeq2SeqForConditionalGeneration, "forward", recording_forward)
    overrides = ["training.max_steps=2", "training.eval_strategy=no", "training.save_strategy=no"]
    overrides += ["training.load_best_model_at_end=false", "data.max_test_samples=8"]
    train(load_recipe(REPO / "configs" / "multi30k_tiny.yaml", overrides), tmp_path / "run", data_dir="sample")
    config = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "run").config
    training_calls = [call for call in calls if call[0]]
    assert len(training_calls) == 2
    assert all(call == (True, False, len(config.target_token_ids)) for call in training_calls)
    assert all(call[1:] == (True, config.vocab_size) for call in calls if not call[0])


def test_translation_metrics_use_the_references_over_labels_that_lost_words(m30k_run):
    """Labels truncated at `model_max_length` decode to shortened references; the raw strings are scored instead."""
    from transformers import EvalPrediction

    from hf_rnn.metrics import translation_metrics
    from hf_rnn.tasks import TranslationMetrics

    tokenizer = AutoTokenizer.from_pretrained(m30k_run, model_max_length=6)
    references = ["A man in a blue shirt is standing on a ladder.", "Two dogs run through the tall green grass."]
    hypotheses = ["A man in a blue shirt stands on a ladder.", "Two dogs run in the grass."]
    labels = tokenizer(text_target=references, truncation=True, padding=True)["input_ids"]
    predictions = tokenizer(text_target=hypotheses, padding=True)["input_ids"]
    metrics = TranslationMetrics(tokenizer)
    metrics.references = references
    scores = metrics(EvalPrediction(predictions=np.array(predictions), label_ids=np.array(labels)))
    assert scores["bleu"] == translation_metrics(hypotheses, references)["bleu"]
    metrics.references = None  # the old way: the truncated labels, decoded
    assert (
        metrics(EvalPrediction(predictions=np.array(predictions), label_ids=np.array(labels)))["bleu"] != scores["bleu"]
    )


@pytest.mark.slow
def test_translation_output_layer_covers_the_training_targets_only(m30k_run):
    """The joint vocabulary holds source-only tokens; the saved model never scores them (RnnSeq2SeqConfig)."""
    from datasets import load_dataset

    config = json.loads((m30k_run / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(m30k_run)
    allowed = set(config["target_token_ids"])
    assert set(tokenizer.all_special_ids) <= allowed and len(allowed) < config["vocab_size"]
    train_pairs = load_dataset("parquet", data_files=str(REPO / "hf_rnn/sample_data/multi30k/train.parquet"))["train"]
    targets = tokenizer(text_target=[pair["en"] for pair in train_pairs["translation"]])["input_ids"]
    assert set().union(*targets) <= allowed
    sources = tokenizer([pair["de"] for pair in train_pairs["translation"]])["input_ids"]
    assert set().union(*sources) - allowed, "German-only tokens should exist in the joint vocabulary"
    model = AutoModelForSeq2SeqLM.from_pretrained(m30k_run)
    assert model.config.target_token_ids == config["target_token_ids"]


@pytest.mark.slow
def test_translation_pipeline_generate_and_heatmap(m30k_run, tmp_path, capsys):
    tokenizer = AutoTokenizer.from_pretrained(m30k_run)
    model = AutoModelForSeq2SeqLM.from_pretrained(m30k_run)
    batch = tokenizer(["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."], return_tensors="pt", padding=True)
    outputs = tokenizer.batch_decode(model.generate(**batch, num_beams=5, max_new_tokens=30), skip_special_tokens=True)
    assert len(outputs) == 2 and all(text.strip() for text in outputs)
    translator = pipeline("rnn-translation", model=str(m30k_run))
    results = translator(["Ein Hund läuft.", "", "Ein " * 500], num_beams=3, max_new_tokens=20)
    assert [len(r) for r in results] == [1, 1, 1]
    assert results[1][0]["translation_text"] == ""
    heatmap = tmp_path / "attention.png"
    code = cli_main(["translate", str(m30k_run), "Ein Hund läuft über die Wiese.", "--plot-attention", str(heatmap)])
    assert code == 0
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
def test_newstest_evaluation_path(m30k_run, tmp_path):
    out = tmp_path / "wmt.json"
    code = cli_main(
        [
            "evaluate",
            str(m30k_run),
            "--data-dir",
            "sample",
            "--dataset",
            "wmt14",
            "--split",
            "newstest2014",
            "--num-beams",
            "2",
            "--max-samples",
            "40",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["examples"] == 40 and metrics["bleu"] >= 0
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


@pytest.mark.slow
def test_evaluate_on_a_bentrevett_shaped_folder(m30k_run, tmp_path):
    """`hf-rnn evaluate --dataset <folder>` with flat `en`/`de` jsonl columns, as `bentrevett/multi30k` has them."""
    folder = multi30k_layout(tmp_path / "multi30k")
    out = tmp_path / "m30k.json"
    arguments = ["evaluate", str(m30k_run), "--dataset", str(folder), "--max-samples", "30"]
    assert cli_main([*arguments, "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["examples"] == 30 and metrics["dataset"] == str(folder) and metrics["bleu"] > 0
    # Without --num-beams / --max-new-tokens: the recipe's settings saved in generation_config (before: beam 5, 100).
    assert (metrics["num_beams"], metrics["max_new_tokens"]) == (1, 60)
    # Each of the 30 hypotheses generated between 1 and 60 tokens; the rate is per second of the same timing.
    assert 30 <= metrics["generated_tokens"] <= 30 * 60 and 0 <= metrics["hypotheses_at_length_limit"] <= 30
    # The JSON keeps the seconds to the millisecond: the rate lies between the rates at either end of that rounding.
    tokens, seconds = metrics["generated_tokens"], metrics["generation_seconds"]
    assert tokens / (seconds + 5e-4) - 0.1 <= metrics["generation_tokens_per_second"] <= tokens / (seconds - 5e-4) + 0.1


@pytest.mark.slow
def test_evaluate_scores_data_files_given_by_path(m30k_run, tmp_path, capsys):
    """`hf-rnn evaluate RUN --data-files FILE`: any local file in a translation shape, e.g. another newstest year."""
    newstest = REPO / "hf_rnn" / "sample_data" / "wmt-newstest" / "newstest2014.parquet"
    out = tmp_path / "newstest.json"
    arguments = ["evaluate", str(m30k_run), "--data-files", str(newstest), "--max-samples", "12", "--json", str(out)]
    assert cli_main(arguments) == 0
    metrics = json.loads(out.read_text())
    assert (metrics["examples"], metrics["split"], metrics["dataset"]) == (12, "files", str(newstest))
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed") and metrics["generated_tokens"] > 0
    assert cli_main(["evaluate", str(m30k_run), "--data-files", str(tmp_path / "absent.parquet")]) == 2
    assert "data file(s) not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "named_key"),
    [("model.cell_type=transformer", "cell_type"), ("training.warmup_ratio=0.1", "warmup_ratio")],
)
def test_cli_reports_bad_recipes_without_a_traceback(capsys, override, named_key):
    recipe = str(REPO / "configs" / "imdb_tiny.yaml")
    code = cli_main(["train", recipe, "--output-dir", "/tmp/never", "--set", override, "--data-dir", "sample"])
    assert code == 2
    assert named_key in capsys.readouterr().err


def test_cli_offline_without_local_data_fails_fast(capsys):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_RNN_DATA_DIR", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_rnn",
            "train",
            str(REPO / "configs" / "imdb_tiny.yaml"),
            "--output-dir",
            "/tmp/never",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "offline" in result.stderr and "--data-dir" in result.stderr


@pytest.mark.slow
def test_two_process_ddp_launch(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on CPU starts 2 gloo ranks (see the README)."""
    output_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(REPO / "scripts" / "train.py"),
        str(REPO / "configs" / "imdb_tiny.yaml"),
        "--output-dir",
        str(output_dir),
        "--data-dir",
        "sample",
        "--set",
        "training.num_train_epochs=1",
        "--set",
        "training.threads=1",
        "--set",
        "data.max_train_samples=400",
        "--set",
        "data.max_test_samples=100",
        "--set",
        "tokenizer.model_max_length=64",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-12000:]  # the ranks' tracebacks come before the launcher's summary
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["world_size"] == 2
    assert results["test_examples"] == 100


@pytest.mark.slow
def test_two_process_ddp_token_batched_run_resumes_from_its_checkpoint(tmp_path):
    """The WMT-style path under DDP (token batches, step schedule, step checkpoints): a run stopped at step 4 resumes
    from its checkpoint with both ranks and finishes at step 8."""
    output_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += [str(REPO / "scripts" / "train.py"), str(REPO / "configs" / "multi30k_tiny.yaml")]
    launch += ["--output-dir", str(output_dir), "--data-dir", "sample"]
    settings = [
        *TINY_M30K,
        "training.max_tokens_per_batch=1500",
        "training.save_strategy=steps",
        "training.save_steps=4",
        "training.eval_strategy=steps",
        "training.eval_steps=4",
        "training.logging_steps=1",
        "training.load_best_model_at_end=false",
    ]
    for max_steps, resume in ((4, []), (8, ["--resume"])):
        overrides = [part for item in [*settings, f"training.max_steps={max_steps}"] for part in ("--set", item)]
        result = subprocess.run(launch + overrides + resume, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, result.stderr[-12000:]
        state = json.loads((output_dir / "trainer_state.json").read_text())
        assert state["global_step"] == max_steps
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == list(range(1, 9))  # steps 1-4 from the first run's checkpoint, 5-8 after the resume
    assert json.loads((output_dir / "all_results.json").read_text())["world_size"] == 2

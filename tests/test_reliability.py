"""Reliability (issue 6): bad text input, bad files, offline machines and untrusted pickles.

Tiny random models with tiny tokenizers learned on the bundled sample: what is tested is that every input gets
an answer and every bad file a one-line error, not the quality of the answers. Interrupted training, resuming and
determinism live in `test_resume.py`.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, pipeline

import hf_rnn
from hf_rnn.checkpoints import (
    CheckpointError,
    checkpoint_problem,
    latest_complete_checkpoint,
    resolve_resume_checkpoint,
)
from hf_rnn.commands import main as cli_main
from hf_rnn.data import DataConfig, DataError, load_task_splits
from hf_rnn.loading import ModelLoadError, load_model
from hf_rnn.recipe import load_recipe
from hf_rnn.tasks import task_adapter
from hf_rnn.tokenization import TokenizerConfig, clean_text, train_tokenizer
from hf_rnn.training import train

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

REPO = Path(__file__).resolve().parent.parent
MAX_LENGTH = 32

# One of each kind of awkward input; a batch mixing all of them must give one answer per item.
AWKWARD_TEXTS = [
    "",
    "   \t\n ",
    "A wonderful film. " * 5600,  # about 100,000 characters
    "x" * 100_000,  # one 100,000-character "word"
    "😀🎉👍🏽 日本語のレビュー العربية עברית हिन्दी",
    "\x00\x01\x02 NUL and control \x7f\x1b[31m characters",
    "\u200b\ufeff\u202e",  # zero-width and bidi marks only
    "invalid utf-8 \udcff\udcfe from surrogateescape",
    "a",
]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A random 2-class `rnn_classifier` with a 500-token WordPiece learned on 300 sample reviews."""
    directory = tmp_path_factory.mktemp("tiny-classifier")
    splits = load_task_splits(DataConfig(validation_size=10, max_train_samples=300), "sample", ["text", "label"])
    tokenizer = train_tokenizer(splits["train"]["text"], TokenizerConfig(vocab_size=500, model_max_length=MAX_LENGTH))
    config = hf_rnn.RnnClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        embedding_size=8,
        hidden_size=8,
        id2label={0: "neg", 1: "pos"},
        label2id={"neg": 0, "pos": 1},
    )
    torch.manual_seed(0)
    hf_rnn.RnnForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def translator_dir(tmp_path_factory) -> Path:
    """A random GRU encoder-decoder with a 300-token joint BPE learned on 300 sample Multi30k pairs."""
    directory = tmp_path_factory.mktemp("tiny-translator")
    data = DataConfig(local_name="multi30k", validation_split="validation", max_train_samples=300)
    splits = load_task_splits(data, "sample", ["translation"])
    texts = task_adapter("translation").tokenizer_texts(splits["train"], data)
    tokenizer = train_tokenizer(
        texts, TokenizerConfig(model="bpe", vocab_size=300, lowercase=False, strip_html=False, model_max_length=16)
    )
    config = hf_rnn.RnnSeq2SeqConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
        embedding_size=8,
        hidden_size=8,
        cell_type="gru",
    )
    torch.manual_seed(0)
    model = hf_rnn.RnnSeq2SeqForConditionalGeneration(config)
    model.generation_config.max_new_tokens = 6
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def classifier_pipeline(classifier_dir):
    return pipeline("text-classification", model=str(classifier_dir), truncation=True)


@pytest.fixture(scope="module")
def translation_pipeline(translator_dir):
    return pipeline("rnn-translation", model=str(translator_dir))


def copy_model(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    """Exit code 2, a single `hf-rnn ...: error: ...` line naming every fragment, no traceback."""
    assert code == 2
    lines = [line for line in stderr.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hf-rnn ") and "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --- 1. bad text input ------------------------------------------------------------------------------------


def test_clean_text_replaces_lone_surrogates_and_none():
    assert clean_text(None) == ""
    assert clean_text("ok ☃") == "ok ☃"
    cleaned = clean_text("a\udcffb")
    cleaned.encode("utf-8")  # encodable now
    assert cleaned == "a\ufffdb"  # one replacement per undecodable byte
    assert clean_text("caf\udcc3\udca9") == "café"  # UTF-8 bytes split by surrogateescape come back whole
    assert clean_text("x\ud800y").encode("utf-8")  # any other lone surrogate is replaced too
    with pytest.raises(TypeError, match="strings"):
        clean_text(3)


def test_classifier_pipeline_answers_every_awkward_input(classifier_pipeline):
    texts = [clean_text(text) for text in AWKWARD_TEXTS]  # the HF pipeline itself refuses lone surrogates
    results = classifier_pipeline(texts)
    assert len(results) == len(texts)
    for result in results:
        assert result["label"] in ("neg", "pos") and 0.0 <= result["score"] <= 1.0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(max_size=300), min_size=1, max_size=5))
def test_classifier_pipeline_returns_one_result_per_input(classifier_pipeline, texts):
    results = classifier_pipeline(texts)
    assert len(results) == len(texts)
    assert all(r["label"] in ("neg", "pos") and math.isfinite(r["score"]) for r in results)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.text(alphabet=st.characters(exclude_categories=()), max_size=200), min_size=1, max_size=4),
    num_beams=st.sampled_from([1, 2]),
)
def test_translation_pipeline_returns_one_result_per_input(translation_pipeline, texts, num_beams):
    """Arbitrary code points, lone surrogates included (the pipeline cleans them)."""
    results = translation_pipeline(texts, num_beams=num_beams, max_new_tokens=4)
    assert len(results) == len(texts)
    for text, result in zip(texts, results):
        assert len(result) == 1 and isinstance(result[0]["translation_text"], str)
        if not text.strip():
            assert result[0]["translation_text"] == ""


def test_translation_pipeline_warns_when_it_truncates(translation_pipeline, caplog):
    with caplog.at_level("WARNING", logger="hf_rnn.models.rnn_seq2seq.modeling_rnn_seq2seq"):
        results = translation_pipeline(AWKWARD_TEXTS, max_new_tokens=4)
    assert len(results) == len(AWKWARD_TEXTS)
    assert [r[0]["translation_text"] for r in results[:2]] == ["", ""]
    assert any("truncated to model_max_length=16" in record.message for record in caplog.records)


def test_generate_on_a_mixed_batch_matches_one_by_one(translator_dir):
    """Padding never leaks between rows: each row of a mixed batch decodes as it would alone."""
    from hf_rnn.loading import load_tokenizer

    tokenizer = load_tokenizer(translator_dir)
    model = load_model(translator_dir, AutoModelForSeq2SeqLM)
    texts = [clean_text(text) for text in AWKWARD_TEXTS]
    batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] <= tokenizer.model_max_length
    for num_beams in (1, 3):
        together = model.generate(**batch, num_beams=num_beams, max_new_tokens=5)
        decoded = tokenizer.batch_decode(together, skip_special_tokens=True)
        alone = [
            tokenizer.batch_decode(
                model.generate(
                    **tokenizer([text], truncation=True, return_tensors="pt"), num_beams=num_beams, max_new_tokens=5
                ),
                skip_special_tokens=True,
            )[0]
            for text in texts
        ]
        assert decoded == alone


def test_classify_cli_answers_every_line_and_flags_truncation(classifier_dir, capsys):
    assert cli_main(["classify", str(classifier_dir), *AWKWARD_TEXTS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == len(AWKWARD_TEXTS)
    assert all(line["label"] in ("neg", "pos") for line in lines)
    truncated = [line["truncated"] for line in lines]
    assert truncated[2] is True and truncated[0] is False and truncated[-1] is False


@pytest.mark.slow
def test_classify_cli_takes_invalid_utf8_bytes_from_argv_and_stdin(classifier_dir):
    """Python hands undecodable bytes over as lone surrogates (`surrogateescape`); they become U+FFFD."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "hf_rnn", "classify", str(classifier_dir)]
    from_argv = subprocess.run([*command, b"bad \xff\xfe bytes", ""], capture_output=True, env=env, timeout=120)
    from_stdin = subprocess.run(command, input=b"fine\n\xff\xfe\x00\n\n", capture_output=True, env=env, timeout=120)
    for result, count in ((from_argv, 2), (from_stdin, 3)):
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        lines = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
        assert len(lines) == count and all(line["label"] in ("neg", "pos") for line in lines)
    assert json.loads(from_argv.stdout.decode().splitlines()[0])["text"] == "bad \ufffd\ufffd bytes"


def test_translate_cli_answers_every_line(translator_dir, capsys):
    assert (
        cli_main(["translate", str(translator_dir), *AWKWARD_TEXTS, "--num-beams", "2", "--max-new-tokens", "4"]) == 0
    )
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == len(AWKWARD_TEXTS) + 1  # one line each (and the final newline)
    assert lines[:2] == ["", ""]  # empty and whitespace-only sources translate to "", as in the pipeline


def write_parquet(directory: Path, name: str, split: str, table: pa.Table) -> None:
    (directory / name).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / name / f"{split}.parquet")


def test_evaluate_cli_on_awkward_data_counts_truncation(classifier_dir, tmp_path):
    texts = [*AWKWARD_TEXTS[:-2], None, "fine"]  # a null text too
    write_parquet(tmp_path, "imdb", "test", pa.table({"text": texts, "label": [i % 2 for i in range(len(texts))]}))
    out = tmp_path / "metrics.json"
    code = cli_main(["evaluate", str(classifier_dir), "--data-dir", str(tmp_path), "--json", str(out)])
    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["examples"] == len(texts) and 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["truncated_inputs"] >= 1


def test_evaluate_cli_refuses_labels_the_model_does_not_have(classifier_dir, tmp_path, capsys):
    write_parquet(tmp_path, "imdb", "test", pa.table({"text": ["good", "bad", "meh"], "label": [1, 0, 2]}))
    code = cli_main(["evaluate", str(classifier_dir), "--data-dir", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "'label'", "outside the model's 2 classes", "row 2: 2")


def test_evaluate_cli_translation_on_awkward_data(translator_dir, tmp_path):
    pairs = [{"de": clean_text(text), "en": "A reference."} for text in AWKWARD_TEXTS]  # parquet holds valid UTF-8
    write_parquet(tmp_path, "multi30k", "test", pa.table({"translation": pairs}))
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(translator_dir), "--dataset", "multi30k", "--data-dir", str(tmp_path), "--json", str(out)]
    assert cli_main([*args, "--num-beams", "2", "--max-new-tokens", "4"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["examples"] == len(AWKWARD_TEXTS) and metrics["truncated_inputs"] >= 2


# --- 2. bad configs and files -----------------------------------------------------------------------------


def imdb_like(directory: Path, train_labels: list, test_labels: list) -> Path:
    texts = ["good film", "bad film", "great acting", "awful plot"]
    write_parquet(directory, "imdb", "train", pa.table({"text": texts * 5, "label": train_labels}))
    write_parquet(directory, "imdb", "test", pa.table({"text": texts[: len(test_labels)], "label": test_labels}))
    return directory


@pytest.mark.parametrize(
    ("train_labels", "test_labels", "message"),
    [
        ([0, 1] * 10, [0, 1, 2, 1], r"label column 'label' of split 'test' has 1 value\(s\) outside \[0, 2\)"),
        ([0, 1] * 10, [0, -1, 1, 1], r"split 'test' has 1 value\(s\) outside \[0, 2\) \(row 1: -1\)"),
        (["neg", "pos"] * 10, ["neg", "pos"], r"label column 'label' of split 'train' must hold integer class ids"),
        ([0, 1] * 9 + [None, 1], [0, 1], r"label column 'label' of split 'train' has 1 empty \(null\)"),
    ],
)
def test_bad_labels_fail_before_training_naming_the_column(tmp_path, train_labels, test_labels, message):
    data_dir = imdb_like(tmp_path / "data", train_labels, test_labels)
    recipe = load_recipe(REPO / "configs" / "imdb_tiny.yaml", ["data.validation_size=4"])
    started = time.perf_counter()
    with pytest.raises(DataError, match=message):
        train(recipe, tmp_path / "run", data_dir=data_dir)
    assert time.perf_counter() - started < 5
    assert not (tmp_path / "run" / "tokenizer.json").exists()  # failed before learning the tokenizer


def test_bad_labels_give_a_one_line_cli_error(tmp_path, capsys):
    data_dir = imdb_like(tmp_path / "data", [0, 1] * 10, [0, 1, 7, 1])
    code = cli_main(
        ["train", str(REPO / "configs" / "imdb_tiny.yaml"), "--output-dir", str(tmp_path / "run")]
        + ["--data-dir", str(data_dir), "--set", "data.validation_size=4"]
    )
    assert_one_line_error(code, capsys.readouterr().err, "'label'", "outside [0, 2)")


def test_translation_direction_missing_from_the_data_fails_early(tmp_path):
    pairs = [{"de": "Ein Hund.", "en": "A dog."}] * 8
    for split in ("train", "validation", "test"):
        write_parquet(tmp_path / "data", "multi30k", split, pa.table({"translation": pairs}))
    recipe = load_recipe(REPO / "configs" / "multi30k_tiny.yaml", ["data.target_lang=fr"])
    with pytest.raises(DataError, match=r"has languages \['de', 'en'\], not \['fr'\]"):
        train(recipe, tmp_path / "run", data_dir=tmp_path / "data")


def truncate_file(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


BROKEN_MODEL_DIRS = {
    "truncated weights": (
        lambda d: truncate_file(d / "model.safetensors"),
        "model.safetensors is corrupt or truncated",
    ),
    "garbage weights": (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64), "model.safetensors is corrupt"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
    "no config": (lambda d: (d / "config.json").unlink(), "has no config.json"),
    "corrupt config": (lambda d: (d / "config.json").write_text('{"model_type": '), "config.json is not valid JSON"),
    "no tokenizer": (lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer.json"),
}


@pytest.mark.parametrize("command", ["evaluate", "classify", "translate"])
@pytest.mark.parametrize("damage", sorted(BROKEN_MODEL_DIRS))
def test_broken_model_dirs_give_a_one_line_cli_error(classifier_dir, translator_dir, tmp_path, capsys, command, damage):
    source = translator_dir if command == "translate" else classifier_dir
    model_dir = copy_model(source, tmp_path / "model")
    breaker, message = BROKEN_MODEL_DIRS[damage]
    breaker(model_dir)
    extra = ["--data-dir", "sample", "--max-samples", "4"] if command == "evaluate" else ["some text"]
    code = cli_main([command, str(model_dir), *extra])
    assert_one_line_error(code, capsys.readouterr().err, message)


def test_wrong_model_family_gives_a_one_line_cli_error(classifier_dir, capsys):
    code = cli_main(["translate", str(classifier_dir), "Ein Hund."])
    assert_one_line_error(code, capsys.readouterr().err, "cannot load the model")


def test_a_file_or_a_missing_path_is_named(tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert_one_line_error(
        cli_main(["classify", str(tmp_path / "model.safetensors"), "x"]), capsys.readouterr().err, "is a file"
    )
    assert_one_line_error(
        cli_main(["classify", str(tmp_path / "no" / "such" / "dir"), "x"]), capsys.readouterr().err, "does not exist"
    )


# --- 3. interrupted training: choosing the checkpoint --------------------------------------------------------


def fake_checkpoint(classifier_dir: Path, folder: Path) -> Path:
    """A checkpoint folder with the files `Trainer._save_checkpoint` writes (small stand-ins for the states)."""
    copy_model(classifier_dir, folder)
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")
    torch.save({"last_epoch": 1}, folder / "scheduler.pt")
    torch.save({"cpu": torch.random.get_rng_state()}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": int(folder.name.split("-")[1])}))
    return folder


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d: (d / "trainer_state.json").unlink(), "trainer_state.json is missing"),
        (lambda d: truncate_file(d / "trainer_state.json"), "trainer_state.json is not valid JSON"),
        (lambda d: truncate_file(d / "model.safetensors", 0.9), "model.safetensors is corrupt or truncated"),
        (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
        (lambda d: truncate_file(d / "optimizer.pt", 0.9), "optimizer.pt is corrupt or truncated"),
        (lambda d: truncate_file(d / "rng_state.pth", 0.5), "rng_state.pth is corrupt or truncated"),
    ],
)
def test_resume_skips_an_incomplete_newest_checkpoint(classifier_dir, tmp_path, damage, problem, caplog):
    older = fake_checkpoint(classifier_dir, tmp_path / "checkpoint-8")
    newest = fake_checkpoint(classifier_dir, tmp_path / "checkpoint-12")
    assert checkpoint_problem(newest) is None
    damage(newest)
    assert checkpoint_problem(newest).startswith(problem)
    with caplog.at_level("WARNING", logger="hf_rnn.checkpoints"):
        assert resolve_resume_checkpoint(True, tmp_path) == str(older)
    assert any("skipping incomplete checkpoint" in record.message for record in caplog.records)
    with pytest.raises(CheckpointError, match="incomplete"):
        resolve_resume_checkpoint(str(newest), tmp_path)


def test_checkpoints_are_ordered_by_step_not_by_name(classifier_dir, tmp_path):
    fake_checkpoint(classifier_dir, tmp_path / "checkpoint-9")
    fake_checkpoint(classifier_dir, tmp_path / "checkpoint-10")
    (tmp_path / "checkpoint-11-notes").mkdir()
    assert latest_complete_checkpoint(tmp_path).name == "checkpoint-10"


def test_resume_without_a_checkpoint_is_a_clear_cli_error(tmp_path, capsys):
    base = ["train", str(REPO / "configs" / "imdb_tiny.yaml"), "--data-dir", "sample"]
    code = cli_main([*base, "--output-dir", str(tmp_path / "fresh"), "--resume"])
    assert_one_line_error(code, capsys.readouterr().err, "--resume: no complete checkpoint-N folder", "found none")
    (tmp_path / "broken" / "checkpoint-4").mkdir(parents=True)
    code = cli_main([*base, "--output-dir", str(tmp_path / "broken"), "--resume"])
    assert_one_line_error(code, capsys.readouterr().err, "only incomplete ones (checkpoint-4)")
    code = cli_main([*base, "--output-dir", str(tmp_path / "x"), "--resume", str(tmp_path / "nowhere")])
    assert_one_line_error(code, capsys.readouterr().err, "no such checkpoint directory")


# --- 5. offline -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["evaluate", "classify", "translate"])
def test_hub_id_offline_fails_fast_with_advice(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # so the id is not a local folder by accident
    extra = ["--data-dir", "sample"] if command == "evaluate" else ["some text"]
    started = time.perf_counter()
    code = cli_main([command, "someone/rnn-that-is-not-here", *extra])
    assert time.perf_counter() - started < 3
    assert_one_line_error(code, capsys.readouterr().err, "offline", "Pass the path of a saved model directory")


def test_unreachable_hub_without_offline_variables_fails_fast(monkeypatch, capsys):
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match="offline"):
        load_model("someone/rnn-that-is-not-here", AutoModelForSequenceClassification)
    assert time.perf_counter() - started < 5


def test_push_to_hub_repo_offline_fails_before_loading_anything(tmp_path):
    recipe = load_recipe(REPO / "configs" / "imdb_tiny.yaml", ["training.push_to_hub_repo=someone/tiny"])
    with pytest.raises(ValueError, match="push_to_hub_repo.*offline"):
        train(recipe, tmp_path / "run", data_dir="sample")
    assert not (tmp_path / "run").exists()


def test_trainer_push_to_hub_is_refused_for_the_one_publishing_path(tmp_path):
    recipe = load_recipe(REPO / "configs" / "imdb_tiny.yaml", ["training.push_to_hub=true"])
    with pytest.raises(ValueError, match="push_to_hub_repo"):
        train(recipe, tmp_path / "run", data_dir="sample")


# --- 6. untrusted files -----------------------------------------------------------------------------------


class Payload:
    """Unpickling this runs `exec`, which writes `marker`: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pickle executed')",))


def plant_pickles(directory: Path, marker: Path) -> None:
    for name in ("pytorch_model.bin", "training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"weight": Payload(marker)}, directory / name)


@pytest.fixture
def live_marker(tmp_path) -> Path:
    """A marker path, after proving that the planted payload really executes when unpickled."""
    marker = tmp_path / "PWNED"
    probe = tmp_path / "probe.bin"
    torch.save({"weight": Payload(marker)}, probe)
    torch.load(probe, weights_only=False)  # the unsafe way, on purpose
    assert marker.read_text() == "pickle executed"
    marker.unlink()
    return marker


def test_pickles_beside_safetensors_are_never_executed(classifier_dir, translator_dir, tmp_path, live_marker, capsys):
    model_dir = copy_model(classifier_dir, tmp_path / "model")
    plant_pickles(model_dir, live_marker)
    assert cli_main(["evaluate", str(model_dir), "--data-dir", "sample", "--max-samples", "8"]) == 0
    assert cli_main(["classify", str(model_dir), "a film"]) == 0
    load_model(model_dir, AutoModelForSequenceClassification)
    AutoModelForSequenceClassification.from_pretrained(model_dir)  # transformers' defaults
    pipeline("text-classification", model=str(model_dir))("a film")
    translator = copy_model(translator_dir, tmp_path / "translator")
    plant_pickles(translator, live_marker)
    pipeline("rnn-translation", model=str(translator))("Ein Hund.")
    assert cli_main(["translate", str(translator), "Ein Hund."]) == 0
    assert not live_marker.exists()


def test_pickled_weights_alone_are_refused_not_executed(classifier_dir, tmp_path, live_marker, capsys):
    model_dir = copy_model(classifier_dir, tmp_path / "model")
    (model_dir / "model.safetensors").unlink()
    plant_pickles(model_dir, live_marker)
    code = cli_main(["evaluate", str(model_dir), "--data-dir", "sample"])
    assert_one_line_error(code, capsys.readouterr().err, "does not load pickled weights", "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickled"):
        load_model(model_dir, AutoModelForSequenceClassification)
    # Plain transformers 5 falls back to torch.load(weights_only=True), whose unpickler refuses `exec`.
    with pytest.raises(Exception, match="(?i)weights_only|unpickl|unsupported global"):
        pipeline("text-classification", model=str(model_dir))
    assert not live_marker.exists()


# Files allowed to unpickle, and why: never a file from a model directory.
TRUSTED_UNPICKLING = {
    "hf_rnn/lab/benchmark.py": "its DDP workers read the payload the benchmark itself wrote to a temporary folder",
}


def test_hf_rnn_source_never_unpickles_model_files():
    """No `torch.load`, `pickle.load(s)` or `weights_only=False` in the package outside `TRUSTED_UNPICKLING`."""
    pattern = re.compile(r"torch\.load\(|pickle\.loads?\(|weights_only\s*=\s*False|joblib\.load")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "hf_rnn").rglob("*.py")
        if str(path.relative_to(REPO)) not in TRUSTED_UNPICKLING
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []

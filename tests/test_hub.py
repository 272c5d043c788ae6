"""Sharing models: remote code that loads without hf_rnn, honest model cards, `hf-rnn push` up to the HTTP
boundary (and for real when HF_TOKEN is set and the Hub is reachable), and hf_rnn's metrics through `evaluate`."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from helpers import run_without_hf_rnn
from huggingface_hub import HfApi, ModelCard
from transformers import (
    AutoModel,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    pipeline,
)
from transformers.dynamic_module_utils import get_imports

import hf_rnn
from hf_rnn import hub
from hf_rnn.commands import main as cli_main
from hf_rnn.evaluation import evaluate_model
from hf_rnn.metrics import classification_metrics, load_metric, translation_metrics
from hf_rnn.model_card import write_model_card
from hf_rnn.recipe import RecipeError, load_recipe
from hf_rnn.runs import Run, RunFileError
from hf_rnn.translation import generate_translations

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

REPO = Path(__file__).resolve().parent.parent
REVIEWS = ["A moving story, wonderfully acted.", "Dull and far too long; I left early.", "ok"]
SOURCES = ["Ein Hund läuft über eine grüne Wiese.", "Zwei Männer spielen Fußball.", "Hallo"]


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of a module-scoped run, for tests that change files in it."""
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


NO_HF_RNN = """
import importlib.util
assert importlib.util.find_spec("hf_rnn") is None, "hf_rnn must not be importable here"
"""


# ---------------------------------------------------------------------------------------------- remote code


SEQ2SEQ_AUTO_MAP = {
    "AutoConfig": "configuration_rnn_seq2seq.RnnSeq2SeqConfig",
    "AutoModel": "modeling_rnn_seq2seq.RnnSeq2SeqModel",
    "AutoModelForSeq2SeqLM": "modeling_rnn_seq2seq.RnnSeq2SeqForConditionalGeneration",
}


def assert_self_contained(folder: Path, code_files: list[str]) -> None:
    for name in code_files:
        path = folder / name
        # What transformers checks before running remote code: the standard library, torch and transformers
        # (whose dependency huggingface_hub provides the config's `strict`), never hf_rnn.
        third_party = set(get_imports(path)) - set(sys.stdlib_module_names)
        assert third_party <= {"torch", "transformers", "huggingface_hub"}, (path.name, third_party)
        relative = re.findall(r"^from \.(\w+) import", path.read_text(), flags=re.MULTILINE)
        assert all((folder / f"{module}.py").is_file() for module in relative)


def test_save_pretrained_writes_self_contained_code_every_auto_class_and_the_pipeline(tmp_path):
    """Before: only `hf-rnn train` / `hf-rnn push` wrote the code files; a Python `save_pretrained` did not."""
    config = hf_rnn.RnnSeq2SeqConfig(vocab_size=40, embedding_size=8, hidden_size=8, bos_token_id=2, eos_token_id=3)
    hf_rnn.RnnSeq2SeqForConditionalGeneration(config).save_pretrained(tmp_path / "seq2seq")
    saved = json.loads((tmp_path / "seq2seq" / "config.json").read_text())
    assert saved["auto_map"] == SEQ2SEQ_AUTO_MAP
    assert saved["custom_pipelines"]["translation"]["impl"] == "modeling_rnn_seq2seq.RnnTranslationPipeline"
    assert_self_contained(tmp_path / "seq2seq", ["configuration_rnn_seq2seq.py", "modeling_rnn_seq2seq.py"])

    classifier = hf_rnn.RnnClassifierModel(hf_rnn.RnnClassifierConfig(vocab_size=30, embedding_size=4, hidden_size=4))
    classifier.save_pretrained(tmp_path / "classifier")  # the headless model names every Auto class too
    saved = json.loads((tmp_path / "classifier" / "config.json").read_text())
    assert saved["auto_map"]["AutoModelForSequenceClassification"].endswith(".RnnForSequenceClassification")
    assert "custom_pipelines" not in saved
    assert_self_contained(tmp_path / "classifier", ["configuration_rnn_classifier.py", "modeling_rnn_classifier.py"])


def test_export_remote_code_refreshes_a_folder_saved_without_it(tmp_path):
    config = hf_rnn.RnnSeq2SeqConfig(vocab_size=40, embedding_size=8, hidden_size=8, bos_token_id=2, eos_token_id=3)
    hf_rnn.RnnSeq2SeqForConditionalGeneration(config).save_pretrained(tmp_path)
    for path in tmp_path.glob("*.py"):
        path.unlink()
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({key: saved[key] for key in saved if key != "auto_map"}))
    copied = hub.export_remote_code(tmp_path)
    assert sorted(path.name for path in copied) == ["configuration_rnn_seq2seq.py", "modeling_rnn_seq2seq.py"]
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == SEQ2SEQ_AUTO_MAP
    with pytest.raises(hub.HubError, match="model_type 'bert'"):
        (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
        hub.export_remote_code(tmp_path)


def test_with_hf_rnn_imported_trust_remote_code_still_uses_the_hf_rnn_classes(tmp_path):
    """A model type registered outside `transformers.` counts as local code, so the copied files stay unused."""
    config = hf_rnn.RnnClassifierConfig(vocab_size=30, embedding_size=4, hidden_size=4)
    hf_rnn.RnnForSequenceClassification(config).save_pretrained(tmp_path)
    hub.export_remote_code(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(model) is hf_rnn.RnnForSequenceClassification
    assert type(AutoModel.from_pretrained(tmp_path, trust_remote_code=True)) is hf_rnn.RnnClassifierModel


@pytest.mark.slow
def test_trained_runs_load_without_hf_rnn_and_match_in_process_outputs(classifier_run, seq2seq_run, tmp_path):
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(classifier_run)
    classifier = AutoModelForSequenceClassification.from_pretrained(classifier_run).eval()
    encoded = tokenizer(REVIEWS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = classifier(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
    tokenizer = AutoTokenizer.from_pretrained(seq2seq_run)
    translator = AutoModelForSeq2SeqLM.from_pretrained(seq2seq_run).eval()
    encoded = tokenizer(SOURCES, padding=True, truncation=True, return_tensors="pt")
    generated = translator.generate(
        input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], num_beams=3, max_new_tokens=15
    )

    remote = run_without_hf_rnn(
        NO_HF_RNN
        + f"""
import json, torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoTokenizer
torch.set_num_threads(1)
tokenizer = AutoTokenizer.from_pretrained({str(classifier_run)!r}, trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained({str(classifier_run)!r}, trust_remote_code=True).eval()
encoded = tokenizer({REVIEWS!r}, padding=True, truncation=True, return_tensors="pt")
with torch.no_grad():
    logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
classifier_module = type(model).__module__
tokenizer = AutoTokenizer.from_pretrained({str(seq2seq_run)!r}, trust_remote_code=True)
model = AutoModelForSeq2SeqLM.from_pretrained({str(seq2seq_run)!r}, trust_remote_code=True).eval()
encoded = tokenizer({SOURCES!r}, padding=True, truncation=True, return_tensors="pt")
generated = model.generate(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], num_beams=3,
                           max_new_tokens=15)
from transformers import pipeline
translator = pipeline("translation", model={str(seq2seq_run)!r}, trust_remote_code=True)
translations = translator({SOURCES!r}, num_beams=3, max_new_tokens=15)
print(json.dumps({{"logits": logits.tolist(), "generated": generated.tolist(), "input_ids": encoded["input_ids"].tolist(),
                  "modules": [classifier_module, type(model).__module__, type(translator).__module__],
                  "translations": [item[0]["translation_text"] for item in translations]}}))
""",
        tmp_path,
    )
    assert all(module.startswith("transformers_modules.") for module in remote["modules"]), remote["modules"]
    assert remote["logits"] == logits.tolist()  # exact: same code, weights and thread count
    assert remote["input_ids"] == encoded["input_ids"].tolist()
    assert remote["generated"] == generated.tolist()
    # Before: no `custom_pipelines`, and transformers 5 has no built-in translation pipeline.
    in_process = pipeline("rnn-translation", model=str(seq2seq_run))(SOURCES, num_beams=3, max_new_tokens=15)
    assert remote["translations"] == [item[0]["translation_text"] for item in in_process]


# ---------------------------------------------------------------------------------------------- model cards


def card_header(readme: Path) -> dict:
    return yaml.safe_load(readme.read_text(encoding="utf-8").split("---\n")[1])


def model_index_metrics(readme: Path) -> list[tuple[str, str, float, dict | None]]:
    """(dataset, metric type, value, args) for every model-index entry, read back by huggingface_hub."""
    return [
        (result.dataset_type, result.metric_type, result.metric_value, result.metric_args)
        for result in ModelCard.load(readme).data.eval_results
    ]


@pytest.mark.slow
def test_classifier_card_metadata_equals_test_results_and_states_the_run(classifier_run):
    readme = classifier_run / "README.md"
    test_results = json.loads((classifier_run / "test_results.json").read_text())
    assert model_index_metrics(readme) == [
        ("stanfordnlp/imdb", "accuracy", test_results["test_accuracy"], None),
        ("stanfordnlp/imdb", "f1", test_results["test_macro_f1"], {"average": "macro"}),
    ]
    header = card_header(readme)
    assert header["model-index"][0]["results"][0]["dataset"]["split"] == "test"
    assert header["library_name"] == "transformers" and header["pipeline_tag"] == "text-classification"
    # Before: no license, language or widget.
    assert (header["license"], header["language"], header["datasets"]) == ("apache-2.0", ["en"], ["stanfordnlp/imdb"])
    assert header["widget"][0]["text"].startswith("A moving story")
    card = readme.read_text()
    run_info = json.loads((classifier_run / "run_info.json").read_text())
    assert run_info["split_sizes"] == {"train": 300, "validation": 100, "test": 100}
    for fact in (
        "300 training examples",
        "100 validation",
        "bundled with hf_rnn",
        run_info["hardware"]["cpu"],
        "| torch threads per process | 1 |",
        f"{test_results['wall_time_s']} s",
        (classifier_run / "recipe.yaml").read_text().strip(),
        run_info["command"],
        "A wordpiece tokenizer",
        "800 tokens",
        "trust_remote_code=True",
    ):
        assert fact in card, fact


@pytest.mark.slow
def test_translation_card_reports_test_and_evaluate_results_with_signatures(seq2seq_run, tmp_path):
    run = copy_run(seq2seq_run, tmp_path)
    scores = evaluate_model(
        str(run), split="newstest2014", dataset="wmt14", data_dir="sample", max_samples=20, num_beams=1, threads=1
    )
    (run / "eval_newstest2014.json").write_text(json.dumps(scores))
    recipe = load_recipe(run / "recipe.yaml")
    results = json.loads((run / "all_results.json").read_text())
    readme = write_model_card(run, "rnn_seq2seq", recipe, results, repo_id="someone/m30k-tiny")

    test_results = json.loads((run / "test_results.json").read_text())
    signatures = translation_metrics(["."], ["."])
    assert model_index_metrics(readme) == [
        ("bentrevett/multi30k", "bleu", test_results["test_bleu"], {"signature": signatures["bleu_signature"]}),
        ("bentrevett/multi30k", "chrf", test_results["test_chrf"], {"signature": signatures["chrf_signature"]}),
        ("wmt/wmt14", "bleu", scores["bleu"], {"signature": scores["bleu_signature"]}),
        ("wmt/wmt14", "chrf", scores["chrf"], {"signature": scores["chrf_signature"]}),
    ]
    results_of_wmt = card_header(readme)["model-index"][0]["results"][1]["dataset"]
    assert results_of_wmt == {
        "name": "wmt/wmt14",
        "type": "wmt/wmt14",
        "config": "de-en",
        "split": "newstest2014",
        "args": {"examples": 20},  # a capped evaluation says how much of the split it scored
    }
    card = readme.read_text()
    header = card_header(readme)
    assert (header["language"], header["license"], header["pipeline_tag"]) == (
        ["de", "en"],
        "apache-2.0",
        "translation",
    )
    assert header["widget"] == [{"text": "Ein Hund läuft über eine grüne Wiese."}]
    assert '"someone/m30k-tiny"' in card and "| wmt/wmt14 | newstest2014 | 20 | sacreBLEU |" in card


@pytest.mark.slow
def test_card_states_the_seed_and_the_spread_over_seeds(classifier_run, tmp_path):
    runs = []
    for seed, accuracy in ((42, 0.81), (43, 0.79)):
        run = Path(shutil.copytree(classifier_run, tmp_path / f"run-{seed}"))
        recipe = yaml.safe_load((run / "recipe.yaml").read_text())
        recipe["training"]["seed"] = seed
        (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        results = json.loads((run / "test_results.json").read_text())
        (run / "test_results.json").write_text(json.dumps({**results, "test_accuracy": accuracy}))
        runs.append(run)
    script = REPO / "scripts" / "seed_summary.py"
    command = [
        sys.executable,
        str(script),
        "imdb",
        *map(str, runs),
        "--into-runs",
        "--output",
        str(tmp_path / "s.json"),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    summary = json.loads((tmp_path / "s.json").read_text())["summary"]["test_accuracy"]
    assert summary["mean"] == pytest.approx(0.80) and summary["std"] == pytest.approx(0.01414, abs=1e-5)
    card = (runs[1] / "README.md").read_text()
    assert "| training seed | 43 |" in card
    assert "trained with 2 seeds (42, 43; this model is seed\n43): test accuracy 0.8 ± 0.0141 (min 0.79," in card


@pytest.mark.slow
def test_card_usage_snippets_work_as_written(classifier_run, seq2seq_run, tmp_path, capsys):
    snippets = {}
    for run in (classifier_run, seq2seq_run):
        with_hf_rnn, without_hf_rnn = re.findall(r"```python\n(.*?)```", (run / "README.md").read_text(), re.DOTALL)
        assert "import hf_rnn" in with_hf_rnn and "trust_remote_code=True" in without_hf_rnn
        exec(compile(with_hf_rnn, f"{run.name}/README.md", "exec"), {})
        snippets[run.name] = without_hf_rnn
    printed = capsys.readouterr().out.strip().splitlines()
    assert re.match(r"\[\{'label': '(neg|pos)', 'score': ", printed[0]), printed
    assert printed[1].startswith("[{'translation_text': "), printed

    code = "\nimport contextlib, io, json\noutputs = []\n"
    for snippet in snippets.values():
        code += f"with contextlib.redirect_stdout(io.StringIO()) as out:\n    exec({snippet!r}, {{}})\n"
        code += "outputs.append(out.getvalue())\n"
    outputs = run_without_hf_rnn(NO_HF_RNN + code + "print(json.dumps(outputs))\n", tmp_path)
    assert re.match(r"\{'neg': [0-9.]+, 'pos': [0-9.]+\}", outputs[0]), outputs
    assert outputs[1].startswith("['"), outputs


def test_card_renders_when_run_info_is_missing(tmp_path):
    """A run made before run_info.json existed still gets a card; unknown facts say so."""
    config = hf_rnn.RnnClassifierConfig(vocab_size=30, embedding_size=4, hidden_size=4)
    hf_rnn.RnnForSequenceClassification(config).save_pretrained(tmp_path)
    recipe = load_recipe(REPO / "configs" / "imdb_tiny.yaml")
    results = {"test_accuracy": 0.5, "test_macro_f1": 0.25, "test_examples": 10, "eval_accuracy": 0.75}
    card = write_model_card(tmp_path, "rnn_classifier", recipe, results).read_text()
    assert "not recorded" in card and "| stanfordnlp/imdb | test | 10 | accuracy | 0.5 |" in card
    assert model_index_metrics(tmp_path / "README.md")[0][2] == 0.5


# ---------------------------------------------------------------------------------------------- push


@pytest.fixture
def hub_calls(monkeypatch) -> dict:
    """Patch the Hub's HTTP boundary: the Hub looks reachable, and repo/branch/commit calls are recorded."""
    calls: dict = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, **kwargs}
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_branch(self, repo_id, **kwargs):
        calls["create_branch"] = {"repo_id": repo_id, **kwargs}

    def create_commit(self, repo_id, operations, **kwargs):
        files = {}
        for operation in operations:
            with operation.as_file() as handle:
                files[operation.path_in_repo] = handle.read()
        calls["create_commit"] = {"repo_id": repo_id, "files": files, **kwargs}
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(hub, "hub_is_offline", lambda: False)
    return calls


@pytest.mark.slow
def test_push_commits_the_whole_run_once_and_no_checkpoints_or_pickles(classifier_run, tmp_path, hub_calls, capsys):
    run = copy_run(classifier_run, tmp_path)
    (run / "training_curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert list(run.glob("checkpoint-*")) and (run / "training_args.bin").is_file()

    code = cli_main(["push", str(run), "someone/imdb-tiny", "--private", "--revision", "v1", "--token", "hf_x"])
    assert code == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/someone/imdb-tiny/commit/abc"
    assert hub_calls["create_repo"] == {"repo_id": "someone/imdb-tiny", "private": True, "exist_ok": True}
    assert hub_calls["create_branch"] == {"repo_id": "someone/imdb-tiny", "branch": "v1", "exist_ok": True}
    commit = hub_calls["create_commit"]
    assert commit["revision"] == "v1"
    assert sorted(commit["files"]) == [
        "README.md",
        "all_results.json",
        "config.json",
        "configuration_rnn_classifier.py",
        "eval_results.json",
        "model.safetensors",
        "modeling_rnn_classifier.py",
        "recipe.yaml",
        "run_info.json",
        "test_results.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "train_results.json",
        "trainer_state.json",
        "training_curves.png",
    ]
    files = commit["files"]
    assert files["model.safetensors"] == (classifier_run / "model.safetensors").read_bytes()
    assert json.loads(files["config.json"])["auto_map"]["AutoModelForSequenceClassification"].endswith(
        "RnnForSequenceClassification"
    )
    readme = tmp_path / "README.md"
    readme.write_bytes(files["README.md"])
    test_results = json.loads(files["test_results.json"])
    assert [value for _, _, value, _ in model_index_metrics(readme)] == [
        test_results["test_accuracy"],
        test_results["test_macro_f1"],
    ]
    assert 'from_pretrained("someone/imdb-tiny", trust_remote_code=True)' in files["README.md"].decode()


@pytest.mark.slow
@pytest.mark.parametrize("family", ["classifier", "seq2seq"])
def test_python_save_and_push_to_hub_give_the_files_hf_rnn_push_commits(
    family, classifier_run, seq2seq_run, tmp_path, hub_calls
):
    """Before: `model.push_to_hub()` uploaded weights and config only (no code, `auto_map`, tokenizer or card)."""
    run = copy_run(classifier_run if family == "classifier" else seq2seq_run, tmp_path)
    auto_class = AutoModelForSequenceClassification if family == "classifier" else AutoModelForSeq2SeqLM
    assert cli_main(["push", str(run), "someone/model", "--token", "hf_x"]) == 0
    by_cli = hub_calls["create_commit"]["files"]

    model = auto_class.from_pretrained(run)
    model.push_to_hub("someone/model", token="hf_x", commit_message="from Python")
    by_python = hub_calls["create_commit"]
    assert by_python["commit_message"] == "from Python"
    assert sorted(by_python["files"]) == sorted(by_cli)
    for name in ("model.safetensors", "tokenizer.json", "recipe.yaml", "all_results.json", "README.md"):
        assert by_python["files"][name] == by_cli[name], name
    config = json.loads(by_python["files"]["config.json"])
    assert config["auto_map"] == json.loads(by_cli["config.json"])["auto_map"]

    saved = tmp_path / "saved"
    model.save_pretrained(saved)  # the same folder, offline
    assert sorted(path.name for path in saved.iterdir()) == sorted(by_cli)
    assert "model-index" in (saved / "README.md").read_text()


@pytest.mark.slow
def test_save_pretrained_of_changed_weights_takes_the_tokenizer_but_not_the_run_results(classifier_run, tmp_path):
    """A model loaded from a run and then changed (fine-tuned) must not carry the run's results and card."""
    model = AutoModelForSequenceClassification.from_pretrained(classifier_run)
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    model.save_pretrained(tmp_path / "changed")
    saved = sorted(path.name for path in (tmp_path / "changed").iterdir())
    assert "tokenizer.json" in saved and "modeling_rnn_classifier.py" in saved
    assert not {"README.md", "recipe.yaml", "all_results.json", "test_results.json"} & set(saved)


def test_push_to_hub_of_a_model_built_in_python_keeps_transformers_behaviour(tmp_path, monkeypatch):
    """Not loaded from a run: transformers' own `push_to_hub` (with the code files and `auto_map` saved)."""
    pushed = {}

    def upload(self, working_dir, repo_id, **kwargs):
        pushed.update(repo_id=repo_id, files=sorted(os.listdir(working_dir)))
        return "url"

    monkeypatch.setattr("transformers.utils.hub.PushToHubMixin._upload_modified_files", upload)
    monkeypatch.setattr("transformers.utils.hub.create_and_tag_model_card", lambda *args, **kwargs: ModelCard("card"))
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: type("R", (), {"repo_id": repo_id})())
    model = hf_rnn.RnnForSequenceClassification(hf_rnn.RnnClassifierConfig(vocab_size=30, embedding_size=4))
    assert model.push_to_hub("someone/fresh") == "url"
    assert pushed["files"] == [
        "README.md",
        "config.json",
        "configuration_rnn_classifier.py",
        "model.safetensors",
        "modeling_rnn_classifier.py",
    ]


def test_push_offline_fails_fast_and_changes_nothing(classifier_like_run, monkeypatch, capsys):
    before = snapshot(classifier_like_run)
    monkeypatch.setattr(HfApi, "create_repo", lambda *args, **kwargs: pytest.fail("must not reach the Hub"))
    started = time.perf_counter()
    assert cli_main(["push", str(classifier_like_run), "someone/model"]) == 2  # HF_HUB_OFFLINE=1 (conftest)
    assert time.perf_counter() - started < 1.0
    assert "offline" in capsys.readouterr().err

    # Without the variable, a refused connection is found out by the probe at once, not by retries.
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(hub.HubError, match="Nothing was uploaded or changed"):
        hub.push(classifier_like_run, "someone/model", token="hf_x")
    assert time.perf_counter() - started < 1.0
    assert snapshot(classifier_like_run) == before


def test_push_without_a_token_repo_id_or_run_dir_fails_before_changing_anything(
    classifier_like_run, monkeypatch, tmp_path
):
    before = snapshot(classifier_like_run)
    monkeypatch.setattr(hub, "hub_is_offline", lambda: False)
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(hub.HubError, match="no Hugging Face token"):
        hub.push(classifier_like_run, "someone/model")
    with pytest.raises(hub.HubError, match="not a Hub repo id"):
        hub.push(classifier_like_run, "not a repo", token="hf_x")
    assert snapshot(classifier_like_run) == before
    with pytest.raises(hub.HubError, match="config.json not found"):
        hub.push(tmp_path / "missing", "someone/model", token="hf_x")


@pytest.fixture
def classifier_like_run(tmp_path) -> Path:
    """A saved tiny classifier with the files of a run (no training): enough for `push`'s checks."""
    run = tmp_path / "run"
    config = hf_rnn.RnnClassifierConfig(vocab_size=30, embedding_size=4, hidden_size=4)
    hf_rnn.RnnForSequenceClassification(config).save_pretrained(run)
    shutil.copyfile(REPO / "configs" / "imdb_tiny.yaml", run / "recipe.yaml")
    return run


def test_push_to_hub_repo_must_be_a_repo_id():
    with pytest.raises(RecipeError, match="push_to_hub_repo"):
        load_recipe(REPO / "configs" / "imdb_tiny.yaml", ["training.push_to_hub_repo=not a repo"])


@pytest.mark.slow
def test_push_to_the_real_hub(classifier_run, tmp_path):
    """Runs only with HF_TOKEN set and the Hub reachable: push a private repo, read it back, delete it."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        pytest.skip("HF_TOKEN is not set: the real-Hub push is not tried")
    env = {key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE")}
    probe = "from hf_rnn.network import hub_is_offline; raise SystemExit(int(hub_is_offline()))"
    if subprocess.run([sys.executable, "-c", probe], env=env).returncode:
        pytest.skip("the Hugging Face Hub is not reachable from this machine")
    run = copy_run(classifier_run, tmp_path)
    script = f"""
import json, uuid
from huggingface_hub import HfApi, ModelCard
from hf_rnn.hub import push
api = HfApi()
repo_id = f"{{api.whoami()['name']}}/hf-rnn-test-{uuid.uuid4().hex[:8]}"
try:
    push({str(run)!r}, repo_id, private=True)
    card = ModelCard.load(repo_id)
    files = sorted(api.list_repo_files(repo_id))
finally:
    api.delete_repo(repo_id)
print(json.dumps({{"accuracy": card.data.eval_results[0].metric_value, "files": files}}))
"""
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    pushed = json.loads(result.stdout.strip().splitlines()[-1])
    assert pushed["accuracy"] == json.loads((run / "test_results.json").read_text())["test_accuracy"]
    assert "model.safetensors" in pushed["files"] and not any(".bin" in name for name in pushed["files"])


# ---------------------------------------------------------------------------------------------- evaluate & Hub ids


def test_run_file_reads_local_runs_and_fails_fast_for_uncached_hub_ids(tmp_path):
    (tmp_path / "recipe.yaml").write_text("task: classification\n")
    assert Run(tmp_path).file("recipe.yaml") == tmp_path / "recipe.yaml"
    assert Run(str(tmp_path)).file("absent.yaml") is None
    started = time.perf_counter()
    with pytest.raises(RunFileError, match="offline"):
        Run(f"someone/not-cached-{uuid.uuid4().hex[:8]}").file("recipe.yaml")
    assert time.perf_counter() - started < 1.0


def test_evaluate_cli_with_an_uncached_hub_id_offline_fails_fast(capsys):
    started = time.perf_counter()
    assert cli_main(["evaluate", f"someone/not-cached-{uuid.uuid4().hex[:8]}", "--data-dir", "sample"]) == 2
    assert time.perf_counter() - started < 1.0
    assert "offline" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_metric_modules_match_hf_rnn_metrics_on_model_outputs(classifier_run, seq2seq_run):
    import pandas as pd

    reviews = pd.read_parquet(REPO / "hf_rnn" / "sample_data" / "imdb" / "test.parquet").head(64)
    tokenizer = AutoTokenizer.from_pretrained(classifier_run)
    model = AutoModelForSequenceClassification.from_pretrained(classifier_run).eval()
    encoded = tokenizer(list(reviews["text"]), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        predictions = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits.argmax(-1)
    predictions, labels = predictions.tolist(), reviews["label"].tolist()
    expected = classification_metrics(predictions, labels)
    assert load_metric("accuracy").compute(predictions=predictions, references=labels) == {
        "accuracy": expected["accuracy"]
    }
    f1 = load_metric("f1")
    f1.add_batch(predictions=predictions[:30], references=labels[:30])
    f1.add_batch(predictions=predictions[30:], references=labels[30:])
    assert f1.compute(average="macro") == {"f1": expected["macro_f1"]}
    positive = sum(p == 1 and r == 1 for p, r in zip(predictions, labels))
    binary = 2 * positive / (predictions.count(1) + labels.count(1))
    assert load_metric("f1").compute(predictions=predictions, references=labels) == {"f1": binary}  # evaluate's default

    pairs = pd.read_parquet(REPO / "hf_rnn" / "sample_data" / "multi30k" / "test.parquet").head(20)["translation"]
    tokenizer = AutoTokenizer.from_pretrained(seq2seq_run)
    model = AutoModelForSeq2SeqLM.from_pretrained(seq2seq_run).eval()
    hypotheses = generate_translations(model, tokenizer, [pair["de"] for pair in pairs], num_beams=1, progress=False)
    references = [pair["en"] for pair in pairs]
    expected = translation_metrics(hypotheses, references)
    bleu = load_metric("sacrebleu").compute(predictions=hypotheses, references=references)
    chrf = load_metric("chrf").compute(predictions=hypotheses, references=[[reference] for reference in references])
    # The keys of evaluate's own sacrebleu / chrf (before: `bleu` / `chrf` and a signature).
    assert sorted(bleu) == ["bp", "counts", "precisions", "ref_len", "score", "sys_len", "totals"]
    assert sorted(chrf) == ["beta", "char_order", "score", "word_order"]
    assert (round(bleu["score"], 2), round(chrf["score"], 2)) == (expected["bleu"], expected["chrf"])
    assert chrf["score"] > 0  # real (poor) translations, not empty strings


def test_load_metric_names_the_metrics_it_ships():
    with pytest.raises(ValueError, match=r"\['accuracy', 'chrf', 'f1', 'sacrebleu'\]"):
        load_metric("bleu")

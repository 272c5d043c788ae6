"""A Hugging Face Space from a run (`hf_rnn.demo.space`): the folder `hf-rnn space` writes, its app.py running where
hf_rnn cannot be imported (the model from the local run through `HF_RNN_SPACE_MODEL`, no network), and
`hf-rnn push --space` up to the Hub's HTTP boundary."""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import HfApi
from transformers.dynamic_module_utils import get_imports

gr = pytest.importorskip("gradio", reason='the demo needs the demo extra: pip install "hf_rnn[demo]"')

from hf_rnn import hub  # noqa: E402
from hf_rnn.commands import main as cli_main  # noqa: E402
from hf_rnn.demo import load_demo_model  # noqa: E402
from hf_rnn.demo.app import classify, generate_text, translate  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # files, the command line, a subprocess importing gradio

REVIEW = "A wonderful, moving film with a superb cast."
SOURCE = "Ein Hund läuft über eine grüne Wiese."
PROMPT = "This movie was"
TASKS = {"classifier": "classification", "seq2seq": "translation", "lm": "language_modeling"}
AUTO_CLASSES = {
    "classifier": "AutoModelForSequenceClassification",
    "seq2seq": "AutoModelForSeq2SeqLM",
    "lm": "AutoModelForCausalLM",
}


def front_matter(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.mark.parametrize("family", TASKS)
def test_space_folder_has_the_app_requirements_and_space_front_matter(
    family, classifier_run, seq2seq_run, lm_run, tmp_path
):
    run = {"classifier": classifier_run, "seq2seq": seq2seq_run, "lm": lm_run}[family]
    assert cli_main(["space", str(run), "someone/model", str(tmp_path / "space")]) == 0
    space = tmp_path / "space"
    assert sorted(path.name for path in space.iterdir()) == ["README.md", "app.py", "requirements.txt"]
    config = front_matter(space / "README.md")
    assert config["sdk"] == "gradio" and config["app_file"] == "app.py"
    assert config["sdk_version"] == gr.__version__
    assert config["models"] == ["someone/model"] and config["title"] == "model"
    assert len(config["short_description"]) <= 60
    requirements = (space / "requirements.txt").read_text().split()
    assert {line.split(">")[0].split("=")[0] for line in requirements} == {
        "torch",
        "transformers",
        "tokenizers",
        "matplotlib",
        "gradio",
    }
    assert f"gradio=={gr.__version__}" in requirements
    third_party = set(get_imports(space / "app.py")) - set(sys.stdlib_module_names)
    assert third_party == {"gradio", "matplotlib", "numpy", "torch", "transformers"}  # never hf_rnn
    app = (space / "app.py").read_text()
    assert f"load_space_model('someone/model', '{TASKS[family]}', '{AUTO_CLASSES[family]}'," in app


def test_space_app_runs_without_hf_rnn_on_the_local_runs(classifier_run, seq2seq_run, lm_run, tmp_path):
    """The generated app.py imports, builds its page and answers with only the environment's packages (no hf_rnn),
    loading the model as remote code; its answers equal the in-process demo's."""
    runs = {"classifier": str(classifier_run), "translator": str(seq2seq_run), "language_model": str(lm_run)}
    for name, run in runs.items():
        assert cli_main(["space", run, "someone/model", str(tmp_path / name)]) == 0
    texts = {"classifier": REVIEW, "translator": SOURCE, "language_model": PROMPT}
    code = f"""
import sys
sys.path.extend({site.getsitepackages()!r})
import importlib.util, json, os
assert importlib.util.find_spec("hf_rnn") is None, "hf_rnn must not be importable here"
import gradio as gr, torch
torch.set_num_threads(1)
answers = {{}}
runs, texts = {runs!r}, {texts!r}
for name, run in runs.items():
    text = texts[name]
    os.environ["HF_RNN_SPACE_MODEL"] = run
    spec = importlib.util.spec_from_file_location(f"app_{{name}}", {str(tmp_path)!r} + f"/{{name}}/app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert isinstance(app.demo, gr.Blocks)
    model, tokenizer = app.SPACE_MODEL.model, app.SPACE_MODEL.tokenizer
    if name == "classifier":
        result = app.classify(model, tokenizer, text)
        answer = {{"scores": result.scores, "weights": result.token_weights}}
        empty = app.classify(model, tokenizer, "").message
    elif name == "translator":
        result = app.translate(model, tokenizer, text, num_beams=3, length_penalty=1.0)
        answer = {{"texts": [item.text for item in result.hypotheses], "attention": result.attention.tolist()}}
        empty = app.translate(model, tokenizer, "   ").message
    else:
        result = app.generate_text(model, tokenizer, text, max_new_tokens=12, num_continuations=3, seed=5)
        answer = {{
            "ids": [item.token_ids for item in result.continuations],
            "probabilities": [item.probabilities for item in result.continuations],
            "perplexity": result.prompt_perplexity,
        }}
        empty = app.generate_text(model, tokenizer, "", decoding="greedy", max_new_tokens=3).message
    answers[name] = {{**answer, "module": type(model).__module__, "empty": empty}}
print(json.dumps(answers))
"""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "MPLCONFIGDIR": str(tmp_path / "matplotlib"),
        "OMP_NUM_THREADS": "1",
    }
    # `-I -S`: no site processing, so the editable install's import hook (a .pth file) never puts hf_rnn on the path.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])

    classifier, translator = load_demo_model(classifier_run), load_demo_model(seq2seq_run)
    local = classify(classifier.model, classifier.tokenizer, REVIEW)
    assert remote["classifier"]["scores"] == pytest.approx(local.scores, abs=1e-6)
    assert [share for _, share in remote["classifier"]["weights"]] == pytest.approx(
        [share for _, share in local.token_weights], abs=1e-6
    )
    local = translate(translator.model, translator.tokenizer, SOURCE, num_beams=3, length_penalty=1.0)
    assert remote["translator"]["texts"] == [item.text for item in local.hypotheses]
    assert np.allclose(remote["translator"]["attention"], local.attention, atol=1e-6)
    language_model = load_demo_model(lm_run)
    local = generate_text(
        language_model.model, language_model.tokenizer, PROMPT, max_new_tokens=12, num_continuations=3, seed=5
    )
    assert remote["language_model"]["ids"] == [item.token_ids for item in local.continuations]  # the same samples
    for remote_probabilities, item in zip(remote["language_model"]["probabilities"], local.continuations):
        assert remote_probabilities == pytest.approx(item.probabilities, abs=1e-6)
    assert remote["language_model"]["perplexity"] == pytest.approx(local.prompt_perplexity, rel=1e-6)
    for name, answer in remote.items():
        assert answer["module"].startswith("transformers_modules.")  # the model's own code, not hf_rnn's
        assert answer["empty"].startswith("No prompt" if name == "language_model" else "Type a")


@pytest.fixture
def hub_calls(monkeypatch) -> list:
    """Patch the Hub's HTTP boundary: the Hub looks reachable, and repo and commit calls are recorded in order."""
    calls: list = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_commit(self, repo_id, operations, **kwargs):
        calls.append(("create_commit", repo_id, {**kwargs, "files": sorted(op.path_in_repo for op in operations)}))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(hub, "hub_is_offline", lambda: False)
    return calls


def test_push_with_space_commits_the_model_then_a_gradio_space(classifier_run, tmp_path, hub_calls, capsys):
    run = Path(shutil.copytree(classifier_run, tmp_path / classifier_run.name))
    argv = ["push", str(run), "someone/imdb-tiny", "--space", "someone/imdb-tiny-demo", "--token", "hf_x"]
    assert cli_main(argv) == 0
    assert capsys.readouterr().out.split() == [
        "https://huggingface.co/someone/imdb-tiny/commit/abc",
        "https://huggingface.co/someone/imdb-tiny-demo/commit/abc",
    ]
    assert [(call, repo_id) for call, repo_id, _ in hub_calls] == [
        ("create_repo", "someone/imdb-tiny"),
        ("create_commit", "someone/imdb-tiny"),
        ("create_repo", "someone/imdb-tiny-demo"),
        ("create_commit", "someone/imdb-tiny-demo"),
    ]
    assert hub_calls[2][2] == {"private": False, "exist_ok": True, "repo_type": "space", "space_sdk": "gradio"}
    space_commit = hub_calls[3][2]
    assert space_commit["repo_type"] == "space"
    assert space_commit["files"] == ["README.md", "app.py", "requirements.txt"]
    assert "model.safetensors" in hub_calls[1][2]["files"]


def test_push_with_space_fails_before_uploading_anything(classifier_run, tmp_path, monkeypatch, capsys):
    run = Path(shutil.copytree(classifier_run, tmp_path / classifier_run.name))
    monkeypatch.setattr(HfApi, "create_repo", lambda *args, **kwargs: pytest.fail("must not reach the Hub"))
    # Offline (HF_HUB_OFFLINE=1, conftest): one line, nothing uploaded.
    assert cli_main(["push", str(run), "someone/imdb-tiny", "--space", "someone/demo"]) == 2
    assert "offline" in capsys.readouterr().err
    monkeypatch.setattr(hub, "hub_is_offline", lambda: False)
    for model_repo, space_repo, message in (
        ("someone/imdb-tiny", "not a repo", "'not a repo' is not a Hub repo id"),
        ("imdb-tiny", "someone/demo", "'imdb-tiny' has no owner"),
    ):
        assert cli_main(["push", str(run), model_repo, "--space", space_repo, "--token", "hf_x"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("hf-rnn push: error: ") and message in error and "\n" not in error

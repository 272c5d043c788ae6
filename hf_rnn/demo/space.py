"""A Hugging Face Space for a run pushed to the Hub: `app.py`, `requirements.txt` and `README.md` that serve the demo
page of `hf_rnn.demo.app` for the model repo, with the model's own code (`trust_remote_code=True`) and no hf_rnn.

`app.py` is the text of `hf_rnn/demo/app.py` followed by a few lines naming the model; `HF_RNN_SPACE_MODEL` (a Hub
id or a local folder) overrides the model it loads, which is how the tests run a Space offline.
"""

import os
import tempfile
from pathlib import Path

import yaml

from ..families import family_of
from ..hub import check_repo_id, commit_files, push, read_model_type, upload_token
from ..runs import Run
from . import DemoError, require_gradio

# What the Space installs: the packages `hf_rnn/demo/app.py` imports (never hf_rnn), in the ranges hf_rnn supports;
# gradio is pinned to the version the page was built with, which is also the README's `sdk_version`.
REQUIREMENTS = ("torch>=2.4,<2.14", "transformers>=5.0,<6", "tokenizers>=0.21", "matplotlib>=3.8")
APP_FOOTER = """

# The model this Space serves (written by `hf-rnn space`); $HF_RNN_SPACE_MODEL overrides it (a Hub id or a folder).
SPACE_MODEL = load_space_model({model_repo!r}, {task!r}, {auto_class!r}, {title!r})
demo = build_demo([SPACE_MODEL], title={page_title!r})

if __name__ == "__main__":
    demo.launch()
"""
README_BODY = """
# {title}

A demo of [{model_repo}](https://huggingface.co/{model_repo}), a {task} model ({description}) trained with hf_rnn.
The model repo ships its own modeling code, so this Space loads it with `trust_remote_code=True` and needs only
transformers, torch, tokenizers, gradio and matplotlib (`requirements.txt`), not hf_rnn.

Run it elsewhere: `pip install -r requirements.txt && python app.py`; `HF_RNN_SPACE_MODEL=path/to/run python app.py`
serves a local run folder instead of the Hub model. A private model repo needs an `HF_TOKEN` secret in the Space.
"""


def space_readme(
    title: str, model_repo: str, task: str, description: str, card_task_type: str, sdk_version: str
) -> str:
    """The Space's README: its configuration as YAML front matter (read by the Hub), then a short description."""
    front_matter = {
        "title": title,
        "emoji": "🔁",
        "colorFrom": "indigo",
        "colorTo": "blue",
        "sdk": "gradio",
        "sdk_version": sdk_version,
        "app_file": "app.py",
        "pinned": False,
        "models": [model_repo],
        "tags": ["hf_rnn", card_task_type],
        "short_description": f"{task} with an hf_rnn {description}"[:60],
    }
    header = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True)
    body = README_BODY.format(title=title, model_repo=model_repo, task=task, description=description)
    return f"---\n{header}---\n{body}"


def write_space(run: str | os.PathLike, model_repo: str, out_dir: str | os.PathLike) -> list[Path]:
    """Write the Space files for the local run folder `run`, whose model is (or will be) pushed to `model_repo`,
    into `out_dir`; returns their paths. Needs gradio (its version becomes the Space's `sdk_version`)."""
    sdk_version = require_gradio()
    from . import app

    check_repo_id(model_repo)
    if "/" not in model_repo:
        raise DemoError(f"{model_repo!r} has no owner: the Space loads the model by its full id (user/name).")
    family = family_of(read_model_type(Path(run)))
    if family.task not in app.TAB_BUILDERS:
        raise DemoError(f"{str(run)!r} is a {family.task} model: Spaces exist for {sorted(app.TAB_BUILDERS)} only.")
    title = model_repo.split("/")[-1]
    description = family.describe(Run(run).config())
    footer = APP_FOOTER.format(
        model_repo=model_repo,
        task=family.task,
        auto_class=family.head_auto_class.__name__,
        title=title,
        page_title=f"{title}: hf_rnn {family.task} demo",
    )
    contents = {
        "app.py": Path(app.__file__).read_text(encoding="utf-8") + footer,
        "requirements.txt": "\n".join((*REQUIREMENTS, f"gradio=={sdk_version}")) + "\n",
        "README.md": space_readme(title, model_repo, family.task, description, family.card_task_type, sdk_version),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    return [out_dir / name for name in contents]


def push_with_space(
    run: str | os.PathLike,
    model_repo: str,
    space_repo: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> tuple[str, str]:
    """`hf_rnn.hub.push` of the run to `model_repo`, then a Gradio Space serving it to `space_repo` (on its main
    branch); returns both commit URLs. The Space is written and both ids checked before anything is uploaded."""
    check_repo_id(space_repo)
    with tempfile.TemporaryDirectory() as space_dir:
        files = write_space(run, model_repo, space_dir)
        model_url = push(run, model_repo, private=private, revision=revision, token=token)
        retry = f"hf-rnn push {run} {model_repo} --space {space_repo}"
        space_url = commit_files(
            space_repo,
            files,
            f"Gradio Space for {model_repo} (hf_rnn)",
            upload_token(token, space_repo, retry),
            private=private,
            space_sdk="gradio",
        )
    return model_url, space_url

"""Sharing trained models: self-contained remote code, and `hf-rnn push` to the Hugging Face Hub.

A run directory carries copies of its model's `configuration_*.py` and `modeling_*.py` and an `auto_map` in
`config.json`, so `AutoModel...from_pretrained(path_or_repo, trust_remote_code=True)` works with only
transformers and torch installed. The modeling files import nothing but torch, transformers and their own
configuration file, by design. With hf_rnn imported, transformers uses hf_rnn's registered classes instead
(a model type registered from outside `transformers.` counts as local code), so both ways coexist.

`push` uploads a run as one commit: weights, configs, tokenizer, recipe, run info, results, plots, the code
files and a freshly rendered model card; never checkpoints or pickles.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import yaml
from huggingface_hub import CommitOperationAdd, HfApi, get_token, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .data import hub_is_offline
from .model_card import read_json, write_model_card
from .models.rnn_classifier import RnnClassifierConfig, RnnClassifierModel, RnnForSequenceClassification
from .models.rnn_seq2seq import RnnSeq2SeqConfig, RnnSeq2SeqForConditionalGeneration
from .recipe import recipe_from_dict

# The Auto classes a saved model of each type answers to, and the class serving each.
AUTO_CLASSES: dict[str, dict[str, type]] = {
    "rnn_classifier": {
        "AutoConfig": RnnClassifierConfig,
        "AutoModel": RnnClassifierModel,
        "AutoModelForSequenceClassification": RnnForSequenceClassification,
    },
    "rnn_seq2seq": {
        "AutoConfig": RnnSeq2SeqConfig,
        "AutoModel": RnnSeq2SeqForConditionalGeneration,
        "AutoModelForSeq2SeqLM": RnnSeq2SeqForConditionalGeneration,
    },
}
# Top-level files of a run that are uploaded, by suffix: weights, configs, tokenizer, results, recipe, card,
# plots. Sub-folders (checkpoints/) and pickles (training_args.bin) are never uploaded.
UPLOAD_SUFFIXES = (".safetensors", ".json", ".yaml", ".md", ".png")


class HubError(RuntimeError):
    """Sharing or fetching a model failed; the message says why and what to do."""


def read_model_type(model_dir: Path) -> str:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise HubError(f"{config_path} not found: MODEL_DIR must be a saved model (e.g. a run of `hf-rnn train`).")
    model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    if model_type not in AUTO_CLASSES:
        raise HubError(f"{config_path} has model_type {model_type!r}; hf_rnn shares {sorted(AUTO_CLASSES)}.")
    return model_type


def export_remote_code(model_dir: str | os.PathLike) -> list[Path]:
    """Copy the model's configuration and modeling files into `model_dir` and fill `auto_map` in its config.json.

    Returns the copied files. `register_for_auto_class` would record only the one Auto class of the saved
    object; this maps every Auto class the model type supports.
    """
    model_dir = Path(model_dir)
    model_type = read_model_type(model_dir)
    auto_map, copied = {}, []
    for auto_class, cls in AUTO_CLASSES[model_type].items():
        source = Path(sys.modules[cls.__module__].__file__)
        auto_map[auto_class] = f"{source.stem}.{cls.__name__}"
        target = model_dir / source.name
        if target not in copied:
            shutil.copyfile(source, target)
            copied.append(target)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = auto_map
    # The layout transformers itself writes, so a later `save_pretrained` produces no spurious diff.
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return copied


def upload_files(model_dir: Path, code_files: list[Path]) -> list[Path]:
    """The files `push` uploads: top-level files with an `UPLOAD_SUFFIXES` suffix, plus the model code."""
    files = [path for path in model_dir.iterdir() if path.is_file() and path.suffix in UPLOAD_SUFFIXES]
    return sorted(set(files) | set(code_files))


def push(
    model_dir: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a run directory to the Hub repo `repo_id` (created if missing) as one commit; returns its URL.

    Before uploading, the model code is exported and the model card re-rendered for `repo_id`, so the card's
    snippets name the repo and its results include any `eval_*.json` added since training (edit the templates
    in `hf_rnn/model_cards/`, not README.md). Offline, without a token, or with a bad recipe or repo id, it fails
    before changing anything.
    """
    model_dir = Path(model_dir)
    model_type = read_model_type(model_dir)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"{repo_id!r} is not a Hub repo id (user/name): {error}") from error
    recipe_path = model_dir / "recipe.yaml"
    if not any(model_dir.glob("*.safetensors")) or not recipe_path.is_file():
        raise HubError(
            f"{model_dir} lacks safetensors weights or recipe.yaml: push uploads run directories written by "
            "`hf-rnn train` (the model card is built from the recipe and results)."
        )
    if hub_is_offline():
        raise HubError(
            f"cannot push to {repo_id!r}: offline (HF_HUB_OFFLINE set or the Hub is unreachable). Nothing was "
            f"uploaded or changed; run `hf-rnn push {model_dir} {repo_id}` when online."
        )
    token = token or get_token()
    if token is None:
        raise HubError("no Hugging Face token: set $HF_TOKEN, run `hf auth login`, or pass --token.")

    recipe = recipe_from_dict(yaml.safe_load(recipe_path.read_text(encoding="utf-8")))
    code_files = export_remote_code(model_dir)
    write_model_card(model_dir, model_type, recipe, read_json(model_dir / "all_results.json"), repo_id=repo_id)
    operations = [
        CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path))
        for path in upload_files(model_dir, code_files)
    ]
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations=operations,
            commit_message=f"Upload {model_dir.name} (hf_rnn {model_type})",
            revision=revision,
        )
    except HfHubHTTPError as error:
        raise HubError(f"the Hub refused the upload to {repo_id!r}: {error}") from error
    return commit.commit_url


def run_file(model: str, filename: str) -> Path | None:
    """`filename` of the run `model`: a local directory, or a Hub repo (from the local cache when offline).

    None when the run has no such file; a Hub file that is offline and not cached raises `HubError`.
    """
    directory = Path(model).expanduser()
    if directory.is_dir():
        path = directory / filename
        return path if path.is_file() else None
    try:
        return Path(hf_hub_download(model, filename, local_files_only=hub_is_offline()))
    except RemoteEntryNotFoundError:
        return None
    except LocalEntryNotFoundError as error:
        raise HubError(
            f"{filename} of {model!r} is not in the local Hub cache, and the Hub is offline (HF_HUB_OFFLINE set or "
            "unreachable): pass a run directory, or fetch the repo once online."
        ) from error
    except (HfHubHTTPError, HFValidationError) as error:
        raise HubError(f"cannot read {filename} of {model!r} from the Hub: {error}") from error


def add_push_parser(subparsers) -> None:
    parser = subparsers.add_parser("push", help="upload a trained run to the Hugging Face Hub")
    parser.add_argument("model_dir", help="a run directory written by `hf-rnn train`")
    parser.add_argument("repo_id", help="Hub repo, e.g. your-name/imdb-bilstm (created if missing)")
    parser.add_argument(
        "--private", action="store_true", help="create the repo as private (an existing repo keeps its visibility)"
    )
    parser.add_argument("--revision", help="branch to commit to, created if missing (default: main)")
    parser.add_argument("--token", help="Hub token with write access (default: $HF_TOKEN or the saved login)")
    parser.set_defaults(handler=run_push)


def run_push(args: argparse.Namespace) -> int:
    url = push(args.model_dir, args.repo_id, private=args.private, revision=args.revision, token=args.token)
    print(url)
    return 0

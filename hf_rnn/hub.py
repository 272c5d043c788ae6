"""Sharing trained models: self-contained remote code, and `hf-rnn push` to the Hugging Face Hub.

Every `save_pretrained` of an hf_rnn model writes copies of its `configuration_*.py` and `modeling_*.py`, an
`auto_map` and (translation) `custom_pipelines` into `config.json` (`SelfContainedSavingMixin` in the modeling
files), so `AutoModel...from_pretrained(path_or_repo, trust_remote_code=True)` and
`pipeline("translation", ..., trust_remote_code=True)` work with only transformers and torch installed. The modeling
files import nothing but the standard library, torch, transformers and their own configuration file, by design.
With hf_rnn imported, transformers uses hf_rnn's registered classes instead (a model type registered from outside
`transformers.` counts as local code), so both ways coexist.

`push` uploads a run as one commit: weights, configs, tokenizer, recipe, run info, results, plots, the code
files and a freshly rendered model card; never checkpoints or pickles. A model loaded from a run folder and saved
or pushed from Python (`model.save_pretrained(dir)`, `model.push_to_hub(repo)`) gets the same files:
`complete_saved_run` and `push_model` are installed as the models' `run_saver` / `run_pusher`. `commit_files` is
the one upload path, for model repos and for the Gradio Spaces of `hf_rnn.demo.space`.
"""

import filecmp
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from .errors import HfRnnError
from .families import FAMILIES, UnknownFamilyError, family_of, model_types
from .model_card import write_model_card
from .network import hub_is_offline
from .runs import CONFIG_FILE, RECIPE_FILE, Run

# What `save_pretrained` writes itself; everything else of a run folder is copied by `complete_saved_run`.
MODEL_FILES = (CONFIG_FILE, "generation_config.json", "model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILE_PREFIXES = ("tokenizer", "special_tokens_map")
# Top-level files of a run that are uploaded, by suffix: weights, configs, tokenizer, results, recipe, card,
# plots. Sub-folders (checkpoints/) and pickles (training_args.bin) are never uploaded.
UPLOAD_SUFFIXES = (".safetensors", ".json", ".yaml", ".md", ".png")


class HubError(HfRnnError, RuntimeError):
    """Sharing or fetching a model failed; the message says why and what to do."""


def read_model_type(model_dir: Path) -> str:
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise HubError(f"{config_path} not found: MODEL_DIR must be a saved model (e.g. a run of `hf-rnn train`).")
    model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    try:
        family_of(model_type)
    except UnknownFamilyError:
        raise HubError(f"{config_path} has model_type {model_type!r}; hf_rnn shares {model_types()}.") from None
    return model_type


def export_remote_code(model_dir: str | os.PathLike) -> list[Path]:
    """Write this version's code files, `auto_map` and `custom_pipelines` into a saved model folder, as
    `save_pretrained` does (for folders saved by an earlier hf_rnn, or by hand). Returns the copied files."""
    model_dir = Path(model_dir)
    base = family_of(read_model_type(model_dir)).pretrained_class
    code_folder = Path(sys.modules[base.__module__].__file__).parent
    copied = [Path(shutil.copyfile(code_folder / name, model_dir / name)) for name in base.remote_code_files]
    config_path = model_dir / CONFIG_FILE
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = dict(base.remote_auto_map)
    if base.remote_custom_pipelines:
        config["custom_pipelines"] = base.remote_custom_pipelines
    # The layout transformers itself writes, so a later `save_pretrained` produces no spurious diff.
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return copied


def source_run(model) -> Path | None:
    """The hf_rnn run folder a model was loaded from (one with `recipe.yaml`), else None."""
    name = getattr(model, "name_or_path", "") or ""
    folder = Path(name).expanduser()
    return folder if name and (folder / RECIPE_FILE).is_file() else None


def complete_saved_run(model, save_directory: str | os.PathLike) -> None:
    """After `save_pretrained` of a model loaded from a run folder into another folder: copy the run's tokenizer,
    recipe, results and plots beside the new weights and render the model card, so that the folder holds what
    `hf-rnn push` would upload. Weights changed since loading (fine-tuned) get the tokenizer only: the run's results
    and card would describe other weights. Models not loaded from a run folder are left as transformers saves them."""
    run, target = source_run(model), Path(save_directory)
    if run is None or run.resolve() == target.resolve():
        return
    weights = [folder / "model.safetensors" for folder in (run, target)]
    unchanged = all(path.is_file() for path in weights) and filecmp.cmp(*weights, shallow=False)
    for path in upload_files(run, []):
        if path.name in MODEL_FILES or path.name.endswith(".py"):
            continue
        if unchanged or path.name.startswith(TOKENIZER_FILE_PREFIXES):
            shutil.copyfile(path, target / path.name)
    if not unchanged:
        return
    saved = Run(target)
    write_model_card(target, model.config.model_type, saved.recipe(), saved.results())


def push_model(model, repo_id: str, **kwargs) -> str | None:
    """`model.push_to_hub(repo_id, ...)` for a model loaded from a run folder and unchanged since: one commit of the
    same files as `hf-rnn push` (weights, code, tokenizer, recipe, results, card). None for other models (and for
    changed weights, found once saved), which take transformers' own `push_to_hub`. Understands `private`, `token`,
    `revision` and `commit_message`."""
    if source_run(model) is None:
        return None
    unsupported = sorted(set(kwargs) - {"private", "token", "revision", "commit_message"})
    if unsupported:
        raise HubError(f"push_to_hub of an hf_rnn run does not take {unsupported}; use `hf-rnn push` options.")
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        if not (Path(folder) / RECIPE_FILE).is_file():
            return None
        return push(
            folder,
            repo_id,
            private=bool(kwargs.get("private")),
            revision=kwargs.get("revision"),
            token=kwargs.get("token"),
            commit_message=kwargs.get("commit_message"),
        )


def install_model_hooks() -> None:
    """Make `save_pretrained` / `push_to_hub` of every hf_rnn model complete runs as `hf-rnn push` does."""
    for family in FAMILIES:
        family.pretrained_class.run_saver = staticmethod(complete_saved_run)
        family.pretrained_class.run_pusher = staticmethod(push_model)


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
    commit_message: str | None = None,
) -> str:
    """Upload a run directory to the Hub repo `repo_id` (created if missing) as one commit; returns its URL.

    Before uploading, the model code is exported and the model card re-rendered for `repo_id`, so the card's
    snippets name the repo and its results include any `eval_*.json` added since training (edit the templates
    in `hf_rnn/model_cards/`, not README.md). Offline, without a token, or with a bad recipe or repo id, it fails
    before changing anything.
    """
    model_dir = Path(model_dir)
    model_type = read_model_type(model_dir)
    check_repo_id(repo_id)
    if not any(model_dir.glob("*.safetensors")) or not (model_dir / RECIPE_FILE).is_file():
        raise HubError(
            f"{model_dir} lacks safetensors weights or recipe.yaml: push uploads run directories written by "
            "`hf-rnn train` (the model card is built from the recipe and results)."
        )
    token = upload_token(token, repo_id, retry=f"hf-rnn push {model_dir} {repo_id}")

    run = Run(model_dir)
    recipe = run.recipe()
    code_files = export_remote_code(model_dir)
    write_model_card(model_dir, model_type, recipe, run.results(), repo_id=repo_id)
    return commit_files(
        repo_id,
        upload_files(model_dir, code_files),
        commit_message or f"Upload {model_dir.name} (hf_rnn {model_type})",
        token,
        private=private,
        revision=revision,
    )


def check_repo_id(repo_id: str) -> None:
    """Raise `HubError` unless `repo_id` is a valid Hub repo id."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"{repo_id!r} is not a Hub repo id (user/name): {error}") from error


def upload_token(token: str | None, repo_id: str, retry: str) -> str:
    """The token to upload to `repo_id` with (`token`, else the saved login). Fails when the Hub is offline (the
    message gives `retry`, the command to run once online) or when there is no token."""
    if hub_is_offline():
        raise HubError(
            f"cannot push to {repo_id!r}: offline (HF_HUB_OFFLINE set or the Hub is unreachable). Nothing was "
            f"uploaded or changed; run `{retry}` when online."
        )
    token = token or get_token()
    if token is None:
        raise HubError("no Hugging Face token: set $HF_TOKEN, run `hf auth login`, or pass --token.")
    return token


def commit_files(
    repo_id: str,
    files: list[Path],
    commit_message: str,
    token: str,
    private: bool = False,
    revision: str | None = None,
    space_sdk: str | None = None,
) -> str:
    """Create `repo_id` if missing (a Space with `space_sdk`, else a model repo) and upload `files` (by name) to it
    as one commit on `revision` (a branch, created if missing; default main). Returns the commit's URL."""
    # A model repo is the Hub's default repo type: its calls name none.
    space = {"repo_type": "space"} if space_sdk else {}
    new_space = {**space, "space_sdk": space_sdk} if space_sdk else {}
    operations = [CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in files]
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True, **new_space).repo_id
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True, **space)
        commit = api.create_commit(
            repo_id, operations=operations, commit_message=commit_message, revision=revision, **space
        )
    except HfHubHTTPError as error:
        raise HubError(f"the Hub refused the upload to {repo_id!r}: {error}") from error
    return commit.commit_url

"""Loading saved models for `hf-rnn evaluate / classify / translate`: safetensors only, one-line errors.

A model argument is a local directory (checked before anything is loaded: `config.json` readable, weights
present as `model.safetensors` and not truncated) or a Hub id. Weights are read with `use_safetensors=True`, so
a `pytorch_model.bin` (a pickle) beside them is never opened. A Hub id on an offline machine is served from the
local Hub cache when it is there and fails at once otherwise, with a message saying what to pass instead.
Every failure is a `ModelLoadError`, which the CLI prints as one line (exit code 2).
"""

import json
import os
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open

from .errors import HfRnnError
from .network import hub_is_offline

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


class ModelLoadError(HfRnnError, RuntimeError):
    """A saved model could not be found or read; the message names the file and what to do."""


def check_safetensors(path: Path) -> str | None:
    """Why the safetensors file at `path` cannot be read (truncated, not safetensors), or None when it can.

    Only the header is parsed; safetensors also checks that the header's offsets cover the file exactly, which
    is what catches a file cut short by a killed save or an interrupted copy.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as error:
        return f"{path.name} is corrupt or truncated ({str(error).splitlines()[0]})"
    return None


def weights_problem(directory: Path) -> str | None:
    """Why the weights in `directory` cannot be loaded, or None when every safetensors file reads."""
    index = directory / WEIGHTS_INDEX_FILE
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError) as error:
            return f"{WEIGHTS_INDEX_FILE} is not a valid shard index ({error})"
        missing = [name for name in shards if not (directory / name).is_file()]
        if missing:
            return f"weight shard(s) {missing} listed in {WEIGHTS_INDEX_FILE} are missing"
        return next(filter(None, (check_safetensors(directory / name) for name in shards)), None)
    if not (directory / WEIGHTS_FILE).is_file():
        pickled = [name for name in ("pytorch_model.bin", "model.pt", "model.pth") if (directory / name).is_file()]
        hint = (
            f" (found {pickled}: hf_rnn does not load pickled weights; re-save them as safetensors)" if pickled else ""
        )
        return f"no {WEIGHTS_FILE}{hint}"
    return check_safetensors(directory / WEIGHTS_FILE)


def check_model_dir(directory: Path) -> None:
    """Raise `ModelLoadError` unless `directory` holds a readable `config.json` and intact safetensors weights."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelLoadError(
            f"{str(directory)!r} has no config.json: it is not a saved model directory "
            "(a training run's output dir, or a checkpoint-N folder inside it)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"{config_path} is not valid JSON ({error}).") from error
    if not isinstance(config, dict) or "model_type" not in config:
        raise ModelLoadError(f"{config_path} has no `model_type`: not a transformers model config.")
    problem = weights_problem(directory)
    if problem:
        raise ModelLoadError(f"cannot load the model in {str(directory)!r}: {problem}.")


def looks_like_hub_id(name: str) -> bool:
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def resolve_model_source(name: str | os.PathLike) -> tuple[str, bool]:
    """(what to pass to `from_pretrained`, whether to stay offline) for a model directory or Hub id."""
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        check_model_dir(path)
        return str(path), True
    if path.exists():
        raise ModelLoadError(f"{name!r} is a file; pass the model directory that holds config.json and the weights.")
    if not looks_like_hub_id(name):
        raise ModelLoadError(f"model directory {name!r} does not exist.")
    if hub_is_offline():
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return name, True
        raise ModelLoadError(
            f"{name!r} is not a local model directory, and the Hugging Face Hub is offline (HF_HUB_OFFLINE set or "
            "the Hub unreachable) with no cached copy of it. Pass the path of a saved model directory (a run's "
            "--output-dir, e.g. runs/imdb-tiny), or download the Hub model once where the Hub can be reached."
        )
    return name, False


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def load_config(name: str | os.PathLike):
    from transformers import AutoConfig

    import hf_rnn  # noqa: F401  (registers the hf_rnn configs)

    source, local_only = resolve_model_source(name)
    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"cannot read the config of {str(name)!r}: {first_line(error)}") from error


def load_tokenizer(name: str | os.PathLike):
    from transformers import AutoTokenizer

    source, local_only = resolve_model_source(name)
    if Path(source).is_dir() and not (Path(source) / "tokenizer.json").is_file():
        raise ModelLoadError(
            f"{str(name)!r} has no tokenizer.json: copy the tokenizer files saved with the model "
            "(tokenizer.json, tokenizer_config.json) into it."
        )
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"cannot load the tokenizer of {str(name)!r}: {first_line(error)}") from error


def load_model(name: str | os.PathLike, auto_class):
    """`auto_class.from_pretrained(name, use_safetensors=True)` in eval mode, errors as `ModelLoadError`."""
    import hf_rnn  # noqa: F401  (registers the Auto classes)

    source, local_only = resolve_model_source(name)
    try:
        model = auto_class.from_pretrained(source, use_safetensors=True, local_files_only=local_only)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as error:
        raise ModelLoadError(f"cannot load the model {str(name)!r}: {first_line(error)}") from error
    return model.eval()

"""The layout of a run folder (what `hf-rnn train` writes), and the one way to read it.

A run folder holds the model (`config.json`, safetensors weights, `generation_config.json`), the tokenizer, and:

- `recipe.yaml`: the resolved recipe, read back through the recipe loader (`Run.recipe`);
- `run_info.json`: command, data source, split sizes, hardware and versions (`hf_rnn.model_card.write_run_info`);
- `train_results.json`, `eval_results.json`, `test_results.json` and their merge `all_results.json` (the Trainer's
  `save_metrics`; the test results carry the peak RSS and wall time), plus `eval_<name>.json` of `hf-rnn evaluate
  --json`;
- `trainer_state.json` (the log history), also inside each `checkpoint-*` folder;
- `seeds.json` (`scripts/seed_summary.py --into-runs`) and `gradient_flow.json` (`training.gradient_flow_every`).

A run is a local folder or a Hub repo id; files of a Hub repo come through the Hub cache (`Run.file`).
"""

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
)

from .data import DataConfig
from .errors import HfRnnError
from .network import hub_is_offline
from .recipe import Recipe, RecipeError, recipe_from_dict

CONFIG_FILE = "config.json"
RECIPE_FILE = "recipe.yaml"
RUN_INFO_FILE = "run_info.json"
ALL_RESULTS_FILE = "all_results.json"
TRAIN_RESULTS_FILE = "train_results.json"
EVAL_RESULTS_FILE = "eval_results.json"
TEST_RESULTS_FILE = "test_results.json"
TRAINER_STATE_FILE = "trainer_state.json"
SEEDS_FILE = "seeds.json"
GRADIENT_FLOW_FILE = "gradient_flow.json"


class RunFileError(HfRnnError):
    """A run's file cannot be read (not cached while offline, refused by the Hub, or malformed)."""


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or `{}` when the file does not exist."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def checkpoint_step(path: Path) -> int:
    """The step number of a `checkpoint-<step>` folder (-1 if the name has none)."""
    match = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(match.group(1)) if match else -1


class Run:
    """A run: a local folder written by `hf-rnn train`, or a Hub repo id holding one."""

    def __init__(self, location: str | os.PathLike):
        self.location = str(location)
        local = Path(location).expanduser()
        self.is_local = local.exists()  # else a Hub repo id
        self.folder: Path | None = local if local.is_dir() else None

    def __repr__(self) -> str:
        return f"Run({self.location!r})"

    def file(self, filename: str) -> Path | None:
        """`filename` of the run (from the local Hub cache when offline); None when the run has no such file."""
        if self.is_local:
            path = None if self.folder is None else self.folder / filename
            return path if path is not None and path.is_file() else None
        try:
            return Path(hf_hub_download(self.location, filename, local_files_only=hub_is_offline()))
        except RemoteEntryNotFoundError:
            return None
        except LocalEntryNotFoundError as error:
            raise RunFileError(
                f"{filename} of {self.location!r} is not in the local Hub cache, and the Hub is offline "
                "(HF_HUB_OFFLINE set or unreachable): pass a run directory, or fetch the repo once online."
            ) from error
        except (HfHubHTTPError, HFValidationError) as error:
            raise RunFileError(f"cannot read {filename} of {self.location!r} from the Hub: {error}") from error

    def json(self, filename: str) -> dict[str, Any]:
        """A JSON file of the run, `{}` when absent."""
        path = self.file(filename)
        return {} if path is None else read_json(path)

    def has_recipe(self) -> bool:
        return self.file(RECIPE_FILE) is not None

    def recipe(self) -> Recipe | None:
        """The saved recipe, read by the recipe loader; None for a model folder without one."""
        path = self.file(RECIPE_FILE)
        if path is None:
            return None
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(raw, dict):
                raise RecipeError("it does not hold a mapping")
            return recipe_from_dict(raw)
        except (yaml.YAMLError, RecipeError) as error:
            raise RunFileError(f"{path} is not a valid hf_rnn recipe ({str(error).splitlines()[0]}).") from error

    def data_config(self) -> DataConfig:
        """The recipe's `data` section, or the defaults for a model folder without a recipe."""
        recipe = self.recipe()
        return DataConfig() if recipe is None else recipe.data

    def config(self) -> dict[str, Any]:
        return self.json(CONFIG_FILE)

    def results(self) -> dict[str, Any]:
        """The merged results of training (`all_results.json`)."""
        return self.json(ALL_RESULTS_FILE)

    def train_results(self) -> dict[str, Any]:
        return self.json(TRAIN_RESULTS_FILE)

    def test_results(self) -> dict[str, Any]:
        return self.json(TEST_RESULTS_FILE)

    def run_info(self) -> dict[str, Any]:
        return self.json(RUN_INFO_FILE)

    def seeds(self) -> dict[str, Any]:
        return self.json(SEEDS_FILE)

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the training process (recorded with the test results)."""
        return self.results().get("peak_rss_mb")

    def trainer_state_path(self) -> Path:
        """`trainer_state.json` of a local run: the run root's, else the latest `checkpoint-*` folder's; a path to
        a `trainer_state.json` is taken as it is. Raises `RunFileError` when there is none."""
        location = Path(self.location).expanduser()
        if location.is_file() and location.name == TRAINER_STATE_FILE:
            return location
        if self.folder is not None:
            if (self.folder / TRAINER_STATE_FILE).is_file():
                return self.folder / TRAINER_STATE_FILE
            checkpoints = sorted(
                (path for path in self.folder.glob("checkpoint-*") if (path / TRAINER_STATE_FILE).is_file()),
                key=checkpoint_step,
            )
            if checkpoints:
                return checkpoints[-1] / TRAINER_STATE_FILE
        raise RunFileError(
            f"no {TRAINER_STATE_FILE} in {self.location!r} or its checkpoint-* folders: is it a training run folder?"
        )

    def description(self) -> str:
        """`" (classification, bidirectional gru)"` from the saved config, or `""` for a folder without one."""
        from .families import UnknownFamilyError, family_of

        config = self.config()
        try:
            family = family_of(config.get("model_type"))
        except UnknownFamilyError:
            return ""
        return f" ({family.task}, {family.describe(config)})"


def write_recipe(output_dir: str | os.PathLike, recipe: Recipe) -> Path:
    """Save the resolved recipe into a run folder."""
    path = Path(output_dir) / RECIPE_FILE
    path.write_text(recipe.to_yaml(), encoding="utf-8")
    return path

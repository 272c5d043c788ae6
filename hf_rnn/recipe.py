"""Training recipes: a YAML file with `task`, `model`, `tokenizer`, `data` and `training` sections.

`model` holds the model config's own field names, `tokenizer` the fields of `TokenizerConfig`, `data` those
of `DataConfig`, and `training` the `TrainingArguments` / `Seq2SeqTrainingArguments` field names plus the
few hf_rnn training options of `RecipeTrainingOptions`. Any value can be overridden with
`--set dotted.key=value`. Unknown keys and wrong types fail before anything is loaded or trained.
"""

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .data import DataConfig
from .errors import HfRnnError
from .families import tasks
from .tokenization import TokenizerConfig

RECIPES_DIR = Path(__file__).parent / "recipes"
DEFAULT_SEED = 42  # `training.seed` (and `data.seed`) of a recipe that sets none
SECTIONS = ("task", "model", "tokenizer", "data", "training")


class RecipeError(HfRnnError, ValueError):
    """A recipe or override is malformed; the message names the key and what is allowed."""


@dataclasses.dataclass
class RecipeTrainingOptions:
    """hf_rnn options that live in the `training` section beside the `TrainingArguments` fields.

    Args:
        early_stopping_patience: evaluations without improvement before training stops (None: off).
        teacher_forcing_schedule: translation only; `constant` keeps `model.teacher_forcing_ratio`,
            `linear` lowers it linearly to `teacher_forcing_final` over training.
        teacher_forcing_final: final teacher forcing ratio of the linear schedule.
        generation_num_beams: beam size for evaluation and prediction (translation).
        generation_max_new_tokens: max new tokens when generating (translation).
        threads: torch intra-op threads per process (None: leave torch's default).
        gradient_flow_every: classification only; every N optimizer steps, record ‖∂L/∂x_t‖ per token
            position on a fixed training batch into `<output_dir>/gradient_flow.json`
            (`hf_rnn.diagnostics.GradientFlowCallback`; None: off).
        push_to_hub_repo: Hub repo (`user/name`) that the finished run is pushed to, as `hf-rnn push` does
            (None: no upload).
        max_train_minutes: stop training after this many minutes of it (then evaluate and test as usual; None:
            no limit), for a fixed time budget such as `scripts/gpu_check.sh`.
        max_tokens_per_batch: token-based training batches of about this many padded tokens (for translation,
            source + target), as fairseq's `--max-tokens` (`hf_rnn.batching`); None: batches of
            `per_device_train_batch_size` examples.
        bptt: language modeling: the mean length of the truncated-BPTT windows (`hf_rnn.streams`).
        variable_bptt: language modeling: AWD-LSTM's random window lengths around `bptt`, new every epoch; else
            fixed windows.
        layerwise_lr_decay: discriminative learning rates: each layer group below the head learns this many times
            slower than the one above (ULMFiT: 2.6; `hf_rnn.fine_tuning`); None: one learning rate.
        gradual_unfreezing_steps: train the head alone first and unfreeze one more layer group every this many
            optimizer steps (`hf_rnn.fine_tuning`); None: everything trains from the start.
    """

    early_stopping_patience: int | None = None
    teacher_forcing_schedule: str = "constant"
    teacher_forcing_final: float = 1.0
    generation_num_beams: int = 1
    generation_max_new_tokens: int = 100
    threads: int | None = None
    gradient_flow_every: int | None = None
    push_to_hub_repo: str | None = None
    max_tokens_per_batch: int | None = None
    max_train_minutes: float | None = None
    bptt: int = 70
    variable_bptt: bool = True
    layerwise_lr_decay: float | None = None
    gradual_unfreezing_steps: int | None = None

    def __post_init__(self):
        if self.teacher_forcing_schedule not in ("constant", "linear"):
            raise ValueError(
                "`training.teacher_forcing_schedule` must be one of ['constant', 'linear'], "
                f"got {self.teacher_forcing_schedule!r}."
            )
        if not 0.0 <= self.teacher_forcing_final <= 1.0:
            raise ValueError(f"`training.teacher_forcing_final` must be in [0, 1], got {self.teacher_forcing_final}.")
        if self.generation_num_beams < 1 or self.generation_max_new_tokens < 1:
            raise ValueError("`training.generation_num_beams` and `generation_max_new_tokens` must be >= 1.")
        if self.layerwise_lr_decay is not None and self.layerwise_lr_decay <= 0:
            raise ValueError(f"`training.layerwise_lr_decay` must be positive, got {self.layerwise_lr_decay}.")
        if self.gradual_unfreezing_steps is not None and self.gradual_unfreezing_steps < 1:
            raise ValueError(f"`training.gradual_unfreezing_steps` must be >= 1, got {self.gradual_unfreezing_steps}.")
        if self.bptt < 2:
            raise ValueError(f"`training.bptt` must be at least 2 tokens, got {self.bptt}.")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"`training.threads` must be >= 1, got {self.threads}.")
        if self.gradient_flow_every is not None and self.gradient_flow_every < 1:
            raise ValueError(f"`training.gradient_flow_every` must be >= 1, got {self.gradient_flow_every}.")
        if self.push_to_hub_repo is not None:
            try:
                validate_repo_id(self.push_to_hub_repo)
            except HFValidationError as error:
                raise ValueError(f"`training.push_to_hub_repo` must be a Hub repo id (user/name): {error}") from error


@dataclasses.dataclass
class Recipe:
    task: str
    model: dict[str, Any]
    tokenizer: TokenizerConfig
    data: DataConfig
    training: dict[str, Any]
    options: RecipeTrainingOptions
    raw: dict[str, Any]

    def to_yaml(self) -> str:
        """The resolved recipe (after overrides) as YAML."""
        return yaml.safe_dump(self.raw, sort_keys=False, allow_unicode=True)


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """`training.learning_rate=2e-3` -> (["training", "learning_rate"], 0.002)."""
    if "=" not in assignment:
        raise RecipeError(f"--set expects dotted.key=value, got {assignment!r}.")
    key, value = assignment.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise RecipeError(f"--set key {key!r} has an empty part.")
    parsed = yaml.safe_load(value) if value.strip() else None
    if isinstance(parsed, str):
        # YAML 1.1 reads `2e-3` (no dot) as a string; a number was meant.
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for assignment in overrides:
        path, value = parse_override(assignment)
        if path[0] not in SECTIONS:
            raise RecipeError(f"--set {'.'.join(path)}: unknown section {path[0]!r}; sections are {list(SECTIONS)}.")
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {'.'.join(path)}: {part!r} is not a section.")
        node[path[-1]] = value
    return raw


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` against a dataclass field annotation (ints are accepted for floats)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key)
            except RecipeError as error:
                errors.append(error)
        raise errors[0]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and not (
        isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))
    ):
        raise RecipeError(f"`{key}` must be of type {annotation.__name__}, got {value!r} ({type(value).__name__}).")
    return value


def build_section(cls: type, values: dict[str, Any] | None, section: str) -> Any:
    """Instantiate a dataclass section, naming unknown keys and type errors."""
    values = dict(values or {})
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise RecipeError(f"unknown key(s) in `{section}`: {unknown}. Allowed: {sorted(fields)}.")
    hints = typing.get_type_hints(cls)
    checked = {name: coerce(value, hints[name], f"{section}.{name}") for name, value in values.items()}
    try:
        return cls(**checked)
    except ValueError as error:
        raise RecipeError(str(error)) from error


def split_training_section(values: dict[str, Any] | None) -> tuple[dict[str, Any], RecipeTrainingOptions]:
    values = dict(values or {})
    option_names = {field.name for field in dataclasses.fields(RecipeTrainingOptions)}
    options = {name: values.pop(name) for name in list(values) if name in option_names}
    return values, build_section(RecipeTrainingOptions, options, "training")


def shipped_recipes() -> dict[str, Path]:
    """The recipes that ship with hf_rnn, by name (`imdb_bilstm`, ...)."""
    return {path.stem: path for path in sorted(RECIPES_DIR.glob("*.yaml"))}


def recipe_summary(path: Path) -> str:
    """The first sentence of a recipe's leading comment."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        words.extend(line.lstrip("#").split())
    text = " ".join(words)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: the path if it exists, else a shipped recipe of that name (`imdb_bilstm[.yaml]`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    name = path.name.removesuffix(".yaml")
    if str(name_or_path).removesuffix(".yaml") == name and name in shipped:
        return shipped[name]
    raise RecipeError(
        f"recipe {str(name_or_path)!r} not found: give a YAML file or the name of a shipped recipe "
        f"({', '.join(shipped)}; `hf-rnn recipes` describes them)."
    )


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe YAML (a path, or a shipped recipe's name), apply `--set` overrides, validate every section."""
    path = resolve_recipe_path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise RecipeError(f"{path} must hold a mapping with sections {list(SECTIONS)}.")
    return recipe_from_dict(apply_overrides(raw, overrides or []))


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise RecipeError(f"unknown recipe section(s) {unknown}; sections are {list(SECTIONS)}.")
    task = raw.get("task", "classification")
    if task not in tasks():
        raise RecipeError(f"`task` must be one of {tasks()}, got {task!r}.")
    for section in ("model", "tokenizer", "data", "training"):
        if not isinstance(raw.get(section) or {}, dict):
            raise RecipeError(f"section `{section}` must be a mapping.")
    training, options = split_training_section(raw.get("training"))
    return Recipe(
        task=task,
        model=dict(raw.get("model") or {}),
        tokenizer=build_section(TokenizerConfig, raw.get("tokenizer"), "tokenizer"),
        data=build_section(DataConfig, raw.get("data"), "data"),
        training=training,
        options=options,
        raw=raw,
    )

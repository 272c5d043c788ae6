"""Looking inside the recurrence: gradient flow through time (`diagnose_gradients`), gate activity
(`diagnose_gates`) and RNN vs LSTM vs GRU at the same recipe and budget (`compare_cells_report`).

The measurements live in `hf_rnn.lab.diagnostics`, the figures in `hf_rnn.plotting`, the training in
`hf_rnn.training.train` (the one training path); this module picks the data, runs them and writes the files. The
`hf-rnn diagnose` / `compare-cells` commands (`hf_rnn.commands`) only parse options and print.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..data import DataConfig, DataError
from ..errors import HfRnnError
from ..families import family_for_task
from ..recipe import Recipe, RecipeError
from ..runs import Run

CELL_TYPES = ("rnn", "lstm", "gru")
DEFAULT_RECIPE = "imdb_tiny"
# Distances from the last token at which the gradient-flow summary reports the decay.
SUMMARY_DISTANCES = (10, 50, 100, 200, 400)


# ----------------------------------------------------------------------------------------------------------
# Loading models and real batches


def is_model_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "config.json").is_file()


def load_classifier(model_dir: str | os.PathLike):
    """A saved `rnn_classifier` model (eval mode) and its tokenizer; other model types are refused."""
    from transformers import AutoModelForSequenceClassification

    from ..loading import load_config, load_model, load_tokenizer  # safetensors only, one-line errors

    classifier_type = family_for_task("classification").model_type
    config = load_config(model_dir)
    if config.model_type != classifier_type:
        raise HfRnnError(f"{model_dir} holds a {config.model_type!r} model; this works on {classifier_type} models.")
    return load_model(model_dir, AutoModelForSequenceClassification), load_tokenizer(model_dir)


def pick_texts(
    split, data: DataConfig, count: int, tokenizer, max_length: int, min_length: int = 0, seed: int = 0
) -> tuple[list[str], list[int]]:
    """`count` texts and labels drawn from `split` with a seeded shuffle, keeping those with at least
    `min_length` tokens after truncation to `max_length` (so a plot can show long reviews only)."""
    shuffled = split.shuffle(seed=seed)
    texts, labels = [], []
    for start in range(0, len(shuffled), 512):
        chunk = shuffled[start : start + 512]
        lengths = [
            len(ids) for ids in tokenizer(chunk[data.text_column], truncation=True, max_length=max_length)["input_ids"]
        ]
        for text, label, length in zip(chunk[data.text_column], chunk[data.label_column], lengths):
            if length >= min_length:
                texts.append(text)
                labels.append(int(label))
        if len(texts) >= count:
            return texts[:count], labels[:count]
    if not texts:
        raise DataError(f"no text in the split has at least {min_length} tokens (after truncation to {max_length}).")
    return texts, labels


def encode_batch(tokenizer, texts: list[str], labels: list[int], max_length: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids` / `attention_mask` `(batch, max_len)` and `labels` `(batch,)`."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": torch.tensor(labels),
    }


def diagnostic_model_section(model: dict, cell_type: str, recipe_architecture: bool) -> dict:
    """The recipe's `model` section for `cell_type`; unless `recipe_architecture`, read left to right and
    classified from the last state, the setting in which the gradient must travel back through every step."""
    section = {**model, "cell_type": cell_type}
    if not recipe_architecture:
        section.update(bidirectional=False, pooling="last")
    return section


def fresh_models_from_recipe(recipe: Recipe, cells: Sequence[str], data_dir, recipe_architecture: bool, seed: int):
    """Untrained classifiers (one per cell type, same sizes and seed) and the tokenizer learned as `train` would."""
    from ..data import load_task_splits
    from ..tasks import task_adapter
    from ..tokenization import train_tokenizer

    adapter = task_adapter("classification")
    splits = load_task_splits(recipe.data, data_dir, adapter.required_columns(recipe.data))
    tokenizer = train_tokenizer(adapter.tokenizer_texts(splits["train"], recipe.data), recipe.tokenizer)
    models = {}
    for cell in cells:
        cell_recipe = dataclasses.replace(
            recipe, model=diagnostic_model_section(recipe.model, cell, recipe_architecture)
        )
        torch.manual_seed(seed)
        models[cell] = (adapter.build_model(cell_recipe, tokenizer, splits["train"]).eval(), tokenizer)
    return models


def briefly_trained_models(
    recipe_path: str,
    overrides: list[str],
    cells: Sequence[str],
    train_steps: int,
    work_dir: Path,
    data_dir,
    recipe_architecture: bool,
    threads: int,
) -> dict[str, Path]:
    """Train one classifier per cell type for `train_steps` optimizer steps through `training.train`.

    Same recipe for all (only `model.cell_type` differs; unidirectional last-state unless
    `recipe_architecture`), no intermediate evaluation or checkpoints, 200-example validation and test
    sets. Returns `{cell_type: saved model folder}`.
    """
    from ..recipe import load_recipe
    from ..training import train

    run_dirs = {}
    for cell in cells:
        cell_overrides = [
            *overrides,
            f"model.cell_type={cell}",
            f"training.max_steps={train_steps}",
            "training.eval_strategy=no",
            "training.save_strategy=no",
            "training.load_best_model_at_end=false",
            "training.early_stopping_patience=null",
            f"training.threads={threads}",
            "training.disable_tqdm=true",
            "data.max_eval_samples=200",
            "data.max_test_samples=200",
        ]
        if not recipe_architecture:
            cell_overrides += ["model.bidirectional=false", "model.pooling=last"]
        run_dirs[cell] = work_dir / cell
        train(load_recipe(recipe_path, cell_overrides), run_dirs[cell], data_dir=data_dir)
    return run_dirs


# ----------------------------------------------------------------------------------------------------------
# hf-rnn diagnose gradients


def summarise_gradient_flow(result: dict) -> dict:
    """‖∂L/∂x‖ at a few distances from the last token, and its ratio to the value at the last token."""
    from_end = result["grad_norm_from_end"]
    counts = result["num_sequences_per_step"]
    at_distance = {"0": from_end[0]}
    decay = {}
    for distance in SUMMARY_DISTANCES:
        if distance < len(from_end) and counts[distance] > 0:
            at_distance[str(distance)] = from_end[distance]
            decay[str(distance)] = from_end[distance] / from_end[0] if from_end[0] > 0 else None
    return {"grad_norm_at_distance_from_end": at_distance, "decay_from_end": decay}


def training_summary(model_dir: str | os.PathLike) -> str | None:
    """`"trained 3 epochs on 4000 texts"` from a run's `train_results.json`, or None without one."""
    results = Run(model_dir).train_results()
    if "epoch" not in results or "train_examples" not in results:
        return None
    return f"trained {plural(round(results['epoch'], 2), 'epoch')} on {results['train_examples']} texts"


@dataclasses.dataclass
class GradientFlowOptions:
    """What `diagnose_gradients` measures; the fields are `hf-rnn diagnose gradients`' options."""

    sources: list[str]
    output: str
    data_dir: str | None = None
    split: str = "test"
    batch_size: int = 16
    max_length: int | None = None
    min_length: int = 0
    cells: list[str] | None = None
    train_steps: int = 0
    recipe_architecture: bool = False
    overrides: list[str] = dataclasses.field(default_factory=list)
    max_grad_norm: float | None = None
    precision: str = "float64"
    seed: int = 0
    threads: int = 1


def gradient_flow_models(args: GradientFlowOptions, from_recipe: bool) -> tuple[dict, DataConfig, str]:
    """The classifiers `diagnose gradients` measures: `({label: (model, tokenizer)}, data config, state)`."""
    from ..recipe import load_recipe

    sources = args.sources
    if not from_recipe:
        models = {}
        for source in sources:
            model, tokenizer = load_classifier(source)
            name = Path(source).resolve().name
            cell = model.config.cell_type
            models[name if cell in name.lower() else f"{name} [{cell}]"] = (model, tokenizer)
        summaries = {training_summary(source) for source in sources}
        state = summaries.pop() if len(summaries) == 1 and None not in summaries else "saved models"
        return models, Run(sources[0]).data_config(), state

    recipe = load_recipe(sources[0], args.overrides)
    if recipe.task != "classification":
        raise RecipeError(f"gradient flow is measured for classification recipes, got task {recipe.task!r}.")
    cells = args.cells or list(CELL_TYPES)
    if args.train_steps > 0:
        run_dirs = briefly_trained_models(
            sources[0],
            args.overrides,
            cells,
            args.train_steps,
            Path(args.output) / "models",
            args.data_dir,
            args.recipe_architecture,
            args.threads,
        )
        models = {cell: load_classifier(run_dir) for cell, run_dir in run_dirs.items()}
        return models, recipe.data, f"after {args.train_steps} training steps"
    models = fresh_models_from_recipe(recipe, cells, args.data_dir, args.recipe_architecture, args.seed)
    return models, recipe.data, "at initialisation"


def diagnose_gradients(args: GradientFlowOptions) -> dict:
    """Measure ‖∂L/∂x_t‖ per time step on a batch of real texts for saved classifiers or, from one recipe, one fresh
    (or briefly trained) classifier per cell type; write `gradients.png`, `gradients_by_position.png` and
    `gradients.json` into `args.output`. Returns `{"settings", "models", "batch_text", "files"}`."""
    from ..data import load_eval_split
    from ..plotting import plot_gradient_flow
    from .diagnostics import clip_coefficient, gradient_norms_per_step, write_json

    torch.set_num_threads(args.threads)
    output_dir = Path(args.output)
    sources = args.sources
    from_recipe = len(sources) == 1 and not is_model_dir(sources[0])
    if not from_recipe and not all(is_model_dir(source) for source in sources):
        raise HfRnnError(
            f"expected saved model folders (with config.json) or one recipe YAML, got {sources}; "
            "a recipe cannot be mixed with model folders."
        )
    if not from_recipe and (args.cells or args.train_steps or args.recipe_architecture or args.overrides):
        raise HfRnnError(
            "--cells, --train-steps, --recipe-architecture and --set apply to a recipe, not to saved models."
        )

    started = time.perf_counter()
    models, data, state = gradient_flow_models(args, from_recipe)

    first_tokenizer = next(iter(models.values()))[1]
    max_length = args.max_length or first_tokenizer.model_max_length
    split = load_eval_split(data, args.data_dir, args.split, [data.text_column, data.label_column])
    texts, labels = pick_texts(split, data, args.batch_size, first_tokenizer, max_length, args.min_length, args.seed)

    results = {}
    for label, (model, tokenizer) in models.items():
        batch = encode_batch(tokenizer, texts, labels, max_length)
        measured = copy.deepcopy(model).double() if args.precision == "float64" else model
        result = gradient_norms_per_step(measured, batch, max_grad_norm=args.max_grad_norm)
        result["clip_coefficient"] = clip_coefficient(result)
        result["architecture"] = {
            "bidirectional": model.config.bidirectional,
            "pooling": model.config.pooling,
            "hidden_size": model.config.hidden_size,
            "embedding_size": model.config.embedding_size,
            "num_hidden_layers": model.config.num_hidden_layers,
        }
        result.update(summarise_gradient_flow(result))
        results[label] = result

    lengths = batch["attention_mask"].sum(dim=1)
    settings = {
        "sources": sources,
        "state": state,
        "train_steps": args.train_steps,
        "dataset": data.local_name,
        "split": args.split,
        "texts": len(texts),
        "max_length": max_length,
        "min_length": args.min_length,
        "token_lengths": {"min": int(lengths.min()), "median": int(lengths.median()), "max": int(lengths.max())},
        "max_grad_norm": args.max_grad_norm,
        "precision": args.precision,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
    }
    architecture = next(iter(results.values()))["architecture"]
    pooling = "last-state" if architecture["pooling"] == "last" else architecture["pooling"]
    reader = (
        f"{'bidirectional' if architecture['bidirectional'] else 'left to right'}, {pooling} pooling, "
        f"hidden {architecture['hidden_size']}"
    )
    shortest, longest = settings["token_lengths"]["min"], settings["token_lengths"]["max"]
    batch_text = (
        f"{len(texts)} {data.local_name} {args.split} texts of "
        f"{shortest if shortest == longest else f'{shortest}-{longest}'} tokens"
    )
    plot_gradient_flow(
        results,
        output_dir / "gradients.png",
        title=f"‖∂L/∂x‖ back from each text's last token, {state}\n{batch_text}; {reader}",
        align="end",
        show_clipped=args.max_grad_norm is not None,
    )
    plot_gradient_flow(
        results,
        output_dir / "gradients_by_position.png",
        title=f"‖∂L/∂x_t‖ by token position, {state}\n{batch_text}; {reader}",
        align="start",
        show_clipped=args.max_grad_norm is not None,
    )
    write_json({"settings": settings, "models": results}, output_dir / "gradients.json")
    files = [output_dir / name for name in ("gradients.png", "gradients_by_position.png", "gradients.json")]
    return {"settings": settings, "models": results, "batch_text": batch_text, "files": files}


# ----------------------------------------------------------------------------------------------------------
# hf-rnn diagnose gates


def diagnose_gates(
    model_dir: str,
    text: str,
    output: str | os.PathLike,
    max_length: int | None = None,
    units: bool = False,
    stretch: bool = False,
) -> dict:
    """Draw the gate activity of an LSTM / GRU classifier reading `text` into `output` (per hidden unit with
    `units`, else the mean over units; `stretch` spreads the colours over the values shown) and write the values
    beside it as JSON. Returns `{"means": {gate: per-token means}, "label", "probability", "files"}`."""
    from ..plotting import plot_gate_activity, plot_gate_units
    from .diagnostics import gate_activity, gate_units, write_json

    model, tokenizer = load_classifier(model_dir)
    cell_type = model.config.cell_type
    if cell_type == "rnn":
        raise HfRnnError("the plain RNN has no gates: give an LSTM or GRU classifier.")
    max_length = max_length or tokenizer.model_max_length
    encoded = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**encoded).logits.softmax(dim=-1)[0]
    predicted = int(probabilities.argmax())
    label = model.config.id2label.get(predicted, str(predicted))
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
    output = Path(output)
    subtitle = f"{Path(model_dir).resolve().name}: predicted {label} ({float(probabilities[predicted]):.2f})"
    if units:
        values = gate_units(model, encoded["input_ids"], encoded["attention_mask"])
        title = f"{cell_type.upper()} gate values of every hidden unit (layer 1, left to right)\n{subtitle}"
        plot_gate_units(values, tokens, output, title=title)
        means = {name: [sum(unit) / len(unit) for unit in zip(*rows)] for name, rows in values["gates"].items()}
    else:
        values = gate_activity(model, encoded["input_ids"], encoded["attention_mask"])
        title = (
            f"{cell_type.upper()} gate activity per token, mean over hidden units (layer 1, left to right)\n{subtitle}"
        )
        plot_gate_activity(values, tokens, output, title=title, value_range=None if stretch else (0.0, 1.0))
        means = values["gates"]
    write_json({**values, "tokens": tokens, "predicted": label}, output.with_suffix(".json"))
    return {
        "means": means,
        "label": label,
        "probability": float(probabilities[predicted]),
        "files": [output, output.with_suffix(".json")],
    }


# ----------------------------------------------------------------------------------------------------------
# hf-rnn compare-cells


def compare_cells(
    recipe_path: str | os.PathLike,
    cells: Sequence[str],
    output_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
) -> list[dict]:
    """Train one classifier per cell type with `recipe_path` + `overrides` (only `model.cell_type` differs)
    through `training.train`, into `<output_dir>/<cell>`; returns one row of results per cell type."""
    from transformers import AutoModelForSequenceClassification

    from ..recipe import load_recipe
    from ..training import train

    rows = []
    for cell in cells:
        run_dir = Path(output_dir) / cell
        recipe = load_recipe(recipe_path, [*overrides, f"model.cell_type={cell}"])
        if recipe.task != "classification":
            raise RecipeError(f"compare-cells needs a classification recipe, got task {recipe.task!r}.")
        results = train(recipe, run_dir, data_dir=data_dir)
        model = AutoModelForSequenceClassification.from_pretrained(run_dir, use_safetensors=True)
        rows.append(
            {
                "cell_type": cell,
                "bidirectional": model.config.bidirectional,
                "pooling": model.config.pooling,
                "hidden_size": model.config.hidden_size,
                "parameters": sum(param.numel() for param in model.parameters()),
                "train_runtime_s": round(results["train_runtime"], 1),
                "train_examples_per_second": results["train_examples_seen_per_second"],
                "train_tokens_per_second": results["train_tokens_seen_per_second"],
                "epochs": results.get("epoch"),
                "eval_accuracy": results["eval_accuracy"],
                "test_accuracy": results["test_accuracy"],
                "test_macro_f1": results["test_macro_f1"],
                "test_examples": results["test_examples"],
                "train_examples": results["train_examples"],
                "run_dir": str(run_dir),
            }
        )
    return rows


def plural(count: float, noun: str) -> str:
    """`plural(1, "epoch")` -> `"1 epoch"`, `plural(2.5, "epoch")` -> `"2.5 epochs"`."""
    return f"{count:g} {noun}{'' if count == 1 else 's'}"


def architecture_text(row: dict) -> str:
    """`"bidirectional, mean_max pooling, hidden 64"` for a `compare_cells` row."""
    directions = "bidirectional" if row.get("bidirectional") else "left to right"
    pooling = "last-state" if row.get("pooling") == "last" else row.get("pooling")
    return f"{directions}, {pooling} pooling, hidden {row.get('hidden_size')}"


def comparison_markdown(rows: Sequence[dict], settings: dict) -> str:
    """A markdown table of `compare_cells` rows, preceded by the settings that produced it."""
    lines = [
        f"Recipe `{settings['recipe']}` ({architecture_text(rows[0])}) on `{settings['data']}`: "
        f"{settings['train_samples']} training reviews ({plural(settings['epochs'], 'epoch')}), "
        f"{settings['test_samples']} test reviews, texts truncated to {settings['max_length']} tokens, "
        f"{plural(settings['threads'], 'thread')}"
        + "".join(f", `--set {override}`" for override in settings.get("overrides", []))
        + "; only `model.cell_type` differs.",
        "",
        "| cell | parameters | train time (s) | train examples/s | validation accuracy | test accuracy | test macro-F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['cell_type'].upper()} | {row['parameters']:,} | {row['train_runtime_s']:.1f} | "
            f"{row['train_examples_per_second']:.1f} | {row['eval_accuracy']:.4f} | {row['test_accuracy']:.4f} | "
            f"{row['test_macro_f1']:.4f} |"
        )
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class CellComparisonOptions:
    """The budget `compare_cells_report` gives every cell type; the fields are `hf-rnn compare-cells`' options."""

    recipe: str = DEFAULT_RECIPE
    cells: list[str] = dataclasses.field(default_factory=lambda: list(CELL_TYPES))
    output: str = "runs/compare-cells"
    data_dir: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)
    train_samples: int = 3000
    eval_samples: int = 500
    test_samples: int = 1000
    epochs: float = 3
    max_length: int = 256
    threads: int = 1


def compare_cells_report(args: CellComparisonOptions) -> str:
    """Train one classifier per cell type with the same recipe and budget (`compare_cells`) and write
    `comparison.md`, `comparison.json` and `comparison.png` into `args.output`; returns the markdown table."""
    torch.set_num_threads(args.threads)
    output_dir = Path(args.output)
    # Same budget for every cell: fixed epochs, no early stopping; the user's --set come first, ours win.
    overrides = [
        *args.overrides,
        f"data.max_train_samples={args.train_samples}",
        f"data.max_eval_samples={args.eval_samples}",
        f"data.max_test_samples={args.test_samples}",
        f"training.num_train_epochs={args.epochs}",
        "training.early_stopping_patience=null",
        f"training.threads={args.threads}",
        f"tokenizer.model_max_length={args.max_length}",
    ]
    rows = compare_cells(args.recipe, args.cells, output_dir, args.data_dir, overrides)
    recipe_path = Path(args.recipe).resolve()
    settings = {
        # Relative to the working directory when inside it, so that the table reads the same on every machine.
        "recipe": os.path.relpath(recipe_path) if recipe_path.is_relative_to(Path.cwd()) else str(recipe_path),
        "data": str(args.data_dir or os.environ.get("HF_RNN_DATA_DIR") or "the Hub"),
        "train_samples": rows[0]["train_examples"],
        "eval_samples": args.eval_samples,
        "test_samples": rows[0]["test_examples"],
        "epochs": args.epochs,
        "max_length": args.max_length,
        "threads": args.threads,
        "overrides": args.overrides,
    }
    return write_comparison(rows, settings, output_dir)


def write_comparison(rows: Sequence[dict], settings: dict, output_dir: str | os.PathLike) -> str:
    """Write `comparison.md`, `comparison.json` and `comparison.png` into `output_dir`; returns the table."""
    from ..plotting import plot_cell_comparison
    from .diagnostics import write_json

    output_dir = Path(output_dir)
    table = comparison_markdown(rows, settings)
    (output_dir / "comparison.md").write_text(table, encoding="utf-8")
    write_json({"settings": settings, "rows": list(rows)}, output_dir / "comparison.json")
    plot_cell_comparison(
        rows,
        output_dir / "comparison.png",
        title=f"RNN vs LSTM vs GRU, same recipe and budget: {architecture_text(rows[0])}\n{settings['train_samples']} training / "
        f"{settings['test_samples']} test reviews, {plural(settings['epochs'], 'epoch')}, "
        f"≤{settings['max_length']} tokens, {plural(settings['threads'], 'thread')}",
    )
    return table

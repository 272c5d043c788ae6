"""Figures of training runs: loss and metric curves from `trainer_state.json`, and cell-comparison bars.

Every function draws on a bare matplotlib `Figure` (Agg canvas, never registered with pyplot), so it works
headless and leaves no global state behind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

# Log-history keys that are bookkeeping, not quality metrics.
NON_METRIC_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second", "_loss")


def checkpoint_step(path: Path) -> int:
    """The step number of a `checkpoint-<step>` folder (-1 if the name has none)."""
    match = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def find_trainer_state(run_dir: str | os.PathLike) -> Path:
    """`trainer_state.json` of a run: the run root's, else the latest `checkpoint-*` folder's.

    Raises `FileNotFoundError` naming the folder when there is none.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.name == "trainer_state.json":
        return run_dir
    if (run_dir / "trainer_state.json").is_file():
        return run_dir / "trainer_state.json"
    checkpoints = sorted(
        (path for path in run_dir.glob("checkpoint-*") if (path / "trainer_state.json").is_file()),
        key=checkpoint_step,
    )
    if not checkpoints:
        raise FileNotFoundError(
            f"no trainer_state.json in {str(run_dir)!r} or its checkpoint-* folders: is it a training run folder?"
        )
    return checkpoints[-1] / "trainer_state.json"


def training_curves(log_history: Sequence[Mapping]) -> dict[str, dict[str, list[float]]]:
    """Curves from a Trainer `log_history`: `{name: {"step": [...], "value": [...]}}`.

    `loss` is the training loss of each logging window, `eval_loss` and every other `eval_<metric>`
    (accuracy, macro_f1, bleu, chrf, ...) one point per evaluation; runtime and throughput entries, and
    the end-of-training summary (`train_loss`), are left out.
    """
    curves: dict[str, dict[str, list[float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        for name, value in entry.items():
            is_train_loss = name == "loss"
            is_eval = name.startswith("eval_") and (name == "eval_loss" or not name.endswith(NON_METRIC_SUFFIXES))
            if (is_train_loss or is_eval) and isinstance(value, (int, float)) and not isinstance(value, bool):
                curve = curves.setdefault(name, {"step": [], "value": []})
                curve["step"].append(step)
                curve["value"].append(float(value))
    return curves


def steps_per_epoch(log_history: Sequence[Mapping]) -> float | None:
    """Optimizer steps per epoch, read off the last log entry that has both a step and an epoch."""
    for entry in reversed(log_history):
        if entry.get("step") and entry.get("epoch"):
            return entry["step"] / entry["epoch"]
    return None


def plot_training_curves(
    state: Mapping, path: str | os.PathLike, title: str | None = None, test_metrics: Mapping | None = None
) -> Path:
    """Training loss and evaluation metrics against the optimizer step (epochs on the top axis), as a PNG.

    `state` is a loaded `trainer_state.json`. The left panel shows the training loss (per logging window)
    and the validation loss; the right panel every validation metric; a dotted line marks the best
    checkpoint. `test_metrics` (e.g. a run's `test_results.json`) are drawn as horizontal reference lines
    for the metrics they share. Returns the path written.
    """
    log_history = state.get("log_history") or []
    curves = training_curves(log_history)
    if not curves:
        raise ValueError("the log history holds no loss or evaluation metric to plot.")
    metric_names = [name for name in curves if name not in ("loss", "eval_loss")]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(12 if metric_names else 6.5, 4.5), layout="constrained")
    axes = figure.subplots(1, 2 if metric_names else 1, squeeze=False, sharex=True)[0]
    loss_axis = axes[0]
    for name, label, style in (("loss", "training loss", "-"), ("eval_loss", "validation loss", "o-")):
        if name in curves:
            loss_axis.plot(curves[name]["step"], curves[name]["value"], style, label=label, linewidth=1.2)
    loss_axis.set_ylabel("loss")
    loss_axis.set_title("Loss")
    if metric_names:
        metric_axis = axes[1]
        for index, name in enumerate(metric_names):
            metric = name.removeprefix("eval_")
            color = f"C{index % 10}"
            # Distinct markers: accuracy and macro-F1 are often almost equal and would hide each other.
            metric_axis.plot(
                curves[name]["step"],
                curves[name]["value"],
                marker="osD^v<>"[index % 7],
                markersize=7 - 1.5 * (index % 3),
                label=f"validation {metric}",
                color=color,
            )
            test_value = (test_metrics or {}).get(f"test_{metric}")
            if isinstance(test_value, (int, float)):
                metric_axis.axhline(
                    test_value,
                    linestyle=("--", ":", "-.")[index % 3],
                    linewidth=1.0,
                    color=color,
                    label=f"test {metric}: {test_value:.4g}",
                )
        values = [value for name in metric_names for value in curves[name]["value"]]
        if max(values) <= 1.0:  # accuracy-like: a readable band even around a single evaluation
            metric_axis.set_ylim(max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05))
        metric_axis.set_ylabel("metric value")
        metric_axis.set_title("Validation metrics")

    best_step = state.get("best_global_step")
    per_epoch = steps_per_epoch(log_history)
    for axis in axes:
        if best_step:
            axis.axvline(best_step, linestyle=":", color="grey", label=f"best checkpoint (step {best_step})")
        axis.set_xlabel("optimizer step")
        axis.set_xlim(left=0)
        axis.ticklabel_format(axis="y", useOffset=False)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
        if per_epoch:
            top = axis.secondary_xaxis(
                "top", functions=(lambda step, n=per_epoch: step / n, lambda epoch, n=per_epoch: epoch * n)
            )
            top.set_xlabel("epoch")
    figure.suptitle(title or "Training curves")
    figure.savefig(path, dpi=100)
    return path


def plot_gradient_flow_records(document: Mapping, path: str | os.PathLike, max_curves: int = 6) -> Path:
    """How the gradient flow changes during training, from a `GradientFlowCallback` file, as a PNG.

    `document` is a loaded `gradient_flow.json` (`{"every_n_steps", "records": [...]}`, as written with
    `training.gradient_flow_every`). At most `max_curves` records, evenly spaced from the first to the last,
    are drawn on a log scale against the steps back from each sequence's last token, coloured by training
    step. Returns the path written.
    """
    records = list(document.get("records") or [])
    if not records:
        raise ValueError("the gradient-flow file holds no records.")
    if len(records) > max_curves:
        picks = sorted({round(index * (len(records) - 1) / (max_curves - 1)) for index in range(max_curves)})
        records = [records[index] for index in picks]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    axis = figure.subplots()
    colormap = matplotlib.colormaps["viridis"]
    for index, record in enumerate(records):
        norms = record.get("grad_norm_from_end") or record["grad_norm_per_step"][::-1]
        color = colormap(index / max(1, len(records) - 1))
        axis.plot(range(len(norms)), norms, color=color, linewidth=1.2, label=f"step {record['step']}")
    axis.set_yscale("log")
    axis.set_xlabel("steps back from each sequence's last token")
    axis.set_ylabel("‖∂L/∂x‖ at that step")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, title="training step")
    cell_type = records[-1].get("cell_type", "")
    axis.set_title(f"Gradient flow during training ({cell_type.upper()}, fixed batch of training texts)")
    figure.savefig(path, dpi=100)
    return path


def plot_cell_comparison(rows: Sequence[Mapping], path: str | os.PathLike, title: str | None = None) -> Path:
    """Bars per cell type: test accuracy, training throughput (examples/s) and parameter count, as a PNG.

    `rows` are the `compare_cells` rows (`cell_type`, `test_accuracy`, `train_examples_per_second`,
    `parameters`). Each bar carries its value. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [row["cell_type"].upper() for row in rows]
    panels = (
        ("test_accuracy", "test accuracy", "{:.3f}"),
        ("train_examples_per_second", "training examples / s", "{:.0f}"),
        ("parameters", "parameters", "{:,}"),
    )
    figure = Figure(figsize=(11, 3.8), layout="constrained")
    axes = figure.subplots(1, len(panels))
    for axis, (key, label, fmt) in zip(axes, panels):
        values = [row[key] for row in rows]
        bars = axis.bar(labels, values, color=[f"C{index % 10}" for index in range(len(rows))])
        axis.bar_label(bars, labels=[fmt.format(value) for value in values], fontsize=9)
        axis.set_title(label)
        axis.set_ylabel(label)
        axis.set_xlabel("cell type")
        axis.margins(y=0.15)
        if key == "test_accuracy":
            axis.set_ylim(0.0, 1.0)
            axis.axhline(0.5, linestyle=":", color="grey", linewidth=1.0, label="chance (balanced)")
            axis.legend(fontsize=8, loc="lower right")
    figure.suptitle(title or "RNN vs LSTM vs GRU with the same recipe and budget")
    figure.savefig(path, dpi=100)
    return path


__all__ = [
    "find_trainer_state",
    "plot_cell_comparison",
    "plot_gradient_flow_records",
    "plot_training_curves",
    "training_curves",
]

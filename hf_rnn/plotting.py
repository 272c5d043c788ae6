"""Every figure hf_rnn draws: training curves from `trainer_state.json`, cell-comparison bars, gradient flow over
time steps, gate activity heatmaps and attention heatmaps.

Every function draws on a bare matplotlib `Figure` (Agg canvas, never registered with pyplot), so it works
headless and leaves no global state behind.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

# Log-history keys that are bookkeeping, not quality metrics.
NON_METRIC_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second", "_loss")


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


def plot_gradient_flow(
    results: Mapping[str, dict],
    path: str | os.PathLike,
    title: str | None = None,
    align: str = "start",
    show_clipped: bool = False,
) -> Path:
    """Write one PNG with the per-step gradient norm curves, linear (left) and log (right) y-scale.

    `results` is the output of `compare_gradient_flow` (`{label: {"grad_norm_per_step": [...], ...}}`).
    `align="start"` plots against the token position t; `align="end"` plots `grad_norm_from_end` against the
    number of steps back from each sequence's own last token (the readable view of mixed-length batches
    for a classifier that reads the last state). `show_clipped` adds, dashed, each curve scaled by its
    `clip_coefficient` (results measured with `max_grad_norm`). Returns the path written.
    """
    from .lab.diagnostics import clip_coefficient

    if align not in ("start", "end"):
        raise ValueError(f"`align` must be 'start' or 'end', got {align!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A bare `Figure` renders with the Agg canvas and is never registered with pyplot: headless, no
    # global backend switch, nothing left open after saving.
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    linear_axis, log_axis = figure.subplots(1, 2)
    colors = [f"C{index % 10}" for index in range(len(results))]
    for color, (label, result) in zip(colors, results.items()):
        norms = result["grad_norm_per_step"] if align == "start" else result["grad_norm_from_end"]
        ratio = result.get("first_to_last_ratio")
        legend = label if ratio is None else f"{label} (first / last token: {ratio:.2g})"
        coefficient = clip_coefficient(result) if show_clipped else None
        if coefficient is not None and coefficient >= 1.0:  # below the threshold: clipping changes nothing
            legend += f"; unchanged by clipping to {result['max_grad_norm']:g}"
        for axis in (linear_axis, log_axis):
            axis.plot(range(len(norms)), norms, label=legend, linewidth=1.2, color=color)
            if coefficient is not None and coefficient < 1.0:
                axis.plot(
                    range(len(norms)),
                    [value * coefficient for value in norms],
                    label=f"{label} after clipping to {result['max_grad_norm']:g} (x{coefficient:.2g})",
                    linewidth=1.0,
                    linestyle="--",
                    color=color,
                )
    x_label = "token position t" if align == "start" else "steps back from each sequence's last token"
    y_label = "‖∂L/∂x_t‖" if align == "start" else "‖∂L/∂x‖ at that step"
    for axis, scale in ((linear_axis, "linear"), (log_axis, "log")):
        axis.set_yscale(scale)
        axis.set_xlabel(x_label)
        axis.set_ylabel(y_label)
        axis.set_title(f"{scale} scale")
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title or "Gradient of the loss with respect to each token's embedding")
    figure.savefig(path, dpi=100)
    return path


def plot_gate_activity(
    activity: dict,
    tokens: Sequence[str] | None,
    path: str | os.PathLike,
    title: str | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> Path:
    """Heatmap of `gate_activity` output (gates x token positions) with a colorbar, written as a PNG.

    `tokens`, one string per position (e.g. of the first sequence), label the x axis; with more than about
    80 positions only every k-th label is shown. The colours span `value_range` (the gates' full range
    [0, 1] by default, comparable across plots; `None` stretches them over the values shown, which shows
    small variations). Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gate_names = list(activity["gates"])
    values = torch.tensor([activity["gates"][name] for name in gate_names])  # (num_gates, seq_len)
    seq_len = values.shape[1]
    figure = Figure(
        figsize=(min(max(6.0, 0.2 * seq_len + 2.5), 40.0), 2.5 + 0.6 * len(gate_names)), layout="constrained"
    )
    axis = figure.subplots()
    vmin, vmax = value_range if value_range is not None else (None, None)
    image = axis.imshow(values.numpy(), aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
    axis.set_yticks(range(len(gate_names)), [f"{name} gate" for name in gate_names])
    step = max(1, math.ceil(seq_len / 80))  # keep the token labels legible on long texts
    positions = list(range(0, seq_len, step))
    if tokens is not None:
        labels = [str(tokens[t]) if t < len(tokens) else "" for t in positions]
        axis.set_xticks(positions, labels, rotation=90, fontsize=7)
        axis.set_xlabel("token")
    else:
        axis.set_xlabel("token position t")
    figure.colorbar(image, ax=axis, label="mean gate value", fraction=0.03, pad=0.01)
    axis.set_title(title or f"{activity['cell_type'].upper()} gate activity per token (layer 1, left to right)")
    figure.savefig(path, dpi=100)
    return path


def plot_gate_units(
    units: dict, tokens: Sequence[str] | None, path: str | os.PathLike, title: str | None = None
) -> Path:
    """One heatmap per gate of `gate_units` output: hidden units (rows) x tokens (columns), as a PNG.

    Units are sorted by their mean value over the text (per gate), so that units that stay open or closed
    gather at the edges and units that switch on particular tokens stand out. Colours span [0, 1].
    Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gate_names = list(units["gates"])
    first = torch.tensor(units["gates"][gate_names[0]])
    hidden_size, seq_len = first.shape
    width = min(max(6.0, 0.22 * seq_len + 2.5), 40.0)
    figure = Figure(figsize=(width, 1.0 + len(gate_names) * (1.0 + 0.03 * hidden_size)), layout="constrained")
    axes = figure.subplots(len(gate_names), 1, sharex=True, squeeze=False)[:, 0]
    step = max(1, math.ceil(seq_len / 80))
    positions = list(range(0, seq_len, step))
    for axis, name in zip(axes, gate_names):
        values = torch.tensor(units["gates"][name])  # (hidden, seq_len)
        order = values.mean(dim=1).argsort(descending=True)
        image = axis.imshow(
            values[order].numpy(), aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        axis.set_ylabel(f"{name} gate\nunits (by mean)")
        axis.set_yticks([0, hidden_size - 1], ["1", str(hidden_size)])
    if tokens is not None:
        labels = [str(tokens[t]) if t < len(tokens) else "" for t in positions]
        axes[-1].set_xticks(positions, labels, rotation=90, fontsize=7)
        axes[-1].set_xlabel("token")
    else:
        axes[-1].set_xlabel("token position t")
    figure.colorbar(image, ax=list(axes), label="gate value", fraction=0.03, pad=0.01)
    figure.suptitle(title or f"{units['cell_type'].upper()} gate values of every hidden unit (layer 1, left to right)")
    figure.savefig(path, dpi=100)
    return path


def attention_figure(weights: torch.Tensor | np.ndarray, source_tokens: list[str], target_tokens: list[str]) -> Figure:
    """Heatmap of target (rows) x source (columns) attention weights `(tgt_len, src_len)` with the tokens on the
    axes."""
    weights = np.asarray(weights, dtype=np.float32)
    height = max(3.0, 0.32 * len(target_tokens) + 1.5)
    width = max(4.0, 0.32 * len(source_tokens) + 2.0)
    figure = Figure(figsize=(width, height), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(source_tokens)), labels=source_tokens, rotation=90, fontsize=9)
    axes.set_yticks(range(len(target_tokens)), labels=target_tokens, fontsize=9)
    axes.set_xlabel("source token")
    axes.set_ylabel("generated target token")
    axes.set_title("Attention weights")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    figure.tight_layout()
    return figure


def plot_attention(weights: torch.Tensor, source_tokens: list[str], target_tokens: list[str], path: str | Path):
    """Save the attention heatmap of `attention_figure` to `path`."""
    attention_figure(weights, source_tokens, target_tokens).savefig(path)
    return Path(path)


def plot_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """Draw a training run's curves into `output` (default `RUN_DIR/training_curves.png`) and, when the run recorded
    it (`training.gradient_flow_every`), its gradient flow beside it. Returns `(figure, source file)` pairs."""
    from .data import DataError
    from .runs import GRADIENT_FLOW_FILE, Run

    run = Run(run_dir)
    run_dir = Path(run_dir)
    state_path = run.trainer_state_path()
    state = json.loads(state_path.read_text(encoding="utf-8"))
    output = Path(output) if output else run_dir / "training_curves.png"
    title = f"Training curves of {run_dir.resolve().name}{run.description()}"
    try:
        plot_training_curves(state, output, title=title, test_metrics=run.test_results() or None)
    except ValueError as error:
        raise DataError(f"{state_path}: {error}") from error
    written = [(output, state_path)]
    gradient_flow_path = run.file(GRADIENT_FLOW_FILE)
    if gradient_flow_path is not None:
        gradient_flow_output = output.with_name(f"{output.stem}_gradient_flow.png")
        plot_gradient_flow_records(json.loads(gradient_flow_path.read_text(encoding="utf-8")), gradient_flow_output)
        written.append((gradient_flow_output, gradient_flow_path))
    return written


__all__ = [
    "attention_figure",
    "plot_attention",
    "plot_cell_comparison",
    "plot_gate_activity",
    "plot_gate_units",
    "plot_gradient_flow",
    "plot_gradient_flow_records",
    "plot_run",
    "plot_training_curves",
    "training_curves",
]

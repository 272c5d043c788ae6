"""Look inside the recurrence: gradient flow over time steps and gate activity of the classifier.

- `gradient_norms_per_step` measures ‖∂L/∂x_t‖, the gradient of the loss with respect to the embedding of
  the token at position t, on one batch. For a unidirectional classifier that reads the last state, the
  curve shows how much of the training signal reaches early tokens: the vanishing-gradient problem.
- `compare_gradient_flow` does this for several models (RNN vs LSTM vs GRU), `plot_gradient_flow` draws
  the curves (by position, or by distance from each sequence's last token), `write_json` keeps the numbers.
- `GradientFlowCallback` records the profile during `Trainer` training, every N steps, on a fixed batch.
- `gate_activity` / `plot_gate_activity` show the mean LSTM / GRU gate values per token, `gate_units` /
  `plot_gate_units` every hidden unit's, computed with the reference cells of `hf_rnn.cells` loaded from the
  model's first encoder layer.

Positions are counted over real tokens: the classifier moves the real tokens of each row to the front
(a no-op for right padding, which the tokenizers here use), so position t is the t-th real token.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import TrainerCallback

from ..cells import ReferenceRnn
from ..models.rnn_classifier import RnnClassifierConfig, RnnForSequenceClassification
from ..models.rnn_classifier.modeling_rnn_classifier import valid_first_index

PLOTTED_GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}
"""Gates that `gate_activity` reports (sigmoid gates, all in [0, 1])."""

MODEL_INPUT_NAMES = ("input_ids", "attention_mask", "labels")


def move_batch(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The classifier inputs of `batch` (`input_ids`, `attention_mask`, `labels`) on `device`."""
    if "input_ids" not in batch or "labels" not in batch:
        raise ValueError(f"`batch` needs `input_ids` and `labels`, got keys {sorted(batch)}.")
    return {name: torch.as_tensor(batch[name]).to(device) for name in MODEL_INPUT_NAMES if name in batch}


def sequence_lengths(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Number of real tokens per row `(batch,)`, at least 1 (as the classifier reads an empty row)."""
    if attention_mask is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1], device=input_ids.device)
    return attention_mask.sum(dim=1).clamp(min=1)


def parameter_grad_norm(parameters: Iterable[nn.Parameter]) -> float:
    """Total L2 norm of the gradients of `parameters` (those without a gradient are skipped)."""
    norms = [param.grad.detach().double().norm() for param in parameters if param.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def finite_or_none(value: float) -> float | None:
    """`value`, or `None` when it is infinite or NaN (so the JSON stays standard)."""
    return value if math.isfinite(value) else None


def gradient_norms_per_step(
    model: RnnForSequenceClassification,
    batch: Mapping[str, torch.Tensor],
    max_grad_norm: float | None = None,
) -> dict:
    """Loss and ‖∂L/∂x_t‖ per token position t for a classifier on one batch.

    `batch` holds `input_ids` `(batch, seq_len)`, `labels` `(batch,)` and optionally `attention_mask`.
    x_t is the output of `model.rnn.embeddings` at position t (captured with a forward hook and
    `retain_grad`); its gradient norm is averaged over the sequences that have a real token at t. The loss
    is the model's (mean over the batch), computed in eval mode so that dropout does not add noise; the
    model's mode and any existing parameter gradients are restored afterwards.

    Returns a dict of plain Python values:
        `grad_norm_per_step` (list of `max_len` floats), `num_sequences_per_step` (ints), `loss`,
        `grad_norm_from_end` (list of `max_len` floats: entry k is ‖∂L/∂x‖ at each sequence's k-th token
        before its own last token, averaged over the `num_sequences_per_step[k]` sequences longer than k;
        it lines up mixed-length batches by their distance from the loss),
        `first_to_last_ratio` (median, the lower middle value for an even count, over sequences of ‖∂L/∂x_0‖ / ‖∂L/∂x_{len-1}‖, each sequence
        against its own last token; `None` if undefined), `parameter_grad_norm` (total gradient norm of the
        parameters) and, if `max_grad_norm` is given, `clipped_parameter_grad_norm` after
        `clip_grad_norm_(parameters, max_grad_norm)` and `max_grad_norm`. Also `cell_type`.
    """
    device = next(model.parameters()).device
    inputs = move_batch(batch, device)
    attention_mask = inputs.get("attention_mask")
    lengths = sequence_lengths(inputs["input_ids"], attention_mask)

    captured = {}

    def capture_embeddings(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if not output.requires_grad:  # frozen embeddings: make the output a leaf that records its gradient
            output = output.detach().requires_grad_(True)
        output.retain_grad()
        captured["embeddings"] = output
        return output

    parameters = [param for param in model.parameters() if param.requires_grad]
    saved_grads = [param.grad for param in parameters]
    was_training = model.training
    hook = model.rnn.embeddings.register_forward_hook(capture_embeddings)
    try:
        for param in parameters:
            param.grad = None
        model.eval()
        with torch.enable_grad():
            loss = model(**inputs, return_dict=True).loss
            loss.backward()
        embedding_grads = captured["embeddings"].grad  # (batch, max_len, embedding_size)
        # In float64: squaring float32 gradients below ~1e-23 would underflow to 0 inside the norm.
        step_norms = embedding_grads.detach().double().norm(dim=-1)  # (batch, max_len)
        total_norm = parameter_grad_norm(parameters)
        clipped_norm = None
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
            clipped_norm = parameter_grad_norm(parameters)
    finally:
        hook.remove()
        model.train(was_training)
        for param, grad in zip(parameters, saved_grads, strict=True):
            param.grad = grad

    max_len = step_norms.shape[1]
    real = torch.arange(max_len, device=device) < lengths.unsqueeze(1)  # (batch, max_len)
    num_sequences = real.sum(dim=0)
    mean_norms = (step_norms * real).sum(dim=0) / num_sequences.clamp(min=1)
    # Distance k from each row's own last token: position len - 1 - k (real where k < len).
    from_end_positions = (lengths - 1).unsqueeze(1) - torch.arange(max_len, device=device)  # (batch, max_len)
    from_end_norms = step_norms.gather(1, from_end_positions.clamp(min=0)) * real
    mean_from_end = from_end_norms.sum(dim=0) / num_sequences.clamp(min=1)
    last_norms = step_norms.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
    # The median, not the mean: ratios span orders of magnitude, and may be 0 where float32 underflows.
    first_to_last_ratio = float((step_norms[:, 0] / last_norms).median())

    result = {
        "cell_type": model.config.cell_type,
        "loss": float(loss.detach()),
        "grad_norm_per_step": [float(value) for value in mean_norms],
        "num_sequences_per_step": [int(value) for value in num_sequences],
        "grad_norm_from_end": [float(value) for value in mean_from_end],
        "first_to_last_ratio": finite_or_none(first_to_last_ratio),
        "parameter_grad_norm": total_norm,
    }
    if max_grad_norm is not None:
        result["max_grad_norm"] = float(max_grad_norm)
        result["clipped_parameter_grad_norm"] = clipped_norm
    return result


def fresh_classifier_configs(
    vocab_size: int, cell_types: Sequence[str] = ("rnn", "lstm", "gru"), **config_kwargs
) -> dict[str, RnnClassifierConfig]:
    """One `RnnClassifierConfig` per cell type, otherwise identical (`config_kwargs` go to every config).

    Defaults to a unidirectional, `pooling="last"` binary classifier, the setting in which gradient flow
    through time matters most; override any of these with `config_kwargs`.
    """
    defaults = {
        "bidirectional": False,
        "pooling": "last",
        "id2label": {0: "neg", 1: "pos"},
        "label2id": {"neg": 0, "pos": 1},
    }
    return {
        cell_type: RnnClassifierConfig(vocab_size=vocab_size, cell_type=cell_type, **{**defaults, **config_kwargs})
        for cell_type in cell_types
    }


def compare_gradient_flow(
    models: Mapping[str, RnnForSequenceClassification | RnnClassifierConfig],
    batch: Mapping[str, torch.Tensor],
    max_grad_norm: float | None = None,
    seed: int = 0,
) -> dict[str, dict]:
    """`gradient_norms_per_step` for each named model on the same batch.

    `models` maps a label (e.g. `"lstm"`) to a classifier, or to a config from which a fresh, randomly
    initialised classifier is built (seeded with `seed`, so every config starts from the same RNG state).
    Returns `{label: gradient_norms_per_step result}`.
    """
    results = {}
    for label, model_or_config in models.items():
        if isinstance(model_or_config, RnnClassifierConfig):
            torch.manual_seed(seed)
            model = RnnForSequenceClassification(model_or_config)
        else:
            model = model_or_config
        results[label] = gradient_norms_per_step(model, batch, max_grad_norm=max_grad_norm)
    return results


def clip_coefficient(result: Mapping) -> float | None:
    """The factor by which gradient-norm clipping scales every gradient of a `gradient_norms_per_step` result.

    `clip_grad_norm_` rescales all parameter gradients by one factor, `clipped / total` (1 when the total
    is already below `max_grad_norm`), so the per-step profile keeps its shape and only moves down: clipping
    tames exploding gradients, it cannot bring back vanished ones. `None` when the result holds no clipping.
    """
    clipped, total = result.get("clipped_parameter_grad_norm"), result.get("parameter_grad_norm")
    if clipped is None or not total:
        return None
    return min(1.0, clipped / total)


def write_json(data, path: str | os.PathLike) -> Path:
    """Write `data` as indented, standard JSON (NaN and infinity are refused); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path


class GradientFlowCallback(TrainerCallback):
    """Record the per-step gradient norm profile during `Trainer` training, every `every_n_steps` steps.

    The profile is measured on one fixed batch: `batch` if given, else the first batch of the train
    dataloader (at most `max_batch_size` rows), drawn once with the RNG state restored afterwards so that
    training sees the same data order. Each record (`step`, `epoch` and the `gradient_norms_per_step`
    fields) is appended to `<output_dir>/<file_name>`, a JSON document `{"every_n_steps": N, "records": [...]}`
    rewritten after every record. A record is also taken before the first step. Costs one forward and
    backward pass of the small batch per record; the training gradients are not affected.
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        batch: Mapping[str, torch.Tensor] | None = None,
        max_batch_size: int = 8,
        max_grad_norm: float | None = None,
        file_name: str = "gradient_flow.json",
    ):
        if every_n_steps < 1:
            raise ValueError(f"`every_n_steps` must be a positive integer, got {every_n_steps!r}.")
        self.every_n_steps = every_n_steps
        self.batch = batch
        self.max_batch_size = max_batch_size
        self.max_grad_norm = max_grad_norm
        self.file_name = file_name
        self.records: list[dict] = []

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if self.batch is None:
            if train_dataloader is None:
                raise ValueError("GradientFlowCallback needs a `batch` or a train dataloader.")
            with torch.random.fork_rng(devices=[]):
                first_batch = next(iter(train_dataloader))
            self.batch = {name: torch.as_tensor(value)[: self.max_batch_size] for name, value in first_batch.items()}
        self.path = Path(args.output_dir) / self.file_name
        # When resuming, keep the records of the steps already trained.
        if self.path.exists():
            self.records = [
                record for record in json.loads(self.path.read_text())["records"] if record["step"] < state.global_step
            ]
        self.record(args, state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every_n_steps == 0:
            self.record(args, state, model)

    def record(self, args, state, model) -> None:
        result = gradient_norms_per_step(model, self.batch, max_grad_norm=self.max_grad_norm)
        self.records.append({"step": state.global_step, "epoch": state.epoch, **result})
        if state.is_world_process_zero:
            write_json({"every_n_steps": self.every_n_steps, "records": self.records}, self.path)


def first_layer_gates(
    model: RnnForSequenceClassification, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Gate values of the first encoder layer's left-to-right RNN, for every hidden unit.

    The layer's `forward_rnn` weights are loaded into the reference cells of `hf_rnn.cells`, which are run
    over the model's embeddings of `input_ids` `(batch, seq_len)` (real tokens moved to the front, as the
    model does; dropout off). Returns `({name: (batch, max_len, hidden)}, lengths (batch,))` for the gates of
    `PLOTTED_GATES` (zero at padding positions).
    """
    cell_type = model.config.cell_type
    if cell_type not in PLOTTED_GATES:
        raise ValueError(f"gate_activity needs an LSTM or GRU classifier, got cell_type={cell_type!r}.")
    device = next(model.parameters()).device
    input_ids = input_ids.to(device)
    attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(device)
    lengths = sequence_lengths(input_ids, attention_mask)
    max_len = int(lengths.max())
    input_ids = input_ids.gather(1, valid_first_index(attention_mask))[:, :max_len]

    reference = ReferenceRnn.from_encoder_layer(model.rnn.encoder.layers[0], directions="forward")
    with torch.no_grad():
        embedded = model.rnn.embeddings(input_ids)
        _, _, gates = reference(embedded, lengths=lengths, return_gates=True)
    return {name: gates[0][0][name] for name in PLOTTED_GATES[cell_type]}, lengths


def gate_activity(
    model: RnnForSequenceClassification, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> dict:
    """Mean gate values per token position in the first encoder layer (left-to-right direction).

    The gates come from `first_layer_gates`; for each position t, each gate is averaged over the hidden
    units and over the sequences with a real token at t.

    Returns `{"cell_type", "gates": {name: [max_len floats]}, "num_sequences_per_step": [ints]}` with the
    gates `input`, `forget`, `output` for an LSTM and `reset`, `update` for a GRU.
    """
    gates, lengths = first_layer_gates(model, input_ids, attention_mask)
    max_len = int(lengths.max())
    real = (torch.arange(max_len, device=lengths.device) < lengths.unsqueeze(1)).float()
    num_sequences = real.sum(dim=0)
    mean_gates = {}
    for name, values in gates.items():
        per_sequence = values.mean(dim=-1)  # (batch, max_len), zero at padding
        mean_gates[name] = [float(value) for value in (per_sequence * real).sum(dim=0) / num_sequences.clamp(min=1)]
    return {
        "cell_type": model.config.cell_type,
        "gates": mean_gates,
        "num_sequences_per_step": [int(n) for n in num_sequences],
    }


def gate_units(
    model: RnnForSequenceClassification, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> dict:
    """Every hidden unit's gate values over the tokens of one text (first layer, left to right).

    `input_ids` `(1, seq_len)`. Returns `{"cell_type", "gates": {name: [hidden lists of seq_len floats]}}`:
    row u is unit u's gate value at each real token, from `first_layer_gates`.
    """
    if input_ids.shape[0] != 1:
        raise ValueError(
            f"gate_units reads one text: `input_ids` must have shape (1, seq_len), got {tuple(input_ids.shape)}."
        )
    gates, lengths = first_layer_gates(model, input_ids, attention_mask)
    length = int(lengths[0])
    return {
        "cell_type": model.config.cell_type,
        "gates": {name: values[0, :length].T.tolist() for name, values in gates.items()},
    }


__all__ = [
    "GradientFlowCallback",
    "clip_coefficient",
    "compare_gradient_flow",
    "fresh_classifier_configs",
    "gate_activity",
    "gate_units",
    "gradient_norms_per_step",
    "write_json",
]

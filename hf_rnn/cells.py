"""Reference recurrent cells written from the equations, for reading, testing and looking inside.

The fused `torch.nn.RNN` / `LSTM` / `GRU` kernels are fast but opaque. The cells here compute the same
thing one time step at a time, with every gate named, so that a reader can match the code to the
textbook equations and a diagnostic can record the gate activations. Weight and bias names and gate
orders are PyTorch's, so weights copy over unchanged and the results agree to float precision
(`tests/test_cells.py` checks this against the fused modules and against the classifier's encoder).

Equations (`x` input, `h` previous hidden state, `c` previous cell state, `σ` the logistic sigmoid,
`*` element-wise product):

    Elman RNN   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

    LSTM        i  = σ(W_ii x + b_ii + W_hi h + b_hi)          input gate
                f  = σ(W_if x + b_if + W_hf h + b_hf)          forget gate
                g  = tanh(W_ig x + b_ig + W_hg h + b_hg)       cell candidate
                o  = σ(W_io x + b_io + W_ho h + b_ho)          output gate
                c' = f * c + i * g
                h' = o * tanh(c')

    GRU         r  = σ(W_ir x + b_ir + W_hr h + b_hr)          reset gate
                z  = σ(W_iz x + b_iz + W_hz h + b_hz)          update gate
                n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))  new state candidate
                h' = (1 - z) * n + z * h

`weight_ih` stacks the per-gate input matrices row-wise in the order above (LSTM `i, f, g, o`,
GRU `r, z, n`), `weight_hh` likewise; note that PyTorch's GRU applies the reset gate *after* the
hidden projection, inside the candidate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CellState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""The recurrent state of one cell: `h` `(batch, hidden)`, or `(h, c)` for the LSTM."""

GATE_NAMES = {"rnn": (), "lstm": ("input", "forget", "cell_candidate", "output"), "gru": ("reset", "update", "new")}
"""Names of the per-step activations each cell reports, in PyTorch's row order of `weight_ih`."""

TORCH_CELL_TYPES = {nn.RNN: "rnn", nn.LSTM: "lstm", nn.GRU: "gru"}


class RecurrentCell(nn.Module):
    """Shared weights of a recurrent cell, named and shaped as in `torch.nn.RNNCell` / `LSTMCell` / `GRUCell`.

    `weight_ih` `(num_gates * hidden, input)`, `weight_hh` `(num_gates * hidden, hidden)`, `bias_ih` and
    `bias_hh` `(num_gates * hidden,)` (`None` without bias). Initialised uniformly in
    `[-1/sqrt(hidden), 1/sqrt(hidden)]` like PyTorch; usually overwritten by `load_weights`.
    """

    num_gates = 1
    cell_type = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows)) if bias else None
        bound = 1.0 / math.sqrt(hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def load_weights(
        self,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor | None = None,
        bias_hh: torch.Tensor | None = None,
    ) -> RecurrentCell:
        """Copy weights in PyTorch's layout into this cell (biases only if the cell has them)."""
        with torch.no_grad():
            for name, value in (("weight_ih", weight_ih), ("weight_hh", weight_hh)):
                target = getattr(self, name)
                if value.shape != target.shape:
                    raise ValueError(f"`{name}` must have shape {tuple(target.shape)}, got {tuple(value.shape)}.")
                target.copy_(value)
            for name, value in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
                target = getattr(self, name)
                if target is not None and value is not None:
                    target.copy_(value)
                elif target is not None:
                    target.zero_()
        return self

    def initial_state(self, batch_size: int, like: torch.Tensor) -> CellState:
        """Zero state for `batch_size` sequences, with the dtype and device of `like`."""
        return like.new_zeros(batch_size, self.hidden_size)

    def projections(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`W_ih x + b_ih` and `W_hh h + b_hh`, each `(batch, num_gates * hidden)`."""
        return F.linear(inputs, self.weight_ih, self.bias_ih), F.linear(hidden, self.weight_hh, self.bias_hh)


class ElmanRnnCell(RecurrentCell):
    """Elman RNN step `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (`nonlinearity="relu"` as in `nn.RNN`)."""

    num_gates = 1
    cell_type = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size, bias)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu', got {nonlinearity!r}.")
        self.nonlinearity = nonlinearity

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step: `inputs` `(batch, input)`, `hidden` `(batch, hidden)` -> new hidden and no gates."""
        input_part, hidden_part = self.projections(inputs, hidden)
        pre_activation = input_part + hidden_part
        new_hidden = torch.tanh(pre_activation) if self.nonlinearity == "tanh" else torch.relu(pre_activation)
        return new_hidden, {}


class LstmCell(RecurrentCell):
    """LSTM step with input, forget and output gates and a cell candidate (PyTorch gate order `i, f, g, o`)."""

    num_gates = 4
    cell_type = "lstm"

    def initial_state(self, batch_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()

    def forward(
        self, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
        """One step: `inputs` `(batch, input)`, `state` `(h, c)` each `(batch, hidden)`.

        Returns the new `(h, c)` and the gate activations `input`, `forget`, `cell_candidate`, `output`,
        each `(batch, hidden)`.
        """
        hidden, cell = state
        input_part, hidden_part = self.projections(inputs, hidden)
        input_pre, forget_pre, candidate_pre, output_pre = (input_part + hidden_part).chunk(4, dim=-1)
        input_gate = torch.sigmoid(input_pre)
        forget_gate = torch.sigmoid(forget_pre)
        cell_candidate = torch.tanh(candidate_pre)
        output_gate = torch.sigmoid(output_pre)
        new_cell = forget_gate * cell + input_gate * cell_candidate
        new_hidden = output_gate * torch.tanh(new_cell)
        gates = {"input": input_gate, "forget": forget_gate, "cell_candidate": cell_candidate, "output": output_gate}
        return (new_hidden, new_cell), gates


class GruCell(RecurrentCell):
    """GRU step with reset and update gates (PyTorch order `r, z, n`, reset applied to `W_hn h + b_hn`)."""

    num_gates = 3
    cell_type = "gru"

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step: `inputs` `(batch, input)`, `hidden` `(batch, hidden)` -> new hidden and the gates
        `reset`, `update`, `new`, each `(batch, hidden)`."""
        input_part, hidden_part = self.projections(inputs, hidden)
        input_reset, input_update, input_new = input_part.chunk(3, dim=-1)
        hidden_reset, hidden_update, hidden_new = hidden_part.chunk(3, dim=-1)
        reset_gate = torch.sigmoid(input_reset + hidden_reset)
        update_gate = torch.sigmoid(input_update + hidden_update)
        new_candidate = torch.tanh(input_new + reset_gate * hidden_new)
        new_hidden = (1.0 - update_gate) * new_candidate + update_gate * hidden
        return new_hidden, {"reset": reset_gate, "update": update_gate, "new": new_candidate}


def make_cell(cell_type: str, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
    """A fresh `ElmanRnnCell`, `LstmCell` or `GruCell` for `cell_type` `"rnn"`, `"lstm"` or `"gru"`."""
    if cell_type == "rnn":
        return ElmanRnnCell(input_size, hidden_size, bias, nonlinearity)
    if cell_type == "lstm":
        return LstmCell(input_size, hidden_size, bias)
    if cell_type == "gru":
        return GruCell(input_size, hidden_size, bias)
    raise ValueError(f"`cell_type` must be one of ['rnn', 'lstm', 'gru'], got {cell_type!r}.")


def torch_cell_type(module: nn.RNNBase) -> str:
    """`"rnn"`, `"lstm"` or `"gru"` for a `torch.nn.RNN` / `LSTM` / `GRU` module."""
    for torch_class, cell_type in TORCH_CELL_TYPES.items():
        if isinstance(module, torch_class):
            return cell_type
    raise TypeError(f"Expected a torch.nn.RNN, LSTM or GRU module, got {type(module).__name__}.")


class ReferenceRnn(nn.Module):
    """Step-by-step multi-layer, optionally bidirectional RNN / LSTM / GRU; a readable `torch.nn.RNNBase`.

    Takes and returns the same shapes as the torch module it mirrors: `inputs` `(seq_len, batch, input)`,
    or `(batch, seq_len, input)` with `batch_first=True`; outputs `(.., num_directions * hidden)`;
    `h_n` (and `c_n` for the LSTM) `(num_layers * num_directions, batch, hidden)`, layer-major as in torch.
    Build one with `ReferenceRnn.from_torch(module)` or `ReferenceRnn.from_encoder_layer(layer)`.
    """

    def __init__(
        self,
        cell_type: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        bias: bool = True,
        nonlinearity: str = "tanh",
    ):
        super().__init__()
        self.cell_type = cell_type
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.batch_first = batch_first
        # layers[layer][direction]: direction 0 reads left to right, direction 1 right to left.
        self.layers = nn.ModuleList(
            nn.ModuleList(
                make_cell(
                    cell_type,
                    input_size if layer == 0 else self.num_directions * hidden_size,
                    hidden_size,
                    bias,
                    nonlinearity,
                )
                for _ in range(self.num_directions)
            )
            for layer in range(num_layers)
        )

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> ReferenceRnn:
        """A reference copy of a `torch.nn.RNN` / `LSTM` / `GRU` (any layers, directions, `batch_first`)."""
        cell_type = torch_cell_type(module)
        if getattr(module, "proj_size", 0):
            raise NotImplementedError("LSTM with `proj_size > 0` is not supported by the reference cells.")
        reference = cls(
            cell_type,
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bidirectional,
            module.batch_first,
            module.bias,
            getattr(module, "nonlinearity", "tanh"),
        )
        for layer in range(module.num_layers):
            for direction in range(reference.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                reference.layers[layer][direction].load_weights(
                    *(
                        getattr(module, f"{name}{suffix}", None)
                        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                    )
                )
        return reference.to(module.weight_ih_l0.device, module.weight_ih_l0.dtype)

    @classmethod
    def from_encoder_layer(cls, layer: nn.Module, directions: str = "both") -> ReferenceRnn:
        """A batch-first reference copy of one hf_rnn encoder layer (`forward_rnn` and `backward_rnn`).

        `directions="forward"` copies only the left-to-right RNN. Run it with `lengths` to reproduce
        the layer's padding-exact behaviour on right-padded batches.
        """
        if directions not in ("both", "forward"):
            raise ValueError(f"`directions` must be 'both' or 'forward', got {directions!r}.")
        torch_rnns = [layer.forward_rnn]
        if directions == "both" and layer.backward_rnn is not None:
            torch_rnns.append(layer.backward_rnn)
        first = torch_rnns[0]
        reference = cls(
            torch_cell_type(first),
            first.input_size,
            first.hidden_size,
            num_layers=1,
            bidirectional=len(torch_rnns) == 2,
            batch_first=True,
            bias=first.bias,
            nonlinearity=getattr(first, "nonlinearity", "tanh"),
        )
        for direction, torch_rnn in enumerate(torch_rnns):
            reference.layers[0][direction].load_weights(
                *(getattr(torch_rnn, f"{name}_l0", None) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            )
        return reference.to(first.weight_ih_l0.device, first.weight_ih_l0.dtype)

    def forward(
        self,
        inputs: torch.Tensor,
        initial_state: CellState | None = None,
        lengths: torch.Tensor | None = None,
        return_gates: bool = False,
    ):
        """Run all layers over `inputs`; returns `(outputs, h_n)`, or `(outputs, (h_n, c_n))` for the LSTM.

        `initial_state`: `h_0` (or `(h_0, c_0)`) `(num_layers * num_directions, batch, hidden)`, zeros if
        `None`. `lengths` `(batch,)`: if given, each sequence is read only up to its own length, as with a
        `PackedSequence` (padding after the tokens; the right-to-left pass starts at the last real token,
        outputs at padding positions are zero and `h_n` is taken at the last real token).

        With `return_gates=True` a third value is returned: `gates[layer][direction][name]`, each with the
        layout of `outputs` but `hidden` wide (zero at padding positions). The Elman RNN has no gates.
        """
        if inputs.dim() != 3:
            raise ValueError(f"`inputs` must be 3-dimensional, got shape {tuple(inputs.shape)}.")
        sequence_inputs = inputs if self.batch_first else inputs.transpose(0, 1)  # (batch, seq_len, input)
        batch_size, seq_len, _ = sequence_inputs.shape
        if lengths is None:
            step_mask = None
        else:
            step_mask = torch.arange(seq_len, device=inputs.device) < lengths.to(inputs.device).unsqueeze(1)

        final_hidden, final_cell, all_gates = [], [], []
        layer_inputs = sequence_inputs
        for layer_index, directions in enumerate(self.layers):
            direction_outputs, layer_gates = [], []
            for direction, cell in enumerate(directions):
                state_index = layer_index * self.num_directions + direction
                state = self.select_initial_state(initial_state, state_index, cell, batch_size, sequence_inputs)
                outputs, state, gates = run_cell(cell, layer_inputs, state, step_mask, reverse=direction == 1)
                direction_outputs.append(outputs)
                layer_gates.append(gates)
                if isinstance(state, tuple):
                    final_hidden.append(state[0])
                    final_cell.append(state[1])
                else:
                    final_hidden.append(state)
            layer_inputs = torch.cat(direction_outputs, dim=-1)
            all_gates.append(layer_gates)

        outputs = layer_inputs if self.batch_first else layer_inputs.transpose(0, 1)
        h_n = torch.stack(final_hidden)
        final_state = (h_n, torch.stack(final_cell)) if final_cell else h_n
        if not return_gates:
            return outputs, final_state
        if not self.batch_first:
            all_gates = [
                [{name: values.transpose(0, 1) for name, values in gates.items()} for gates in layer_gates]
                for layer_gates in all_gates
            ]
        return outputs, final_state, all_gates

    @staticmethod
    def select_initial_state(
        initial_state: CellState | None, index: int, cell: RecurrentCell, batch_size: int, like: torch.Tensor
    ) -> CellState:
        if initial_state is None:
            return cell.initial_state(batch_size, like)
        if isinstance(initial_state, tuple):
            return tuple(part[index] for part in initial_state)
        return initial_state[index]


def run_cell(
    cell: RecurrentCell,
    inputs: torch.Tensor,
    state: CellState,
    step_mask: torch.Tensor | None = None,
    reverse: bool = False,
) -> tuple[torch.Tensor, CellState, dict[str, torch.Tensor]]:
    """Apply `cell` along time to batch-first `inputs` `(batch, seq_len, input)`.

    `step_mask` `(batch, seq_len)` marks real tokens (padding after them); where it is false the state is
    carried over unchanged, and outputs and gates are zero. `reverse` reads right to left.
    Returns outputs `(batch, seq_len, hidden)`, the final state, and gates `{name: (batch, seq_len, hidden)}`.
    """
    seq_len = inputs.shape[1]
    outputs = [None] * seq_len
    gates_per_step = [None] * seq_len
    time_steps = range(seq_len - 1, -1, -1) if reverse else range(seq_len)
    for t in time_steps:
        new_state, gates = cell(inputs[:, t], state)
        if step_mask is not None:
            is_real = step_mask[:, t].unsqueeze(1)
            new_state = keep_where(is_real, new_state, state)
            gates = {name: values * is_real for name, values in gates.items()}
        state = new_state
        hidden = state[0] if isinstance(state, tuple) else state
        outputs[t] = hidden if step_mask is None else hidden * step_mask[:, t].unsqueeze(1)
        gates_per_step[t] = gates
    stacked_gates = {name: torch.stack([step[name] for step in gates_per_step], dim=1) for name in gates_per_step[0]}
    return torch.stack(outputs, dim=1), state, stacked_gates


def keep_where(condition: torch.Tensor, new_state: CellState, old_state: CellState) -> CellState:
    """`new_state` where `condition` `(batch, 1)` holds, else `old_state` (for `h` or `(h, c)`)."""
    if isinstance(new_state, tuple):
        return tuple(torch.where(condition, new, old) for new, old in zip(new_state, old_state, strict=True))
    return torch.where(condition, new_state, old_state)


def run_reference_rnn(
    module: nn.RNNBase,
    inputs: torch.Tensor,
    initial_state: CellState | None = None,
    lengths: torch.Tensor | None = None,
    return_gates: bool = False,
):
    """Run `inputs` through a reference copy of the torch `module`; same return values as `ReferenceRnn`."""
    return ReferenceRnn.from_torch(module)(inputs, initial_state, lengths=lengths, return_gates=return_gates)


__all__ = [
    "GATE_NAMES",
    "ElmanRnnCell",
    "GruCell",
    "LstmCell",
    "RecurrentCell",
    "ReferenceRnn",
    "make_cell",
    "run_reference_rnn",
]

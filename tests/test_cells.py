"""The reference cells agree with PyTorch's fused RNN / LSTM / GRU and with the classifier's encoder layers."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hf_rnn import RnnClassifierConfig, RnnForSequenceClassification
from hf_rnn.cells import GruCell, LstmCell, ReferenceRnn, make_cell, run_reference_rnn
from hf_rnn.models.rnn_classifier.modeling_rnn_classifier import reversal_index

torch.set_num_threads(1)

TORCH_RNNS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TORCH_CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
INPUT_SIZE, HIDDEN_SIZE, SEQ_LEN, BATCH = 5, 7, 6, 3
TOLERANCE = 1e-5


def randomize_(module: nn.Module) -> nn.Module:
    """Random weights and clearly non-zero biases, so every term of the equations matters."""
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.5)
    return module


def max_diff(first, second) -> float:
    if isinstance(first, tuple):
        return max(max_diff(a, b) for a, b in zip(first, second, strict=True))
    assert first.shape == second.shape
    return float((first - second).detach().abs().max())


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_cell_matches_torch_cell(cell_type):
    torch.manual_seed(0)
    torch_cell = randomize_(TORCH_CELLS[cell_type](INPUT_SIZE, HIDDEN_SIZE))
    cell = make_cell(cell_type, INPUT_SIZE, HIDDEN_SIZE).load_weights(
        torch_cell.weight_ih, torch_cell.weight_hh, torch_cell.bias_ih, torch_cell.bias_hh
    )
    inputs = torch.randn(BATCH, INPUT_SIZE)
    hidden = torch.randn(BATCH, HIDDEN_SIZE)
    if cell_type == "lstm":
        state = (hidden, torch.randn(BATCH, HIDDEN_SIZE))
        (new_hidden, new_cell), _ = cell(inputs, state)
        expected_hidden, expected_cell = torch_cell(inputs, state)
        assert max_diff(new_cell, expected_cell) < TOLERANCE
    else:
        new_hidden, _ = cell(inputs, hidden)
        expected_hidden = torch_cell(inputs, hidden)
    assert max_diff(new_hidden, expected_hidden) < TOLERANCE


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_reference_rnn_matches_torch(cell_type, num_layers, bidirectional, batch_first):
    torch.manual_seed(1)
    torch_rnn = randomize_(
        TORCH_RNNS[cell_type](INPUT_SIZE, HIDDEN_SIZE, num_layers, bidirectional=bidirectional, batch_first=batch_first)
    )
    reference = ReferenceRnn.from_torch(torch_rnn)
    inputs = torch.randn((BATCH, SEQ_LEN, INPUT_SIZE) if batch_first else (SEQ_LEN, BATCH, INPUT_SIZE))
    num_states = num_layers * (2 if bidirectional else 1)
    h_0 = torch.randn(num_states, BATCH, HIDDEN_SIZE)
    initial_state = (h_0, torch.randn(num_states, BATCH, HIDDEN_SIZE)) if cell_type == "lstm" else h_0

    with torch.no_grad():
        for state in (None, initial_state):
            outputs, final_state = reference(inputs, state)
            expected_outputs, expected_final_state = torch_rnn(inputs, state)
            assert max_diff(outputs, expected_outputs) < TOLERANCE
            assert max_diff(final_state, expected_final_state) < TOLERANCE
            if cell_type == "lstm":
                assert isinstance(final_state, tuple) and len(final_state) == 2


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_reference_rnn_with_lengths_matches_packed_sequence(cell_type, bidirectional):
    torch.manual_seed(2)
    torch_rnn = randomize_(TORCH_RNNS[cell_type](INPUT_SIZE, HIDDEN_SIZE, 2, bidirectional=bidirectional))
    inputs = torch.randn(SEQ_LEN, BATCH, INPUT_SIZE)
    lengths = torch.tensor([SEQ_LEN, 2, 4])
    with torch.no_grad():
        packed_outputs, expected_final_state = torch_rnn(pack_padded_sequence(inputs, lengths, enforce_sorted=False))
        expected_outputs, _ = pad_packed_sequence(packed_outputs, total_length=SEQ_LEN)
        outputs, final_state = run_reference_rnn(torch_rnn, inputs, lengths=lengths)
    assert max_diff(outputs, expected_outputs) < TOLERANCE
    assert max_diff(final_state, expected_final_state) < TOLERANCE


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_reference_matches_classifier_encoder_layer(cell_type, bidirectional):
    torch.manual_seed(3)
    config = RnnClassifierConfig(
        vocab_size=20,
        embedding_size=INPUT_SIZE,
        hidden_size=HIDDEN_SIZE,
        cell_type=cell_type,
        bidirectional=bidirectional,
        num_hidden_layers=2,
    )
    model = RnnForSequenceClassification(config).eval()
    for layer_index, layer in enumerate(model.rnn.encoder.layers):
        randomize_(layer)
        layer_input_size = INPUT_SIZE if layer_index == 0 else config.num_directions * HIDDEN_SIZE
        inputs = torch.randn(BATCH, SEQ_LEN, layer_input_size)
        lengths = torch.tensor([SEQ_LEN, 3, 1])  # right padding after each sequence
        reverse = reversal_index(lengths, SEQ_LEN) if bidirectional else None
        reference = ReferenceRnn.from_encoder_layer(layer)
        with torch.no_grad():
            expected_outputs, expected_final = layer(inputs, lengths, reverse)
            outputs, final_state = reference(inputs, lengths=lengths)
        real = (torch.arange(SEQ_LEN) < lengths.unsqueeze(1)).unsqueeze(-1)
        # The encoder layer leaves meaningless values at padding positions; compare real tokens only.
        assert max_diff(outputs * real, expected_outputs * real) < TOLERANCE
        h_n = final_state[0] if cell_type == "lstm" else final_state
        assert max_diff(h_n, expected_final) < TOLERANCE


def test_lstm_gates_are_named_in_pytorch_order():
    torch.manual_seed(4)
    cell = randomize_(LstmCell(INPUT_SIZE, HIDDEN_SIZE))
    inputs, hidden, cell_state = (
        torch.randn(BATCH, INPUT_SIZE),
        torch.randn(BATCH, HIDDEN_SIZE),
        torch.randn(BATCH, HIDDEN_SIZE),
    )
    _, gates = cell(inputs, (hidden, cell_state))
    rows = {"input": slice(0, 7), "forget": slice(7, 14), "cell_candidate": slice(14, 21), "output": slice(21, 28)}
    for name, row in rows.items():
        pre = inputs @ cell.weight_ih[row].T + cell.bias_ih[row] + hidden @ cell.weight_hh[row].T + cell.bias_hh[row]
        expected = torch.tanh(pre) if name == "cell_candidate" else torch.sigmoid(pre)
        assert max_diff(gates[name], expected) < TOLERANCE, name


def test_gru_reset_gate_is_applied_after_the_hidden_projection():
    torch.manual_seed(5)
    cell = randomize_(GruCell(INPUT_SIZE, HIDDEN_SIZE))
    inputs, hidden = torch.randn(BATCH, INPUT_SIZE), torch.randn(BATCH, HIDDEN_SIZE)
    new_hidden, gates = cell(inputs, hidden)
    new_rows = slice(2 * HIDDEN_SIZE, 3 * HIDDEN_SIZE)
    hidden_new = hidden @ cell.weight_hh[new_rows].T + cell.bias_hh[new_rows]
    input_new = inputs @ cell.weight_ih[new_rows].T + cell.bias_ih[new_rows]
    assert max_diff(gates["new"], torch.tanh(input_new + gates["reset"] * hidden_new)) < TOLERANCE
    assert max_diff(new_hidden, (1 - gates["update"]) * gates["new"] + gates["update"] * hidden) < TOLERANCE


@pytest.mark.parametrize("batch_first", [True, False])
def test_recorded_lstm_gates_reproduce_the_outputs(batch_first):
    torch.manual_seed(6)
    torch_rnn = randomize_(nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, batch_first=batch_first))
    inputs = torch.randn((BATCH, SEQ_LEN, INPUT_SIZE) if batch_first else (SEQ_LEN, BATCH, INPUT_SIZE))
    with torch.no_grad():
        outputs, (h_n, c_n), gates = run_reference_rnn(torch_rnn, inputs, return_gates=True)
    time_dim = 1 if batch_first else 0
    layer_gates = gates[0][0]
    assert set(layer_gates) == {"input", "forget", "cell_candidate", "output"}
    assert all(values.shape == outputs.shape for values in layer_gates.values())
    cell_state = torch.zeros(BATCH, HIDDEN_SIZE)
    for t in range(SEQ_LEN):
        step = {name: values.select(time_dim, t) for name, values in layer_gates.items()}
        cell_state = step["forget"] * cell_state + step["input"] * step["cell_candidate"]
        assert max_diff(outputs.select(time_dim, t), step["output"] * torch.tanh(cell_state)) < TOLERANCE
    assert max_diff(c_n[0], cell_state) < TOLERANCE


def test_rnn_has_no_gates_and_bad_cell_type_is_refused():
    with torch.no_grad():
        _, _, gates = run_reference_rnn(
            nn.RNN(INPUT_SIZE, HIDDEN_SIZE, 2), torch.randn(SEQ_LEN, BATCH, INPUT_SIZE), return_gates=True
        )
    assert gates == [[{}], [{}]]
    with pytest.raises(ValueError, match="cell_type"):
        make_cell("transformer", INPUT_SIZE, HIDDEN_SIZE)


def test_torch_rnn_without_bias_and_relu():
    torch.manual_seed(7)
    torch_rnn = randomize_(nn.RNN(INPUT_SIZE, HIDDEN_SIZE, 2, nonlinearity="relu", bias=False))
    inputs = torch.randn(SEQ_LEN, BATCH, INPUT_SIZE)
    with torch.no_grad():
        outputs, h_n = run_reference_rnn(torch_rnn, inputs)
        expected_outputs, expected_h_n = torch_rnn(inputs)
    assert max_diff(outputs, expected_outputs) < TOLERANCE
    assert max_diff(h_n, expected_h_n) < TOLERANCE

"""Gradient-flow and gate-activity diagnostics: values, plots, JSON and the Trainer callback."""

import json
import math

import pytest
import torch
from helpers import all_numbers
from transformers import Trainer, TrainingArguments

from hf_rnn import RnnClassifierConfig, RnnForSequenceClassification
from hf_rnn.lab.diagnostics import (
    GradientFlowCallback,
    compare_gradient_flow,
    fresh_classifier_configs,
    gate_activity,
    gradient_norms_per_step,
    write_json,
)
from hf_rnn.plotting import plot_gate_activity, plot_gradient_flow

torch.set_num_threads(1)

VOCAB_SIZE = 50
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_classifier(cell_type: str = "lstm", seed: int = 0, **kwargs) -> RnnForSequenceClassification:
    torch.manual_seed(seed)
    config = RnnClassifierConfig(
        vocab_size=VOCAB_SIZE,
        embedding_size=8,
        hidden_size=8,
        cell_type=cell_type,
        **{"bidirectional": False, "pooling": "last", **kwargs},
    )
    return RnnForSequenceClassification(config)


def right_padded_batch(lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    max_len = max(lengths)
    input_ids = torch.randint(1, VOCAB_SIZE, (len(lengths), max_len), generator=generator)
    attention_mask = (torch.arange(max_len) < torch.tensor(lengths).unsqueeze(1)).long()
    return {
        "input_ids": input_ids * attention_mask,  # padding id 0
        "attention_mask": attention_mask,
        "labels": torch.randint(0, 2, (len(lengths),), generator=generator),
    }


def left_padded(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same sequences with their padding moved to the left."""
    lengths = batch["attention_mask"].sum(1)
    max_len = batch["input_ids"].shape[1]
    order = torch.stack([torch.roll(torch.arange(max_len), -int(length)) for length in lengths])
    return {
        **batch,
        "input_ids": batch["input_ids"].gather(1, order),
        "attention_mask": batch["attention_mask"].gather(1, order),
    }


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradient_norms_one_value_per_position_and_padding_ignored(cell_type, bidirectional):
    model = tiny_classifier(cell_type, bidirectional=bidirectional, pooling="mean")
    batch = right_padded_batch([9, 4, 6])
    result = gradient_norms_per_step(model, batch)
    norms = result["grad_norm_per_step"]
    assert len(norms) == 9
    assert all(math.isfinite(value) and value > 0 for value in norms)
    assert result["num_sequences_per_step"] == [3, 3, 3, 3, 2, 2, 1, 1, 1]
    assert math.isfinite(result["loss"]) and result["parameter_grad_norm"] > 0

    # Extra trailing padding changes nothing: padding gets no gradient and is not averaged in.
    padded = {
        name: torch.nn.functional.pad(value, (0, 5)) if value.dim() == 2 else value for name, value in batch.items()
    }
    padded_norms = gradient_norms_per_step(model, padded)["grad_norm_per_step"]
    assert padded_norms == pytest.approx(norms, rel=1e-4)
    # Position t is the t-th real token, for left padding too.
    left_norms = gradient_norms_per_step(model, left_padded(batch))["grad_norm_per_step"]
    assert left_norms == pytest.approx(norms, rel=1e-4)


def test_gradient_norms_match_autograd_on_the_embeddings_and_leave_the_model_alone():
    model = tiny_classifier("gru", embedding_dropout=0.5).train()
    batch = right_padded_batch([5, 3], seed=1)
    sentinel = [torch.full_like(param, 7.0) for param in model.parameters()]
    for param, grad in zip(model.parameters(), sentinel, strict=True):
        param.grad = grad.clone()

    result = gradient_norms_per_step(model, batch, max_grad_norm=0.01)

    assert model.training
    assert all(torch.equal(param.grad, grad) for param, grad in zip(model.parameters(), sentinel, strict=True))
    # Independent check: the gradient of the (eval-mode) loss with respect to the embedding weights, row by row.
    # Every token id below is distinct, so row `id` holds exactly the gradient of that token's embedding.
    model.eval()
    ids = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]])
    unique_batch = {"input_ids": ids, "attention_mask": (ids > 0).long(), "labels": batch["labels"]}
    result = gradient_norms_per_step(model, unique_batch, max_grad_norm=0.01)
    model.zero_grad()
    model(**unique_batch).loss.backward()
    row_norms = model.rnn.embeddings.weight.grad.norm(dim=-1)
    expected = [float((row_norms[1] + row_norms[6]) / 2), float((row_norms[2] + row_norms[7]) / 2)]
    expected += [float((row_norms[3] + row_norms[8]) / 2), float(row_norms[4]), float(row_norms[5])]
    assert result["grad_norm_per_step"] == pytest.approx(expected, rel=1e-5)
    assert result["parameter_grad_norm"] > 0.01
    assert result["clipped_parameter_grad_norm"] == pytest.approx(0.01, rel=1e-3)


def test_long_sequence_rnn_lstm_gru_profiles():
    batch = right_padded_batch([200, 200, 200, 200], seed=3)
    configs = fresh_classifier_configs(VOCAB_SIZE, embedding_size=16, hidden_size=16)
    results = compare_gradient_flow(configs, batch, max_grad_norm=1.0, seed=3)
    assert list(results) == ["rnn", "lstm", "gru"]
    for cell_type, result in results.items():
        norms = result["grad_norm_per_step"]
        assert result["cell_type"] == cell_type
        assert len(norms) == 200 and result["num_sequences_per_step"] == [4] * 200
        assert all(math.isfinite(value) and value >= 0 for value in norms)
        # The last token feeds the "last" pooling directly; 200 steps earlier the signal has decayed at
        # initialisation for every cell type (by orders of magnitude: checked over several seeds).
        assert norms[0] < 1e-2 * norms[-1]
        ratio = result["first_to_last_ratio"]
        assert ratio is None or 0 <= ratio < 1e-2
        assert result["clipped_parameter_grad_norm"] <= min(1.0, result["parameter_grad_norm"]) + 1e-5


def test_plot_and_json_are_written(tmp_path):
    batch = right_padded_batch([30, 20, 25])
    models = {
        "rnn": tiny_classifier("rnn"),
        **fresh_classifier_configs(VOCAB_SIZE, ["lstm"], embedding_size=8, hidden_size=8),
    }
    results = compare_gradient_flow(models, batch)

    png = plot_gradient_flow(results, tmp_path / "plots" / "flow.png", title="test")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000

    json_path = write_json(results, tmp_path / "flow.json")
    loaded = json.loads(json_path.read_text())
    assert set(loaded) == {"rnn", "lstm"}
    assert len(loaded["lstm"]["grad_norm_per_step"]) == 30
    numbers = list(all_numbers(loaded))
    assert len(numbers) > 60 and all(math.isfinite(value) for value in numbers)
    with pytest.raises(ValueError):
        write_json({"bad": float("nan")}, tmp_path / "bad.json")


class RandomTokenDataset(torch.utils.data.Dataset):
    def __init__(self, size: int = 32, max_len: int = 12):
        generator = torch.Generator().manual_seed(0)
        self.input_ids = torch.randint(1, VOCAB_SIZE, (size, max_len), generator=generator)
        lengths = torch.randint(3, max_len + 1, (size,), generator=generator)
        self.attention_mask = (torch.arange(max_len) < lengths.unsqueeze(1)).long()
        self.input_ids *= self.attention_mask
        self.labels = (self.input_ids[:, 0] % 2).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": self.attention_mask[index],
            "labels": self.labels[index],
        }


def train_tiny(tmp_path, callbacks) -> RnnForSequenceClassification:
    model = tiny_classifier("lstm")
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=0.05,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    Trainer(model=model, args=args, train_dataset=RandomTokenDataset(), callbacks=callbacks).train()
    return model


def test_callback_records_during_training_without_changing_it(tmp_path):
    callback = GradientFlowCallback(every_n_steps=2, max_batch_size=3)
    trained = train_tiny(tmp_path / "with", [callback])

    document = json.loads((tmp_path / "with" / "gradient_flow.json").read_text())
    assert document["every_n_steps"] == 2
    records = document["records"]
    assert [record["step"] for record in records] == [0, 2, 4]
    for record in records:
        assert len(record["grad_norm_per_step"]) == callback.batch["attention_mask"][:3].sum(1).max()
        assert all(math.isfinite(value) for value in record["grad_norm_per_step"])
    assert records[0]["loss"] != records[-1]["loss"]  # measured on the model as it trains

    reference = train_tiny(tmp_path / "without", [])
    for (name, param), other in zip(trained.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(param, other, atol=1e-6), name


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_gate_activity_and_heatmap(cell_type, tmp_path):
    model = tiny_classifier(cell_type, bidirectional=True)
    batch = right_padded_batch([60, 40, 55], seed=2)
    activity = gate_activity(model, batch["input_ids"], batch["attention_mask"])

    expected_gates = {"lstm": ["input", "forget", "output"], "gru": ["reset", "update"]}[cell_type]
    assert activity["cell_type"] == cell_type and list(activity["gates"]) == expected_gates
    assert activity["num_sequences_per_step"] == [3] * 40 + [2] * 15 + [1] * 5
    for values in activity["gates"].values():
        assert len(values) == 60 and all(0.0 < value < 1.0 for value in values)
    if cell_type == "lstm":  # forget-gate bias initialised to 1: sigmoid(1 + small) ~ 0.73
        assert sum(activity["gates"]["forget"]) / 60 == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), abs=0.1)

    left = left_padded(batch)
    left_activity = gate_activity(model, left["input_ids"], left["attention_mask"])
    for name in expected_gates:
        assert left_activity["gates"][name] == pytest.approx(activity["gates"][name], rel=1e-5)

    tokens = [f"tok{int(token)}" for token in batch["input_ids"][0]]
    png = plot_gate_activity(activity, tokens, tmp_path / "gates.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    png_without_tokens = plot_gate_activity(activity, None, tmp_path / "gates_plain.png")
    assert png_without_tokens.read_bytes()[:8] == PNG_MAGIC


def test_gate_activity_refuses_plain_rnn():
    batch = right_padded_batch([5])
    with pytest.raises(ValueError, match="LSTM or GRU"):
        gate_activity(tiny_classifier("rnn"), batch["input_ids"], batch["attention_mask"])

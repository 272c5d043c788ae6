"""Tests of the recurrent text classifier (`rnn_classifier`): config, shapes, padding, save/load, pipeline."""

import itertools

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, pipeline

import hf_rnn  # noqa: F401  (registers the Auto classes)
from hf_rnn import RnnClassifierConfig, RnnClassifierModel, RnnForSequenceClassification
from hf_rnn.tokenization import TokenizerConfig, train_tokenizer

LABELS = {"id2label": {0: "neg", 1: "pos"}, "label2id": {"neg": 0, "pos": 1}}
CELLS = ["rnn", "lstm", "gru"]
POOLINGS = ["last", "mean", "max", "mean_max", "attention"]


def tiny_config(**overrides) -> RnnClassifierConfig:
    values = dict(vocab_size=40, embedding_size=8, hidden_size=6, num_hidden_layers=2, **LABELS)
    values.update(overrides)
    return RnnClassifierConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> RnnForSequenceClassification:
    torch.manual_seed(seed)
    return RnnForSequenceClassification(tiny_config(**overrides)).eval()


def test_config_round_trip(tmp_path):
    config = tiny_config(cell_type="gru", pooling="attention", bidirectional=False)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, RnnClassifierConfig)
    assert loaded.to_diff_dict() | {"_name_or_path": ""} == config.to_diff_dict() | {"_name_or_path": ""}
    assert loaded.id2label == {0: "neg", 1: "pos"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cell_type": "transformer"}, "cell_type"),
        ({"pooling": "sum"}, "pooling"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_hidden_layers": -1}, "num_hidden_layers"),
        ({"embedding_dropout": 1.0}, "embedding_dropout"),
        ({"classifier_dropout": -0.1}, "classifier_dropout"),
        ({"pad_token_id": 40}, "pad_token_id"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_config_error_lists_allowed_values():
    with pytest.raises(ValueError, match=r"\['rnn', 'lstm', 'gru'\]"):
        tiny_config(cell_type="transformer")


@pytest.mark.parametrize(("cell_type", "pooling", "bidirectional"), itertools.product(CELLS, POOLINGS, [True, False]))
def test_forward_backward(cell_type, pooling, bidirectional):
    model = tiny_model(cell_type=cell_type, pooling=pooling, bidirectional=bidirectional).train()
    input_ids = torch.randint(1, 40, (3, 7))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 4:] = 0
    output = model(input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 1, 1]))
    assert output.logits.shape == (3, 2)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
    assert model.rnn.embeddings.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("cell_type", "pooling"), itertools.product(CELLS, POOLINGS))
def test_logits_do_not_depend_on_padding(cell_type, pooling):
    """Right padding, left padding and extra padding give the logits of the text alone."""
    model = tiny_model(cell_type=cell_type, pooling=pooling)
    text = torch.randint(1, 40, (1, 5))
    alone = model(text).logits
    other = torch.randint(1, 40, (1, 9))
    right = torch.zeros(2, 12, dtype=torch.long)
    right[0, :5], right[1, :9] = text[0], other[0]
    left = torch.zeros(2, 12, dtype=torch.long)
    left[0, 7:], left[1, 3:] = text[0], other[0]
    for batch in (right, left):
        logits = model(batch, attention_mask=(batch != 0).long()).logits
        torch.testing.assert_close(logits[0], alone[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(logits[1], model(other).logits[0], atol=1e-5, rtol=0)


def test_padding_changes_nothing_in_gradients():
    model = tiny_model(cell_type="lstm", pooling="mean_max")
    text = torch.randint(1, 40, (1, 6))
    padded = torch.cat([text, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    grads = []
    for ids in (text, padded):
        model.zero_grad()
        model(ids, attention_mask=(ids != 0).long(), labels=torch.tensor([1])).loss.backward()
        grads.append(model.rnn.encoder.layers[0].forward_rnn.weight_hh_l0.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=0)


def test_empty_row_is_read_as_one_padding_token():
    model = tiny_model()
    input_ids = torch.tensor([[5, 6, 7], [0, 0, 0]])
    logits = model(input_ids, attention_mask=(input_ids != 0).long()).logits
    assert torch.isfinite(logits).all()


def test_labels_out_of_range_raise():
    model = tiny_model()
    with pytest.raises(ValueError, match="labels must be in"):
        model(torch.randint(1, 40, (2, 4)), labels=torch.tensor([0, 2]))


def test_weights_are_initialised_for_every_cell():
    for cell_type in CELLS:
        model = tiny_model(cell_type=cell_type)
        layer = model.rnn.encoder.layers[0].forward_rnn
        assert model.rnn.embeddings.weight[model.config.pad_token_id].abs().sum() == 0
        assert torch.allclose(layer.bias_hh_l0, torch.zeros_like(layer.bias_hh_l0))
        weight_hh = layer.weight_hh_l0
        # orthogonal recurrent weights: columns have unit norm
        torch.testing.assert_close(weight_hh.norm(dim=0), torch.ones(weight_hh.shape[1]), atol=1e-4, rtol=0)
        if cell_type == "lstm":
            hidden = model.config.hidden_size
            assert torch.all(layer.bias_ih_l0[hidden : 2 * hidden] == 1.0)


def test_save_and_auto_load_give_identical_logits(tmp_path):
    model = tiny_model(cell_type="gru", pooling="attention")
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, RnnForSequenceClassification)
    input_ids = torch.randint(1, 40, (4, 9))
    torch.testing.assert_close(loaded(input_ids).logits, model(input_ids).logits, atol=0, rtol=0)
    base = AutoModel.from_pretrained(tmp_path)
    assert isinstance(base, RnnClassifierModel)


def test_text_classification_pipeline_on_saved_dir(tmp_path):
    texts = ["a great film", "a terrible film", "great acting", "terrible plot"] * 5
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=60, min_frequency=1))
    torch.manual_seed(0)
    model = RnnForSequenceClassification(tiny_config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    classifier = pipeline("text-classification", model=str(tmp_path))
    results = classifier(["A wonderful, moving film.", "", "x" * 5000])
    assert len(results) == 3
    assert all(result["label"] in ("neg", "pos") and 0.0 <= result["score"] <= 1.0 for result in results)


def test_hidden_states_hold_the_embeddings_and_every_layer():
    """Before: only the last layer, and `output_attentions` was swallowed."""
    model = tiny_model(num_hidden_layers=3)
    input_ids = torch.randint(1, 40, (2, 6))
    output = model(input_ids, output_hidden_states=True, output_attentions=True)
    assert len(output.hidden_states) == 4  # embeddings + 3 layers, as BERT's
    assert output.hidden_states[0].shape == (2, 6, 8) and output.hidden_states[-1].shape == (2, 6, 12)
    torch.testing.assert_close(output.hidden_states[-1], model.rnn(input_ids).last_hidden_state)
    assert output.attentions is None  # mean_max pooling has no attention
    assert model(input_ids).hidden_states is None
    loss, logits, hidden_states = model(
        input_ids, labels=torch.tensor([0, 1]), output_hidden_states=True, return_dict=False
    )
    assert len(hidden_states) == 4 and logits.shape == (2, 2)


def test_attentions_are_the_attention_pooling_weights():
    model = tiny_model(pooling="attention")
    input_ids = torch.randint(1, 40, (2, 6))
    attention_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    output = model.rnn(input_ids, attention_mask=attention_mask, output_attentions=True)
    (weights,) = output.attentions
    assert weights.shape == (2, 1, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1))
    assert weights[1, 0, 4:].abs().max() == 0  # padding gets no weight
    pooled = torch.bmm(weights, output.last_hidden_state).squeeze(1)
    torch.testing.assert_close(pooled, output.pooler_output)
    assert model(input_ids, attention_mask=attention_mask, output_attentions=True).attentions[0].shape == (2, 1, 6)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    """Before: `gradient_checkpointing_enable()` raised (`supports_gradient_checkpointing` was False)."""
    input_ids = torch.randint(1, 40, (3, 9))
    labels = torch.tensor([0, 1, 1])
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(embedding_dropout=0.0, rnn_dropout=0.0, classifier_dropout=0.0).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.is_activation_checkpointing
        loss = model(input_ids, labels=labels).loss
        loss.backward()
        grads.append((loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for name, grad in grads[0][1].items():
        torch.testing.assert_close(grads[1][1][name], grad, msg=name)


def test_resize_token_embeddings_round_trips(tmp_path):
    model = tiny_model()
    input_ids = torch.randint(1, 40, (2, 5))
    before = model(input_ids).logits
    model.resize_token_embeddings(45)
    assert model.config.vocab_size == 45 and model.get_input_embeddings().num_embeddings == 45
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(input_ids).logits, before)
    assert loaded(torch.tensor([[44, 43, 1]])).logits.shape == (1, 2)  # the new ids embed

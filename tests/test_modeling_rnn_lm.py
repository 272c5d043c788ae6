"""Tests of the recurrent language model (`rnn_lm`): tiny random models on one CPU thread."""

import copy
import itertools
import json
import math
import time
import warnings

import pytest
import torch
from helpers import run_without_hf_rnn
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    PreTrainedTokenizerFast,
    pipeline,
)

from hf_rnn.models.rnn_classifier import RnnClassifierConfig, RnnForSequenceClassification
from hf_rnn.models.rnn_lm import RnnForCausalLM, RnnLmCache, RnnLmConfig, RnnLmModel

torch.set_num_threads(1)

PAD, BOS, EOS = 0, 1, 2
VOCAB = 40
CELLS = ["rnn", "lstm", "gru"]
SOFTMAXES = ["full", "adaptive"]
NO_DROPOUT = dict(embedding_dropout=0.0, input_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0, weight_dropout=0.0)


def tiny_config(**overrides) -> RnnLmConfig:
    values = dict(
        vocab_size=VOCAB,
        embedding_size=8,
        hidden_size=12,
        num_hidden_layers=2,
        adaptive_cutoffs=[6, 20],
        # Frequency ranks that differ from the ids, so that every test also checks the rank <-> id mapping.
        token_order=torch.randperm(VOCAB, generator=torch.Generator().manual_seed(7)).tolist(),
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )
    values.update(overrides)
    return RnnLmConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> RnnForCausalLM:
    torch.manual_seed(seed)
    return RnnForCausalLM(tiny_config(**overrides)).eval()


def random_ids(batch: int, length: int, seed: int = 0, vocab: int = VOCAB) -> torch.Tensor:
    """Token ids without the special tokens."""
    return torch.randint(3, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def padded(rows: list[torch.Tensor], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids padded to one length on the left (or right), and the attention mask."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), PAD)
    attention_mask = torch.zeros_like(input_ids)
    for index, row in enumerate(rows):
        positions = slice(width - len(row), width) if left else slice(0, len(row))
        input_ids[index, positions] = row
        attention_mask[index, positions] = 1
    return input_ids, attention_mask


def register_auto_classes() -> None:
    """What `import hf_rnn` does once the family is registered there."""
    AutoConfig.register("rnn_lm", RnnLmConfig, exist_ok=True)
    AutoModel.register(RnnLmConfig, RnnLmModel, exist_ok=True)
    AutoModelForCausalLM.register(RnnLmConfig, RnnForCausalLM, exist_ok=True)


def states_of(cache: RnnLmCache) -> list[torch.Tensor]:
    """Every tensor of a cache, layer by layer (h, then c for an LSTM)."""
    return [part for state in cache.layer_states for part in (state if isinstance(state, tuple) else (state,))]


# ----------------------------------------------------------------------------------------------- config


def test_config_defaults_and_round_trip(tmp_path):
    awd_lstm = dict(
        vocab_size=30000,
        embedding_size=400,
        hidden_size=1150,
        num_hidden_layers=3,
        cell_type="lstm",
        tie_word_embeddings=True,
        embedding_dropout=0.1,
        input_dropout=0.65,
        hidden_dropout=0.3,
        output_dropout=0.4,
        weight_dropout=0.5,
        activation_regularization=2.0,
        temporal_activation_regularization=1.0,
        softmax="adaptive",
        adaptive_cutoffs=[2000, 10000],
        token_order=None,
        initializer_range=0.1,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )
    defaults = RnnLmConfig()
    assert {name: getattr(defaults, name) for name in awd_lstm} == awd_lstm
    config = tiny_config(cell_type="gru", softmax="adaptive")
    config.save_pretrained(tmp_path)
    loaded = RnnLmConfig.from_pretrained(tmp_path)
    assert loaded.to_diff_dict() | {"_name_or_path": ""} == config.to_diff_dict() | {"_name_or_path": ""}
    assert loaded.token_order == config.token_order and loaded.adaptive_cutoffs == [6, 20]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cell_type": "transformer"}, "cell_type"),
        ({"softmax": "sampled"}, "softmax"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
        ({"embedding_dropout": 1.0}, "embedding_dropout"),
        ({"input_dropout": -0.1}, "input_dropout"),
        ({"hidden_dropout": 1.5}, "hidden_dropout"),
        ({"output_dropout": 1.0}, "output_dropout"),
        ({"weight_dropout": 1.0}, "weight_dropout"),
        ({"activation_regularization": -1.0}, "activation_regularization"),
        ({"temporal_activation_regularization": -0.5}, "temporal_activation_regularization"),
        ({"adaptive_cutoffs": [20, 6]}, "adaptive_cutoffs"),
        ({"adaptive_cutoffs": [6, 40]}, "adaptive_cutoffs"),
        ({"adaptive_cutoffs": []}, "adaptive_cutoffs"),
        ({"adaptive_cutoffs": [0, 6]}, "adaptive_cutoffs"),
        ({"token_order": list(range(VOCAB - 1))}, "token_order"),
        ({"token_order": [0] * VOCAB}, "token_order"),
        ({"pad_token_id": VOCAB}, "pad_token_id"),
        ({"eos_token_id": -1}, "eos_token_id"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_cutoffs_are_read_only_by_the_adaptive_softmax():
    assert tiny_config(softmax="full", adaptive_cutoffs=[2000, 10000]).softmax == "full"


# ------------------------------------------------------------------------------------------- structure


@pytest.mark.parametrize("cell_type", CELLS)
def test_encoder_weights_are_named_and_shaped_as_the_unidirectional_classifier(cell_type):
    """A language model's embeddings and layers load into a classifier by name (ULMFiT-style transfer)."""
    sizes = dict(vocab_size=VOCAB, embedding_size=8, hidden_size=12, num_hidden_layers=3, cell_type=cell_type)
    language_model = RnnForCausalLM(tiny_config(**sizes))
    classifier = RnnForSequenceClassification(RnnClassifierConfig(bidirectional=False, **sizes))

    def encoder_shapes(model) -> dict[str, tuple[int, ...]]:
        return {
            name: tuple(tensor.shape)
            for name, tensor in model.state_dict().items()
            if name.startswith(("rnn.embeddings.", "rnn.encoder."))
        }

    lm_shapes = encoder_shapes(language_model)
    assert lm_shapes == encoder_shapes(classifier)
    assert "rnn.encoder.layers.2.forward_rnn.weight_hh_l0" in lm_shapes
    transferred = {name: language_model.state_dict()[name] for name in lm_shapes}
    missing, unexpected = classifier.load_state_dict(transferred, strict=False)
    assert not unexpected and all(not name.startswith("rnn.") for name in missing)


@pytest.mark.parametrize(
    ("softmax", "tie", "hidden_size", "projection"),
    [("full", True, 12, True), ("full", True, 8, False), ("full", False, 12, False), ("adaptive", True, 12, True)],
)
def test_output_projection_exists_only_when_tied_sizes_differ(softmax, tie, hidden_size, projection):
    model = tiny_model(softmax=softmax, tie_word_embeddings=tie, hidden_size=hidden_size)
    assert (model.output_projection is not None) == projection
    if softmax == "full":
        assert model.lm_head.weight.shape == (VOCAB, 8 if tie else hidden_size)
        assert (model.lm_head.weight is model.rnn.embeddings.weight) == tie
    else:
        assert model.lm_head is None and model.get_output_embeddings() is None


def test_weights_are_initialised():
    model = tiny_model(softmax="full", tie_word_embeddings=False, cell_type="lstm")
    assert model.rnn.embeddings.weight[PAD].abs().sum() == 0
    layer = model.rnn.encoder.layers[0].forward_rnn
    weight_hh = layer.weight_hh_l0
    torch.testing.assert_close(weight_hh.norm(dim=0), torch.ones(weight_hh.shape[1]), atol=1e-4, rtol=0)
    assert torch.all(layer.bias_ih_l0[12:24] == 1.0)  # LSTM forget gate
    # The untied output layer starts at the embeddings' scale (std initializer_range), not Xavier's.
    assert 0.07 < model.lm_head.weight.std() < 0.13 and model.lm_head.bias.abs().max() == 0


# ---------------------------------------------------------------------------------------- forward / loss


@pytest.mark.parametrize(("cell_type", "softmax", "tie"), itertools.product(CELLS, SOFTMAXES, [True, False]))
def test_forward_backward_reaches_every_parameter(cell_type, softmax, tie):
    model = tiny_model(cell_type=cell_type, softmax=softmax, tie_word_embeddings=tie).train()
    input_ids = torch.arange(VOCAB).roll(5).view(4, 10)  # every token is a target: every tail takes part
    output = model(input_ids, labels=input_ids)
    assert torch.isfinite(output.loss)
    assert (output.logits is None) == (softmax == "adaptive")
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    model.eval()
    assert model(input_ids).logits.shape == (4, 10, VOCAB)


@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_labels_are_shifted_and_a_longer_label_row_predicts_every_position(softmax):
    model = tiny_model(softmax=softmax)
    stream = random_ids(3, 9)
    input_ids = stream[:, :8]
    with torch.no_grad():
        log_probs = model(input_ids).logits.log_softmax(-1)  # the adaptive softmax's scores already are log-probs

    def nll(positions: slice, targets: torch.Tensor) -> torch.Tensor:
        return -log_probs[:, positions].gather(-1, targets.unsqueeze(-1)).mean()

    with torch.no_grad():
        same_length = model(input_ids, labels=input_ids).loss
        one_longer = model(input_ids, labels=stream).loss
        masked = stream.clone()
        masked[:, 1:5] = -100
        with_ignored = model(input_ids, labels=masked).loss
        nothing = model(input_ids, labels=torch.full_like(stream, -100)).loss
    torch.testing.assert_close(same_length, nll(slice(0, 7), input_ids[:, 1:]))
    torch.testing.assert_close(one_longer, nll(slice(0, 8), stream[:, 1:]))
    torch.testing.assert_close(with_ignored, nll(slice(4, 8), stream[:, 5:]))
    assert nothing == 0
    with pytest.raises(ValueError, match="labels"):
        model(input_ids, labels=stream[:, :5])


def test_logits_to_keep_scores_the_last_positions_only():
    for softmax in SOFTMAXES:
        model = tiny_model(softmax=softmax)
        input_ids = random_ids(2, 6)
        with torch.no_grad():
            every = model(input_ids).logits
            last = model(input_ids, logits_to_keep=1).logits
        assert last.shape == (2, 1, VOCAB)
        torch.testing.assert_close(last, every[:, -1:])


def test_eval_loss_is_the_nll_and_training_adds_ar_and_tar():
    alpha, beta = 300.0, 200.0  # large enough to stand out of the NLL
    model = tiny_model(activation_regularization=alpha, temporal_activation_regularization=beta, **NO_DROPOUT)
    input_ids = random_ids(3, 7)
    eval_output = model(input_ids, labels=input_ids, output_hidden_states=True)
    model.train()
    train_output = model(input_ids, labels=input_ids, output_hidden_states=True)
    states = train_output.hidden_states[-1]  # the last layer's outputs (no dropout here)
    torch.testing.assert_close(states, eval_output.hidden_states[-1])
    penalty = alpha * states.pow(2).mean() + beta * (states[:, 1:] - states[:, :-1]).pow(2).mean()
    assert penalty > 0.01
    torch.testing.assert_close(train_output.loss, eval_output.loss + penalty)


def test_activation_regularisation_skips_padding():
    model = tiny_model(activation_regularization=100.0, temporal_activation_regularization=100.0, **NO_DROPOUT).train()
    text = random_ids(1, 5)
    input_ids, attention_mask = padded([text[0], random_ids(1, 8, seed=1)[0]], left=True)
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    penalty = model(input_ids, attention_mask=attention_mask, labels=labels).loss
    model.eval()
    penalty = penalty - model(input_ids, attention_mask=attention_mask, labels=labels).loss
    states = model(input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
    real = states[attention_mask.bool()]
    pairs = torch.cat([states[0, 4:] - states[0, 3:-1], states[1, 1:] - states[1, :-1]])
    torch.testing.assert_close(penalty, 100 * real.pow(2).mean() + 100 * pairs.pow(2).mean())


# ---------------------------------------------------------------------------------------- adaptive softmax


@pytest.mark.parametrize("tie", [True, False])
def test_adaptive_log_probs_are_normalised_and_the_loss_path_agrees(tie):
    model = tiny_model(softmax="adaptive", tie_word_embeddings=tie, adaptive_cutoffs=[4, 11, 25])
    adaptive = model.adaptive_softmax
    hidden = torch.randn(30, 8 if tie else 12)
    weight = model.tied_token_vectors()
    with torch.no_grad():
        log_probs = adaptive.log_probs(hidden, weight)
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(30))
        targets = torch.arange(30) % VOCAB
        torch.testing.assert_close(adaptive.nll(hidden, targets, weight), -log_probs[torch.arange(30), targets])
    if not tie:  # untied tails project to size // 4 ** i dimensions, as nn.AdaptiveLogSoftmaxWithLoss
        assert [cluster.projection.out_features for cluster in adaptive.clusters[1:]] == [3, 1, 1]


def test_adaptive_softmax_ranks_follow_token_order():
    """Cluster 0 holds the `cutoffs[0]` most frequent tokens (`token_order[:c0]`), tail i the next ones."""
    model = tiny_model(softmax="adaptive")
    order = model.config.token_order
    adaptive = model.adaptive_softmax
    hidden = torch.zeros(1, 8)
    with torch.no_grad():
        adaptive.clusters[0].bias[2] = 50.0
        assert adaptive.log_probs(hidden, model.tied_token_vectors()).argmax().item() == order[2]
        adaptive.clusters[0].bias[2] = 0.0
        adaptive.cluster_logits.bias[1] = 50.0  # the second tail cluster, ranks 20..39
        adaptive.clusters[2].bias[3] = 50.0
        assert adaptive.log_probs(hidden, model.tied_token_vectors()).argmax().item() == order[23]


def test_adaptive_loss_computes_each_tail_only_for_its_targets():
    model = tiny_model(softmax="adaptive").train()
    calls = {}
    for index, cluster in enumerate(model.adaptive_softmax.clusters):
        cluster.register_forward_pre_hook(lambda module, args, index=index: calls.update({index: args[0].shape[0]}))
    order = model.config.token_order
    input_ids = torch.tensor([order[:5] + order[6:8]])  # targets: head tokens and two of the first tail
    model(input_ids, labels=input_ids)
    assert calls == {0: 6, 1: 2}  # the head for all 6 targets, tail 1 for its 2, tail 2 never


# ------------------------------------------------------------------------------------------- dropouts


def test_weight_drop_changes_training_outputs_and_is_off_in_evaluation():
    model = tiny_model(**(NO_DROPOUT | {"weight_dropout": 0.5}))
    input_ids = random_ids(2, 6)
    reference = copy.deepcopy(model)
    with torch.no_grad():
        evaluation = model(input_ids).logits
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no flatten_parameters / contiguous-weights warning
        first, second = model(input_ids).logits, model(input_ids).logits
    assert not torch.allclose(first, second)  # a fresh mask per call
    assert not torch.allclose(first, evaluation)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits, evaluation, rtol=0, atol=0)  # the weights are restored
        torch.testing.assert_close(reference(input_ids).logits, evaluation, rtol=0, atol=0)
    assert list(model.state_dict()) == list(reference.state_dict())
    copy.deepcopy(model.train())  # a model that ran a training step still copies (and so pickles)


def test_weight_drop_masks_the_recurrent_weight_gradient():
    model = tiny_model(**(NO_DROPOUT | {"weight_dropout": 0.5})).train()
    input_ids = random_ids(2, 6)
    model(input_ids, labels=input_ids).loss.backward()
    for layer in model.rnn.encoder.layers:
        grad = layer.forward_rnn.weight_hh_l0.grad
        dropped = (grad == 0).float().mean()
        assert 0.3 < dropped < 0.7  # dropped connections get no gradient
        assert layer.forward_rnn.weight_ih_l0.grad.eq(0).float().mean() < 0.1


def test_without_dropout_training_and_evaluation_outputs_agree():
    model = tiny_model(**NO_DROPOUT)
    input_ids = random_ids(2, 6)
    with torch.no_grad():
        evaluation = model(input_ids).logits
        training = model.train()(input_ids).logits
    torch.testing.assert_close(training, evaluation)


def test_embedding_dropout_drops_whole_word_types():
    torch.manual_seed(3)
    model = tiny_model(**(NO_DROPOUT | {"embedding_dropout": 0.5})).train()
    input_ids = torch.tensor([[3, 4, 5, 3, 6], [4, 3, 7, 8, 5]])
    embedded = model(input_ids, output_hidden_states=True).hidden_states[0]
    vectors = model.rnn.embeddings(input_ids)
    kept = {}
    for (row, position), token in zip(itertools.product(range(2), range(5)), input_ids.flatten().tolist()):
        value = embedded[row, position]
        is_kept = not torch.all(value == 0)
        if is_kept:
            torch.testing.assert_close(value, vectors[row, position] * 2)
        assert kept.setdefault(token, is_kept) == is_kept, f"token {token} dropped in one place only"
    assert set(kept.values()) == {True, False}


def test_input_dropout_is_locked_over_time():
    torch.manual_seed(0)
    model = tiny_model(**(NO_DROPOUT | {"input_dropout": 0.5})).train()
    input_ids = random_ids(3, 6)
    embedded = model(input_ids, output_hidden_states=True).hidden_states[0]
    dropped = embedded == 0
    assert dropped.any() and not dropped.all()
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same features dropped at every step


def test_hidden_dropout_sits_between_layers_and_output_dropout_before_the_output_layer():
    input_ids = random_ids(2, 6)

    def train_and_eval(model) -> tuple:
        with torch.no_grad():
            evaluation = model.eval()(input_ids, output_hidden_states=True)
            torch.manual_seed(0)
            training = model.train()(input_ids, output_hidden_states=True)
        return training, evaluation

    training, evaluation = train_and_eval(tiny_model(num_hidden_layers=1, **(NO_DROPOUT | {"hidden_dropout": 0.5})))
    torch.testing.assert_close(training.logits, evaluation.logits)  # one layer: nothing in between
    training, evaluation = train_and_eval(tiny_model(**(NO_DROPOUT | {"hidden_dropout": 0.5})))
    torch.testing.assert_close(training.hidden_states[1], evaluation.hidden_states[1])
    assert not torch.allclose(training.hidden_states[2], evaluation.hidden_states[2])
    training, evaluation = train_and_eval(tiny_model(**(NO_DROPOUT | {"output_dropout": 0.5})))
    torch.testing.assert_close(training.hidden_states[-1], evaluation.hidden_states[-1])
    assert not torch.allclose(training.logits, evaluation.logits)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    input_ids = random_ids(2, 7)
    results = []
    for checkpointing in (False, True):
        model = tiny_model(seed=1).train()  # every dropout on: the recompute must reuse the masks
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.is_activation_checkpointing
        torch.manual_seed(5)
        loss = model(input_ids, labels=input_ids).loss
        loss.backward()
        results.append((loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, msg=name)


# ------------------------------------------------------------------------------------ state and padding


@pytest.mark.parametrize("cell_type", CELLS)
def test_cached_continuation_equals_one_call(cell_type):
    model = tiny_model(cell_type=cell_type)
    input_ids = random_ids(2, 9)
    with torch.no_grad():
        whole = model(input_ids)
        first = model(input_ids[:, :4])
        assert isinstance(first.cache, RnnLmCache) and first.cache.get_seq_length() == 4
        rest = model(input_ids[:, 4:], cache=first.cache)
    assert rest.cache.get_seq_length() == 9
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], dim=1), whole.logits)
    for carried, direct in zip(states_of(rest.cache), states_of(whole.cache)):
        torch.testing.assert_close(carried, direct)
    assert model(input_ids, use_cache=False).cache is None


def test_deprecated_past_key_values_name_still_carries_the_state():
    model = tiny_model()
    input_ids = random_ids(2, 6)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = model(input_ids[:, :3])
        old_name = model(input_ids[:, 3:], past_key_values=first.past_key_values)
        new_name = model(input_ids[:, 3:], cache=first.cache)
    torch.testing.assert_close(old_name.logits, new_name.logits)


def test_streamed_training_carries_the_detached_state_between_windows():
    """Windows of one stream with `labels` one token longer, the state carried: the same NLL as one call."""
    model = tiny_model(softmax="adaptive")
    stream = random_ids(3, 13)
    with torch.no_grad():
        whole = model(stream[:, :-1], labels=stream).loss  # 12 targets per row
        cache, total = None, 0.0
        for window in (stream[:, :6], stream[:, 5:]):  # 5 + 7 targets, none lost between the windows
            output = model(window[:, :-1], labels=window, cache=cache)
            cache = output.cache
            total = total + output.loss * window[:, 1:].numel()
    torch.testing.assert_close(total / (3 * 12), whole)

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cache = None
    for start in (0, 6):
        window = stream[:, start : start + 7]
        output = model(window[:, :-1], labels=window, cache=cache)
        optimizer.zero_grad()
        output.loss.backward()  # would fail if the graph reached into the previous window
        optimizer.step()
        cache = output.cache.detach()
        assert all(not part.requires_grad for part in states_of(cache))


@pytest.mark.parametrize(("left", "cell_type"), itertools.product([True, False], CELLS))
def test_padding_changes_no_output_and_no_state(left, cell_type):
    model = tiny_model(cell_type=cell_type)
    rows = [random_ids(1, length, seed=length)[0] for length in (7, 3, 5)]
    input_ids, attention_mask = padded(rows, left=left)
    next_tokens = random_ids(3, 1, seed=9)
    with torch.no_grad():
        batched = model(input_ids, attention_mask=attention_mask)
        continued = model(
            next_tokens,
            attention_mask=torch.cat([attention_mask, torch.ones(3, 1, dtype=torch.long)], 1),
            cache=batched.cache,
        )
        for index, row in enumerate(rows):
            alone = model(row.unsqueeze(0))
            real = attention_mask[index].bool()
            torch.testing.assert_close(batched.logits[index, real], alone.logits[0])
            alone_next = model(next_tokens[index : index + 1], cache=alone.cache)
            torch.testing.assert_close(continued.logits[index], alone_next.logits[0])


def test_hidden_states_hold_the_embeddings_and_every_layer_at_the_input_positions():
    model = tiny_model(num_hidden_layers=3, **NO_DROPOUT)
    input_ids, attention_mask = padded([random_ids(1, 6)[0], random_ids(1, 3, seed=1)[0]], left=True)
    output = model(input_ids, attention_mask=attention_mask, output_hidden_states=True)
    assert len(output.hidden_states) == 4
    assert output.hidden_states[0].shape == (2, 6, 8) and output.hidden_states[-1].shape == (2, 6, 12)
    torch.testing.assert_close(output.hidden_states[0][1, 3:], model.rnn.embeddings(input_ids[1, 3:]))
    base = model.rnn(input_ids, attention_mask=attention_mask)
    torch.testing.assert_close(base.last_hidden_state, output.hidden_states[-1])
    assert model(input_ids).hidden_states is None


def test_reorder_cache_selects_rows():
    model = tiny_model(cell_type="lstm")
    input_ids = random_ids(3, 4)
    cache = model(input_ids).cache
    expected = [part[:, [2, 0, 0]] for part in states_of(cache)]
    cache.reorder_cache(torch.tensor([2, 0, 0]))
    for part, reference in zip(states_of(cache), expected):
        torch.testing.assert_close(part, reference, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ generation


def manual_greedy(model, prompt: torch.Tensor, max_new_tokens: int) -> list[int]:
    """Greedy decoding of one prompt `(1, len)` by full forward passes over the growing prefix, without a cache."""
    sequence = prompt
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(sequence, use_cache=False).logits
        next_token = logits[0, -1].argmax().view(1, 1)
        sequence = torch.cat([sequence, next_token], dim=1)
        if next_token.item() == EOS:
            break
    return sequence[0].tolist()


@pytest.mark.parametrize(("softmax", "cell_type"), itertools.product(SOFTMAXES, ["lstm", "gru"]))
def test_greedy_generate_equals_a_manual_loop_without_cache(softmax, cell_type):
    model = tiny_model(softmax=softmax, cell_type=cell_type, vocab_size=12, adaptive_cutoffs=[4, 8], token_order=None)
    prompts = random_ids(3, 4, vocab=12)
    generated = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=10)
    for row in range(3):
        expected = manual_greedy(model, prompts[row : row + 1], 10)
        assert generated[row, : len(expected)].tolist() == expected
    uncached = model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=10, use_cache=False)
    assert torch.equal(generated, uncached)


def test_generation_feeds_one_token_per_step_with_cache():
    model = tiny_model()
    prompts = random_ids(2, 5)
    seen = []
    hook = model.rnn.embeddings.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        model.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=4, min_new_tokens=4)
        assert seen == [5, 1, 1, 1]
        seen.clear()
        model.generate(
            prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=4, min_new_tokens=4, use_cache=False
        )
        assert seen == [5, 6, 7, 8]
    finally:
        hook.remove()


@pytest.mark.parametrize("softmax", SOFTMAXES)
def test_left_padded_batch_generates_as_each_prompt_alone(softmax):
    model = tiny_model(softmax=softmax, seed=2)
    rows = [random_ids(1, length, seed=length)[0] for length in (6, 2, 4)]
    input_ids, attention_mask = padded(rows, left=True)
    settings = dict(max_new_tokens=8, min_new_tokens=8)
    greedy = model.generate(input_ids, attention_mask=attention_mask, **settings)
    beams = model.generate(input_ids, attention_mask=attention_mask, num_beams=3, **settings)
    for index, row in enumerate(rows):
        alone = row.unsqueeze(0)
        assert greedy[index, -8:].tolist() == model.generate(alone, **settings)[0, -8:].tolist()
        assert beams[index, -8:].tolist() == model.generate(alone, num_beams=3, **settings)[0, -8:].tolist()


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_beam_search_cached_equals_uncached_and_returns_several_sequences(cell_type):
    model = tiny_model(cell_type=cell_type, vocab_size=12, adaptive_cutoffs=[4, 8], token_order=None)
    prompts = random_ids(2, 3, vocab=12)
    settings = dict(attention_mask=torch.ones_like(prompts), max_new_tokens=6, num_beams=4, num_return_sequences=2)
    cached = model.generate(prompts, **settings)
    assert cached.shape[0] == 4
    assert torch.equal(cached, model.generate(prompts, use_cache=False, **settings))


def test_sampling_is_seeded_and_top_k_1_is_greedy():
    model = tiny_model(softmax="adaptive")
    prompts = random_ids(2, 3)
    settings = dict(attention_mask=torch.ones_like(prompts), max_new_tokens=6, do_sample=True)
    samples = []
    for _ in range(2):
        torch.manual_seed(0)
        samples.append(model.generate(prompts, temperature=0.7, top_k=5, top_p=0.9, **settings))
    assert samples[0].shape == (2, 9) and torch.equal(samples[0], samples[1])
    assert torch.equal(
        model.generate(prompts, top_k=1, **settings), model.generate(prompts, **settings | {"do_sample": False})
    )


WORDS = ["<pad>", "<s>", "</s>", "<unk>", *(f"w{i}" for i in range(VOCAB - 4))]


def word_tokenizer() -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over `WORDS` that pads on the left, as decoder-only generation needs."""
    backend = Tokenizer(models.WordLevel({word: index for index, word in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )


def test_text_generation_pipeline_with_a_left_padded_batch():
    register_auto_classes()
    model = tiny_model(seed=4)
    tokenizer = word_tokenizer()
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    prompts = ["w1 w2 w3 w4 w5", "w7", "w9 w10 w11"]
    settings = dict(max_new_tokens=5, min_new_tokens=5, do_sample=False)
    batched = generator(prompts, batch_size=3, **settings)
    for prompt, result in zip(prompts, batched):
        alone = generator(prompt, **settings)[0]["generated_text"]
        assert result[0]["generated_text"] == alone
        assert alone.startswith(prompt) and len(alone) > len(prompt)


# ----------------------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(("softmax", "tie"), itertools.product(SOFTMAXES, [True, False]))
def test_save_and_load_round_trip(tmp_path, softmax, tie):
    register_auto_classes()
    model = tiny_model(softmax=softmax, tie_word_embeddings=tie)
    input_ids = random_ids(2, 6)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"]["AutoModelForCausalLM"] == "modeling_rnn_lm.RnnForCausalLM"
    assert (tmp_path / "modeling_rnn_lm.py").is_file() and (tmp_path / "configuration_rnn_lm.py").is_file()
    weights = load_file(tmp_path / "model.safetensors")
    assert set(weights) == set(model.state_dict()) - ({"lm_head.weight"} if softmax == "full" and tie else set())

    loaded, info = RnnForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not keys for keys in info.values()), info  # nothing missing, unexpected or mismatched
    loaded.eval()
    if softmax == "full":
        assert (loaded.lm_head.weight is loaded.rnn.embeddings.weight) == tie
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids).logits, model(input_ids).logits, rtol=0, atol=0)
        assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path), RnnForCausalLM)
        base = AutoModel.from_pretrained(tmp_path).eval()
        assert type(base) is RnnLmModel
        torch.testing.assert_close(base(input_ids).last_hidden_state, model.rnn(input_ids).last_hidden_state)


@pytest.mark.parametrize("tie", [True, False])
def test_resizing_the_adaptive_softmax_adds_the_rarest_tokens_and_round_trips(tmp_path, tie):
    """New ids join the last tail cluster: the head and the other clusters keep their scores, the distribution stays
    normalised over the larger vocabulary, and the resized model saves, loads and generates."""
    model = tiny_model(softmax="adaptive", tie_word_embeddings=tie)
    input_ids = random_ids(2, 6)
    head = model.config.token_order[:6]  # cutoffs [6, 20]: the head's tokens
    with torch.no_grad():
        before = torch.log_softmax(model(input_ids).logits, dim=-1)
    model.resize_token_embeddings(VOCAB + 5)
    assert model.config.vocab_size == VOCAB + 5 and model.adaptive_softmax.boundaries == [0, 6, 20, VOCAB + 5]
    assert model.config.token_order[-5:] == list(range(VOCAB, VOCAB + 5))
    with torch.no_grad():
        after = torch.log_softmax(model(input_ids).logits, dim=-1)
    torch.testing.assert_close(after.exp().sum(-1), torch.ones(2, 6))
    torch.testing.assert_close(after[..., head], before[..., head])  # the head does not change
    assert after[..., VOCAB:].isfinite().all()

    model.save_pretrained(tmp_path)
    loaded, info = RnnForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not keys for keys in info.values()), info
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids).logits, model(input_ids).logits, rtol=0, atol=0)
    generated = loaded.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=4, do_sample=False)
    assert generated.shape == (2, 10)

    with pytest.raises(ValueError, match="cannot shrink the adaptive softmax"):
        loaded.resize_token_embeddings(VOCAB)


def test_resizing_the_full_softmax_grows_and_shrinks(tmp_path):
    model = tiny_model(softmax="full", tie_word_embeddings=False)
    input_ids = random_ids(2, 6)
    with torch.no_grad():
        before = model(input_ids).logits
    model.resize_token_embeddings(VOCAB + 3)
    model.resize_token_embeddings(VOCAB)
    assert model.lm_head.weight.shape[0] == VOCAB and model.config.vocab_size == VOCAB
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits, before, rtol=0, atol=0)


@pytest.mark.integration
@pytest.mark.slow  # launches a process
def test_saved_model_loads_as_remote_code_without_hf_rnn(tmp_path):
    model = tiny_model(softmax="adaptive")
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    input_ids = random_ids(2, 6)
    with torch.no_grad():
        logits = model(input_ids).logits
    generated = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=5, num_beams=2)
    remote = run_without_hf_rnn(
        f"""
import importlib.util, json, torch
assert importlib.util.find_spec("hf_rnn") is None, "hf_rnn must not be importable here"
from transformers import AutoModelForCausalLM
torch.set_num_threads(1)
model = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
input_ids = torch.tensor({input_ids.tolist()!r})
with torch.no_grad():
    logits = model(input_ids).logits
generated = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=5, num_beams=2)
print(json.dumps({{"logits": logits.tolist(), "generated": generated.tolist(), "module": type(model).__module__}}))
""",
        tmp_path,
    )
    assert remote["module"].startswith("transformers_modules."), remote["module"]
    assert remote["logits"] == logits.tolist()  # exact: same code, weights and thread count
    assert remote["generated"] == generated.tolist()


# --------------------------------------------------------------------------------- end-to-end learning


@pytest.mark.integration  # a whole (tiny) training loop, in about 3 s
def test_streamed_training_learns_a_repeated_text_far_below_the_unigram_perplexity():
    """A 60-token text repeated: after a few hundred Adam steps on BPTT windows with the state carried, the model
    predicts it from context, far below the perplexity of its unigram frequencies."""
    generator = torch.Generator().manual_seed(0)
    text = torch.randint(3, VOCAB, (60,), generator=generator)
    stream = text.repeat(40).view(4, -1)  # 4 parallel rows of 600 tokens
    counts = torch.bincount(text, minlength=VOCAB).float()
    frequencies = counts[counts > 0] / counts.sum()
    unigram_perplexity = math.exp(-(frequencies * frequencies.log()).sum().item())

    model = tiny_model(
        embedding_size=32,
        hidden_size=48,
        num_hidden_layers=2,
        embedding_dropout=0.05,
        input_dropout=0.1,
        hidden_dropout=0.1,
        output_dropout=0.1,
        weight_dropout=0.1,
        adaptive_cutoffs=[10, 25],
    ).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start, cache, position, bptt = time.monotonic(), None, 0, 12
    for _ in range(300):
        if position + bptt + 1 > stream.shape[1]:
            position, cache = 0, None
        window = stream[:, position : position + bptt + 1]
        output = model(window[:, :-1], labels=window, cache=cache)
        optimizer.zero_grad()
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        cache, position = output.cache.detach(), position + bptt

    model.eval()
    with torch.no_grad():
        nll = model(stream[:, :-1], labels=stream).loss.item()
    elapsed = time.monotonic() - start
    assert math.exp(nll) < unigram_perplexity / 10, (math.exp(nll), unigram_perplexity)
    assert elapsed < 15, elapsed

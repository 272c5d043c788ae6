"""Tests of the recurrent attention encoder-decoder (`rnn_seq2seq`): tiny random models on one CPU thread."""

import itertools

import pytest
import torch
from transformers import GenerationMixin

import hf_rnn  # noqa: F401  (registers the Auto classes)
from hf_rnn import RnnSeq2SeqCache, RnnSeq2SeqConfig, RnnSeq2SeqForConditionalGeneration, RnnSeq2SeqModel

torch.set_num_threads(1)

PAD, BOS, EOS = 0, 1, 2
VOCAB = 24


def tiny_config(**overrides) -> RnnSeq2SeqConfig:
    values = dict(
        vocab_size=VOCAB,
        embedding_size=12,
        hidden_size=16,
        encoder_layers=2,
        decoder_layers=2,
        embedding_dropout=0.0,
        rnn_dropout=0.0,
        output_dropout=0.0,
        label_smoothing=0.0,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=BOS,
    )
    values.update(overrides)
    return RnnSeq2SeqConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> RnnSeq2SeqForConditionalGeneration:
    torch.manual_seed(seed)
    return RnnSeq2SeqForConditionalGeneration(tiny_config(**overrides)).eval()


def padded_batch(lengths: list[int], seed: int = 0, vocab: int = VOCAB, left: bool = False):
    """Random source ids `(batch, max(lengths))` without special tokens, padded right (or left), and the mask."""
    generator = torch.Generator().manual_seed(seed)
    max_len = max(lengths)
    input_ids = torch.full((len(lengths), max_len), PAD)
    attention_mask = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        positions = slice(max_len - length, max_len) if left else slice(0, length)
        input_ids[row, positions] = torch.randint(3, vocab, (length,), generator=generator)
        attention_mask[row, positions] = 1
    return input_ids, attention_mask


def random_labels(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=generator)


def sequence_log_probs(model, input_ids, attention_mask, sequences) -> torch.Tensor:
    """Summed log-probability `(batch,)` of generated `sequences` (start token first), up to the first EOS."""
    targets = sequences[:, 1:]
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=sequences[:, :-1]).logits
    token_log_probs = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    # Keep every position up to and including the first EOS.
    after_eos = (targets == EOS).long().cumsum(1) - (targets == EOS).long()
    return (token_log_probs * (after_eos == 0)).sum(1)


# ----------------------------------------------------------------------------------------------- config


def test_config_round_trip_and_defaults(tmp_path):
    config = tiny_config(attention_type="bahdanau", cell_type="gru", bridge="last", input_feeding=True)
    assert config.target_vocab_size == VOCAB and config.attentional_size == config.embedding_size
    assert config.num_hidden_layers == config.decoder_layers == 2
    assert config.is_encoder_decoder
    config.save_pretrained(tmp_path)
    from transformers import AutoConfig

    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, RnnSeq2SeqConfig)
    without_path = lambda c: {k: v for k, v in c.to_dict().items() if k != "_name_or_path"}  # noqa: E731
    assert without_path(loaded) == without_path(config)

    default = RnnSeq2SeqConfig()
    assert (default.embedding_size, default.hidden_size, default.teacher_forcing_ratio) == (256, 512, 1.0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cell_type": "transformer"}, "cell_type"),
        ({"attention_type": "multihead"}, "attention_type"),
        ({"bridge": "mean"}, "bridge"),
        ({"embedding_dropout": 1.0}, "embedding_dropout"),
        ({"rnn_dropout": 1.5}, "rnn_dropout"),
        ({"output_dropout": -0.1}, "output_dropout"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"teacher_forcing_ratio": 1.2}, "teacher_forcing_ratio"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"tie_word_embeddings": True, "attentional_size": 20}, "tie_word_embeddings"),
        ({"share_embeddings": True, "target_vocab_size": 30}, "share_embeddings"),
        ({"attention_type": "luong_dot", "encoder_bidirectional": True}, "luong_dot"),
        ({"attention_type": "none", "bridge": "zero"}, "bridge"),
        ({"eos_token_id": VOCAB}, "eos_token_id"),
    ],
)
def test_config_validation(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_config_accepts_untied_sizes_and_separate_vocabularies():
    config = tiny_config(tie_word_embeddings=False, attentional_size=20, share_embeddings=False, target_vocab_size=30)
    model = RnnSeq2SeqForConditionalGeneration(config)
    assert model.decoder.output_projection.weight.shape == (30, 20)
    assert model.decoder.embeddings.weight.shape == (30, config.embedding_size)


# ------------------------------------------------------------------------------------ forward / backward

ATTENTION_TYPES = ("none", "bahdanau", "luong_dot", "luong_general", "luong_concat")
CELL_TYPES = ("rnn", "lstm", "gru")


@pytest.mark.parametrize(("attention_type", "cell_type"), list(itertools.product(ATTENTION_TYPES, CELL_TYPES)))
def test_forward_backward_every_attention_and_cell(attention_type, cell_type):
    index = ATTENTION_TYPES.index(attention_type) + CELL_TYPES.index(cell_type)
    # Vary the other options across the grid, keeping each run tiny.
    overrides = dict(
        attention_type=attention_type,
        cell_type=cell_type,
        input_feeding=index % 2 == 0,
        bridge=("learned", "last", "zero")[index % 3] if attention_type != "none" else "learned",
        encoder_bidirectional=attention_type != "luong_dot",
        share_embeddings=index % 2 == 1,
        tie_word_embeddings=index % 3 != 0,
        label_smoothing=0.1,
    )
    model = tiny_model(**overrides).train()
    input_ids, attention_mask = padded_batch([6, 4, 2])
    labels = random_labels(3, 5)
    labels[2, 3:] = -100
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_attentions=True)

    assert output.logits.shape == (3, 5, VOCAB)
    assert torch.isfinite(output.loss)
    if attention_type == "none":
        assert output.cross_attentions is None
    else:
        weights = output.cross_attentions[0]
        assert weights.shape == (3, 1, 5, 6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1, 5))
        assert weights[1, :, :, 4:].abs().max() == 0  # padding gets no attention

    output.loss.backward()
    source_grad = model.encoder.embeddings.weight.grad
    assert source_grad is not None and source_grad[3:].abs().sum() > 0
    target_embeddings = model.get_target_embeddings()
    assert target_embeddings.weight.grad is not None and target_embeddings.weight.grad.abs().sum() > 0
    assert model.encoder.rnn.layers[0].forward_rnn.weight_ih_l0.grad.abs().sum() > 0


def test_loss_is_label_smoothed_cross_entropy_on_shifted_labels():
    model = tiny_model(label_smoothing=0.2)
    input_ids, attention_mask = padded_batch([5, 3])
    labels = random_labels(2, 4)
    labels[1, 2:] = -100
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels)
    assert decoder_input_ids[:, 0].eq(BOS).all() and decoder_input_ids[1, 3] == PAD
    logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1), label_smoothing=0.2)
    torch.testing.assert_close(output.loss, expected)


# ------------------------------------------------------------------------------- fast path vs step loop


@pytest.mark.parametrize(
    ("attention_type", "cell_type"),
    [("luong_general", "lstm"), ("luong_dot", "gru"), ("luong_concat", "rnn"), ("none", "lstm")],
)
def test_fast_path_equals_step_loop(attention_type, cell_type):
    model = tiny_model(
        attention_type=attention_type,
        cell_type=cell_type,
        input_feeding=False,
        encoder_bidirectional=attention_type != "luong_dot",
    )
    input_ids, attention_mask = padded_batch([7, 5, 3])
    labels = random_labels(3, 6)
    rnn_calls = []
    hook = model.decoder.rnn.register_forward_hook(lambda *args: rnn_calls.append(1))
    with torch.no_grad():
        fast = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_attentions=True)
        assert len(rnn_calls) == 1  # the whole target side in one recurrent call
        model.decoder.use_fast_path = False
        loop = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_attentions=True)
        assert len(rnn_calls) == 1 + labels.shape[1]
    hook.remove()
    torch.testing.assert_close(fast.logits, loop.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.cache.attentional_vector, loop.cache.attentional_vector, rtol=1e-5, atol=1e-5)
    if attention_type != "none":
        torch.testing.assert_close(fast.cross_attentions[0], loop.cross_attentions[0], rtol=1e-5, atol=1e-5)


def test_cached_continuation_equals_full_forward():
    model = tiny_model(attention_type="bahdanau", input_feeding=True, cell_type="lstm")
    input_ids, attention_mask = padded_batch([6, 3])
    decoder_input_ids = random_labels(2, 5)
    with torch.no_grad():
        full = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids)
        first = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids[:, :3])
        assert isinstance(first.cache, RnnSeq2SeqCache) and first.cache.get_seq_length() == 3
        rest = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids[:, 3:],
            cache=first.cache,
        )
    torch.testing.assert_close(torch.cat([first.logits, rest.logits], 1), full.logits, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------------------------- padding


@pytest.mark.parametrize("left", [False, True])
def test_padded_batch_matches_sentences_alone(left):
    model = tiny_model(attention_type="luong_concat", input_feeding=True, cell_type="gru")
    lengths = [7, 2, 5]
    input_ids, attention_mask = padded_batch(lengths, left=left)
    decoder_input_ids = random_labels(3, 4)
    with torch.no_grad():
        batched = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids)
        generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=8)
        beams = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=3)
        for row in range(3):
            real = attention_mask[row].bool()
            alone_ids = input_ids[row, real].unsqueeze(0)
            alone = model(input_ids=alone_ids, decoder_input_ids=decoder_input_ids[row : row + 1])
            torch.testing.assert_close(batched.logits[row : row + 1], alone.logits, rtol=1e-5, atol=1e-5)
            alone_generated = model.generate(alone_ids, max_new_tokens=8)[0]
            assert generated[row, : alone_generated.shape[0]].tolist() == alone_generated.tolist()
            alone_beam = model.generate(alone_ids, max_new_tokens=8, num_beams=3)[0]
            assert beams[row, : alone_beam.shape[0]].tolist() == alone_beam.tolist()


# ----------------------------------------------------------------------------------------- generation


def manual_greedy(model, input_ids, max_new_tokens):
    """Greedy decoding by full forward passes over the growing prefix, one sentence at a time."""
    results = []
    for row in range(input_ids.shape[0]):
        sequence = torch.tensor([[BOS]])
        for _ in range(max_new_tokens):
            with torch.no_grad():
                logits = model(input_ids=input_ids[row : row + 1], decoder_input_ids=sequence).logits
            next_token = logits[0, -1].argmax().view(1, 1)
            sequence = torch.cat([sequence, next_token], dim=1)
            if next_token.item() == EOS:
                break
        results.append(sequence[0].tolist())
    return results


@pytest.mark.parametrize("attention_type", ["bahdanau", "luong_general"])
def test_generate_greedy_equals_manual_greedy_and_uncached(attention_type):
    model = tiny_model(attention_type=attention_type, input_feeding=attention_type == "bahdanau", vocab_size=12)
    input_ids, _ = padded_batch([5, 5, 5], vocab=12)
    generated = model.generate(input_ids, max_new_tokens=10, num_beams=1, do_sample=False)
    expected = manual_greedy(model, input_ids, 10)
    for row, sequence in enumerate(expected):
        assert generated[row, : len(sequence)].tolist() == sequence
        assert generated[row, len(sequence) :].eq(PAD).all()
    uncached = model.generate(input_ids, max_new_tokens=10, use_cache=False)
    assert torch.equal(generated, uncached)


@pytest.mark.parametrize("attention_type", ["bahdanau", "luong_general"])
def test_greedy_generation_stops_computing_finished_rows(attention_type):
    model = tiny_model(attention_type=attention_type, input_feeding=attention_type == "bahdanau", seed=3)
    with torch.no_grad():
        model.decoder.output_projection.weight[EOS] *= 3.0  # some rows end after a few tokens, others run on
    input_ids, attention_mask = padded_batch([7, 6, 5, 5, 4, 3, 3, 2], seed=5)
    decoded_rows = []
    hook = model.decoder.rnn.register_forward_pre_hook(lambda module, args: decoded_rows.append(args[0].shape[0]))
    try:
        generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=12, num_beams=1)
    finally:
        hook.remove()
    ended = (generated[:, 1:] == EOS).any(dim=1)
    assert 0 < ended.sum() < len(ended), "the test needs rows that end early and rows that run on"
    # One decoder call per step; the number of rows it computes shrinks as rows emit </s>.
    assert decoded_rows[0] == len(generated) and decoded_rows[-1] < len(generated)
    assert decoded_rows == sorted(decoded_rows, reverse=True)
    uncached = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=12, use_cache=False)
    assert torch.equal(generated, uncached)
    for row, length in enumerate(attention_mask.sum(dim=1).tolist()):  # each sentence alone
        alone = model.generate(input_ids[row : row + 1, :length], max_new_tokens=12)[0]
        assert generated[row, : len(alone)].tolist() == alone.tolist()


@pytest.mark.parametrize("target_token_ids", [None, [EOS, *range(5, 20)]], ids=["all-ids", "target-ids"])
def test_plain_greedy_generate_takes_the_fast_path_with_identical_output(monkeypatch, target_token_ids):
    model = tiny_model(attention_type="bahdanau", input_feeding=True, seed=3, target_token_ids=target_token_ids)
    with torch.no_grad():
        model.decoder.output_projection.weight[EOS] *= 3.0  # rows that end early and rows that run on
    input_ids, attention_mask = padded_batch([7, 6, 5, 5, 4, 3, 3, 2], seed=5)
    fast_calls = []
    greedy_generate = model.greedy_generate
    monkeypatch.setattr(model, "greedy_generate", lambda *args: fast_calls.append(1) or greedy_generate(*args))

    fast = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=12)
    general = GenerationMixin.generate(model, input_ids, attention_mask=attention_mask, max_new_tokens=12)
    assert fast_calls == [1]
    assert torch.equal(fast, general)
    assert 0 < (fast[:, 1:] == EOS).any(dim=1).sum() < len(fast)
    # Settings the fast path does not implement take GenerationMixin's path.
    for settings in ({"repetition_penalty": 1.3}, {"num_beams": 2}, {"min_new_tokens": 4}, {"use_cache": False}):
        model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=12, **settings)
    assert fast_calls == [1]


def test_logits_over_the_output_tokens_only_give_the_same_loss():
    target_token_ids = [EOS, *range(5, 20)]
    model = tiny_model(target_token_ids=target_token_ids)
    input_ids, attention_mask = padded_batch([5, 3], seed=2)
    labels = torch.tensor(target_token_ids)[torch.randint(0, 16, (2, 4), generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        full = model(input_ids, attention_mask=attention_mask, labels=labels)
        short = model(input_ids, attention_mask=attention_mask, labels=labels, full_vocabulary_logits=False)
    assert full.logits.shape == (2, 4, VOCAB) and short.logits.shape == (2, 4, len(target_token_ids))
    torch.testing.assert_close(short.loss, full.loss, rtol=0, atol=0)
    torch.testing.assert_close(short.logits, full.logits[..., target_token_ids], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("attention_type", "target_token_ids", "num_beams"),
    [
        ("bahdanau", None, 1),
        ("luong_general", [EOS, *range(5, 20)], 1),
        ("luong_concat", None, 1),
        ("none", None, 1),
        ("bahdanau", None, 3),
        ("luong_general", [EOS, *range(5, 20)], 2),
    ],
)
def test_pooled_search_gives_each_sentence_what_generate_gives_its_batch(attention_type, target_token_ids, num_beams):
    """Sentences of later batches join the pool as sentences are done (pool of 3 for batches of 4): every sentence
    gets what `generate` gives it in its own batch, with its batch's limit, and the decoder never runs more than
    3 sentences' rows."""
    model = tiny_model(
        attention_type=attention_type,
        input_feeding=attention_type != "luong_general",
        seed=3,
        target_token_ids=target_token_ids,
    )
    with torch.no_grad():
        model.decoder.output_projection.weight[EOS] *= 3.0  # sentences that end early and ones that reach the limit
    batches = [
        (*padded_batch(lengths, seed=seed), limit)
        for seed, (lengths, limit) in enumerate(
            [([2, 3, 3, 4], 12), ([4, 5, 6, 7], 9), ([7, 7, 8], 2), ([8, 9, 11, 12], 1), ([12, 13, 14, 16], 12)]
        )
    ]
    decoded_rows = []
    hook = model.decoder.rnn.register_forward_pre_hook(lambda module, args: decoded_rows.append(args[0].shape[0]))
    try:
        pooled = {
            (batch, row): tokens
            for batch, row, tokens in model.generate_pooled(batches, pool_size=3, num_beams=num_beams)
        }
    finally:
        hook.remove()
    assert sorted(pooled) == [(batch, row) for batch, (ids, _, _) in enumerate(batches) for row in range(len(ids))]
    assert max(decoded_rows) == 3 * num_beams
    fill = PAD if num_beams == 1 else EOS  # GenerationMixin pads beam outputs with `pad_token_id or eos_token_id`
    ended_early = at_limit = 0
    for batch, (input_ids, attention_mask, limit) in enumerate(batches):
        expected = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=limit, num_beams=num_beams)
        for row, generated in enumerate(expected[:, 1:].tolist()):
            tokens = pooled[batch, row]
            assert generated == tokens + [fill] * (len(generated) - len(tokens)), (batch, row)
            ended_early += tokens[-1] == EOS
            at_limit += len(tokens) == limit and tokens[-1] != EOS
    assert ended_early and at_limit, "the test needs sentences that end early and ones that reach their limit"


def test_pooled_search_refuses_settings_it_does_not_implement():
    model = tiny_model()
    batches = [(*padded_batch([3, 4]), 5)]
    assert model.generate_pooled(batches, pool_size=2) is not None
    model.generation_config.repetition_penalty = 1.3
    assert model.generate_pooled(batches, pool_size=2) is None
    model.generation_config.repetition_penalty = 1.0
    model.train()
    assert model.generate_pooled(batches, pool_size=2) is None


@pytest.mark.parametrize(
    ("attention_type", "target_token_ids", "length_penalty", "max_new_tokens"),
    [
        ("bahdanau", None, 1.0, 12),
        ("bahdanau", [EOS, *range(5, 20)], 1.0, 12),
        ("luong_general", [EOS, *range(4, 24)], 0.6, 12),
        ("luong_concat", None, 2.0, 4),  # most hypotheses end at the length limit
    ],
)
def test_plain_beam_search_takes_the_fast_path_with_identical_output(
    monkeypatch, attention_type, target_token_ids, length_penalty, max_new_tokens
):
    model = tiny_model(
        attention_type=attention_type,
        input_feeding=attention_type == "bahdanau",
        seed=3,
        target_token_ids=target_token_ids,
    )
    with torch.no_grad():
        model.decoder.output_projection.weight[EOS] *= 3.0  # sentences that are done early and ones that run on
    input_ids, attention_mask = padded_batch([7, 6, 5, 5, 4, 3, 3, 2], seed=5)
    fast_calls = []
    beam_generate = model.beam_generate
    monkeypatch.setattr(model, "beam_generate", lambda *args: fast_calls.append(1) or beam_generate(*args))
    settings = dict(num_beams=4, max_new_tokens=max_new_tokens, length_penalty=length_penalty)

    fast = model.generate(input_ids, attention_mask=attention_mask, **settings)
    general = GenerationMixin.generate(model, input_ids, attention_mask=attention_mask, **settings)
    assert fast_calls == [1]
    assert torch.equal(fast, general)
    model.generate(input_ids, attention_mask=attention_mask, num_return_sequences=2, **settings)
    model.generate(input_ids, attention_mask=attention_mask, early_stopping=True, **settings)
    assert fast_calls == [1]


def test_generation_feeds_one_token_per_step_with_cache():
    model = tiny_model()
    input_ids, attention_mask = padded_batch([6, 4])
    seen_lengths = []
    hook = model.decoder.register_forward_pre_hook(lambda module, args: seen_lengths.append(args[0].shape[1]))
    try:
        model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=5, min_new_tokens=5)
        assert seen_lengths == [1] * 5
        seen_lengths.clear()
        model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=5, min_new_tokens=5, use_cache=False)
        assert seen_lengths == [1, 2, 3, 4, 5]
    finally:
        hook.remove()


@pytest.mark.parametrize("attention_type", ["bahdanau", "luong_general", "luong_concat"])
def test_keys_are_projected_once_per_source(attention_type):
    model = tiny_model(attention_type=attention_type)
    input_ids, attention_mask = padded_batch([6, 4])
    calls = []
    original = model.decoder.attention.project_keys
    model.decoder.attention.project_keys = lambda keys: calls.append(keys.shape) or original(keys)
    model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=6, min_new_tokens=6, num_beams=3)
    assert calls == [(6, 6, 32)]  # once, for the 2 sources expanded to 3 beams each


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_beam_search_cached_equals_uncached(cell_type):
    model = tiny_model(cell_type=cell_type, attention_type="bahdanau", input_feeding=True, vocab_size=12)
    input_ids, attention_mask = padded_batch([6, 3, 5], vocab=12)
    kwargs = dict(attention_mask=attention_mask, max_new_tokens=8, num_beams=4, num_return_sequences=2)
    cached = model.generate(input_ids, **kwargs)
    uncached = model.generate(input_ids, use_cache=False, **kwargs)
    assert cached.shape[0] == 6
    assert torch.equal(cached, uncached)


def test_beam_search_options_and_sampling_run():
    model = tiny_model(vocab_size=12)
    input_ids, attention_mask = padded_batch([6, 4], vocab=12)
    beams = model.generate(
        input_ids,
        attention_mask=attention_mask,
        max_new_tokens=12,
        num_beams=3,
        num_return_sequences=3,
        length_penalty=0.6,
        no_repeat_ngram_size=2,
        early_stopping=True,
    )
    assert beams.shape[0] == 6
    for sequence in beams.tolist():
        # transformers fills finished beams with EOS when pad_token_id is 0 (`pad or eos`): cut at the first EOS.
        sequence = sequence[: sequence.index(EOS) + 1] if EOS in sequence else sequence
        bigrams = [tuple(sequence[i : i + 2]) for i in range(len(sequence) - 1)]
        assert len(bigrams) == len(set(bigrams))
    torch.manual_seed(0)
    sampled = model.generate(input_ids, attention_mask=attention_mask, do_sample=True, top_k=5, max_new_tokens=6)
    assert sampled.shape[0] == 2 and sampled[:, 0].eq(BOS).all()


def test_beam_search_scores_at_least_greedy():
    """With no length penalty, beam search (k=5) should find sequences the model scores at least as high as greedy
    ones. Not a theorem for every input, so the test asks it of most inputs and of the total."""
    model = tiny_model(seed=3, vocab_size=10, attention_type="luong_general")
    beam_scores, greedy_scores = [], []
    for seed in range(8):
        input_ids, attention_mask = padded_batch([6, 4, 5], seed=seed, vocab=10)
        greedy = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=8)
        beam = model.generate(
            input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=5, length_penalty=0.0
        )
        greedy_scores.append(sequence_log_probs(model, input_ids, attention_mask, greedy))
        beam_scores.append(sequence_log_probs(model, input_ids, attention_mask, beam))
    beam_scores, greedy_scores = torch.cat(beam_scores), torch.cat(greedy_scores)
    at_least_greedy = beam_scores >= greedy_scores - 1e-4
    assert at_least_greedy.float().mean() >= 0.9
    assert beam_scores.sum() > greedy_scores.sum()


# ---------------------------------------------------------------------------------------- teacher forcing


def test_teacher_forcing_ratio_is_read_at_call_time():
    model = tiny_model(attention_type="luong_general", input_feeding=False)
    input_ids, attention_mask = padded_batch([6, 5, 4, 6])
    labels = random_labels(4, 7)

    def loss_with_ratio(ratio: float, train: bool) -> torch.Tensor:
        model.config.teacher_forcing_ratio = ratio
        model.train(train)
        torch.manual_seed(0)
        with torch.no_grad():
            return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss

    assert not torch.isclose(loss_with_ratio(0.0, train=True), loss_with_ratio(1.0, train=True))
    torch.testing.assert_close(loss_with_ratio(0.0, train=False), loss_with_ratio(1.0, train=False))
    # Same seed, same ratio: the sampling of gold vs predicted tokens is reproducible.
    torch.testing.assert_close(loss_with_ratio(0.5, train=True), loss_with_ratio(0.5, train=True))


# ------------------------------------------------------------------------------------------ save / load


@pytest.mark.parametrize("share_embeddings", [True, False])
def test_save_and_auto_load_round_trip(tmp_path, share_embeddings):
    from transformers import AutoModel, AutoModelForSeq2SeqLM

    model = tiny_model(share_embeddings=share_embeddings, tie_word_embeddings=True, attention_type="bahdanau")
    target_embeddings = model.get_target_embeddings().weight
    assert model.decoder.output_projection.weight is target_embeddings
    assert model.get_target_embeddings().weight[PAD].abs().max() == 0
    input_ids, attention_mask = padded_batch([6, 3])
    generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=2)

    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "generation_config.json").exists()
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, RnnSeq2SeqForConditionalGeneration)
    assert loaded.decoder.output_projection.weight is loaded.get_target_embeddings().weight
    assert loaded.generation_config.decoder_start_token_id == BOS
    assert loaded.generation_config.max_new_tokens == 100
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    reloaded = loaded.generate(input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=2)
    assert torch.equal(generated, reloaded)
    assert isinstance(AutoModel.from_pretrained(tmp_path), RnnSeq2SeqModel)


def test_headless_model_is_the_base_model_and_returns_the_attentional_vectors(tmp_path):
    """`AutoModel` gives the bare encoder-decoder (as `MarianModel` for `MarianMTModel`), loaded from the same weights."""
    from transformers import AutoModel
    from transformers.modeling_outputs import Seq2SeqModelOutput

    model = tiny_model().eval()
    assert model.base_model is model.model and isinstance(model.model, RnnSeq2SeqModel)  # before: no `model` attribute
    model.save_pretrained(tmp_path)
    bare = AutoModel.from_pretrained(tmp_path).eval()
    assert type(bare) is RnnSeq2SeqModel
    input_ids, attention_mask = padded_batch([6, 3])
    decoder_input_ids = torch.tensor([[BOS, 5, 6], [BOS, 7, 8]])
    full = model(
        input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, output_hidden_states=True
    )
    output = bare(input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, output_attentions=True)
    assert isinstance(output, Seq2SeqModelOutput)
    torch.testing.assert_close(output.last_hidden_state, full.decoder_hidden_states[0])
    torch.testing.assert_close(output.encoder_last_hidden_state, full.encoder_last_hidden_state)
    assert output.cross_attentions[0].shape == (2, 1, 3, 6)


def test_checkpoints_saved_before_the_headless_model_still_load(tmp_path):
    """Weights saved as `encoder.*` / `decoder.*` (before `RnnSeq2SeqModel` existed) load under `model.`."""
    from safetensors.torch import load_file, save_file

    model = tiny_model().eval()
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({key.removeprefix("model."): value for key, value in weights.items()}, tmp_path / "model.safetensors")
    loaded = RnnSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


# --------------------------------------------------------------------------------- end-to-end learning

REVERSE_VOCAB = 20


def reverse_task_batch(size: int, generator: torch.Generator):
    """Sources of 3-8 tokens from ids 3..19, right-padded; labels are the reversed source followed by EOS."""
    lengths = torch.randint(3, 9, (size,), generator=generator)
    input_ids = torch.full((size, 8), PAD)
    labels = torch.full((size, 9), -100)
    for row, length in enumerate(lengths.tolist()):
        tokens = torch.randint(3, REVERSE_VOCAB, (length,), generator=generator)
        input_ids[row, :length] = tokens
        labels[row, :length] = tokens.flip(0)
        labels[row, length] = EOS
    return input_ids, (input_ids != PAD).long(), labels


@pytest.fixture
def one_torch_thread():
    """Earlier tests in a session may change torch's thread count (a recipe's `threads`), and with it the order of
    reductions: the reverse task once reached 0.933 exact match in CI instead of >= 0.95."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_reverse_task_is_learned(one_torch_thread):
    torch.manual_seed(0)
    config = tiny_config(
        vocab_size=REVERSE_VOCAB,
        embedding_size=32,
        hidden_size=64,
        encoder_layers=1,
        decoder_layers=1,
        cell_type="lstm",
        attention_type="luong_general",
    )
    model = RnnSeq2SeqForConditionalGeneration(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(500):
        input_ids, attention_mask, labels = reverse_task_batch(64, generator)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    model.eval()
    input_ids, attention_mask, labels = reverse_task_batch(300, torch.Generator().manual_seed(1234))
    generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=10)
    exact = 0
    for row in range(labels.shape[0]):
        expected = labels[row][labels[row] != -100].tolist()
        output = generated[row, 1:].tolist()
        exact += output[: len(expected)] == expected
    assert exact / labels.shape[0] >= 0.95, f"exact match {exact / labels.shape[0]:.3f} after {loss.item():.4f} loss"


JOINT_VOCAB, TASK_WORDS = 4000, 30


def joint_vocabulary_copy_batch(size: int, generator: torch.Generator):
    """A dictionary 'translation' in a joint vocabulary of 4000 ids, as a joint BPE vocabulary is for a language pair.

    Source words are ids 2000 + w, their translations ids w (3 <= w < 33), Zipf-distributed: the output layer has
    3,967 rows that are never a target, as a de-en model's joint vocabulary has its German-only tokens.
    """
    frequencies = 1.0 / torch.arange(1, TASK_WORDS + 1, dtype=torch.float)
    lengths = torch.randint(3, 9, (size,), generator=generator)
    input_ids = torch.full((size, 8), PAD)
    labels = torch.full((size, 9), -100)
    for row, length in enumerate(lengths.tolist()):
        words = 3 + torch.multinomial(frequencies, length, replacement=True, generator=generator)
        input_ids[row, :length] = words + JOINT_VOCAB // 2
        labels[row, :length] = words
        labels[row, length] = EOS
    return input_ids, (input_ids != PAD).long(), labels


@pytest.mark.slow
@pytest.mark.parametrize(
    ("attention_type", "input_feeding"), [("bahdanau", True), ("luong_general", False)], ids=["bahdanau", "luong"]
)
def test_untied_output_layer_learns_with_a_joint_vocabulary(attention_type, input_feeding):
    """Untied, with the output layer restricted to target tokens (what the training path sets), the task is learned
    in 300 Adam steps. With every id of the joint vocabulary scored, the same training reached 0.36-0.37 token
    accuracy (0.21, the unigram level, with a Xavier-initialised output layer): never-target rows get a full-size
    Adam step each, every step, and drown the token-specific signal (the stall of issue 12)."""
    torch.manual_seed(0)
    config = tiny_config(
        vocab_size=JOINT_VOCAB,
        embedding_size=64,
        hidden_size=64,
        encoder_layers=1,
        decoder_layers=1,
        attention_type=attention_type,
        input_feeding=input_feeding,
        tie_word_embeddings=False,
        target_token_ids=list(range(3 + TASK_WORDS)),
    )
    model = RnnSeq2SeqForConditionalGeneration(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(300):
        input_ids, attention_mask, labels = joint_vocabulary_copy_batch(32, generator)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    input_ids, attention_mask, labels = joint_vocabulary_copy_batch(256, torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
    scored = labels != -100
    accuracy = (logits.argmax(dim=-1) == labels)[scored].float().mean().item()
    assert accuracy >= 0.95, f"token accuracy {accuracy:.3f}"


def test_output_layer_scores_target_tokens_only():
    model = tiny_model(target_token_ids=[EOS, 5, 7, 9, 11], tie_word_embeddings=False)
    input_ids, attention_mask = padded_batch([5, 3])
    labels = torch.tensor([[5, 7, EOS], [9, EOS, -100]])
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    allowed = torch.tensor([EOS, 5, 7, 9, 11])
    others = torch.ones(VOCAB, dtype=torch.bool).index_fill_(0, allowed, False)
    assert output.logits.shape == (2, 3, VOCAB)
    assert (output.logits[..., others] == torch.finfo(output.logits.dtype).min).all()
    # The loss is the cross-entropy of a softmax over the five allowed tokens.
    restricted = output.logits[..., allowed]
    positions = labels.clamp(min=0).unsqueeze(-1) == allowed
    expected = torch.nn.functional.cross_entropy(
        restricted[labels != -100], positions[labels != -100].float().argmax(dim=-1)
    )
    torch.testing.assert_close(output.loss, expected)
    generated = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=6)
    assert torch.isin(generated[:, 1:], torch.cat([allowed, torch.tensor([PAD])])).all()


def test_generation_after_training_steps_uses_the_current_output_layer():
    """Generation shares one copy of the target rows' weights within a search, never across training steps (a fused
    AdamW step changes weights without bumping their version counters)."""
    model = tiny_model(target_token_ids=[EOS, *range(5, 20)], tie_word_embeddings=False, seed=4)
    input_ids, attention_mask = padded_batch([5, 4, 3])
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.5, fused=True)
    generated = []
    for _ in range(3):
        generated.append(model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=2))
        assert torch.equal(
            generated[-1],
            GenerationMixin.generate(model, input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=2),
        )
        model.train()
        labels = torch.tensor([[5, 6, EOS], [7, EOS, -100], [8, 9, EOS]])
        model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.eval()
    assert model.decoder.decoding_output_weight is None
    assert not torch.equal(generated[0], generated[-1])


def test_target_token_ids_validation():
    with pytest.raises(ValueError, match="eos_token_id"):
        tiny_config(target_token_ids=[5, 6])
    with pytest.raises(ValueError, match="target_token_ids"):
        tiny_config(target_token_ids=[EOS, VOCAB])
    assert tiny_config(target_token_ids=[7, EOS, 7, 5]).target_token_ids == [EOS, 5, 7]


@pytest.mark.parametrize("tie", [False, True])
def test_resize_token_embeddings_of_a_joint_vocabulary_round_trips(tmp_path, tie):
    """Before: `target_vocab_size` stayed at the old size and `from_pretrained` of the saved model failed."""
    model = tiny_model(tie_word_embeddings=tie, target_token_ids=list(range(VOCAB - 4)))
    input_ids, attention_mask = padded_batch([6, 3], vocab=VOCAB - 4)
    before = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=6)
    model.resize_token_embeddings(VOCAB + 5)
    assert (model.config.vocab_size, model.config.target_vocab_size) == (VOCAB + 5, VOCAB + 5)
    assert model.get_output_embeddings().weight.shape[0] == VOCAB + 5
    assert model.config.target_token_ids == list(range(VOCAB - 4))
    assert model(input_ids, attention_mask=attention_mask, labels=input_ids).logits.shape[-1] == VOCAB + 5
    model.save_pretrained(tmp_path)
    loaded = RnnSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.generate(input_ids, attention_mask=attention_mask, max_new_tokens=6), before)

    loaded.resize_token_embeddings(VOCAB - 6)  # shrinking drops the target ids beyond the new end
    assert loaded.config.target_token_ids == list(range(VOCAB - 6)) and loaded.config.target_vocab_size == VOCAB - 6
    loaded.save_pretrained(tmp_path / "smaller")
    RnnSeq2SeqForConditionalGeneration.from_pretrained(tmp_path / "smaller")


def test_resize_token_embeddings_of_separate_vocabularies_round_trips(tmp_path):
    model = tiny_model(share_embeddings=False, target_vocab_size=VOCAB + 2, tie_word_embeddings=False)
    input_ids, attention_mask = padded_batch([5, 4])
    before = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=6)
    model.resize_token_embeddings(VOCAB + 3)  # the source side only
    assert model.get_input_embeddings().num_embeddings == VOCAB + 3
    assert model.get_target_embeddings().num_embeddings == VOCAB + 2 == model.config.target_vocab_size
    model.resize_target_token_embeddings(VOCAB + 7)
    assert model.get_output_embeddings().weight.shape[0] == VOCAB + 7 == model.config.target_vocab_size
    model.save_pretrained(tmp_path)
    loaded = RnnSeq2SeqForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.generate(input_ids, attention_mask=attention_mask, max_new_tokens=6), before)
    with pytest.raises(ValueError, match="share one vocabulary"):
        tiny_model().resize_target_token_embeddings(VOCAB + 1)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    input_ids, attention_mask = padded_batch([6, 4])
    labels = random_labels(2, 5)
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(encoder_bidirectional=True).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        loss = model(input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        grads.append((loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for name, grad in grads[0][1].items():
        torch.testing.assert_close(grads[1][1][name], grad, msg=name)

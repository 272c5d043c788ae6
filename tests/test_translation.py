"""Batch translation helpers in hf_rnn.translation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_rnn.commands import main as cli_main
from hf_rnn.tokenization import decode_token_ids
from hf_rnn.translation import batch_generation_limit, generate_translations_with_lengths, generated_lengths

START, PAD, EOS = 2, 0, 3
SAMPLE_TEST = Path(__file__).resolve().parent.parent / "hf_rnn" / "sample_data" / "multi30k" / "test.parquet"


def test_generated_lengths_count_up_to_the_first_end_token():
    token_ids = np.array(
        [
            [START, 7, 8, EOS, PAD, PAD],  # ended after 3 tokens
            [START, EOS, PAD, PAD, PAD, PAD],  # ended at once
            [START, 7, 7, 7, 7, 7],  # ran to the limit
            [START, 9, EOS, 9, EOS, PAD],  # only the first </s> counts
        ]
    )
    assert generated_lengths(token_ids, eos_token_id=EOS, pad_token_id=PAD).tolist() == [3, 1, 5, 2]


def test_the_batch_limit_is_the_smaller_of_the_fixed_and_the_source_relative_one():
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])  # the longest source has 6 tokens
    assert batch_generation_limit(100, None, mask) == 100
    assert batch_generation_limit(100, 1.5, mask) == 9  # int(1.5 * 6), as Joey NMT's default limit
    assert batch_generation_limit(5, 1.5, mask) == 5
    assert batch_generation_limit(None, 2.0, mask) == 12
    assert batch_generation_limit(100, 0.01, mask) == 1


@pytest.mark.integration
def test_max_length_factor_limits_each_batch_by_its_longest_source(seq2seq_run):
    tokenizer = AutoTokenizer.from_pretrained(seq2seq_run)
    model = AutoModelForSeq2SeqLM.from_pretrained(seq2seq_run).eval()
    sources = [pair["de"] for pair in pd.read_parquet(SAMPLE_TEST)["translation"][:24]]
    plain, plain_lengths, plain_limits = generate_translations_with_lengths(
        model, tokenizer, sources, batch_size=8, num_beams=1, max_new_tokens=60, progress=False
    )
    assert set(plain_limits) == {60}
    factor = 0.5
    limited, lengths, limits = generate_translations_with_lengths(
        model, tokenizer, sources, 8, 1, 60, progress=False, max_length_factor=factor
    )
    source_lengths = [len(ids) for ids in tokenizer(sources)["input_ids"]]
    assert sum(lengths) < sum(plain_lengths)  # the limit binds on this tiny model
    for length, limit, plain_length in zip(lengths, limits, plain_lengths):
        assert 1 <= length <= limit <= 60 and length == min(plain_length, limit)
    # Each batch (8 sources, sorted by length) runs under int(factor x its longest source).
    batch_longest = {limit: max(n for n, seen in zip(source_lengths, limits) if seen == limit) for limit in limits}
    assert all(limit == int(factor * longest) for limit, longest in batch_longest.items())
    # A translation cut by the limit is the start of the unlimited one (greedy search is left to right).
    assert all(full.startswith(cut.rstrip(" .")) or not cut for cut, full in zip(limited, plain))
    # A factor too large to bind changes nothing.
    assert generate_translations_with_lengths(model, tokenizer, sources, 8, 1, 60, False, 100.0)[0] == plain


@pytest.mark.integration
@pytest.mark.parametrize("num_beams", [1, 3])
def test_translation_pools_the_batches_and_equals_generate_per_batch(seq2seq_run, monkeypatch, num_beams):
    tokenizer = AutoTokenizer.from_pretrained(seq2seq_run)
    model = AutoModelForSeq2SeqLM.from_pretrained(seq2seq_run).eval()
    pool_calls = []
    pooled_search = model.generate_pooled
    monkeypatch.setattr(model, "generate_pooled", lambda *args: pool_calls.append(args[1:]) or pooled_search(*args))
    sources = [pair["de"] for pair in pd.read_parquet(SAMPLE_TEST)["translation"][:24]]
    decoded_rows = []
    hook = model.decoder.rnn.register_forward_pre_hook(lambda module, args: decoded_rows.append(args[0].shape[0]))
    try:
        pooled, lengths, limits = generate_translations_with_lengths(model, tokenizer, sources, 8, num_beams, 60, False)
        pooled_steps, decoded_rows[:] = len(decoded_rows), []
        order = np.argsort([len(text) for text in sources], kind="stable")
        for start in range(0, len(sources), 8):  # the batches translation forms, each through generate
            index = order[start : start + 8]
            encoded = tokenizer([sources[i] for i in index], padding=True, truncation=True, return_tensors="pt")
            generated = model.generate(**encoded, num_beams=num_beams, max_new_tokens=60).numpy()
            texts = decode_token_ids(tokenizer, generated)
            ended = generated_lengths(generated, model.config.eos_token_id, model.config.pad_token_id)
            for i, text, length in zip(index, texts, ended.tolist()):
                assert (pooled[i], lengths[i], limits[i]) == (text, length, 60)
    finally:
        hook.remove()
    assert pool_calls == [(8, num_beams)]  # one pool of 8 sentences for the 3 batches
    assert pooled_steps <= len(decoded_rows)  # never more decoder steps than batch by batch


@pytest.mark.integration
def test_a_bad_max_length_factor_is_a_one_line_error(seq2seq_run, capsys):
    assert cli_main(["translate", str(seq2seq_run), "Ein Hund.", "--max-length-factor", "0"]) != 0
    assert "max_length_factor must be a positive number, got 0.0" in capsys.readouterr().err

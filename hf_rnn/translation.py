"""Translating with a saved encoder-decoder: batched generation, sacreBLEU scoring, attention heatmaps."""

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM

from .data import DataConfig
from .errors import HfRnnError
from .loading import load_model
from .metrics import translation_metrics
from .tokenization import clean_text, count_truncated, decode_token_ids, truncated_flags

logger = logging.getLogger(__name__)


def generate_translations(
    model,
    tokenizer,
    sources: list[str],
    batch_size: int = 64,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    progress: bool = True,
    max_length_factor: float | None = None,
) -> list[str]:
    """Translate `sources` in length-sorted batches (less padding), returning outputs in the input order; see
    `generate_translations_with_lengths`."""
    return generate_translations_with_lengths(
        model, tokenizer, sources, batch_size, num_beams, max_new_tokens, progress, max_length_factor
    )[0]


def generated_lengths(token_ids: np.ndarray, eos_token_id: int, pad_token_id: int) -> np.ndarray:
    """Per row of generated `(rows, 1 + steps)` ids: the tokens generated after the start token, up to and
    including the first `</s>` (all non-padding ones for a row that never ended)."""
    generated = token_ids[:, 1:]
    ended = generated == eos_token_id
    return np.where(ended.any(axis=1), ended.argmax(axis=1) + 1, (generated != pad_token_id).sum(axis=1))


def generate_translations_with_lengths(
    model,
    tokenizer,
    sources: list[str],
    batch_size: int = 64,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    progress: bool = True,
    max_length_factor: float | None = None,
) -> tuple[list[str], list[int], list[int]]:
    """Translate `sources` in length-sorted batches (less padding), returning the outputs in the input order, how
    many tokens each one generated (`</s>` included; 0 for an empty source) and the generation limit it ran under.

    `num_beams` / `max_new_tokens` left at None take the model's `generation_config` (what the recipe saved, and
    what the pipeline uses). `max_length_factor` also limits each batch to that many tokens per token of its
    longest source (see `batch_generation_limit`). An hf_rnn encoder-decoder searches the batches in one pool of
    at most `batch_size` sentences (`generate_pooled`): a sentence that is done makes room for one of the next batch,
    so one hypothesis that runs to its limit no longer keeps the decoder stepping for a few sentences. Each sentence
    keeps its batch's limit and gets what `generate` would give it.

    Sources are truncated to the tokenizer's `model_max_length` (a warning gives the count); None and
    undecodable characters are cleaned by `clean_text`; empty or whitespace-only sources translate to ""
    (as in the `rnn-translation` pipeline) instead of whatever the decoder makes of a lone `</s>`.
    """
    sources = [clean_text(text) for text in sources]
    order = np.argsort([len(text) for text in sources], kind="stable")
    order = np.array([i for i in order if sources[i].strip()], dtype=np.int64)
    outputs: list[str] = [""] * len(sources)
    if max_length_factor is not None and not max_length_factor > 0:
        raise HfRnnError(f"max_length_factor must be a positive number, got {max_length_factor}.")
    if max_new_tokens is None:
        max_new_tokens = model.generation_config.max_new_tokens
    lengths, limits = [0] * len(sources), [0] * len(sources)
    batch_rows: list[np.ndarray] = []  # the sources of each batch, in batch order
    batch_limits: list[int | None] = []
    truncated = 0

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, int | None]]:
        nonlocal truncated
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc="Translating", unit="batch", disable=not progress):
            index = order[start : start + batch_size]
            encoded = tokenizer([sources[i] for i in index], truncation=True, padding=True, return_tensors="pt")
            truncated += sum(truncated_flags(encoded))
            limit = batch_generation_limit(max_new_tokens, max_length_factor, encoded["attention_mask"])
            batch_rows.append(index)
            batch_limits.append(limit)
            yield encoded["input_ids"], encoded["attention_mask"], limit

    with torch.inference_mode():
        # hf_rnn encoder-decoders search all batches in one pool: sentences of the next batches take the places
        # of sentences that are done.
        pooled = None
        if hasattr(model, "generate_pooled") and max_new_tokens is not None:
            pooled = model.generate_pooled(batches(), batch_size, num_beams)
        if pooled is not None:
            for batch, row, tokens in pooled:
                i = batch_rows[batch][row]
                outputs[i] = decode_token_ids(tokenizer, np.array([tokens], dtype=np.int64))[0]
                lengths[i], limits[i] = len(tokens), batch_limits[batch]
        else:
            for input_ids, attention_mask, limit in batches():
                generated = model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **generation_settings(num_beams, limit)
                )
                token_ids = generated.numpy()
                batch_lengths = generated_lengths(token_ids, model.config.eos_token_id, model.config.pad_token_id)
                texts = decode_token_ids(tokenizer, token_ids)
                for i, text, length in zip(batch_rows[-1], texts, batch_lengths.tolist()):
                    outputs[i], lengths[i], limits[i] = text, length, limit
    if truncated:
        logger.warning(
            "%d of %d sources were longer than model_max_length=%d tokens and were truncated.",
            truncated,
            len(sources),
            tokenizer.model_max_length,
        )
    return outputs, lengths, limits


def batch_generation_limit(
    max_new_tokens: int | None, max_length_factor: float | None, attention_mask: torch.Tensor
) -> int | None:
    """How many tokens a batch may generate: `max_new_tokens`, and with `max_length_factor` at most
    `int(max_length_factor * longest source)` (at least 1), the longest source counted in tokens with `</s>`.
    This is Joey NMT's limit when its `max_output_length` is unset (factor 1.5) and fairseq's `--max-len-a`: it
    stops a decoder that repeats itself long before a fixed limit does."""
    if max_length_factor is None:
        return max_new_tokens
    by_source = max(1, int(max_length_factor * int(attention_mask.sum(dim=1).max())))
    return by_source if max_new_tokens is None else min(max_new_tokens, by_source)


def generation_settings(num_beams: int | None, max_new_tokens: int | None) -> dict[str, int]:
    """The generation keywords given (not None); the others come from the model's `generation_config`."""
    settings = {"num_beams": num_beams, "max_new_tokens": max_new_tokens}
    return {key: value for key, value in settings.items() if value is not None}


def evaluate_translator(
    model_dir: str,
    tokenizer,
    split,
    data: DataConfig,
    batch_size: int,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    max_length_factor: float | None = None,
) -> dict[str, Any]:
    """sacreBLEU and chrF (with signatures) of beam-search translations of `split`, and the decoding speed.

    `generation_seconds` times tokenisation, generation and detokenisation of the whole split with the model
    already loaded (what NMT toolkits such as Joey NMT report as decoding time). `generated_tokens` counts the
    tokens of the returned hypotheses (`</s>` included), `hypotheses_at_length_limit` those that reached their
    batch's limit (`max_new_tokens`, or less with `max_length_factor`).
    """
    model = load_model(model_dir, AutoModelForSeq2SeqLM)
    pairs = split["translation"]
    sources = [pair[data.source_lang] for pair in pairs]
    references = [pair[data.target_lang] for pair in pairs]
    num_beams = num_beams if num_beams is not None else model.generation_config.num_beams
    max_new_tokens = max_new_tokens if max_new_tokens is not None else model.generation_config.max_new_tokens
    started = time.perf_counter()
    hypotheses, lengths, limits = generate_translations_with_lengths(
        model, tokenizer, sources, batch_size, num_beams, max_new_tokens, max_length_factor=max_length_factor
    )
    generation_seconds = max(time.perf_counter() - started, 1e-9)
    return {
        "direction": f"{data.source_lang}-{data.target_lang}",
        "num_beams": num_beams,
        "max_new_tokens": max_new_tokens,
        "max_length_factor": max_length_factor,
        **translation_metrics(hypotheses, references),
        "generation_seconds": round(generation_seconds, 3),
        "generation_sentences_per_second": round(len(sources) / generation_seconds, 2),
        "generated_tokens": sum(lengths),
        "generation_tokens_per_second": round(sum(lengths) / generation_seconds, 1),
        "hypotheses_at_length_limit": sum(bool(limit) and limit <= length for length, limit in zip(lengths, limits)),
        "truncated_inputs": count_truncated(tokenizer, sources),
        "samples": [
            {"source": s, "reference": r, "hypothesis": h} for s, r, h in list(zip(sources, references, hypotheses))[:5]
        ],
    }


def translate_with_attention(
    model, tokenizer, text: str, num_beams: int | None = None, max_new_tokens: int | None = None
) -> dict:
    """Translate one text and return the attention weights `(tgt_len, src_len)` with both token lists.

    The weights come from a teacher-forced pass over the generated output, so each row is the attention
    the model paid when producing that target token.
    """
    encoded = tokenizer([text], truncation=True, return_tensors="pt")
    with torch.inference_mode():
        generated = model.generate(**encoded, **generation_settings(num_beams, max_new_tokens))
        target_ids = generated[0]
        target_ids = target_ids[target_ids != model.config.pad_token_id]
        eos = (target_ids == model.config.eos_token_id).nonzero()
        if len(eos):
            target_ids = target_ids[: int(eos[0]) + 1]
        decoder_input_ids = target_ids[:-1].unsqueeze(0)
        output = model(**encoded, decoder_input_ids=decoder_input_ids, output_attentions=True, use_cache=False)
    weights = output.cross_attentions[0][0, 0] if output.cross_attentions else None
    return {
        "translation": tokenizer.decode(target_ids.tolist(), skip_special_tokens=True).strip(),
        "source_tokens": tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()),
        "target_tokens": tokenizer.convert_ids_to_tokens(target_ids[1:].tolist()),
        "weights": weights,
    }

"""Pooled search against batch-by-batch search: the same saved translation model and sources, decoded by
`hf_rnn.translation.generate_translations_with_lengths` (all batches through one pool of `--batch-size` sentences)
and by `model.generate` on each of the same length-sorted batches in turn (each batch runs until its last
sentence is done). Greedy and beam 5, one after the other on the same threads, each timed after an untimed
warm-up on the first batches; reports sentences/s, the ratio, and how many outputs differ.

    python benchmarks/pooled_search/run.py runs/wmt-newstest-ood ../shared/data/wmt-newstest/newstest2014.parquet \
        --threads 1 --out docs/pooled_search/newstest2014.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSeq2SeqLM

from hf_rnn.evaluation import resolve_data_config
from hf_rnn.loading import load_tokenizer
from hf_rnn.tokenization import decode_token_ids
from hf_rnn.translation import batch_generation_limit, generate_translations_with_lengths


def batch_by_batch(model, tokenizer, sources, batch_size, num_beams, max_new_tokens, factor) -> list[str]:
    """What translation did before pooling: `generate` on each length-sorted batch."""
    order = np.argsort([len(text) for text in sources], kind="stable")
    outputs = [""] * len(sources)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            encoded = tokenizer([sources[i] for i in index], truncation=True, padding=True, return_tensors="pt")
            limit = batch_generation_limit(max_new_tokens, factor, encoded["attention_mask"])
            generated = model.generate(**encoded, num_beams=num_beams, max_new_tokens=limit)
            for i, text in zip(index, decode_token_ids(tokenizer, generated.numpy())):
                outputs[i] = text
    return outputs


def compare(model, tokenizer, sources: list[str], num_beams: int, args: argparse.Namespace) -> dict:
    """Both ways, each after an untimed warm-up on the first two batches; sentences/s and differing outputs."""
    settings = (args.batch_size, num_beams, args.max_new_tokens)

    def pooled(texts: list[str]) -> list[str]:
        return generate_translations_with_lengths(
            model, tokenizer, texts, *settings, progress=False, max_length_factor=args.max_length_factor
        )[0]

    def separate(texts: list[str]) -> list[str]:
        return batch_by_batch(model, tokenizer, texts, *settings, args.max_length_factor)

    warm_up = sources[: 2 * args.batch_size]
    pooled(warm_up), separate(warm_up)
    started = time.perf_counter()
    separate_outputs = separate(sources)
    separate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    pooled_outputs = pooled(sources)
    pooled_seconds = time.perf_counter() - started
    return {
        "batch_by_batch_sentences_per_second": round(len(sources) / separate_seconds, 1),
        "pooled_sentences_per_second": round(len(sources) / pooled_seconds, 1),
        "pooled_over_batch_by_batch": round(separate_seconds / pooled_seconds, 2),
        "outputs_that_differ": sum(a != b for a, b in zip(pooled_outputs, separate_outputs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("data_file", help="parquet with a `translation` column")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--max-length-factor", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-sentences", type=int, default=None, help="the first N sentences only")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model_dir).eval()
    tokenizer = load_tokenizer(args.model_dir)
    data = resolve_data_config(args.model_dir, None)
    pairs = pd.read_parquet(args.data_file)["translation"][: args.max_sentences]
    sources = [pair[data.source_lang] for pair in pairs]
    report = {
        "model": args.model_dir,
        "data_file": args.data_file,
        "sentences": len(sources),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "max_length_factor": args.max_length_factor,
        "threads": torch.get_num_threads(),
        "searches": {},
    }
    for num_beams in (1, 5):
        name = f"beam {num_beams}" if num_beams > 1 else "greedy"
        report["searches"][name] = compare(model, tokenizer, sources, num_beams, args)
        print(name, json.dumps(report["searches"][name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

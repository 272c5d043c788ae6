"""Deployment speed at 1 thread: PyTorch fp32, ONNX Runtime fp32, ONNX Runtime int8 and PyTorch int8 (dynamic
quantisation in memory), for the IMDB classifier (examples/s) and the Multi30k translator (sentences/s and generated
tokens/s, greedy and beam 5, max_new_tokens=100), with model file sizes and ratios to PyTorch fp32.

Inputs are tokenised once beforehand (the same for every configuration) and the model calls are timed: for the
classifier, 2,000 IMDB test reviews (a seeded sample) in length-sorted batches of 64; for the translator, the 1,000
Multi30k test sentences in the batches `generate_translations` forms. Each configuration runs once untimed on one
batch, then `--repeats` timed passes, the configurations taking turns so that a change in the machine's load falls
on all of them; the median pass counts. `torch.set_num_threads(1)` and onnxruntime `intra_op_num_threads=1`.

    python benchmarks/deployment/run.py --out docs/deployment/deployment.json
"""

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import torch
from harness import (
    CLASSIFIER_RUN,
    MAX_NEW_TOKENS,
    TRANSLATOR_RUN,
    exported,
    imdb_test,
    length_batches,
    load_classifier,
    load_translator,
    machine,
    multi30k_test,
    onnx_generate,
    onnx_model,
    torch_classifier_logits,
    torch_generate,
)

from hf_rnn.export.quantize import quantize_torch
from hf_rnn.translation import generated_lengths

CONFIGS = ("pytorch_fp32", "onnx_fp32", "onnx_int8", "pytorch_int8")


def graph_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.onnx"))


def state_dict_bytes(model) -> int:
    """Bytes of a model's state dict serialised by torch.save (the quantised model has no safetensors form)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def timed_passes(runners: dict, batches: list, repeats: int, count) -> dict[str, list[tuple[float, int]]]:
    """`(seconds, counted units)` of each pass over `batches` per configuration, configurations taking turns."""
    for run in runners.values():
        run(batches[len(batches) // 2][1])  # warm-up, untimed
    passes = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            units, started = 0, time.perf_counter()
            for _, batch in batches:
                units += count(run(batch))
            passes[name].append((time.perf_counter() - started, units))
    return passes


def summarise(passes: list[tuple[float, int]], unit: str, items: int) -> dict:
    seconds = statistics.median(seconds for seconds, _ in passes)
    return {
        f"{unit}_per_second": round(items / seconds, 1),
        "seconds_median": round(seconds, 2),
        "seconds_all_passes": [round(seconds, 2) for seconds, _ in passes],
    }


def classifier_speed(reviews: int, repeats: int) -> dict:
    model, tokenizer = load_classifier()
    fp32, int8 = onnx_model(CLASSIFIER_RUN, "imdb"), onnx_model(CLASSIFIER_RUN, "imdb", int8=True)
    quantized = quantize_torch(model)
    runners = {
        "pytorch_fp32": lambda batch: torch_classifier_logits(model, batch),
        "onnx_fp32": lambda batch: fp32.logits(batch["input_ids"], batch["attention_mask"]),
        "onnx_int8": lambda batch: int8.logits(batch["input_ids"], batch["attention_mask"]),
        "pytorch_int8": lambda batch: torch_classifier_logits(quantized, batch),
    }
    texts, _ = imdb_test(sample=reviews)
    started = time.perf_counter()
    batches = list(length_batches(tokenizer, texts))
    tokenize_seconds = time.perf_counter() - started
    tokens = int(sum(batch["attention_mask"].sum() for _, batch in batches))
    passes = timed_passes(runners, batches, repeats, count=len)
    sizes = {
        "pytorch_fp32": (CLASSIFIER_RUN / "model.safetensors").stat().st_size,
        "onnx_fp32": graph_bytes(exported(CLASSIFIER_RUN, "imdb")),
        "onnx_int8": graph_bytes(exported(CLASSIFIER_RUN, "imdb", int8=True)),
        "pytorch_int8": state_dict_bytes(quantized),
    }
    report = {
        "model": "runs/imdb-bilstm-s42 (BiLSTM 192, 30k WordPiece, mean+max pooling)",
        "reviews": len(texts),
        "real_tokens": tokens,
        "batch_size": 64,
        "tokenization_seconds": round(tokenize_seconds, 2),
    }
    for name in CONFIGS:
        report[name] = {**summarise(passes[name], "examples", len(texts)), "model_bytes": sizes[name]}
    add_ratios(report, "examples_per_second")
    return report


def translator_speed(repeats: int, beam_sizes: list[int]) -> dict:
    model, tokenizer = load_translator()
    fp32, int8 = onnx_model(TRANSLATOR_RUN, "m30k"), onnx_model(TRANSLATOR_RUN, "m30k", int8=True)
    quantized = quantize_torch(model)
    sources, _ = multi30k_test()
    batches = list(length_batches(tokenizer, sources))
    eos, pad = model.config.eos_token_id, model.config.pad_token_id
    report = {
        "model": "runs/joey_side_by_side/hf_model (BiLSTM 256 encoder, LSTM decoder, luong_concat, 8k BPE)",
        "sentences": len(sources),
        "max_new_tokens": MAX_NEW_TOKENS,
        "batch_size": 64,
    }
    sizes = {
        "pytorch_fp32": (TRANSLATOR_RUN / "model.safetensors").stat().st_size,
        "onnx_fp32": graph_bytes(exported(TRANSLATOR_RUN, "m30k")),
        "onnx_int8": graph_bytes(exported(TRANSLATOR_RUN, "m30k", int8=True)),
        "pytorch_int8": state_dict_bytes(quantized),
    }
    for beams in beam_sizes:
        runners = {
            "pytorch_fp32": lambda batch, beams=beams: torch_generate(model, batch, beams),
            "onnx_fp32": lambda batch, beams=beams: onnx_generate(fp32, batch, beams),
            "onnx_int8": lambda batch, beams=beams: onnx_generate(int8, batch, beams),
            "pytorch_int8": lambda batch, beams=beams: torch_generate(quantized, batch, beams),
        }
        passes = timed_passes(runners, batches, repeats, count=lambda ids: int(generated_lengths(ids, eos, pad).sum()))
        entry = {}
        for name in CONFIGS:
            seconds = statistics.median(seconds for seconds, _ in passes[name])
            tokens = passes[name][0][1]
            entry[name] = {
                **summarise(passes[name], "sentences", len(sources)),
                "generated_tokens": tokens,
                "tokens_per_second": round(tokens / seconds, 1),
                "model_bytes": sizes[name],
            }
        add_ratios(entry, "sentences_per_second")
        report["greedy" if beams == 1 else f"beam_{beams}"] = entry
    return report


def add_ratios(entry: dict, rate: str) -> None:
    """Speed and size of each configuration relative to PyTorch fp32."""
    base = entry["pytorch_fp32"]
    for name in CONFIGS:
        entry[name]["speed_vs_pytorch_fp32"] = round(entry[name][rate] / base[rate], 2)
        entry[name]["size_vs_pytorch_fp32"] = round(entry[name]["model_bytes"] / base["model_bytes"], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beams", default="1,5", help="translation beam sizes (default 1,5)")
    parser.add_argument("--out", default="docs/deployment/deployment.json")
    parser.add_argument(
        "--note",
        default="another engineer's training job ran on the same 2-core machine throughout (load averages above): "
        "absolute rates are indicative, the ratios between configurations (timed in turns) are what the numbers show",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {"machine": machine(), "threads": 1, "note": args.note}
    report["classifier"] = classifier_speed(args.reviews, args.repeats)
    report["translator"] = translator_speed(args.repeats, [int(beams) for beams in args.beams.split(",")])
    report["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

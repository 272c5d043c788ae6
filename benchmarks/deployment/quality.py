"""Quality of fp32 and int8 models: IMDB test accuracy (all 25,000 reviews by default) and Multi30k test BLEU
(sacreBLEU, de->en, greedy and beam 5, max_new_tokens=100) for PyTorch fp32, ONNX Runtime fp32, ONNX Runtime int8
(dynamic quantisation, QInt8 weights; one scale per tensor, and per output channel) and PyTorch int8 (`torch.ao.quantization.quantize_dynamic` in memory), at 1
thread, on the batches hf_rnn's evaluation forms.

    python benchmarks/deployment/quality.py --out docs/deployment/quality.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from harness import (
    CLASSIFIER_RUN,
    EXPORTS,
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

from hf_rnn.export.quantize import quantize_onnx, quantize_torch
from hf_rnn.export.runtime import load_onnx_model
from hf_rnn.metrics import classification_metrics, translation_metrics
from hf_rnn.tokenization import decode_token_ids

CONFIGS = ("pytorch_fp32", "onnx_fp32", "onnx_int8", "onnx_int8_per_channel", "pytorch_int8")


def per_channel_model(run: Path, name: str):
    """The int8 export with one scale per output channel (`hf-rnn quantize --per-channel`)."""
    folder = EXPORTS / f"{name}-int8-per-channel"
    if not (folder / "onnx_config.json").is_file():
        quantize_onnx(exported(run, name), folder, per_channel=True)
    return load_onnx_model(folder, threads=1)


def classifier_quality(reviews: int | None) -> dict:
    model, tokenizer = load_classifier()
    runners = {
        "pytorch_fp32": lambda batch: torch_classifier_logits(model, batch),
        "onnx_fp32": onnx_model(CLASSIFIER_RUN, "imdb").logits,
        "onnx_int8": onnx_model(CLASSIFIER_RUN, "imdb", int8=True).logits,
        "onnx_int8_per_channel": per_channel_model(CLASSIFIER_RUN, "imdb").logits,
    }
    quantized = quantize_torch(model)
    runners["pytorch_int8"] = lambda batch: torch_classifier_logits(quantized, batch)
    texts, labels = imdb_test(sample=reviews)
    batches = list(length_batches(tokenizer, texts))
    report = {"reviews": len(texts)}
    for name in CONFIGS:
        run = runners[name]
        predictions = np.empty(len(texts), dtype=np.int64)
        started = time.perf_counter()
        for index, batch in batches:
            if name.startswith("onnx"):
                predictions[index] = run(batch["input_ids"], batch["attention_mask"]).argmax(-1)
            else:
                predictions[index] = run(batch).argmax(-1)
        seconds = time.perf_counter() - started
        metrics = classification_metrics(predictions, labels)
        report[name] = {**{key: round(float(value), 5) for key, value in metrics.items()}, "seconds": round(seconds, 1)}
        print(name, report[name], flush=True)
    for name in CONFIGS[1:]:
        report[name]["accuracy_change_points"] = round(
            100 * (report[name]["accuracy"] - report["pytorch_fp32"]["accuracy"]), 3
        )
    return report


def translator_quality(beam_sizes: list[int]) -> dict:
    model, tokenizer = load_translator()
    quantized = quantize_torch(model)
    fp32, int8 = onnx_model(TRANSLATOR_RUN, "m30k"), onnx_model(TRANSLATOR_RUN, "m30k", int8=True)
    int8_per_channel = per_channel_model(TRANSLATOR_RUN, "m30k")
    runners = {
        "pytorch_fp32": lambda batch, beams: torch_generate(model, batch, beams),
        "onnx_fp32": lambda batch, beams: onnx_generate(fp32, batch, beams),
        "onnx_int8": lambda batch, beams: onnx_generate(int8, batch, beams),
        "onnx_int8_per_channel": lambda batch, beams: onnx_generate(int8_per_channel, batch, beams),
        "pytorch_int8": lambda batch, beams: torch_generate(quantized, batch, beams),
    }
    sources, references = multi30k_test()
    batches = list(length_batches(tokenizer, sources))
    report = {"sentences": len(sources), "direction": "de-en", "max_new_tokens": MAX_NEW_TOKENS}
    for beams in beam_sizes:
        entry = {}
        for name in CONFIGS:
            hypotheses = [""] * len(sources)
            started = time.perf_counter()
            for index, batch in batches:
                for i, text in zip(index, decode_token_ids(tokenizer, runners[name](batch, beams))):
                    hypotheses[i] = text
            seconds = time.perf_counter() - started
            metrics = translation_metrics(hypotheses, references)
            entry[name] = {"bleu": metrics["bleu"], "chrf": metrics["chrf"], "seconds": round(seconds, 1)}
            print(f"beam {beams}", name, entry[name], flush=True)
        for name in CONFIGS[1:]:
            entry[name]["bleu_change_points"] = round(entry[name]["bleu"] - entry["pytorch_fp32"]["bleu"], 2)
        entry["bleu_signature"] = metrics.get("bleu_signature")
        report[f"num_beams_{beams}"] = entry
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, help="score a seeded sample of N reviews (default: all 25,000)")
    parser.add_argument("--beams", default="1,5", help="beam sizes for BLEU (default 1,5)")
    parser.add_argument("--out", default="docs/deployment/quality.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {
        "machine": machine(),
        "threads": 1,
        "note": "another engineer's training job ran on the same 2-core machine; the seconds are indicative",
        "translator": translator_quality([int(beams) for beams in args.beams.split(",")]),
        "classifier": classifier_quality(args.reviews),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Parity of the ONNX exports with PyTorch, on the same batches, at 1 thread.

1. Classifier (runs/imdb-bilstm-s42): logits of 1,000 IMDB test reviews (a seeded sample, both labels), in
   length-sorted batches of 64, from PyTorch and from the fp32 graph: largest and mean absolute difference, and
   whether the predicted labels agree; the same against the int8 graph.
2. Translator (runs/joey_side_by_side/hf_model): the 1,000 Multi30k test sentences de->en in the batches
   `generate_translations` forms, `model.generate(num_beams=1, max_new_tokens=100)` against `OnnxTranslator`'s
   greedy search on the fp32 graphs: sentences with identical ids; the first step's logits; and the same for beam
   search (num_beams=5).

    python benchmarks/deployment/parity.py --out docs/deployment/parity.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from harness import (
    CLASSIFIER_RUN,
    MAX_NEW_TOKENS,
    TRANSLATOR_RUN,
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


def classifier_parity(reviews: int) -> dict:
    model, tokenizer = load_classifier()
    fp32, int8 = onnx_model(CLASSIFIER_RUN, "imdb"), onnx_model(CLASSIFIER_RUN, "imdb", int8=True)
    texts, _ = imdb_test(sample=reviews)
    reference, results = [], {"onnx_fp32": [], "onnx_int8": []}
    for _, batch in length_batches(tokenizer, texts):
        reference.append(torch_classifier_logits(model, batch))
        results["onnx_fp32"].append(fp32.logits(batch["input_ids"], batch["attention_mask"]))
        results["onnx_int8"].append(int8.logits(batch["input_ids"], batch["attention_mask"]))
    reference = np.concatenate(reference)
    report = {"model": str(CLASSIFIER_RUN.relative_to(CLASSIFIER_RUN.parents[1])), "reviews": len(reference)}
    for name, logits in results.items():
        difference = np.abs(np.concatenate(logits) - reference)
        report[name] = {
            "max_abs_logit_diff": float(difference.max()),
            "mean_abs_logit_diff": float(difference.mean()),
            "predictions_agreeing": int((np.concatenate(logits).argmax(-1) == reference.argmax(-1)).sum()),
        }
    report["onnx_fp32"]["within_1e-4"] = report["onnx_fp32"]["max_abs_logit_diff"] <= 1e-4
    return report


def first_step_logits(model, batch: dict) -> np.ndarray:
    with torch.inference_mode():
        ids = torch.from_numpy(batch["input_ids"])
        start = torch.full((ids.shape[0], 1), model.config.decoder_start_token_id)
        logits = model(
            input_ids=ids,
            attention_mask=torch.from_numpy(batch["attention_mask"]),
            decoder_input_ids=start,
            use_cache=False,
        ).logits[:, 0]
        index = model.get_decoder().output_index(logits.device)
        return (logits if index is None else logits[:, index[0]]).numpy()


def translator_parity(beam_sentences: int) -> dict:
    model, tokenizer = load_translator()
    runner = onnx_model(TRANSLATOR_RUN, "m30k")
    sources, _ = multi30k_test()
    report = {
        "model": str(TRANSLATOR_RUN.relative_to(TRANSLATOR_RUN.parents[2])),
        "sentences": len(sources),
        "max_new_tokens": MAX_NEW_TOKENS,
    }
    for num_beams, limit in ((1, len(sources)), (5, beam_sentences)):
        identical, compared, differing, logit_diff, seconds = 0, 0, [], 0.0, {"pytorch": 0.0, "onnx": 0.0}
        for index, batch in length_batches(tokenizer, sources[:limit]):
            started = time.perf_counter()
            expected = torch_generate(model, batch, num_beams)
            seconds["pytorch"] += time.perf_counter() - started
            started = time.perf_counter()
            generated = onnx_generate(runner, batch, num_beams)
            seconds["onnx"] += time.perf_counter() - started
            width = max(expected.shape[1], generated.shape[1])
            pad = model.config.pad_token_id
            expected = np.pad(expected, ((0, 0), (0, width - expected.shape[1])), constant_values=pad)
            generated = np.pad(generated, ((0, 0), (0, width - generated.shape[1])), constant_values=pad)
            same = (expected == generated).all(axis=1)
            identical += int(same.sum())
            compared += len(index)
            differing += [int(i) for i in index[~same]]
            if num_beams == 1:
                reference = first_step_logits(model, batch)
                onnx_logits = runner.first_step_logits(batch["input_ids"], batch["attention_mask"])
                logit_diff = max(logit_diff, float(np.abs(onnx_logits - reference).max()))
        entry = {
            "sentences": compared,
            "identical_ids": identical,
            "differing_sentences": differing,
            "seconds_1_thread": {name: round(value, 2) for name, value in seconds.items()},
        }
        if num_beams == 1:
            entry["first_step_max_abs_logit_diff"] = logit_diff
        report[f"num_beams_{num_beams}"] = entry
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=1000)
    parser.add_argument("--beam-sentences", type=int, default=1000, help="sentences for the beam-5 comparison")
    parser.add_argument("--out", default="docs/deployment/parity.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {
        "machine": machine(),
        "threads": 1,
        "classifier": classifier_parity(args.reviews),
        "translator": translator_parity(args.beam_sentences),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Summarise runs of one recipe with several seeds: per-seed values, mean and sample standard deviation.

    python scripts/seed_summary.py imdb runs/reproduce/imdb-bilstm-s42 runs/reproduce/imdb-bilstm-s43 ... \
        --output docs/seeds/imdb_bilstm.json
    python scripts/seed_summary.py multi30k runs/reproduce/m30k-s42 ... --output docs/seeds/multi30k_de_en.json

IMDB reads each run's `test_results.json` (test accuracy, macro-F1) and `eval_results.json`; Multi30k reads the
beam-5 `test_beam5.json` that `hf-rnn evaluate --json` wrote into each run folder. With `--into-runs`, the summary
is also written into every run folder as `seeds.json` and the run's model card is rendered again, so it states its
seed and the spread over the seeds (and `hf-rnn push` publishes both).
"""

import argparse
import json
import statistics
from pathlib import Path

from hf_rnn.model_card import write_model_card
from hf_rnn.recipe import DEFAULT_SEED
from hf_rnn.runs import SEEDS_FILE, Run

METRICS = {
    "imdb": {"file": "test_results.json", "keys": {"test_accuracy": "test accuracy", "test_macro_f1": "test macro-F1"}},
    "multi30k": {"file": "test_beam5.json", "keys": {"bleu": "test_2016_flickr BLEU (beam 5)", "chrf": "chrF"}},
}


def summarise(kind: str, runs: list[Path]) -> dict:
    spec = METRICS[kind]
    per_seed = []
    for run in runs:
        saved = Run(run)
        seed = saved.recipe().training.get("seed", DEFAULT_SEED)
        values = saved.json(spec["file"])
        row = {"run": str(run), "training_seed": seed, "train_runtime_s": saved.train_results().get("train_runtime")}
        row.update({key: values[key] for key in spec["keys"]})
        row["validation"] = {
            key: value for key, value in saved.json("eval_results.json").items() if key.startswith("eval_")
        }
        per_seed.append(row)
    summary = {}
    for key, label in spec["keys"].items():
        values = [row[key] for row in per_seed]
        summary[key] = {
            "label": label,
            "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
    return {"kind": kind, "runs": per_seed, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=sorted(METRICS))
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--into-runs", action="store_true", help="write seeds.json into each run, re-render its card")
    args = parser.parse_args()
    report = summarise(args.kind, args.runs)
    text = json.dumps(report, indent=2) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    if args.into_runs:
        for run in args.runs:
            (run / SEEDS_FILE).write_text(text, encoding="utf-8")
            saved = Run(run)
            write_model_card(run, saved.config()["model_type"], saved.recipe(), saved.results())
    for key, stats in report["summary"].items():
        values = ", ".join(str(row[key]) for row in report["runs"])
        print(f"{stats['label']}: {stats['mean']:.4f} ± {stats['std']:.4f} (seeds: {values})")


if __name__ == "__main__":
    main()

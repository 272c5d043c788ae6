"""Token-based against sentence-count batches on Multi30k de->en, at equal tokens per batch.

1. Padding: for the recipe's tokenizer and the 29,000 training pairs, the padded tokens (rows x longest row, source
   and target each) per real token of one epoch of batches: 64-sentence batches as the Trainer forms them
   (length-grouped, `group_by_length`; and random), and token batches with the same mean padded tokens per batch.
2. Speed: `hf-rnn train configs/multi30k_de_en.yaml` for STEPS optimizer steps each way (no evaluation), real
   source + target and target tokens per second of training, one after the other on the same threads: 64-sentence
   batches length-grouped (the default) and random, and token batches.

    python benchmarks/token_batching/run.py --data-dir ../shared/data --steps 300 --out docs/token_batching
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from transformers.trainer_pt_utils import LengthGroupedSampler

from hf_rnn.batching import TokenBatchSampler
from hf_rnn.data import load_task_splits
from hf_rnn.recipe import load_recipe
from hf_rnn.tasks import task_adapter
from hf_rnn.tokenization import train_tokenizer

RECIPE = "multi30k_de_en"


def pair_lengths(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """Source and target token counts of every training pair, with the recipe's tokenizer learned as `train` does."""
    recipe = load_recipe(RECIPE)
    adapter = task_adapter(recipe.task)
    train = load_task_splits(recipe.data, data_dir, adapter.required_columns(recipe.data))["train"]
    tokenizer = train_tokenizer(adapter.tokenizer_texts(train, recipe.data), recipe.tokenizer)
    encoded = train.map(adapter.preprocess_function(tokenizer, recipe.data), batched=True)
    return np.array([len(ids) for ids in encoded["input_ids"]]), np.array([len(ids) for ids in encoded["labels"]])


def padding(batches: list[list[int]], source: np.ndarray, target: np.ndarray) -> dict:
    padded = sum(len(batch) * (source[batch].max() + target[batch].max()) for batch in batches)
    real = int(source.sum() + target.sum())
    return {
        "batches": len(batches),
        "mean_sentences_per_batch": round(float(np.mean([len(batch) for batch in batches])), 1),
        "mean_padded_tokens_per_batch": round(padded / len(batches), 1),
        "padding_fraction": round(1 - real / padded, 4),
    }


def speed(data_dir: str, steps: int, batching: list[str], output_dir: Path, mean_target_length: float) -> dict:
    settings = [
        f"training.max_steps={steps}",
        "training.eval_strategy=no",
        "training.save_strategy=no",
        "training.load_best_model_at_end=false",
        "training.early_stopping_patience=null",
        "data.max_eval_samples=64",
        "data.max_test_samples=64",
        *batching,
    ]
    command = [sys.executable, "-m", "hf_rnn", "train", RECIPE, "--data-dir", data_dir, "--output-dir", str(output_dir)]
    for setting in settings:
        command += ["--set", setting]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = json.loads((output_dir / "train_results.json").read_text())
    return {
        "settings": batching,
        "threads": results["threads"],
        "train_seconds": round(results["train_runtime"], 1),
        "examples_per_second": results["train_examples_seen_per_second"],
        "tokens_per_second": results["train_tokens_seen_per_second"],
        "target_tokens_per_second": round(results["train_examples_seen_per_second"] * mean_target_length, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per speed run (0: padding only)")
    parser.add_argument("--work", type=Path, default=Path("runs/token-batching"))
    parser.add_argument("--out", type=Path, default=Path("docs/token_batching"))
    args = parser.parse_args()
    source, target = pair_lengths(args.data_dir)
    lengths = (source + target).tolist()
    rng = np.random.default_rng(0)
    grouped = list(LengthGroupedSampler(64, lengths=lengths, generator=None))
    grouped_batches = [grouped[i : i + 64] for i in range(0, len(grouped), 64)]
    order = rng.permutation(len(lengths)).tolist()
    random_batches = [order[i : i + 64] for i in range(0, len(order), 64)]
    budget = int(round(padding(grouped_batches, source, target)["mean_padded_tokens_per_batch"]))
    token_batches = list(TokenBatchSampler(np.stack([source, target], axis=1), budget, seed=0))
    report = {
        "recipe": RECIPE,
        "pairs": len(lengths),
        "token_budget": budget,
        "padding": {
            "64 sentences, length-grouped (group_by_length)": padding(grouped_batches, source, target),
            "64 sentences, random": padding(random_batches, source, target),
            f"token batches of {budget} padded tokens": padding(token_batches, source, target),
        },
    }
    if args.steps:
        mean_target = float(target.mean())
        runs = {
            "64 sentences, length-grouped": [],
            "64 sentences, random": ["training.train_sampling_strategy=random"],
            f"token batches of {budget}": [f"training.max_tokens_per_batch={budget}"],
        }
        report["speed"] = {
            name: speed(args.data_dir, args.steps, batching, args.work / f"run{index}", mean_target)
            for index, (name, batching) in enumerate(runs.items())
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "token_batching.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Training throughput of the language model's output layer: adaptive softmax against the full softmax, at the same
model size, in one run.

The model of a recipe (default `imdb_lm`: its sizes, vocabulary and dropouts) is trained for STEPS optimizer steps on
BPTT windows of real IMDB text (the recipe's tokenizer learned on 10,000 of its training texts, so the vocabulary is
the recipe's), once with each output layer, alternating ROUNDS times; tokens per second of forward + backward + Adam
step, medians over the rounds.

    python benchmarks/lm_softmax/run.py --data-dir ../shared/data --steps 20 --rounds 3 --threads 1
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from hf_rnn.data import load_task_splits
from hf_rnn.language_modeling import token_order
from hf_rnn.models.rnn_lm import RnnForCausalLM, RnnLmConfig
from hf_rnn.recipe import load_recipe
from hf_rnn.streams import stream_rows, token_stream
from hf_rnn.tasks import task_adapter
from hf_rnn.tokenization import train_tokenizer


def training_stream(recipe, data_dir: str) -> tuple[torch.Tensor, list[int], int]:
    """The training texts (at most 10,000) as one token stream, the token frequency order, and the vocabulary size."""
    adapter = task_adapter(recipe.task)
    train = load_task_splits(recipe.data, data_dir, adapter.required_columns(recipe.data))["train"]
    train = train.shuffle(seed=0).select(range(min(10_000, len(train))))
    tokenizer = train_tokenizer(adapter.tokenizer_texts(train, recipe.data), recipe.tokenizer)
    encoded = train.map(adapter.preprocess_function(tokenizer, recipe.data), batched=True)
    return token_stream(encoded), token_order(encoded, len(tokenizer)), len(tokenizer)


def tokens_per_second(model: RnnForCausalLM, rows: torch.Tensor, bptt: int, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    cache, tokens, started = None, 0, None
    for step in range(steps + 1):  # step 0 warms up, untimed
        if step == 1:
            started = time.perf_counter()
        start = (step * bptt) % (rows.shape[1] - bptt - 1)
        window = rows[:, start : start + bptt + 1]
        output = model(input_ids=window[:, :-1], labels=window, cache=cache, use_cache=True)
        cache = output.cache.detach()
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        if step >= 1:
            tokens += window[:, 1:].numel()
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="imdb_lm")
    parser.add_argument("--data-dir", default="sample", help="the recipe's data (default: the bundled slice)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/lm_softmax"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    stream, order, vocab_size = training_stream(recipe, args.data_dir)
    rows = stream_rows(stream, recipe.training.get("per_device_train_batch_size", 32))
    bptt = recipe.options.bptt
    rates: dict[str, list[float]] = {"full": [], "adaptive": []}
    for _ in range(args.rounds):
        for softmax in rates:
            torch.manual_seed(0)
            values = {**recipe.model, "softmax": softmax}
            config = RnnLmConfig(**values, vocab_size=vocab_size, token_order=order if softmax == "adaptive" else None)
            rates[softmax].append(tokens_per_second(RnnForCausalLM(config), rows, bptt, args.steps))
    medians = {softmax: statistics.median(values) for softmax, values in rates.items()}
    report = {
        "command": f"python benchmarks/lm_softmax/run.py --recipe {args.recipe} --data-dir {args.data_dir} "
        f"--steps {args.steps} "
        f"--rounds {args.rounds} --threads {args.threads} --out {args.out}",
        "recipe": args.recipe,
        "model": recipe.model,
        "vocab_size": vocab_size,
        "rows": rows.shape[0],
        "bptt": bptt,
        "steps_per_round": args.steps,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "tokens_per_second": {softmax: [round(value, 1) for value in values] for softmax, values in rates.items()},
        "median_tokens_per_second": {softmax: round(value, 1) for softmax, value in medians.items()},
        "adaptive_over_full": round(medians["adaptive"] / medians["full"], 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "softmax_speed.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["median_tokens_per_second"]), "adaptive / full:", report["adaptive_over_full"])


if __name__ == "__main__":
    main()

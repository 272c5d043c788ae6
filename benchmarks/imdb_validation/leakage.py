"""How much does a validation split carved at random from IMDB's training reviews overstate test accuracy?

IMDB groups up to 30 reviews per movie; train and test share no movie. A random validation split therefore
holds reviews of movies the model trains on, a movie-disjoint one does not. This script carves both from the
training reviews (2,500 each), trains the recipe on the remaining reviews, and after every epoch scores

- `same_movies`: random reviews of movies that stay in training (what a random carve gives),
- `held_out_movies`: all reviews of movies that are not in training (what a movie-disjoint carve gives),
- `test`: the 25,000 test reviews,

and saves the weights of every epoch, so that selection rules (best epoch on either split, last epoch, an average
of the last epochs' weights) can be compared on test afterwards (`--score-averages`).

    python benchmarks/imdb_validation/leakage.py configs/imdb_bilstm.yaml --data-dir ../shared/data \
        --output-dir runs/imdb-leakage
"""

import argparse
import json
import random
from pathlib import Path

import torch
from transformers import TrainerCallback, set_seed

from hf_rnn.data import load_split_files, resolve_data_dir
from hf_rnn.groupings import example_groups
from hf_rnn.recipe import load_recipe
from hf_rnn.tasks import task_adapter
from hf_rnn.training import add_lengths, build_training_arguments, prepare_tokenizer


class SaveEpochWeights(TrainerCallback):
    """Keeps each epoch's weights as `epoch_<k>.pt` (checkpoints would be pruned by save_total_limit)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        torch.save(model.state_dict(), self.folder / f"epoch_{round(state.epoch)}.pt")


def carve(movies: list[str], size: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """Row indices of (training, same_movies, held_out_movies)."""
    rng = random.Random(seed)
    by_movie: dict[str, list[int]] = {}
    for row, movie in enumerate(movies):
        by_movie.setdefault(movie, []).append(row)
    order = sorted(by_movie)
    rng.shuffle(order)
    held_out: list[int] = []
    for movie in order:
        if len(held_out) >= size:
            break
        held_out.extend(by_movie[movie])
    rest = sorted(set(range(len(movies))) - set(held_out))
    same = sorted(rng.sample(rest, size))
    training = sorted(set(rest) - set(same))
    return training, same, sorted(held_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()

    recipe = load_recipe(args.recipe, args.overrides)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.options.threads or torch.get_num_threads())
    adapter = task_adapter(recipe.task)
    raw = load_split_files(resolve_data_dir(args.data_dir), recipe.data.local_name, ["train", "test"])
    movies, unknown = example_groups(raw["train"][recipe.data.text_column], "imdb_movies")
    assert unknown == 0, f"{unknown} training reviews have no movie"
    training, same, held_out = carve(movies, int(recipe.data.validation_size), recipe.data.seed)
    splits = raw.__class__(
        train=raw["train"].select(training),
        same_movies=raw["train"].select(same),
        held_out_movies=raw["train"].select(held_out),
        test=raw["test"],
    )
    training_args = build_training_arguments(adapter, recipe, output_dir)
    training_args.load_best_model_at_end = False
    training_args.metric_for_best_model = "held_out_movies_accuracy"
    training_args.save_strategy = "no"
    set_seed(training_args.seed)
    tokenizer = prepare_tokenizer(recipe, adapter, splits["train"], output_dir, True)
    encoded = add_lengths(splits, adapter, tokenizer, recipe.data)
    evaluation_sets = {name: encoded[name].sort("length") for name in ("same_movies", "held_out_movies", "test")}
    model = adapter.build_model(recipe, tokenizer, splits["train"])
    trainer = adapter.trainer_class(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=evaluation_sets,
        processing_class=tokenizer,
        data_collator=adapter.collator(tokenizer, model),
        compute_metrics=adapter.metrics_function(tokenizer),
        callbacks=[SaveEpochWeights(output_dir)],
    )
    trainer.train()
    per_epoch: dict[int, dict[str, float]] = {}
    for entry in trainer.state.log_history:
        for key, value in entry.items():
            if key.startswith("eval_") and key.endswith("_accuracy"):
                per_epoch.setdefault(round(entry["epoch"]), {})[key[5:-9]] = value

    # Selection rules, scored on test: the epoch each validation split would pick, and weight averages.
    results = {
        "recipe": args.recipe,
        "overrides": args.overrides,
        "split_sizes": {name: len(split) for name, split in splits.items()},
        "held_out_movie_count": len({movies[row] for row in held_out}),
        "threads": torch.get_num_threads(),
        "per_epoch_accuracy": per_epoch,
    }
    epochs = sorted(per_epoch)
    averages = {}
    for first in epochs[:-1]:
        chosen = [torch.load(output_dir / f"epoch_{epoch}.pt") for epoch in epochs if epoch >= first]
        model.load_state_dict({key: sum(state[key] for state in chosen) / len(chosen) for key in chosen[0]})
        metrics = trainer.evaluate(evaluation_sets)
        averages[f"mean_of_epochs_{first}-{epochs[-1]}"] = {
            key[5:-9]: value for key, value in metrics.items() if key.endswith("_accuracy")
        }
    results["weight_averages"] = averages
    (output_dir / "leakage.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

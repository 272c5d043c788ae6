"""`hf-rnn train` and `hf-rnn recipes`."""

import argparse
import json


def add_parsers(subparsers) -> None:
    add_train_parser(subparsers)
    add_recipes_parser(subparsers)


def add_train_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model from a YAML recipe")
    add_train_arguments(parser)
    parser.set_defaults(handler=run_train)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recipe", help="a recipe YAML file, or the name of a shipped recipe (`hf-rnn recipes` lists them)"
    )
    parser.add_argument("--output-dir", required=True, help="where the model, checkpoints and results go")
    parser.add_argument(
        "--data-dir",
        help="folder with <dataset>/<split>.parquet files (e.g. ../shared/data), or 'sample' for the bundled "
        "slices; default: $HF_RNN_DATA_DIR, else the Hub dataset named in the recipe",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set training.learning_rate=2e-3 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        help="resume from the last checkpoint in --output-dir (or from the checkpoint path given)",
    )


def run_train(args: argparse.Namespace) -> int:
    from ..recipe import load_recipe
    from ..training import train

    recipe = load_recipe(args.recipe, args.overrides)
    results = train(recipe, args.output_dir, data_dir=args.data_dir, resume=args.resume)
    print(json.dumps(results, indent=2))
    return 0


def add_recipes_parser(subparsers) -> None:
    parser = subparsers.add_parser("recipes", help="list the recipes that ship with hf_rnn")
    parser.set_defaults(handler=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    from ..recipe import recipe_summary, shipped_recipes

    recipes = shipped_recipes()
    width = max(map(len, recipes))
    for name, path in recipes.items():
        print(f"{name:<{width}}  {recipe_summary(path)}")
    print(
        f"\nTrain one with `hf-rnn train NAME --output-dir DIR`; the files are in {next(iter(recipes.values())).parent}"
    )
    return 0

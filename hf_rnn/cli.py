"""The `hf-rnn` command line: train, evaluate and use recurrent models."""

import argparse
import json
import logging
import sys
from pathlib import Path

from . import inspect_cli
from .benchmark import add_benchmark_parser
from .checkpoints import CheckpointError
from .data import DataError
from .hub import HubError, add_push_parser
from .loading import ModelLoadError
from .recipe import RecipeError


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
    from .recipe import load_recipe
    from .training import train

    recipe = load_recipe(args.recipe, args.overrides)
    results = train(recipe, args.output_dir, data_dir=args.data_dir, resume=args.resume)
    print(json.dumps(results, indent=2))
    return 0


def add_recipes_parser(subparsers) -> None:
    parser = subparsers.add_parser("recipes", help="list the recipes that ship with hf_rnn")
    parser.set_defaults(handler=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    from .recipe import recipe_summary, shipped_recipes

    recipes = shipped_recipes()
    width = max(map(len, recipes))
    for name, path in recipes.items():
        print(f"{name:<{width}}  {recipe_summary(path)}")
    print(
        f"\nTrain one with `hf-rnn train NAME --output-dir DIR`; the files are in {next(iter(recipes.values())).parent}"
    )
    return 0


def add_evaluate_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score a saved model on a dataset split")
    parser.add_argument("model", help="a saved model directory (or Hub id)")
    parser.add_argument("--split", default="test", help="split name (a file <split>.parquet in the data folder)")
    parser.add_argument("--dataset", help="dataset preset or Hub id (default: the one in the model's recipe)")
    parser.add_argument("--data-dir", help="local data folder, 'sample', or $HF_RNN_DATA_DIR")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-samples", type=int, help="score only the first N examples")
    parser.add_argument("--num-beams", type=int, help="beam size (translation; default: the model's generation_config)")
    parser.add_argument(
        "--max-new-tokens", type=int, help="generation limit (translation; default: the model's generation_config)"
    )
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--json", dest="json_path", help="also write the metrics to this JSON file")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_model

    metrics = evaluate_model(
        args.model,
        split=args.split,
        dataset=args.dataset,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        threads=args.threads,
    )
    text = json.dumps(metrics, indent=2, ensure_ascii=False)
    print(text)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(text + "\n", encoding="utf-8")
    return 0


def add_translate_parser(subparsers) -> None:
    parser = subparsers.add_parser("translate", help="translate texts with a saved encoder-decoder")
    parser.add_argument("model", help="a saved model directory (or Hub id)")
    parser.add_argument("texts", nargs="*", help="texts to translate (default: one per line on stdin)")
    parser.add_argument("--num-beams", type=int, help="beam size (default: the model's generation_config)")
    parser.add_argument("--max-new-tokens", type=int, help="generation limit (default: the model's generation_config)")
    parser.add_argument("--plot-attention", metavar="FILE.png", help="draw the attention of the first text")
    parser.set_defaults(handler=run_translate)


def run_translate(args: argparse.Namespace) -> int:
    from transformers import AutoModelForSeq2SeqLM

    from .loading import load_model, load_tokenizer
    from .tokenization import clean_text
    from .translation import generate_translations, plot_attention, translate_with_attention

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, AutoModelForSeq2SeqLM)
    texts = [clean_text(text) for text in (args.texts or [line.rstrip("\n") for line in sys.stdin])]
    translations = generate_translations(
        model, tokenizer, texts, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, progress=False
    )
    for translation in translations:
        print(translation)
    if args.plot_attention and texts:
        result = translate_with_attention(model, tokenizer, texts[0], args.num_beams, args.max_new_tokens)
        if result["weights"] is None:
            raise RecipeError("this model has no attention (attention_type: none): nothing to plot.")
        plot_attention(result["weights"], result["source_tokens"], result["target_tokens"], args.plot_attention)
        print(f"attention heatmap written to {args.plot_attention}", file=sys.stderr)
    return 0


def add_classify_parser(subparsers) -> None:
    parser = subparsers.add_parser("classify", help="classify texts with a saved classifier")
    parser.add_argument("model", help="a saved model directory (or Hub id)")
    parser.add_argument("texts", nargs="*", help="texts to classify (default: one per line on stdin)")
    parser.set_defaults(handler=run_classify)


def run_classify(args: argparse.Namespace) -> int:
    from transformers import AutoModelForSequenceClassification, pipeline

    from .loading import load_model, load_tokenizer
    from .tokenization import clean_text, truncated_flags

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, AutoModelForSequenceClassification)
    texts = [clean_text(text) for text in (args.texts or [line.rstrip("\n") for line in sys.stdin])]
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, truncation=True)
    # `truncated`: the text was longer than the tokenizer's model_max_length and only its start was read.
    truncated = truncated_flags(tokenizer(texts, truncation=True)) if texts else []
    results = classifier(texts) if texts else []
    for text, result, was_truncated in zip(texts, results, truncated):
        print(json.dumps({"text": text[:80], **result, "truncated": was_truncated}, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-rnn", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_recipes_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_translate_parser(subparsers)
    add_classify_parser(subparsers)
    add_push_parser(subparsers)
    add_benchmark_parser(subparsers)
    inspect_cli.add_diagnose_parser(subparsers)
    inspect_cli.add_compare_cells_parser(subparsers)
    inspect_cli.add_plot_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (RecipeError, DataError, ModelLoadError, CheckpointError, HubError) as error:
        print(f"hf-rnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

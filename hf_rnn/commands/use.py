"""`hf-rnn evaluate`, `hf-rnn translate` and `hf-rnn classify`: score and use saved models."""

import argparse
import json
import sys
from pathlib import Path

from ..errors import HfRnnError


def add_parsers(subparsers) -> None:
    add_evaluate_parser(subparsers)
    add_translate_parser(subparsers)
    add_classify_parser(subparsers)


def add_evaluate_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="score a saved model on a dataset split")
    parser.add_argument("model", help="a saved model directory (or Hub id)")
    parser.add_argument("--split", default="test", help="split name (a file <split>.parquet in the data folder)")
    parser.add_argument("--dataset", help="dataset preset or Hub id (default: the one in the model's recipe)")
    parser.add_argument("--data-dir", help="local data folder, 'sample', or $HF_RNN_DATA_DIR")
    parser.add_argument(
        "--data-files",
        nargs="+",
        metavar="FILE",
        help="score these local files instead of a split (parquet, jsonl or csv in the recipe's columns or a "
        "translation shape, e.g. ../shared/data/wmt-newstest/newstest2015.parquet)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-samples", type=int, help="score only the first N examples")
    parser.add_argument("--num-beams", type=int, help="beam size (translation; default: the model's generation_config)")
    parser.add_argument(
        "--max-new-tokens", type=int, help="generation limit (translation; default: the model's generation_config)"
    )
    add_max_length_factor_argument(parser)
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--json", dest="json_path", help="also write the metrics to this JSON file")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_model

    metrics = evaluate_model(
        args.model,
        split=args.split,
        dataset=args.dataset,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        max_length_factor=args.max_length_factor,
        threads=args.threads,
        data_files=args.data_files,
    )
    text = json.dumps(metrics, indent=2, ensure_ascii=False)
    print(text)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(text + "\n", encoding="utf-8")
    return 0


def add_max_length_factor_argument(parser: argparse.ArgumentParser) -> None:
    """`--max-length-factor` of `evaluate` and `translate` (`hf_rnn.translation.batch_generation_limit`)."""
    parser.add_argument(
        "--max-length-factor",
        type=float,
        help="translation: also stop each batch after this many tokens per token of its longest source (Joey NMT's "
        "default limit is 1.5, fairseq's --max-len-a)",
    )


def add_translate_parser(subparsers) -> None:
    parser = subparsers.add_parser("translate", help="translate texts with a saved encoder-decoder")
    parser.add_argument("model", help="a saved model directory (or Hub id)")
    parser.add_argument("texts", nargs="*", help="texts to translate (default: one per line on stdin)")
    parser.add_argument("--num-beams", type=int, help="beam size (default: the model's generation_config)")
    parser.add_argument("--max-new-tokens", type=int, help="generation limit (default: the model's generation_config)")
    add_max_length_factor_argument(parser)
    parser.add_argument("--plot-attention", metavar="FILE.png", help="draw the attention of the first text")
    parser.set_defaults(handler=run_translate)


def run_translate(args: argparse.Namespace) -> int:
    from transformers import AutoModelForSeq2SeqLM

    from ..loading import load_model, load_tokenizer
    from ..plotting import plot_attention
    from ..tokenization import clean_text
    from ..translation import generate_translations, translate_with_attention

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, AutoModelForSeq2SeqLM)
    texts = [clean_text(text) for text in (args.texts or [line.rstrip("\n") for line in sys.stdin])]
    translations = generate_translations(
        model,
        tokenizer,
        texts,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        progress=False,
        max_length_factor=args.max_length_factor,
    )
    for translation in translations:
        print(translation)
    if args.plot_attention and texts:
        result = translate_with_attention(model, tokenizer, texts[0], args.num_beams, args.max_new_tokens)
        if result["weights"] is None:
            raise HfRnnError("this model has no attention (attention_type: none): nothing to plot.")
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

    from ..loading import load_model, load_tokenizer
    from ..tokenization import clean_text, truncated_flags

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

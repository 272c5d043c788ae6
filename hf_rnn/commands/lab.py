"""`hf-rnn compare-cells` and `hf-rnn benchmark`: experiments and measurements (`hf_rnn.lab`)."""

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ..lab.benchmark import PARTS
from ..lab.inspection import CELL_TYPES, DEFAULT_RECIPE
from .inspect import add_common_data_arguments, parse_cells


def add_parsers(subparsers) -> None:
    add_compare_cells_parser(subparsers)
    add_benchmark_parser(subparsers)


def add_compare_cells_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare-cells", help="train RNN, LSTM and GRU classifiers with the same recipe and budget; table + plot"
    )
    parser.add_argument(
        "--recipe", default=DEFAULT_RECIPE, help="classification recipe: a file or a shipped recipe's name"
    )
    add_common_data_arguments(parser)
    parser.add_argument("--cells", type=parse_cells, default=list(CELL_TYPES), help="cell types (default rnn,lstm,gru)")
    parser.add_argument("--train-samples", type=int, default=3000, help="training texts (default 3000)")
    parser.add_argument("--eval-samples", type=int, default=500, help="validation texts (default 500)")
    parser.add_argument("--test-samples", type=int, default=1000, help="test texts (default 1000)")
    parser.add_argument("--epochs", type=float, default=3, help="training epochs, the same for every cell (default 3)")
    parser.add_argument("--max-length", type=int, default=256, help="truncate texts to this many tokens (default 256)")
    parser.add_argument("--output", default="runs/compare-cells", help="folder for the runs, table and plot")
    parser.set_defaults(handler=run_compare_cells)


def run_compare_cells(args: argparse.Namespace) -> int:
    from ..lab.inspection import CellComparisonOptions, compare_cells_report

    options = CellComparisonOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(CellComparisonOptions)}
    )
    print(compare_cells_report(options))
    print(f"wrote {Path(args.output) / 'comparison.md'}, comparison.json and comparison.png")
    return 0


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer batches and repeats, no DDP (under 2 minutes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--json", dest="json_path", help="also write the results to this JSON file")
    parser.add_argument(
        "--only", nargs="+", choices=PARTS, help="run only these parts (e.g. --only ddp on an idle machine)"
    )
    parser.add_argument("--repeats", type=int, help="timed rounds per comparison (default 5, --quick 3)")
    parser.add_argument(
        "--data-dir",
        help="folder with imdb/ and multi30k/ parquet files, or 'sample'; default: $HF_RNN_DATA_DIR, else "
        "../shared/data beside the checkout, else the bundled sample",
    )
    parser.add_argument("--decode-model", help="a saved rnn_seq2seq model (with tokenizer) to decode with")


def add_benchmark_parser(subparsers) -> None:
    parser = subparsers.add_parser("benchmark", help="time our training and decoding paths against naive references")
    add_benchmark_arguments(parser)
    parser.set_defaults(handler=run_benchmark_command)


def settings_from_args(args: argparse.Namespace):
    from ..lab.benchmark import BenchmarkSettings

    overrides: dict[str, Any] = {"threads": args.threads, "data_dir": args.data_dir, "decode_model": args.decode_model}
    if args.repeats is not None:
        overrides["repeats"] = args.repeats
    if args.only:
        overrides["parts"] = tuple(args.only)
    return BenchmarkSettings.quick(**overrides) if args.quick else BenchmarkSettings(**overrides)


def run_benchmark_command(args: argparse.Namespace) -> int:
    from ..lab.benchmark import run_benchmark
    from ..lab.report import format_table

    results = run_benchmark(settings_from_args(args), log=lambda message: print(message, file=sys.stderr))
    print(format_table(results))
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json_path}")
    return 0

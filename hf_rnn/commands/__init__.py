"""The `hf-rnn` command line: train, evaluate and use recurrent models, share them, and look inside them.

One parser (`build_parser`); each command group lives in its own module, and each command only parses its
options, calls a library function and prints. Every `HfRnnError` (a recipe, data, model folder, checkpoint or Hub
problem the user can fix) becomes one line, `hf-rnn <command>: error: ...`, and exit status 2.
"""

import argparse
import logging
import sys

from ..errors import HfRnnError
from . import demo, export, inspect, lab, push, train, use

COMMAND_GROUPS = (train, use, push, demo, inspect, lab, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-rnn", description=__doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except HfRnnError as error:
        print(f"hf-rnn {args.command}: error: {error}", file=sys.stderr)
        return 2

"""`hf-rnn demo` and `hf-rnn space`: a Gradio page for trained runs, and a Hugging Face Space folder for a pushed run
(`hf_rnn.demo`; gradio is the optional extra `hf_rnn[demo]`)."""

import argparse
from pathlib import Path


def add_parsers(subparsers) -> None:
    add_demo_parser(subparsers)
    add_space_parser(subparsers)


def add_demo_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="serve a Gradio page for trained runs, one tab per run (needs hf_rnn[demo])"
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders or Hub ids (classifiers, translators, language models)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
    parser.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from ..demo import build_demo

    build_demo(args.runs).launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0


def add_space_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "space",
        help="write a Gradio Space (app.py, requirements.txt, README.md) that serves a run pushed to the Hub "
        "(needs hf_rnn[demo]; `hf-rnn push RUN REPO --space SPACE_REPO` pushes both)",
    )
    parser.add_argument("run", help="a run folder written by `hf-rnn train`")
    parser.add_argument("model_repo", help="the Hub model repo the run is pushed to (user/name)")
    parser.add_argument("out_dir", help="the folder to write the Space files into")
    parser.set_defaults(handler=run_space)


def run_space(args: argparse.Namespace) -> int:
    from ..demo.space import write_space

    for path in write_space(args.run, args.model_repo, args.out_dir):
        print(path)
    print(f"try it: cd {args.out_dir} && HF_RNN_SPACE_MODEL={Path(args.run).resolve()} python app.py")
    return 0

"""`hf-rnn push`: upload a run to the Hugging Face Hub."""

import argparse


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("push", help="upload a trained run to the Hugging Face Hub")
    parser.add_argument("model_dir", help="a run directory written by `hf-rnn train`")
    parser.add_argument("repo_id", help="Hub repo, e.g. your-name/imdb-bilstm (created if missing)")
    parser.add_argument(
        "--private", action="store_true", help="create the repo as private (an existing repo keeps its visibility)"
    )
    parser.add_argument("--revision", help="branch to commit to, created if missing (default: main)")
    parser.add_argument("--token", help="Hub token with write access (default: $HF_TOKEN or the saved login)")
    parser.add_argument(
        "--space",
        metavar="SPACE_REPO",
        help="also push a Gradio Space serving the model to this Space repo, e.g. your-name/imdb-bilstm-demo "
        "(created if missing; needs hf_rnn[demo]; `hf-rnn space` writes the same folder locally)",
    )
    parser.set_defaults(handler=run_push)


def run_push(args: argparse.Namespace) -> int:
    from ..hub import push

    options = {"private": args.private, "revision": args.revision, "token": args.token}
    if args.space is None:
        print(push(args.model_dir, args.repo_id, **options))
        return 0
    from ..demo.space import push_with_space

    for url in push_with_space(args.model_dir, args.repo_id, args.space, **options):
        print(url)
    return 0

"""`hf-rnn export onnx` and `hf-rnn quantize`: models for ONNX Runtime, in fp32 and int8 (`hf_rnn.export`)."""

import argparse
import json
from pathlib import Path


def add_parsers(subparsers) -> None:
    add_export_parser(subparsers)
    add_quantize_parser(subparsers)


def add_export_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a saved model to another runtime's format")
    formats = parser.add_subparsers(dest="format", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="ONNX graphs (a classifier: model.onnx; an encoder-decoder: encoder.onnx + decoder_step.onnx) with the "
        "config, tokenizer and onnx_config.json, for ONNX Runtime",
    )
    onnx.add_argument("run", help="a saved model folder (a run's output dir) with its tokenizer")
    onnx.add_argument("out", help="the export folder to write (new, empty, or a previous export)")
    onnx.add_argument("--int8", action="store_true", help="write int8 graphs (ONNX Runtime dynamic quantisation)")
    onnx.add_argument("--per-channel", action="store_true", help="with --int8: one scale per output channel")
    onnx.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    onnx.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch.onnx exporter (default torchscript; dynamo needs onnxscript)",
    )
    onnx.add_argument(
        "--no-verify", dest="verify", action="store_false", help="skip the check against PyTorch after export"
    )
    onnx.set_defaults(handler=run_export_onnx)


def run_export_onnx(args: argparse.Namespace) -> int:
    from ..export.onnx import DEFAULT_OPSET, export_onnx
    from ..export.quantize import quantize_onnx

    opset = args.opset or DEFAULT_OPSET
    if args.int8:
        paths = quantize_onnx(args.run, args.out, per_channel=args.per_channel, opset=opset, exporter=args.exporter)
    else:
        paths = export_onnx(args.run, args.out, opset=opset, exporter=args.exporter, verify=args.verify)
    print_export(paths)
    return 0


def add_quantize_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "quantize", help="int8 ONNX graphs (ONNX Runtime dynamic quantisation) of an ONNX export or a run folder"
    )
    parser.add_argument("source", help="an ONNX export folder (hf-rnn export onnx) or a saved model folder")
    parser.add_argument("out", help="the int8 export folder to write")
    parser.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    parser.set_defaults(handler=run_quantize)


def run_quantize(args: argparse.Namespace) -> int:
    from ..export.quantize import quantize_onnx

    print_export(quantize_onnx(args.source, args.out, per_channel=args.per_channel))
    return 0


def print_export(paths: list[Path]) -> None:
    folder = paths[0].parent
    config = json.loads((folder / "onnx_config.json").read_text(encoding="utf-8"))
    for path in paths:
        print(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    check = config.get("export_check")
    if check:
        print(f"checked against PyTorch: {json.dumps(check)}")
    print(f"{config['task']} export written to {folder} (onnx_config.json describes the graphs)")

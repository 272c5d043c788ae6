"""`hf-rnn diagnose gradients|gates` and `hf-rnn plot`: look inside the recurrence and at a run's curves."""

import argparse
import dataclasses

import torch

from ..lab.inspection import CELL_TYPES


def add_parsers(subparsers) -> None:
    add_diagnose_parser(subparsers)
    add_plot_parser(subparsers)


def parse_cells(text: str) -> list[str]:
    """`"rnn,lstm"` -> `["rnn", "lstm"]`, refusing unknown or repeated cell types."""
    cells = [cell.strip().lower() for cell in text.split(",") if cell.strip()]
    unknown = [cell for cell in cells if cell not in CELL_TYPES]
    if not cells or unknown or len(set(cells)) != len(cells):
        raise argparse.ArgumentTypeError(f"expected distinct cell types from {list(CELL_TYPES)}, got {text!r}")
    return cells


def add_common_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="folder with <dataset>/<split>.parquet files, 'sample' for the bundled slices, or $HF_RNN_DATA_DIR",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set model.hidden_size=128 (repeatable)",
    )


def add_diagnose_parser(subparsers) -> None:
    parser = subparsers.add_parser("diagnose", help="gradient flow through time and gate activity of classifiers")
    diagnose = parser.add_subparsers(dest="diagnostic", required=True)

    gradients = diagnose.add_parser(
        "gradients",
        help="‖∂L/∂x_t‖ per time step on real batches, for saved models or RNN vs LSTM vs GRU from a recipe",
        description="Measure the gradient of the loss with respect to each token's embedding on a batch of real "
        "texts. SOURCES: one or more saved classifier folders, or one recipe YAML (then one classifier per "
        "--cells type with the recipe's sizes, fresh or trained for --train-steps steps).",
    )
    gradients.add_argument("sources", nargs="+", help="saved model folder(s), or one recipe YAML")
    add_common_data_arguments(gradients)
    gradients.add_argument("--split", default="test", help="split the batch is drawn from (default: test)")
    gradients.add_argument("--batch-size", type=int, default=16, help="texts in the measured batch")
    gradients.add_argument("--max-length", type=int, help="truncate texts to this many tokens (default: tokenizer's)")
    gradients.add_argument("--min-length", type=int, default=0, help="only texts with at least this many tokens")
    gradients.add_argument("--cells", type=parse_cells, help="recipe only: cell types (default rnn,lstm,gru)")
    gradients.add_argument(
        "--train-steps", type=int, default=0, help="recipe only: train each model this many steps first (0: fresh)"
    )
    gradients.add_argument(
        "--recipe-architecture",
        action="store_true",
        help="recipe only: keep the recipe's directions and pooling (default: left to right, last-state pooling)",
    )
    gradients.add_argument(
        "--max-grad-norm", type=float, help="also show the curves after clipping the gradient norm to this value"
    )
    gradients.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default="float64",
        help="measure in float64 (default: tiny gradients keep their size) or float32 (as trained: may underflow to 0)",
    )
    gradients.add_argument("--seed", type=int, default=0, help="seed of the batch choice and of fresh models")
    gradients.add_argument(
        "--output", required=True, help="folder for gradients.png, gradients_by_position.png, gradients.json"
    )
    gradients.set_defaults(handler=run_diagnose_gradients)

    gates = diagnose.add_parser("gates", help="gate activity heatmap of an LSTM / GRU classifier on one text")
    gates.add_argument("model", help="a saved LSTM or GRU classifier folder")
    gates.add_argument("text", help="the text to read")
    gates.add_argument("--output", required=True, help="PNG to write (a JSON with the values goes beside it)")
    gates.add_argument("--max-length", type=int, help="truncate the text to this many tokens")
    gates.add_argument(
        "--stretch", action="store_true", help="stretch the colours over the values shown instead of [0, 1]"
    )
    gates.add_argument(
        "--units", action="store_true", help="one heatmap per gate with every hidden unit, instead of their mean"
    )
    gates.set_defaults(handler=run_diagnose_gates)


def run_diagnose_gradients(args: argparse.Namespace) -> int:
    from ..lab.inspection import GradientFlowOptions, diagnose_gradients

    options = GradientFlowOptions(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(GradientFlowOptions)}
    )
    report = diagnose_gradients(options)
    print(f"{report['batch_text']}, {report['settings']['state']}, {args.precision}")
    for label, result in report["models"].items():
        decay = "  ".join(
            f"{distance} back x{ratio:.2g}" for distance, ratio in result["decay_from_end"].items() if ratio is not None
        )
        clipping = "" if result["clip_coefficient"] is None else f"  clip x{result['clip_coefficient']:.2g}"
        print(
            f"{label:12s} loss {result['loss']:.3f}  ‖g‖ at last token {result['grad_norm_from_end'][0]:.3g}  {decay}{clipping}"
        )
    print("wrote " + ", ".join(str(path) for path in report["files"]))
    return 0


def run_diagnose_gates(args: argparse.Namespace) -> int:
    from ..lab.inspection import diagnose_gates

    torch.set_num_threads(1)
    report = diagnose_gates(args.model, args.text, args.output, args.max_length, args.units, args.stretch)
    for name, per_token in report["means"].items():
        print(
            f"{name:7s} gate, mean over units: {sum(per_token) / len(per_token):.3f} on average, "
            f"{min(per_token):.3f} to {max(per_token):.3f} across tokens"
        )
    image, values = report["files"]
    print(f"predicted {report['label']} ({report['probability']:.3f}); wrote {image} and {values}")
    return 0


def add_plot_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="loss / accuracy / BLEU curves of a training run as a PNG (and its gradient flow during training, "
        "if recorded with training.gradient_flow_every)",
    )
    parser.add_argument("run_dir", help="a training output folder (its trainer_state.json or latest checkpoint's)")
    parser.add_argument("--output", help="PNG to write (default: RUN_DIR/training_curves.png)")
    parser.set_defaults(handler=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from ..plotting import plot_run

    for figure, source in plot_run(args.run_dir, args.output):
        print(f"wrote {figure} (from {source})")
    return 0

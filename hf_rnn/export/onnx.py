"""ONNX export of a saved hf_rnn model: `export_onnx(run_dir, out_dir)` (`hf-rnn export onnx RUN OUT`).

A classifier becomes one graph, `model.onnx`: `input_ids`, `attention_mask` `(batch, length)` -> `logits`
`(batch, num_labels)`. An encoder-decoder becomes two: `encoder.onnx` runs once per batch (`input_ids`,
`attention_mask` -> the encoder states, the source mask, the projected attention keys and the decoder's initial
state), and `decoder_step.onnx` runs once per generated token (the previous tokens, the recurrent state, the
attentional vector and the encoder's outputs -> logits over the ids the decoder can produce, and the new state);
`hf_rnn.export.runtime.OnnxTranslator` drives them as `generate()` does.

Both graphs are exact with respect to padding, as the PyTorch models are: real tokens are moved to the front of each
row (left or right padding), the right-to-left direction reads each row reversed within its own length, and extra
padding columns change nothing (masked out of pooling and attention). The graphs wrap the model's own modules
(`RnnEncoder`, `pool`, `RnnSeq2SeqDecoder.step`, ...), so they compute what PyTorch computes; only what cannot be
traced with dynamic shapes is written again (the stable sort that moves padding, the cut to the longest row).

The exporter is PyTorch's TorchScript-based one (`torch.onnx.export(..., dynamo=False)`) by default: it needs no
package beyond `onnx`, and it exports `nn.LSTM` / `nn.GRU` / `nn.RNN` with dynamic batch and length as ONNX
`LSTM` / `GRU` / `RNN` operators. `exporter="dynamo"` uses the `torch.export`-based one, which also works but needs
`onnxscript`.
"""

import contextlib
import copy
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import HfRnnError
from ..families import family_for_task
from ..loading import check_model_dir
from . import ONNX_CONFIG_FILE

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_OPSET = 17
EXPORTERS = ("torchscript", "dynamo")
# Copied beside the graphs when present: what loading the tokenizer and reading the settings needs.
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
# The two families ONNX export covers, named by the registry.
CLASSIFIER_TYPE = family_for_task("classification").model_type
SEQ2SEQ_TYPE = family_for_task("translation").model_type


class ExportError(HfRnnError):
    """A model folder cannot be exported, or an export folder cannot be written or read."""


def require_onnx() -> None:
    """Raise `ExportError` unless `onnx` is importable (the `onnx` extra)."""
    try:
        import onnx  # noqa: F401
    except ImportError as error:
        raise ExportError("ONNX export needs the onnx package: pip install 'hf-rnn[onnx]'.") from error


# --- graph modules ---------------------------------------------------------------------------------------------


def real_tokens_first(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`valid_first_index` without a stable sort (which ONNX lacks): the keys `position` for real tokens and
    `position + length` for padding are distinct, so any sort orders them as the stable sort of the padding flag does.

    Returns the reordered ids `(batch, length)`, the lengths `(batch,)` (at least 1, as in the models) and the boolean
    mask `(batch, length)` of the real tokens in the new order. The length is not cut to the longest row (a traced
    graph cannot cut by a value), which changes nothing: the extra columns are padding, masked everywhere.
    """
    seq_len = input_ids.shape[1]
    positions = torch.arange(seq_len, device=input_ids.device).unsqueeze(0)
    real = attention_mask != 0
    order = torch.argsort(torch.where(real, positions, positions + seq_len), dim=1)
    lengths = real.long().sum(dim=1).clamp(min=1)
    return input_ids.gather(1, order), lengths, positions < lengths.unsqueeze(1)


class ClassifierGraph(nn.Module):
    """`input_ids`, `attention_mask` -> `logits`: `RnnForSequenceClassification.forward` in eval mode."""

    input_names = ("input_ids", "attention_mask")
    output_names = ("logits",)

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        rnn = self.model.rnn
        input_ids, lengths, mask = real_tokens_first(input_ids, attention_mask)
        states, final_states, _ = rnn.encoder(rnn.embeddings(input_ids), lengths)
        pooled, _ = rnn.pool(states, final_states, mask)
        return self.model.classifier(pooled)


def state_names(cell_type: str) -> tuple[str, ...]:
    """Names of the decoder's recurrent state tensors: `decoder_h` (and `decoder_c` for an LSTM)."""
    return ("decoder_h", "decoder_c") if cell_type == "lstm" else ("decoder_h",)


class EncoderGraph(nn.Module):
    """`input_ids`, `attention_mask` -> `encoder_states` `(batch, length, encoder_output_size)`, `src_mask` (bool)
    `(batch, length)`, `proj_keys` `(batch, length, key_size)` (with attention) and the decoder's initial state(s)
    `(decoder_layers, batch, hidden_size)`: what `greedy_generate` computes before its first step."""

    input_names = ("input_ids", "attention_mask")

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder, self.decoder = model.get_encoder(), model.get_decoder()
        self.output_names = (
            "encoder_states",
            "src_mask",
            *(() if self.decoder.attention is None else ("proj_keys",)),
            *state_names(self.decoder.cell_type),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        input_ids, lengths, src_mask = real_tokens_first(input_ids, attention_mask)
        encoder_states, final_states, _ = self.encoder.rnn(self.encoder.embeddings(input_ids), lengths)
        states = self.decoder.initial_states(final_states.transpose(0, 1))
        if isinstance(states, tuple):  # an LSTM's h and c start equal: two graph outputs need two tensors
            states = (states[0], states[1].clone())
        else:
            states = (states,)
        keys = () if self.decoder.attention is None else (self.decoder.attention.project_keys(encoder_states),)
        return (encoder_states, src_mask, *keys, *states)


class DecoderStepGraph(nn.Module):
    """One decoder step, `RnnSeq2SeqDecoder.step` followed by the output layer over `target_token_ids`.

    Inputs: `input_ids` `(rows,)` (the previous tokens), the state(s) `(decoder_layers, rows, hidden_size)`,
    `attentional_vector` `(rows, attentional_size)`, then `proj_keys` (with attention), `encoder_states` and
    `src_mask` `(sources, length, ...)`, rows a multiple of sources (the beams of a sentence read its encoding once).
    Outputs: `logits` `(rows, n_out)` over `output_token_ids`, the new state(s) and the new attentional vector.
    `add_top_k` then gives the written graph a `top_k` input and the `top_k` best log-probabilities of each row and
    their indices as outputs, for beam search.

    The decoder's recurrent layer runs as the plain `nn.LSTM` / `nn.GRU` / `nn.RNN` with the same weights (one time
    step): the exporter writes it as ONNX's recurrent operator, which has no counterpart of ATen's GRU/RNN cells.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        from ..models.rnn_classifier.modeling_rnn_classifier import RNN_CLASSES

        decoder = copy.copy(model.get_decoder())  # shallow: shares every weight, the recurrent layer is swapped
        fused = decoder.rnn
        plain = RNN_CLASSES[decoder.cell_type](
            fused.input_size, fused.hidden_size, num_layers=fused.num_layers, batch_first=True
        )
        plain.load_state_dict(fused.state_dict())
        decoder._modules = dict(decoder._modules)
        decoder._modules["rnn"] = plain.eval()
        self.decoder = decoder
        self.embeddings = model.get_target_embeddings()
        weight = model.get_output_embeddings().weight
        bias = model.get_output_embeddings().bias
        index = decoder.output_index(weight.device)
        if index is not None:
            weight = weight[index[0]]
            bias = None if bias is None else bias[index[0]]
        # As `output_weight_prepared_once`: the scored rows, transposed and contiguous.
        self.register_buffer("output_weight", weight.detach().t().contiguous())
        self.register_buffer("output_bias", None if bias is None else bias.detach().clone())
        self.states = state_names(decoder.cell_type)
        self.has_attention = decoder.attention is not None
        self.input_names = (
            "input_ids",
            *self.states,
            "attentional_vector",
            *(("proj_keys",) if self.has_attention else ()),
            "encoder_states",
            "src_mask",
        )
        self.output_names = ("logits", *(f"new_{name}" for name in self.states), "new_attentional_vector")

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(self.input_names, inputs))
        states = tuple(named[name] for name in self.states)
        attentional, _, new_states = self.decoder.step(
            self.embeddings(named["input_ids"]),
            states if len(states) == 2 else states[0],
            named["attentional_vector"],
            named.get("proj_keys"),
            named["encoder_states"],
            named["src_mask"],
        )
        logits = torch.matmul(attentional, self.output_weight)
        if self.output_bias is not None:
            logits = logits + self.output_bias
        new_states = new_states if isinstance(new_states, tuple) else (new_states,)
        return (logits, *new_states, attentional)


# --- export ----------------------------------------------------------------------------------------------------


def export_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
    exporter: str,
) -> None:
    """Write `module` to `path` with named inputs and outputs and the given dynamic axes (one file, weights inside);
    `ExportError` when the exporter fails or fixes an axis that must stay dynamic to the example's size."""
    if exporter == "dynamo":
        try:
            write_graph(module, example, path, dynamic_axes, opset, exporter)
        except ExportError:
            raise
        except Exception as error:  # torch.export's errors are pages long: keep the line that names the problem
            raise ExportError(
                f"the dynamo exporter failed on {type(module).__name__} ({dynamo_error_summary(error)}); the default "
                "torchscript exporter handles these models."
            ) from error
    else:
        write_graph(module, example, path, dynamic_axes, opset, exporter)
    for value in graph_signature(path)["inputs"]:
        fixed = [axis for axis in dynamic_axes.get(value["name"], {}) if not isinstance(value["shape"][axis], str)]
        if fixed:
            raise ExportError(
                f"the {exporter} exporter fixed axes {fixed} of {value['name']!r} in {path.name} to the example's "
                f"sizes {[value['shape'][axis] for axis in fixed]}: the graph would refuse other batch shapes"
                + ("; the default torchscript exporter keeps them dynamic." if exporter == "dynamo" else ".")
            )


def dynamo_error_summary(error: Exception) -> str:
    """One line from a `torch.onnx` / `torch.export` error: the line after its "Exception summary" heading."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines[:-1]):
        if line.startswith("## Exception summary"):
            return lines[i + 1]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def write_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
    exporter: str,
) -> None:
    input_names, output_names = list(module.input_names), list(module.output_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        if exporter == "torchscript":
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes={name: axes for name, axes in dynamic_axes.items() if name in input_names + output_names},
                opset_version=opset,
            )
            return
        try:
            import onnxscript  # noqa: F401
        except ImportError as error:
            raise ExportError("exporter 'dynamo' needs onnxscript (pip install onnxscript).") from error
        # `Dim.DYNAMIC` rather than named dims: a named `Dim` stayed static (the example's size) in the second and
        # later exports of one process (torch 2.13).
        dynamic_shapes = [{axis: torch.export.Dim.DYNAMIC for axis in dynamic_axes[name]} for name in input_names]
        signature = inspect.signature(module.forward).parameters.values()
        varargs = any(parameter.kind is parameter.VAR_POSITIONAL for parameter in signature)
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            input_names=input_names,
            output_names=output_names,
            # `forward(*inputs)` takes one structured argument: the shapes go in one tuple.
            dynamic_shapes=(tuple(dynamic_shapes),) if varargs else tuple(dynamic_shapes),
            opset_version=opset,
            external_data=False,
        )
        program.save(str(path), external_data=False)


def add_top_k(path: Path) -> None:
    """Append `LogSoftmax` and `TopK` to the decoder step graph at `path`: input `top_k` (int64, shape `(1,)`),
    outputs `top_log_probs` and `top_indices` `(rows, top_k)` (best first; ties: lower index first, as ONNX's `TopK`
    specifies). Beam search then reads `2 * num_beams` candidates per row instead of normalising and ranking the
    whole vocabulary in NumPy (a fifth of its time at 1 thread)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    graph.input.append(helper.make_tensor_value_info("top_k", TensorProto.INT64, [1]))
    graph.node.extend(
        [
            helper.make_node("LogSoftmax", ["logits"], ["log_probs"], name="step_log_softmax", axis=-1),
            helper.make_node(
                "TopK",
                ["log_probs", "top_k"],
                ["top_log_probs", "top_indices"],
                name="step_top_k",
                axis=-1,
                largest=1,
                sorted=1,
            ),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info("top_log_probs", TensorProto.FLOAT, ["rows", "top_k"]),
            helper.make_tensor_value_info("top_indices", TensorProto.INT64, ["rows", "top_k"]),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def graph_signature(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs of the ONNX graph at `path`: name, element type and shape (`str` for a dynamic axis)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def describe(value) -> dict[str, Any]:
        tensor = value.type.tensor_type
        shape = [dim.dim_param or dim.dim_value for dim in tensor.shape.dim]
        return {
            "name": value.name,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
            "shape": shape,
        }

    return {"inputs": [describe(v) for v in model.graph.input], "outputs": [describe(v) for v in model.graph.output]}


def example_batch(config, lengths: tuple[int, ...] = (5, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded example batch of ids that are not special tokens."""
    generator = torch.Generator().manual_seed(0)
    low = min(10, config.vocab_size - 1)
    input_ids = torch.randint(low, config.vocab_size, (len(lengths), max(lengths)), generator=generator)
    attention_mask = (torch.arange(max(lengths)) < torch.tensor(lengths).unsqueeze(1)).long()
    return input_ids.masked_fill(attention_mask == 0, config.pad_token_id or 0), attention_mask


def export_classifier(model, out_dir: Path, opset: int, exporter: str) -> dict[str, Any]:
    path = out_dir / "model.onnx"
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}, "logits": {0: "batch"}}
    export_graph(ClassifierGraph(model).eval(), example_batch(model.config), path, axes, opset, exporter)
    return {"task": "text-classification", "graphs": {"model": {"file": path.name, **graph_signature(path)}}}


def export_seq2seq(model, out_dir: Path, opset: int, exporter: str) -> dict[str, Any]:
    config, decoder = model.config, model.get_decoder()
    encoder_graph, step_graph = EncoderGraph(model).eval(), DecoderStepGraph(model).eval()
    example = example_batch(config)
    with torch.no_grad():
        encoded = dict(zip(encoder_graph.output_names, encoder_graph(*example)))
    encoder_path, step_path = out_dir / "encoder.onnx", out_dir / "decoder_step.onnx"
    axes = {
        "input_ids": {0: "batch", 1: "length"},
        "attention_mask": {0: "batch", 1: "length"},
        "encoder_states": {0: "batch", 1: "length"},
        "src_mask": {0: "batch", 1: "length"},
        "proj_keys": {0: "batch", 1: "length"},
        **{name: {1: "batch"} for name in state_names(decoder.cell_type)},
    }
    export_graph(encoder_graph, example, encoder_path, axes, opset, exporter)

    # The step is traced with two rows per source (beam layout) so that nothing ties rows to sources.
    rows = 2 * example[0].shape[0]
    repeat = torch.arange(example[0].shape[0]).repeat_interleave(2)
    step_inputs = {
        "input_ids": torch.full((rows,), config.decoder_start_token_id, dtype=torch.long),
        **{name: encoded[name].index_select(1, repeat) for name in state_names(decoder.cell_type)},
        "attentional_vector": torch.zeros(rows, decoder.attentional_layer.out_features),
        **{name: encoded[name] for name in ("proj_keys", "encoder_states", "src_mask") if name in encoded},
    }
    sources_axes = {0: "sources", 1: "source_length"}
    step_axes = {
        "input_ids": {0: "rows"},
        "attentional_vector": {0: "rows"},
        "proj_keys": sources_axes,
        "encoder_states": sources_axes,
        "src_mask": sources_axes,
        "logits": {0: "rows"},
        "new_attentional_vector": {0: "rows"},
        **{name: {1: "rows"} for name in state_names(decoder.cell_type)},
        **{f"new_{name}": {1: "rows"} for name in state_names(decoder.cell_type)},
    }
    step_example = tuple(step_inputs[name] for name in step_graph.input_names)
    export_graph(step_graph, step_example, step_path, step_axes, opset, exporter)
    add_top_k(step_path)

    generation = model.generation_config
    return {
        "task": "translation",
        "graphs": {
            "encoder": {"file": encoder_path.name, **graph_signature(encoder_path)},
            "decoder_step": {"file": step_path.name, **graph_signature(step_path)},
        },
        "decoder": {
            "cell_type": decoder.cell_type,
            "layers": decoder.num_layers,
            "hidden_size": decoder.hidden_size,
            "attentional_size": decoder.attentional_layer.out_features,
            "state_names": list(state_names(decoder.cell_type)),
            "attention_type": config.attention_type,
        },
        # Index i of `logits` is token id output_token_ids[i] (None: the index is the id).
        "output_token_ids": None if config.target_token_ids is None else list(config.target_token_ids),
        "generation": {
            "decoder_start_token_id": config.decoder_start_token_id,
            "eos_token_id": config.eos_token_id,
            "pad_token_id": config.pad_token_id,
            "max_new_tokens": generation.max_new_tokens,
            "num_beams": generation.num_beams or 1,
            "length_penalty": 1.0 if generation.length_penalty is None else generation.length_penalty,
        },
    }


def check_run_dir(run_dir: str | Path) -> Path:
    """The run folder as a Path, or `ExportError` naming what is missing (a local folder with a model and tokenizer)."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.exists():
        raise ExportError(f"run folder {str(run_dir)!r} does not exist.")
    if not run_dir.is_dir():
        raise ExportError(f"{str(run_dir)!r} is a file; pass the run folder that holds config.json and the weights.")
    check_model_dir(run_dir)
    if not (run_dir / "tokenizer.json").is_file():
        raise ExportError(f"{str(run_dir)!r} has no tokenizer.json: an export folder carries the tokenizer with it.")
    return run_dir


def check_out_dir(out_dir: str | Path, source: Path | None = None) -> Path:
    """`out_dir` as a Path, or `ExportError` unless it is new, empty or a previous export (and not `source`)."""
    out_dir = Path(out_dir).expanduser()
    if source is not None and out_dir.resolve() == source.resolve():
        raise ExportError("the output folder is the source folder: pass a new folder for the export.")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ExportError(f"output {str(out_dir)!r} is a file; pass a folder.")
        if any(out_dir.iterdir()) and not (out_dir / ONNX_CONFIG_FILE).is_file():
            raise ExportError(
                f"output folder {str(out_dir)!r} is not empty and is not an ONNX export: pass a new or empty folder."
            )
    return out_dir


def prepare_out_dir(out_dir: str | Path, source: Path | None = None) -> Path:
    """Create `out_dir`, or reuse it when it is empty or a previous export (its graphs are replaced)."""
    out_dir = check_out_dir(out_dir, source)
    for old in out_dir.glob("*.onnx"):
        old.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def copy_side_files(source: Path, out_dir: Path) -> list[Path]:
    copied = []
    for name in SIDE_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, out_dir / name)
            copied.append(out_dir / name)
    return copied


def run_model_type(run_dir: Path) -> str:
    """The family of the model saved in `run_dir`, or `ExportError` for one the exporter does not cover."""
    model_type = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("model_type")
    if model_type not in (CLASSIFIER_TYPE, SEQ2SEQ_TYPE):
        raise ExportError(
            f"{str(run_dir)!r} holds a {model_type!r} model; ONNX export covers {CLASSIFIER_TYPE} and {SEQ2SEQ_TYPE}."
        )
    return model_type


def load_run_model(run_dir: Path, model_type: str):
    """The saved model of `run_dir` in eval mode."""
    from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    from ..loading import load_model

    auto_class = AutoModelForSequenceClassification if model_type == CLASSIFIER_TYPE else AutoModelForSeq2SeqLM
    return load_model(run_dir, auto_class)


def export_onnx(
    run_dir: str | Path,
    out_dir: str | Path,
    opset: int = DEFAULT_OPSET,
    exporter: str = "torchscript",
    verify: bool = True,
) -> list[Path]:
    """Export the model saved in `run_dir` to ONNX in `out_dir`; returns the graph files written.

    `out_dir` receives the graph(s), the model's config, generation config and tokenizer files, and
    `onnx_config.json` (graphs, their inputs and outputs, the decoder's settings and generation defaults). With
    `verify` (and onnxruntime installed), a small padded batch is run through the exported graphs and compared with
    PyTorch; the largest difference is recorded in `onnx_config.json` and a mismatch raises `ExportError`.
    """
    require_onnx()
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter must be one of {list(EXPORTERS)}, got {exporter!r}.")
    run_dir = check_run_dir(run_dir)
    model_type = run_model_type(run_dir)
    out_dir = check_out_dir(out_dir, run_dir)
    model = load_run_model(run_dir, model_type)
    with staged_folder(out_dir, run_dir) as staging, torch.no_grad():
        export_family = export_classifier if model_type == CLASSIFIER_TYPE else export_seq2seq
        described = export_family(model, staging, opset, exporter)
        copy_side_files(run_dir, staging)
        onnx_config = {
            "format": "hf_rnn-onnx",
            "format_version": FORMAT_VERSION,
            "model_type": model_type,
            **described,
            "exporter": f"torch.onnx.export ({exporter})",
            "opset": opset,
            "torch_version": torch.__version__.split("+")[0],
            "source": str(run_dir),
            "quantization": None,
        }
        write_onnx_config(staging, onnx_config)
        if verify:
            check = verify_export(model, staging)
            if check is not None:
                onnx_config["export_check"] = check
                write_onnx_config(staging, onnx_config)
    return [out_dir / graph["file"] for graph in onnx_config["graphs"].values()]


@contextlib.contextmanager
def staged_folder(out_dir: Path, source: Path):
    """A new folder beside `out_dir` to write an export into; its files replace `out_dir`'s when the block ends
    without an error, and a failed export leaves `out_dir` as it was."""
    out_dir = check_out_dir(out_dir, source)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-staging-", dir=out_dir.parent))
    try:
        yield staging
        out_dir = prepare_out_dir(out_dir, source)
        for path in staging.iterdir():
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_onnx_config(out_dir: Path, onnx_config: dict[str, Any]) -> None:
    text = json.dumps(onnx_config, indent=2) + "\n"
    (out_dir / ONNX_CONFIG_FILE).write_text(text, encoding="utf-8")


def read_onnx_config(folder: str | Path) -> dict[str, Any]:
    """`onnx_config.json` of an export folder, or `ExportError` saying why it cannot be read."""
    folder = Path(folder).expanduser()
    path = folder / ONNX_CONFIG_FILE
    if not folder.is_dir():
        raise ExportError(f"ONNX export folder {str(folder)!r} does not exist.")
    if not path.is_file():
        raise ExportError(
            f"{str(folder)!r} has no {ONNX_CONFIG_FILE}: it is not a folder written by hf-rnn export onnx."
        )
    try:
        onnx_config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ExportError(f"{path} is not valid JSON ({error}).") from error
    if onnx_config.get("format") != "hf_rnn-onnx" or "graphs" not in onnx_config:
        raise ExportError(f"{path} does not describe an hf_rnn ONNX export.")
    missing = [graph["file"] for graph in onnx_config["graphs"].values() if not (folder / graph["file"]).is_file()]
    if missing:
        raise ExportError(f"{str(folder)!r} lacks the graph file(s) {missing} that {ONNX_CONFIG_FILE} lists.")
    return onnx_config


# Largest absolute logit difference allowed by the export check (fp32 graphs; ORT and PyTorch kernels round apart).
CHECK_TOLERANCE = 1e-3


def verify_export(model, out_dir: Path) -> dict[str, Any] | None:
    """Run a right-padded, a left-padded and an over-padded batch through the export and through PyTorch; None
    without onnxruntime. Classifier: largest logit difference. Translator: greedy ids equal, and largest difference
    of the first step's logits."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.warning("onnxruntime is not installed: the exported graphs were not checked against PyTorch.")
        return None
    from .runtime import load_onnx_model

    runner = load_onnx_model(out_dir, threads=1)
    input_ids, attention_mask = example_batch(model.config, lengths=(6, 2, 4))
    left_ids, left_mask = torch.flip(input_ids, [1]), torch.flip(attention_mask, [1])
    over_ids = nn.functional.pad(input_ids, (0, 3), value=model.config.pad_token_id or 0)
    over_mask = nn.functional.pad(attention_mask, (0, 3))
    batches = [(input_ids, attention_mask), (left_ids, left_mask), (over_ids, over_mask)]
    differences, same_ids = [], True
    with torch.no_grad():
        for ids, mask in batches:
            if model.config.model_type == CLASSIFIER_TYPE:
                reference = model(input_ids=ids, attention_mask=mask).logits.numpy()
                differences.append(float(np.abs(runner.logits(ids.numpy(), mask.numpy()) - reference).max()))
            else:
                reference = model.generate(input_ids=ids, attention_mask=mask, num_beams=1, max_new_tokens=8).numpy()
                generated = runner.generate(ids.numpy(), mask.numpy(), num_beams=1, max_new_tokens=8)
                same_ids = same_ids and reference.shape == generated.shape and bool((reference == generated).all())
                differences.append(first_step_difference(model, runner, ids, mask))
    check = {"batches": len(batches), "max_abs_logit_diff": max(differences)}
    if model.config.model_type == SEQ2SEQ_TYPE:
        check["greedy_ids_identical"] = same_ids
    if max(differences) > CHECK_TOLERANCE or not same_ids:
        raise ExportError(f"the exported graphs do not reproduce the PyTorch model: {check} (folder {out_dir}).")
    return check


def first_step_difference(model, runner, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> float:
    """Largest difference between PyTorch's and the graphs' logits for the first decoder step."""
    decoder_input_ids = torch.full((input_ids.shape[0], 1), model.config.decoder_start_token_id)
    reference = model(
        input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, use_cache=False
    ).logits[:, 0]
    index = model.get_decoder().output_index(reference.device)
    reference = (reference if index is None else reference[:, index[0]]).numpy()
    logits = runner.first_step_logits(input_ids.numpy(), attention_mask.numpy())
    return float(np.abs(logits - reference).max())


def export_to_temporary(run_dir: str | Path, **kwargs) -> tuple[tempfile.TemporaryDirectory, Path]:
    """Export `run_dir` into a new temporary folder (for quantising a run folder directly)."""
    holder = tempfile.TemporaryDirectory(prefix="hf-rnn-onnx-")
    folder = Path(holder.name) / "fp32"
    export_onnx(run_dir, folder, **kwargs)
    return holder, folder

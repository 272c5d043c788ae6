"""int8 models: ONNX Runtime dynamic quantisation of an export (`quantize_onnx`, `hf-rnn quantize SRC OUT`), and
PyTorch dynamic quantisation of a loaded model in memory (`quantize_torch`).

ONNX Runtime's `quantize_dynamic` stores the weights of the recurrent layers (`LSTM` -> `DynamicQuantizeLSTM`), the
matrix products with a constant weight (`MatMul` / `Gemm` -> `MatMulInteger`) and the embedding tables (`Gather`) as
int8 with one scale per tensor; activations are quantised on the fly, per call. Products of two activations (the
attention's scores and contexts) stay in float (`MatMulConstBOnly`). The folder it writes loads and runs exactly like
the fp32 export (`hf_rnn.export.runtime.load_onnx_model`).
"""

import contextlib
import logging
from pathlib import Path

from . import ONNX_CONFIG_FILE
from .onnx import (
    ExportError,
    check_out_dir,
    copy_side_files,
    export_to_temporary,
    graph_signature,
    read_onnx_config,
    require_onnx,
    staged_folder,
    write_onnx_config,
)

logger = logging.getLogger(__name__)


def is_export_folder(path: Path) -> bool:
    return (path / ONNX_CONFIG_FILE).is_file()


def quantize_onnx(
    source: str | Path,
    out_dir: str | Path,
    per_channel: bool = False,
    opset: int | None = None,
    exporter: str = "torchscript",
) -> list[Path]:
    """Write the int8 (dynamic, QInt8 weights) version of an ONNX export to `out_dir`; returns its graph files.

    `source` is an export folder (`hf-rnn export onnx`) or a run folder, which is exported first (with `opset` and
    `exporter`). `out_dir` gets the quantised graphs, the same config and tokenizer files, and an `onnx_config.json`
    whose `quantization` records the method and the fp32 and int8 file sizes.
    """
    require_onnx()
    try:
        from onnxruntime import __version__ as onnxruntime_version
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise ExportError("int8 quantisation needs onnxruntime: pip install 'hf-rnn[onnx]'.") from error
    source = Path(source).expanduser()
    if not source.exists():
        raise ExportError(f"folder {str(source)!r} does not exist.")
    out_dir = check_out_dir(out_dir, source)
    holder = None
    if not is_export_folder(source):
        kwargs = {"exporter": exporter, **({"opset": opset} if opset is not None else {})}
        holder, source = export_to_temporary(source, **kwargs)
    try:
        onnx_config = read_onnx_config(source)
        if onnx_config.get("quantization"):
            raise ExportError(f"{str(source)!r} is already quantised ({onnx_config['quantization']['method']}).")
        with staged_folder(out_dir, source) as staging:
            sizes = {}
            for name, graph in onnx_config["graphs"].items():
                fp32, int8 = source / graph["file"], staging / graph["file"]
                with quiet_root_logger():
                    quantize_dynamic(
                        fp32,
                        int8,
                        weight_type=QuantType.QInt8,
                        per_channel=per_channel,
                        extra_options={"MatMulConstBOnly": True},
                    )
                sizes[name] = {"fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size}
                graph.update(graph_signature(int8))
            copy_side_files(source, staging)
            onnx_config["quantization"] = {
                "method": "onnxruntime.quantization.quantize_dynamic",
                "weight_type": "QInt8",
                "per_channel": per_channel,
                "activations": "uint8, quantised per call (dynamic)",
                "onnxruntime_version": onnxruntime_version,
                "sizes": sizes,
            }
            onnx_config.pop("export_check", None)
            write_onnx_config(staging, onnx_config)
        return [out_dir / graph["file"] for graph in onnx_config["graphs"].values()]
    finally:
        if holder is not None:
            holder.cleanup()


@contextlib.contextmanager
def quiet_root_logger():
    """`quantize_dynamic` logs a hint about pre-processing (shape inference) on the root logger that does not apply
    to these graphs: errors only while it runs."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_torch(model):
    """A copy of `model` with PyTorch dynamic int8 quantisation (`torch.ao.quantization.quantize_dynamic`, qint8
    weights) of its `nn.Linear` and plain `nn.LSTM` / `nn.GRU` layers, for CPU inference in memory.

    The decoder's single-step recurrent layer and the output projection of an encoder-decoder are not `nn.LSTM` /
    `nn.Linear` exactly (and generation multiplies by a prepared fp32 copy of the output weight), so they stay fp32:
    for a translator this quantises the encoder, the bridge and the attention layers only. There is no saved form: the
    packed int8 weights have no safetensors layout, and hf_rnn loads no pickles.
    """
    import copy
    import warnings

    import torch
    from torch import nn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)

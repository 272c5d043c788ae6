"""Where models run outside PyTorch: ONNX export (`hf_rnn.export.onnx`), int8 quantisation
(`hf_rnn.export.quantize`) and ONNX Runtime drivers that classify and translate with the exported graphs
(`hf_rnn.export.runtime`).

An export folder is self-contained: the graphs, the model's `config.json` (and `generation_config.json`), the
tokenizer files and `onnx_config.json`, which names every graph with its inputs and outputs. The modules import
`onnx` / `onnxruntime` only when called (`pip install 'hf-rnn[onnx]'`).
"""

ONNX_CONFIG_FILE = "onnx_config.json"

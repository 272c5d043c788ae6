"""What the deployment scripts share: the two shipped models, their ONNX exports (fp32 and int8), the test data, and
the batches as hf_rnn forms them (texts in length order, 64 per batch, tokenised with truncation and padding)."""

import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from hf_rnn.export.onnx import export_onnx
from hf_rnn.export.quantize import quantize_onnx
from hf_rnn.export.runtime import load_onnx_model
from hf_rnn.loading import load_model, load_tokenizer
from hf_rnn.tokenization import clean_text

REPO = Path(__file__).resolve().parents[2]
CLASSIFIER_RUN = REPO / "runs" / "imdb-bilstm-s42"
TRANSLATOR_RUN = REPO / "runs" / "joey_side_by_side" / "hf_model"
DATA_DIR = REPO.parent / "shared" / "data"
EXPORTS = REPO / "runs" / "deployment"
BATCH_SIZE = 64
MAX_NEW_TOKENS = 100  # as the Joey side by side decodes (the saved generation_config says 80)


def exported(run: Path, name: str, int8: bool = False) -> Path:
    """The ONNX export of `run` under runs/deployment/<name>-fp32 (or -int8), made on first use."""
    fp32 = EXPORTS / f"{name}-fp32"
    if not (fp32 / "onnx_config.json").is_file():
        export_onnx(run, fp32)
    if not int8:
        return fp32
    folder = EXPORTS / f"{name}-int8"
    if not (folder / "onnx_config.json").is_file():
        quantize_onnx(fp32, folder)
    return folder


def load_classifier():
    return load_model(CLASSIFIER_RUN, AutoModelForSequenceClassification), load_tokenizer(CLASSIFIER_RUN)


def load_translator():
    return load_model(TRANSLATOR_RUN, AutoModelForSeq2SeqLM), load_tokenizer(TRANSLATOR_RUN)


def onnx_model(run: Path, name: str, int8: bool = False, threads: int = 1):
    return load_onnx_model(exported(run, name, int8), threads=threads)


def imdb_test(sample: int | None = None, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """IMDB test reviews and labels; `sample` of them drawn without replacement with `seed` (both labels: the file is
    sorted by label)."""
    frame = pd.read_parquet(DATA_DIR / "imdb" / "test.parquet")
    if sample is not None:
        frame = frame.iloc[np.sort(np.random.default_rng(seed).choice(len(frame), sample, replace=False))]
    return [clean_text(text) for text in frame["text"]], frame["label"].to_numpy()


def multi30k_test() -> tuple[list[str], list[str]]:
    """The 1,000 Multi30k test (flickr 2016) pairs as German sources and English references."""
    pairs = pd.read_parquet(DATA_DIR / "multi30k" / "test.parquet")["translation"]
    return [clean_text(pair["de"]) for pair in pairs], [pair["en"] for pair in pairs]


def length_batches(tokenizer, texts: list[str], batch_size: int = BATCH_SIZE) -> Iterator[tuple[np.ndarray, dict]]:
    """`(indices, encoded)` per batch, as `evaluate_classifier` and `generate_translations` form them: texts in
    length order (stable), empty ones left out, truncated to `model_max_length` and padded to the longest."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    order = np.array([i for i in order if texts[i].strip()], dtype=np.int64)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        encoded = tokenizer([texts[i] for i in index], truncation=True, padding=True, return_tensors="np")
        yield index, {name: encoded[name].astype(np.int64) for name in ("input_ids", "attention_mask")}


def torch_classifier_logits(model, batch: dict) -> np.ndarray:
    with torch.inference_mode():
        tensors = {name: torch.from_numpy(value) for name, value in batch.items()}
        return model(**tensors).logits.numpy()


def torch_generate(model, batch: dict, num_beams: int = 1) -> np.ndarray:
    with torch.inference_mode():
        tensors = {name: torch.from_numpy(value) for name, value in batch.items()}
        return model.generate(**tensors, num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS).numpy()


def onnx_generate(runner, batch: dict, num_beams: int = 1) -> np.ndarray:
    return runner.generate(
        batch["input_ids"], batch["attention_mask"], num_beams=num_beams, max_new_tokens=MAX_NEW_TOKENS
    )


def machine() -> dict:
    """What the numbers were measured on."""
    import onnxruntime

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }

"""`hf-rnn evaluate`: score a saved model on any split, with bounded memory and a progress bar."""

import dataclasses
import os
import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification

from .data import DATASET_PRESETS, DataConfig, DataError, load_eval_files, load_eval_split, resolve_data_dir
from .errors import HfRnnError
from .families import family_of
from .loading import load_config, load_model, load_tokenizer
from .memory import peak_rss_mb
from .metrics import classification_metrics
from .runs import Run
from .tokenization import clean_text, truncated_flags


def resolve_data_config(model_dir: str, dataset: str | None) -> DataConfig:
    """`--dataset` as a preset name (imdb, multi30k, wmt14) or a Hub id; else the model's own recipe."""
    base = Run(model_dir).data_config()
    if dataset is None:
        return base
    preset = DATASET_PRESETS.get(dataset) or DataConfig(dataset=dataset, local_name=dataset.split("/")[-1])
    # Keep the run's column names and language direction; take the dataset location from the preset.
    return dataclasses.replace(
        base, dataset=preset.dataset, dataset_config=preset.dataset_config, local_name=preset.local_name
    )


def checked_labels(values: list, column: str, num_labels: int) -> np.ndarray:
    """The label column as integers, or a `DataError` when a label is null, not an integer or not a class of the model
    (which would otherwise just count as a wrong prediction)."""
    labels = np.asarray(values)
    if any(value is None for value in values) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise DataError(f"label column {column!r} must hold integer class ids without nulls, got {labels.dtype}.")
    outside = np.flatnonzero((labels < 0) | (labels >= num_labels))
    if len(outside):
        raise DataError(
            f"label column {column!r} has {len(outside)} value(s) outside the model's {num_labels} classes "
            f"[0, {num_labels}) (row {outside[0]}: {labels[outside[0]]})."
        )
    return labels


def evaluate_classifier(
    model_dir: str, tokenizer, split, data: DataConfig, batch_size: int, **generation: int
) -> dict[str, Any]:
    """Accuracy and macro-F1 of the classifier in `model_dir`; texts are encoded in length order batch by batch, so
    memory stays bounded.

    Texts are truncated to the tokenizer's `model_max_length`; `truncated_inputs` counts those that were.
    """
    if generation:
        raise HfRnnError(f"{sorted(generation)} apply to translation models; {model_dir} is a classifier.")
    model = load_model(model_dir, AutoModelForSequenceClassification)
    texts = [clean_text(text) for text in split[data.text_column]]
    labels = checked_labels(split[data.label_column], data.label_column, model.config.num_labels)
    order = np.argsort([len(text) for text in texts], kind="stable")
    predictions = np.empty(len(texts), dtype=np.int64)
    truncated = 0
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="Evaluating", unit="batch"):
            index = order[start : start + batch_size]
            encoded = tokenizer([texts[i] for i in index], truncation=True, padding=True, return_tensors="pt")
            truncated += sum(truncated_flags(encoded))
            logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
            predictions[index] = logits.argmax(dim=-1).numpy()
    return {**classification_metrics(predictions, labels), "truncated_inputs": truncated}


def evaluate_model(
    model_dir: str,
    split: str = "test",
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    max_samples: int | None = None,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    threads: int | None = None,
    data_files: list[str] | None = None,
    max_length_factor: float | None = None,
) -> dict[str, Any]:
    """Load a saved model and its tokenizer, score it on `split` (or on local `data_files`, read in the recipe's
    columns), and report speed and peak memory."""
    if threads:
        torch.set_num_threads(threads)
    family = family_of(load_config(model_dir).model_type)
    tokenizer = load_tokenizer(model_dir)
    data = resolve_data_config(model_dir, dataset)
    started = time.perf_counter()
    if data_files:
        split_data = load_eval_files(data, data_files, family.evaluation_columns(data))
    else:
        split_data = load_eval_split(data, data_dir, split, family.evaluation_columns(data))
    if max_samples is not None:
        split_data = split_data.select(range(min(max_samples, len(split_data))))
    generation = {"num_beams": num_beams, "max_new_tokens": max_new_tokens, "max_length_factor": max_length_factor}
    generation = {key: value for key, value in generation.items() if value is not None}
    metrics = family.load_evaluator()(model_dir, tokenizer, split_data, data, batch_size, **generation)
    elapsed = time.perf_counter() - started
    if data_files:
        dataset_name = " + ".join(str(file) for file in data_files)
    else:
        dataset_name = data.dataset if resolve_data_dir(data_dir) is None else data.local_name
    return {
        "model": str(model_dir),
        "dataset": dataset_name,
        "split": "files" if data_files else split,
        "examples": len(split_data),
        "batch_size": batch_size,
        **metrics,
        "examples_per_second": round(len(split_data) / elapsed, 2),
        "threads": torch.get_num_threads(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }

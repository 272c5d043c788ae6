"""Classifiers initialised from a trained language model (`model.init_from` in a classification recipe), as ULMFiT
and SA-LSTM do.

The classifier takes the language model's tokenizer, embeddings and recurrent layers: `RnnLmModel` and
`RnnClassifierModel` name their weights alike (`rnn.embeddings.*`, `rnn.encoder.layers.{i}.forward_rnn.*`), so the
transfer copies every tensor of the language model's encoder to the parameter of the same name and checks that
each one arrived unchanged. The classifier's architecture (cell, sizes, layers) is the language model's; a recipe
that sets one of these to another value, or a tokenizer setting other than `model_max_length`, is an error. A
bidirectional classifier gets its right-to-left layers freshly initialised (the language model reads left to right).
"""

from typing import Any

import torch
from transformers import AutoModelForCausalLM

from .errors import HfRnnError
from .families import family_for_task
from .loading import load_config, load_model, load_tokenizer
from .runs import Run

ARCHITECTURE_KEYS = ("cell_type", "embedding_size", "hidden_size", "num_hidden_layers")
ENCODER_PREFIXES = ("rnn.embeddings.", "rnn.encoder.")
LANGUAGE_MODELING = "language_modeling"  # the recipe task of the family that transfers


class TransferError(HfRnnError, ValueError):
    """A language model cannot initialise this classifier; the message says why and what to change."""


def language_model_config(location: str):
    """The config of the language model run at `location` (a folder or Hub id)."""
    config = load_config(location)
    expected = family_for_task(LANGUAGE_MODELING).model_type
    if config.model_type != expected:
        raise TransferError(
            f"`model.init_from: {location}` is a {config.model_type!r} model: it must be a language model run "
            f"({expected!r}, trained with `task: {LANGUAGE_MODELING}`)."
        )
    return config


def classifier_architecture(model_section: dict[str, Any], location: str) -> dict[str, Any]:
    """The classifier's `model` section with the language model's architecture filled in (and `init_from` removed);
    a conflicting value is a `TransferError`."""
    config = language_model_config(location)
    section = {key: value for key, value in model_section.items() if key != "init_from"}
    for key in ARCHITECTURE_KEYS:
        value = getattr(config, key)
        if key in section and section[key] != value:
            raise TransferError(
                f"`model.{key}: {section[key]}` differs from the language model in {location} ({value}): "
                "a transferred encoder keeps the language model's architecture; drop the key."
            )
        section[key] = value
    return section


def check_tokenizer_section(recipe_raw: dict[str, Any], location: str) -> None:
    """The recipe's `tokenizer` section may set `model_max_length` only, or repeat the language model's values."""
    given = {key: value for key, value in (recipe_raw.get("tokenizer") or {}).items() if key != "model_max_length"}
    if not given:
        return
    learned = vars(Run(location).recipe().tokenizer)
    for key, value in given.items():
        if learned.get(key) != value:
            raise TransferError(
                f"`tokenizer.{key}: {value}` differs from the tokenizer of {location} ({learned.get(key)!r}): a "
                "transferred encoder reads the language model's tokens; remove the key (only "
                "`tokenizer.model_max_length` may be set)."
            )


def language_model_tokenizer(location: str, model_max_length: int):
    """The language model's tokenizer, truncating classifier inputs at `model_max_length`."""
    tokenizer = load_tokenizer(location)
    vocab_size = language_model_config(location).vocab_size
    if len(tokenizer) != vocab_size:
        raise TransferError(
            f"the tokenizer saved in {location} has {len(tokenizer)} tokens but its model {vocab_size}: the run "
            "folder is inconsistent."
        )
    tokenizer.model_max_length = model_max_length
    return tokenizer


def transfer_encoder(classifier: torch.nn.Module, location: str) -> list[str]:
    """Copy the language model's embeddings and recurrent layers into `classifier`; returns the names copied.

    Every copied tensor is checked equal afterwards; a language-model encoder tensor without a same-shaped home in
    the classifier is a `TransferError`."""
    source = {
        name: tensor
        for name, tensor in load_model(location, AutoModelForCausalLM).state_dict().items()
        if name.startswith(ENCODER_PREFIXES)
    }
    target = classifier.state_dict()
    misfits = [name for name, tensor in source.items() if name not in target or target[name].shape != tensor.shape]
    if misfits:
        raise TransferError(
            f"the classifier has no parameter of the same name and shape for {misfits[:3]} (of {len(misfits)}) "
            f"of {location}."
        )
    classifier.load_state_dict(source, strict=False)
    copied = classifier.state_dict()
    if not all(torch.equal(copied[name], tensor) for name, tensor in source.items()):
        raise TransferError(f"the encoder of {location} did not arrive unchanged in the classifier.")
    return sorted(source)

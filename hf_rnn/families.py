"""The model families hf_rnn ships: one table that registration, the Hub export, the model card, training,
evaluation and the command line read.

Adding a family means adding its model folder under `hf_rnn/models/`, its card template under
`hf_rnn/model_cards/<model_type>.md` and one `Family` entry in `FAMILIES`. What depends on the training path
(task adapters) or on the scoring code is named as `"module:attribute"` and imported on first use, so that reading
the table pulls in neither `transformers.trainer` nor the evaluation code.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from .errors import HfRnnError
from .models.rnn_classifier import (
    RnnClassifierConfig,
    RnnClassifierModel,
    RnnClassifierPreTrainedModel,
    RnnForSequenceClassification,
)
from .models.rnn_lm import RnnForCausalLM, RnnLmConfig, RnnLmModel, RnnLmPreTrainedModel
from .models.rnn_seq2seq import (
    RnnSeq2SeqConfig,
    RnnSeq2SeqForConditionalGeneration,
    RnnSeq2SeqModel,
    RnnSeq2SeqPreTrainedModel,
)


def load_attribute(reference: str) -> Any:
    """The object named `"package.module:attribute"`, imported now."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class CardMetric:
    """A metric a model card reports: its key in the run's results, its model-index type, how the card names it,
    and the metric's arguments in the model index."""

    key: str
    metric_type: str
    display_name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Family:
    """One model family: its classes, the recipe task that trains it and how the rest of hf_rnn treats it.

    Args:
        task: the recipe's `task` value that trains this family.
        config_class / base_model_class / head_model_class: the config, the headless model (`AutoModel`) and the
            model with its task head (`head_auto_class`).
        pretrained_class: the family's `PreTrainedModel` base; its `remote_*` attributes say which code files,
            Auto classes and pipelines a saved model ships.
        card_task_type: the model-index task type, also the Hub pipeline tag.
        card_metrics: what the model card reports, in order.
        evaluation_columns: the data columns `hf-rnn evaluate` reads, from a `DataConfig`.
        task_adapter: `"module:Class"` of the training adapter (imports the Trainer path).
        evaluator: `"module:function"` scoring a loaded split: `(model_dir, tokenizer, split, data, batch_size,
            num_beams, max_new_tokens) -> metrics`.
        describe: a short description of a saved `config.json` (as a dict), e.g. `"bidirectional gru"`.
    """

    task: str
    config_class: type
    base_model_class: type
    head_model_class: type
    head_auto_class: type
    pretrained_class: type
    card_task_type: str
    card_metrics: tuple[CardMetric, ...]
    evaluation_columns: Callable[[Any], list[str]]
    task_adapter: str
    evaluator: str
    describe: Callable[[dict[str, Any]], str]

    @property
    def model_type(self) -> str:
        return self.config_class.model_type

    def load_task_adapter(self):
        """The training adapter (a `hf_rnn.tasks.TaskAdapter` instance)."""
        return load_attribute(self.task_adapter)()

    def load_evaluator(self) -> Callable[..., dict[str, Any]]:
        return load_attribute(self.evaluator)


def describe_classifier(config: dict[str, Any]) -> str:
    return f"{'bi' if config.get('bidirectional') else ''}{config.get('cell_type')}"


def describe_seq2seq(config: dict[str, Any]) -> str:
    return f"{config.get('cell_type')} encoder-decoder, {config.get('attention_type')} attention"


def describe_language_model(config: dict[str, Any]) -> str:
    return f"{config.get('num_hidden_layers')}-layer {config.get('cell_type')} language model"


FAMILIES: tuple[Family, ...] = (
    Family(
        task="classification",
        config_class=RnnClassifierConfig,
        base_model_class=RnnClassifierModel,
        head_model_class=RnnForSequenceClassification,
        head_auto_class=AutoModelForSequenceClassification,
        pretrained_class=RnnClassifierPreTrainedModel,
        card_task_type="text-classification",
        card_metrics=(
            CardMetric("accuracy", "accuracy", "accuracy", {}),
            CardMetric("macro_f1", "f1", "macro-F1", {"average": "macro"}),
        ),
        evaluation_columns=lambda data: [data.text_column, data.label_column],
        task_adapter="hf_rnn.tasks:ClassificationTask",
        evaluator="hf_rnn.evaluation:evaluate_classifier",
        describe=describe_classifier,
    ),
    Family(
        task="translation",
        config_class=RnnSeq2SeqConfig,
        base_model_class=RnnSeq2SeqModel,
        head_model_class=RnnSeq2SeqForConditionalGeneration,
        head_auto_class=AutoModelForSeq2SeqLM,
        pretrained_class=RnnSeq2SeqPreTrainedModel,
        card_task_type="translation",
        card_metrics=(CardMetric("bleu", "bleu", "sacreBLEU", {}), CardMetric("chrf", "chrf", "chrF", {})),
        evaluation_columns=lambda data: ["translation"],
        task_adapter="hf_rnn.tasks:TranslationTask",
        evaluator="hf_rnn.translation:evaluate_translator",
        describe=describe_seq2seq,
    ),
    Family(
        task="language_modeling",
        config_class=RnnLmConfig,
        base_model_class=RnnLmModel,
        head_model_class=RnnForCausalLM,
        head_auto_class=AutoModelForCausalLM,
        pretrained_class=RnnLmPreTrainedModel,
        card_task_type="text-generation",
        card_metrics=(
            CardMetric("perplexity", "perplexity", "perplexity per token", {}),
            CardMetric("word_perplexity", "perplexity", "perplexity per word", {"unit": "word"}),
        ),
        evaluation_columns=lambda data: [data.text_column],
        task_adapter="hf_rnn.language_modeling:LanguageModelingTask",
        evaluator="hf_rnn.language_modeling:evaluate_language_model",
        describe=describe_language_model,
    ),
)


class UnknownFamilyError(HfRnnError, LookupError):
    """No hf_rnn family has this model type or task."""


def family_of(model_type: str) -> Family:
    """The family of a config's `model_type`."""
    for family in FAMILIES:
        if family.model_type == model_type:
            return family
    raise UnknownFamilyError(f"model_type {model_type!r} is not an hf_rnn family ({model_types()})")


def family_for_task(task: str) -> Family:
    """The family a recipe's `task` trains."""
    for family in FAMILIES:
        if family.task == task:
            return family
    raise UnknownFamilyError(f"task {task!r} is not one of hf_rnn's tasks ({tasks()})")


def model_types() -> list[str]:
    return [family.model_type for family in FAMILIES]


def tasks() -> list[str]:
    return [family.task for family in FAMILIES]


def register_families() -> None:
    """Register every family's config and models with the transformers Auto classes."""
    from transformers import AutoConfig

    for family in FAMILIES:
        AutoConfig.register(family.model_type, family.config_class, exist_ok=True)
        AutoModel.register(family.config_class, family.base_model_class, exist_ok=True)
        family.head_auto_class.register(family.config_class, family.head_model_class, exist_ok=True)

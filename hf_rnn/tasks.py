"""What differs between the two model families inside the one training path (`training.train`).

Each task adapter says which columns it needs, what text the tokenizer learns from, how examples are
encoded, which model, collator, metrics and Trainer class it uses. The loop itself lives in `training`.
"""

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict
from torch.utils.data import SequentialSampler
from transformers import (
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from .batching import TokenBatchingMixin
from .data import DataConfig, DataError
from .families import family_for_task
from .fine_tuning import DiscriminativeLearningRateMixin
from .metrics import classification_metrics, translation_metrics
from .model_card import write_model_card
from .models.rnn_classifier import RnnClassifierConfig, RnnForSequenceClassification
from .models.rnn_seq2seq import RnnSeq2SeqConfig, RnnSeq2SeqForConditionalGeneration
from .recipe import Recipe, RecipeError
from .tokenization import decode_token_ids
from .transfer import check_tokenizer_section, classifier_architecture, language_model_tokenizer, transfer_encoder


class RnnTrainer(DiscriminativeLearningRateMixin, TokenBatchingMixin, Trainer):
    """The `Trainer`, with token-based batches (`training.max_tokens_per_batch`) and discriminative learning rates
    (`training.layerwise_lr_decay`) as options."""


def build_config(config_class: type, values: dict[str, Any], fixed: dict[str, Any]):
    """Instantiate a model config from the recipe's `model` section plus values fixed by the data.

    Keys the data decides (vocabulary size, special token ids, labels) may not be set in the recipe.
    """
    clashes = sorted(set(values) & set(fixed))
    if clashes:
        raise RecipeError(f"`model` must not set {clashes}: they come from the tokenizer and the data.")
    try:
        return config_class(**values, **fixed)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"invalid `model` section: {error}") from error


class TaskAdapter:
    arguments_class: type = TrainingArguments
    trainer_class: type = RnnTrainer
    config_class: type
    task: str = ""  # the recipe `task` this adapter trains (its family in `hf_rnn.families`)
    eos_first: bool = False  # encoded texts start with `</s>` rather than end with it (`train_tokenizer`)
    # Stand-ins for the values the tokenizer and data decide, to validate a `model` section up front.
    placeholder_fixed: dict[str, Any] = {"vocab_size": 1000, "pad_token_id": 0}

    def validate_recipe(self, recipe: Recipe) -> None:
        """Fail on a bad `model` section (or an option this task cannot honour) before any data is read or tokenizer
        trained."""
        build_config(self.config_class, recipe.model, self.placeholder_fixed)

    def pretrained_tokenizer(self, recipe: Recipe):
        """A tokenizer the recipe takes from elsewhere instead of learning one (None: learn it)."""
        return None

    def required_columns(self, data: DataConfig) -> list[str]:
        raise NotImplementedError

    def validate_data(self, splits: DatasetDict, data: DataConfig) -> None:
        """Fail with a `DataError` naming the column on values training cannot use, before any training."""

    def tokenizer_texts(self, train_split: Dataset, data: DataConfig) -> Iterator[str]:
        raise NotImplementedError

    def preprocess_function(self, tokenizer, data: DataConfig) -> Callable[[dict], dict]:
        raise NotImplementedError

    def build_model(self, recipe: Recipe, tokenizer, train_split: Dataset, encoded_train: Dataset | None = None):
        """The model for `tokenizer` and the raw training split (`encoded_train`: the same split tokenized by
        `preprocess_function`, when the caller has it)."""
        raise NotImplementedError

    def collator(self, tokenizer, model):
        return DataCollatorWithPadding(tokenizer)

    def metrics_function(self, tokenizer) -> Callable:
        raise NotImplementedError

    def training_defaults(self, recipe: Recipe) -> dict[str, Any]:
        return {}

    def callbacks(self, recipe: Recipe) -> list:
        """Callbacks of this task (the training path adds the generic ones)."""
        return []

    def generation_kwargs(self, recipe: Recipe) -> dict[str, Any]:
        return {}

    def trainer_arguments(self, recipe: Recipe) -> dict[str, Any]:
        """Keyword arguments of `trainer_class` beyond the Trainer's own."""
        return {
            "max_tokens_per_batch": recipe.options.max_tokens_per_batch,
            "layerwise_lr_decay": recipe.options.layerwise_lr_decay,
        }

    def write_model_card(self, output_dir: Path, recipe: Recipe, results: dict[str, Any]) -> None:
        write_model_card(output_dir, family_for_task(self.task).model_type, recipe, results)


def label_names(split: Dataset, column: str) -> list[str]:
    """Label names from a `ClassLabel` feature, else the sorted distinct values."""
    feature = split.features[column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    return [str(value) for value in sorted(set(split[column]))]


class ClassificationTask(TaskAdapter):
    """Text classification; with `model.init_from: RUN` the encoder and tokenizer come from a language model run
    (`hf_rnn.transfer`)."""

    config_class = RnnClassifierConfig
    task = "classification"

    def model_section(self, recipe: Recipe) -> dict[str, Any]:
        """The config values of the recipe's `model` section (the language model's architecture with `init_from`)."""
        location = recipe.model.get("init_from")
        if location is None:
            return recipe.model
        check_tokenizer_section(recipe.raw, location)
        return classifier_architecture(recipe.model, location)

    def validate_recipe(self, recipe: Recipe) -> None:
        build_config(self.config_class, self.model_section(recipe), self.placeholder_fixed)

    def pretrained_tokenizer(self, recipe: Recipe):
        location = recipe.model.get("init_from")
        return None if location is None else language_model_tokenizer(location, recipe.tokenizer.model_max_length)

    def required_columns(self, data: DataConfig) -> list[str]:
        return [data.text_column, data.label_column]

    def validate_data(self, splits: DatasetDict, data: DataConfig) -> None:
        """Every split's labels must be integer ids of the classes that the training split defines."""
        column = data.label_column
        labels_by_split = {}
        for split_name, split in splits.items():
            values = split[column]
            missing = sum(value is None for value in values)
            if missing:
                raise DataError(f"label column {column!r} of split {split_name!r} has {missing} empty (null) value(s).")
            labels = np.asarray(values)
            if labels.size and not np.issubdtype(labels.dtype, np.integer):
                raise DataError(
                    f"label column {column!r} of split {split_name!r} must hold integer class ids, got "
                    f"{labels.dtype} values such as {labels[0]!r}: map them to 0..K-1 first."
                )
            labels_by_split[split_name] = labels
        names = label_names(splits["train"], column)
        for split_name, labels in labels_by_split.items():
            outside = np.flatnonzero((labels < 0) | (labels >= len(names)))
            if len(outside):
                raise DataError(
                    f"label column {column!r} of split {split_name!r} has {len(outside)} value(s) outside "
                    f"[0, {len(names)}) (row {outside[0]}: {labels[outside[0]]}); the training split defines "
                    f"{len(names)} classes {names}."
                )

    def tokenizer_texts(self, train_split: Dataset, data: DataConfig) -> Iterator[str]:
        for batch in train_split.iter(batch_size=1000):
            yield from batch[data.text_column]

    def preprocess_function(self, tokenizer, data: DataConfig) -> Callable[[dict], dict]:
        def encode(batch: dict) -> dict:
            encoded = tokenizer(batch[data.text_column], truncation=True)
            encoded["labels"] = batch[data.label_column]
            encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
            return encoded

        return encode

    def build_model(
        self, recipe: Recipe, tokenizer, train_split: Dataset, encoded_train: Dataset | None = None
    ) -> RnnForSequenceClassification:
        names = label_names(train_split, recipe.data.label_column)
        labels = np.asarray(train_split[recipe.data.label_column])
        if labels.min() < 0 or labels.max() >= len(names):
            raise RecipeError(
                f"labels in column {recipe.data.label_column!r} must be in [0, {len(names)}), "
                f"found {labels.min()}..{labels.max()}."
            )
        fixed = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "id2label": dict(enumerate(names)),
            "label2id": {name: index for index, name in enumerate(names)},
        }
        model = RnnForSequenceClassification(build_config(RnnClassifierConfig, self.model_section(recipe), fixed))
        if "init_from" in recipe.model:
            transfer_encoder(model, recipe.model["init_from"])
        return model

    def metrics_function(self, tokenizer) -> Callable:
        def compute(prediction) -> dict[str, float]:
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            return classification_metrics(np.argmax(logits, axis=-1), prediction.label_ids)

        return compute

    def training_defaults(self, recipe: Recipe) -> dict[str, Any]:
        return {"metric_for_best_model": "accuracy", "greater_is_better": True}

    def callbacks(self, recipe: Recipe) -> list:
        if recipe.options.gradient_flow_every is None:
            return []
        from .lab.diagnostics import GradientFlowCallback

        return [GradientFlowCallback(every_n_steps=recipe.options.gradient_flow_every)]


class TeacherForcingScheduleCallback(TrainerCallback):
    """Lowers `model.config.teacher_forcing_ratio` linearly from its start value to `final` over training."""

    def __init__(self, final: float):
        self.final = final
        self.start: float | None = None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        config = model.config
        if self.start is None:
            self.start = config.teacher_forcing_ratio
        progress = state.global_step / max(state.max_steps, 1)
        config.teacher_forcing_ratio = self.start + (self.final - self.start) * progress

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.start is not None:
            model.config.teacher_forcing_ratio = self.start


class TranslationMetrics:
    """`compute_metrics` for translation: sacreBLEU and chrF of the decoded predictions against the raw reference
    strings of the split being scored (`references`, set by `TranslationTrainer`), as `hf-rnn evaluate` scores them.
    Without them it falls back to the labels tokenized and decoded again, which lose what the tokenizer changes
    (normalisation, characters outside the vocabulary, words past `model_max_length`)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.references: list[str] | None = None

    def __call__(self, prediction) -> dict[str, float]:
        hypotheses = decode_token_ids(self.tokenizer, prediction.predictions)
        references = self.references
        if references is None or len(references) != len(hypotheses):
            references = decode_token_ids(self.tokenizer, prediction.label_ids)
        scores = translation_metrics(hypotheses, references)
        return {"bleu": scores["bleu"], "chrf": scores["chrf"]}


class TranslationTrainer(DiscriminativeLearningRateMixin, TokenBatchingMixin, Seq2SeqTrainer):
    """A `Seq2SeqTrainer` that scores against the raw references and leaves `generation_config` as it was.

    Before each evaluation or prediction, the `reference` column of the split (raw target strings, in the order of
    its rows, which is the order of the predictions: evaluation runs sequentially) is handed to `TranslationMetrics`.
    transformers' `Seq2SeqTrainer.prediction_step` fills every unset generation default into the model's own
    config (`max_length=20` next to our `max_new_tokens`): every later `generate()` then warned "Both
    `max_new_tokens` and `max_length` seem to have been set", and the saved model carried that contradiction.
    """

    def evaluate(self, eval_dataset=None, *args, **kwargs):
        self.use_references(eval_dataset if eval_dataset is not None else self.eval_dataset)
        return super().evaluate(eval_dataset, *args, **kwargs)

    def predict(self, test_dataset, *args, **kwargs):
        self.use_references(test_dataset)
        return super().predict(test_dataset, *args, **kwargs)

    def _get_eval_sampler(self, eval_dataset):
        """Rows in dataset order (the training path sorts evaluation splits by length already), so that predictions
        line up with `references`; transformers' length-grouped eval sampler would shuffle them."""
        return None if eval_dataset is None else SequentialSampler(eval_dataset)

    def use_references(self, dataset) -> None:
        if isinstance(self.compute_metrics, TranslationMetrics):
            has_references = isinstance(dataset, Dataset) and "reference" in dataset.column_names
            self.compute_metrics.references = dataset["reference"] if has_references else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer's loss; a training step asks the model for logits over its output tokens only (it reads the
        loss alone), unless the Trainer's own label smoother computes the loss from the logits."""
        if model.training and self.label_smoother is None and self.compute_loss_func is None:
            inputs = {**inputs, "full_vocabulary_logits": False}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def prediction_step(self, *args, **kwargs):
        saved = copy.deepcopy(self.model.generation_config)
        try:
            return super().prediction_step(*args, **kwargs)
        finally:
            self.model.generation_config = saved


class TranslationTask(TaskAdapter):
    """Sentence-pair translation from a `translation` column of `{lang: text}` dicts (the Hub schema)."""

    arguments_class = Seq2SeqTrainingArguments
    trainer_class = TranslationTrainer
    config_class = RnnSeq2SeqConfig
    task = "translation"
    placeholder_fixed = {
        "vocab_size": 1000,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "decoder_start_token_id": 2,
    }

    def required_columns(self, data: DataConfig) -> list[str]:
        return ["translation"]

    def validate_data(self, splits: DatasetDict, data: DataConfig) -> None:
        """Both languages of the recipe's direction must be fields of every split's `translation` column."""
        for split_name, split in splits.items():
            feature = split.features["translation"]
            languages = sorted(getattr(feature, "languages", None) or (feature if isinstance(feature, dict) else []))
            missing = [lang for lang in (data.source_lang, data.target_lang) if lang not in languages]
            if missing:
                raise DataError(
                    f"column 'translation' of split {split_name!r} has languages {languages}, not {missing}: "
                    "set `data.source_lang` / `data.target_lang`."
                )

    def tokenizer_texts(self, train_split: Dataset, data: DataConfig) -> Iterator[str]:
        """Both languages: one joint vocabulary, so source and target embeddings can be shared."""
        for batch in train_split.iter(batch_size=1000):
            for pair in batch["translation"]:
                yield pair[data.source_lang]
                yield pair[data.target_lang]

    def preprocess_function(self, tokenizer, data: DataConfig) -> Callable[[dict], dict]:
        def encode(batch: dict) -> dict:
            sources = [pair[data.source_lang] for pair in batch["translation"]]
            targets = [pair[data.target_lang] for pair in batch["translation"]]
            encoded = tokenizer(sources, text_target=targets, truncation=True)
            encoded["length"] = [len(s) + len(t) for s, t in zip(encoded["input_ids"], encoded["labels"])]
            encoded["target_length"] = [len(t) for t in encoded["labels"]]  # token batches pad the two apart
            encoded["reference"] = targets  # scored as they are (see `TranslationMetrics`), not tokenized and decoded
            return encoded

        return encode

    def build_model(
        self, recipe: Recipe, tokenizer, train_split: Dataset, encoded_train: Dataset | None = None
    ) -> RnnSeq2SeqForConditionalGeneration:
        """The model for the joint tokenizer; its output layer scores the training targets' tokens only (see
        `RnnSeq2SeqConfig.target_token_ids`) unless the recipe sets `model.target_token_ids` (null: every id)."""
        fixed = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.bos_token_id,
        }
        if "target_token_ids" not in recipe.model:
            fixed["target_token_ids"] = target_token_ids(tokenizer, train_split, recipe.data.target_lang, encoded_train)
        model = RnnSeq2SeqForConditionalGeneration(build_config(RnnSeq2SeqConfig, recipe.model, fixed))
        generation = model.generation_config
        generation.num_beams = recipe.options.generation_num_beams
        generation.max_new_tokens = recipe.options.generation_max_new_tokens
        return model

    def collator(self, tokenizer, model):
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)

    def metrics_function(self, tokenizer) -> "TranslationMetrics":
        return TranslationMetrics(tokenizer)

    def training_defaults(self, recipe: Recipe) -> dict[str, Any]:
        return {
            "predict_with_generate": True,
            "metric_for_best_model": "bleu",
            "greater_is_better": True,
            "generation_num_beams": recipe.options.generation_num_beams,
        }

    def callbacks(self, recipe: Recipe) -> list:
        if recipe.options.teacher_forcing_schedule == "linear":
            return [TeacherForcingScheduleCallback(recipe.options.teacher_forcing_final)]
        return []

    def generation_kwargs(self, recipe: Recipe) -> dict[str, Any]:
        return {
            "num_beams": recipe.options.generation_num_beams,
            "max_new_tokens": recipe.options.generation_max_new_tokens,
        }


def target_token_ids(
    tokenizer, train_split: Dataset, target_lang: str, encoded_train: Dataset | None = None
) -> list[int]:
    """The ids of the tokens in the training split's `target_lang` texts, plus every special token. From the
    `labels` of `encoded_train` when given (read as Arrow, no second tokenization of a big corpus)."""
    seen = np.zeros(len(tokenizer), dtype=bool)
    if encoded_train is not None:
        for batch in encoded_train.select_columns(["labels"]).with_format("arrow").iter(batch_size=100_000):
            seen[batch.column("labels").combine_chunks().flatten().to_numpy()] = True
    else:
        for batch in train_split.iter(batch_size=2000):
            encoded = tokenizer(text_target=[pair[target_lang] for pair in batch["translation"]], truncation=True)
            for ids in encoded["input_ids"]:
                seen[ids] = True
    seen[tokenizer.all_special_ids] = True
    return np.flatnonzero(seen).tolist()


def task_adapter(task: str) -> TaskAdapter:
    """The training adapter of a recipe's `task` (named by its family in `hf_rnn.families`)."""
    return family_for_task(task).load_task_adapter()

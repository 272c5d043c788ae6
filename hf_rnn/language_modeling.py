"""The `language_modeling` task: recurrent language models trained on token streams with truncated BPTT, and their
perplexity.

Training reads the texts as streams (`hf_rnn.streams`): each step is one window of every row and the recurrent state
carries from one window to the next, detached, as AWD-LSTM trains. Evaluation runs the same way over a split's
stream with fixed windows and reports the mean negative log-likelihood per token (`loss`), the perplexity per
subword token and per word. Words are whitespace-separated words plus one end-of-text per text (the `</s>` the
model predicts), so per-word perplexity compares across tokenizers: `exp(token NLL x tokens / words)`.
"""

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM
from transformers.trainer_utils import PredictionOutput

from .data import DataConfig
from .errors import HfRnnError
from .loading import load_model
from .models.rnn_lm import RnnForCausalLM, RnnLmConfig
from .recipe import Recipe, RecipeError
from .streams import BpttEpochCallback, BpttSampler, BpttWindows, single_window, stream_rows, token_stream
from .tasks import RnnTrainer, TaskAdapter, build_config
from .tokenization import clean_text

EVAL_BPTT = 70


def words_in(texts: list[str]) -> list[int]:
    """Whitespace words of each text, plus its end-of-text."""
    return [len(text.split()) + 1 for text in texts]


def token_order(encoded_train: Dataset, vocab_size: int) -> list[int]:
    """Token ids by descending frequency in the encoded training split (ties: lower id first), for the adaptive
    softmax's clusters."""
    counts = np.bincount(token_stream(encoded_train).numpy(), minlength=vocab_size)
    return np.lexsort((np.arange(vocab_size), -counts)).tolist()


@torch.no_grad()
def stream_loss(model, stream: torch.Tensor, rows: int, bptt: int = EVAL_BPTT) -> tuple[float, int]:
    """The summed negative log-likelihood of `stream` `(tokens,)` under `model` (evaluation mode), read as `rows`
    parallel streams in windows of `bptt` with the state carried; and the number of tokens predicted."""
    was_training = model.training
    model.eval()
    matrix = stream_rows(stream, min(rows, max(1, len(stream) // 2)))
    device = next(model.parameters()).device
    total, count, cache = 0.0, 0, None
    for start in range(0, matrix.shape[1] - 1, bptt):
        window = matrix[:, start : start + bptt + 1].to(device)
        output = model(input_ids=window[:, :-1], labels=window, cache=cache, use_cache=True)
        cache = output.cache
        predicted = window[:, 1:].numel()
        total += float(output.loss) * predicted
        count += predicted
    model.train(was_training)
    return total, count


def perplexity_metrics(nll: float, tokens: int, stream_tokens: int, words: int, prefix: str) -> dict[str, float]:
    """Loss per token and perplexity per token and per word (`words` of the `stream_tokens` tokens read)."""
    loss = nll / max(tokens, 1)
    per_word_nll = loss * stream_tokens / max(words, 1)
    return {
        f"{prefix}loss": round(loss, 4),
        f"{prefix}perplexity": round(math.exp(min(loss, 50.0)), 2),
        f"{prefix}word_perplexity": round(math.exp(min(per_word_nll, 50.0)), 2),
        f"{prefix}tokens": tokens,
    }


class LanguageModelingTrainer(RnnTrainer):
    """A `Trainer` that trains on BPTT windows of the training stream with the recurrent state carried between steps,
    and evaluates perplexity over a split's stream (see the module docstring). `per_device_train_batch_size` is the
    number of parallel stream rows; `bptt` / `variable_bptt` come from the recipe."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, bptt: int = 70, variable_bptt: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.bptt = bptt
        self.variable_bptt = variable_bptt
        self.model_accepts_loss_kwargs = False
        self.carried_state = None
        self.bptt_sampler: BpttSampler | None = None

    def get_train_dataloader(self) -> DataLoader:
        rows = stream_rows(
            token_stream(self.train_dataset),
            self.args.per_device_train_batch_size,
            num_replicas=self.args.world_size,
            rank=self.args.process_index,
        )
        if self.bptt_sampler is None:
            self.bptt_sampler = BpttSampler(rows.shape[1], self.bptt, self.variable_bptt, seed=self.args.seed)
            self.add_callback(BpttEpochCallback(self.bptt_sampler))
        return DataLoader(BpttWindows(rows), batch_sampler=self.bptt_sampler, collate_fn=single_window)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The window's loss, continuing from the previous window's state (none at the start of the stream)."""
        start = inputs.pop("window_start")
        past = self.carried_state if start > 0 else None
        outputs = model(**inputs, cache=past, use_cache=True)
        self.carried_state = outputs.cache.detach()
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def stream_metrics(self, dataset: Dataset, prefix: str) -> dict[str, float]:
        started = time.perf_counter()
        stream = token_stream(dataset)
        nll, tokens = stream_loss(self.model, stream, self.args.per_device_eval_batch_size)
        metrics = perplexity_metrics(nll, tokens, len(stream), int(sum(dataset["words"])), f"{prefix}_")
        runtime = time.perf_counter() - started
        metrics[f"{prefix}_runtime"] = round(runtime, 3)
        metrics[f"{prefix}_tokens_per_second"] = round(tokens / max(runtime, 1e-9), 1)
        return metrics

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **kwargs):
        metrics = self.stream_metrics(
            eval_dataset if eval_dataset is not None else self.eval_dataset, metric_key_prefix
        )
        if self.state.epoch is not None:
            metrics["epoch"] = self.state.epoch
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", **kwargs) -> PredictionOutput:
        return PredictionOutput(None, None, self.stream_metrics(test_dataset, metric_key_prefix))


class LanguageModelingTask(TaskAdapter):
    """A recurrent language model ([`RnnForCausalLM`]) on the texts of `data.text_column`."""

    trainer_class = LanguageModelingTrainer
    config_class = RnnLmConfig
    task = "language_modeling"
    eos_first = True  # a prompt then reads as the start of a text (the pipeline encodes it with special tokens)
    # A vocabulary above any adaptive-softmax cutoff: the tokenizer decides the real size (checked when building).
    placeholder_fixed = {"vocab_size": 1_000_000, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}

    def validate_recipe(self, recipe: Recipe) -> None:
        if recipe.options.max_tokens_per_batch is not None:
            raise RecipeError(
                "`training.max_tokens_per_batch` does not apply to language modeling: each batch is "
                "`per_device_train_batch_size` streams x about `bptt` tokens."
            )
        super().validate_recipe(recipe)

    def required_columns(self, data: DataConfig) -> list[str]:
        return [data.text_column]

    def tokenizer_texts(self, train_split: Dataset, data: DataConfig) -> Iterator[str]:
        for batch in train_split.iter(batch_size=1000):
            yield from batch[data.text_column]

    def preprocess_function(self, tokenizer, data: DataConfig) -> Callable[[dict], dict]:
        """Whole texts (no truncation; each starts with `</s>`, the end of the text before), their length and their
        number of words."""

        def encode(batch: dict) -> dict:
            texts = batch[data.text_column]
            encoded = tokenizer(texts, truncation=False, verbose=False)
            return {
                "input_ids": encoded["input_ids"],
                "length": [len(ids) for ids in encoded["input_ids"]],
                "words": words_in([clean_text(text) for text in texts]),
            }

        return encode

    def build_model(
        self, recipe: Recipe, tokenizer, train_split: Dataset, encoded_train: Dataset | None = None
    ) -> RnnForCausalLM:
        fixed = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
        if recipe.model.get("softmax", RnnLmConfig.softmax) == "adaptive" and "token_order" not in recipe.model:
            if encoded_train is None:
                encoded_train = train_split.map(self.preprocess_function(tokenizer, recipe.data), batched=True)
            fixed["token_order"] = token_order(encoded_train, len(tokenizer))
        model = RnnForCausalLM(build_config(RnnLmConfig, recipe.model, fixed))
        generation = model.generation_config
        generation.max_new_tokens = recipe.options.generation_max_new_tokens
        generation.do_sample = True
        generation.top_p = 0.9
        return model

    def collator(self, tokenizer, model):
        return single_window

    def metrics_function(self, tokenizer) -> None:
        return None

    def training_defaults(self, recipe: Recipe) -> dict[str, Any]:
        return {"metric_for_best_model": "loss", "greater_is_better": False}

    def trainer_arguments(self, recipe: Recipe) -> dict[str, Any]:
        return {
            "bptt": recipe.options.bptt,
            "variable_bptt": recipe.options.variable_bptt,
            "layerwise_lr_decay": recipe.options.layerwise_lr_decay,
        }


def evaluate_language_model(
    model_dir: str, tokenizer, split, data: DataConfig, batch_size: int, **generation: int
) -> dict[str, Any]:
    """Perplexity (per token and per word) of the language model in `model_dir` on the texts of `split`, read as
    `batch_size` parallel streams."""
    if generation:
        raise HfRnnError(f"{sorted(generation)} apply to translation models; {model_dir} is a language model.")
    model = load_model(model_dir, AutoModelForCausalLM)
    texts = [clean_text(text) for text in split[data.text_column]]
    ids = tokenizer(texts, truncation=False, verbose=False)["input_ids"]
    stream = torch.tensor([token for row in ids for token in row], dtype=torch.long)
    nll, tokens = stream_loss(model, stream, batch_size)
    return perplexity_metrics(nll, tokens, len(stream), sum(words_in(texts)), "")

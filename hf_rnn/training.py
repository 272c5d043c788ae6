"""One training path for both model families: recipe -> data -> tokenizer -> model -> Trainer -> results.

Run it as `hf-rnn train RECIPE.yaml --output-dir DIR` or `accelerate launch scripts/train.py RECIPE.yaml ...`.
What a run leaves in its output dir: the model (safetensors) and its config, the tokenizer, `recipe.yaml`
(the resolved recipe), `run_info.json` (command, data source, split sizes, hardware, versions),
`train_results.json`, `eval_results.json`, `test_results.json`, `all_results.json`, `trainer_state.json` (the log
history), checkpoints, the model's code files with `auto_map` (written by `save_pretrained`, see `hub`), and a model card
`README.md`. With `training.push_to_hub_repo` set, the run is then pushed to the Hub (`hub.push`).
"""

import dataclasses
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict
from transformers import EarlyStoppingCallback, PreTrainedTokenizerFast, set_seed

from .checkpoints import resolve_resume_checkpoint
from .data import DataConfig, load_task_splits
from .fine_tuning import GradualUnfreezingCallback
from .hub import push
from .memory import peak_rss_mb
from .model_card import write_run_info
from .network import hub_is_offline
from .recipe import DEFAULT_SEED, Recipe, RecipeError
from .runs import Run, write_recipe
from .stages import FirstStepCallback, StageClock, TimeLimitCallback
from .tasks import TaskAdapter, task_adapter
from .tokenization import train_tokenizer

logger = logging.getLogger(__name__)

# Defaults a recipe's `training` section may override; chosen so that a run keeps its best checkpoint,
# evaluates every epoch and never reaches for the network.
TRAINING_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "steps",
    "logging_steps": 50,
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "report_to": [],
    "train_sampling_strategy": "group_by_length",
    "ddp_find_unused_parameters": False,
    "use_cpu": not torch.cuda.is_available(),
    "dataloader_num_workers": 0,
    "seed": DEFAULT_SEED,
}


def prepare_tokenizer(
    recipe: Recipe,
    adapter: TaskAdapter,
    train_split,
    output_dir: Path,
    is_main: bool,
    checkpoint: str | os.PathLike | None = None,
):
    """Learn the tokenizer on the training split (main process), take the one the recipe names
    (`TaskAdapter.pretrained_tokenizer`), or load the one already saved.

    Other processes load what the main process saved in `output_dir`, so every rank uses the same vocabulary. A
    resumed run (`checkpoint` given) loads the checkpoint's tokenizer (else `output_dir`'s) on every rank, main
    included: the checkpoint's embeddings index that vocabulary.
    """
    if checkpoint is not None:
        for folder in (Path(checkpoint), output_dir):
            if (folder / "tokenizer.json").is_file():
                return PreTrainedTokenizerFast.from_pretrained(folder)
        raise RecipeError(f"cannot resume: no tokenizer.json in {str(checkpoint)!r} or {str(output_dir)!r}.")
    saved = output_dir / "tokenizer.json"
    if saved.is_file() and not is_main:
        return PreTrainedTokenizerFast.from_pretrained(output_dir)
    tokenizer = adapter.pretrained_tokenizer(recipe)
    if tokenizer is None:
        started = time.perf_counter()
        texts = adapter.tokenizer_texts(train_split, recipe.data)
        tokenizer = train_tokenizer(texts, recipe.tokenizer, eos_first=adapter.eos_first)
        logger.info(
            "learned a %d-token %s tokenizer in %.1f s",
            len(tokenizer),
            recipe.tokenizer.model,
            time.perf_counter() - started,
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(output_dir)
    return tokenizer


def add_lengths(splits, adapter: TaskAdapter, tokenizer, data_config: DataConfig):
    """Tokenize every split and add a `length` column (used for length-grouped batches).

    The cache fingerprint is each split's own plus a digest of the tokenizer's JSON and the data settings: the same
    text tokenized the same way is found in the `datasets` cache by every process of a DDP launch (each rank loads
    the saved tokenizer, an object `datasets` would otherwise fingerprint differently) and by a second run."""
    digest = hashlib.sha256(
        (
            tokenizer.backend_tokenizer.to_str() + repr(dataclasses.astuple(data_config)) + type(adapter).__name__
        ).encode()
    ).hexdigest()[:16]
    preprocess = adapter.preprocess_function(tokenizer, data_config)
    return DatasetDict(
        {
            name: split.map(
                preprocess,
                batched=True,
                remove_columns=split.column_names,
                desc=f"Tokenizing {name}",
                new_fingerprint=f"{split._fingerprint}-{digest}",
            )
            for name, split in splits.items()
        }
    )


def build_training_arguments(adapter: TaskAdapter, recipe: Recipe, output_dir: Path):
    """`TrainingArguments` from the defaults and the recipe; unknown or invalid keys raise `RecipeError`."""
    allowed = {field.name for field in dataclasses.fields(adapter.arguments_class) if field.init}
    if recipe.training.get("push_to_hub"):
        # The Trainer's own push would upload checkpoints and the pickled training_args.bin, without the model
        # code or card: hf_rnn has one way to publish.
        raise RecipeError("`training.push_to_hub` is not supported: set `training.push_to_hub_repo: user/name`.")
    unknown = sorted(set(recipe.training) - allowed)
    if unknown:
        raise RecipeError(
            f"unknown key(s) in `training`: {unknown}. Use {adapter.arguments_class.__name__} field names "
            "or the hf_rnn options (early_stopping_patience, threads, ...)."
        )
    arguments = {**TRAINING_DEFAULTS, **adapter.training_defaults(recipe), **recipe.training}
    # YAML 1.1 reads a bare `no` as False; `eval_strategy: no` means the strategy "no".
    arguments = {
        key: "no" if key.endswith("_strategy") and value is False else value for key, value in arguments.items()
    }
    try:
        return adapter.arguments_class(output_dir=str(output_dir), **arguments)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"invalid `training` section: {error}") from error


def train(
    recipe: Recipe,
    output_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
) -> dict[str, float]:
    """Train, evaluate on validation and test, save everything; returns the merged metrics."""
    started = time.perf_counter()
    clock = StageClock()
    output_dir = Path(output_dir)
    if recipe.options.threads:
        torch.set_num_threads(recipe.options.threads)
    adapter = task_adapter(recipe.task)
    adapter.validate_recipe(recipe)
    args = build_training_arguments(adapter, recipe, output_dir)
    if recipe.options.push_to_hub_repo and hub_is_offline():
        raise RecipeError(
            "`training.push_to_hub_repo` is set but the Hugging Face Hub is offline (HF_HUB_OFFLINE set or "
            "unreachable): unset it and upload the output dir later with `hf-rnn push`."
        )
    checkpoint = resolve_resume_checkpoint(resume, output_dir)
    set_seed(args.seed)

    splits = load_task_splits(recipe.data, data_dir, adapter.required_columns(recipe.data))
    adapter.validate_data(splits, recipe.data)
    clock.mark("data_loaded")
    with args.main_process_first(desc="tokenizer"):
        tokenizer = prepare_tokenizer(
            recipe, adapter, splits["train"], output_dir, args.process_index == 0, checkpoint=checkpoint
        )
    clock.mark("tokenizer_ready")
    with args.main_process_first(desc="tokenize datasets"):
        encoded = add_lengths(splits, adapter, tokenizer, recipe.data)
    clock.mark("tokenized")
    # Evaluation order does not change metrics; sorting by length keeps padding (and time) low.
    eval_split = encoded["validation"].sort("length")
    test_split = encoded["test"].sort("length")

    model = adapter.build_model(recipe, tokenizer, splits["train"], encoded["train"])
    clock.mark("model_built")
    callbacks = [*adapter.callbacks(recipe), FirstStepCallback(clock)]
    if recipe.options.gradual_unfreezing_steps is not None:
        callbacks.append(GradualUnfreezingCallback(recipe.options.gradual_unfreezing_steps))
    if recipe.options.max_train_minutes is not None:
        callbacks.append(TimeLimitCallback(recipe.options.max_train_minutes))
    if recipe.options.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe.options.early_stopping_patience))
    trainer = adapter.trainer_class(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=eval_split,
        processing_class=tokenizer,
        data_collator=adapter.collator(tokenizer, model),
        compute_metrics=adapter.metrics_function(tokenizer),
        callbacks=callbacks,
        **adapter.trainer_arguments(recipe),
    )
    if args.process_index == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_recipe(output_dir, recipe)
        write_run_info(output_dir, data_dir, {name: len(split) for name, split in encoded.items()})

    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    # The whole log history at the run root (checkpoints may keep only the best, earlier step): `hf-rnn plot`.
    trainer.save_state()

    train_metrics = dict(train_result.metrics)
    train_metrics["train_examples"] = len(encoded["train"])
    # Measured on what was actually seen (early stopping may end training before num_train_epochs).
    epochs_seen = trainer.state.epoch or 0.0
    runtime = max(train_metrics["train_runtime"], 1e-9)
    train_metrics["train_examples_seen_per_second"] = round(epochs_seen * len(encoded["train"]) / runtime, 2)
    train_metrics["train_tokens_seen_per_second"] = round(epochs_seen * sum(encoded["train"]["length"]) / runtime, 1)
    train_metrics["threads"] = torch.get_num_threads()
    train_metrics["world_size"] = args.world_size
    if torch.cuda.is_available():
        train_metrics["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    clock.mark("trained")
    trainer.log_metrics("train", train_metrics)
    trainer.save_metrics("train", {**train_metrics, "stages": clock.stages})

    # The whole validation set at the end (during training: the fixed subset of `data.max_eval_samples`).
    final_eval_split = encoded["validation_full"].sort("length") if "validation_full" in encoded else eval_split
    eval_metrics = trainer.evaluate(eval_dataset=final_eval_split, **adapter.generation_kwargs(recipe))
    trainer.log_metrics("eval", eval_metrics)
    trainer.save_metrics("eval", eval_metrics)

    test_output = trainer.predict(test_split, metric_key_prefix="test", **adapter.generation_kwargs(recipe))
    test_metrics = dict(test_output.metrics)
    test_metrics["test_examples"] = len(test_split)
    test_metrics["peak_rss_mb"] = round(peak_rss_mb(), 1)
    test_metrics["wall_time_s"] = round(time.perf_counter() - started, 1)
    trainer.log_metrics("test", test_metrics)
    trainer.save_metrics("test", test_metrics)

    if not trainer.is_world_process_zero():
        # The main process writes the run folder; reading its files here would race with those writes.
        return {**train_metrics, "stages": clock.stages, **eval_metrics, **test_metrics}
    adapter.write_model_card(output_dir, recipe, Run(output_dir).results())
    if recipe.options.push_to_hub_repo:
        push(output_dir, recipe.options.push_to_hub_repo)
    return Run(output_dir).results()

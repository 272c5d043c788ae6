"""The language-model family through the one training path: stream training with carried state, perplexity, the
saved run (generation, pipeline, card), `hf-rnn evaluate`, and classifiers initialised from it (`model.init_from`)."""

import json
import math

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, TrainingArguments, pipeline

from hf_rnn.commands import main
from hf_rnn.data import load_task_splits
from hf_rnn.errors import HfRnnError
from hf_rnn.language_modeling import LanguageModelingTrainer, stream_loss
from hf_rnn.loading import load_model, load_tokenizer
from hf_rnn.recipe import apply_overrides, load_recipe, recipe_from_dict
from hf_rnn.runs import Run
from hf_rnn.streams import token_stream
from hf_rnn.tasks import task_adapter
from hf_rnn.training import train
from hf_rnn.transfer import ARCHITECTURE_KEYS, TransferError, transfer_encoder

pytestmark = pytest.mark.integration

TINY_CLASSIFIER = [
    "training.num_train_epochs=1",
    "training.threads=1",
    "data.max_train_samples=300",
    "data.validation_size=100",
    "data.max_test_samples=100",
    "model.bidirectional=false",
]


def unigram_perplexity(run_dir) -> float:
    """Perplexity of the test stream under the training stream's token frequencies (add-one smoothed)."""
    recipe = Run(run_dir).recipe()
    adapter = task_adapter(recipe.task)
    tokenizer = load_tokenizer(run_dir)
    splits = load_task_splits(recipe.data, "sample", adapter.required_columns(recipe.data))
    streams = {
        name: token_stream(splits[name].map(adapter.preprocess_function(tokenizer, recipe.data), batched=True))
        for name in ("train", "test")
    }
    counts = np.bincount(streams["train"].numpy(), minlength=len(tokenizer)) + 1
    log_probabilities = np.log(counts / counts.sum())
    return float(np.exp(-log_probabilities[streams["test"].numpy()].mean()))


def test_the_language_model_learns_far_below_the_unigram_baseline(lm_run):
    results = Run(lm_run).results()
    assert {"test_perplexity", "test_word_perplexity", "eval_perplexity", "test_loss"} <= set(results)
    assert results["test_perplexity"] == pytest.approx(math.exp(results["test_loss"]), rel=1e-3)
    assert results["test_word_perplexity"] > results["test_perplexity"]  # words hold more than one token
    assert results["test_perplexity"] < 0.6 * unigram_perplexity(lm_run)


def test_the_run_saves_a_causal_lm_that_generates_and_has_a_card(lm_run):
    model = load_model(lm_run, AutoModelForCausalLM)
    tokenizer = load_tokenizer(lm_run)
    assert model.config.model_type == "rnn_lm" and model.config.token_order is not None
    prompt_ids = tokenizer("this movie")["input_ids"]  # as the pipeline encodes a prompt: the start of a text
    assert prompt_ids[0] == tokenizer.eos_token_id and tokenizer.eos_token_id not in prompt_ids[1:]
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    text = generator("this movie", max_new_tokens=12, do_sample=False)[0]["generated_text"]
    assert text.startswith("this movie") and len(text.split()) > 3
    # The prompt string plus the decoded continuation reads as the whole sequence decoded (not "this movieis").
    ids = generator("this movie", max_new_tokens=12, do_sample=False, return_tensors=True)[0]["generated_token_ids"]
    assert text == tokenizer.decode(ids, skip_special_tokens=True).strip()
    card = (lm_run / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: text-generation" in card and "perplexity per word" in card
    assert str(Run(lm_run).results()["test_perplexity"]) in card


def test_evaluate_cli_reproduces_the_test_perplexity(lm_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["evaluate", str(lm_run), "--data-dir", "sample", "--max-samples", "100", "--json", str(out)])
    assert code == 0
    scores = json.loads(out.read_text())
    assert scores["examples"] == 100 and scores["perplexity"] > 1 and scores["word_perplexity"] > scores["perplexity"]


def test_stream_evaluation_carries_the_state_across_windows(lm_run):
    model = load_model(lm_run, AutoModelForCausalLM)
    stream = torch.randint(4, 1000, (401,))
    one_window, tokens = stream_loss(model, stream, rows=1, bptt=400)
    windows, same_tokens = stream_loss(model, stream, rows=1, bptt=37)
    assert tokens == same_tokens == 400
    assert windows == pytest.approx(one_window, rel=1e-4)


def test_stream_training_carries_the_detached_state_between_windows(lm_run, tmp_path):
    """The trainer passes each window's final state into the next window of the same rows, and starts afresh at the
    start of the stream."""
    model = load_model(lm_run, AutoModelForCausalLM).train()
    trainer = LanguageModelingTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True))
    rows = torch.randint(4, 1000, (2, 21))
    first = trainer.compute_loss(model, {"input_ids": rows[:, :10], "labels": rows[:, :11], "window_start": 0})
    carried = trainer.carried_state
    assert carried is not None and first.requires_grad
    trainer.compute_loss(model, {"input_ids": rows[:, 10:20], "labels": rows[:, 10:21], "window_start": 10})
    assert trainer.carried_state is not carried
    assert carried.get_seq_length() == 10 and trainer.carried_state.get_seq_length() == 20
    trainer.compute_loss(model, {"input_ids": rows[:, :10], "labels": rows[:, :11], "window_start": 0})
    assert trainer.carried_state.get_seq_length() == 10


def transfer_recipe_raw(lm_run) -> dict:
    """`imdb_tiny` initialised from `lm_run`: its tokenizer and architecture keys left to the language model."""
    raw = load_recipe("imdb_tiny").raw
    raw["tokenizer"] = {"model_max_length": 64}
    raw["model"] = {key: value for key, value in raw["model"].items() if key not in ARCHITECTURE_KEYS}
    return apply_overrides(raw, [*TINY_CLASSIFIER, f"model.init_from={lm_run}"])


def classifier_recipe(lm_run, *overrides):
    return recipe_from_dict(apply_overrides(transfer_recipe_raw(lm_run), list(overrides)))


def test_init_from_copies_every_encoder_tensor_and_the_tokenizer(lm_run, tmp_path):
    results = train(classifier_recipe(lm_run, "training.num_train_epochs=0.05"), tmp_path / "clf", data_dir="sample")
    assert results["test_accuracy"] >= 0.0
    classifier_tokenizer = load_tokenizer(tmp_path / "clf")
    assert classifier_tokenizer.get_vocab() == load_tokenizer(lm_run).get_vocab()
    assert classifier_tokenizer.model_max_length == 64  # the classifier recipe's, not the language model's
    card = (tmp_path / "clf" / "README.md").read_text(encoding="utf-8")
    assert f"fine-tuned from the language model `{lm_run}`" in card and "trained from scratch" not in card

    recipe = classifier_recipe(lm_run)
    adapter = task_adapter("classification")
    tokenizer = adapter.pretrained_tokenizer(recipe)
    splits = load_task_splits(recipe.data, "sample", adapter.required_columns(recipe.data))
    classifier = adapter.build_model(recipe, tokenizer, splits["train"])
    language_model = load_model(lm_run, AutoModelForCausalLM).state_dict()
    copied = transfer_encoder(classifier, str(lm_run))
    assert len(copied) == 1 + 4 * language_model_layers(language_model)
    for name in copied:
        assert torch.equal(classifier.state_dict()[name], language_model[name]), name
    assert classifier.config.hidden_size == 64 and classifier.config.embedding_size == 32


def language_model_layers(state: dict) -> int:
    return len({name.split(".")[3] for name in state if name.startswith("rnn.encoder.layers.")})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hidden_size=48", "`model.hidden_size: 48` differs from the language model"),
        ("tokenizer.vocab_size=500", "`tokenizer.vocab_size: 500` differs from the tokenizer of"),
    ],
)
def test_init_from_refuses_a_mismatched_architecture_or_tokenizer(lm_run, tmp_path, capsys, override, message):
    recipe_file = tmp_path / "transfer.yaml"
    recipe_file.write_text(yaml.safe_dump(transfer_recipe_raw(lm_run)), encoding="utf-8")
    run_dir = tmp_path / "run"
    code = main(["train", str(recipe_file), "--data-dir", "sample", "--output-dir", str(run_dir), "--set", override])
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error
    assert not run_dir.exists()


def test_init_from_a_missing_run_or_a_classifier_is_one_line(tmp_path, classifier_run):
    adapter = task_adapter("classification")
    with pytest.raises(HfRnnError) as missing:
        adapter.validate_recipe(classifier_recipe(tmp_path / "nowhere"))
    assert "nowhere" in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(TransferError, match="must be a language model run"):
        adapter.validate_recipe(classifier_recipe(classifier_run))


def test_token_based_batches_are_refused_for_a_language_model_in_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    arguments = ["train", "imdb_lm_tiny", "--data-dir", "sample", "--output-dir", str(run_dir)]
    assert main([*arguments, "--set", "training.max_tokens_per_batch=2000"]) == 2
    error = capsys.readouterr().err
    assert "`training.max_tokens_per_batch` does not apply to language modeling" in error and "Traceback" not in error
    assert not run_dir.exists()

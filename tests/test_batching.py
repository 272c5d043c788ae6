"""Token-based batches (`hf_rnn.batching`): the invariants NMT users rely on."""

import json

import numpy as np
import pytest

from hf_rnn.batching import TokenBatchSampler

LENGTHS = np.random.default_rng(0).integers(3, 60, size=500).tolist() + [150, 7, 7, 7]  # one pair over the budget


def padded_tokens(batch: list[int], lengths: list[int]) -> int:
    return len(batch) * max(lengths[index] for index in batch)


def test_no_batch_over_the_budget_except_a_single_long_example():
    sampler = TokenBatchSampler(LENGTHS, max_tokens=120, seed=1)
    for batch in sampler:
        assert padded_tokens(batch, LENGTHS) <= 120 or len(batch) == 1
    assert [150] in [[LENGTHS[i] for i in batch] for batch in sampler]


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_every_example_exactly_once_per_epoch(epoch):
    sampler = TokenBatchSampler(LENGTHS, max_tokens=200, seed=3)
    sampler.set_epoch(epoch)
    seen = [index for batch in sampler for index in batch]
    assert sorted(seen) == list(range(len(LENGTHS)))


def test_order_follows_seed_and_epoch_and_the_number_of_batches_does_not():
    first, again, other_seed = (TokenBatchSampler(LENGTHS, 200, seed=seed) for seed in (3, 3, 4))
    assert list(first) == list(again) and list(first) != list(other_seed)
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0 and len(list(first)) == len(epoch0) == len(first)


def test_batches_are_length_grouped_with_little_padding():
    sampler = TokenBatchSampler(LENGTHS, max_tokens=400, seed=0)
    real = sum(LENGTHS)
    padded = sum(padded_tokens(batch, LENGTHS) for batch in sampler)
    assert padded / real < 1.1  # random batches of the same sizes pad far more
    batch_sizes = {len(batch) for batch in sampler}
    assert min(batch_sizes) < max(batch_sizes)  # short sentences come in larger batches


@pytest.mark.parametrize("replicas", [2, 3])
def test_ranks_see_disjoint_batches_and_the_same_number_of_steps(replicas):
    ranks = [TokenBatchSampler(LENGTHS, 200, seed=5, num_replicas=replicas, rank=rank) for rank in range(replicas)]
    per_rank = [list(sampler) for sampler in ranks]
    assert len({len(batches) for batches in per_rank}) == 1
    everything = ranks[0].all_batches()
    # Each rank's batches are its share of one list; only the padding to a multiple of the ranks repeats batches.
    repeated = len(per_rank[0]) * replicas - len(everything)
    assert 0 <= repeated < replicas
    flat = [index for batches in per_rank for batch in batches for index in batch]
    assert set(flat) == set(range(len(LENGTHS)))
    assert len(flat) - len(LENGTHS) == sum(len(batch) for batch in everything[:repeated])


def test_bad_budgets_and_ranks_are_refused():
    with pytest.raises(ValueError, match="positive"):
        TokenBatchSampler(LENGTHS, 0)
    with pytest.raises(ValueError, match="rank 2"):
        TokenBatchSampler(LENGTHS, 100, num_replicas=2, rank=2)


@pytest.mark.integration
def test_token_batched_training_runs_one_step_per_batch_and_stops_early_on_steps(tmp_path):
    """A recipe with `max_tokens_per_batch` trains on the sampler's batches; step-based evaluation with early
    stopping ends training once validation stops improving (learning rate 0: it never improves)."""
    from hf_rnn.recipe import load_recipe
    from hf_rnn.training import train

    overrides = [
        "training.max_tokens_per_batch=1500",
        "data.max_train_samples=200",
        "data.max_eval_samples=20",
        "data.max_test_samples=20",
        "model.hidden_size=16",
        "model.embedding_size=16",
        "tokenizer.vocab_size=300",
        "training.num_train_epochs=1",
        "training.threads=1",
    ]
    results = train(load_recipe("multi30k_tiny", overrides), tmp_path / "one-epoch", data_dir="sample")
    state = json.loads((tmp_path / "one-epoch" / "trainer_state.json").read_text())
    assert results["train_examples"] == 200 and 1 < state["global_step"] < 200 / 4  # many sentences per batch
    # The data path's stages are timed, in order, with the peak memory so far.
    stages = json.loads((tmp_path / "one-epoch" / "train_results.json").read_text())["stages"]
    names = ["data_loaded", "tokenizer_ready", "tokenized", "model_built", "first_step", "trained"]
    assert sorted(stages) == sorted(names)  # saved with sorted keys
    seconds = [stages[name]["seconds"] for name in names]
    assert seconds == sorted(seconds) and all(stages[name]["peak_rss_mb"] > 0 for name in names)

    stopping = [
        *overrides,
        "training.learning_rate=0.0",
        "training.warmup_steps=0",
        "training.num_train_epochs=20",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
        "training.save_strategy=steps",
        "training.save_steps=2",
        "training.early_stopping_patience=2",
    ]
    train(load_recipe("multi30k_tiny", stopping), tmp_path / "stopped", data_dir="sample")
    state = json.loads((tmp_path / "stopped" / "trainer_state.json").read_text())
    evaluations = [entry["step"] for entry in state["log_history"] if "eval_bleu" in entry]
    assert evaluations[:3] == [2, 4, 6] and state["global_step"] == 6  # 1 evaluation + 2 without improvement


@pytest.mark.integration
def test_a_time_limit_ends_training_and_the_run_still_evaluates(tmp_path):
    from hf_rnn.recipe import load_recipe
    from hf_rnn.training import train

    overrides = ["training.max_train_minutes=0", "training.num_train_epochs=50", "training.threads=1"]
    overrides += ["data.max_train_samples=64", "data.max_eval_samples=8", "data.max_test_samples=8"]
    results = train(load_recipe("imdb_tiny", overrides), tmp_path, data_dir="sample")
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 1 and "eval_accuracy" in results and "test_accuracy" in results


def test_separately_padded_parts_count_each_parts_longest():
    """Translation pads source and target apart: the budget holds `rows x (longest source + longest target)`."""
    rng = np.random.default_rng(1)
    parts = np.stack([rng.integers(2, 40, 300), rng.integers(2, 40, 300)], axis=1)
    sampler = TokenBatchSampler(parts, max_tokens=300, seed=0)
    for batch in sampler:
        assert len(batch) * int(parts[batch].max(axis=0).sum()) <= 300 or len(batch) == 1
    assert sorted(index for batch in sampler for index in batch) == list(range(300))

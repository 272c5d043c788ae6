"""Speed benchmark: our training and decoding paths side by side with naive references, in one process.

`hf-rnn benchmark [--quick] [--threads N] [--json FILE] [--only PART ...]` (or `python scripts/benchmark.py`) times,
on real batches of IMDB and Multi30k (the full data beside the checkout when present, else the bundled slices):

1. classifier training steps: ours (length-grouped batches as our Trainer's sampler makes them + the padding-exact
   encoder) against a padded, unpacked `nn.LSTM(bidirectional=True)` over random batches of the same examples, and
   against the `PackedSequence` approach on a random batch; ours and the packed reference compute the same function,
   and their losses are checked to agree;
2. seq2seq training steps: ours with Bahdanau attention + input feeding (step loop) and ours with Luong attention
   without input feeding (one recurrent call), on length-grouped batches and on the reference's own random batch,
   against a tutorial-style model (Python loop over target steps, attention energies re-projected from
   `[state; every encoder output]` at every step, teacher-forcing coin flip); with the coin flip turned off the
   reference computes our Bahdanau model exactly, and that is checked too;
3. decoding: our batched greedy and beam search through `generate()` against per-sentence greedy decoding as
   tutorials write it (one sentence at a time, argmax until EOS), whose outputs must equal our batched greedy;
4. the peak memory of every path (resident-set growth during its first run), and the FLOP/s of our classifier
   step against `torch.mm` at its GEMM shapes;
5. DDP scaling of the classifier (2 processes x N threads against 1 process x N threads, gloo).

Every timed path runs at the same model size, batch size and thread count; the paths of one comparison alternate
round by round (after warm-up rounds), so a background load slows them alike and the ratios stay fair. Medians are
reported. Benchmarks are not tests: `tests/test_benchmark.py` only checks that tiny settings run and report sanely.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import json
import math
import os
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .references import (
    PackedReferenceClassifier,
    PaddedReferenceClassifier,
    TutorialSeq2Seq,
    copy_classifier_weights,
    copy_seq2seq_weights,
    packed_reference_loss,
    padded_reference_loss,
    per_sentence_greedy,
    trim_after_eos,
    tutorial_inputs,
)
from .report import collect_targets

PARTS = ("classifier", "seq2seq", "decoding", "ddp")
SAMPLE_DATA_DIR = Path(__file__).resolve().parents[1] / "sample_data"
# The team's full data sits beside the checkout (`<repo>/../shared/data`); installed copies fall back to the sample.
SHARED_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
MIB = 2**20
# transformers' `LengthGroupedSampler` (our Trainer's `group_by_length`) sorts random mega-batches of 50 batches by
# length: our paths draw their batches from one such mega-batch, the references from the same examples in random order.
MEGABATCH_BATCHES = 50

# ------------------------------------------------------------------------------------------------ settings


@dataclass
class BenchmarkSettings:
    """What to run and at which sizes. The models and tokenizers are those of the shipped recipes
    `classifier_recipe` and `seq2seq_recipe`; a size left None is the recipe's (`quick()` and `tiny()` shrink the
    workload, `tiny()` the sizes too)."""

    threads: int = 1
    repeats: int = 5
    warmup: int = 1
    parts: tuple[str, ...] = PARTS
    data_dir: str | None = None
    seed: int = 0
    measure_memory: bool = True
    # The slow references (packed classifier, tutorial seq2seq, per-sentence greedy) run fewer rounds and batches.
    reference_batches: int = 1
    reference_repeats: int = 2
    mode: str = "full"
    # Classifier: the IMDB recipe's model (a 1-layer BiLSTM, mean+max pooling) and WordPiece tokenizer.
    classifier_recipe: str = "imdb_bilstm"
    classifier_batch_size: int = 32
    classifier_batches: int = 4
    classifier_max_length: int | None = None
    classifier_embedding_size: int | None = None
    classifier_hidden_size: int | None = None
    classifier_vocab_size: int | None = None
    classifier_tokenizer_texts: int = 5000
    # Seq2seq: the Multi30k recipe's model (BiLSTM encoder, LSTM decoder, tied embeddings) and joint BPE tokenizer.
    seq2seq_recipe: str = "multi30k_de_en"
    seq2seq_batch_size: int = 64
    seq2seq_batches: int = 4
    seq2seq_embedding_size: int | None = None
    seq2seq_hidden_size: int | None = None
    seq2seq_vocab_size: int | None = None
    seq2seq_tokenizer_pairs: int | None = None
    reference_teacher_forcing_ratio: float = 0.5
    # Decoding: our Luong model (briefly trained here unless `decode_model` names a saved one) on test sentences.
    decode_sentences: int = 128
    decode_batch_size: int = 64
    decode_num_beams: int = 5
    decode_max_new_tokens: int = 80
    decode_train_steps: int = 150
    decode_model: str | None = None
    # DDP: steps per process (length-grouped classifier batches) and alternating repeats of the 1- and 2-process runs.
    ddp_batches: int = 3
    ddp_repeats: int = 2
    ddp_world_size: int = 2

    def __post_init__(self):
        for prefix, recipe in (("classifier", self.recipe("classifier")), ("seq2seq", self.recipe("seq2seq"))):
            recipe_values = {
                "embedding_size": recipe.model["embedding_size"],
                "hidden_size": recipe.model["hidden_size"],
                "vocab_size": recipe.tokenizer.vocab_size,
                "max_length": recipe.tokenizer.model_max_length,
            }
            for name, value in recipe_values.items():
                field = f"{prefix}_{name}"
                if hasattr(self, field) and getattr(self, field) is None:
                    setattr(self, field, value)

    def recipe(self, family: str):
        """The shipped recipe (`"classifier"` or `"seq2seq"`) whose model and tokenizer the benchmark runs."""
        from ..recipe import load_recipe

        return load_recipe(self.classifier_recipe if family == "classifier" else self.seq2seq_recipe)

    @classmethod
    def quick(cls, **overrides) -> BenchmarkSettings:
        """Same model sizes on fewer and shorter batches (reviews cut at 400 tokens), fewer repeats, no memory
        profile, no DDP: under 2 minutes on 2 cores."""
        values = dict(
            mode="quick",
            repeats=3,
            measure_memory=False,
            reference_repeats=1,
            classifier_batches=2,
            classifier_max_length=400,
            classifier_tokenizer_texts=2000,
            seq2seq_batches=1,
            seq2seq_tokenizer_pairs=8000,
            decode_sentences=32,
            decode_batch_size=32,
            decode_train_steps=60,
            parts=tuple(part for part in PARTS if part != "ddp"),
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def tiny(cls, **overrides) -> BenchmarkSettings:
        """Toy sizes on the bundled sample for tests: seconds, and meaningless timings."""
        values = dict(
            mode="tiny",
            repeats=1,
            reference_repeats=1,
            data_dir="sample",
            classifier_batch_size=8,
            classifier_batches=2,
            classifier_max_length=96,
            classifier_embedding_size=16,
            classifier_hidden_size=16,
            classifier_vocab_size=800,
            classifier_tokenizer_texts=300,
            seq2seq_batch_size=8,
            seq2seq_batches=2,
            seq2seq_embedding_size=16,
            seq2seq_hidden_size=16,
            seq2seq_vocab_size=600,
            seq2seq_tokenizer_pairs=600,
            decode_sentences=8,
            decode_batch_size=4,
            decode_max_new_tokens=12,
            decode_train_steps=3,
            ddp_batches=2,
            ddp_repeats=1,
            parts=tuple(part for part in PARTS if part != "ddp"),
        )
        values.update(overrides)
        return cls(**values)


def resolve_benchmark_data_dir(data_dir: str | None) -> Path:
    """`--data-dir` (or `$HF_RNN_DATA_DIR`), else the full data beside the checkout, else the bundled sample."""
    from ..data import DATA_DIR_ENV, resolve_data_dir

    if data_dir is not None or os.environ.get(DATA_DIR_ENV):
        return resolve_data_dir(data_dir)
    return SHARED_DATA_DIR if (SHARED_DATA_DIR / "imdb").is_dir() else SAMPLE_DATA_DIR


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# ------------------------------------------------------------------------------------------------ measuring


@dataclass
class TimedPath:
    """One path of a comparison: `run` does its unit of work once (e.g. one training step on each of its batches),
    in `warmup` untimed rounds and then `repeats` timed ones."""

    run: Callable[[], Any]
    warmup: int
    repeats: int


def time_interleaved(paths: dict[str, TimedPath], measure_memory: bool = False) -> tuple[dict, dict]:
    """Run the paths round by round, each once per round while it has rounds left; returns the seconds of the timed
    runs per path, and (with `measure_memory`) the peak memory growth of each path's first (warm-up) run
    (`peak_rss_growth_mib`; a path without warm-up rounds gets no memory figure).

    The order rotates from round to round, so no path always runs first (or right after a slow one), and paths
    with fewer rounds (the slow references) run in the first rounds, interleaved with the others.
    """
    names = list(paths)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    memory: dict[str, float] = {}
    for round_index in range(max(path.warmup + path.repeats for path in paths.values())):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            path = paths[name]
            if round_index >= path.warmup + path.repeats:
                continue
            if round_index == 0 and path.warmup > 0 and measure_memory:
                memory[name] = peak_rss_growth_mib(path.run)
                continue
            started = time.perf_counter()
            path.run()
            elapsed = time.perf_counter() - started
            if round_index >= path.warmup:
                seconds[name].append(elapsed)
    return seconds, memory


def peak_rss_growth_mib(function: Callable[[], Any]) -> float | None:
    """How far this process's peak resident memory rises above its current level while `function` runs, in MiB.

    Free heap memory is first handed back to the system (`malloc_trim`) and the kernel's high-water mark is reset
    (`/proc/self/clear_refs`), so the figure is what the run itself needed at its peak: activations, gradients,
    optimizer state created in the run, oneDNN workspaces and every other temporary, tensor or not. Linux only
    (`None` elsewhere). (`torch.profiler`'s memory events were tried first: profiling the `PackedSequence`
    backward made the process grow by gigabytes.)
    """
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        return None
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        before = read_proc_status_kib("VmRSS")
        clear_refs.write_text("5")
    except OSError:
        return None
    function()
    return max(read_proc_status_kib("VmHWM") - before, 0) / 1024


def read_proc_status_kib(field: str) -> int:
    """A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def summarize(seconds: list[float], **per_run: float) -> dict[str, float]:
    """Median seconds per run and `<name>_per_s` rates for the quantities processed in one run."""
    median = statistics.median(seconds)
    summary = {"median_s": median, "min_s": min(seconds), "max_s": max(seconds), "runs": len(seconds)}
    for name, amount in per_run.items():
        summary[f"{name}_per_s"] = amount / median
    return summary


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Fused AdamW, as the Trainer uses by default (`optim="adamw_torch_fused"`); the same for every path."""
    return torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list, loss_of: Callable) -> None:
    """One optimizer step per batch: zero the gradients, forward, backward, update."""
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        optimizer.step()


def training_path(model: nn.Module, batches: list, loss_of: Callable, warmup: int, repeats: int) -> TimedPath:
    """A path that trains `model` (in training mode, with its own optimizer) for one step on each of `batches`."""
    model.train()
    return TimedPath(functools.partial(train_steps, model, make_optimizer(model), batches, loss_of), warmup, repeats)


def reference_rounds(settings: BenchmarkSettings) -> tuple[int, int]:
    """(warm-up, repeats) of the slow references: always one untimed warm-up run (a first run pays for allocator and
    oneDNN set-up; timing it made the quick classifier ratio 1.28 against 2.42 in the full run)."""
    return 1, settings.reference_repeats


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest: `(batch, max_len)` ids and the 0/1 attention mask."""
    max_len = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), max_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return input_ids, attention_mask


# ------------------------------------------------------------------------------------------------ classifier


@dataclass
class ClassifierBatch:
    """Right-padded ids `(batch, max_len)`, mask, labels `(batch,)` and the real lengths `(batch,)`."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor

    @property
    def real_tokens(self) -> int:
        return int(self.lengths.sum())


def classifier_batch(examples: Sequence[tuple[list[int], int]], pad_id: int) -> ClassifierBatch:
    input_ids, attention_mask = pad_sequences([ids for ids, _ in examples], pad_id)
    labels = torch.tensor([label for _, label in examples], dtype=torch.long)
    return ClassifierBatch(input_ids, attention_mask, labels, attention_mask.sum(1))


def random_batches(examples: list, batch_size: int, pad_id: int) -> list[ClassifierBatch]:
    """Batches in the given (random) order, each padded to its longest example, as a plain DataLoader makes them."""
    return [classifier_batch(examples[i : i + batch_size], pad_id) for i in range(0, len(examples), batch_size)]


def length_grouped_batches(examples: list, batch_size: int, pad_id: int) -> list[ClassifierBatch]:
    """The same examples sorted by length before batching, as `group_by_length` does within a mega-batch."""
    ordered = sorted(examples, key=lambda example: len(example[0]), reverse=True)
    return random_batches(ordered, batch_size, pad_id)


def evenly_spaced(items: list, count: int) -> list:
    """`count` items spread evenly from first to last (the longest to the shortest of length-sorted batches)."""
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def lstm_training_flops(batch_size: int, steps: int, input_size: int, hidden_size: int) -> float:
    """GEMM FLOPs of one LSTM direction, forward and backward, over a dense `(batch, steps)` batch.

    Forward: the input projection `(B*T, E) x (E, 4H)` and T recurrent `(B, H) x (H, 4H)` products, 2 FLOPs per
    multiply-add. Backward: the gradients with respect to the inputs and to the weights, each as large again.
    Gate nonlinearities and elementwise products are left out (a few percent).
    """
    forward = 2 * batch_size * steps * 4 * hidden_size * (input_size + hidden_size)
    return 3 * forward


def matmul_flops_per_s(shapes: list[tuple[int, int, int, int]], min_seconds: float = 0.2) -> dict[str, Any]:
    """`torch.mm` rate at each `(m, k, n, count)` shape (count = products per step) and the FLOP-weighted rate."""
    per_shape, total_flops, total_seconds = [], 0.0, 0.0
    for m, k, n, count in shapes:
        left, right = torch.randn(m, k), torch.randn(k, n)
        torch.mm(left, right)
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < min_seconds:
            torch.mm(left, right)
            calls += 1
        rate = 2 * m * k * n * calls / (time.perf_counter() - started)
        per_shape.append({"m": m, "k": k, "n": n, "gflop_per_s": rate / 1e9})
        flops = 2 * m * k * n * count
        total_flops += flops
        total_seconds += flops / rate
    return {"shapes": per_shape, "gflop_per_s": total_flops / total_seconds / 1e9}


def load_classifier_examples(settings: BenchmarkSettings, data_dir: Path, count: int, offset: int = 0):
    """A learned WordPiece tokenizer and `count` random (ids, label) training examples, truncated as in the recipe."""
    from ..tokenization import train_tokenizer

    rows = read_parquet_rows(data_dir / "imdb" / "train.parquet")
    tokenizer = train_tokenizer(
        (row["text"] for row in rows[: settings.classifier_tokenizer_texts]),
        dataclasses.replace(
            settings.recipe("classifier").tokenizer,
            vocab_size=settings.classifier_vocab_size,
            model_max_length=settings.classifier_max_length,
        ),
    )
    chosen = random.Random(settings.seed + offset).sample(range(len(rows)), count)
    encoded = tokenizer([rows[i]["text"] for i in chosen], truncation=True)["input_ids"]
    return tokenizer, [(ids, int(rows[i]["label"])) for ids, i in zip(encoded, chosen)]


def build_classifier(settings: BenchmarkSettings, tokenizer):
    """The classifier recipe's model at the settings' sizes, for `tokenizer`."""
    from ..models.rnn_classifier import RnnClassifierConfig, RnnForSequenceClassification
    from ..tasks import build_config

    torch.manual_seed(settings.seed)
    model = settings.recipe("classifier").model
    sizes = {"embedding_size": settings.classifier_embedding_size, "hidden_size": settings.classifier_hidden_size}
    fixed = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "id2label": {0: "neg", 1: "pos"},
        "label2id": {"neg": 0, "pos": 1},
    }
    return RnnForSequenceClassification(build_config(RnnClassifierConfig, {**model, **sizes}, fixed))


def ours_classifier_loss(model: nn.Module, batch: ClassifierBatch) -> torch.Tensor:
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss


def benchmark_classifier(settings: BenchmarkSettings, data_dir: Path) -> dict[str, Any]:
    """Training steps of our classifier against the padded and the packed references, on one mega-batch's examples."""
    batch_size, count = settings.classifier_batch_size, settings.classifier_batches
    tokenizer, examples = load_classifier_examples(settings, data_dir, batch_size * MEGABATCH_BATCHES)
    pad_id = tokenizer.pad_token_id
    # Ours: batches as our training sampler makes them, spread over the mega-batch from longest to shortest.
    # The padded reference: the first random batches of the same examples, as a shuffled DataLoader makes them.
    grouped = evenly_spaced(length_grouped_batches(examples, batch_size, pad_id), count)
    shuffled = random_batches(examples, batch_size, pad_id)[:count]
    # The packed reference is about ten times slower than the others: it runs on the first batches only.
    packed_batches = shuffled[: settings.reference_batches]

    ours = build_classifier(settings, tokenizer)
    sizes = (len(tokenizer), settings.classifier_embedding_size, settings.classifier_hidden_size, 2, pad_id)
    padded, packed = PaddedReferenceClassifier(*sizes), PackedReferenceClassifier(*sizes)
    copy_classifier_weights(padded, ours)
    copy_classifier_weights(packed, ours)

    # Same function, same batch (the first 8 examples of the first random batch), same weights, no dropout: ours
    # and the packed reference must give the same loss.
    check_batch = classifier_batch(examples[:8], pad_id)
    ours.eval(), packed.eval()
    with torch.no_grad():
        loss_ours = ours_classifier_loss(ours, check_batch).item()
        loss_packed = packed_reference_loss(packed, check_batch).item()
    equivalence = {
        "ours_vs_packed_loss": [loss_ours, loss_packed],
        "ours_vs_packed_loss_abs_diff": abs(loss_ours - loss_packed),
        "ours_equals_packed": abs(loss_ours - loss_packed) <= 1e-5,
    }

    # "ours" runs the batches our sampler makes; "ours_same_batch" the reference's random batches (the control that
    # separates the implementation from the batching).
    batches_of = {
        "ours": grouped,
        "ours_same_batch": shuffled,
        "padded_reference": shuffled,
        "packed_reference": packed_batches,
    }
    paths = {
        "ours": training_path(ours, grouped, ours_classifier_loss, settings.warmup, settings.repeats),
        "ours_same_batch": training_path(ours, shuffled, ours_classifier_loss, settings.warmup, settings.repeats),
        "padded_reference": training_path(padded, shuffled, padded_reference_loss, settings.warmup, settings.repeats),
        "packed_reference": training_path(packed, packed_batches, packed_reference_loss, *reference_rounds(settings)),
    }
    seconds, memory = time_interleaved(paths, settings.measure_memory)

    results: dict[str, Any] = {}
    for name, batches in batches_of.items():
        examples_run = sum(batch.input_ids.shape[0] for batch in batches)
        results[name] = summarize(
            seconds[name], examples=examples_run, tokens=sum(batch.real_tokens for batch in batches)
        )
        results[name]["batches"] = len(batches)
        results[name]["computed_positions"] = sum(batch.input_ids.numel() for batch in batches)
        results[name]["peak_rss_growth_mib"] = memory.get(name)
    results["ratios"] = {
        "ours_vs_padded_reference": results["ours"]["tokens_per_s"] / results["padded_reference"]["tokens_per_s"],
        "ours_same_batch_vs_padded_reference": results["ours_same_batch"]["tokens_per_s"]
        / results["padded_reference"]["tokens_per_s"],
        "ours_vs_packed_reference": results["ours"]["tokens_per_s"] / results["packed_reference"]["tokens_per_s"],
    }
    results["equivalence"] = equivalence
    results["data"] = {
        "megabatch_examples": len(examples),
        "mean_length": sum(len(ids) for ids, _ in examples) / len(examples),
        "batch_size": batch_size,
        "max_length": settings.classifier_max_length,
        "grouped_batch_shapes": [list(batch.input_ids.shape) for batch in grouped],
        "grouped_batch_real_tokens": [batch.real_tokens for batch in grouped],
        "random_batch_shapes": [list(batch.input_ids.shape) for batch in shuffled],
        "random_batch_real_tokens": [batch.real_tokens for batch in shuffled],
        "vocab_size": len(tokenizer),
    }
    results["model"] = {
        "embedding_size": settings.classifier_embedding_size,
        "hidden_size": settings.classifier_hidden_size,
        "bidirectional": True,
        "pooling": "mean_max",
        "optimizer": "AdamW (fused)",
    }
    results["flops"] = classifier_flops(settings, grouped, results["ours"]["median_s"])
    return results


def classifier_flops(settings: BenchmarkSettings, grouped: list[ClassifierBatch], seconds: float) -> dict[str, Any]:
    """Achieved LSTM GEMM FLOP/s of our training run against `torch.mm` measured at the same GEMM shapes."""
    embedding, hidden = settings.classifier_embedding_size, settings.classifier_hidden_size
    flops = 0.0
    for batch in grouped:
        batch_size, steps = batch.input_ids.shape
        flops += 2 * lstm_training_flops(batch_size, steps, embedding, hidden)  # two directions
    # The GEMMs of the longest batch, weighted as one direction's forward + backward does them.
    batch_size, steps = grouped[0].input_ids.shape
    rows, gates = batch_size * steps, 4 * hidden
    shapes = [
        (rows, embedding, gates, 1),  # input projection, all steps at once
        (rows, gates, embedding, 1),  # its input gradient
        (embedding, rows, gates, 1),  # its weight gradient
        (batch_size, hidden, gates, steps),  # recurrent product, once per step
        (batch_size, gates, hidden, steps),  # its input gradient, once per step
        (hidden, batch_size, gates, steps),  # its weight gradient, once per step
    ]
    matmul = matmul_flops_per_s(shapes, min_seconds=0.05 if settings.mode == "tiny" else 0.3)
    achieved = flops / seconds / 1e9
    return {
        "lstm_gflop_per_run": flops / 1e9,
        "achieved_gflop_per_s": achieved,
        "matmul_gflop_per_s_at_these_shapes": matmul["gflop_per_s"],
        "fraction_of_matmul": achieved / matmul["gflop_per_s"],
        "matmul_shapes": matmul["shapes"],
        "counted": "LSTM GEMMs only (input and recurrent products, forward + input/weight gradients), both "
        "directions, over the dense length-grouped batches ours runs; the whole step time (embedding, pooling, "
        "loss, Adam) is the denominator",
    }


# ------------------------------------------------------------------------------------------------ seq2seq


@dataclass
class TranslationBatch:
    """Source ids `(batch, src_len)` with mask, labels `(batch, tgt_len)` (-100 at padding) and the count of
    target tokens that carry loss."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    @property
    def target_tokens(self) -> int:
        return int((self.labels != -100).sum())


def translation_batches(pairs: list[dict], batch_size: int, pad_id: int) -> list[TranslationBatch]:
    batches = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        input_ids, attention_mask = pad_sequences([pair["input_ids"] for pair in chunk], pad_id)
        labels, label_mask = pad_sequences([pair["labels"] for pair in chunk], pad_id)
        batches.append(TranslationBatch(input_ids, attention_mask, labels.masked_fill(label_mask == 0, -100)))
    return batches


def grouped_translation_batches(pairs: list[dict], batch_size: int, pad_id: int) -> list[TranslationBatch]:
    """Pairs sorted by source + target length before batching, as our Trainer's `group_by_length` does."""
    ordered = sorted(pairs, key=lambda pair: len(pair["input_ids"]) + len(pair["labels"]), reverse=True)
    return translation_batches(ordered, batch_size, pad_id)


def load_translation_data(settings: BenchmarkSettings, data_dir: Path):
    """A joint BPE tokenizer learned on the training pairs (de + en), the training rows and the test rows."""
    from ..tokenization import train_tokenizer

    train_rows = [row["translation"] for row in read_parquet_rows(data_dir / "multi30k" / "train.parquet")]
    test_rows = [row["translation"] for row in read_parquet_rows(data_dir / "multi30k" / "test.parquet")]
    tokenizer_rows = train_rows[: settings.seq2seq_tokenizer_pairs]
    tokenizer = train_tokenizer(
        (text for pair in tokenizer_rows for text in (pair["de"], pair["en"])),
        dataclasses.replace(settings.recipe("seq2seq").tokenizer, vocab_size=settings.seq2seq_vocab_size),
    )
    return tokenizer, train_rows, test_rows


def encode_pairs(tokenizer, rows: list[dict]) -> list[dict]:
    encoded = tokenizer([row["de"] for row in rows], text_target=[row["en"] for row in rows], truncation=True)
    return [{"input_ids": s, "labels": t} for s, t in zip(encoded["input_ids"], encoded["labels"])]


def build_seq2seq(settings: BenchmarkSettings, tokenizer, attention_type: str, input_feeding: bool):
    """The seq2seq recipe's model at the settings' sizes with the given attention and input feeding."""
    from ..models.rnn_seq2seq import RnnSeq2SeqConfig, RnnSeq2SeqForConditionalGeneration
    from ..tasks import build_config

    torch.manual_seed(settings.seed)
    model = {
        **settings.recipe("seq2seq").model,
        "embedding_size": settings.seq2seq_embedding_size,
        "hidden_size": settings.seq2seq_hidden_size,
        "attention_type": attention_type,
        "input_feeding": input_feeding,
    }
    fixed = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "decoder_start_token_id": tokenizer.bos_token_id,
    }
    return RnnSeq2SeqForConditionalGeneration(build_config(RnnSeq2SeqConfig, model, fixed))


def ours_seq2seq_loss(model: nn.Module, batch: TranslationBatch) -> torch.Tensor:
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss


def benchmark_seq2seq(settings: BenchmarkSettings, tokenizer, train_rows: list[dict]) -> dict[str, Any]:
    """Training steps of our two decoders (on grouped batches and on the reference's batch) against the reference."""
    batch_size, pad_id, start_id = settings.seq2seq_batch_size, tokenizer.pad_token_id, tokenizer.bos_token_id
    chosen = random.Random(settings.seed).sample(range(len(train_rows)), batch_size * MEGABATCH_BATCHES)
    pairs = encode_pairs(tokenizer, [train_rows[i] for i in chosen])
    # Ours: length-grouped batches as our Trainer makes them. The reference (far slower) runs on the first random
    # batch of the same pairs; ours also runs on that very batch, which isolates the implementation.
    grouped = evenly_spaced(grouped_translation_batches(pairs, batch_size, pad_id), settings.seq2seq_batches)
    reference_batches = translation_batches(pairs, batch_size, pad_id)[: settings.reference_batches]
    tutorial_batches = [tutorial_inputs(batch, pad_id, start_id) for batch in reference_batches]

    bahdanau = build_seq2seq(settings, tokenizer, "bahdanau", input_feeding=True)
    luong = build_seq2seq(settings, tokenizer, "luong_general", input_feeding=False)
    reference = TutorialSeq2Seq(
        len(tokenizer), settings.seq2seq_embedding_size, settings.seq2seq_hidden_size, pad_id, label_smoothing=0.1
    )
    copy_seq2seq_weights(reference, bahdanau)

    # With the coin flip off and no dropout, the reference is our Bahdanau model written differently.
    bahdanau.eval(), reference.eval()
    with torch.no_grad():
        loss_ours = ours_seq2seq_loss(bahdanau, reference_batches[0]).item()
        loss_reference = reference(*tutorial_batches[0], teacher_forcing_ratio=1.0, coin=random.Random(0)).item()
    equivalence = {
        "bahdanau_vs_reference_loss": [loss_ours, loss_reference],
        "bahdanau_vs_reference_loss_abs_diff": abs(loss_ours - loss_reference),
        "bahdanau_equals_reference": abs(loss_ours - loss_reference) <= 1e-5,
    }

    coin = random.Random(settings.seed)
    ratio = settings.reference_teacher_forcing_ratio

    def reference_loss(model: TutorialSeq2Seq, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return model(*inputs, teacher_forcing_ratio=ratio, coin=coin)

    rounds = (settings.warmup, settings.repeats)
    batches_of = {
        "ours_bahdanau_input_feeding": grouped,
        "ours_luong_fast_path": grouped,
        "ours_bahdanau_input_feeding_same_batch": reference_batches,
        "ours_luong_fast_path_same_batch": reference_batches,
        "tutorial_reference": reference_batches,
    }
    models_of = {"bahdanau": bahdanau, "luong": luong}
    paths = {
        name: training_path(models_of[name.split("_")[1]], batches_of[name], ours_seq2seq_loss, *rounds)
        for name in batches_of
        if name.startswith("ours_")
    }
    paths["tutorial_reference"] = training_path(
        reference, tutorial_batches, reference_loss, *reference_rounds(settings)
    )
    seconds, memory = time_interleaved(paths, settings.measure_memory)

    results: dict[str, Any] = {}
    for name, path_batches in batches_of.items():
        results[name] = summarize(
            seconds[name],
            target_tokens=sum(batch.target_tokens for batch in path_batches),
            sentences=sum(batch.input_ids.shape[0] for batch in path_batches),
        )
        results[name]["batches"] = len(path_batches)
        results[name]["peak_rss_growth_mib"] = memory.get(name)
    reference_rate = results["tutorial_reference"]["target_tokens_per_s"]
    results["ratios"] = {
        f"{name[len('ours_') :]}_vs_reference": results[name]["target_tokens_per_s"] / reference_rate
        for name in paths
        if name.startswith("ours_")
    }
    results["equivalence"] = equivalence
    results["data"] = {
        "megabatch_pairs": len(pairs),
        "batch_size": batch_size,
        "mean_source_length": sum(len(pair["input_ids"]) for pair in pairs) / len(pairs),
        "mean_target_length": sum(len(pair["labels"]) for pair in pairs) / len(pairs),
        "grouped_batch_shapes": [[*b.input_ids.shape, b.labels.shape[1]] for b in grouped],
        "reference_batch_shapes": [[*b.input_ids.shape, b.labels.shape[1]] for b in reference_batches],
        "vocab_size": len(tokenizer),
    }
    results["model"] = {
        "embedding_size": settings.seq2seq_embedding_size,
        "hidden_size": settings.seq2seq_hidden_size,
        "encoder": "1-layer BiLSTM",
        "decoder": "1-layer LSTM",
        "reference_teacher_forcing_ratio": ratio,
        "ours_teacher_forcing_ratio": 1.0,
        "optimizer": "AdamW (fused)",
    }
    return results


# ------------------------------------------------------------------------------------------------ decoding


@torch.inference_mode()
def batched_generate(
    model: nn.Module, sources: list[list[int]], batch_size: int, num_beams: int, max_new_tokens: int
) -> list[list[int]]:
    """Our decoding path: length-sorted batches through `generate()` (as `hf_rnn.translation` does), outputs
    returned in the input order and cut after their first EOS."""
    pad_id, eos_id = model.config.pad_token_id, model.config.eos_token_id
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    outputs: list[list[int]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        input_ids, attention_mask = pad_sequences([sources[i] for i in index], pad_id)
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            num_beams=num_beams,
            do_sample=False,
            max_new_tokens=max_new_tokens,
        )
        for i, row in zip(index, generated.tolist()):
            outputs[i] = trim_after_eos(row, eos_id)
    return outputs


def train_decoding_model(settings: BenchmarkSettings, tokenizer, train_rows: list[dict]) -> tuple[nn.Module, dict]:
    """Our Luong model (the Multi30k recipe) after a few hundred teacher-forced steps, so that it ends sentences
    with EOS at plausible lengths: an untrained model never stops, which would make every path decode to the limit."""
    model = build_seq2seq(settings, tokenizer, "luong_general", input_feeding=False)
    batch_size = settings.seq2seq_batch_size
    count = min(len(train_rows), batch_size * settings.decode_train_steps)
    chosen = random.Random(settings.seed + 1).sample(range(len(train_rows)), count)
    batches = translation_batches(
        encode_pairs(tokenizer, [train_rows[i] for i in chosen]), batch_size, tokenizer.pad_token_id
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)
    model.train()
    started = time.perf_counter()
    losses = []
    for step in range(settings.decode_train_steps):
        batch = batches[step % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = ours_seq2seq_loss(model, batch)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    info = {
        "source": f"trained here: {settings.decode_train_steps} steps of batch {batch_size}, AdamW 3e-3",
        "train_seconds": time.perf_counter() - started,
        "final_loss": statistics.fmean(losses[-10:]) if losses else math.nan,
    }
    return model.eval(), info


def load_decoding_model(settings: BenchmarkSettings, tokenizer, train_rows: list[dict]) -> tuple[nn.Module, Any, dict]:
    if settings.decode_model is None:
        model, info = train_decoding_model(settings, tokenizer, train_rows)
        return model, tokenizer, info
    from transformers import AutoModelForSeq2SeqLM

    from ..loading import load_model, load_tokenizer  # safetensors only, one-line errors

    model = load_model(settings.decode_model, AutoModelForSeq2SeqLM)
    return model, load_tokenizer(settings.decode_model), {"source": settings.decode_model}


def benchmark_decoding(settings: BenchmarkSettings, tokenizer, train_rows: list[dict], test_rows: list[dict]):
    """Sentences/s of our batched greedy and beam search against per-sentence greedy, on test sentences."""
    model, tokenizer, model_info = load_decoding_model(settings, tokenizer, train_rows)
    rows = test_rows[: settings.decode_sentences]
    sources = tokenizer([row["de"] for row in rows], truncation=True)["input_ids"]
    references = tokenizer(text_target=[row["en"] for row in rows], truncation=True)["input_ids"]
    max_new, batch_size, beams = settings.decode_max_new_tokens, settings.decode_batch_size, settings.decode_num_beams
    beam_name = f"ours_batched_beam{beams}"

    outputs: dict[str, list[list[int]]] = {}

    def keeping_outputs(name: str, decode: Callable[[], list[list[int]]]) -> Callable[[], None]:
        def run() -> None:
            outputs[name] = decode()

        return run

    rounds = (settings.warmup, settings.repeats)
    paths = {
        "per_sentence_greedy_reference": TimedPath(
            keeping_outputs("per_sentence_greedy_reference", lambda: per_sentence_greedy(model, sources, max_new)),
            *reference_rounds(settings),
        ),
        "ours_batched_greedy": TimedPath(
            keeping_outputs("ours_batched_greedy", lambda: batched_generate(model, sources, batch_size, 1, max_new)),
            *rounds,
        ),
        beam_name: TimedPath(
            keeping_outputs(beam_name, lambda: batched_generate(model, sources, batch_size, beams, max_new)), *rounds
        ),
    }
    seconds, memory = time_interleaved(paths, settings.measure_memory)
    per_sentence, batched = outputs["per_sentence_greedy_reference"], outputs["ours_batched_greedy"]
    matches = sum(a == b for a, b in zip(per_sentence, batched))

    results: dict[str, Any] = {}
    for name in paths:
        new_tokens = sum(len(tokens) - 1 for tokens in outputs[name])
        results[name] = summarize(seconds[name], sentences=len(sources), generated_tokens=new_tokens)
        results[name]["mean_output_length"] = new_tokens / len(sources)
        results[name]["peak_rss_growth_mib"] = memory.get(name)
    reference_rate = results["per_sentence_greedy_reference"]["sentences_per_s"]
    results["ratios"] = {
        "batched_greedy_vs_per_sentence_greedy": results["ours_batched_greedy"]["sentences_per_s"] / reference_rate,
        f"batched_beam{beams}_vs_per_sentence_greedy": results[beam_name]["sentences_per_s"] / reference_rate,
    }
    results["equivalence"] = {
        "greedy_identical_sentences": matches,
        "sentences": len(sources),
        "batched_greedy_equals_per_sentence": matches == len(sources),
    }
    results["data"] = {
        "sentences": len(sources),
        "batch_size": batch_size,
        "num_beams": beams,
        "max_new_tokens": max_new,
        "mean_source_length": sum(map(len, sources)) / len(sources),
        "mean_reference_length": sum(map(len, references)) / len(references),
        "sentences_at_limit_greedy": sum(len(tokens) - 1 >= max_new for tokens in batched),
    }
    results["model"] = model_info
    return results


# ------------------------------------------------------------------------------------------------ DDP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_worker(rank: int, world_size: int, payload_path: str, port: int, threads: int, result_dir: str) -> None:
    """One process of the DDP measurement: train on this rank's batches, timed between two barriers."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from ..models.rnn_classifier import RnnClassifierConfig, RnnForSequenceClassification

    torch.set_num_threads(threads)
    payload = torch.load(payload_path, weights_only=False)
    model = RnnForSequenceClassification(RnnClassifierConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.train()
    if world_size > 1:
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        model = DistributedDataParallel(model)
    optimizer = make_optimizer(model)
    batches = payload["batches"][rank]
    # `ours_classifier_loss` calls the module it gets: the DDP wrapper, whose forward sets up the gradient all-reduce.
    train_steps(model, optimizer, batches[:1], ours_classifier_loss)  # warm-up
    if world_size > 1:
        dist.barrier()
    started = time.perf_counter()
    train_steps(model, optimizer, batches, ours_classifier_loss)
    if world_size > 1:
        dist.barrier()
    elapsed = time.perf_counter() - started
    tokens = sum(batch.real_tokens for batch in batches)
    Path(result_dir, f"rank{rank}.json").write_text(json.dumps({"seconds": elapsed, "tokens": tokens}))
    if world_size > 1:
        dist.destroy_process_group()


def run_ddp_once(payload_path: str, world_size: int, threads: int) -> dict[str, float]:
    """Spawn `world_size` processes (no DDP wrapper for one) and return their summed tokens/s."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as result_dir:
        mp.start_processes(
            ddp_worker,
            args=(world_size, payload_path, free_port(), threads, result_dir),
            nprocs=world_size,
            start_method="spawn",
        )
        ranks = [json.loads(Path(result_dir, f"rank{r}.json").read_text()) for r in range(world_size)]
    seconds = max(rank["seconds"] for rank in ranks)
    tokens = sum(rank["tokens"] for rank in ranks)
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def benchmark_ddp(settings: BenchmarkSettings, data_dir: Path) -> dict[str, Any]:
    """Tokens/s of our classifier with `ddp_world_size` processes against one process running rank 0's batches."""
    world, batch_size = settings.ddp_world_size, settings.classifier_batch_size
    tokenizer, examples = load_classifier_examples(settings, data_dir, batch_size * MEGABATCH_BATCHES, offset=2)
    grouped = length_grouped_batches(examples, batch_size, tokenizer.pad_token_id)
    # Pairs of neighbouring (similar-length) batches spread over the mega-batch; each pair is split between the
    # ranks, so that they do similar work at each step.
    starts = evenly_spaced(list(range(0, len(grouped) - world + 1, world)), settings.ddp_batches)
    per_rank = {rank: [grouped[start + rank] for start in starts] for rank in range(world)}
    model = build_classifier(settings, tokenizer)
    with tempfile.TemporaryDirectory() as folder:
        payload_path = os.path.join(folder, "payload.pt")
        torch.save(
            {"config": model.config.to_dict(), "state_dict": model.state_dict(), "batches": per_rank}, payload_path
        )
        single, multi = [], []
        for _ in range(settings.ddp_repeats):
            single.append(run_ddp_once(payload_path, 1, settings.threads))
            multi.append(run_ddp_once(payload_path, world, settings.threads))
    single_rate = statistics.median(run["tokens_per_s"] for run in single)
    multi_rate = statistics.median(run["tokens_per_s"] for run in multi)
    return {
        "one_process": {"tokens_per_s": single_rate, "runs": single},
        f"{world}_processes": {"tokens_per_s": multi_rate, "runs": multi},
        "ratios": {f"{world}x{settings.threads}_vs_1x{settings.threads}": multi_rate / single_rate},
        "data": {"batches_per_process": settings.ddp_batches, "batch_size": batch_size, "backend": "gloo"},
        "caveat": "needs as many idle cores as processes x threads; with another job on the machine this ratio "
        "measures the contention, not DDP",
    }


# ------------------------------------------------------------------------------------------------ running


def environment(settings: BenchmarkSettings, data_dir: Path) -> dict[str, Any]:
    import platform

    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "data_dir": str(data_dir),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_benchmark(settings: BenchmarkSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the selected parts and return the results (settings, environment, one section per part, targets)."""
    unknown = sorted(set(settings.parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown benchmark part(s) {unknown}; choose from {list(PARTS)}.")
    # Pin every pool to the requested threads: tokenizers' Rust pool too (read when it first starts).
    os.environ.setdefault("RAYON_NUM_THREADS", str(settings.threads))
    torch.set_num_threads(settings.threads)
    data_dir = resolve_benchmark_data_dir(settings.data_dir)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "settings": dataclasses.asdict(settings),
        "environment": environment(settings, data_dir),
        "method": "paths of one comparison alternate round by round in this process (warm-up rounds untimed), same "
        "model size, batch size and thread count; medians; ratios are throughput ours / reference",
    }
    if "classifier" in settings.parts:
        log("classifier training steps ...")
        results["classifier"] = benchmark_classifier(settings, data_dir)
    if "seq2seq" in settings.parts or "decoding" in settings.parts:
        tokenizer, train_rows, test_rows = load_translation_data(settings, data_dir)
        if "seq2seq" in settings.parts:
            log("seq2seq training steps ...")
            results["seq2seq"] = benchmark_seq2seq(settings, tokenizer, train_rows)
        if "decoding" in settings.parts:
            log("decoding ...")
            results["decoding"] = benchmark_decoding(settings, tokenizer, train_rows, test_rows)
    if "ddp" in settings.parts:
        log("DDP scaling ...")
        results["ddp"] = benchmark_ddp(settings, data_dir)
    else:
        results["ddp"] = {
            "skipped": "not selected"
            if settings.mode == "full"
            else f"left out of --{settings.mode}: it spawns processes and needs a second idle core; "
            "run `hf-rnn benchmark --only ddp` on an idle machine"
        }
    results["targets"] = collect_targets(results, settings)
    results["environment"]["load_average_at_end"] = list(os.getloadavg())
    results["environment"]["seconds"] = time.perf_counter() - started
    return results


# ------------------------------------------------------------------------------------------------ command line


__all__ = ["BenchmarkSettings", "run_benchmark"]

"""Interrupted training and determinism (issue 6): killed runs resume to the same weights and metrics.

A tiny IMDB run (320 training reviews, 64-token inputs, 2 epochs of 10 steps, a checkpoint and an evaluation
every 4 steps) on one CPU thread. Tolerance: none. On the same machine and thread count a resumed run ends with
bit-identical weights and identical metrics, because the checkpoint holds the optimizer, scheduler and RNG states
and `Trainer` replays the epoch's sampler order and skips the batches already seen.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_rnn.commands import main as cli_main

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

REPO = Path(__file__).resolve().parent.parent
RECIPE = str(REPO / "configs" / "imdb_tiny.yaml")
TINY_RUN = [
    "data.max_train_samples=320",
    "data.validation_size=64",
    "data.max_test_samples=64",
    "tokenizer.model_max_length=64",
    "tokenizer.vocab_size=2000",
    "training.num_train_epochs=2",
    "training.threads=1",
    "training.early_stopping_patience=null",
    "training.eval_strategy=steps",
    "training.eval_steps=4",
    "training.save_strategy=steps",
    "training.save_steps=4",
    "training.logging_steps=2",
    "training.save_total_limit=2",
]
# Metrics that measure the machine, not the model.
TIMING_KEYS = ("runtime", "per_second", "peak_rss_mb", "wall_time_s", "flos", "stages")

# Runs `hf-rnn train` and interrupts it: "pause" waits at the end of step N (a step that saves nothing) for the
# test to send a signal; "save" SIGKILLs itself while writing checkpoint-N, after the model and before the
# optimizer, scheduler, RNG states and trainer_state.json.
INTERRUPTED_TRAIN = """
import os, signal, sys, time
from pathlib import Path
from transformers import Trainer, TrainerCallback
from hf_rnn import tasks
from hf_rnn.commands import main

mode, step, marker = os.environ["KILL_MODE"], int(os.environ["KILL_STEP"]), Path(os.environ["KILL_MARKER"])
if mode == "pause":
    class Pause(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                marker.write_text(str(os.getpid()))
                time.sleep(600)
    callbacks = tasks.ClassificationTask.callbacks
    tasks.ClassificationTask.callbacks = lambda self, recipe: [*callbacks(self, recipe), Pause()]
else:
    save = Trainer._save_optimizer_and_scheduler
    def killed_while_saving(self, output_dir):
        if self.state.global_step == step:
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return save(self, output_dir)
    Trainer._save_optimizer_and_scheduler = killed_while_saving
sys.exit(main(sys.argv[1:]))
"""


class Payload:
    """Unpickling this writes `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pickle executed')",))


def train_args(output_dir: Path) -> list[str]:
    overrides = [item for value in TINY_RUN for item in ("--set", value)]
    return ["train", RECIPE, "--output-dir", str(output_dir), "--data-dir", "sample", *overrides]


def model_metrics(output_dir: Path) -> dict:
    results = json.loads((output_dir / "all_results.json").read_text())
    return {
        key: value
        for key, value in results.items()
        if key.startswith(("eval_", "test_", "epoch")) and not any(part in key for part in TIMING_KEYS)
    }


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert sorted(a) == sorted(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def logged_losses(output_dir: Path) -> list[tuple]:
    """(step, training loss, validation loss) of every log entry, from the last checkpoint's trainer state."""
    last = max(output_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    return [(entry["step"], entry.get("loss"), entry.get("eval_loss")) for entry in history]


def vocabulary(output_dir: Path) -> dict[str, int]:
    return json.loads((output_dir / "tokenizer.json").read_text())["model"]["vocab"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("reference")
    assert cli_main(train_args(output_dir)) == 0
    return output_dir


@pytest.mark.slow
def test_same_seed_same_weights_and_metrics(reference_run, tmp_path):
    assert cli_main(train_args(tmp_path / "twin")) == 0
    assert_same_weights(reference_run, tmp_path / "twin")
    assert model_metrics(tmp_path / "twin") == model_metrics(reference_run)
    assert model_metrics(reference_run)["test_examples"] == 64
    assert logged_losses(tmp_path / "twin") == logged_losses(reference_run)


def interrupt(output_dir: Path, mode: str, step: int, sig: signal.Signals, tmp_path: Path) -> int:
    """Start the interrupted training in a subprocess and return its exit status."""
    marker = tmp_path / f"reached-{step}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_MODE": mode, "KILL_STEP": str(step), "KILL_MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_TRAIN, *train_args(output_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"training never reached step {step}: {process.stderr.read()[-2000:]}"
        if mode == "pause":
            process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    return process.returncode


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "step", "sig", "resumes_from", "incomplete"),
    [
        # SIGTERM at the end of step 6, in the middle of epoch 1, two steps after checkpoint-4.
        ("pause", 6, signal.SIGTERM, "checkpoint-4", None),
        # SIGKILL while checkpoint-12 is half written (epoch 2): resume must fall back to checkpoint-8.
        ("save", 12, signal.SIGKILL, "checkpoint-8", "checkpoint-12"),
    ],
    ids=["sigterm-mid-epoch", "sigkill-while-saving"],
)
def test_killed_run_resumes_to_the_uninterrupted_result(
    reference_run, tmp_path, caplog, mode, step, sig, resumes_from, incomplete
):
    output_dir = tmp_path / "run"
    assert interrupt(output_dir, mode, step, sig, tmp_path) == -sig
    assert not (output_dir / "all_results.json").exists()
    assert (output_dir / resumes_from / "trainer_state.json").is_file()
    if incomplete:
        assert (output_dir / incomplete / "model.safetensors").is_file()
        assert not (output_dir / incomplete / "trainer_state.json").exists()

    # Resuming never unpickles training_args.bin (transformers only writes it): a booby-trapped one stays inert.
    marker = tmp_path / "PWNED"
    torch.save(Payload(marker), output_dir / resumes_from / "training_args.bin")

    with caplog.at_level(logging.INFO):
        assert cli_main([*train_args(output_dir), "--resume"]) == 0
    assert not marker.exists()
    messages = [record.getMessage() for record in caplog.records]
    assert not any(message.startswith("learned a") for message in messages)  # the saved tokenizer was reused
    if incomplete:
        assert any(f"skipping incomplete checkpoint {output_dir / incomplete}" in message for message in messages)
    assert f"resuming from {output_dir / resumes_from}" in messages

    assert_same_weights(reference_run, output_dir)
    assert model_metrics(output_dir) == model_metrics(reference_run)
    assert logged_losses(output_dir) == logged_losses(reference_run)
    assert vocabulary(output_dir) == vocabulary(reference_run)

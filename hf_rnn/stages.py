"""Time during training: where a run's time and memory go before and during training: wall time and peak resident memory at the
end of each stage of the data path (loading, tokenizer, tokenization, model) and at the first optimizer step,
recorded in `train_results.json` as `stages` (for big corpora: `scripts/scale_simulation.py` reads them); and a
time limit on training (`training.max_train_minutes`)."""

import time

from transformers import TrainerCallback

from .memory import peak_rss_mb


class StageClock:
    """Seconds since the clock started and peak RSS (MiB, so far) at each named stage."""

    def __init__(self):
        self.started = time.perf_counter()
        self.stages: dict[str, dict[str, float]] = {}

    def mark(self, stage: str) -> None:
        self.stages[stage] = {
            "seconds": round(time.perf_counter() - self.started, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


class TimeLimitCallback(TrainerCallback):
    """Ends training once `minutes` of it have passed (checked after each optimizer step)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.started: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.started >= self.seconds:
            control.should_training_stop = True


class FirstStepCallback(TrainerCallback):
    """Marks `first_step` on a `StageClock` when the first optimizer step of this process ends."""

    def __init__(self, clock: StageClock):
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs):
        if "first_step" not in self.clock.stages:
            self.clock.mark("first_step")

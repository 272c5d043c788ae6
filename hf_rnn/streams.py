"""Language-model training data: texts as one token stream, cut into windows for truncated backpropagation through
time (BPTT), as AWD-LSTM and ULMFiT train.

Every text is tokenized (the tokenizer starts each with `</s>`, which separates it from the one before), the texts are concatenated into one stream, and the
stream is cut into `rows` equally long streams, one per batch row. Training step k reads window k of every row, so
a row's windows follow each other in the text and the recurrent state carries over from one step to the next
(`hf_rnn.language_modeling.LanguageModelingTrainer`). With variable BPTT the cut points move every epoch (AWD-LSTM:
a window of `bptt` tokens, or half of it with probability 0.05, jittered with a standard deviation of 5 tokens),
so that no token is always at the start of a window; the number of windows per epoch stays the same, and every
token is read exactly once per epoch. Window layouts are a function of the seed and the epoch only: a run resumed
mid-epoch continues with the same next window.

With several processes (DDP), the stream is cut into `rows x num_replicas` rows and each rank reads its own
`rows`: ranks see disjoint text.
"""

import math
from collections.abc import Iterator

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import Sampler
from transformers import TrainerCallback

JITTER_STD = 5  # tokens (AWD-LSTM)
HALF_WINDOW_PROBABILITY = 0.05
MIN_WINDOW = 5


def token_stream(encoded: Dataset, column: str = "input_ids") -> torch.Tensor:
    """The `input_ids` of every example, concatenated in order, as one `(tokens,)` tensor (read as Arrow: no Python
    list per token)."""
    chunks = [
        batch.column(column).combine_chunks().flatten().to_numpy()
        for batch in encoded.select_columns([column]).with_format("arrow").iter(batch_size=100_000)
    ]
    return torch.from_numpy(np.concatenate(chunks).astype(np.int64)) if chunks else torch.zeros(0, dtype=torch.long)


def stream_rows(stream: torch.Tensor, rows: int, num_replicas: int = 1, rank: int = 0) -> torch.Tensor:
    """The stream cut into `rows x num_replicas` contiguous rows of equal length (the remainder is dropped); this
    rank's `rows` of them `(rows, length)`."""
    total_rows = rows * num_replicas
    length = len(stream) // total_rows
    if length < 2:
        raise ValueError(
            f"a stream of {len(stream)} tokens is too short for {total_rows} rows: each row needs at least 2 tokens."
        )
    return stream[: total_rows * length].view(total_rows, length)[rank * rows : (rank + 1) * rows]


class BpttWindows(torch.utils.data.Dataset):
    """Windows of a `(rows, length)` stream matrix: item `(start, size)` is the batch `{"input_ids": (rows, size),
    "labels": (rows, size + 1), "window_start": start}`; `labels` reach one token past the window (the model's
    labels convention for streams), so no target is lost between windows."""

    def __init__(self, rows: torch.Tensor):
        self.rows = rows

    def __len__(self) -> int:
        return self.rows.shape[1] - 1

    def __getitem__(self, window: tuple[int, int]) -> dict[str, torch.Tensor | int]:
        start, size = window
        return {
            "input_ids": self.rows[:, start : start + size],
            "labels": self.rows[:, start : start + size + 1],
            "window_start": start,
        }


def window_sizes(total: int, bptt: int, variable: bool, rng: np.random.Generator) -> list[int]:
    """Sizes of the `total // bptt` (at least 1) windows that cover `total` positions: all `bptt` but the last, or with
    `variable`, AWD-LSTM's random sizes rescaled to cover exactly `total`."""
    count = max(1, total // bptt)
    if not variable:
        return [bptt] * (count - 1) + [total - bptt * (count - 1)]
    base = np.where(rng.random(count) < HALF_WINDOW_PROBABILITY, bptt / 2, bptt)
    drawn = np.maximum(MIN_WINDOW, rng.normal(base, JITTER_STD))
    ends = np.round(np.cumsum(drawn) / drawn.sum() * total).astype(np.int64)
    sizes = np.diff(ends, prepend=0)
    return [int(size) for size in sizes if size > 0]


class BpttSampler(Sampler[list[tuple[int, int]]]):
    """The windows of one epoch, in stream order, each as a one-element batch `[(start, size)]` (a batch sampler, so
    the Trainer's resume can skip the windows already trained on).

    Args:
        length: the length of each row of the stream matrix.
        bptt: the mean window size.
        variable: AWD-LSTM's variable window sizes (see the module docstring); else fixed `bptt` windows.
        seed: the seed of the per-epoch layouts.
    """

    def __init__(self, length: int, bptt: int, variable: bool = True, seed: int = 0):
        if bptt < 1:
            raise ValueError(f"the BPTT window must be at least 1 token, got {bptt}.")
        self.total = length - 1  # positions that have a next token
        self.bptt = bptt
        self.variable = variable
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def windows(self) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        sizes = window_sizes(self.total, self.bptt, self.variable, rng)
        starts = np.cumsum([0, *sizes[:-1]]).tolist()
        return list(zip(starts, sizes))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for window in self.windows():
            yield [window]

    def __len__(self) -> int:
        return len(self.windows())


class BpttEpochCallback(TrainerCallback):
    """Tells the BPTT sampler which epoch begins (also after a resume, whose batch-skipping loader does not pass
    `set_epoch` on)."""

    def __init__(self, sampler: BpttSampler):
        self.sampler = sampler

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.sampler.set_epoch(math.floor(state.epoch + 1e-6))


def single_window(batch: list[dict]) -> dict:
    """`collate_fn` of the BPTT loader: each batch is one window, already batched over rows."""
    return batch[0]

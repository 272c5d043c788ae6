"""Token-based batches, as NMT toolkits form them (fairseq `--max-tokens`, Joey NMT `batch_type: token`).

With `training.max_tokens_per_batch: N`, training batches hold about N padded tokens each instead of a fixed number
of examples: examples are sorted by length (ties broken at random per epoch), packed greedily while the batch's
padded size stays within N (an example longer than N alone forms its own batch), and the batches are shuffled.
The padded size of a batch is `rows x longest row`; for translation, where source and target are padded separately,
`rows x (longest source + longest target)`. Short
sentences then come in large batches and long ones in small batches, with little padding.

The order is a function of `seed` and the epoch only, so a run resumed mid-epoch (`--resume`) continues with the
same next batch. With several processes (DDP) every rank takes every `num_replicas`-th batch of the same list, so
ranks see disjoint examples; the list is padded with its first batches to a multiple of `num_replicas` (as
`DistributedSampler` pads), so that every rank runs the same number of steps.
"""

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import DataLoader, Sampler
from transformers import TrainerCallback


class TokenBatchSampler(Sampler[list[int]]):
    """Batches of example indices with at most `max_tokens` padded tokens each (see the module docstring).

    Args:
        lengths: the token length of every example `(examples,)`, or of each separately padded part of it
            `(examples, parts)` (translation: source and target).
        max_tokens: the budget of padded tokens per batch (`rows x` the sum over parts of the longest part).
        seed: the seed of the per-epoch tie-breaking and batch order.
        num_replicas / rank: the number of processes and this one's index.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive number of tokens, got {max_tokens}.")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not one of {num_replicas} processes.")
        lengths = np.asarray(lengths, dtype=np.int64)
        self.parts = lengths.reshape(len(lengths), -1)  # (examples, parts)
        self.lengths = self.parts.sum(axis=1)
        self.max_tokens = max_tokens
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.cached_epoch: int | None = None
        self.cached_batches: list[list[int]] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def all_batches(self) -> list[list[int]]:
        """Every rank's batches of the current epoch, in order (before padding to a multiple of the ranks)."""
        if self.cached_epoch != self.epoch:
            self.cached_batches, self.cached_epoch = self.pack(), self.epoch
        return self.cached_batches

    def pack(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.lexsort((rng.random(len(self.lengths)), self.lengths)).tolist()
        # Plain Python integers: one pass over millions of examples takes seconds, not minutes.
        parts = self.parts[order].tolist()
        budget, batches, batch, longest = self.max_tokens, [], [], [0] * self.parts.shape[1]
        for index, lengths in zip(order, parts):
            grown = [max(a, b) for a, b in zip(longest, lengths)]
            if batch and (len(batch) + 1) * sum(grown) > budget:
                batches.append(batch)
                batch, grown = [], lengths
            batch.append(index)
            longest = grown
        if batch:
            batches.append(batch)
        return [batches[position] for position in rng.permutation(len(batches)).tolist()]

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch."""
        batches = list(self.all_batches())
        if not batches:
            return []
        padded = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
        batches += batches[: padded - len(batches)]
        return batches[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.rank_batches()

    def __len__(self) -> int:
        # Packing depends on the sorted lengths only, so every epoch has the same number of batches.
        return math.ceil(len(self.all_batches()) / self.num_replicas)


class TokenBatchEpochCallback(TrainerCallback):
    """Tells the token batch sampler which epoch begins (also after a resume, where the Trainer wraps the data
    loader in a batch-skipping one that does not pass `set_epoch` on)."""

    def __init__(self, sampler: TokenBatchSampler):
        self.sampler = sampler

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.sampler.set_epoch(math.floor(state.epoch + 1e-6))


class TokenBatchingMixin:
    """For a `Trainer` subclass: with `max_tokens_per_batch` set, training batches come from `TokenBatchSampler`
    (`per_device_train_batch_size` is then unused); evaluation keeps its batch size."""

    def __init__(self, *args, max_tokens_per_batch: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_tokens_per_batch = max_tokens_per_batch
        self.token_batch_sampler: TokenBatchSampler | None = None

    def get_train_dataloader(self) -> DataLoader:
        if self.max_tokens_per_batch is None:
            return super().get_train_dataloader()
        lengths = self.train_dataset[self.args.length_column_name]
        if "target_length" in self.train_dataset.column_names:  # translation: source and target padded apart
            targets = self.train_dataset["target_length"]
            lengths = [[total - target, target] for total, target in zip(lengths, targets)]
        if self.token_batch_sampler is None:
            self.token_batch_sampler = TokenBatchSampler(
                lengths,
                self.max_tokens_per_batch,
                seed=self.args.seed,
                num_replicas=self.args.world_size,
                rank=self.args.process_index,
            )
            self.add_callback(TokenBatchEpochCallback(self.token_batch_sampler))
        dataset = self._remove_unused_columns(self.train_dataset, description="Training")
        loader = DataLoader(
            dataset,
            batch_sampler=self.token_batch_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        loader = self.accelerator.prepare(loader)
        # The sampler is rank-aware already: the shard wrapper `prepare` may add must pass its batches through.
        shard = getattr(loader, "batch_sampler", None)
        if shard is not None and getattr(shard, "batch_sampler", None) is self.token_batch_sampler:
            shard.num_processes, shard.process_index = 1, 0
        return loader

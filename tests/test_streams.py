"""Language-model streams and BPTT windows: every token once per epoch, labels reaching past the window, layouts that
move between epochs but repeat for a seed, disjoint ranks."""

import pytest
import torch
from datasets import Dataset

from hf_rnn.streams import BpttSampler, BpttWindows, single_window, stream_rows, token_stream


def test_token_stream_concatenates_the_examples_in_order():
    encoded = Dataset.from_dict({"input_ids": [[5, 6, 3], [7, 3], [8, 9, 10, 3]]})
    assert token_stream(encoded).tolist() == [5, 6, 3, 7, 3, 8, 9, 10, 3]


def test_stream_rows_are_contiguous_and_ranks_disjoint():
    stream = torch.arange(103)
    rows = stream_rows(stream, rows=4)
    assert rows.shape == (4, 25)
    assert rows[1].tolist() == list(range(25, 50))
    ranks = [stream_rows(stream, rows=2, num_replicas=2, rank=rank) for rank in range(2)]
    assert torch.equal(torch.cat(ranks), rows)
    assert not set(ranks[0].flatten().tolist()) & set(ranks[1].flatten().tolist())


def test_a_stream_too_short_for_its_rows_is_refused():
    with pytest.raises(ValueError, match="too short"):
        stream_rows(torch.arange(5), rows=4)


@pytest.mark.parametrize("variable", [False, True])
def test_every_position_is_a_target_exactly_once_per_epoch(variable):
    length = 1001
    sampler = BpttSampler(length, bptt=70, variable=variable, seed=3)
    counts = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert all(len(batch) == 1 for batch in batches)
        covered = [position for ((start, size),) in batches for position in range(start, start + size)]
        assert covered == list(range(length - 1))
        counts.append(len(batches))
    assert counts == [len(sampler)] * 3 == [(length - 1) // 70] * 3


def test_variable_windows_move_between_epochs_and_repeat_for_a_seed():
    sampler = BpttSampler(5001, bptt=70, variable=True, seed=1)
    first = sampler.windows()
    sampler.set_epoch(1)
    second = sampler.windows()
    assert first != second
    assert BpttSampler(5001, bptt=70, variable=True, seed=1).windows() == first
    sizes = [size for _, size in first]
    assert min(sizes) >= 5 and 50 < sum(sizes) / len(sizes) < 90


def test_windows_carry_labels_one_token_past_the_inputs():
    rows = torch.arange(40).view(2, 20)
    batch = single_window([BpttWindows(rows)[(5, 4)]])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [25, 26, 27, 28]]
    assert batch["labels"].tolist() == [[5, 6, 7, 8, 9], [25, 26, 27, 28, 29]]
    assert batch["window_start"] == 5

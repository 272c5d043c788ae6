"""Batch translation helpers in hf_rnn.translation."""

import numpy as np

from hf_rnn.translation import generated_lengths

START, PAD, EOS = 2, 0, 3


def test_generated_lengths_count_up_to_the_first_end_token():
    token_ids = np.array(
        [
            [START, 7, 8, EOS, PAD, PAD],  # ended after 3 tokens
            [START, EOS, PAD, PAD, PAD, PAD],  # ended at once
            [START, 7, 7, 7, 7, 7],  # ran to the limit
            [START, 9, EOS, 9, EOS, PAD],  # only the first </s> counts
        ]
    )
    assert generated_lengths(token_ids, eos_token_id=EOS, pad_token_id=PAD).tolist() == [3, 1, 5, 2]

"""Groupings shipped with hf_rnn: which examples of a public dataset belong together (reviews of one movie).

A validation set carved at random from IMDB's training reviews holds reviews of movies the model trains on (up to
30 reviews per movie), while the test set shares no movie with training; validation accuracy then overstates test
accuracy and picks checkpoints that have begun to memorise movies. `data.validation_groups: imdb_movies` carves
whole movies instead. Examples are matched by a digest of their text, so any copy of the data (Hub or parquet, in
any row order) gets the same groups.
"""

import gzip
import hashlib
from functools import cache
from pathlib import Path

GROUPINGS_DIR = Path(__file__).parent
DIGEST_BYTES = 6


def text_digest(text: str) -> str:
    """The key of an example in a grouping file: a 12-hex-digit BLAKE2b digest of its text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST_BYTES).hexdigest()


def shipped_groupings() -> list[str]:
    """Names of the groupings that ship with hf_rnn."""
    return sorted(path.name.removesuffix(".txt.gz") for path in GROUPINGS_DIR.glob("*.txt.gz"))


@cache
def load_grouping(name: str) -> dict[str, str]:
    """Text digest -> group name for a shipped grouping (file lines: `group digest digest ...`)."""
    path = GROUPINGS_DIR / f"{name}.txt.gz"
    if not path.is_file():
        raise KeyError(name)
    groups = {}
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        group, *digests = line.split()
        groups.update(dict.fromkeys(digests, group))
    return groups


def example_groups(texts: list[str], name: str) -> tuple[list[str], int]:
    """The group of each text under a shipped grouping, and how many texts it does not know.

    A text the grouping does not know forms a group of its own (named by its digest).
    """
    grouping = load_grouping(name)
    digests = [text_digest(text) for text in texts]
    groups = [grouping.get(digest, digest) for digest in digests]
    return groups, sum(digest not in grouping for digest in digests)

"""Build `hf_rnn/groupings/imdb_movies.txt.gz`: which IMDB training reviews belong to the same movie.

The Large Movie Review Dataset ships `train/urls_{neg,pos}.txt`: line i is the IMDB page of the movie that review
`<i>_<rating>.txt` was written about. Neither the Hub dataset `stanfordnlp/imdb` nor its parquet copies keep the
file names, so reviews are keyed by a digest of their text (the same in every copy: the review file, unchanged).
Movies that share a review text (the same review posted for two movies, 60 texts) are joined into one group, so a
duplicate can never sit on both sides of a split. One line per group: the first movie id, then the 12-hex-digit
BLAKE2b digests of its review texts.

    python benchmarks/imdb_validation/build_movie_groups.py ACLIMDB_DIR ../shared/data/imdb/train.parquet

ACLIMDB_DIR is an unpacked `aclImdb/` (here: `arvindsankar/Group-labels-to-individual-labels` @ 2144e72bf43e).
"""

import argparse
import gzip
import re
from pathlib import Path

import pyarrow.parquet as pq

from hf_rnn.groupings import GROUPINGS_DIR, text_digest


def review_movies(aclimdb: Path) -> dict[str, str]:
    """Review text -> movie id (`tt...`) for every training review."""
    movies = {}
    for label in ("neg", "pos"):
        urls = (aclimdb / "train" / f"urls_{label}.txt").read_text().split()
        for path in (aclimdb / "train" / label).glob("*.txt"):
            review_id = int(re.match(r"(\d+)_", path.name).group(1))
            text = path.read_text(encoding="utf-8")
            movie = urls[review_id].split("/")[4]
            movies.setdefault(text, movie)
            if movies[text] != movie:
                movies[text] = min(movies[text], movie) + "|" + max(movies[text], movie)
    return movies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("aclimdb", type=Path)
    parser.add_argument("train_parquet", type=Path, help="checked: every text in it must get a movie")
    args = parser.parse_args()
    movies = review_movies(args.aclimdb)
    # Union-find over movies that share a review text.
    parent: dict[str, str] = {}

    def root(movie: str) -> str:
        while parent.setdefault(movie, movie) != movie:
            movie = parent[movie]
        return movie

    for joined in movies.values():
        first, *others = joined.split("|")
        for other in others:
            parent[root(other)] = root(first)
    groups: dict[str, set[str]] = {}
    for text, joined in movies.items():
        groups.setdefault(root(joined.split("|")[0]), set()).add(text_digest(text))
    texts = pq.read_table(args.train_parquet, columns=["text"]).column("text").to_pylist()
    known = set().union(*groups.values())
    missing = sum(text_digest(text) not in known for text in texts)
    if missing:
        raise SystemExit(f"{missing} texts of {args.train_parquet} have no movie")
    lines = [" ".join([movie, *sorted(digests)]) for movie, digests in sorted(groups.items())]
    target = GROUPINGS_DIR / "imdb_movies.txt.gz"
    target.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=9, mtime=0))
    print(f"{len(groups)} groups, {len(known)} distinct texts -> {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

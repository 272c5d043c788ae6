"""Folders laid out exactly like the Hub repositories that the shipped recipes name, filled from the bundled slices.

Each builder reproduces one repository's file names, split names and column schema, as listed on the Hub
(checked 2026-11-30, see `../shared/STACK_FACTS.md` "Outside this checkout"):

- `stanfordnlp/imdb`: `plain_text/{train,test,unsupervised}-00000-of-00001.parquet`; `text` string, `label`
  `ClassLabel(names=["neg", "pos"])` (-1 in `unsupervised`).
- `bentrevett/multi30k`: `train.jsonl`, `val.jsonl`, `test.jsonl` at the root, one `{"en": ..., "de": ...}` object
  per line (flat language columns, no `translation` struct); `val` is read as the `validation` split.
- `wmt/wmt14`, config `de-en`: `de-en/train-0000{0,1,2}-of-00003.parquet`, `de-en/validation-00000-of-00001.parquet`
  (newstest2013), `de-en/test-00000-of-00001.parquet` (newstest2014); `translation`
  `Translation(languages=["de", "en"])`.

A user gets such a folder with `huggingface-cli download <id> --repo-type dataset --local-dir <folder>`.
"""

import json
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Translation, Value, load_dataset

SAMPLE = Path(__file__).resolve().parent.parent / "hf_rnn" / "sample_data"


def sample(name: str, split: str) -> Dataset:
    return load_dataset("parquet", data_files={split: str(SAMPLE / name / f"{split}.parquet")})[split]


def imdb_layout(root: Path, rows: int | None = None) -> Path:
    """`stanfordnlp/imdb` (default config `plain_text`)."""
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    folder = root / "plain_text"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        data = sample("imdb", split)
        data = data.shuffle(seed=0).select(range(rows)) if rows else data
        data.cast(features).to_parquet(folder / f"{split}-00000-of-00001.parquet")
    unlabelled = sample("imdb", "test").select(range(50)).map(lambda row: {"label": -1})
    unlabelled.cast(Features({"text": Value("string"), "label": Value("int64")})).cast(features).to_parquet(
        folder / "unsupervised-00000-of-00001.parquet"
    )
    return root


def multi30k_layout(root: Path, rows: int | None = None) -> Path:
    """`bentrevett/multi30k`: flat `en` / `de` columns in jsonl files."""
    root.mkdir(parents=True, exist_ok=True)
    for split, file_name in (("train", "train.jsonl"), ("validation", "val.jsonl"), ("test", "test.jsonl")):
        pairs = sample("multi30k", split)["translation"][:rows]
        lines = [json.dumps({"en": pair["en"], "de": pair["de"]}, ensure_ascii=False) for pair in pairs]
        (root / file_name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def wmt14_layout(root: Path, rows: int | None = None) -> Path:
    """`wmt/wmt14` config `de-en`: a `translation` struct, the training set in three shards."""
    features = Features({"translation": Translation(languages=["de", "en"])})
    folder = root / "de-en"
    folder.mkdir(parents=True)
    train = sample("multi30k", "train")
    train = train.select(range(rows)) if rows else train
    for shard in range(3):
        train.shard(3, shard, contiguous=True).cast(features).to_parquet(folder / f"train-0000{shard}-of-00003.parquet")
    newstest = sample("wmt-newstest", "newstest2014").cast(features)
    newstest.select(range(100)).to_parquet(folder / "validation-00000-of-00001.parquet")
    newstest.select(range(100, 200)).to_parquet(folder / "test-00000-of-00001.parquet")
    return root

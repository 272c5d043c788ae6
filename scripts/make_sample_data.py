"""Cut the small real data slices that ship in `hf_rnn/sample_data/` from `../shared/data`.

    python scripts/make_sample_data.py --source ../shared/data

The slices keep the Hub schemas (IMDB `text`/`label` ClassLabel, `translation` {de, en}) so the same code
path reads them. Rows are a seeded random sample (the IMDB slices are close to balanced: 1,989 of 4,000 train reviews are positive).
"""

import argparse
from pathlib import Path

from datasets import load_dataset

TARGET = Path(__file__).resolve().parent.parent / "hf_rnn" / "sample_data"
SLICES = {
    # (folder, split): number of rows (None: the whole split)
    ("imdb", "train"): 4000,
    ("imdb", "test"): 1000,
    ("multi30k", "train"): 5000,
    ("multi30k", "validation"): None,
    ("multi30k", "test"): None,
    ("wmt-newstest", "newstest2014"): 200,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="../shared/data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for (folder, split), rows in SLICES.items():
        dataset = load_dataset("parquet", data_files={split: f"{args.source}/{folder}/{split}.parquet"})[split]
        if rows is not None:
            dataset = dataset.shuffle(seed=args.seed).select(range(rows))
        (TARGET / folder).mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(TARGET / folder / f"{split}.parquet")
        print(f"{folder}/{split}: {len(dataset)} rows")


if __name__ == "__main__":
    main()

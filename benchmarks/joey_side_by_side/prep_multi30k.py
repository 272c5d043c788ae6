"""Export Multi30k parquet files to Joey NMT's plain-text format and train one SentencePiece BPE model per language.

Usage: prep_multi30k.py DATA_DIR OUT_DIR [VOCAB_SIZE]   (DATA_DIR holds multi30k/{train,validation,test}.parquet)
"""

import os
import sys

import pyarrow.parquet as pq
import sentencepiece as spm


def clean(text: str) -> str:
    """Whitespace-normalised, one sentence per line."""
    return " ".join(text.replace("\n", " ").split())


def main() -> None:
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    vocab_size = int(sys.argv[3]) if len(sys.argv) > 3 else 8000
    os.makedirs(out_dir, exist_ok=True)
    for split, name in [("train", "train"), ("validation", "dev"), ("test", "test")]:
        table = pq.read_table(f"{data_dir}/multi30k/{split}.parquet", columns=["translation"])
        rows = table.column("translation").to_pylist()
        for lang in ("de", "en"):
            with open(f"{out_dir}/{name}.{lang}", "w", encoding="utf-8") as file:
                file.writelines(clean(row[lang]) + "\n" for row in rows)
        print(split, len(rows))
    for lang in ("de", "en"):
        spm.SentencePieceTrainer.train(
            input=f"{out_dir}/train.{lang}",
            model_prefix=f"{out_dir}/spm_{lang}",
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            hard_vocab_limit=False,
            num_threads=2,
            minloglevel=2,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
        )
    print("spm done")


if __name__ == "__main__":
    main()

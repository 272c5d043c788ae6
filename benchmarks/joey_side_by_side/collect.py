"""Collect a `run.sh` output folder into side_by_side.json and side_by_side.md.

Usage: collect.py OUT_DIR DATA_DIR. Needs sacrebleu and pyarrow (the Joey venv has both).
Joey's BLEU is recomputed with sacreBLEU on its detokenised output against the raw references, as hf_rnn's is.
Joey's generated tokens are its hypotheses re-encoded with its target SentencePiece model, plus `</s>` for each
one that ended (hf_rnn counts the generated ids); a hypothesis at its length limit (MAX_OUTPUT_LENGTH tokens, or
under the source-relative limit 1.5 x the longest source of its batch of 64, `</s>` counted) hit the limit.
"""

import datetime
import json
import os
import platform
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import sacrebleu
import sentencepiece

MAX_OUTPUT_LENGTH = 100  # joey_rnn.yaml.tmpl's max_output_length, run.sh's --max-new-tokens
SOURCE_FACTOR = 1.5  # Joey's limit when max_output_length is unset, run.sh's --max-length-factor
TEST_BATCH_SIZE = 64  # joey_rnn.yaml.tmpl's testing batch_size: Joey's test batches, in file order
DECODING_RUN = re.compile(r"beam(\d+)_threads(\d+)(_source_limit)?")


def gnu_time_peak_rss_mb(path: Path) -> float | None:
    """Peak resident memory from a `/usr/bin/time -v` report."""
    if not path.is_file():
        return None
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", path.read_text())
    return round(int(found.group(1)) / 1024, 1) if found else None


def joey_training(out: Path) -> dict:
    """Sentences, target tokens and seconds per epoch from Joey's training log (seconds exclude setup)."""
    log = (out / "joey_train.log").read_text(encoding="utf-8")
    epochs = re.findall(
        r"Epoch\s+(\d+), total training loss: [\d.]+, num. of seqs: (\d+), num. of tokens: (\d+), ([\d.]+)\[sec\]", log
    )
    sentences = sum(int(seqs) for _, seqs, _, _ in epochs)
    seconds = sum(float(sec) for *_, sec in epochs)
    return {
        "epochs": len(epochs),
        "train_seconds": round(seconds, 1),
        "train_sentences_per_second": round(sentences / seconds, 2) if seconds else None,
        "peak_rss_mb": gnu_time_peak_rss_mb(out / "joey_train.time"),
    }


def hf_training(out: Path) -> dict:
    results = json.loads((out / "hf_model" / "train_results.json").read_text())
    return {
        "epochs": results.get("epoch"),
        "train_seconds": round(results["train_runtime"], 1),
        "train_sentences_per_second": results["train_examples_seen_per_second"],
        "peak_rss_mb": gnu_time_peak_rss_mb(out / "hf_train.time"),
    }


def joey_length_limits(out: Path, sources: list[str], source_limit: bool) -> list[int]:
    """Each test sentence's generation limit in Joey: MAX_OUTPUT_LENGTH, or with `source_limit`
    int(SOURCE_FACTOR x the longest source of its batch), sources counted in Joey's pieces plus `</s>`."""
    if not source_limit:
        return [MAX_OUTPUT_LENGTH] * len(sources)
    source_pieces = sentencepiece.SentencePieceProcessor(model_file=str(out / "joey_data" / "spm_de.model"))
    lengths = [len(pieces) + 1 for pieces in source_pieces.encode(sources)]
    limits = []
    for start in range(0, len(lengths), TEST_BATCH_SIZE):
        batch = lengths[start : start + TEST_BATCH_SIZE]
        limits += [int(SOURCE_FACTOR * max(batch))] * len(batch)
    return limits


def joey_decoding(out: Path, name: str, references: list[str], limits: list[int]) -> dict | None:
    log_path = out / f"joey_test_{name}.log"
    hyp_path = out / f"joey_hyp_{name}.test"
    if not log_path.is_file() or not hyp_path.is_file():
        return None
    seconds = float(re.findall(r"Generation took ([\d.]+)\[sec\]", log_path.read_text(encoding="utf-8"))[-1])
    hypotheses = hyp_path.read_text(encoding="utf-8").splitlines()
    target_pieces = sentencepiece.SentencePieceProcessor(model_file=str(out / "joey_data" / "spm_en.model"))
    token_counts = [len(pieces) for pieces in target_pieces.encode(hypotheses)]
    at_limit = [count >= limit for count, limit in zip(token_counts, limits)]
    lengths = [count if ended_at_limit else count + 1 for count, ended_at_limit in zip(token_counts, at_limit)]
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "generation_seconds": seconds,
        "sentences_per_second": round(len(references) / seconds, 1),
        "generated_tokens": sum(lengths),
        "tokens_per_second": round(sum(lengths) / seconds, 1),
        "hypotheses_at_length_limit": sum(at_limit),
    }


def hf_decoding(out: Path, name: str) -> dict | None:
    path = out / f"hf_eval_{name}.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    return {
        "bleu": round(results["bleu"], 2),
        "generation_seconds": results["generation_seconds"],
        "sentences_per_second": round(results["generation_sentences_per_second"], 1),
        "generated_tokens": results.get("generated_tokens"),
        "tokens_per_second": results.get("generation_tokens_per_second"),
        "hypotheses_at_length_limit": results.get("hypotheses_at_length_limit"),
        "signature": results.get("bleu_signature"),
    }


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def markdown(results: dict) -> str:
    joey, hf = results["joey"], results["hf_rnn"]
    rows = [
        "| | Joey NMT 2.3 | hf_rnn | hf_rnn / Joey |",
        "|---|---:|---:|---:|",
        f"| training sentences/s (1 thread each, trained at the same time) | {joey['train_sentences_per_second']} | "
        f"{hf['train_sentences_per_second']} | {ratio(hf['train_sentences_per_second'], joey['train_sentences_per_second'])}× |",
        f"| training minutes for {joey['epochs']} epochs | {joey['train_seconds'] / 60:.1f} | {hf['train_seconds'] / 60:.1f} | |",
        f"| peak RSS while training, MB | {joey['peak_rss_mb']} | {hf['peak_rss_mb']} | |",
    ]
    for key, pair in sorted(results["decoding"].items(), key=lambda item: ("source" in item[0], item[0])):
        j, h = pair["joey"], pair["hf_rnn"]
        if not j or not h:
            continue
        if "threads1" in key:
            rows.append(f"| test BLEU, {label_name(key)} | {j['bleu']} | {h['bleu']} | |")
            rows.append(
                f"| hypotheses at the length limit, {label_name(key)} | "
                f"{j['hypotheses_at_length_limit']} | {h['hypotheses_at_length_limit']} | |"
            )
        rows.append(
            f"| decoding sentences/s, {label_name(key)} | {j['sentences_per_second']} | {h['sentences_per_second']} | "
            f"{ratio(h['sentences_per_second'], j['sentences_per_second'])}× |"
        )
        rows.append(
            f"| decoding generated tokens/s, {label_name(key)} | {j['tokens_per_second']} | {h['tokens_per_second']} | "
            f"{ratio(h['tokens_per_second'], j['tokens_per_second'])}× |"
        )
    return "\n".join(rows) + "\n"


def label_name(key: str) -> str:
    beam, threads, source_limit = DECODING_RUN.fullmatch(key).groups()
    search = "greedy" if beam == "1" else f"beam {beam}"
    limit = f"{SOURCE_FACTOR} x longest source" if source_limit else f"{MAX_OUTPUT_LENGTH} tokens"
    return f"{search}, {threads} thread{'s' if threads != '1' else ''}, limit {limit}"


def main() -> None:
    out, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    table = pq.read_table(data_dir / "multi30k" / "test.parquet", columns=["translation"])
    pairs = table.column("translation").to_pylist()
    sources, references = [pair["de"] for pair in pairs], [pair["en"] for pair in pairs]
    settings = (out / "hf_settings.txt").read_text().split()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "setting": "Multi30k de-en test_2016_flickr, Joey NMT 2.3's RNN architecture: embeddings 256, BiLSTM encoder "
        "256, LSTM decoder 256, additive attention queried by the new decoder state (Joey's 'bahdanau'), input "
        "feeding, learned bridge, untied output layer; batch 64 sentences, Adam 1e-3 constant, clip 1.0, dropout "
        "0.2, no label smoothing; Joey with two 8k SentencePiece vocabularies, hf_rnn with its joint 8k BPE",
        "hf_rnn_command": "hf-rnn train configs/multi30k_de_en.yaml " + " ".join(settings),
        "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + sacrebleu.__version__,
        "joey": joey_training(out),
        "hf_rnn": hf_training(out),
        "decoding": {},
    }
    limits = {source_limit: joey_length_limits(out, sources, source_limit) for source_limit in (False, True)}
    for path in sorted(out.glob("hf_eval_beam*_threads*.json")):
        name = path.stem.removeprefix("hf_eval_")
        source_limit = DECODING_RUN.fullmatch(name).group(3) is not None
        results["decoding"][name] = {
            "joey": joey_decoding(out, name, references, limits[source_limit]),
            "hf_rnn": hf_decoding(out, name),
        }
    (out / "side_by_side.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "side_by_side.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

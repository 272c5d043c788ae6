"""Scale simulation of the WMT14 recipe's data path: does `configs/wmt14_de_en.yaml` get through 4.5M pairs?

The full WMT14 training data cannot be fetched here, so this writes WMT14-shaped corpora (sharded parquet in the Hub's
`wmt/wmt14` `de-en` layout and schema) of the sizes asked for, built from real German and English sentences of
`../shared/data` drawn at random (the pairing is irrelevant to the data path), with the real newstest2013 and
newstest2014 as validation and test. Then, for each size, in a fresh process, it runs the recipe's whole data path
(loading, tokenizer learned from its bounded sample, tokenisation with `datasets.map`, cached on disk) and 50
training steps of a tiny model, and collects the stage times and peak RSS that `hf-rnn train` records
(`train_results.json` → `stages`).

    python scripts/scale_simulation.py --sizes 0.5 1.5 4.5 --work runs/wmt-sim --out docs/wmt_scale

writes `<out>/scale.json`, `<out>/scale.md` and `<out>/scale.png`. Add `--ddp` to also launch the 4.5M run on two
processes (gloo on CPU), as `accelerate launch --multi_gpu --num_processes 2` would on a GPU node.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
SHARD_ROWS = 500_000
SOURCES = ("multi30k/train", "tatoeba/test", "flores200/devtest") + tuple(
    f"wmt-newstest/{name}"
    for name in ("newstest2008", "newssyscomb2009", "newstest2009", "newstest2010", "newstest2011", "newstest2012")
)
# A tiny model: the stages measured are the data path's; 50 steps show that training starts and runs.
TINY_MODEL = [
    "model.embedding_size=64",
    "model.hidden_size=64",
    "model.attentional_size=64",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
]
SIMULATION_SETTINGS = [
    *TINY_MODEL,
    "data.validation_split=validation",
    "data.test_split=test",
    "data.max_eval_samples=100",
    "data.training_eval_samples=null",
    "data.max_test_samples=100",
    "training.max_steps=50",
    "training.max_tokens_per_batch=2000",
    "training.eval_strategy=no",
    "training.save_strategy=no",
    "training.load_best_model_at_end=false",
    "training.early_stopping_patience=null",
    "training.bf16=false",
    "training.logging_steps=10",
    "training.threads=2",
    "training.dataloader_num_workers=0",  # the recipe's 4 loader processes are for GPU hosts, not 2 cores
]


def sentence_pool(data_dir: Path) -> tuple[list[str], list[str]]:
    """Every German and English sentence of the real sets named in `SOURCES`."""
    german, english = [], []
    for name in SOURCES:
        pairs = pq.read_table(data_dir / f"{name}.parquet", columns=["translation"]).column("translation").to_pylist()
        german += [pair["de"] for pair in pairs]
        english += [pair["en"] for pair in pairs]
    return german, english


def write_corpus(folder: Path, pairs: int, data_dir: Path, seed: int = 0) -> Path:
    """A `wmt/wmt14`-shaped folder (`de-en/train-0000i-of-0000n.parquet`, validation, test) with `pairs` training
    pairs; returns the folder. An existing complete corpus is kept."""
    config_dir = folder / "de-en"
    shards = max(1, -(-pairs // SHARD_ROWS))
    names = [config_dir / f"train-{index:05d}-of-{shards:05d}.parquet" for index in range(shards)]
    if all(path.is_file() for path in names):
        return folder
    config_dir.mkdir(parents=True, exist_ok=True)
    german, english = sentence_pool(data_dir)
    rng = np.random.default_rng(seed)
    for index, path in enumerate(names):
        rows = min(SHARD_ROWS, pairs - index * SHARD_ROWS)
        de = np.asarray(german, dtype=object)[rng.integers(0, len(german), rows)]
        en = np.asarray(english, dtype=object)[rng.integers(0, len(english), rows)]
        column = pa.StructArray.from_arrays([pa.array(de, pa.string()), pa.array(en, pa.string())], ["de", "en"])
        pq.write_table(pa.table({"translation": column}), path)
    for split, name in (("validation", "newstest2013"), ("test", "newstest2014")):
        table = pq.read_table(data_dir / "wmt-newstest" / f"{name}.parquet")
        pq.write_table(table, config_dir / f"{split}-00000-of-00001.parquet")
    return folder


def train_on(corpus: Path, output_dir: Path, processes: int, log_path: Path) -> dict:
    """Run the recipe on `corpus` in fresh processes; returns its recorded stages, wall time and peak RSS."""
    settings = [f"data.dataset={corpus}", *SIMULATION_SETTINGS]
    if processes > 1:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                   str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   str(REPO / "scripts" / "train.py")]  # fmt: skip
        settings = [setting.replace("training.threads=2", "training.threads=1") for setting in settings]
    else:
        command = [sys.executable, "-m", "hf_rnn", "train"]
    command += ["wmt14_de_en", "--output-dir", str(output_dir)]
    for setting in settings:
        command += ["--set", setting]
    # A fresh `datasets` cache per run: every stage is measured cold (a rerun would find the corpus and its
    # tokenisation cached, as a second run of the recipe does).
    cache = output_dir.with_name(f"{output_dir.name}-datasets-cache")
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(cache)}
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    wall = time.perf_counter() - started
    shutil.rmtree(cache, ignore_errors=True)
    if result.returncode != 0:
        raise SystemExit(f"training on {corpus} failed (exit {result.returncode}); see {log_path}")
    train = json.loads((output_dir / "train_results.json").read_text(encoding="utf-8"))
    state = json.loads((output_dir / "trainer_state.json").read_text(encoding="utf-8"))
    return {
        "processes": processes,
        "train_examples": train["train_examples"],
        "global_step": state["global_step"],
        "stages": train["stages"],
        "wall_seconds": round(wall, 1),
        "command": " ".join(command[:3] + ["..."] + command[-2 * len(settings) - 3 :]),
    }


STAGE_LABELS = {
    "data_loaded": "load splits (parquet → Arrow cache)",
    "tokenizer_ready": "learn the 32k BPE (bounded sample)",
    "tokenized": "tokenise (datasets.map, cached)",
    "model_built": "build the model (target ids from labels)",
    "first_step": "first optimizer step",
    "trained": "50 steps done",
}


def markdown(runs: list[dict]) -> str:
    header = "| stage (cumulative seconds / peak RSS MiB) | " + " | ".join(run["label"] for run in runs) + " |"
    lines = [header, "|---|" + "---:|" * len(runs)]
    for stage, label in STAGE_LABELS.items():
        cells = [f"{run['stages'][stage]['seconds']:.0f} s / {run['stages'][stage]['peak_rss_mb']:.0f}" for run in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| wall time of the whole command | " + " | ".join(f"{run['wall_seconds']:.0f} s" for run in runs) + " |"
    )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    single = [run for run in runs if run["processes"] == 1]
    sizes = [run["pairs"] / 1e6 for run in single]
    figure = Figure(figsize=(10, 4))
    time_axis, memory_axis = figure.subplots(1, 2)
    previous = {id(run): 0.0 for run in single}
    for stage, label in STAGE_LABELS.items():
        durations = []
        for run in single:
            durations.append(run["stages"][stage]["seconds"] - previous[id(run)])
            previous[id(run)] = run["stages"][stage]["seconds"]
        time_axis.plot(sizes, durations, marker="o", label=label)
    time_axis.set_xlabel("training pairs (millions)")
    time_axis.set_ylabel("seconds in the stage")
    time_axis.legend(fontsize=7)
    memory_axis.plot(sizes, [run["stages"]["trained"]["peak_rss_mb"] / 1024 for run in single], marker="o")
    memory_axis.axhline(6, linestyle=":", color="grey", label="6 GB target")
    memory_axis.set_xlabel("training pairs (millions)")
    memory_axis.set_ylabel("peak RSS (GiB)")
    memory_axis.legend(fontsize=7)
    figure.suptitle("WMT14 recipe data path at scale (simulated corpora, 2 CPU cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1.5, 4.5], help="millions of pairs")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "wmt-sim", help="corpora and runs go here")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "wmt_scale", help="JSON, table and plot")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--ddp", action="store_true", help="also run the largest size on 2 processes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    plan = [(size, 1) for size in args.sizes] + ([(max(args.sizes), 2)] if args.ddp else [])
    for size, processes in plan:
        pairs = int(round(size * 1e6))
        label = f"{size:g}M pairs" + (f", {processes} processes" if processes > 1 else "")
        print(f"[scale] {label}: writing the corpus", flush=True)
        started = time.perf_counter()
        corpus = write_corpus(args.work / f"corpus-{size:g}M", pairs, args.data_dir)
        written = time.perf_counter() - started
        name = f"run-{size:g}M-{processes}p"
        print(f"[scale] {label}: training (log: {args.work / name}.log)", flush=True)
        run = train_on(corpus, args.work / name, processes, args.work / f"{name}.log")
        runs.append({"label": label, "pairs": pairs, "corpus_write_seconds": round(written, 1), **run})
        (args.out / "scale.json").write_text(json.dumps({"runs": runs}, indent=2) + "\n", encoding="utf-8")
    (args.out / "scale.md").write_text(markdown(runs), encoding="utf-8")
    plot(runs, args.out / "scale.png")
    print(markdown(runs))


if __name__ == "__main__":
    main()

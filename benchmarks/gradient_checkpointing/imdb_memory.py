"""Peak memory of one training step on 800-token IMDB batches, with and without gradient checkpointing.

Each setting runs in a fresh process: the model of `configs/imdb_bilstm.yaml` (WordPiece 30k, embeddings 256,
BiLSTM 192, mean+max pooling; also with 2 and 3 layers), a batch of 32 reviews of 800 tokens (the recipe's
`model_max_length`), one forward and backward pass in training mode. Reported: the process's peak resident memory
(ru_maxrss) minus its resident memory just before the step, and the step's time.

    python benchmarks/gradient_checkpointing/imdb_memory.py --output docs/gradient_checkpointing_imdb.json
"""

import argparse
import json
import subprocess
import sys

STEP = """
import json, resource, sys, time, torch
from hf_rnn import RnnClassifierConfig, RnnForSequenceClassification
layers, checkpointing = int(sys.argv[1]), sys.argv[2] == "1"
torch.set_num_threads(1)
torch.manual_seed(0)
config = RnnClassifierConfig(vocab_size=30000, embedding_size=256, hidden_size=192, num_hidden_layers=layers,
                             cell_type="lstm", bidirectional=True, pooling="mean_max", embedding_dropout=0.4,
                             classifier_dropout=0.4, num_labels=2)
model = RnnForSequenceClassification(config).train()
if checkpointing:
    model.gradient_checkpointing_enable()
input_ids = torch.randint(5, 30000, (32, 800))
labels = torch.randint(0, 2, (32,))
def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20
before = rss_mb()
started = time.perf_counter()
model(input_ids, labels=labels).loss.backward()
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"layers": layers, "gradient_checkpointing": checkpointing, "step_peak_mb": round(peak - before, 1),
                  "step_seconds": round(seconds, 2)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output")
    args = parser.parse_args()
    rows = []
    for layers in (1, 2, 3):
        for checkpointing in ("0", "1"):
            result = subprocess.run(
                [sys.executable, "-c", STEP, str(layers), checkpointing], capture_output=True, text=True, check=True
            )
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    report = {"batch": "32 x 800 tokens", "threads": 1, "rows": rows}
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")


if __name__ == "__main__":
    main()

"""Training entry point for `accelerate launch` (a thin wrapper over `hf-rnn train`).

accelerate launch scripts/train.py configs/imdb_bilstm.yaml --output-dir runs/imdb-bilstm
accelerate launch --multi_gpu --num_processes 2 scripts/train.py configs/imdb_tiny.yaml --output-dir runs/tiny
"""

import sys

from hf_rnn.commands import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

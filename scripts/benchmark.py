"""Speed benchmark entry point (a thin wrapper over `hf-rnn benchmark`).

python scripts/benchmark.py --quick
python scripts/benchmark.py --threads 1 --json runs/benchmark.json
python scripts/benchmark.py --only ddp        # on an idle machine: 2 processes need 2 free cores
"""

import sys

from hf_rnn.commands import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))

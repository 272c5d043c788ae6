#!/usr/bin/env bash
# Rerun every headline number of the README from scratch, one run after another, and write tables to compare with
# it. Long: about 25 min (IMDB, 3 seeds of 8.5 min) + 1.5 h (Multi30k, 3 seeds) + 10 min (benchmark) on 2 CPU cores, and the
# Joey NMT side by side (about 1 h) when a Joey venv is given. Nothing else should run on the machine meanwhile.
#   DATA=../shared/data OUT=runs/reproduce scripts/reproduce.sh            # JOEY_VENV=~/hf-rnn-peers/joey-venv adds Joey
# Results: $OUT/*.json (per-seed and mean ± std, the same files as docs/seeds/), $OUT/README_numbers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data}"
OUT="${OUT:-runs/reproduce}"
SEEDS="${SEEDS:-42 43 44}"
mkdir -p "$OUT"

imdb_runs=() m30k_runs=()
for seed in $SEEDS; do
    run="$OUT/imdb-bilstm-s$seed"
    [ -f "$run/test_results.json" ] || hf-rnn train configs/imdb_bilstm.yaml --data-dir "$DATA" --output-dir "$run" \
        --set training.seed="$seed"
    imdb_runs+=("$run")
done
for seed in $SEEDS; do
    run="$OUT/m30k-de-en-s$seed"
    [ -f "$run/test_results.json" ] || hf-rnn train configs/multi30k_de_en.yaml --data-dir "$DATA" --output-dir "$run" \
        --set training.seed="$seed"
    [ -f "$run/test_beam5.json" ] || hf-rnn evaluate "$run" --data-dir "$DATA" --split test --num-beams 5 \
        --threads 2 --json "$run/test_beam5.json"
    m30k_runs+=("$run")
done
python scripts/seed_summary.py imdb "${imdb_runs[@]}" --output "$OUT/imdb_bilstm.json" --into-runs \
    | tee "$OUT/README_numbers.md"
python scripts/seed_summary.py multi30k "${m30k_runs[@]}" --output "$OUT/multi30k_de_en.json" --into-runs \
    | tee -a "$OUT/README_numbers.md"

hf-rnn benchmark --json "$OUT/benchmark.json" | tee -a "$OUT/README_numbers.md"
if [ -n "${JOEY_VENV:-}" ]; then
    benchmarks/joey_side_by_side/run.sh "$OUT/joey_side_by_side" | tee -a "$OUT/README_numbers.md"
fi
echo "compare $OUT/README_numbers.md with the README's tables (their JSON is under docs/)"

#!/usr/bin/env bash
# GPU check: train the Multi30k recipe on one CUDA GPU for MINUTES minutes (bf16), then print the training
# throughput (source + target tokens/s), the peak GPU memory and the BLEU on the whole validation set.
#
#   scripts/gpu_check.sh [MINUTES (5)] [OUT (runs/gpu-check)]
#
# Needs a CUDA build of torch and the data (DATA_DIR, default ../shared/data; or the Hub when DATA_DIR=hub).
# The JSON of the run is OUT/all_results.json.
set -euo pipefail
MINUTES="${1:-5}"
OUT="${2:-runs/gpu-check}"
DATA_DIR="${DATA_DIR:-../shared/data}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA GPU visible to torch')"
DATA_ARGS=(--data-dir "$DATA_DIR"); [ "$DATA_DIR" = hub ] && DATA_ARGS=()
hf-rnn train multi30k_de_en "${DATA_ARGS[@]}" --output-dir "$OUT" \
  --set training.max_train_minutes="$MINUTES" --set training.num_train_epochs=1000 --set training.bf16=true \
  --set training.threads=null --set training.dataloader_num_workers=2 --set training.eval_strategy=no \
  --set training.save_strategy=no --set training.load_best_model_at_end=false \
  --set training.early_stopping_patience=null
python - "$OUT" "$MINUTES" <<'PY'
import json, sys
results = json.load(open(f"{sys.argv[1]}/all_results.json"))
print(f"gpu_check after {sys.argv[2]} minutes: {results['train_tokens_seen_per_second']:.0f} tokens/s (source + target), "
      f"peak GPU memory {results.get('peak_gpu_memory_mb', 'n/a')} MiB, validation BLEU {results['eval_bleu']:.2f} "
      f"(greedy, {results.get('epoch', 0):.2f} epochs), test BLEU {results['test_bleu']:.2f}")
PY

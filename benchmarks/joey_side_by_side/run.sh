#!/usr/bin/env bash
# hf_rnn next to Joey NMT 2.3 at Joey's RNN architecture on Multi30k de->en, on this machine, in one run.
#
#   JOEY_VENV=~/joey-venv benchmarks/joey_side_by_side/run.sh [OUT_DIR]
#
# 1. Both toolkits train at the same time, one torch thread each (one core each), for EPOCHS epochs without
#    validation (Joey's validation is off too), and test the final weights.
# 2. Each then decodes test_2016_flickr alone (nothing else running), greedy and beam 5, batch 64, with 1 and with
#    2 threads, under two length limits: 100 tokens ("fixed"), and Joey's own default ("source": 1.5 x the longest
#    source of the batch, `</s>` counted; Joey's `max_output_length` unset, hf_rnn's `--max-length-factor 1.5`).
#    Decoding time is generation with the model loaded (Joey's "Generation took"; hf_rnn's `generation_seconds`
#    from `hf-rnn evaluate`).
# 3. collect.py writes OUT_DIR/side_by_side.json and side_by_side.md.
#
# JOEY_VENV: a venv with joeynmt 2.3.0 (joeynmt is never a dependency of hf_rnn). Recipe, tested 2026-11-30:
#   python3 -m venv $JOEY_VENV && $JOEY_VENV/bin/pip install torch==2.13.0 && \
#   $JOEY_VENV/bin/pip install joeynmt==2.3.0 pyarrow && $JOEY_VENV/bin/pip install importlib_metadata sentencepiece==0.2.0
# Knobs: EPOCHS (2), DATA_DIR (../shared/data), HF_RNN (hf-rnn on PATH), DECODE_THREADS ("1 2"),
#   LENGTH_LIMITS ("fixed source"),
#   STAGES ("train decode": rerun decoding alone on the trained models with STAGES=decode).
#
# Joey's "bahdanau" decoder is Luong's flow with additive scores: the RNN reads [embedding; previous attentional
# vector], then the new state queries the source additively, and tanh(W [state; context] + b) feeds the output
# layer. In hf_rnn terms that is `attention_type: luong_concat` with `input_feeding: true`; hf_rnn's `bahdanau`
# queries with the previous state and also feeds the context to the RNN (a 1,024-wide RNN input here instead of 512).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROJECT="$(cd "$HERE/../.." && pwd)"
JOEY_PY="${JOEY_VENV:?set JOEY_VENV to a venv with joeynmt 2.3.0}/bin/python"
OUT="$(mkdir -p "${1:-runs/joey_side_by_side}" && cd "${1:-runs/joey_side_by_side}" && pwd)"
DATA_DIR="$(cd "${DATA_DIR:-$PROJECT/../shared/data}" && pwd)"
EPOCHS="${EPOCHS:-2}"
HF_RNN="${HF_RNN:-hf-rnn}"
DECODE_THREADS="${DECODE_THREADS:-1 2}"
LENGTH_LIMITS="${LENGTH_LIMITS:-fixed source}"
STAGES="${STAGES:-train decode}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONHASHSEED=0
# torch >= 2.6 loads weights only by default; Joey 2.3.0 checkpoints hold more than tensors.
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
"$JOEY_PY" -c "import joeynmt, sentencepiece" || { echo "no joeynmt in $JOEY_VENV" >&2; exit 2; }

JOEY_DATA="$OUT/joey_data"
"$JOEY_PY" "$HERE/prep_multi30k.py" "$DATA_DIR" "$JOEY_DATA" 8000 > "$OUT/prep.log" 2>&1

joey_config() {  # joey_config MODE BEAM [LIMIT] > file; MODE train or test (test drops the dev set)
  local drop="/^NEVERMATCH/d" limit="/^NEVERMATCH/d"; [ "$1" = test ] && drop="/^    dev: /d"
  [ "${3:-fixed}" = source ] && limit="/max_output_length/d"  # unset: Joey's 1.5 x the batch's longest source
  sed -e "$drop" -e "$limit" -e "s#@DATA@#$JOEY_DATA#g" -e "s#@MODEL@#$OUT/joey_model#g" -e "s#@EPOCHS@#$EPOCHS#g" \
      -e "s#@UPDATES@#1000000000#g" -e "s#@BEAM@#$2#g" -e "s#@CKPT@#$OUT/joey_model/latest.ckpt#g" \
      "$HERE/joey_rnn.yaml.tmpl"
}
joey_config train 1 > "$OUT/joey_train.yaml"

# The overrides that make configs/multi30k_de_en.yaml Joey's architecture and schedule.
HF_SETTINGS=(
  --set model.hidden_size=256 --set model.attention_type=luong_concat --set model.input_feeding=true
  --set model.tie_word_embeddings=false --set model.embedding_dropout=0.2 --set model.output_dropout=0.2
  --set model.label_smoothing=0.0 --set training.num_train_epochs="$EPOCHS" --set training.learning_rate=1e-3
  --set training.lr_scheduler_type=constant --set training.warmup_steps=0 --set training.threads=1
  --set training.eval_strategy=no --set training.save_strategy=no --set training.load_best_model_at_end=false
  --set training.early_stopping_patience=null
)
printf '%s\n' "${HF_SETTINGS[@]}" > "$OUT/hf_settings.txt"

if [[ " $STAGES " == *" train "* ]]; then
  echo "[side-by-side] training both, 1 thread each: $(date -Is)"
  rm -rf "$OUT/joey_model" "$OUT/hf_model"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/time -v -o "$OUT/joey_train.time" \
    "$JOEY_PY" -m joeynmt train "$OUT/joey_train.yaml" --skip-test > "$OUT/joey_train.log" 2>&1 &
  JOEY_PID=$!
  (cd "$PROJECT" && OMP_NUM_THREADS=1 /usr/bin/time -v -o "$OUT/hf_train.time" "$HF_RNN" train \
    configs/multi30k_de_en.yaml --data-dir "$DATA_DIR" --output-dir "$OUT/hf_model" "${HF_SETTINGS[@]}" \
    > "$OUT/hf_train.log" 2>&1) &
  HF_PID=$!
  wait "$JOEY_PID"; wait "$HF_PID"
fi
[[ " $STAGES " == *" decode "* ]] && echo "[side-by-side] decoding, one job at a time: $(date -Is)"
for THREADS in $DECODE_THREADS; do
  [[ " $STAGES " == *" decode "* ]] || break
  for LIMIT in $LENGTH_LIMITS; do
    SUFFIX=""; HF_LIMIT=(--max-new-tokens 100)  # Joey's max_output_length (the saved generation_config's is 80)
    if [ "$LIMIT" = source ]; then SUFFIX="_source_limit"; HF_LIMIT=(--max-new-tokens 1000 --max-length-factor 1.5); fi
    for BEAM in 1 5; do
      NAME="beam${BEAM}_threads$THREADS$SUFFIX"
      joey_config test "$BEAM" "$LIMIT" > "$OUT/joey_test_beam$BEAM$SUFFIX.yaml"
      OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS "$JOEY_PY" -m joeynmt test "$OUT/joey_test_beam$BEAM$SUFFIX.yaml" \
        -o "$OUT/joey_hyp_$NAME" > "$OUT/joey_test_$NAME.log" 2>&1
      OMP_NUM_THREADS=$THREADS "$HF_RNN" evaluate "$OUT/hf_model" --data-dir "$DATA_DIR" --split test \
        --num-beams "$BEAM" "${HF_LIMIT[@]}" --batch-size 64 --threads "$THREADS" --json "$OUT/hf_eval_$NAME.json" \
        > "$OUT/hf_eval_$NAME.log" 2>&1
    done
  done
done
"$JOEY_PY" "$HERE/collect.py" "$OUT" "$DATA_DIR"
echo "[side-by-side] done: $OUT/side_by_side.md $(date -Is)"

#!/usr/bin/env bash
# Train, evaluate and run a classifier on your own CSV files with the rnn-textclf command line.
#
# Your data: CSV (or TSV, JSON lines, parquet) files with a header row, one text column and one label
# column (any label values: strings like "spam"/"ham" or integers). Name them with environment variables:
#
#   TRAIN_FILE=my_train.csv TEST_FILE=my_test.csv TEXT_COLUMN=text LABEL_COLUMN=label \
#       examples/custom_data_cli.sh [extra `rnn-textclf train` options, e.g. --epochs 3 --rnn-type gru]
#
#   VALIDATION_FILE  optional; without it, train holds out a seeded stratified 10% of TRAIN_FILE
#   OUTPUT_DIR       where the model goes (default: custom-model; replaced if it exists)
#
# The defaults use SST-2 from the project's ../shared/data (header label,text; 0 negative, 1 positive).
# Smoke run: examples/custom_data_cli.sh --max-train-samples 500 --max-steps 20
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SST2="$HERE/../../shared/data/sst2"
TRAIN_FILE="${TRAIN_FILE:-$SST2/sst2_train.csv}"
TEST_FILE="${TEST_FILE:-$SST2/sst2_test.csv}"
if [[ -z "${VALIDATION_FILE+set}" && "$TRAIN_FILE" == "$SST2/sst2_train.csv" ]]; then
    VALIDATION_FILE="$SST2/sst2_dev.csv"
fi
VALIDATION_FILE="${VALIDATION_FILE:-}"
TEXT_COLUMN="${TEXT_COLUMN:-text}"
LABEL_COLUMN="${LABEL_COLUMN:-label}"
OUTPUT_DIR="${OUTPUT_DIR:-custom-model}"

validation=()
if [[ -n "$VALIDATION_FILE" ]]; then
    validation=(--validation-file "$VALIDATION_FILE")
fi

echo "== 1. train on $TRAIN_FILE" >&2
rnn-textclf train \
    --train-file "$TRAIN_FILE" "${validation[@]}" --test-file "$TEST_FILE" \
    --text-column "$TEXT_COLUMN" --label-column "$LABEL_COLUMN" \
    --output-dir "$OUTPUT_DIR" --overwrite "$@"

echo "== 2. evaluate on $TEST_FILE" >&2
rnn-textclf evaluate "$OUTPUT_DIR" --test-file "$TEST_FILE" \
    --text-column "$TEXT_COLUMN" --label-column "$LABEL_COLUMN" --json "$OUTPUT_DIR/evaluation.json"

echo "== 3. predict: one text per line on stdin, one JSON line out per text" >&2
# Also: texts as arguments (rnn-textclf predict DIR "text one" "text two") or --file texts.txt.
printf '%s\n' "a gripping, beautifully acted film" "i want my two hours back" |
    rnn-textclf predict "$OUTPUT_DIR" --top-k 2

echo "== done: model, metrics.json, evaluation.json and plots in $OUTPUT_DIR/" >&2

#!/usr/bin/env bash
# The measurements behind README's "Reproduce the papers" table, as run on the shared CPU
# machine (2 cores, heavily shared: see the load averages each table prints).
#
#   bash benchmarks/reproduce_papers.sh [DATA] [WORK]
#
# DATA: the shared datasets (default $FERDATA_TEST_DATA or ../shared/data); WORK: where
# manifests and runs go (default /tmp/ferdata-reproduce). Each command prints its table
# (measured mean ± std beside the paper's figure, wall and CPU time) and writes JSON to
# WORK/<recipe>.json. Epoch counts below the recipes' are the CPU budget, not the recipe:
# set FULL=1 to run every recipe as written (days of CPU on two cores; minutes on a GPU).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${1:-${FERDATA_TEST_DATA:-$ROOT/../shared/data}}"
WORK="${2:-/tmp/ferdata-reproduce}"
WEIGHTS="${WEIGHTS:-$DATA/../weights/mobilenet_v2_imagenet_features.pth}"
FERDATA="${FERDATA:-$ROOT/.venv/bin/ferdata}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"
COMMON=(--device "${DEVICE:-cpu}" --manifests "$WORK/manifests" --runs "$WORK/runs" --weights "$WEIGHTS")
short() { if [ "${FULL:-0}" = 1 ]; then :; else printf -- '--epochs %s' "$1"; fi; }

run() {  # run RECIPE DATASET [options...]: the table on the terminal, JSON beside it
  local recipe="$1"; shift
  nice -n 10 "$FERDATA" reproduce "$recipe" "$@" "${COMMON[@]}" | tee "$WORK/$recipe.txt"
  nice -n 10 "$FERDATA" reproduce "$recipe" "$@" "${COMMON[@]}" --json > "$WORK/$recipe.json"  # all reused: instant
}

# Paper 001, stage 1: ImageNet MobileNetV2 → FER-2013 (complete), PrivateTest.
run p001-mobilenet-fer2013 "$DATA/fer2013_full" $(short 2)
STAGE1="$(python3 -c "import json; print(json.load(open('$WORK/p001-mobilenet-fer2013.json'))['rows'][0]['runs'][0])")"
# Paper 001, stage 2 from that run: CK+ (last frame), JAFFE, CK+48 with three fold seeds, cross-dataset.
run p001-mobilenet-ckplus6-last "$DATA/ckplus48" --init "$STAGE1"
run p001-mobilenet-jaffe "$DATA/jaffe" --init "$STAGE1"
run p001-mobilenet-ckplus6-last3 "$DATA/ckplus48" --init "$STAGE1" --repeats 3 $(short 10)
run p001-mobilenet-cross-jaffe-ckplus "$DATA/jaffe" --data ckplus-last="$DATA/ckplus48" --init "$STAGE1"
# Papers 003 and 004 on FER-2013 official (PrivateTest): quick variants (2,000 training images).
run p003-ensemble-fer2013 "$DATA/fer2013_full" --quick

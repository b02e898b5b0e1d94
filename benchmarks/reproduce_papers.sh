#!/usr/bin/env bash
# The measurements behind README's "Reproduce the papers" table, as run on the shared CPU
# machine (2 cores shared by many sessions: every table prints its wall and CPU time and the
# load average).
#
#   bash benchmarks/reproduce_papers.sh [DATA] [WORK]
#
# DATA: the shared datasets (default $FERDATA_TEST_DATA or ../shared/data); WORK: where
# manifests and runs go (default /tmp/ferdata-reproduce). Rows and fold seeds run as
# separate processes in parallel (--only, --seeds); a last command per recipe reuses every
# finished run and prints the combined table (and WORK/<recipe>.json). Epoch counts below a
# recipe's own are the CPU budget of this machine, and the tables say so in their title;
# FULL=1 runs every recipe as written (hours on two cores, minutes on a GPU: DEVICE=cuda).
# STAGE1=RUN skips training paper 001's FER-2013 stage and starts from that finished run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${1:-${FERDATA_TEST_DATA:-$ROOT/../shared/data}}"
WORK="${2:-/tmp/ferdata-reproduce}"
WEIGHTS="${WEIGHTS:-$DATA/../weights/mobilenet_v2_imagenet_features.pth}"
FERDATA="${FERDATA:-$ROOT/.venv/bin/ferdata}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK"
COMMON=(--device "${DEVICE:-cpu}" --manifests "$WORK/manifests" --runs "$WORK/runs" --weights "$WEIGHTS")
cut_to() { [ "${FULL:-0}" = 1 ] || echo "--epochs $1"; }

bg() { nice -n 10 "$FERDATA" reproduce "$@" "${COMMON[@]}" > "$WORK/log-$$-$RANDOM.txt" 2>&1 & }
table() {  # the combined table of a recipe (every run reused) and its JSON
  local recipe="$1"; shift
  "$FERDATA" reproduce "$recipe" "$@" "${COMMON[@]}" | tee "$WORK/$recipe.txt"
  "$FERDATA" reproduce "$recipe" "$@" "${COMMON[@]}" --json > "$WORK/$recipe.json"
}

# Paper 001, stage 1: ImageNet MobileNetV2 → FER-2013 (complete), tested on PrivateTest.
if [ -z "${STAGE1:-}" ]; then
  table p001-mobilenet-fer2013 "$DATA/fer2013_full" $(cut_to 2)
  STAGE1="$(python3 -c "import json; print(json.load(open('$WORK/p001-mobilenet-fer2013.json'))['rows'][0]['runs'][0])")"
else
  table p001-mobilenet-fer2013 "$DATA/fer2013_full" --use p001-mobilenet-fer2013="$STAGE1"
fi

# Ingest and crop once before the parallel runs (they would race to write the same manifest).
M=(--manifests "$WORK/manifests")
[ -e "$WORK/manifests/jaffe" ] || { "$FERDATA" ingest jaffe "$DATA/jaffe" "${M[@]}" >/dev/null
  "$FERDATA" preprocess jaffe --detector haar --size 48 --gray --align none --fallback whole "${M[@]}" >/dev/null; }
[ -e "$WORK/manifests/ckplus-last" ] || "$FERDATA" ingest ckplus "$DATA/ckplus48" --frames last --name ckplus-last "${M[@]}" >/dev/null
[ -e "$WORK/manifests/ck48" ] || "$FERDATA" ingest ckplus "$DATA/ckplus48" --frames last3 --name ck48 "${M[@]}" >/dev/null

# Paper 001, stage 2 from that run, every row (and CK+48's three fold seeds) in parallel.
bg p001-mobilenet-ckplus6-last "$DATA/ckplus48" --init "$STAGE1" --only paper
bg p001-mobilenet-ckplus6-last "$DATA/ckplus48" --init "$STAGE1" --only subject-independent
bg p001-mobilenet-jaffe "$DATA/jaffe" --init "$STAGE1" --only paper $(cut_to 30)
bg p001-mobilenet-jaffe "$DATA/jaffe" --init "$STAGE1" --only subject-independent $(cut_to 30)
bg p001-mobilenet-cross-jaffe-ckplus "$DATA/jaffe" --data ckplus-last="$DATA/ckplus48" --init "$STAGE1"
for seed in 0 1 2; do
  bg p001-mobilenet-ckplus6-last3 "$DATA/ckplus48" --init "$STAGE1" --seeds "$seed" $(cut_to 3)
done
# Papers 003 and 004 on FER-2013 official (PrivateTest): the quick variants (2,000 training faces).
bg p003-ensemble-fer2013 "$DATA/fer2013_full" --quick
wait

table p001-mobilenet-ckplus6-last "$DATA/ckplus48" --init "$STAGE1"
table p001-mobilenet-jaffe "$DATA/jaffe" --init "$STAGE1" $(cut_to 30)
table p001-mobilenet-cross-jaffe-ckplus "$DATA/jaffe" --data ckplus-last="$DATA/ckplus48" --init "$STAGE1"
table p001-mobilenet-ckplus6-last3 "$DATA/ckplus48" --init "$STAGE1" --repeats 3 $(cut_to 3)
table p003-ensemble-fer2013 "$DATA/fer2013_full" --quick

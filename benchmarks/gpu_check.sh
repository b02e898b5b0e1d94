#!/usr/bin/env bash
# GPU path check (issue 15), at most ~5 minutes on one GPU:
#   1. resnet18-alf trained with mixed precision (AMP) for a few hundred steps: images/s;
#   2. the same through torchrun with DistributedDataParallel on every visible GPU;
#   3. predict: ms per face at batch 1 and batch 32 with the trained run.
# The data are synthetic faces written to a temporary folder (timing only, no dataset
# needed). With --device cpu it runs tiny (a few steps, 2 gloo processes): the test suite
# uses that to keep the script working on machines without a GPU.
#
#   bash benchmarks/gpu_check.sh                 # auto: cuda when available
#   bash benchmarks/gpu_check.sh --device cpu    # tiny CPU run
#   bash benchmarks/gpu_check.sh --steps 400 --batch 64
set -euo pipefail

DEVICE=auto
STEPS=""
BATCH=""
SIZE=""
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (use --device, --steps, --batch, --size, --keep DIR)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$ROOT:$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DEVICE" = auto ]; then
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then DEVICE=cuda; else DEVICE=cpu; fi
fi
if [ "$DEVICE" = cpu ]; then
  STEPS="${STEPS:-4}"; BATCH="${BATCH:-8}"; SIZE="${SIZE:-64}"; NPROC=2; AMP="--no-amp"; N_IMAGES=40
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
else
  STEPS="${STEPS:-300}"; BATCH="${BATCH:-64}"; SIZE="${SIZE:-224}"; AMP="--amp"
  NPROC="$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))")"
  N_IMAGES=1280
fi

WORK="${KEEP:-$(mktemp -d)}"
mkdir -p "$WORK"
[ -n "$KEEP" ] || trap 'rm -rf "$WORK"' EXIT
export FERDATA_MANIFESTS="$WORK/manifests" FERDATA_RUNS="$WORK/runs" FERDATA_OFFLINE=1
FERDATA="$PY -m ferdata"

echo "gpu_check: device $DEVICE, $NPROC process(es) for DDP, $STEPS steps of batch $BATCH at ${SIZE}px, work dir $WORK"
"$PY" - "$WORK/faces" "$N_IMAGES" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

root, n = Path(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
labels = ["anger", "happy", "neutral", "sad"]
for i in range(n):
    label = labels[i % len(labels)]
    img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    img[30:60, 20:76] = 60 * (i % len(labels))  # a class-dependent band, so the loss can fall
    (root / label).mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(root / label / f"s{i % 16:02d}_{i:05d}.png")
EOF
$FERDATA ingest folder "$WORK/faces" --name synth --subject-pattern '^(?P<subject>s\d+)_' -j 1 >/dev/null
$FERDATA split synth --protocol ppi --test-size 0.2 -j 1 >/dev/null
TRAIN_N="$("$PY" -c "
import pandas as pd; t = pd.read_parquet('$WORK/manifests/synth/splits/ppi.parquet'); print(int((t.role == 'train').sum()))")"
EPOCHS="$("$PY" -c "import math; print(max(1, math.ceil($STEPS * $BATCH / $TRAIN_N)))")"

stamp() { "$PY" -c "import time; print(time.perf_counter())"; }
rate() {  # mean images/s over the epochs of the newest run
  "$PY" - "$1" <<'EOF'
import json, sys
from pathlib import Path
runs = sorted(Path(sys.argv[1]).iterdir(), key=lambda p: p.stat().st_mtime)
run = runs[-1]
hist = [json.loads(l) for l in (run / "history.jsonl").read_text().splitlines() if l.strip()]
hist = [h for h in hist if h.get("images_per_s")]
steady = hist[1:] or hist
print(f"{sum(h['images_per_s'] for h in steady) / len(steady):.1f} {run}")
EOF
}

echo "1. resnet18-alf, ${EPOCHS} epoch(s) ≈ $STEPS steps, $AMP"
t0=$(stamp)
$FERDATA train resnet18-alf --manifest synth --split ppi --device "$DEVICE" $AMP --epochs "$EPOCHS" \
  --batch-size "$BATCH" --hp input_size="$SIZE" --weights none --patience 0 >"$WORK/train.log" 2>&1 \
  || { cat "$WORK/train.log" >&2; exit 1; }
t1=$(stamp)
read -r IPS RUN <<<"$(rate "$WORK/runs")"
echo "   single process: $IPS images/s, $("$PY" -c "print(f'{$t1 - $t0:.1f}')") s wall"

echo "2. DDP through torchrun, $NPROC process(es)"
t0=$(stamp)
OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m ferdata train resnet18-alf \
  --manifest synth --split ppi --device "$DEVICE" $AMP --epochs "$EPOCHS" --batch-size "$BATCH" \
  --hp input_size="$SIZE" --weights none --patience 0 >"$WORK/ddp.log" 2>&1 || { cat "$WORK/ddp.log" >&2; exit 1; }
t1=$(stamp)
read -r DIPS DRUN <<<"$(rate "$WORK/runs")"
echo "   DDP: $DIPS images/s over $NPROC process(es), $("$PY" -c "print(f'{$t1 - $t0:.1f}')") s wall"

echo "3. predict with the trained run: ms per face"
"$PY" - "$RUN" "$DEVICE" <<'EOF'
import sys, time

import numpy as np
import torch

from ferdata.inference import load_run_model

run, device = sys.argv[1], sys.argv[2]
rm = load_run_model(run)
model = rm.model.to(device).eval()
rng = np.random.default_rng(0)
faces = [rm.resize(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)) for _ in range(32)]
for batch in (1, 32):
    x = rm.tensor(faces[:batch]).to(device)
    with torch.inference_mode(), torch.autocast(device_type=torch.device(device).type, enabled=device.startswith("cuda")):
        for _ in range(3):
            model(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times = []
        for _ in range(20 if device.startswith("cuda") else 3):
            t0 = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    print(f"   batch {batch}: {1000 * float(np.median(times)) / batch:.3f} ms per face")
EOF
echo "gpu_check: ok"

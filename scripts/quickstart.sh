#!/usr/bin/env bash
# Install ferdata, then run the main job end to end on one dataset folder with the defaults.
#   bash scripts/quickstart.sh ../shared/data/jaffe
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: bash scripts/quickstart.sh DATASET_DIR" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ferdata pipeline "$1"

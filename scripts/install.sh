#!/usr/bin/env bash
# Create .venv (Python 3.11) and install ferdata with its pinned dependencies, the dev tools
# and the Ray extra (--engine ray; its tests run in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,ray]'

#!/usr/bin/env bash
# Run the test suite (installing first when .venv is missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/install.sh
if [ -z "${FERDATA_TEST_DATA:-}" ] && [ -d ../shared/data ]; then
    export FERDATA_TEST_DATA="$(cd ../shared/data && pwd)"
fi
exec .venv/bin/python -m pytest "$@"

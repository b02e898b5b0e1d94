#!/usr/bin/env bash
# Run the test suite (installing first when .venv is missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/install.sh
# Report tests render HTML, and the review test clicks through Label Studio, in headless
# Chromium (Debian's package, driven by Playwright from the dev extra); install it where we
# can, otherwise those tests skip.
.venv/bin/python -c "import playwright" 2>/dev/null || .venv/bin/python -m pip install --quiet -e '.[dev]' \
    || echo "could not install the dev extra; the browser test will skip" >&2
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the report and review browser tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >/dev/null 2>&1 || echo "could not install chromium; browser tests will skip" >&2
fi
if [ -z "${FERDATA_TEST_DATA:-}" ] && [ -d ../shared/data ]; then
    export FERDATA_TEST_DATA="$(cd ../shared/data && pwd)"
fi
exec .venv/bin/python -m pytest "$@"

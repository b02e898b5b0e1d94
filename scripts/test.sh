#!/usr/bin/env bash
# Run the test suite (installing first when .venv is missing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/install.sh
# Report tests render HTML in headless Chromium (Debian's package); install it where we can,
# otherwise those tests skip.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the report tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >/dev/null 2>&1 || echo "could not install chromium; report rendering tests will skip" >&2
fi
if [ -z "${FERDATA_TEST_DATA:-}" ] && [ -d ../shared/data ]; then
    export FERDATA_TEST_DATA="$(cd ../shared/data && pwd)"
fi
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The README's test command: installs aelab and its test extra into .venv with the pinned
# versions, installs Chromium for the browser tests if needed, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
bash scripts/install-chromium.sh
exec .venv/bin/python -m pytest "$@"

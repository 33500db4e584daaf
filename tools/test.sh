#!/usr/bin/env bash
# The test command: create or reuse .venv (tools/dev_env.py, idempotent), then run the suite.
# Extra arguments go to pytest, e.g. `tools/test.sh -k camera`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/dev_env.py
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

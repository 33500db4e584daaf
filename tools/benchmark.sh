#!/usr/bin/env bash
# The benchmark suite: create or reuse .venv, then measure everything of issue 7 in one run.
#   tools/benchmark.sh                       # about 6 minutes; output/benchmark/report.md
#   tools/benchmark.sh --output docs/benchmark   # the copy the README links
#   tools/benchmark.sh --quick               # about 2 minutes, rougher figures
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/dev_env.py
exec .venv/bin/python tools/benchmark.py "$@"

#!/usr/bin/env bash
# The benchmark suite: create or reuse .venv, then measure every performance target in one run.
#   tools/benchmark.sh                       # output/benchmark/report.md
#   tools/benchmark.sh --output docs/benchmark   # the copy the README links
#   tools/benchmark.sh --quick               # shorter windows, rougher figures
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/dev_env.py
exec .venv/bin/python -m tools.bench "$@"

#!/usr/bin/env bash
# The main job: create or reuse .venv, then run the three nodes on the embedded input video.
#   tools/demo.sh                                   # human detection on vtest.avi
#   tools/demo.sh --task digit_classification       # digits written on paper
# Outputs go to output/<task>/ (annotated.mp4, results.jsonl, summary.png, summary.json).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/dev_env.py
exec .venv/bin/python -m tools.demo "$@"

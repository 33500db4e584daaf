#!/usr/bin/env bash
# The test command: create or reuse .venv (tools/dev_env.py, idempotent), add the real ros2
# command line where ../shared/ros2_tools is next to the repository (idempotent; without it,
# test/integration/test_ros2_cli.py uses a sourced ROS install or skips), then run the suite.
# Extra arguments go to pytest, e.g. `tools/test.sh -k camera`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/dev_env.py
if [ -x ../shared/ros2_tools/install.sh ]; then
  ../shared/ros2_tools/install.sh .venv
fi
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

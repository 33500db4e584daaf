"""Lint: undefined names, unused imports and syntax errors fail the suite (ruff's pyflakes rules).

In place of ament_flake8, which needs a ROS distro's plugin set; ruff is in the development
environment and the check skips with a reason where it is not installed (a plain colcon test).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

RUFF = Path(sys.executable).parent / 'ruff'
ruff = str(RUFF) if RUFF.exists() else shutil.which('ruff')
pytestmark = pytest.mark.skipif(ruff is None, reason='ruff is not installed')


def test_no_pyflakes_findings():
    result = subprocess.run(
        [ruff, 'check', '--no-cache', '--isolated', '--select', 'F,E9', '--output-format',
         'concise', 'ros_onnx_vision', 'launch', 'tools', 'test', 'setup.py'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

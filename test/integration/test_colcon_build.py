"""The ROS-user path: colcon build installs the package like a distro workspace, colcon test runs.

colcon (from PyPI in the development venv) builds the ament_python package against the same
ROS environment a user's workspace would have; the installed executables and share files are
checked, then `colcon test` runs part of this suite against the install.
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

COLCON = Path(sys.executable).parent / 'colcon'
pytestmark = pytest.mark.skipif(not COLCON.exists() and not shutil.which('colcon'),
                                reason='colcon is not installed')


def colcon(workspace: Path, command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    colcon_exe = str(COLCON) if COLCON.exists() else 'colcon'
    script = f'set -e; cd {workspace}; '
    if (workspace / 'install' / 'setup.bash').exists():
        script += 'source install/setup.bash; '
    script += f'{colcon_exe} {command}'
    return subprocess.run(['bash', '-c', script], env=env, capture_output=True, text=True,
                          timeout=600)


def test_colcon_build_and_test(tmp_path, ros_domain):
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain), PYTHONDONTWRITEBYTECODE='1')
    env.pop('AMENT_PREFIX_PATH', None)
    listing = colcon(tmp_path, f'list --base-paths {REPO}', env)
    assert listing.returncode == 0, listing.stderr
    # Only this package: the vision_msgs stand-in is invisible to a ROS user's workspace.
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ['ros_onnx_vision']

    build = colcon(tmp_path, f'build --base-paths {REPO}', env)
    assert build.returncode == 0, build.stdout + build.stderr
    install = tmp_path / 'install' / 'ros_onnx_vision'
    for executable in ('camera_node', 'inference_node', 'smoothing_node', 'annotator_node'):
        assert os.access(install / 'lib' / 'ros_onnx_vision' / executable, os.X_OK)
    share = install / 'share' / 'ros_onnx_vision'
    for path in ('package.xml', 'launch/human_detection.launch.py',
                 'launch/digit_classification.launch.py', 'config/human_detection.yaml',
                 'config/fastdds_shm.xml', 'config/ros_onnx_vision.rviz'):
        assert (share / path).is_file(), path
    assert (tmp_path / 'install' / 'ros_onnx_vision' / 'share' / 'ament_index' /
            'resource_index' / 'packages' / 'ros_onnx_vision').exists()

    selected = ('test/unit/test_graph.py test/unit/test_image_conversion.py '
                'test/integration/test_camera_node.py')
    tested = colcon(tmp_path, f'test --base-paths {REPO} --event-handlers console_direct+ '
                              f'--pytest-args {selected} -k "not colcon"', env)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    result = colcon(tmp_path, 'test-result --verbose', env)
    assert result.returncode == 0, result.stdout
    summary = [line for line in result.stdout.splitlines() if line.startswith('Summary:')][-1]
    tests = int(summary.split()[1])
    assert tests > 20 and ' 0 errors, 0 failures' in summary, summary

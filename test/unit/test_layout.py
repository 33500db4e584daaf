"""The layout's promises: light stages stay light, plain modules stay free of ROS.

Each check imports a module in a fresh interpreter and looks at what that pulled in, so an
import added anywhere down the chain is caught, not only a direct one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO


def imported_by(module: str) -> set[str]:
    code = (f'import sys, json, {module}; '
            'print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60, check=True)
    return set(json.loads(out.stdout))


def test_smoothing_node_loads_neither_onnxruntime_nor_opencv():
    loaded = imported_by('ros_onnx_vision.ros.smoothing_node')
    assert 'rclpy' in loaded  # the check sees real imports
    assert not loaded & {'onnxruntime', 'cv2'}, loaded & {'onnxruntime', 'cv2'}


def test_message_conversion_does_not_load_the_engine():
    assert not imported_by('ros_onnx_vision.ros.messages') & {'onnxruntime', 'cv2', 'rclpy'}


PLAIN = sorted(str(p.relative_to(REPO).with_suffix('')).replace('/', '.')
               for folder in ('camera', 'inference', 'smoothing', 'cli')
               for p in (REPO / 'ros_onnx_vision' / folder).glob('*.py')
               if p.name != '__init__.py') + ['ros_onnx_vision.results',
                                               'ros_onnx_vision.geometry']


@pytest.mark.parametrize('module', PLAIN)
def test_plain_modules_never_import_rclpy(module):
    assert 'rclpy' not in imported_by(module)


def test_results_and_geometry_need_nothing_but_numpy():
    loaded = imported_by('ros_onnx_vision.results') | imported_by('ros_onnx_vision.geometry')
    assert not loaded & {'onnxruntime', 'cv2', 'rclpy', 'yaml'}


def test_the_encoding_table_needs_no_opencv():
    assert 'cv2' not in imported_by('ros_onnx_vision.image_encodings')


def test_a_task_reads_as_its_name_in_logs_and_topic_names():
    from ros_onnx_vision.results import Task
    assert f'bench_{Task.DETECTION}' == 'bench_detection' and str(Task.CLASSIFICATION) == \
        'classification'
    assert Task('detection') is Task.DETECTION and Task.DETECTION == 'detection'

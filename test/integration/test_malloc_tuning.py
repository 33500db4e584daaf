"""ros.malloc_tuning.keep_image_buffers: glibc reuses freed frame buffers (no faults a frame)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from ros_onnx_vision.ros import malloc_tuning as ros_environment

GLIBC = sys.platform == 'linux' and platform.libc_ver()[0] == 'glibc'

# One received 640x480 bgr8 frame as rclpy handles it: three frame-sized buffers (Fast CDR into
# the C message, that into bytes, that into array.array) allocated, written, and freed after the
# callback. Prints the minor page faults per frame once warm.
_FAULTS_PER_FRAME = r'''
import ctypes, resource, sys
from ros_onnx_vision.ros.malloc_tuning import keep_image_buffers
if sys.argv[1] == 'keep':
    assert keep_image_buffers()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 640 * 480 * 3


def frame():
    buffers = [libc.malloc(size) for _ in range(3)]
    for buffer in buffers:
        ctypes.memset(buffer, 1, size)
    for buffer in reversed(buffers):
        libc.free(buffer)


for _ in range(3):
    frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
'''


def faults_per_frame(mode: str) -> float:
    out = subprocess.run([sys.executable, '-c', _FAULTS_PER_FRAME, mode], capture_output=True,
                         text=True, timeout=60, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason='glibc malloc only')
def test_received_frames_reuse_freed_buffers():
    assert faults_per_frame('default') > 100  # glibc defaults: the heap is trimmed every frame
    assert faults_per_frame('keep') < 10  # one frame is 225 pages


@pytest.mark.skipif(not GLIBC, reason='glibc malloc only')
def test_keep_image_buffers_sets_thresholds_once(monkeypatch):
    monkeypatch.setattr(ros_environment, '_buffers_kept', None)
    calls = []
    real = ros_environment._set_malloc_thresholds
    monkeypatch.setattr(ros_environment, '_set_malloc_thresholds',
                        lambda: calls.append(1) or real())
    assert ros_environment.keep_image_buffers() is True
    assert ros_environment.keep_image_buffers() is True
    assert calls == [1]


def test_user_malloc_tunables_are_kept(monkeypatch):
    monkeypatch.setenv('GLIBC_TUNABLES', 'glibc.malloc.trim_threshold=1048576')
    assert ros_environment._set_malloc_thresholds() is False

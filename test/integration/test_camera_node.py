"""camera_node as its own process: frames, CameraInfo, rates and bad-parameter errors."""

from __future__ import annotations

from pathlib import Path
import subprocess

import cv2
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import UInt64

from ros_onnx_vision.camera.sources.synthetic import decode_synthetic_counter
from ros_onnx_vision.ros.image_conversion import image_to_numpy

from tools.demo.graph_runner import start_node


def stamp(msg: Image) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def run_camera(probe, env, tmp_path: Path, parameters: dict, count: int,
               timeout: float = 20.0) -> tuple[list, list, list]:
    images = probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
    infos = probe.subscribe(CameraInfo, 'camera_info', qos_profile_sensor_data)
    counts = probe.subscribe(UInt64, 'frame_count', qos_profile_sensor_data)
    process = start_node('camera_node', env, parameters=parameters,
                         log_file=tmp_path / 'camera.log')
    try:
        probe.spin_until(lambda: len(images) >= count and len(infos) >= count, timeout)
    finally:
        process.terminate()
        process.wait(10)
    probe.spin_for(0.5)  # drain what was in flight when the camera stopped
    log = (tmp_path / 'camera.log').read_text()
    assert len(images) >= count, f'only {len(images)} images received; log:\n{log}'
    return images, infos, counts


def test_synthetic_frames_and_camera_info(ros_probe, node_env, tmp_path):
    images, infos, counts = run_camera(
        ros_probe, node_env, tmp_path,
        {'source': 'synthetic:320x240', 'fps': 30.0, 'frame_id': 'cam_optical',
         'encoding': 'rgb8', 'wait_for_subscribers': 1}, count=20)
    msgs = [m for _, m in images]
    assert all((m.width, m.height, m.encoding) == (320, 240, 'rgb8') for m in msgs)
    assert all(m.header.frame_id == 'cam_optical' for m in msgs)
    stamps = [stamp(m) for m in msgs]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), 'stamps must increase'
    # The frame counter drawn into the synthetic pattern: which frames this (best-effort, maybe
    # busy) probe got, so a frame it missed does not count as a slow camera.
    counters = [decode_synthetic_counter(cv2.cvtColor(np.ascontiguousarray(image_to_numpy(m)),
                                                      cv2.COLOR_RGB2BGR)) for m in msgs]
    assert all(b > a for a, b in zip(counters, counters[1:])), counters
    # Stamps 1/30 s apart on average: the rate is held (loose bound: this is not a benchmark).
    period = (stamps[-1] - stamps[0]) / (counters[-1] - counters[0])
    assert 0.025 < period < 0.045, period
    # CameraInfo carries the same header and the image size.
    info_by_stamp = {stamp(m): m for _, m in infos}
    matched = [info_by_stamp[s] for s in stamps if s in info_by_stamp]
    assert len(matched) >= len(stamps) - 2
    assert all((i.width, i.height, i.header.frame_id) == (320, 240, 'cam_optical')
               for i in matched)
    assert matched[0].k[0] > 0 and matched[0].k[2] == pytest.approx(159.5, abs=1.0)
    # frame_count: a consumer counts lost frames as published - received. That agrees with the
    # frames' own counters (both count from frame 0), however many this probe lost on a busy
    # machine; the last count and the last frame were sent together.
    values = [m.data for _, m in counts]
    assert values == sorted(values)
    lost = counters[-1] + 1 - len(msgs)
    assert lost >= 0 and abs(values[-1] + 1 - len(msgs) - lost) <= 2, (values[-1], counters)


def test_video_file_resized_mono(ros_probe, node_env, tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*'MJPG'), 25.0, (160, 120))
    for i in range(10):
        frame = np.full((120, 160, 3), 20 * i, np.uint8)
        writer.write(frame)
    writer.release()
    images, infos, _ = run_camera(
        ros_probe, node_env, tmp_path,
        {'source': str(video), 'width': 80, 'height': 60, 'encoding': 'mono8'}, count=12)
    msg = images[0][1]
    assert (msg.width, msg.height, msg.encoding, msg.step) == (80, 60, 'mono8', 80)
    assert infos[0][1].width == 80 and infos[0][1].k[0] == pytest.approx(80, rel=0.05)


@pytest.mark.parametrize('parameters, expected', [
    ({'source': '/nonexistent/clip.mp4'}, '/nonexistent/clip.mp4'),
    ({'source': 'synthetic', 'fps': -5.0}, 'fps'),
    ({'source': 'synthetic', 'encoding': 'yuv9'}, 'encoding'),
])
def test_bad_configuration_exits_with_clear_error(node_env, tmp_path, parameters, expected):
    process = start_node('camera_node', node_env, parameters=parameters,
                         log_file=tmp_path / 'camera.log')
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    log = (tmp_path / 'camera.log').read_text()
    assert code != 0, log
    assert expected in log and 'Traceback' not in log, log


def test_empty_directory_is_a_clear_error(node_env, tmp_path):
    empty = tmp_path / 'frames'
    empty.mkdir()
    process = start_node('camera_node', node_env, parameters={'source': str(empty)},
                         log_file=tmp_path / 'camera.log')
    code = process.wait(30)
    log = (tmp_path / 'camera.log').read_text()
    assert code == 1 and str(empty) in log and 'Traceback' not in log, log

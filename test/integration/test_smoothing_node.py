"""smoothing_node as a process: confirmation after N = FPS/2 frames at two rates, release."""

from __future__ import annotations

import pytest
from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Classification, Detection2D, Detection2DArray,
                             ObjectHypothesis, ObjectHypothesisWithPose)

from ros_onnx_vision.ros.stamps import seconds_to_stamp

from conftest import reliability_settled
from tools.demo.graph_runner import start_node


def header(t: float) -> Header:
    return Header(frame_id='camera', stamp=seconds_to_stamp(t))


def classification(t: float, label: str | None) -> Classification:
    msg = Classification(header=header(t))
    if label is not None:
        msg.results = [ObjectHypothesis(class_id=label, score=0.9)]
    return msg


def detections(t: float, boxes: list[tuple[float, float, float, float]]) -> Detection2DArray:
    msg = Detection2DArray(header=header(t))
    for x1, y1, x2, y2 in boxes:
        bbox = BoundingBox2D(size_x=float(x2 - x1), size_y=float(y2 - y1))
        bbox.center.position.x, bbox.center.position.y = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        msg.detections.append(Detection2D(header=msg.header, bbox=bbox, results=[
            ObjectHypothesisWithPose(hypothesis=ObjectHypothesis(class_id='person', score=0.8))]))
    return msg


def start_smoothing(probe, env, tmp_path, task):
    in_type, in_topic = ((Classification, 'classification') if task == 'classification'
                         else (Detection2DArray, 'detections'))
    out = probe.subscribe(in_type, f'{in_topic}_smoothed')
    publisher = probe.node.create_publisher(in_type, in_topic, 10)
    process = start_node('smoothing_node', env, parameters={'task': task, 'timeout': 1.0},
                         log_file=tmp_path / 'smoothing.log')
    assert probe.spin_until(lambda: publisher.get_subscription_count() > 0, 20), \
        (tmp_path / 'smoothing.log').read_text()
    probe.spin_until(lambda: probe.node.count_publishers(f'{in_topic}_smoothed') > 0, 10)
    log = tmp_path / 'smoothing.log'
    assert probe.spin_until(lambda: reliability_settled(log.read_text()), 10), log.read_text()
    probe.spin_for(0.2)
    return publisher, out, process


def send_and_collect(probe, publisher, out, messages):
    """Publish each message, wait for its smoothed answer; return the answers in order."""
    answers = []
    for msg in messages:
        before = len(out)
        publisher.publish(msg)
        assert probe.spin_until(lambda: len(out) > before, 5), 'no smoothed output'
        answers.append(out[-1][1])
    return answers


@pytest.mark.parametrize('fps, n', [(10.0, 5), (30.0, 15)])
def test_classification_confirmed_after_n_frames(ros_probe, node_env, tmp_path, fps, n):
    publisher, out, process = start_smoothing(ros_probe, node_env, tmp_path, 'classification')
    try:
        t0 = 1000.0  # stamps on a clock far from the wall clock (as under simulation)
        labels = ['3'] * (n + 5) + ['8'] + ['3'] * 3  # one outlier must not release '3'
        answers = send_and_collect(ros_probe, publisher, out,
                                   [classification(t0 + i / fps, lab)
                                    for i, lab in enumerate(labels)])
        confirmed = [a.results[0].class_id if a.results else None for a in answers]
        assert confirmed[:n - 1] == [None] * (n - 1), 'confirmed too early'
        assert confirmed[n - 1] == '3', f'not confirmed on frame {n}: {confirmed}'
        assert all(c == '3' for c in confirmed[n - 1:]), confirmed
        # Output keeps the header of the input it answers.
        assert answers[4].header.stamp == seconds_to_stamp(t0 + 4 / fps)
        # No more input: after the timeout the confirmation is released (empty result).
        count = len(out)
        ros_probe.spin_until(lambda: len(out) > count, 3.0)
        assert len(out) > count and not out[-1][1].results
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_detection_tracks_get_ids_and_one_frame_boxes_never_publish(ros_probe, node_env,
                                                                     tmp_path):
    publisher, out, process = start_smoothing(ros_probe, node_env, tmp_path, 'detection')
    try:
        fps, n = 20.0, 10
        frames = []
        for i in range(n + 5):
            boxes = [(100 + 2 * i, 50, 160 + 2 * i, 200)]
            if i == 3:
                boxes.append((400, 300, 450, 380))  # a one-frame false positive
            frames.append(detections(50.0 + i / fps, boxes))
        answers = send_and_collect(ros_probe, publisher, out, frames)
        counts = [len(a.detections) for a in answers]
        assert counts[:n - 1] == [0] * (n - 1) and all(c == 1 for c in counts[n - 1:]), str(counts)
        ids = {a.detections[0].id for a in answers[n - 1:]}
        assert len(ids) == 1 and ids != {''}
        last = answers[-1].detections[0]
        assert last.bbox.center.position.x == pytest.approx(130 + 2 * (n + 4), abs=1e-6)
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_out_of_range_parameter_is_rejected(node_env, tmp_path):
    process = start_node('smoothing_node', node_env, parameters={'window': -1.0},
                         log_file=tmp_path / 'smoothing.log')
    assert process.wait(30) == 1
    log = (tmp_path / 'smoothing.log').read_text()
    assert 'window' in log and 'Traceback' not in log, log


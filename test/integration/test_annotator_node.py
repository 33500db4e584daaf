"""annotator_node in the real graph: camera, inference, smoothing and annotator processes over DDS.

The annotated image is the frame a result was found on (same header), with the raw boxes and,
once smoothing_node confirmed them, the confirmed ones in their track colours; inference_node
publishes no image_annotated any more.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from ros_onnx_vision.inference.annotation import class_color
from ros_onnx_vision.ros.graph import pipeline
from ros_onnx_vision.ros.image_conversion import image_to_numpy
from ros_onnx_vision.ros.messages import results_from_msg

from conftest import DATA, node_logs
from tools.demo.graph_runner import GraphProcesses

NODE_START_S = 90.0  # imports, model and self-check of a loaded machine
RELIABLE = QoSProfile(depth=50)


def key(header: Header) -> tuple[int, int, str]:
    return header.stamp.sec, header.stamp.nanosec, header.frame_id


def border(box: tuple[float, ...], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a box's one-pixel outline, as draw_confirmed draws it (int())."""
    x1, y1, x2, y2 = (int(v) for v in box)
    x1, x2 = max(0, x1), min(shape[1] - 1, x2)
    y1, y2 = max(0, y1), min(shape[0] - 1, y2)
    xs, ys = np.arange(x1, x2 + 1), np.arange(y1, y2 + 1)
    rows = np.concatenate([np.full_like(xs, y1), np.full_like(xs, y2), ys, ys])
    cols = np.concatenate([xs, xs, np.full_like(ys, x1), np.full_like(ys, x2)])
    return rows, cols


def annotator_status(diagnostics: list) -> tuple[float, dict[str, str]]:
    """The last annotator_node status: when the probe got it, and its values."""
    for received, msg in reversed(diagnostics):
        for status in msg.status:
            if status.name == 'annotator_node: annotation':
                return received, {kv.key: kv.value for kv in status.values}
    return 0.0, {}


def test_annotator_draws_raw_and_confirmed_results_on_their_own_frame(
        ros_probe, node_env, tmp_path):
    graph = pipeline('human_detection', annotate=True)
    images = ros_probe.subscribe(Image, 'image_raw', qos_profile_sensor_data)
    raw = ros_probe.subscribe(Detection2DArray, 'detections', RELIABLE)
    smoothed = ros_probe.subscribe(Detection2DArray, 'detections_smoothed', RELIABLE)
    annotated = ros_probe.subscribe(Image, 'image_annotated', QoSProfile(depth=20))
    diagnostics = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 50)
    parameters = {
        # Ignored there now: one warning says where it went.
        'inference_node': {'annotate_confirmed': False},
        'camera_node': {'source': str(DATA / 'vtest_200.jpg'), 'fps': 15.0,
                        'frame_id': 'street_cam',
                        'wait_for_subscribers': 3}}  # inference, annotator, this probe
    downstream = graph.subset('inference_node', 'smoothing_node', 'annotator_node')
    smoothed_by_key = {}

    def confirmed_frames() -> list:
        smoothed_by_key.update((key(m.header), m) for _, m in smoothed)
        return [m for _, m in annotated if smoothed_by_key.get(key(m.header)) is not None
                and smoothed_by_key[key(m.header)].detections]

    camera = None
    with GraphProcesses(downstream, node_env, parameters=parameters, log_dir=tmp_path) as nodes:
        try:
            ros_probe.spin_until(lambda: all(
                ros_probe.subscriptions[topic].get_publisher_count() > 0 for topic in
                ('detections', 'detections_smoothed', 'image_annotated'))
                or bool(nodes.exited()), NODE_START_S)
            ros_probe.spin_for(1.0)  # the nodes match this probe too
            camera = GraphProcesses(graph.subset('camera_node'), node_env,
                                    parameters=parameters, log_dir=tmp_path).start()
            done = ros_probe.spin_until(lambda: len(confirmed_frames()) >= 5
                                        or bool(nodes.exited()), NODE_START_S)
            # Who publishes image_annotated, as `ros2 topic info -v` lists it.
            publishers = {topic: sorted(info.node_name for info in
                                        ros_probe.node.get_publishers_info_by_topic(topic))
                          for topic in ('/image_annotated', '/image_annotated/compressed')}
            ros_probe.spin_for(2.5)  # a diagnostics report after these frames
            exited = {**nodes.exited(), **camera.exited()}
        finally:
            if camera is not None:
                camera.stop()
    logs = node_logs(tmp_path, 'camera_node', 'inference_node', 'smoothing_node',
                     'annotator_node')
    assert not exited, f'nodes exited early: {exited}\n{logs}'
    assert done, (f'{len(annotated)} annotated, {len(raw)} results, '
                  f'{len(confirmed_frames())} with confirmed results\n{logs}')
    assert publishers == {'/image_annotated': ['annotator_node'],
                          '/image_annotated/compressed': ['annotator_node']}, publishers
    inference_log = (tmp_path / 'inference_node.log').read_text()
    assert inference_log.count('drawing moved to annotator_node') == 1, inference_log

    # Every annotated frame is one a result was found on: same stamp and frame_id.
    raw_by_key = {key(m.header): m for _, m in raw}
    assert annotated and all(key(m.header) in raw_by_key for _, m in annotated), \
        [key(m.header) for _, m in annotated][:5]
    assert images, 'the probe heard no image_raw'
    source = {key(m.header): m for _, m in images}
    still = image_to_numpy(images[-1][1])  # a still image: every frame has these pixels
    for _, msg in annotated:
        drawn = image_to_numpy(msg)
        original = image_to_numpy(source[key(msg.header)]) if key(msg.header) in source \
            else still
        assert drawn.shape == original.shape == (576, 768, 3)
        changed = np.any(drawn != original, axis=2)
        boxes = [d.box for d in results_from_msg(raw_by_key[key(msg.header)])]
        assert boxes, 'vtest_200.jpg shows 7 people'
        for box in boxes:  # every raw box is outlined
            rows, cols = border(box, drawn.shape)
            assert changed[rows, cols].mean() > 0.5, (box, changed[rows, cols].mean())

    # Confirmed tracks: bold outlines in the colour of their track id, on most frames that have
    # them (a confirmed result later than annotator_node's wait leaves raw boxes only).
    frames = confirmed_frames()
    shown = 0
    for msg in frames:
        drawn = image_to_numpy(msg)
        tracks = results_from_msg(smoothed_by_key[key(msg.header)])
        assert all(t.track_id.isdigit() for t in tracks)
        hits = total = 0
        for track in tracks:
            x1, y1, _, y2 = (int(v) for v in track.box)
            column = drawn[max(0, y1):min(576, y2), min(max(0, x1), 767)]
            hits += int(np.all(column == class_color(int(track.track_id)), axis=1).sum())
            total += len(column)
        shown += hits > 0.6 * total
    assert shown >= 0.8 * len(frames), (shown, len(frames))

    reported, status = annotator_status(diagnostics)
    assert status, 'no annotator_node diagnostics'
    assert int(status['unmatched']) <= 1, status
    drawn_before = sum(t <= reported for t, _ in annotated)
    assert int(status['drawn']) >= drawn_before and int(status['errors']) == 0, status


def test_annotator_subscribes_to_the_camera_only_while_someone_views(
        ros_probe, node_env, tmp_path):
    graph = pipeline('human_detection', annotate=True)

    def image_subscribers() -> list[str]:
        return sorted(info.node_name for info in
                      ros_probe.node.get_subscriptions_info_by_topic('/image_raw'))

    with GraphProcesses(graph.subset('annotator_node'), node_env, log_dir=tmp_path) as nodes:
        up = ros_probe.spin_until(lambda: ros_probe.node.count_publishers('/image_annotated') > 0
                                  or bool(nodes.exited()), NODE_START_S)
        ros_probe.spin_for(1.0)
        unwatched = image_subscribers()
        ros_probe.subscribe(Image, 'image_annotated', 1)
        watched = ros_probe.spin_until(lambda: image_subscribers() == ['annotator_node'], 10.0)
        ros_probe.node.destroy_subscription(ros_probe.subscriptions.pop('image_annotated'))
        left = ros_probe.spin_until(lambda: image_subscribers() == [], 15.0)
        exited = nodes.exited()
    logs = node_logs(tmp_path, 'annotator_node')
    assert up and not exited, f'{exited}\n{logs}'
    assert unwatched == [], unwatched  # no viewer: the camera's frames are not even received
    assert watched, f'no image_raw subscription with a viewer\n{logs}'
    assert left, f'still subscribed after the viewer left: {image_subscribers()}\n{logs}'
    log = (tmp_path / 'annotator_node.log').read_text()
    assert 'a viewer: subscribed to /image_raw' in log and 'no viewer: unsubscribed' in log, log

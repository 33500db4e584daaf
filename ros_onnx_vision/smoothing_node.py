"""smoothing_node: publishes only results confirmed by frame-rate-aware consecutive voting.

Subscribes `classification` (vision_msgs/Classification) or `detections`
(vision_msgs/Detection2DArray) and publishes `classification_smoothed` / `detections_smoothed`
on every input, with the input's header; empty when nothing is confirmed. Its rate estimate,
N, M and confirmed results go to /diagnostics. The logic lives in `ros_onnx_vision.voting` and
`ros_onnx_vision.diagnostics`.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Header
from vision_msgs.msg import Classification, Detection2DArray, ObjectHypothesis

from ros_onnx_vision.diagnostics import QosMismatch, SmoothingMonitor, SmoothingSnapshot, Status
from ros_onnx_vision.messages import detections_from_msg, tracks_to_msg
from ros_onnx_vision.node_support import (declare_parameters, DiagnosticsPublisher, qos,
                                          qos_mismatch_callbacks, run_node, seconds_to_stamp,
                                          stamp_to_seconds)
from ros_onnx_vision.parameters import SMOOTHING_NODE
from ros_onnx_vision.voting import DetectionTracker, LabelVoter


class SmoothingNode(Node):
    """Thin ROS wrapper around LabelVoter / DetectionTracker."""

    def __init__(self) -> None:
        super().__init__('smoothing_node')
        params = declare_parameters(self, SMOOTHING_NODE)
        self.task = params['task']
        common = dict(window_s=params['window'], min_score=params['min_score'],
                      release_frames=params['release_frames'] or None,
                      timeout_s=params['timeout'], rate_window_s=params['rate_window'])
        self.voter: LabelVoter | DetectionTracker
        if self.task == 'classification':
            self.voter = LabelVoter(**common)
            in_type, in_topic, out_type, out_topic = (
                Classification, 'classification', Classification, 'classification_smoothed')
        else:
            self.voter = DetectionTracker(**common, min_iou=params['min_iou'],
                                          smoothing=params['box_smoothing'])
            in_type, in_topic, out_type, out_topic = (
                Detection2DArray, 'detections', Detection2DArray, 'detections_smoothed')
        self.add_post_set_parameters_callback(self.on_parameters)
        self.last_header: Header | None = None
        # Node-clock time of the last input (sim time under use_sim_time), for the timeout.
        self.last_arrival = 0.0
        self.summary = ''
        self.in_topic = in_topic
        self.received = 0
        self.started = self.now()
        self.qos_mismatch = QosMismatch()
        self.monitor = SmoothingMonitor(self.get_name())
        self.diagnostics = DiagnosticsPublisher(self, params['diagnostics_period'], self.report)
        self.publisher = self.create_publisher(out_type, out_topic, 10)
        in_qos = qos(params['reliability'], 10)
        self.subscription = self.create_subscription(
            in_type, in_topic, self.on_input, in_qos,
            event_callbacks=qos_mismatch_callbacks(self, in_topic, in_qos, self.qos_mismatch))
        self.in_topic = self.subscription.topic_name  # as resolved, for logs and diagnostics
        self.timer = self.create_timer(min(0.1, params['timeout'] / 4), self.on_timer)
        self.get_logger().info(
            f'smoothing {self.subscription.topic_name} -> {self.publisher.topic_name}: '
            f'window {params["window"]} s '
            f'(N = FPS x window), release after {params["release_frames"] or "N"} frames, '
            f'timeout {params["timeout"]} s')

    def on_parameters(self, params: list[Parameter]) -> None:
        """Apply live changes (already validated) to the voter; its state is kept."""
        attributes = {'window': 'window_s', 'min_score': 'min_score', 'timeout': 'timeout_s',
                      'min_iou': 'min_iou', 'box_smoothing': 'smoothing'}
        for param in params:
            if param.name == 'release_frames':
                self.voter.release_frames = param.value or None
            elif param.name in attributes and hasattr(self.voter, attributes[param.name]):
                setattr(self.voter, attributes[param.name], float(param.value))
            if param.name in attributes or param.name == 'release_frames':
                self.get_logger().info(f'{param.name} set to {param.value}')

    def on_input(self, msg: Classification | Detection2DArray) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        self.last_header, self.last_arrival = msg.header, self.now()
        self.received += 1
        if isinstance(self.voter, LabelVoter):
            best = max(msg.results, key=lambda r: r.score) if msg.results else None
            state = self.voter.update(stamp, best.class_id if best else None,
                                      float(best.score) if best else 0.0)
            out = Classification(header=msg.header)
            if state.label is not None:
                out.results = [ObjectHypothesis(class_id=state.label,
                                                score=float(state.score or 0.0))]
        else:
            tracks = self.voter.update(stamp, detections_from_msg(msg))
            out = tracks_to_msg(msg.header, tracks)
        self.publisher.publish(out)
        self.log_if_changed()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_timer(self) -> None:
        """Release everything when no input arrived for `timeout` seconds of node clock."""
        if self.last_header is None:
            return
        idle = self.now() - self.last_arrival
        if idle <= self.voter.timeout_s:
            return
        # Express "now" on the inputs' own clock (sim time or recorded stamps alike).
        now_on_input_clock = stamp_to_seconds(self.last_header.stamp) + idle
        if isinstance(self.voter, LabelVoter):
            released = self.voter.check_timeout(now_on_input_clock).changed
        else:
            released = self.voter.check_timeout(now_on_input_clock)
        if released:
            header = Header(frame_id=self.last_header.frame_id,
                            stamp=seconds_to_stamp(now_on_input_clock))
            empty = (Classification(header=header) if isinstance(self.voter, LabelVoter)
                     else Detection2DArray(header=header))
            # Log first: whoever sees the empty message finds the reason already in the log.
            self.get_logger().warning(
                f'no input for {idle:.1f} s (timeout {self.voter.timeout_s} s): released all '
                'confirmed results; input is stale')
            self.publisher.publish(empty)
        self.log_if_changed()

    def report(self) -> list[Status]:
        voter = self.voter
        confirmed = ([voter.label] if voter.label is not None else []) \
            if isinstance(voter, LabelVoter) else sorted(t.id for t in voter.confirmed)
        since = self.last_arrival if self.last_header is not None else self.started
        return [self.monitor.report(time.monotonic(), SmoothingSnapshot(
            task=self.task, input_topic=self.in_topic, received=self.received, fps=voter.fps,
            n=voter.n, m=voter.m, confirmed=confirmed, backwards=voter.backwards,
            duplicates=voter.duplicates, resets=voter.resets, idle_s=self.now() - since,
            timeout_s=self.voter.timeout_s, qos=self.qos_mismatch))]

    def log_if_changed(self) -> None:
        summary = self.voter.describe()
        if isinstance(self.voter, LabelVoter):
            key = str(self.voter.label)
        else:
            key = ','.join(sorted(t.id for t in self.voter.confirmed))
        if key != self.summary:
            self.summary = key
            self.get_logger().info(summary)


def main(args: list[str] | None = None) -> int:
    return run_node(SmoothingNode, 'smoothing_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

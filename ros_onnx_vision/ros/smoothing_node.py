"""smoothing_node: publishes only results confirmed by frame-rate-aware consecutive voting.

Subscribes `classification` (vision_msgs/Classification) or `detections`
(vision_msgs/Detection2DArray) and publishes `classification_smoothed` / `detections_smoothed`
on every input, with the input's header; empty when nothing is confirmed. Its rate estimate,
N, M and confirmed results go to /diagnostics. The voting lives in `ros_onnx_vision.smoothing`
(one interface for both tasks), the diagnostics rules in `ros_onnx_vision.ros.diagnostics`.
It imports neither ONNX Runtime nor OpenCV.
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Header
from vision_msgs.msg import Classification, Detection2DArray

from ros_onnx_vision.results import Task
from ros_onnx_vision.ros.diagnostics import (QosMismatch, SmoothingMonitor, SmoothingSnapshot,
                                             Status)
from ros_onnx_vision.ros.messages import RESULT_MESSAGES, results_from_msg, results_to_msg
from ros_onnx_vision.ros.node_support import (declare_parameters, DiagnosticsPublisher,
                                              MatchedSubscription, run_node, seconds_to_stamp,
                                              stamp_to_seconds)
from ros_onnx_vision.ros.parameters import SMOOTHING_NODE
from ros_onnx_vision.smoothing.label_voter import LabelVoter
from ros_onnx_vision.smoothing.rate import RateVoting
from ros_onnx_vision.smoothing.tracker import DetectionTracker


class SmoothingNode(Node):
    """Thin ROS wrapper around a voter: LabelVoter or DetectionTracker, by `task`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('smoothing_node', **kwargs)  # kwargs: e.g. context (tests)
        params = declare_parameters(self, SMOOTHING_NODE)
        self.task = Task(params['task'])
        common = dict(window_s=params['window'], min_score=params['min_score'],
                      release_frames=params['release_frames'] or None,
                      timeout_s=params['timeout'], rate_window_s=params['rate_window'])
        self.voter: RateVoting
        if self.task is Task.CLASSIFICATION:
            self.voter = LabelVoter(**common)
        else:
            self.voter = DetectionTracker(**common, min_iou=params['min_iou'],
                                          smoothing=params['box_smoothing'])
        msg_type = RESULT_MESSAGES[self.task]
        in_topic, out_topic = self.task.result_topic, self.task.smoothed_topic
        self.add_post_set_parameters_callback(self.on_parameters)
        self.last_header: Header | None = None
        # Node-clock time of the last input (sim time under use_sim_time), for the timeout.
        self.last_arrival = 0.0
        self.summary: str | None = None  # confirmed keys last logged; None: log the first
        self.in_topic = in_topic
        self.received = 0
        self.started = self.now()
        self.qos_mismatch = QosMismatch()
        self.monitor = SmoothingMonitor(self.get_name())
        self.diagnostics = DiagnosticsPublisher(self, params['diagnostics_period'], self.report)
        self.publisher = self.create_publisher(msg_type, out_topic, 10)
        self.subscription = MatchedSubscription(self, msg_type, in_topic, self.on_input,
                                                params['reliability'], 10, self.qos_mismatch)
        self.in_topic = self.subscription.topic_name  # as resolved, for logs and diagnostics
        self.timer = self.create_timer(min(0.1, params['timeout'] / 4), self.on_timer)
        self.get_logger().info(
            f'smoothing {self.subscription.topic_name} ({self.qos_mismatch.reliability}) -> '
            f'{self.publisher.topic_name}: '
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
        confirmed = self.voter.vote(stamp, results_from_msg(msg))
        self.publisher.publish(results_to_msg(self.task, msg.header, confirmed))
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
        if self.voter.release_if_stale(now_on_input_clock):
            header = Header(frame_id=self.last_header.frame_id,
                            stamp=seconds_to_stamp(now_on_input_clock))
            empty = results_to_msg(self.task, header, [])
            # Log first: whoever sees the empty message finds the reason already in the log.
            self.get_logger().warning(
                f'no input for {idle:.1f} s (timeout {self.voter.timeout_s} s): released all '
                'confirmed results; input is stale')
            self.publisher.publish(empty)
        self.log_if_changed()

    def report(self) -> list[Status]:
        voter = self.voter
        since = self.last_arrival if self.last_header is not None else self.started
        return [self.monitor.report(time.monotonic(), SmoothingSnapshot(
            task=self.task, input_topic=self.in_topic, received=self.received, fps=voter.fps,
            n=voter.n, m=voter.m, confirmed=voter.confirmed_keys, backwards=voter.backwards,
            duplicates=voter.duplicates, resets=voter.resets, idle_s=self.now() - since,
            timeout_s=self.voter.timeout_s, qos=self.qos_mismatch))]

    def log_if_changed(self) -> None:
        key = ','.join(self.voter.confirmed_keys)
        if key != self.summary:
            self.summary = key
            self.get_logger().info(self.voter.describe())


def main(args: list[str] | None = None) -> int:
    return run_node(SmoothingNode, 'smoothing_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

"""smoothing_node: publishes only results confirmed by frame-rate-aware consecutive voting.

Subscribes `classification` (vision_msgs/Classification) or `detections`
(vision_msgs/Detection2DArray) and publishes `classification_smoothed` / `detections_smoothed`
on every input, with the input's header; empty when nothing is confirmed. Its rate estimate,
N, M and confirmed results go to /diagnostics. A lifecycle node (`ros.vision_node`): configure
builds the voter and the publisher, activate subscribes, deactivate unsubscribes (the voter
keeps its tracks), cleanup drops the voter. The voting lives in `ros_onnx_vision.smoothing`
(one interface for both tasks), the diagnostics rules in `ros_onnx_vision.ros.diagnostics`.
It imports neither ONNX Runtime nor OpenCV.
"""

from __future__ import annotations

import time
from typing import Any

from std_msgs.msg import Header
from vision_msgs.msg import Classification, Detection2DArray

from ros_onnx_vision.results import Task
from ros_onnx_vision.ros.diagnostics import (QosMismatch, SmoothingMonitor, SmoothingSnapshot,
                                             Status)
from ros_onnx_vision.ros.matched_subscription import MatchedSubscription
from ros_onnx_vision.ros.messages import RESULT_MESSAGES, results_from_msg, results_to_msg
from ros_onnx_vision.ros.node_main import run_node
from ros_onnx_vision.ros.parameters import SmoothingParameters
from ros_onnx_vision.ros.stamps import seconds_to_stamp, stamp_to_seconds
from ros_onnx_vision.ros.vision_node import VisionNode
from ros_onnx_vision.smoothing.label_voter import LabelVoter
from ros_onnx_vision.smoothing.rate import RateVoting
from ros_onnx_vision.smoothing.tracker import DetectionTracker

# Parameter -> voter attribute, for live changes (the voter keeps its state).
LIVE_VOTER_ATTRIBUTES = {'window': 'window_s', 'min_score': 'min_score', 'timeout': 'timeout_s',
                         'min_iou': 'min_iou', 'box_smoothing': 'smoothing'}


class SmoothingNode(VisionNode[SmoothingParameters]):
    """Thin ROS wrapper around a voter: LabelVoter or DetectionTracker, by `task`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('smoothing_node', SmoothingParameters, **kwargs)
        self.task = Task(self.params.task)
        self.voter: RateVoting | None = None
        self.publisher: Any = None
        self.subscription: MatchedSubscription | None = None
        self.timer: Any = None
        self.last_header: Header | None = None
        # Node-clock time of the last input (sim time under use_sim_time), for the timeout.
        self.last_arrival = 0.0
        self.summary: str | None = None  # confirmed keys last logged; None: log the first
        self.in_topic = self.resolve_topic_name(self.task.result_topic)
        self.received = 0
        self.started = self.now_s()
        self.qos_mismatch = QosMismatch()
        self.monitor = SmoothingMonitor(self.get_name())

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        p = self.params
        common = dict(window_s=p.window, min_score=p.min_score,
                      release_frames=p.release_frames or None, timeout_s=p.timeout,
                      rate_window_s=p.rate_window)
        if self.task is Task.CLASSIFICATION:
            self.voter = LabelVoter(**common)
        else:
            self.voter = DetectionTracker(**common, min_iou=p.min_iou, smoothing=p.box_smoothing)
        self.publisher = self.create_lifecycle_publisher(RESULT_MESSAGES[self.task],
                                                         self.task.smoothed_topic, 10)

    def activate(self) -> None:
        p = self.params
        self.subscription = MatchedSubscription(self, RESULT_MESSAGES[self.task], self.in_topic,
                                                self.on_input, p.reliability, 10,
                                                self.qos_mismatch)
        self.in_topic = self.subscription.topic_name  # as resolved, for logs and diagnostics
        self.timer = self.create_timer(min(0.1, p.timeout / 4), self.on_timer)
        self.get_logger().info(
            f'smoothing {self.in_topic} ({self.qos_mismatch.reliability}) -> '
            f'{self.publisher.topic_name}: window {p.window} s (N = FPS x window), release '
            f'after {p.release_frames or "N"} frames, timeout {p.timeout} s')

    def deactivate(self) -> None:
        if self.subscription is not None:
            self.subscription.destroy()
            self.subscription = None
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None

    def cleanup(self) -> None:
        if self.publisher is not None:
            self.destroy_lifecycle_publisher(self.publisher)
            self.publisher = None
        self.voter = None
        self.last_header, self.summary = None, None

    def on_parameters_changed(self, changed: dict[str, Any]) -> None:
        """Apply live changes (already validated) to the voter; its state is kept."""
        voter = self.voter
        for name, value in changed.items():
            if voter is None:
                break
            if name == 'release_frames':
                voter.release_frames = value or None
            elif name in LIVE_VOTER_ATTRIBUTES and hasattr(voter, LIVE_VOTER_ATTRIBUTES[name]):
                setattr(voter, LIVE_VOTER_ATTRIBUTES[name], float(value))
            if name in LIVE_VOTER_ATTRIBUTES or name == 'release_frames':
                self.get_logger().info(f'{name} set to {value}')

    # --- inputs ----------------------------------------------------------------------------
    def on_input(self, msg: Classification | Detection2DArray) -> None:
        voter = self.voter
        if voter is None:
            return
        stamp = stamp_to_seconds(msg.header.stamp)
        self.last_header, self.last_arrival = msg.header, self.now_s()
        self.received += 1
        confirmed = voter.vote(stamp, results_from_msg(msg))
        self.publisher.publish(results_to_msg(self.task, msg.header, confirmed))
        self.log_if_changed()

    def on_timer(self) -> None:
        """Release everything when no input arrived for `timeout` seconds of node clock."""
        voter = self.voter
        if self.last_header is None or voter is None:
            return
        idle = self.now_s() - self.last_arrival
        if idle <= voter.timeout_s:
            return
        # Express "now" on the inputs' own clock (sim time or recorded stamps alike).
        now_on_input_clock = stamp_to_seconds(self.last_header.stamp) + idle
        if voter.release_if_stale(now_on_input_clock):
            header = Header(frame_id=self.last_header.frame_id,
                            stamp=seconds_to_stamp(now_on_input_clock))
            empty = results_to_msg(self.task, header, [])
            # Log first: whoever sees the empty message finds the reason already in the log.
            self.get_logger().warning(
                f'no input for {idle:.1f} s (timeout {voter.timeout_s} s): released all '
                'confirmed results; input is stale')
            self.publisher.publish(empty)
        self.log_if_changed()

    def report(self) -> list[Status]:
        voter = self.voter
        since = self.last_arrival if self.last_header is not None else self.started
        return [self.monitor.report(time.monotonic(), SmoothingSnapshot(
            task=self.task, input_topic=self.in_topic, received=self.received,
            fps=voter.fps if voter else None, n=voter.n if voter else None,
            m=voter.m if voter else None, confirmed=voter.confirmed_keys if voter else [],
            backwards=voter.backwards if voter else 0,
            duplicates=voter.duplicates if voter else 0, resets=voter.resets if voter else 0,
            idle_s=self.now_s() - since, timeout_s=self.params.timeout, qos=self.qos_mismatch,
            state=self.node_state.value, configure_error=self.configure_error))]

    def log_if_changed(self) -> None:
        if self.voter is None:
            return
        key = ','.join(self.voter.confirmed_keys)
        if key != self.summary:
            self.summary = key
            self.get_logger().info(self.voter.describe())


def main(args: list[str] | None = None) -> int:
    return run_node(SmoothingNode, 'smoothing_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

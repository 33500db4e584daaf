"""Publishes a node's diagnostics.Status list on /diagnostics, like diagnostic_updater."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Header

from ros_onnx_vision.ros.diagnostics import Status


def status_msg(status: Status) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=bytes([status.level]), name=status.name, message=status.message,
        hardware_id=status.hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in status.values.items()])


class DiagnosticsPublisher:
    """Publishes `report()` on /diagnostics every `period` s of steady time (also when a
    simulation clock is paused), stamped with the node clock, like diagnostic_updater."""

    def __init__(self, node: Node, period: float, report: Callable[[], Iterable[Status]]):
        self.node = node
        self.report = report
        self.publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.timer = node.create_timer(period, self.publish,
                                       clock=Clock(clock_type=ClockType.STEADY_TIME))

    def publish(self) -> None:
        try:
            statuses = [status_msg(status) for status in self.report()]
        except Exception as error:  # noqa: BLE001 - diagnostics must never stop the node
            self.node.get_logger().error(f'diagnostics failed: {type(error).__name__}: {error}',
                                         throttle_duration_sec=10.0)
            return
        self.publisher.publish(DiagnosticArray(
            header=Header(stamp=self.node.get_clock().now().to_msg()), status=statuses))

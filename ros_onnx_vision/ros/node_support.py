"""rclpy glue shared by the nodes: parameters, QoS, diagnostics, stamps and main()."""

from __future__ import annotations

from collections.abc import Callable, Iterable
import math
import signal
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, qos_policy_name_from_kind, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Header

from ros_onnx_vision.ros.diagnostics import qos_mismatch_message, QosMismatch, Status
from ros_onnx_vision.ros.environment import apply_fastdds_profile, keep_image_buffers
from ros_onnx_vision.ros.parameters import ParameterSpec


def _descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    description = spec.description
    if spec.choices:
        description += ' (one of: ' + ', '.join(repr(c) for c in spec.choices) + ')'
    descriptor = ParameterDescriptor(description=description, read_only=spec.read_only)
    is_number = isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool)
    if is_number and spec.low is not None and spec.high is not None:
        if isinstance(spec.default, int):
            descriptor.integer_range = [IntegerRange(
                from_value=int(spec.low), to_value=int(spec.high), step=0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    return descriptor


def declare_parameters(node: Node, specs: Iterable[ParameterSpec]) -> dict[str, Any]:
    """Declare every parameter with its description and range; reject bad values clearly.

    Values given at start (parameter files, -p) are checked too: a bad one raises ValueError
    naming the parameter, the value and what is allowed, so the node refuses to start.
    Returns the values in effect.
    """
    specs = list(specs)
    by_name = {spec.name: spec for spec in specs}
    values = {}
    for spec in specs:
        param = node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        reason = spec.check(param.value)
        if reason is not None:
            raise ValueError(f'invalid parameter: {reason}')
        values[spec.name] = param.value

    def on_set(params: list[Parameter]) -> SetParametersResult:
        for param in params:
            spec = by_name.get(param.name)
            reason = spec.check(param.value) if spec else None
            if reason is not None:
                node.get_logger().warning(f'rejected parameter change: {reason}')
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def after_set(params: list[Parameter]) -> None:
        # Nodes read the returned dict where a live change can take effect; every other
        # parameter is read_only in its ParameterSpec.
        for param in params:
            if param.name in values:
                values[param.name] = param.value

    node.add_on_set_parameters_callback(on_set)
    node.add_post_set_parameters_callback(after_set)
    return values


def qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last QoS with the given reliability ('best_effort' or 'reliable')."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=(ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort'
                     else ReliabilityPolicy.RELIABLE))


def qos_mismatch_callbacks(node: Node, topic: str, requested: QoSProfile,
                           record: QosMismatch) -> SubscriptionEventCallbacks:
    """Event callbacks that log an incompatible publisher QoS clearly and count it in `record`.

    The node's `reliability` parameter sets the subscription's reliability, hence the advice.
    """
    wanted = {'RELIABILITY': requested.reliability.name.lower(),
              'DURABILITY': requested.durability.name.lower()}

    def on_incompatible(info: QoSRequestedIncompatibleQoSInfo) -> None:
        message = qos_mismatch_message(topic, qos_policy_name_from_kind(info.last_policy_kind),
                                       wanted, {'RELIABILITY': 'reliability'})
        record.record(message, info.total_count)
        node.get_logger().warning(message)

    return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)


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


def stamp_to_seconds(stamp: TimeMsg) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> TimeMsg:
    sec = math.floor(seconds)
    return TimeMsg(sec=int(sec), nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))


class _StopRequest:
    """SIGINT/SIGTERM handler that only records the request; run_node() then stops in order.

    rclpy's own handler shuts the context down inside the signal, while the capture and
    inference threads may be publishing ("publisher's context is invalid") and raises
    KeyboardInterrupt wherever the main thread is, e.g. inside destroy_node() when Ctrl-C in a
    terminal and `ros2 launch` each send one SIGINT. Recording the request instead lets the
    node stop its threads while the context is still valid, whatever number of signals come.
    """

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signal = self.signal or signal.Signals(signum).name

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            # A signal ignored from the start stays ignored, as Python itself does: e.g.
            # SIGINT of a job that a shell without job control started in the background.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, self)

    @staticmethod
    def ignore_from_now() -> None:
        """Ignore further signals while the process exits: at interpreter finalization Python
        resets its handlers to the default, and a late second Ctrl-C would then kill the
        process (exit -2) instead of letting it end with its status."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def run_node(factory: Callable[[], Node], name: str, *, args: list[str] | None = None) -> int:
    """Standard main(): shipped DDS profile, init, spin, clean shutdown on Ctrl-C or SIGTERM.

    Any number of SIGINT/SIGTERM ends the process with status 0 and no traceback: the spin
    loop stops, destroy_node() stops the node's threads and publishers, then the context is
    shut down. The process also ends once the node sets its attribute `finished`, with the
    node's `exit_code` (default 0).
    A ValueError/RuntimeError raised while building the node (bad parameters, bad source) is
    logged as one clear line and the process exits with status 1, without a traceback.
    """
    apply_fastdds_profile()
    keep_image_buffers()  # before any frame is received: halves image latency (see there)
    stop = _StopRequest()
    stop.install()  # before init: a signal during a slow start is kept, not a traceback
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    executor = None
    status = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        # A node sets `finished` to end the process on its own (e.g. end of a video file).
        while stop.signal is None and rclpy.ok() and not getattr(node, 'finished', False):
            executor.spin_once(timeout_sec=0.1)
        status = int(getattr(node, 'exit_code', 0))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, RuntimeError, OSError, InvalidParameterValueException,
            InvalidParameterTypeException) as error:
        if stop.signal is not None or not rclpy.ok():
            pass  # a callback raced with the shutdown: a normal exit
        else:
            rclpy.logging.get_logger(name).fatal(str(error))
            status = 1
    except SystemExit as stop_exit:
        status = int(stop_exit.code or 0)
    finally:
        if stop.signal is not None and node is not None:
            node.get_logger().info(f'{stop.signal}: shutting down')
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()  # stops the node's threads while the context is valid
        rclpy.try_shutdown()
        stop.ignore_from_now()
    return status

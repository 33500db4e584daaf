"""rclpy glue shared by the nodes: parameters, QoS, diagnostics, stamps and main()."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
import math
import signal
import time
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


def has_best_available() -> bool:
    """Whether this distro's rclpy has BEST_AVAILABLE reliability (Iron and later; not Humble)."""
    return hasattr(ReliabilityPolicy, 'BEST_AVAILABLE')


_fallback_logged = False


def qos(reliability: str, depth: int, logger: Any = None) -> QoSProfile:
    """Keep-last QoS: reliability 'best_available', 'best_effort' or 'reliable'.

    'best_available' lets the middleware match the publishers (subscriptions only). Where the
    distro lacks it (Humble) it falls back to best effort, which `logger` is told once.
    """
    global _fallback_logged
    if reliability == 'best_available' and has_best_available():
        policy = ReliabilityPolicy.BEST_AVAILABLE
    elif reliability == 'reliable':
        policy = ReliabilityPolicy.RELIABLE
    else:
        policy = ReliabilityPolicy.BEST_EFFORT
        if reliability == 'best_available' and logger is not None and not _fallback_logged:
            _fallback_logged = True
            logger.warning('reliability best_available: this ROS distro has no BEST_AVAILABLE '
                           'QoS (Humble); subscribing best effort. A reliable camera then loses '
                           'the frames UDP drops: set reliability:=reliable for one')
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


def reliability_for(offered: Iterable[str]) -> str | None:
    """What BEST_AVAILABLE picks for these publishers' reliabilities: best_effort when any is
    best effort (a reliable subscription would hear nothing from it), reliable when all are;
    None when there are none (keep what is there)."""
    offered = set(offered)
    if not offered:
        return None
    return 'best_effort' if 'best_effort' in offered else 'reliable'


def qos_mismatch_callbacks(node: Node, topic: str, requested: QoSProfile,
                           record: QosMismatch, *,
                           adaptive: bool = False) -> SubscriptionEventCallbacks:
    """Event callbacks that log an incompatible publisher QoS clearly and count it in `record`.

    The node's `reliability` parameter sets the subscription's reliability, hence the advice.
    `adaptive`: the reliability follows the publishers (MatchedSubscription), so a reliability
    mismatch is transient (it re-subscribes) and is not reported; other policies still are.
    """
    wanted = {'RELIABILITY': requested.reliability.name.lower(),
              'DURABILITY': requested.durability.name.lower()}

    def on_incompatible(info: QoSRequestedIncompatibleQoSInfo) -> None:
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        if adaptive and policy == 'RELIABILITY':
            node.get_logger().debug(f'{topic}: reliability mismatch; re-subscribing')
            return
        message = qos_mismatch_message(topic, policy, wanted, {'RELIABILITY': 'reliability'})
        if policy == 'RELIABILITY':
            message += ' (or best_available, the default, which follows the publishers)'
        record.record(message, info.total_count)
        node.get_logger().warning(message)

    return SubscriptionEventCallbacks(incompatible_qos=on_incompatible)


MATCH_CHECK_PERIOD = 0.5  # seconds between checks of a best_available subscription's publishers
OVERLAP_LIMIT = 2.0  # seconds the replaced subscription stays at most, while the new one matches


class MatchedSubscription:
    """A subscription whose reliability matches its publishers (`best_available`), or is forced.

    rmw resolves BEST_AVAILABLE once, when the subscription is created, from the publishers it
    knows then. With none known yet (a node that starts before its camera, or before discovery
    has finished) it picks reliable: the camera then logs an incompatible-QoS warning, and a
    best-effort camera, e.g. a simulator's, is never heard. So BEST_AVAILABLE is requested only
    when publishers are known; with none, the subscription starts best effort (compatible with
    any publisher). Either way the choice is checked against the graph every
    MATCH_CHECK_PERIOD s of steady time, and the subscription is re-created with the
    reliability the publishers call for: best effort when any of them is best effort, reliable
    when all are (a best-effort subscription to a reliable camera loses every frame of which
    UDP drops a fragment). 'best_effort' and 'reliable' are used as given, with the mismatch
    warnings.

    The switch is make-before-break: the old subscription keeps delivering until the new one
    has matched the publishers (or OVERLAP_LIMIT s), so a switch while data flows leaves no gap
    (a gap of a few results broke smoothing_node's first tracks). Meanwhile both hear the same
    samples: a message is dropped when its twin (same header stamp and frame_id) already came
    through the other subscription. Pairing twins, rather than dropping stamps that are not
    newer, keeps the publisher's own backward or repeated stamps, which smoothing_node counts.
    """

    def __init__(self, node: Node, msg_type: Any, topic: str, callback: Callable[[Any], None],
                 reliability: str, depth: int, record: QosMismatch) -> None:
        self.node, self.msg_type, self.callback = node, msg_type, callback
        self.depth, self.record = depth, record
        self.adaptive = reliability == 'best_available' and has_best_available()
        self.topic_name: str = node.resolve_topic_name(topic)  # namespace, remapping applied
        if self.adaptive and not node.get_publishers_info_by_topic(self.topic_name):
            reliability = 'best_effort'
        self._old: Any = None  # the subscription being replaced, while the new one matches
        # While both exist: messages each delivered that the other has not heard yet, by key.
        self._unpaired: tuple[Counter, Counter] = (Counter(), Counter())
        self._side = 1  # of the newest subscription (0 or 1); the first one gets 0
        self._old_until = 0.0
        self._wanted_publishers = 0
        self.subscription = self._create(self.topic_name,
                                         qos(reliability, depth, node.get_logger()))
        self.record.reliability = self._effective() or reliability
        self._timer = node.create_timer(MATCH_CHECK_PERIOD, self.check,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME)) \
            if self.adaptive else None

    def _create(self, topic: str, profile: QoSProfile) -> Any:
        # The two subscriptions of a switch deliver from opposite sides, to pair the twins.
        side = self._side = 1 - self._side
        return self.node.create_subscription(
            self.msg_type, topic, lambda msg: self._deliver(msg, side), profile,
            event_callbacks=qos_mismatch_callbacks(self.node, topic, profile, self.record,
                                                   adaptive=self.adaptive))

    def _effective(self) -> str | None:
        """This subscription's reliability as the middleware resolved it (graph), if listed."""
        node = self.node
        for info in node.get_subscriptions_info_by_topic(self.topic_name):
            if (info.node_name, info.node_namespace) == (node.get_name(),
                                                         node.get_namespace()):
                return info.qos_profile.reliability.name.lower()
        return None

    def _deliver(self, msg: Any, side: int) -> None:
        header = getattr(msg, 'header', None)
        if self._old is not None and header is not None:
            key = (header.stamp.sec, header.stamp.nanosec, header.frame_id)
            other = self._unpaired[1 - side]
            if other[key]:
                other[key] -= 1
                return  # its twin came through the other subscription
            self._unpaired[side][key] += 1
        self.callback(msg)

    def check(self) -> None:
        """Re-subscribe when the publishers call for the other reliability."""
        if self._old is not None:
            if self.subscription.get_publisher_count() >= self._wanted_publishers or \
                    time.monotonic() > self._old_until:
                self._end_overlap()
            return
        offered = [info.qos_profile.reliability.name.lower()
                   for info in self.node.get_publishers_info_by_topic(self.topic_name)]
        wanted = reliability_for(offered)
        if wanted is None or wanted == self.record.reliability:
            return
        self._old = self.subscription
        self._old_until = time.monotonic() + OVERLAP_LIMIT
        self._wanted_publishers = len(offered)
        self.subscription = self._create(self.topic_name, qos(wanted, self.depth))
        self.record.reliability = wanted
        self.node.get_logger().info(
            f'{self.topic_name}: publishers offer {", ".join(sorted(set(offered)))}; '
            f'subscribed {wanted} (reliability best_available)')

    def _end_overlap(self) -> None:
        self.node.destroy_subscription(self._old)
        self._old = None
        for unpaired in self._unpaired:
            unpaired.clear()

    def destroy(self) -> None:
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None
        if self._old is not None:
            self.node.destroy_subscription(self._old)
            self._old = None
        self.node.destroy_subscription(self.subscription)


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

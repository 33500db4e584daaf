"""The shape every node of the package shares: a lifecycle node with typed parameters.

A node subclasses :class:`VisionNode` with its parameter dataclass (`ros.parameters`) and fills
in the same hooks:

- ``configure()`` / ``activate()`` / ``deactivate()`` / ``cleanup()``: the lifecycle
  transitions. ``configure`` acquires what the node needs (a source, a session, publishers) and
  raises with the reason when it cannot; the transition then fails with one clear line, which
  /diagnostics reports as ERROR. ``activate`` starts the work, ``deactivate`` stops it,
  ``cleanup`` releases what ``configure`` acquired.
- ``on_parameters_changed(changed)``: live parameter changes, already validated and already in
  ``self.params``.
- ``report()``: the node's diagnostics.Status list, published every ``diagnostics_period`` s.
- ``log_stats()``: a summary line every ``STATS_PERIOD`` s while active.

With ``autostart`` (the default) the node configures and activates itself on the first spin
(not in the constructor), so ``ros2 run`` and ``ros2 launch`` give a working node; without it
a lifecycle manager or ``ros2 lifecycle set`` drives it. When autostart fails, the node
publishes the ERROR until a /diagnostics listener has had it twice (at most
``EXIT_LINGER_S``), then ends the process with status 1 (``finished`` / ``exit_code``, read by
`node_main.run_node`), unless ``autostart_retry_delay`` says to try again (a camera that is not
plugged in yet).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import time
from typing import Any, Generic, TypeVar

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ros_onnx_vision.ros.diagnostics import Status
from ros_onnx_vision.ros.diagnostics_publisher import DiagnosticsPublisher
from ros_onnx_vision.ros.parameters import parameter_specs, ParameterSpec

P = TypeVar('P')
EXIT_LINGER_S = 5.0  # at most, after a failed autostart: the ERROR reaches /diagnostics


class NodeState(str, enum.Enum):
    """The primary lifecycle states (rclpy has no public accessor of the current one)."""

    UNCONFIGURED = 'unconfigured'
    INACTIVE = 'inactive'
    ACTIVE = 'active'
    FINALIZED = 'finalized'


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


def _plain(value: Any) -> Any:
    """rclpy gives arrays as array.array or tuples; the parameter classes hold lists."""
    return value if isinstance(value, (str, bytes, bool, int, float)) else list(value)


class VisionNode(LifecycleNode, Generic[P]):
    """Base of camera_node, inference_node and smoothing_node (see the module docstring)."""

    STATS_PERIOD = 10.0  # seconds between log_stats() lines while active

    def __init__(self, name: str, parameters: type[P], **kwargs: Any) -> None:
        """Declare `parameters` (bad values at start raise ValueError naming them)."""
        super().__init__(name, **kwargs)  # kwargs: e.g. context, parameter_overrides (tests)
        self.params: P = self._declare(parameters)
        self.node_state = NodeState.UNCONFIGURED
        self.configure_error = ''  # why the last configure failed, for /diagnostics
        self.finished = False  # run_node ends the process once set, with exit_code
        self.exit_code = 0
        self.diagnostics = DiagnosticsPublisher(self, self.params.diagnostics_period,
                                                self.report)
        self._stats_timer: Any = None
        self._exit_deadline = 0.0
        self._exit_heard = 0  # ERRORs published to a matched /diagnostics listener
        self._start_timer: Any = None
        self._error_logged: dict[str, float] = {}  # kind of error -> when last logged
        if self.params.autostart:
            self._start_timer = self.create_timer(0.0, self._autostart)

    # --- hooks -------------------------------------------------------------------------------
    def configure(self) -> None:
        """Acquire what the node needs; raise with the reason when it cannot."""

    def activate(self) -> None:
        """Start the work."""

    def deactivate(self) -> None:
        """Stop the work (idempotent)."""

    def cleanup(self) -> None:
        """Release what configure() acquired (idempotent: also after a failed configure)."""

    def on_parameters_changed(self, changed: dict[str, Any]) -> None:
        """Live parameter changes, validated and already in ``self.params``."""

    def report(self) -> list[Status]:
        """The node's diagnostics."""
        return []

    def log_stats(self) -> None:
        """A summary line, every STATS_PERIOD s while active."""

    def autostart_retry_delay(self) -> float | None:
        """Seconds until autostart tries configure again after a failure; None: give up."""
        return None

    def now_s(self) -> float:
        """Node-clock time in seconds (simulation time under use_sim_time)."""
        return self.get_clock().now().nanoseconds * 1e-9

    def error_throttled(self, kind: str, message: str, period: float) -> None:
        """Log `message` at most every `period` s per `kind` of error. rclpy's
        throttle_duration_sec throttles per call site: one kind of bad frame would then hide
        every other kind."""
        now = time.monotonic()
        if now - self._error_logged.get(kind, -math.inf) >= period:
            self._error_logged[kind] = now
            self.get_logger().error(message)

    # --- parameters --------------------------------------------------------------------------
    def _declare(self, parameters: type[P]) -> P:
        specs = {spec.name: spec for spec in parameter_specs(parameters)}
        values = {}
        for spec in specs.values():
            param = self.declare_parameter(spec.name, spec.default, _descriptor(spec))
            reason = spec.check(param.value)
            if reason is not None:
                raise ValueError(f'invalid parameter: {reason}')
            values[spec.name] = _plain(param.value)
        typed = parameters(**values)  # __post_init__ checks across parameters

        def on_set(params: list[Parameter]) -> SetParametersResult:
            changes = {p.name: _plain(p.value) for p in params if p.name in specs}
            for name, value in changes.items():
                reason = specs[name].check(value)
                if reason is not None:
                    self.get_logger().warning(f'rejected parameter change: {reason}')
                    return SetParametersResult(successful=False, reason=reason)
            try:
                dataclasses.replace(self.params, **changes)
            except ValueError as error:
                self.get_logger().warning(f'rejected parameter change: {error}')
                return SetParametersResult(successful=False, reason=str(error))
            return SetParametersResult(successful=True)

        def after_set(params: list[Parameter]) -> None:
            changes = {p.name: _plain(p.value) for p in params if p.name in specs}
            if changes:
                self.params = dataclasses.replace(self.params, **changes)
                self.on_parameters_changed(changes)

        self.add_on_set_parameters_callback(on_set)
        self.add_post_set_parameters_callback(after_set)
        return typed

    # --- lifecycle ---------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure()
        except Exception as error:  # noqa: BLE001 - every failure must fail the transition
            self.configure_error = f'configure failed: {type(error).__name__}: {error}'
            self.get_logger().error(self.configure_error)
            self.cleanup()
            self.diagnostics.publish()
            return TransitionCallbackReturn.FAILURE
        self.configure_error = ''
        self.node_state = NodeState.INACTIVE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activate()
        if type(self).log_stats is not VisionNode.log_stats:
            self._stats_timer = self.create_timer(self.STATS_PERIOD, self.log_stats)
        self.node_state = NodeState.ACTIVE
        return super().on_activate(state)  # activates the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self.node_state = NodeState.INACTIVE
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        self.node_state = NodeState.UNCONFIGURED
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.node_state = NodeState.FINALIZED
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        if self._stats_timer is not None:
            self.destroy_timer(self._stats_timer)
            self._stats_timer = None
        self.deactivate()

    def _release(self) -> None:
        if self.node_state is NodeState.ACTIVE:
            self._stop_work()
        if self.node_state is not NodeState.FINALIZED:
            self.cleanup()

    # --- autostart ---------------------------------------------------------------------------
    def _autostart(self) -> None:
        self.destroy_timer(self._start_timer)
        self._start_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            if self.trigger_activate() == TransitionCallbackReturn.SUCCESS:
                return
        delay = self.autostart_retry_delay()
        if delay is not None:
            self._start_timer = self.create_timer(delay, self._autostart)
            return
        self.get_logger().fatal('autostart failed (see above); exiting')
        self.exit_code = 1
        # The ERROR on /diagnostics reaches listeners that match late before the exit.
        self._exit_deadline = time.monotonic() + EXIT_LINGER_S
        self._start_timer = self.create_timer(0.5, self._linger)

    def _linger(self) -> None:
        """After a failed autostart: publish the ERROR until a listener has had it twice (or
        EXIT_LINGER_S passed), then end the process."""
        self.diagnostics.publish()
        if self.diagnostics.publisher.get_subscription_count() > 0:
            self._exit_heard += 1
        self.finished = self._exit_heard >= 2 or time.monotonic() > self._exit_deadline

    def destroy_node(self) -> None:
        """Stop the work and release the resources while the context is still valid."""
        self._release()
        self.node_state = NodeState.FINALIZED
        super().destroy_node()

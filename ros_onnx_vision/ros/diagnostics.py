"""The nodes' diagnostics as plain data: levels, messages and key values, with no ROS import.

Each node keeps one monitor from this module. Every `diagnostics_period` it hands the monitor a
snapshot of its counters and gets back a `Status`, which
`ros.diagnostics_publisher.DiagnosticsPublisher`
publishes as diagnostic_msgs/DiagnosticStatus on /diagnostics. Names follow diagnostic_updater:
'<node name>: <what>'. Times are plain seconds passed in by the caller (monotonic for rates, the
node clock for idle times), so every rule here is testable without a clock.

Also here: the warning for a publisher whose QoS is incompatible with a subscription.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import enum

from ros_onnx_vision.results import Task

# diagnostic_msgs/DiagnosticStatus levels
OK, WARN, ERROR, STALE = 0, 1, 2, 3

LOW_RATE_RATIO = 0.9  # camera: achieved / target below this is too slow...
LOW_RATE_AFTER_S = 5.0  # ...once it lasted this long
NO_INPUT_AFTER_S = 2.0  # inference_node: no image for longer than this is a warning
RATE_WINDOW_S = 5.0  # rates are measured over this many seconds of snapshots


@dataclass(frozen=True)
class Status:
    """One diagnostic status, as diagnostic_msgs/DiagnosticStatus carries it."""

    level: int
    name: str
    message: str
    hardware_id: str = ''
    values: dict[str, str] = field(default_factory=dict)


class CounterRate:
    """Rate of a growing counter over the snapshots of the last `window_s` seconds."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, count: int) -> float | None:
        """Add a snapshot; the rate in Hz, or None before two snapshots span some time."""
        if self._samples and (now < self._samples[-1][0] or count < self._samples[-1][1]):
            self._samples.clear()  # a clock jump or a counter reset: start over
        self._samples.append((now, count))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def reset(self) -> None:
        self._samples.clear()


def _hz(rate: float | None) -> str:
    return f'{rate:.2f}' if rate is not None else '0.00'


def _ms(value: float | None) -> str:
    return f'{value:.2f}' if value is not None else '-'


def _combine(problems: Sequence[tuple[int, str]], ok_message: str) -> tuple[int, str]:
    """The worst level, and the messages of the problems at that level (else `ok_message`)."""
    if not problems:
        return OK, ok_message
    level = max(level for level, _ in problems)
    return level, '; '.join(text for lvl, text in problems if lvl == level)


def qos_mismatch_message(topic: str, policy: str, requested: Mapping[str, str],
                         parameters: Mapping[str, str] | None = None) -> str:
    """The warning for a publisher of `topic` whose QoS is incompatible with a subscription's.

    `policy` is the rmw policy name (RELIABILITY, DURABILITY, ...); `requested` maps policy
    names to what the subscription asks ('reliable', 'transient_local'); `parameters` maps them
    to the node parameter that sets them, for the advice. Only one offer is incompatible with a
    reliable (best_effort) or a transient_local (volatile) request, so it is named.
    """
    wanted = requested.get(policy, '')
    offered = {('RELIABILITY', 'reliable'): 'best_effort',
               ('DURABILITY', 'transient_local'): 'volatile'}.get((policy, wanted))
    if offered is None:
        return (f'{topic}: a publisher offers QoS incompatible with this subscription (policy '
                f'{policy}); no data will flow from it')
    text = (f'{topic}: a publisher offers {offered} but this subscription requests {wanted} '
            f'(policy {policy}); no data will flow')
    parameter = (parameters or {}).get(policy)
    return text + (f'. Set {parameter}:={offered}' if parameter else '')


@dataclass
class QosMismatch:
    """Incompatible-QoS events of one subscription: the last message and the total count."""

    count: int = 0
    message: str = ''
    reliability: str = ''  # what the subscription uses now (best_available resolved)

    def record(self, message: str, total: int | None = None) -> None:
        """Note one event; `total` is the middleware's running count when it has one."""
        self.count = total if total else self.count + 1
        self.message = message

    def problem(self) -> list[tuple[int, str]]:
        return [(WARN, self.message)] if self.count else []

    def values(self) -> dict[str, str]:
        values = {'incompatible QoS events': str(self.count),
                  'incompatible QoS': self.message or 'none'}
        if self.reliability:
            values['input reliability'] = self.reliability
        return values


# --- camera_node ---------------------------------------------------------------------------
class CameraState(str, enum.Enum):
    """What camera_node's capture is doing (within the lifecycle state)."""

    OPENING = 'opening'
    WAITING = 'waiting for subscribers'
    PUBLISHING = 'publishing'
    RECONNECTING = 'reconnecting'
    ENDED = 'ended'
    FAILED = 'failed'
    STOPPED = 'stopped'  # not active: configured, or not yet


def configure_problems(configure_error: str) -> list[tuple[int, str]]:
    """ERROR for a failed configure (the node cannot work until configured again)."""
    return [(ERROR, configure_error)] if configure_error else []


@dataclass
class CameraSnapshot:
    """camera_node's counters. `target_hz` 0 means the source paces itself (no rate check)."""

    state: CameraState
    source: str
    target_hz: float
    published: int
    skipped: int
    publish_cost_ms: float
    retries: int
    reconnects: int
    error: str = ''  # the last source error
    compressed_encoded: int = 0  # frames JPEG-encoded for image_raw/compressed (subscribed)
    compressed_cost_ms: float = 0.0  # their mean encode-and-publish time
    lifecycle: str = 'active'  # lifecycle state label
    configure_error: str = ''  # why the last configure failed ('' when it did not)


class CameraMonitor:
    """WARN when the rate stays below 90% of the target or the source reconnects; ERROR when
    the source failed for good."""

    def __init__(self, node: str, *, low_ratio: float = LOW_RATE_RATIO,
                 low_after_s: float = LOW_RATE_AFTER_S,
                 rate_window_s: float = RATE_WINDOW_S) -> None:
        self.name = f'{node}: camera'
        self.low_ratio = low_ratio
        self.low_after_s = low_after_s
        self.rate = CounterRate(rate_window_s)
        self._low_since: float | None = None

    def report(self, now: float, s: CameraSnapshot) -> Status:
        state = CameraState(s.state)  # also takes the enum's string value
        achieved = None
        if state is CameraState.PUBLISHING:
            achieved = self.rate.update(now, s.published)
        else:
            self.rate.reset()
        problems = configure_problems(s.configure_error)
        if state is CameraState.FAILED:
            problems.append((ERROR, f'source failed for good: {s.error or "see the log"}'))
        elif state is CameraState.RECONNECTING:
            problems.append((WARN, f'source unavailable, reconnecting (retry {s.retries}): '
                                   f'{s.error or "see the log"}'))
        low = (achieved is not None and s.target_hz > 0
               and achieved < self.low_ratio * s.target_hz)
        if not low:
            self._low_since = None
        else:
            if self._low_since is None:
                self._low_since = now
            if now - self._low_since >= self.low_after_s:
                problems.append((WARN, f'achieved rate {achieved:.2f} Hz is below '
                                       f'{self.low_ratio:.0%} of the target {s.target_hz:g} Hz '
                                       f'for {now - self._low_since:.0f} s'))
        ok = (f'publishing at {_hz(achieved)} Hz' if state is CameraState.PUBLISHING
              else 'end of source (idle)' if state is CameraState.ENDED
              else f'{s.lifecycle}: not publishing' if s.lifecycle != 'active'
              else state.value)
        level, message = _combine(problems, ok)
        return Status(level, self.name, message, hardware_id=s.source, values={
            'source': s.source,
            'lifecycle state': s.lifecycle,
            'state': state.value,
            'target rate (Hz)': f'{s.target_hz:g}' if s.target_hz > 0 else 'source rate',
            'achieved rate (Hz)': _hz(achieved),
            'frames published': str(s.published),
            'skipped slots': str(s.skipped),
            'publish cost (ms)': _ms(s.publish_cost_ms),
            'compressed frames encoded': str(s.compressed_encoded),
            'compressed encode cost (ms)': _ms(s.compressed_cost_ms if s.compressed_encoded
                                               else None),
            'retries': str(s.retries),
            'reconnects': str(s.reconnects),
            'last source error': s.error or 'none',
        })


# --- inference_node ------------------------------------------------------------------------
@dataclass
class InferenceSnapshot:
    """inference_node's counters; `idle_s` and `latency_ms` are on the node clock."""

    state: str  # lifecycle state label: unconfigured, inactive, active, finalized
    model: str
    input_topic: str
    received: int
    processed: int
    skipped: int
    errors: int
    stages_ms: dict[str, float]  # mean ms per stage: convert, pre, run, decode, message, ...
    provider: str  # the active execution provider ('' before configure)
    fallback: str  # '' or why a requested provider is not used
    idle_s: float | None  # seconds since the last image (or since activation)
    latency_ms: float | None  # header stamp to result published, last frame
    mean_latency_ms: float | None
    qos: QosMismatch = field(default_factory=QosMismatch)
    self_check: str = ''  # the last configure's self-check line ('' before any)
    configure_error: str = ''  # why the last configure failed ('' when it did not)


class InferenceMonitor:
    """WARN when no input arrives for 2 s, a provider fell back, errors were counted in the
    period, or a publisher's QoS is incompatible."""

    def __init__(self, node: str, *, no_input_after_s: float = NO_INPUT_AFTER_S,
                 rate_window_s: float = RATE_WINDOW_S) -> None:
        self.name = f'{node}: inference'
        self.no_input_after_s = no_input_after_s
        self.input_rate = CounterRate(rate_window_s)
        self.output_rate = CounterRate(rate_window_s)
        self._last: tuple[float, int] | None = None  # (time, errors) of the previous report

    def report(self, now: float, s: InferenceSnapshot) -> Status:
        in_hz = self.input_rate.update(now, s.received)
        out_hz = self.output_rate.update(now, s.processed)
        new_errors = s.errors - self._last[1] if self._last else s.errors
        period = now - self._last[0] if self._last else 0.0
        self._last = (now, s.errors)
        active = s.state == 'active'
        problems = configure_problems(s.configure_error)
        if active and s.idle_s is not None and s.idle_s > self.no_input_after_s:
            problems.append((WARN, f'no input on {s.input_topic} for {s.idle_s:.1f} s'))
        if s.fallback:
            problems.append((WARN, f'execution provider fell back: {s.fallback}'))
        if new_errors > 0:
            problems.append((WARN, f'{new_errors} frame errors in the last {period:.1f} s'
                             if period else f'{new_errors} frame errors'))
        problems += s.qos.problem()
        ok = (f'{_hz(out_hz)} Hz on {s.provider}' if active else
              f'{s.state}: not processing')
        level, message = _combine(problems, ok)
        values = {
            'lifecycle state': s.state,
            'model': s.model or '-',
            'input rate (Hz)': _hz(in_hz),
            'output rate (Hz)': _hz(out_hz),
            'frames received': str(s.received),
            'frames processed': str(s.processed),
            'frames skipped (newest-frame policy)': str(s.skipped),
            'errors': str(s.errors),
        }
        values.update({f'mean {stage} time (ms)': _ms(ms) for stage, ms in s.stages_ms.items()})
        values.update({
            'active execution provider': s.provider or '-',
            'provider fallback': s.fallback or 'none',
            'end-to-end latency (ms)': _ms(s.latency_ms),
            'mean end-to-end latency (ms)': _ms(s.mean_latency_ms),
            'seconds since last input': _ms(s.idle_s),
            'self-check': s.self_check or '-',
        })
        values.update(s.qos.values())
        return Status(level, self.name, message, hardware_id=s.provider, values=values)


# --- smoothing_node ------------------------------------------------------------------------
@dataclass
class SmoothingSnapshot:
    """smoothing_node's counters; `idle_s` is on the node clock."""

    task: Task
    input_topic: str
    received: int
    fps: float | None
    n: int | None
    m: int | None
    confirmed: list[str]  # the confirmed label, or the confirmed track ids
    backwards: int
    duplicates: int
    resets: int
    idle_s: float | None  # seconds since the last input (or since start)
    timeout_s: float
    qos: QosMismatch = field(default_factory=QosMismatch)
    state: str = 'active'  # lifecycle state label
    configure_error: str = ''


class SmoothingMonitor:
    """WARN 'stale input' when no input arrived for longer than the timeout, or on a QoS
    mismatch."""

    def __init__(self, node: str, *, rate_window_s: float = RATE_WINDOW_S) -> None:
        self.name = f'{node}: smoothing'
        self.input_rate = CounterRate(rate_window_s)

    def report(self, now: float, s: SmoothingSnapshot) -> Status:
        in_hz = self.input_rate.update(now, s.received)
        active = s.state == 'active'
        problems = configure_problems(s.configure_error)
        if active and s.idle_s is not None and s.idle_s > s.timeout_s:
            problems.append((WARN, f'stale input: nothing on {s.input_topic} for '
                                   f'{s.idle_s:.1f} s (timeout {s.timeout_s:g} s)'))
        problems += s.qos.problem()
        task = Task(s.task)
        what = 'tracks' if task is Task.DETECTION else 'label'
        ok = (f'{s.state}: not processing' if not active
              else f'N={s.n} at {s.fps:.2f} FPS, confirmed {what}: '
              f'{", ".join(s.confirmed) or "none"}' if s.fps is not None and s.n is not None
              else 'waiting for a frame rate estimate')
        level, message = _combine(problems, ok)
        values = {
            'lifecycle state': s.state,
            'task': task.value,
            'input rate (Hz)': _hz(in_hz),
            'inputs received': str(s.received),
            'FPS estimate (stamps)': f'{s.fps:.2f}' if s.fps is not None else '-',
            'N (frames to confirm)': str(s.n) if s.n is not None else '-',
            'M (frames to release)': str(s.m) if s.m is not None else '-',
            f'confirmed {what}': ', '.join(s.confirmed) or 'none',
            'confirmed count': str(len(s.confirmed)),
            'backward stamps': str(s.backwards),
            'duplicate stamps': str(s.duplicates),
            'rate estimate resets': str(s.resets),
            'seconds since last input': _ms(s.idle_s),
            'timeout (s)': f'{s.timeout_s:g}',
        }
        values.update(s.qos.values())
        return Status(level, self.name, message, values=values)


# --- annotator_node ------------------------------------------------------------------------
UNMATCHED_WARN_RATIO = 0.1  # annotator_node: unmatched / results received above this warns


@dataclass
class AnnotatorSnapshot:
    """annotator_node's counters (`counts`: annotation.pairing.PairingCounts' fields)."""

    state: str  # lifecycle state
    image_topic: str
    wanted: bool  # someone subscribes image_annotated or its compressed topic
    drawn: int
    errors: int  # frames that could not be converted or drawn
    counts: Mapping[str, int]
    draw_ms: float | None  # mean conversion and drawing time
    qos: Sequence[QosMismatch] = ()


class AnnotatorMonitor:
    """WARN when many results find no image (or confirmed result) to join, on drawing errors
    and on a QoS mismatch of an input."""

    def __init__(self, node: str, *, rate_window_s: float = RATE_WINDOW_S) -> None:
        self.name = f'{node}: annotation'
        self.rate = CounterRate(rate_window_s)

    def report(self, now: float, s: AnnotatorSnapshot) -> Status:
        hz = self.rate.update(now, s.drawn)
        counts = s.counts
        problems: list[tuple[int, str]] = []
        received = counts.get('raw', 0) + counts.get('confirmed', 0)
        unmatched = counts.get('unmatched_raw', 0) + counts.get('unmatched_confirmed', 0)
        if received and unmatched > UNMATCHED_WARN_RATIO * received:
            problems.append((WARN, f'{unmatched} of {received} results found no image to '
                                   f'draw on (stamps that differ from {s.image_topic}\'s, or '
                                   'images that came too late)'))
        if s.errors:
            problems.append((WARN, f'{s.errors} frames not drawn (see the log)'))
        for qos in s.qos:
            problems += qos.problem()
        if s.state != 'active':
            ok = s.state
        elif s.wanted:
            ok = f'drawing at {_hz(hz)} Hz'
        else:
            ok = 'idle: nobody subscribes image_annotated'
        level, message = _combine(problems, ok)
        values = {'state': s.state, 'image topic': s.image_topic,
                  'subscribed': str(s.wanted).lower(), 'drawn': str(s.drawn),
                  'drawn rate (Hz)': _hz(hz), 'errors': str(s.errors),
                  'mean draw time (ms)': _ms(s.draw_ms),
                  **{name.replace('_', ' '): str(value) for name, value in counts.items()}}
        for index, qos in enumerate(s.qos):
            values.update({f'{key} ({index})': value for key, value in qos.values().items()})
        return Status(level, self.name, message, values=values)

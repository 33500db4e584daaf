"""inference_node: ONNX Runtime human detection or digit classification on the newest frame.

A lifecycle node: configure loads the model card and creates the ONNX Runtime session (the
transition fails with a clear message when the model is missing, unreadable or does not fit its
card), activate subscribes, cleanup releases the session. With `autostart` (default) it
configures and activates itself, and exits with an error when that fails.

Subscribes `image_raw` (or, with `image_transport:=compressed`, `image_raw/compressed`:
sensor_msgs/CompressedImage, decoded once); publishes `detections`
(vision_msgs/Detection2DArray) or `classification` (vision_msgs/Classification) with the source
image header and `label_info` (vision_msgs/LabelInfo, transient local, once). It draws
nothing: annotator_node draws the results on `image_annotated` (its `annotate_confirmed` and
`jpeg_quality` were this node's; still declared here, a non-default value logs a warning).
Frames are taken newest-first, in three threads (conversion and pre-processing, the session run,
decoding and publishing: `inference.frame_pipeline`), so the model never waits for the rest: a
frame that arrives while the model is busy replaces the waiting one (counted as skipped), so
latency never grows. Rates, stage times, provider and latency go to /diagnostics. The engine
lives in `ros_onnx_vision.inference` (no ROS), the diagnostics rules in `ros.diagnostics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import math
from pathlib import Path
import time
from typing import Any

import cv2
import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo, VisionClass

from ros_onnx_vision.image_encodings import ENGINE_COLOR_ORDERS
from ros_onnx_vision.inference.engine import (InferenceEngine, PreparedFrame, SessionOutputs,
                                               TimingStats)
from ros_onnx_vision.inference.frame_pipeline import FrameCounts, NewestFramePipeline
from ros_onnx_vision.inference.model_card import load_model_card, ModelCard, ModelCardError
from ros_onnx_vision.inference.self_check import open_checked_engine
from ros_onnx_vision.inference.session import threads_beside_other_work
from ros_onnx_vision.resources import model_file
from ros_onnx_vision.results import Task
from ros_onnx_vision.ros.graph import CAMERA_TOPIC
from ros_onnx_vision.ros.diagnostics import (InferenceMonitor, InferenceSnapshot, QosMismatch,
                                             Status)
from ros_onnx_vision.ros.image_conversion import image_to_numpy, ImageConversionError
from ros_onnx_vision.ros.image_transport import compressed_to_numpy, compressed_topic, describe
from ros_onnx_vision.ros.messages import RESULT_MESSAGES, result_to_msg
from ros_onnx_vision.ros.node_support import (declare_parameters, DiagnosticsPublisher,
                                              MatchedSubscription, run_node, stamp_to_seconds)
from ros_onnx_vision.ros.parameters import INFERENCE_NODE, spec_by_name

STATS_PERIOD = 10.0
EXIT_LINGER_S = 5.0  # at most, after a failed autostart: the ERROR reaches /diagnostics
ERROR_LOG_PERIOD = 2.0  # seconds between log lines of the same kind of dropped-frame error
LIVE_CARD_PARAMETERS = {'score_threshold', 'nms_iou_threshold', 'class_filter', 'top_k',
                        'digit_roi'}
MOVED_TO_ANNOTATOR = ('annotate_confirmed', 'jpeg_quality')  # declared, no longer used here


def resolve_model_card(name: str) -> Path:
    """A card path as given, else a file of the package's models/ folder."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    packaged = model_file(name)
    if not path.is_absolute() and packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f'model card {name!r} not found (neither a file nor in {packaged.parent}); available: '
        + ', '.join(sorted(p.name for p in packaged.parent.glob('*.yaml'))))


@dataclass
class FrameStats:
    """Counters and mean per-stage times (ms) since start, for logs and benchmarks."""

    # received / processed / skipped / errors, kept by the frame pipeline
    counts: FrameCounts = field(default_factory=FrameCounts)
    convert_ms: float = 0.0
    message_ms: float = 0.0
    publish_ms: float = 0.0
    latency_ms: float = 0.0  # image header stamp to result published, on the node clock
    # Pre-processing, session run and decoding: timed by the engine itself.
    engine: TimingStats = field(default_factory=TimingStats)
    _frames: int = 0  # in the means

    def add(self, **stages_ms: float) -> None:
        self._frames += 1
        weight = 1.0 / self._frames
        for name, value in stages_ms.items():
            mean = getattr(self, name)
            setattr(self, name, mean + (value - mean) * weight)

    def stages_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage of a frame, in pipeline order."""
        engine = self.engine.mean
        return {'convert': self.convert_ms, 'pre-processing': engine.pre_ms,
                'inference (session run)': engine.run_ms, 'decoding': engine.post_ms,
                'message': self.message_ms, 'publish': self.publish_ms}

    def summary(self) -> str:
        engine, counts = self.engine.mean, self.counts
        return (f'{counts.processed} processed, {counts.skipped} skipped (newest-frame policy), '
                f'{counts.errors} errors; mean ms: convert {self.convert_ms:.2f}, pre '
                f'{engine.pre_ms:.2f}, run {engine.run_ms:.2f}, decode {engine.post_ms:.2f}, '
                f'message {self.message_ms:.2f}, publish {self.publish_ms:.2f}')


@dataclass(frozen=True)
class _Staged:
    """A frame between the stages: the engine it started with, and its source image."""

    engine: InferenceEngine
    image: np.ndarray
    order: str
    frame: PreparedFrame
    convert_ms: float


def to_engine_image(msg: Image | CompressedImage, max_pixels: int) -> tuple[np.ndarray, str]:
    """The image as the engine takes it (uint8, BGR/RGB/GRAY) or a clear error."""
    if isinstance(msg, CompressedImage):
        return compressed_to_numpy(msg, max_pixels)  # decoded once, in its own channel order
    if msg.encoding not in ENGINE_COLOR_ORDERS:
        raise ImageConversionError(
            f'unsupported image encoding {msg.encoding!r} for inference; expected one of '
            + ', '.join(ENGINE_COLOR_ORDERS))
    pixels = int(msg.width) * int(msg.height)
    if pixels > max_pixels:
        raise ImageConversionError(
            f'image of {msg.width}x{msg.height} = {pixels} pixels exceeds max_image_pixels '
            f'{max_pixels}; refused')
    image = image_to_numpy(msg)
    order = ENGINE_COLOR_ORDERS[msg.encoding]
    if order in ('BGRA', 'RGBA'):
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR if order == 'BGRA' else
                             cv2.COLOR_RGBA2RGB)
        order = order[:3]
    return image, order


class InferenceNode(LifecycleNode):
    """Thin lifecycle wrapper around InferenceEngine with a newest-frame worker."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('inference_node', **kwargs)  # kwargs: e.g. context, overrides (tests)
        self.params = declare_parameters(self, INFERENCE_NODE)
        moved = [f'{name}={self.params[name]}' for name in MOVED_TO_ANNOTATOR
                 if self.params[name] != spec_by_name('inference_node')[name].default]
        if moved:
            self.get_logger().warning(
                f'{", ".join(moved)}: drawing moved to annotator_node (annotate:=true); set '
                'these parameters on annotator_node, inference_node ignores them')
        self.add_post_set_parameters_callback(self._on_parameters)
        self.engine: InferenceEngine | None = None
        # rclpy has no public accessor of the lifecycle state; the transitions keep this one.
        self.lifecycle_state = 'unconfigured'
        self.stats = FrameStats()
        self.finished = False
        self.exit_code = 0
        self._frames: NewestFramePipeline[Image | CompressedImage] | None = None
        self._subscription = None
        # Logs and diagnostics name the input as resolved: namespace and remapping applied.
        # The compressed transport's topic hangs off the resolved (remapped) image topic.
        self._input_topic = self.resolve_topic_name(CAMERA_TOPIC)
        if self.params['image_transport'] == 'compressed':
            self._input_topic = compressed_topic(self._input_topic)
        self._result_pub = None
        self._label_pub = None
        self._stats_timer = None
        self._error_logged: dict[str, float] = {}  # kind of error -> when last logged
        # Diagnostics: node-clock time of the last image (or activation), last latency
        self._last_input: float | None = None
        self._latency_ms: float | None = None
        self._qos_mismatch = QosMismatch()
        self._self_check = ''  # the last self-check's line
        self._configure_error = ''  # why the last configure failed, for /diagnostics
        self._exit_heard = 0  # ERRORs published to a matched /diagnostics listener
        self._monitor = InferenceMonitor(self.get_name())
        self._diagnostics = DiagnosticsPublisher(self, self.params['diagnostics_period'],
                                                 self._report)
        if self.params['autostart']:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS or \
                    self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                self.get_logger().fatal('autostart failed (see above); exiting')
                self.exit_code = 1
                # The ERROR on /diagnostics reaches listeners that match late before the exit.
                self._exit_deadline = time.monotonic() + EXIT_LINGER_S
                self._exit_timer = self.create_timer(0.5, self._exit)

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        try:
            card = load_model_card(resolve_model_card(p['model']))
            # The self-check runs the card's reference on this provider and CPU (and warms
            # the session up); a wrong result fails configure, or switches to the fallback.
            engine, check = open_checked_engine(
                card, self.get_logger().warning, providers=p['execution_providers'],
                strict=p['strict_providers'],
                intra_op_threads=p['intra_op_threads'] or threads_beside_other_work(),
                intra_op_spinning=p['intra_op_spinning'],
                graph_optimization=p['graph_optimization'],
                optimized_model_cache=p['optimized_model_cache'])
            engine.apply_overrides(**self._card_overrides(engine.base_card))
        except Exception as error:  # noqa: BLE001 - every failure must fail the transition
            self._configure_error = f'configure failed: {type(error).__name__}: {error}'
            self.get_logger().error(self._configure_error)
            self._diagnostics.publish()
            return TransitionCallbackReturn.FAILURE
        self._configure_error, self._self_check = '', check.message
        self.get_logger().info(f'self-check passed in {check.elapsed_ms:.0f} ms: '
                               f'{check.message}')
        self.engine = engine
        report = engine.provider_report
        (self.get_logger().warning if report.fell_back else self.get_logger().info)(
            report.summary())
        task = engine.card.task
        msg_type = RESULT_MESSAGES[task]
        self._result_pub = self.create_lifecycle_publisher(msg_type, task.result_topic, 10)
        # label_info is latched at configure, so late joiners get it whatever the state.
        self._label_pub = self.create_publisher(
            LabelInfo, 'label_info',
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._label_pub.publish(self._label_info())
        card = engine.card
        self.lifecycle_state = 'inactive'
        self.get_logger().info(
            f'configured {card.name} ({task}, {card.input.width}x{card.input.height} '
            f'{card.input.layout}, decoder {card.decoder.type}), score >= '
            f'{card.score_threshold}, classes {list(card.class_filter) or "all"}, '
            f'{engine.session.get_session_options().intra_op_num_threads} intra-op thread(s)')
        return TransitionCallbackReturn.SUCCESS

    def _card_overrides(self, card: ModelCard,
                        changed: Sequence[Parameter] = ()) -> dict[str, Any]:
        """The node's parameters that override `card` (negative/'card' = keep the card's).

        `changed`: parameters being set now (post-set callbacks may run before the parameter
        dict is updated).
        """
        p = {**self.params, **{param.name: param.value for param in changed}}
        overrides: dict[str, Any] = {}
        if p['score_threshold'] >= 0:
            overrides['score_threshold'] = p['score_threshold']
        if p['nms_iou_threshold'] >= 0:
            overrides['nms_iou'] = p['nms_iou_threshold']
        if list(p['class_filter']) != ['card']:
            overrides['class_filter'] = list(p['class_filter'])
        if p['top_k'] > 0:
            overrides['top_k'] = p['top_k']
        if card.task is Task.CLASSIFICATION and card.digit is not None:
            overrides['digit_roi'] = list(p['digit_roi'])
        return overrides

    def _on_parameters(self, params: list[Parameter]) -> None:
        """Live changes of thresholds, filter, top-k and region, applied between frames."""
        if self.engine is None or not {p.name for p in params} & LIVE_CARD_PARAMETERS:
            return
        try:
            self.engine.apply_overrides(**self._card_overrides(self.engine.base_card, params))
            self.get_logger().info('model card overrides updated: ' + ', '.join(
                f'{p.name}={p.value}' for p in params))
        except ModelCardError as error:
            self.get_logger().error(f'parameter change not applied: {error}')

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.engine is not None
        self.engine.timings.reset()
        self._last_input, self._latency_ms = self._clock_s(), None
        self._frames = NewestFramePipeline(self._prepare, self._run, self._deliver,
                                           self._log_dropped, name='inference')
        self.stats = FrameStats(counts=self._frames.counts, engine=self.engine.timings)
        compressed = self.params['image_transport'] == 'compressed'
        self._subscription = MatchedSubscription(
            self, CompressedImage if compressed else Image, self._input_topic, self.on_image,
            self.params['reliability'], 1, self._qos_mismatch)
        self._stats_timer = self.create_timer(STATS_PERIOD, self._log_stats)
        self.get_logger().info(
            f'active: processing the newest frame of {self._subscription.topic_name} '
            f'({self._qos_mismatch.reliability})')
        self.lifecycle_state = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._shutdown_worker()
        self.lifecycle_state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._result_pub is not None:
            self.destroy_lifecycle_publisher(self._result_pub)
        if self._label_pub is not None:
            self.destroy_publisher(self._label_pub)
        self._result_pub = self._label_pub = None
        self.engine = None  # releases the ONNX Runtime session
        self.lifecycle_state = 'unconfigured'
        self.get_logger().info('cleaned up: session released')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._shutdown_worker()
        self.engine = None
        self.lifecycle_state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def _shutdown_worker(self) -> None:
        if self._subscription is not None:
            self._subscription.destroy()
            self._subscription = None
        if self._stats_timer is not None:
            self.destroy_timer(self._stats_timer)
            self._stats_timer = None
        if self._frames is not None:
            self._frames.stop(timeout=10)
            self._frames = None

    # --- frames ----------------------------------------------------------------------------
    def on_image(self, msg: Image | CompressedImage) -> None:
        self._last_input = self._clock_s()
        frames = self._frames
        if frames is not None:
            frames.submit(msg)

    def _log_dropped(self, msg: Image | CompressedImage, error: Exception) -> None:
        """Log a dropped frame, at most every 2 s per kind of error (every drop is counted)."""
        encoding = msg.format if isinstance(msg, CompressedImage) else msg.encoding
        kind = f'{type(error).__name__}:{encoding}:{str(error)[:30]}'
        now = time.monotonic()
        if now - self._error_logged.get(kind, -math.inf) < ERROR_LOG_PERIOD:
            return
        self._error_logged[kind] = now
        self.get_logger().error(
            f'{describe(msg)} dropped: {error} ({self.stats.counts.errors} dropped so far)')

    # The three stages of a frame, each in its own thread (NewestFramePipeline).
    def _prepare(self, msg: Image | CompressedImage) -> _Staged:
        engine = self.engine
        assert engine is not None  # the pipeline stops before cleanup releases it
        t0 = time.perf_counter()
        image, order = to_engine_image(msg, self.params['max_image_pixels'])
        convert_ms = (time.perf_counter() - t0) * 1e3
        return _Staged(engine, image, order, engine.prepare(image, order), convert_ms)

    @staticmethod
    def _run(staged: _Staged) -> tuple[_Staged, SessionOutputs]:
        return staged, staged.engine.run(staged.frame)

    def _deliver(self, msg: Image | CompressedImage,
                 ran: tuple[_Staged, SessionOutputs]) -> None:
        staged, outputs = ran
        result = staged.engine.decode(staged.frame, outputs)
        if result.implausible is not None:
            self.get_logger().warning(
                f'the outputs do not fit decoder {staged.frame.card.decoder.type!r}: '
                f'{result.implausible}', throttle_duration_sec=10.0)
        t0 = time.perf_counter()
        out = result_to_msg(msg.header, result)
        t1 = time.perf_counter()
        self._result_pub.publish(out)
        t2 = time.perf_counter()
        self._latency_ms = (self._clock_s() - stamp_to_seconds(msg.header.stamp)) * 1e3
        self.stats.add(convert_ms=staged.convert_ms, message_ms=(t1 - t0) * 1e3,
                       publish_ms=(t2 - t1) * 1e3, latency_ms=self._latency_ms)

    def _label_info(self) -> LabelInfo:
        assert self.engine is not None
        card = self.engine.card
        return LabelInfo(
            header=Header(stamp=self.get_clock().now().to_msg()),
            class_map=[VisionClass(class_id=i, class_name=name)
                       for i, name in enumerate(card.labels)],
            threshold=float(card.score_threshold))

    def _clock_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _report(self) -> list[Status]:
        engine, stats = self.engine, self.stats
        report = engine.provider_report if engine else None
        idle = self._clock_s() - self._last_input if self._last_input is not None else None
        return [self._monitor.report(time.monotonic(), InferenceSnapshot(
            state=self.lifecycle_state,
            model=engine.card.name if engine else self.params['model'],
            input_topic=self._input_topic, received=stats.counts.received,
            processed=stats.counts.processed, skipped=stats.counts.skipped,
            errors=stats.counts.errors,
            stages_ms=stats.stages_ms(),
            provider=report.active[0] if report and report.active else '',
            fallback='; '.join(f'{name} not used: {reason}' for name, reason in
                               report.failures.items()) if report else '',
            idle_s=idle, latency_ms=self._latency_ms,
            mean_latency_ms=stats.latency_ms if stats.counts.processed else None,
            qos=self._qos_mismatch, self_check=self._self_check,
            configure_error=self._configure_error))]

    def _exit(self) -> None:
        """After a failed autostart: publish the ERROR until a listener has had it twice (or
        EXIT_LINGER_S passed), then end the process."""
        self._diagnostics.publish()
        if self._diagnostics.publisher.get_subscription_count() > 0:
            self._exit_heard += 1
        self.finished = self._exit_heard >= 2 or time.monotonic() > self._exit_deadline

    def _log_stats(self) -> None:
        self.get_logger().info(self.stats.summary())

    def destroy_node(self) -> None:
        self._shutdown_worker()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(InferenceNode, 'inference_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

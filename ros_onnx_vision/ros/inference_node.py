"""inference_node: ONNX Runtime human detection or digit classification on the newest frame.

A lifecycle node (`ros.vision_node`): configure loads the model card, creates the ONNX Runtime
session and runs the card's self-check (the transition fails with a clear message when the
model is missing, unreadable, does not fit its card or gives wrong results here), activate
subscribes, cleanup releases the session. With `autostart` (default) it configures and
activates itself, and exits with an error when that fails.

Subscribes `image_raw` (or, with `image_transport:=compressed`, `image_raw/compressed`:
sensor_msgs/CompressedImage, decoded once); publishes `detections`
(vision_msgs/Detection2DArray) or `classification` (vision_msgs/Classification) with the source
image header and `label_info` (vision_msgs/LabelInfo, transient local, once). annotator_node
draws the results on the images.
Frames are taken newest-first, in three threads (conversion and pre-processing, the session run,
decoding and publishing: `inference.frame_pipeline`), so the model never waits for the rest: a
frame that arrives while the model is busy replaces the waiting one (counted as skipped), so
latency never grows. Rates, stage times, provider and latency go to /diagnostics. The engine
lives in `ros_onnx_vision.inference` (no ROS), the diagnostics rules in `ros.diagnostics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import time
from typing import Any

import cv2
import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo, VisionClass

from ros_onnx_vision.inference.engine import (InferenceEngine, PreparedFrame, SessionOutputs,
                                               TimingStats)
from ros_onnx_vision.inference.frame_pipeline import FrameCounts, NewestFramePipeline
from ros_onnx_vision.inference.model_card import load_model_card, ModelCard, ModelCardError
from ros_onnx_vision.inference.self_check import open_checked_engine
from ros_onnx_vision.inference.session import threads_beside_other_work
from ros_onnx_vision.resources import model_file
from ros_onnx_vision.results import Task
from ros_onnx_vision.ros.diagnostics import (InferenceMonitor, InferenceSnapshot, QosMismatch,
                                             Status)
from ros_onnx_vision.ros.graph import CAMERA_TOPIC
from ros_onnx_vision.ros.image_transport import compressed_topic, describe, message_to_numpy
from ros_onnx_vision.ros.matched_subscription import MatchedSubscription
from ros_onnx_vision.ros.messages import RESULT_MESSAGES, result_to_msg
from ros_onnx_vision.ros.node_main import run_node
from ros_onnx_vision.ros.parameters import InferenceParameters
from ros_onnx_vision.ros.stamps import stamp_to_seconds
from ros_onnx_vision.ros.vision_node import VisionNode
from ros_onnx_vision.running_mean import RunningMean

ERROR_LOG_PERIOD = 2.0  # seconds between log lines of the same kind of dropped frame
LIVE_CARD_PARAMETERS = {'score_threshold', 'nms_iou_threshold', 'class_filter', 'top_k',
                        'digit_roi'}
# Drawing moved to annotator_node; these stay declared so parameter files that set them load.
MOVED_TO_ANNOTATOR = ('annotate_confirmed', 'jpeg_quality')


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
    """Counters and mean per-stage times (ms) since activation, for logs and benchmarks."""

    # received / processed / skipped / errors, kept by the frame pipeline
    counts: FrameCounts = field(default_factory=FrameCounts)
    convert: RunningMean = field(default_factory=RunningMean)
    message: RunningMean = field(default_factory=RunningMean)
    publish: RunningMean = field(default_factory=RunningMean)
    latency: RunningMean = field(default_factory=RunningMean)  # stamp to result published
    # Pre-processing, session run and decoding: timed by the engine itself.
    engine: TimingStats = field(default_factory=TimingStats)

    def stages_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage of a frame, in pipeline order."""
        engine = self.engine.mean
        return {'convert': self.convert.value, 'pre-processing': engine.pre_ms,
                'inference (session run)': engine.run_ms, 'decoding': engine.post_ms,
                'message': self.message.value, 'publish': self.publish.value}

    def summary(self) -> str:
        engine, counts = self.engine.mean, self.counts
        return (f'{counts.processed} processed, {counts.skipped} skipped (newest-frame policy), '
                f'{counts.errors} errors; mean ms: convert {self.convert.value:.2f}, pre '
                f'{engine.pre_ms:.2f}, run {engine.run_ms:.2f}, decode {engine.post_ms:.2f}, '
                f'message {self.message.value:.2f}, publish {self.publish.value:.2f}')


@dataclass(frozen=True)
class _Staged:
    """A frame between the stages: the engine it started with."""

    engine: InferenceEngine
    frame: PreparedFrame
    convert_ms: float


def to_engine_image(msg: Image | CompressedImage, max_pixels: int) -> tuple[np.ndarray, str]:
    """The image as the engine takes it (uint8, BGR/RGB/GRAY) or a clear error."""
    image, order = message_to_numpy(msg, max_pixels, 'inference')
    if order in ('BGRA', 'RGBA'):
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR if order == 'BGRA' else
                             cv2.COLOR_RGBA2RGB)
        order = order[:3]
    return image, order


class InferenceNode(VisionNode[InferenceParameters]):
    """Thin lifecycle wrapper around InferenceEngine with a newest-frame worker."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('inference_node', InferenceParameters, **kwargs)
        self.engine: InferenceEngine | None = None
        self.stats = FrameStats()
        self._frames: NewestFramePipeline[Image | CompressedImage] | None = None
        self._subscription: MatchedSubscription | None = None
        # Logs and diagnostics name the input as resolved: namespace and remapping applied.
        # The compressed transport's topic hangs off the resolved (remapped) image topic.
        self._input_topic = self.resolve_topic_name(CAMERA_TOPIC)
        if self.params.image_transport == 'compressed':
            self._input_topic = compressed_topic(self._input_topic)
        self._result_pub: Any = None
        self._label_pub: Any = None
        # Diagnostics: node-clock time of the last image (or activation), last latency
        self._last_input: float | None = None
        self._latency_ms: float | None = None
        self._qos_mismatch = QosMismatch()
        self._self_check = ''  # the last self-check's line
        self._monitor = InferenceMonitor(self.get_name())
        defaults = InferenceParameters()
        moved = [n for n in MOVED_TO_ANNOTATOR
                 if getattr(self.params, n) != getattr(defaults, n)]
        if moved:
            self.get_logger().warning(
                f'{", ".join(moved)} set on inference_node, but drawing moved to annotator_node: '
                'set it there (ros2 launch ... annotate:=true starts it)')

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        p = self.params
        card = load_model_card(resolve_model_card(p.model))
        # The self-check runs the card's reference on this provider and CPU (and warms the
        # session up); a wrong result fails configure, or switches to the fallback card.
        engine, check = open_checked_engine(
            card, self.get_logger().warning, providers=p.execution_providers,
            strict=p.strict_providers,
            intra_op_threads=p.intra_op_threads or threads_beside_other_work(),
            intra_op_spinning=p.intra_op_spinning, graph_optimization=p.graph_optimization,
            optimized_model_cache=p.optimized_model_cache)
        engine.apply_overrides(**self._card_overrides(engine.base_card))
        self._self_check = check.message
        self.get_logger().info(f'self-check passed in {check.elapsed_ms:.0f} ms: '
                               f'{check.message}')
        self.engine = engine
        report = engine.provider_report
        (self.get_logger().warning if report.fell_back else self.get_logger().info)(
            report.summary())
        task = engine.card.task
        self._result_pub = self.create_lifecycle_publisher(RESULT_MESSAGES[task],
                                                           task.result_topic, 10)
        # label_info is latched at configure, so late joiners get it whatever the state.
        self._label_pub = self.create_publisher(
            LabelInfo, 'label_info',
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._label_pub.publish(self._label_info())
        card = engine.card
        self.get_logger().info(
            f'configured {card.name} ({task}, {card.input.width}x{card.input.height} '
            f'{card.input.layout}, decoder {card.decoder.type}), score >= '
            f'{card.score_threshold}, classes {list(card.class_filter) or "all"}, '
            f'{engine.session.get_session_options().intra_op_num_threads} intra-op thread(s)')

    def _card_overrides(self, card: ModelCard) -> dict[str, Any]:
        """The node's parameters that override `card` (negative/'card' = keep the card's)."""
        p = self.params
        overrides: dict[str, Any] = {}
        if p.score_threshold >= 0:
            overrides['score_threshold'] = p.score_threshold
        if p.nms_iou_threshold >= 0:
            overrides['nms_iou'] = p.nms_iou_threshold
        if list(p.class_filter) != ['card']:
            overrides['class_filter'] = list(p.class_filter)
        if p.top_k > 0:
            overrides['top_k'] = p.top_k
        if card.task is Task.CLASSIFICATION and card.digit is not None:
            overrides['digit_roi'] = list(p.digit_roi)
        return overrides

    def on_parameters_changed(self, changed: dict[str, Any]) -> None:
        """Live changes of thresholds, filter, top-k and region, applied between frames."""
        if self.engine is None or not set(changed) & LIVE_CARD_PARAMETERS:
            return
        try:
            self.engine.apply_overrides(**self._card_overrides(self.engine.base_card))
            self.get_logger().info('model card overrides updated: ' + ', '.join(
                f'{name}={value}' for name, value in changed.items()))
        except ModelCardError as error:
            self.get_logger().error(f'parameter change not applied: {error}')

    def activate(self) -> None:
        assert self.engine is not None
        self.engine.timings.reset()
        self._last_input, self._latency_ms = self.now_s(), None
        self._frames = NewestFramePipeline(self._prepare, self._run, self._deliver,
                                           self._log_dropped, name='inference')
        self.stats = FrameStats(counts=self._frames.counts, engine=self.engine.timings)
        compressed = self.params.image_transport == 'compressed'
        self._subscription = MatchedSubscription(
            self, CompressedImage if compressed else Image, self._input_topic, self.on_image,
            self.params.reliability, 1, self._qos_mismatch)
        self.get_logger().info(
            f'active: processing the newest frame of {self._subscription.topic_name} '
            f'({self._qos_mismatch.reliability})')

    def deactivate(self) -> None:
        if self._subscription is not None:
            self._subscription.destroy()
            self._subscription = None
        if self._frames is not None:
            self._frames.stop(timeout=10)
            self._frames = None

    def cleanup(self) -> None:
        if self._result_pub is not None:
            self.destroy_lifecycle_publisher(self._result_pub)
        if self._label_pub is not None:
            self.destroy_publisher(self._label_pub)
        self._result_pub = self._label_pub = None
        if self.engine is not None:
            self.engine = None  # releases the ONNX Runtime session
            self.get_logger().info('cleaned up: session released')

    # --- frames ----------------------------------------------------------------------------
    def on_image(self, msg: Image | CompressedImage) -> None:
        self._last_input = self.now_s()
        frames = self._frames
        if frames is not None:
            frames.submit(msg)

    def _log_dropped(self, msg: Image | CompressedImage, error: Exception) -> None:
        """Log a dropped frame, at most every 2 s per kind of error (every drop is counted)."""
        encoding = msg.format if isinstance(msg, CompressedImage) else msg.encoding
        self.error_throttled(
            f'{type(error).__name__}:{encoding}:{str(error)[:30]}',
            f'{describe(msg)} dropped: {error} ({self.stats.counts.errors} dropped so far)',
            ERROR_LOG_PERIOD)

    # The three stages of a frame, each in its own thread (NewestFramePipeline).
    def _prepare(self, msg: Image | CompressedImage) -> _Staged:
        engine = self.engine
        assert engine is not None  # the pipeline stops before cleanup releases it
        t0 = time.perf_counter()
        image, order = to_engine_image(msg, self.params.max_image_pixels)
        convert_ms = (time.perf_counter() - t0) * 1e3
        return _Staged(engine, engine.prepare(image, order), convert_ms)

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
        self._latency_ms = (self.now_s() - stamp_to_seconds(msg.header.stamp)) * 1e3
        stats = self.stats
        stats.convert.add(staged.convert_ms)
        stats.message.add((t1 - t0) * 1e3)
        stats.publish.add((t2 - t1) * 1e3)
        stats.latency.add(self._latency_ms)

    def _label_info(self) -> LabelInfo:
        assert self.engine is not None
        card = self.engine.card
        return LabelInfo(
            header=Header(stamp=self.get_clock().now().to_msg()),
            class_map=[VisionClass(class_id=i, class_name=name)
                       for i, name in enumerate(card.labels)],
            threshold=float(card.score_threshold))

    def report(self) -> list[Status]:
        engine, stats = self.engine, self.stats
        report = engine.provider_report if engine else None
        idle = self.now_s() - self._last_input if self._last_input is not None else None
        return [self._monitor.report(time.monotonic(), InferenceSnapshot(
            state=self.node_state.value,
            model=engine.card.name if engine else self.params.model,
            input_topic=self._input_topic, received=stats.counts.received,
            processed=stats.counts.processed, skipped=stats.counts.skipped,
            errors=stats.counts.errors,
            stages_ms=stats.stages_ms(),
            provider=report.active[0] if report and report.active else '',
            fallback='; '.join(f'{name} not used: {reason}' for name, reason in
                               report.failures.items()) if report else '',
            idle_s=idle, latency_ms=self._latency_ms,
            mean_latency_ms=stats.latency.value if stats.counts.processed else None,
            qos=self._qos_mismatch, self_check=self._self_check,
            configure_error=self.configure_error))]

    def log_stats(self) -> None:
        self.get_logger().info(self.stats.summary())


def main(args: list[str] | None = None) -> int:
    return run_node(InferenceNode, 'inference_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

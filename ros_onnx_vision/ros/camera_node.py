"""camera_node: publishes any image source as sensor_msgs/Image + CameraInfo at a held rate.

Topics: `image_raw` (Image), `image_raw/compressed` (JPEG CompressedImage as image_transport
publishes it, encoded only while someone subscribes), `camera_info` (CameraInfo, same header),
`frame_count` (std_msgs/UInt64, index of the latest published frame: a consumer that counts
the images it received against it knows how many it lost); its status goes to /diagnostics.
Frames are read and published from a dedicated thread paced on absolute deadlines, so a slow
frame does not make later ones late. Stamps are the capture time on the node clock (sim time
with use_sim_time).

A lifecycle node (`ros.vision_node`): configure opens the source (a missing file or device
fails the transition with the reason; under autostart a live source is tried again with
backoff) and creates the publishers, activate starts the capture thread, deactivate stops it,
cleanup closes the source. Sources, pacing and calibration live in `ros_onnx_vision.camera`
(no ROS), the diagnostics rules in `ros.diagnostics`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, UInt64

from ros_onnx_vision.camera.calibration import (CameraCalibration, default_calibration,
                                                load_calibration, scaled)
from ros_onnx_vision.camera.frame_sources import (Backoff, convert_frame, Frame, FrameSource,
                                                  infer_kind, open_source, parse_kind, SourceError,
                                                  SourceKind, SourceReadError)
from ros_onnx_vision.camera.pacing import RateMeter, RatePacer
from ros_onnx_vision.ros.diagnostics import CameraMonitor, CameraSnapshot, CameraState, Status
from ros_onnx_vision.ros.graph import CAMERA_TOPIC
from ros_onnx_vision.ros.image_conversion import numpy_to_image
from ros_onnx_vision.ros.image_transport import compressed_topic, LazyCompressedPublisher
from ros_onnx_vision.ros.node_main import run_node
from ros_onnx_vision.ros.parameters import CameraParameters
from ros_onnx_vision.ros.qos import qos
from ros_onnx_vision.ros.vision_node import VisionNode
from ros_onnx_vision.running_mean import RunningMean

DEFAULT_FPS = 30.0  # for sources that have no rate of their own


def camera_info_msg(calib: CameraCalibration, header: Header) -> CameraInfo:
    return CameraInfo(header=header, width=calib.width, height=calib.height,
                      distortion_model=calib.distortion_model, d=list(calib.d), k=list(calib.k),
                      r=list(calib.r), p=list(calib.p))


class CameraNode(VisionNode[CameraParameters]):
    """Thin ROS wrapper: open the source (configure), pace, convert, stamp, publish (active)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('camera_node', CameraParameters, **kwargs)
        p = self.params
        self.kind = parse_kind(p.source_kind) or infer_kind(p.source)
        self.calibration: CameraCalibration | None = None
        self.source: FrameSource | None = None
        self.backoff = Backoff(initial=p.retry_initial_delay, max_delay=p.retry_max_delay)
        self.published = 0
        self.publish_cost = RunningMean(horizon=100)  # ms to convert, build and publish a frame
        self.meter = RateMeter(window=5.0)
        self.pacer: RatePacer | None = None
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.state = CameraState.STOPPED
        self.retries = self.reconnects = 0
        self.last_error = ''
        self.monitor = CameraMonitor(self.get_name())
        self.image_pub: Any = None
        self.compressed: LazyCompressedPublisher | None = None
        self.info_pub: Any = None
        self.count_pub: Any = None

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        """Open the source (a missing file or device fails here, with the reason) and create
        the publishers."""
        p = self.params
        self.state = CameraState.OPENING
        self.calibration = load_calibration(p.camera_info_url) if p.camera_info_url else None
        try:
            self.source = self._open()
        except SourceError as error:
            self.state, self.last_error = CameraState.FAILED, str(error)
            raise
        if self.backoff.attempts:
            self.reconnects += 1
        self.backoff.reset()
        data_qos = qos(p.reliability, p.depth)
        self.image_pub = self.create_publisher(Image, CAMERA_TOPIC, data_qos)
        # image_transport's name rule: the remapped image topic + '/compressed'.
        self.compressed = LazyCompressedPublisher(self.create_publisher(
            CompressedImage, compressed_topic(self.image_pub.topic_name), data_qos),
            p.jpeg_quality)
        self.info_pub = self.create_publisher(CameraInfo, 'camera_info', data_qos)
        self.count_pub = self.create_publisher(UInt64, 'frame_count', data_qos)
        self.state = CameraState.STOPPED

    def autostart_retry_delay(self) -> float | None:
        """A live source (device, stream) that is not there yet: configure again later."""
        return self._retry_delay(self.configure_error, 'configure') if self.kind.live else None

    def _retry_delay(self, error: str, what: str) -> float | None:
        """The wait before retrying after a source failure, counted and logged; None (state
        failed) once max_retries are used up."""
        self.state, self.last_error = CameraState.RECONNECTING, error
        if 0 <= self.params.max_retries <= self.backoff.attempts:
            self.state = CameraState.FAILED
            self.get_logger().error(f'{error}; giving up after {self.backoff.attempts} retries '
                                    '(max_retries)')
            return None
        self.retries += 1
        delay = self.backoff.next_delay()
        self.get_logger().warning(f'{error}; retrying {what} in {delay:.1f} s')
        return delay

    def activate(self) -> None:
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, name='camera_capture', daemon=True)
        self.thread.start()

    def deactivate(self) -> None:
        # The capture thread ends before the publishers and the context go.
        self._stop.set()
        if self.pacer is not None:
            self.pacer.stop()
        if self.thread is not None:
            self.thread.join(timeout=5.0)
            self.thread = None
        if self.state is not CameraState.FAILED:
            self.state = CameraState.STOPPED

    def cleanup(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None
        for publisher in (self.image_pub, self.compressed.publisher if self.compressed else None,
                          self.info_pub, self.count_pub):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self.image_pub = self.info_pub = self.count_pub = None
        self.compressed = None

    # --- source handling -------------------------------------------------------------------
    def _open(self) -> FrameSource:
        p = self.params
        sized = self.kind in (SourceKind.DEVICE, SourceKind.SYNTHETIC)
        source = open_source(
            p.source, self.kind, loop=p.loop, width=p.width if sized else 0,
            height=p.height if sized else 0, fps=max(p.fps, 0.0) if sized else 0.0,
            pixel_format=p.device_pixel_format, rosbag_topic=p.rosbag_topic)
        self.get_logger().info(f'opened {source.describe()}')
        self._log_warnings(source)
        return source

    def _log_warnings(self, source: FrameSource) -> None:
        for warning in source.take_warnings():
            self.get_logger().warning(f'{source.describe()}: {warning}')

    def _target_fps(self, source: FrameSource) -> float:
        fps = self.params.fps
        if fps >= 0:
            return fps
        if self.kind.live:
            return 0.0  # the device or stream paces itself; reading slower would add delay
        return source.nominal_fps or DEFAULT_FPS

    def _back_off(self, error: Exception) -> bool:
        """Record a read failure and wait before the next try; False once retries run out."""
        delay = self._retry_delay(str(error), 'the read')
        if delay is None:
            return False
        self._stop.wait(delay)
        return True

    # --- capture thread --------------------------------------------------------------------
    def _run(self) -> None:
        p = self.params
        source = self.source
        assert source is not None  # configure opened it; cleanup closes it after deactivate
        try:
            self._wait_for_subscribers(p.wait_for_subscribers)
            recorded_timing = self.kind == SourceKind.ROSBAG and p.fps == -1
            fps = self._target_fps(source)
            self.pacer = RatePacer(0.0 if recorded_timing else fps)
            self.get_logger().info(
                f'publishing {self.image_pub.topic_name} at ' + (
                    'the recorded timing' if recorded_timing else
                    f'{fps:g} Hz' if fps else 'the source rate'))
            self.state = CameraState.PUBLISHING
            replay_origin: tuple[float, float] | None = None  # (wall, recorded) of 1st frame
            while not self._stop.is_set():
                if self.pacer.wait() is None:
                    break
                try:
                    frame = source.read()
                except SourceReadError as error:
                    if not self._back_off(error):
                        self.finished = True
                        break
                    continue
                if self.backoff.attempts:
                    self.reconnects += 1
                    self.state = CameraState.PUBLISHING
                self.backoff.reset()
                if frame is None:
                    self._end_of_source(source)
                    break
                if recorded_timing and frame.source_time is not None:
                    replay_origin = self._wait_recorded(frame, replay_origin)
                self._publish(frame)
        except Exception as error:  # noqa: BLE001 - a capture fault must not be a traceback
            if self._stop.is_set():
                return  # the node is being deactivated: an interrupted read is no fault
            self.get_logger().error(f'capture stopped: {type(error).__name__}: {error}')
            self.state, self.last_error = CameraState.FAILED, f'{type(error).__name__}: {error}'
            self.finished = True

    def log_stats(self) -> None:
        pacer, source = self.pacer, self.source
        if source is not None:
            self._log_warnings(source)
        if pacer is not None:
            self.get_logger().info(
                f'{self.published} frames, {self.meter.rate():.2f} Hz, {pacer.skipped} slots '
                f'skipped, publish cost {self.publish_cost.value:.2f} ms/frame')

    def _wait_for_subscribers(self, count: int) -> None:
        if count <= 0:
            return
        self.state = CameraState.WAITING
        self.get_logger().info(
            f'waiting for {count} subscriber(s) of {self.image_pub.topic_name}')
        while not self._stop.is_set() and self.image_pub.get_subscription_count() < count:
            self._stop.wait(0.05)

    def _wait_recorded(self, frame: Frame, origin: tuple[float, float] | None
                       ) -> tuple[float, float]:
        """Sleep until the frame's recorded offset; restart the timeline when a bag loops."""
        assert frame.source_time is not None
        now = time.monotonic()
        if origin is None or frame.source_time < origin[1]:
            return now, frame.source_time
        delay = origin[0] + (frame.source_time - origin[1]) - now
        if delay > 0:
            self._stop.wait(delay)
        return origin

    def _end_of_source(self, source: FrameSource) -> None:
        action = self.params.end_action
        self.get_logger().info(f'end of {source.describe()} after {self.published} frames '
                               f'(loop is off); end_action={action}')
        self.state = CameraState.ENDED
        if action == 'exit':
            self.finished = True

    def report(self) -> list[Status]:
        pacer, source, compressed = self.pacer, self.source, self.compressed
        return [self.monitor.report(time.monotonic(), CameraSnapshot(
            state=self.state, source=source.describe() if source else self.params.source,
            target_hz=pacer.fps if pacer else 0.0, published=self.published,
            skipped=pacer.skipped if pacer else 0, publish_cost_ms=self.publish_cost.value,
            retries=self.retries, reconnects=self.reconnects, error=self.last_error,
            compressed_encoded=compressed.encoded if compressed else 0,
            compressed_cost_ms=compressed.encode_ms if compressed else 0.0,
            lifecycle=self.node_state.value, configure_error=self.configure_error))]

    def _publish(self, frame: Frame) -> None:
        start = time.perf_counter()
        p = self.params
        header = Header(frame_id=p.frame_id, stamp=self.get_clock().now().to_msg())
        image = convert_frame(frame.image, width=p.width, height=p.height, encoding=p.encoding)
        height, width = image.shape[:2]
        calib = self.calibration
        if calib is None:
            calib = self.calibration = default_calibration(width, height, p.camera_name)
        elif (calib.width, calib.height) != (width, height):
            calib = self.calibration = scaled(calib, width, height)
        assert self.compressed is not None
        self.image_pub.publish(numpy_to_image(image, p.encoding, header))
        self.compressed.publish(image, p.encoding, header)  # one check when unsubscribed
        self.info_pub.publish(camera_info_msg(calib, header))
        self.count_pub.publish(UInt64(data=self.published))
        self.published += 1
        self.meter.tick()
        self.publish_cost.add((time.perf_counter() - start) * 1e3)

    def destroy_node(self) -> None:
        if self.state is CameraState.FAILED and self.context.ok():
            self.diagnostics.publish()  # the final ERROR, before the process exits
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, 'camera_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

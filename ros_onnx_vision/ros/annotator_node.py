"""annotator_node: draws the results on the images they came from, for viewers (rviz, a browser).

Subscribes `image_raw` (or, with `image_transport:=compressed`, `image_raw/compressed`), the raw
results (`detections` or `classification`, by `task`) and, with `annotate_confirmed`, the
confirmed ones (`detections_smoothed` / `classification_smoothed`). Each image is paired with
the results of the same header stamp and frame_id (`annotation.pairing`: a bounded buffer of
images, a short wait for the confirmed result), so the boxes are drawn on the frame they were
found on. Publishes `image_annotated` (sensor_msgs/Image bgr8) and `image_annotated/compressed`
(JPEG) with the image's header. While nobody subscribes to either, the node does not even
subscribe to the camera (receiving 640x480 frames at 15 Hz for nothing cost 4-6.5 % of a core):
it subscribes when a viewer appears and unsubscribes IMAGE_LINGER_S after the last one left.
Frames inference_node skipped have no result and are not drawn.

A lifecycle node (`ros.vision_node`): configure creates the publishers, activate subscribes;
with `autostart` (default) it does both itself. Counts (drawn, unmatched, evicted) go to
/diagnostics. Classification messages carry the class hypotheses only: the digit's search
region and box that inference_node finds are not drawn here.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
from rclpy.clock import Clock, ClockType
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Classification, Detection2DArray

from ros_onnx_vision.annotation.pairing import Key, Paired, StampPairing
from ros_onnx_vision.inference.annotation import (draw_classification, draw_confirmed,
                                                  draw_detections)
from ros_onnx_vision.results import Task
from ros_onnx_vision.ros.diagnostics import (AnnotatorMonitor, AnnotatorSnapshot, QosMismatch,
                                             Status)
from ros_onnx_vision.ros.graph import CAMERA_TOPIC
from ros_onnx_vision.ros.image_conversion import numpy_to_image
from ros_onnx_vision.ros.image_transport import (compressed_topic, describe,
                                                 LazyCompressedPublisher, message_to_numpy)
from ros_onnx_vision.ros.matched_subscription import MatchedSubscription
from ros_onnx_vision.ros.messages import RESULT_MESSAGES, results_from_msg
from ros_onnx_vision.ros.node_main import run_node
from ros_onnx_vision.ros.parameters import AnnotatorParameters
from ros_onnx_vision.ros.vision_node import NodeState, VisionNode
from ros_onnx_vision.running_mean import RunningMean

POLL_PERIOD = 0.05  # seconds (steady) between checks for pairs whose wait ended and viewers
IMAGE_LINGER_S = 2.0  # camera subscription kept this long after the last viewer left
ERROR_LOG_PERIOD = 2.0
TO_BGR = {'RGB': cv2.COLOR_RGB2BGR, 'GRAY': cv2.COLOR_GRAY2BGR, 'BGRA': cv2.COLOR_BGRA2BGR,
          'RGBA': cv2.COLOR_RGBA2BGR}

ImageMsg = Image | CompressedImage
ResultMsg = Detection2DArray | Classification


def header_key(header: Header) -> Key:
    return header.stamp.sec, header.stamp.nanosec, header.frame_id


def to_bgr(msg: ImageMsg, max_pixels: int) -> np.ndarray:
    """The pixels of an Image or CompressedImage as BGR uint8, or a clear error."""
    image, order = message_to_numpy(msg, max_pixels, 'drawing')
    return image if order == 'BGR' else cv2.cvtColor(image, TO_BGR[order])


class AnnotatorNode(VisionNode[AnnotatorParameters]):
    """Pairs images with their results by stamp and draws them, while someone looks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('annotator_node', AnnotatorParameters, **kwargs)
        self.task = Task(self.params.task)
        self._image_topic = self.resolve_topic_name(CAMERA_TOPIC)  # remapping applied
        if self.params.image_transport == 'compressed':
            self._image_topic = compressed_topic(self._image_topic)
        self._pairing: StampPairing[ImageMsg, ResultMsg] | None = None
        self._listening = False  # fed the pairing on the last message (someone subscribed)
        self._annotated_pub: Any = None
        self._annotated_compressed: LazyCompressedPublisher | None = None
        self._inputs: list[MatchedSubscription] = []  # results: raw, confirmed
        self._image_input: MatchedSubscription | None = None  # while someone views
        self._unwatched_since: float | None = None  # steady seconds
        self._poll_timer: Any = None
        self._qos = [QosMismatch() for _ in range(3)]  # image, raw, confirmed
        self.drawn = 0
        self.errors = 0
        self._draw_ms = RunningMean()
        self._monitor = AnnotatorMonitor(self.get_name())

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        p = self.params
        self._pairing = StampPairing(max_frames=p.buffer_frames, max_age=p.buffer_age,
                                     wait=p.wait, confirmed=p.annotate_confirmed)
        self._annotated_pub = self.create_lifecycle_publisher(Image, 'image_annotated', 1)
        self._annotated_compressed = LazyCompressedPublisher(self.create_lifecycle_publisher(
            CompressedImage, compressed_topic(self._annotated_pub.topic_name), 1),
            p.jpeg_quality)
        self.get_logger().info(
            f'configured: {self.task.value} results drawn on {self._image_topic}'
            + (f' (confirmed over raw, wait {p.wait:g} s)' if p.annotate_confirmed
               else ' (raw only)'))

    def activate(self) -> None:
        p = self.params
        msg_type = RESULT_MESSAGES[self.task]
        inputs = [(self.task.result_topic, self.on_raw)]
        if p.annotate_confirmed:
            inputs.append((self.task.smoothed_topic, self.on_confirmed))
        self._inputs = [
            MatchedSubscription(self, msg_type, topic, callback, 'best_available', 10, qos)
            for (topic, callback), qos in zip(inputs, self._qos[1:])]
        self._poll_timer = self.create_timer(POLL_PERIOD, self.on_poll,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f'active: pairing {self._image_topic} (subscribed while image_annotated has a '
            'viewer) with ' + ', '.join(s.topic_name for s in self._inputs))
        self._follow_viewers()

    def _follow_viewers(self) -> None:
        """Subscribe to the camera while someone views the drawings, not otherwise."""
        if self.wanted():
            self._unwatched_since = None
            if self._image_input is None:
                p = self.params
                kind = CompressedImage if p.image_transport == 'compressed' else Image
                self._image_input = MatchedSubscription(self, kind, self._image_topic,
                                                        self.on_image, p.reliability, 2,
                                                        self._qos[0])
                self.get_logger().info(f'a viewer: subscribed to {self._image_topic} '
                                       f'({self._qos[0].reliability})')
            return
        if self._image_input is None:
            return
        now = time.monotonic()
        if self._unwatched_since is None:
            self._unwatched_since = now
        elif now - self._unwatched_since >= IMAGE_LINGER_S:
            self._image_input.destroy()
            self._image_input = None
            self.get_logger().info(f'no viewer: unsubscribed from {self._image_topic}')

    def deactivate(self) -> None:
        for subscription in self._inputs + ([self._image_input] if self._image_input else []):
            subscription.destroy()
        self._inputs, self._image_input, self._unwatched_since = [], None, None
        if self._poll_timer is not None:
            self.destroy_timer(self._poll_timer)
            self._poll_timer = None
        if self._pairing is not None:
            self._pairing.clear()
        self._listening = False

    def cleanup(self) -> None:
        compressed = self._annotated_compressed
        for publisher in (self._annotated_pub, compressed.publisher if compressed else None):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._annotated_pub, self._annotated_compressed = None, None
        self._pairing = None

    # --- inputs ----------------------------------------------------------------------------
    def wanted(self) -> bool:
        """Whether anyone subscribes image_annotated or image_annotated/compressed."""
        return self._annotated_pub is not None and self._annotated_compressed is not None and (
            self._annotated_pub.get_subscription_count() > 0
            or self._annotated_compressed.wanted())

    def _listen(self) -> StampPairing[ImageMsg, ResultMsg] | None:
        """The pairing to feed, or None while nobody looks (then nothing is kept)."""
        pairing = self._pairing
        if pairing is None or self.node_state is not NodeState.ACTIVE:
            return None
        if not self.wanted():
            if self._listening:
                pairing.clear()
                self._listening = False
            return None
        self._listening = True
        return pairing

    def on_image(self, msg: ImageMsg) -> None:
        pairing = self._listen()
        if pairing is not None:
            self._publish(pairing.add_image(header_key(msg.header), msg))

    def on_raw(self, msg: ResultMsg) -> None:
        pairing = self._listen()
        if pairing is not None:
            self._publish(pairing.add_raw(header_key(msg.header), msg))

    def on_confirmed(self, msg: ResultMsg) -> None:
        pairing = self._listen()
        if pairing is not None:
            self._publish(pairing.add_confirmed(header_key(msg.header), msg))

    def on_poll(self) -> None:
        self._follow_viewers()
        if self._listening and self._pairing is not None:
            self._publish(self._pairing.poll())

    # --- output ----------------------------------------------------------------------------
    def _publish(self, pairs: list[Paired[ImageMsg, ResultMsg]]) -> None:
        for pair in pairs:
            start = time.perf_counter()
            try:
                drawn = self.draw(to_bgr(pair.image, self.params.max_image_pixels),
                                  pair.raw, pair.confirmed)
            except (ValueError, cv2.error) as error:  # ImageConversionError, decode errors
                self.errors += 1
                self._log_error(pair.image, error)
                continue
            header = pair.image.header
            if self._annotated_pub.get_subscription_count() > 0:
                self._annotated_pub.publish(numpy_to_image(drawn, 'bgr8', header))
            self._annotated_compressed.publish(drawn, 'bgr8', header)
            self.drawn += 1
            self._draw_ms.add((time.perf_counter() - start) * 1e3)

    def draw(self, bgr: np.ndarray, raw: ResultMsg, confirmed: ResultMsg | None) -> np.ndarray:
        """The annotated frame: confirmed results bold over raw ones, or raw ones only."""
        results = results_from_msg(raw)
        if self.params.annotate_confirmed:
            # None: no confirmed result came in time (smoothing_node not running or late).
            return draw_confirmed(bgr, results, results_from_msg(confirmed)
                                  if confirmed is not None else None, self.task)
        if self.task is Task.DETECTION:
            return draw_detections(bgr, results)
        return draw_classification(bgr, results)  # no digit region or box in the message

    def _log_error(self, msg: ImageMsg, error: Exception) -> None:
        self.error_throttled(f'{type(error).__name__}:{str(error)[:30]}',
                             f'{describe(msg)} not drawn: {error} ({self.errors} so far)',
                             ERROR_LOG_PERIOD)

    def report(self) -> list[Status]:
        counts = self._pairing.counts if self._pairing is not None else None
        return [self._monitor.report(time.monotonic(), AnnotatorSnapshot(
            state=self.node_state.value, image_topic=self._image_topic, wanted=self.wanted(),
            drawn=self.drawn, errors=self.errors,
            counts={**vars(counts), 'unmatched': counts.unmatched} if counts else {},
            draw_ms=self._draw_ms.value if self.drawn else None,
            qos=self._qos[:1 + len(self._inputs)] if self._inputs else []))]

def main(args: list[str] | None = None) -> int:
    return run_node(AnnotatorNode, 'annotator_node', args=args)


if __name__ == '__main__':
    raise SystemExit(main())

"""image_transport's `compressed` topics without image_transport (it is not on PyPI).

A C++ image_transport publisher of `image_raw` also offers `image_raw/compressed`
(sensor_msgs/CompressedImage) and encodes a frame only while someone subscribes to it; viewers
and recorders on other hosts take that topic. This module gives the nodes the same: the topic
name rule, a publisher that encodes lazily (and counts what it encoded, so the cost of an
unsubscribed topic can be checked), and the decoding of a received CompressedImage. The codec
itself is `camera.compression` (no ROS), shared with the rosbag source.
"""

from __future__ import annotations

import array
import time
from typing import Any

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ros_onnx_vision.camera import compression
from ros_onnx_vision.image_encodings import ENGINE_COLOR_ORDERS
from ros_onnx_vision.ros.image_conversion import image_to_numpy, ImageConversionError
from ros_onnx_vision.running_mean import RunningMean


def compressed_topic(image_topic: str) -> str:
    """The compressed transport's topic of an image topic, as image_transport names it."""
    return f'{image_topic.rstrip("/")}/{compression.COMPRESSED_SUFFIX}'


def compressed_msg(image: np.ndarray, encoding: str, header: Header,
                   quality: int) -> CompressedImage:
    """A JPEG CompressedImage of a bgr8, rgb8 or mono8 image, with image_transport's format."""
    data, fmt = compression.encode_jpeg(image, encoding, quality)
    msg = CompressedImage(header=header, format=fmt)
    msg.data = array.array('B', data)
    return msg


class LazyCompressedPublisher:
    """Publishes JPEG frames on a compressed topic, encoding only while it has subscribers.

    Without a subscriber a frame costs one get_subscription_count() call. `encoded` counts
    the frames encoded and `encode_ms` is their mean encode-and-publish time, for diagnostics.
    """

    def __init__(self, publisher: Any, quality: int) -> None:
        self.publisher = publisher
        self.quality = quality
        self._encode_ms = RunningMean()

    @property
    def encoded(self) -> int:
        """Frames encoded and published so far."""
        return self._encode_ms.count

    @property
    def encode_ms(self) -> float:
        """Their mean encode-and-publish time (0.0 before the first)."""
        return self._encode_ms.value

    def wanted(self) -> bool:
        return self.publisher.get_subscription_count() > 0

    def publish(self, image: np.ndarray, encoding: str, header: Header) -> bool:
        """Encode and publish when subscribed; whether it did."""
        if not self.wanted():
            return False
        start = time.perf_counter()
        self.publisher.publish(compressed_msg(image, encoding, header, self.quality))
        self._encode_ms.add((time.perf_counter() - start) * 1e3)
        return True


def compressed_to_numpy(msg: CompressedImage, max_pixels: int) -> tuple[np.ndarray, str]:
    """The pixels of a received CompressedImage and their order ('BGR', 'RGB' or 'GRAY').

    An image whose header declares more than `max_pixels` is refused before decoding.
    Raises compression.UnsupportedCompression (compressedDepth, other codecs) or
    CompressedDecodeError (bytes that do not decode), both ValueErrors with the reason.
    """
    compression.parse_format(msg.format)  # refuse compressedDepth before touching the data
    size = compression.image_size(msg.data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise compression.CompressedDecodeError(
            f'compressed image of {size[0]}x{size[1]} = {size[0] * size[1]} pixels exceeds '
            f'max_image_pixels {max_pixels}; refused')
    return compression.decode(msg.data, msg.format)


def message_to_numpy(msg: Image | CompressedImage, max_pixels: int,
                     purpose: str) -> tuple[np.ndarray, str]:
    """The uint8 pixels of a received image and their channel order (an ENGINE_COLOR_ORDERS
    value: BGR, RGB, GRAY, BGRA or RGBA), or an ImageConversionError / ValueError saying what
    is wrong. `purpose` names the use in the unsupported-encoding message."""
    if isinstance(msg, CompressedImage):
        return compressed_to_numpy(msg, max_pixels)  # decoded once, in its own channel order
    if msg.encoding not in ENGINE_COLOR_ORDERS:
        raise ImageConversionError(
            f'unsupported image encoding {msg.encoding!r} for {purpose}; expected one of '
            + ', '.join(ENGINE_COLOR_ORDERS))
    pixels = int(msg.width) * int(msg.height)
    if pixels > max_pixels:
        raise ImageConversionError(
            f'image of {msg.width}x{msg.height} = {pixels} pixels exceeds max_image_pixels '
            f'{max_pixels}; refused')
    return image_to_numpy(msg), ENGINE_COLOR_ORDERS[msg.encoding]


def describe(msg: Any) -> str:
    """A received image in a few words, for error lines: size and encoding, or format."""
    if isinstance(msg, CompressedImage):
        return f'CompressedImage of {len(msg.data)} bytes, format {msg.format!r}'
    return f'frame {msg.width}x{msg.height} {msg.encoding!r}'

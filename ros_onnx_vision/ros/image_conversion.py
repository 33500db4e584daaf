"""sensor_msgs/Image <-> numpy, with cv_bridge semantics, without needing cv_bridge.

cv_bridge is used when it imports and passes a round trip (a ROS distro's). Otherwise (no ROS
install, or PyPI's broken ROS 1 `cv-bridge`) the implementation below applies the same rules:
dtype and channels from the encoding, rows read through `step` (row padding), `is_bigendian`
honoured, header passed through. Size mismatches raise `ImageConversionError` naming the numbers.
"""

from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros_onnx_vision import image_encodings


class ImageConversionError(ValueError):
    """An image message or array that cannot be converted; the message names the numbers."""


def encoding_format(encoding: str) -> tuple[np.dtype, int]:
    """Return (dtype, channels) of a ROS image encoding, or raise naming the supported ones."""
    try:
        return image_encodings.encoding_format(encoding)
    except image_encodings.UnsupportedEncoding as error:
        raise ImageConversionError(str(error)) from None


def _own_image_to_numpy(msg: Image) -> np.ndarray:
    dtype, channels = encoding_format(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(
            f'image has zero size ({width}x{height}); expected width and height > 0')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'image step {step} is smaller than one row of {width} px x {channels} channel(s) x '
            f'{dtype.itemsize} byte(s) = {row_bytes} bytes ({msg.encoding})')
    data = msg.data
    size = len(data)
    if size != height * step:
        raise ImageConversionError(
            f'image data has {size} bytes; expected height x step = {height} x {step} = '
            f'{height * step} bytes ({width}x{height} {msg.encoding})')
    if msg.is_bigendian != (sys.byteorder == 'big') and dtype.itemsize > 1:
        dtype = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    shape: tuple[int, ...] = (height, width, channels)
    strides: tuple[int, ...] = (step, channels * dtype.itemsize, dtype.itemsize)
    if channels == 1:
        shape, strides = shape[:2], strides[:2]
    # A view into the message buffer (no copy) when the byte order is native.
    result = np.ndarray(shape=shape, dtype=dtype, buffer=memoryview(data), strides=strides)
    if not dtype.isnative:
        result = result.astype(dtype.newbyteorder('='))
    return result


def _own_numpy_to_image(image: np.ndarray, encoding: str, header: Header | None) -> Image:
    if image.ndim not in (2, 3):
        raise ImageConversionError(
            f'array has {image.ndim} dimensions; expected HxW or HxWxC')
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if encoding == 'passthrough':
        encoding = _passthrough_encoding(image.dtype, channels)
    dtype, expected_channels = encoding_format(encoding)
    if channels != expected_channels or image.dtype != dtype:
        raise ImageConversionError(
            f'array of {channels} channel(s) of {image.dtype} does not match encoding '
            f'{encoding!r}, which needs {expected_channels} channel(s) of {dtype}')
    if height <= 0 or width <= 0:
        raise ImageConversionError(
            f'array has zero size ({width}x{height}); expected width and height > 0')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = sys.byteorder == 'big'
    msg.step = width * channels * dtype.itemsize
    # One copy, straight from the numpy buffer into the array.array the message keeps.
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(image).reshape(-1).view(np.uint8))
    msg.data = data
    return msg


def _passthrough_encoding(dtype: np.dtype, channels: int) -> str:
    for (bits, kind), name in image_encodings.GENERIC_DTYPES.items():
        if np.dtype(name) == dtype:
            return f'{bits}{kind}C{channels}'
    raise ImageConversionError(f'no image encoding for arrays of {dtype}')


def _load_cv_bridge() -> Any | None:
    """A working cv_bridge.CvBridge, or None (not installed, or broken like PyPI's port)."""
    try:
        from cv_bridge import CvBridge  # type: ignore[import-not-found]
        bridge = CvBridge()
        probe = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
        back = bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(probe, 'bgr8'), 'passthrough')
        if not np.array_equal(back, probe):
            return None
        return bridge
    except Exception:  # noqa: BLE001 - any failure means: do not use it
        return None


_bridge: Any | None = None
_bridge_checked = False


def cv_bridge_in_use() -> bool:
    """True when a working cv_bridge does the conversions."""
    global _bridge, _bridge_checked
    if not _bridge_checked:
        _bridge, _bridge_checked = _load_cv_bridge(), True
    return _bridge is not None


def image_to_numpy(msg: Image) -> np.ndarray:
    """Return the pixels of `msg` as HxW or HxWxC in the message's own encoding.

    The result may be a read-only view into the message buffer; copy it before writing to it.
    """
    if cv_bridge_in_use():
        encoding_format(msg.encoding)  # the same clear error for unsupported encodings
        try:
            return _bridge.imgmsg_to_cv2(msg, 'passthrough')
        except Exception as error:  # cv_bridge's own errors are terse: rerun ours for the text
            _own_image_to_numpy(msg)
            raise ImageConversionError(str(error)) from error
    return _own_image_to_numpy(msg)


def numpy_to_image(image: np.ndarray, encoding: str = 'passthrough',
                   header: Header | None = None) -> Image:
    """Build an Image message from an HxW or HxWxC array in `encoding` (header copied in)."""
    if cv_bridge_in_use():
        msg = _bridge.cv2_to_imgmsg(np.ascontiguousarray(image), encoding)
        if header is not None:
            msg.header = header
        return msg
    return _own_numpy_to_image(image, encoding, header)

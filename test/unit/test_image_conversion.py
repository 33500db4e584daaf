"""image_conversion: round trips for every encoding, row padding, byte order, clear errors."""

from __future__ import annotations

import array
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros_onnx_vision.ros.image_conversion import (encoding_format, image_to_numpy,
                                                  ImageConversionError, numpy_to_image)

ENCODINGS = ['bgr8', 'rgb8', 'bgra8', 'rgba8', 'mono8', 'mono16', '8UC1', '8UC3', '16UC1',
             '32FC1', '8UC4', '16SC3', '32SC2', '64FC1', 'bgr16', 'rgba16', 'bayer_rggb8',
             'yuv422']


def sample(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    dtype, channels = encoding_format(encoding)
    rng = np.random.default_rng(abs(hash(encoding)) % 1000)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == 'f':
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize('encoding', ENCODINGS)
def test_round_trip_every_encoding(encoding):
    image = sample(encoding)
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = numpy_to_image(image, encoding, header)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * image.itemsize * (1 if image.ndim == 2 else image.shape[2])
    assert len(msg.data) == msg.height * msg.step
    assert msg.header.frame_id == 'cam' and msg.header.stamp.nanosec == 345
    back = image_to_numpy(msg)
    assert back.dtype == image.dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def test_passthrough_picks_generic_encoding():
    msg = numpy_to_image(np.zeros((2, 3), np.float32))
    assert msg.encoding == '32FC1'


def test_row_padding_through_step():
    image = sample('bgr8', 4, 5)
    padded = np.zeros((4, 5 * 3 + 9), np.uint8)  # 9 bytes of padding per row
    padded[:, :15] = image.reshape(4, 15)
    msg = Image(height=4, width=5, encoding='bgr8', step=24)
    msg.data = array.array('B', padded.tobytes())
    np.testing.assert_array_equal(image_to_numpy(msg), image)


def test_big_endian_mono16_is_read_in_native_order():
    values = np.array([[1, 256, 65535]], np.uint16)
    msg = Image(height=1, width=3, encoding='mono16', step=6,
                is_bigendian=sys.byteorder == 'little')
    msg.data = array.array('B', values.astype(values.dtype.newbyteorder('>' if
                           sys.byteorder == 'little' else '<')).tobytes())
    back = image_to_numpy(msg)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, values)


def test_view_without_copy():
    msg = numpy_to_image(sample('bgr8'), 'bgr8')
    view = image_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize('height, width, step, size, words', [
    (4, 5, 15, 59, ['59 bytes', '4 x 15 = 60']),
    (4, 5, 15, 61, ['61 bytes', '60']),
    (4, 5, 10, 40, ['step 10', '15 bytes']),
    (0, 5, 15, 0, ['zero size']),
    (4, 0, 0, 0, ['zero size']),
])
def test_bad_sizes_name_the_numbers(height, width, step, size, words):
    msg = Image(height=height, width=width, encoding='bgr8', step=step)
    msg.data = array.array('B', bytes(size))
    with pytest.raises(ImageConversionError) as error:
        image_to_numpy(msg)
    for word in words:
        assert word in str(error.value)


def test_unknown_encoding_lists_supported():
    msg = Image(height=1, width=1, encoding='nv12', step=1)
    msg.data = array.array('B', b'\x00')
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'nv12'.*bgr8"):
        image_to_numpy(msg)


@pytest.mark.parametrize('array_, encoding, words', [
    (np.zeros((2, 2, 3), np.uint8), 'mono8', ['3 channel', "'mono8'", '1 channel']),
    (np.zeros((2, 2), np.float32), 'mono8', ['float32', 'uint8']),
    (np.zeros((2, 2, 2, 2), np.uint8), 'bgr8', ['4 dimensions']),
])
def test_array_not_matching_encoding(array_, encoding, words):
    with pytest.raises(ImageConversionError) as error:
        numpy_to_image(array_, encoding)
    for word in words:
        assert word in str(error.value)


# --- Property-based: any well-formed image round-trips; any malformed one raises clearly ----

_PROPERTY_ENCODINGS = ['bgr8', 'rgb8', 'bgra8', 'mono8', 'mono16', '8UC3', '16UC1', '32FC1',
                       '16SC2', '64FC1']


@settings(max_examples=60, deadline=None)
@given(encoding=st.sampled_from(_PROPERTY_ENCODINGS), height=st.integers(1, 9),
       width=st.integers(1, 9), padding=st.integers(0, 7), big_endian=st.booleans(),
       seed=st.integers(0, 2**16))
def test_property_round_trip_with_padding_and_byte_order(encoding, height, width, padding,
                                                         big_endian, seed):
    dtype, channels = encoding_format(encoding)
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    image = rng.integers(0, 255, size=shape).astype(dtype)
    row = width * channels * dtype.itemsize
    wire = image.astype(dtype.newbyteorder('>' if big_endian else '<'))
    rows = np.zeros((height, row + padding), np.uint8)
    rows[:, :row] = np.frombuffer(wire.tobytes(), np.uint8).reshape(height, row)
    msg = Image(height=height, width=width, encoding=encoding, step=row + padding,
                is_bigendian=big_endian)
    msg.data = array.array('B', rows.tobytes())
    back = image_to_numpy(msg)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, image)


@settings(max_examples=60, deadline=None)
@given(encoding=st.sampled_from(_PROPERTY_ENCODINGS), height=st.integers(0, 6),
       width=st.integers(0, 6), step=st.integers(0, 64), size=st.integers(0, 400))
def test_property_malformed_sizes_never_reshape_silently(encoding, height, width, step, size):
    dtype, channels = encoding_format(encoding)
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.data = array.array('B', bytes(size))
    valid = (height > 0 and width > 0 and step >= width * channels * dtype.itemsize
             and size == height * step)
    if valid:
        assert image_to_numpy(msg).shape[:2] == (height, width)
    else:
        with pytest.raises(ImageConversionError):
            image_to_numpy(msg)

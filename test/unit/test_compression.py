"""camera.compression: image_transport's format strings, JPEG/PNG both ways, bad payloads."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from ros_onnx_vision.camera import compression
from ros_onnx_vision.camera.compression import (CompressedDecodeError, decode, decode_bgr,
                                                encode_jpeg, image_size, parse_format,
                                                UnsupportedCompression)


def scene(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth BGR image with distinct channels (JPEG keeps it close; PNG exactly)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return np.dstack([x, y, np.full_like(x, 40)]).astype(np.uint8)


@pytest.mark.parametrize('fmt, codec, order, raw', [
    ('bgr8; jpeg compressed bgr8', 'jpeg', 'BGR', 'bgr8'),
    ('rgb8; jpeg compressed bgr8', 'jpeg', 'BGR', 'rgb8'),  # image_transport's colour JPEG
    ('rgb8; png compressed rgb8', 'png', 'RGB', 'rgb8'),  # pixels stored as RGB
    ('mono8; jpeg compressed mono8', 'jpeg', 'BGR', 'mono8'),
    ('mono16; png compressed mono16', 'png', 'BGR', 'mono16'),
    ('jpeg', 'jpeg', 'BGR', ''),  # older publishers: codec only
    ('PNG', 'png', 'BGR', ''),
    ('', 'jpeg', 'BGR', ''),  # no format at all: the decoder sniffs the bytes
])
def test_format_strings_as_image_transport_writes_them(fmt, codec, order, raw):
    assert parse_format(fmt) == compression.CompressedFormat(raw, codec, order)


@pytest.mark.parametrize('fmt', ['16UC1; compressedDepth png', '32FC1; compressedDepth',
                                 'h264', 'bgr8; theora'])
def test_depth_and_other_codecs_are_refused_by_name(fmt):
    with pytest.raises(UnsupportedCompression, match='compressedDepth|expected JPEG or PNG'):
        parse_format(fmt)


def test_jpeg_round_trip_keeps_size_and_colour_order():
    bgr = scene()
    for encoding, image in (('bgr8', bgr), ('rgb8', bgr[:, :, ::-1].copy())):
        data, fmt = encode_jpeg(image, encoding, 90)
        assert fmt == f'{encoding}; jpeg compressed bgr8'
        decoded, order = decode(data, fmt)
        assert order == 'BGR' and decoded.shape == bgr.shape
        assert np.abs(decoded.astype(int) - bgr).mean() < 3  # BGR, whatever the input was
        assert image_size(data) == (64, 48)
    mono = scene()[:, :, 0].copy()
    data, fmt = encode_jpeg(mono, 'mono8', 90)
    decoded, order = decode(array.array('B', data), fmt)  # as rclpy hands the message's data
    assert fmt == 'mono8; jpeg compressed mono8' and order == 'GRAY' and decoded.shape == (48, 64)


def test_png_in_rgb_order_and_sixteen_bits():
    bgr = scene()
    rgb_png = cv2.imencode('.png', bgr[:, :, ::-1])[1]  # what 'compressed rgb8' means
    image, order = decode(rgb_png, 'rgb8; png compressed rgb8')
    assert order == 'RGB' and np.array_equal(image, bgr[:, :, ::-1])
    assert np.array_equal(decode_bgr(rgb_png, 'rgb8; png compressed rgb8'), bgr)
    deep = np.full((5, 7), 0x1234, np.uint16)
    image, order = decode(cv2.imencode('.png', deep)[1].tobytes(), 'mono16; png compressed mono16')
    assert order == 'GRAY' and image.dtype == np.uint8 and np.all(image == 0x12)
    assert image_size(cv2.imencode('.png', deep)[1].tobytes()) == (7, 5)


def test_undecodable_payloads_raise_a_clear_error():
    with pytest.raises(CompressedDecodeError, match='cannot decode.*36 bytes as jpeg'):
        decode(b'this is not a jpeg, only garbage!!!!', 'bgr8; jpeg compressed bgr8')
    with pytest.raises(CompressedDecodeError, match='empty CompressedImage'):
        decode(b'', 'jpeg')
    truncated = encode_jpeg(scene(), 'bgr8', 90)[0][:40]
    with pytest.raises(CompressedDecodeError):
        decode(truncated, 'jpeg')
    assert image_size(b'garbage') is None


def test_header_size_of_a_huge_declared_image_without_decoding():
    """A tiny PNG can declare a huge image: the size is read before the decoder allocates."""
    png = bytearray(cv2.imencode('.png', np.zeros((2, 2), np.uint8))[1].tobytes())
    png[16:24] = (60000).to_bytes(4, 'big') + (50000).to_bytes(4, 'big')
    assert image_size(bytes(png)) == (60000, 50000)
    jpeg = encode_jpeg(np.zeros((480, 640, 3), np.uint8), 'bgr8', 80)[0]
    assert image_size(jpeg) == (640, 480)
    progressive = cv2.imencode('.jpg', np.zeros((30, 20, 3), np.uint8),
                               [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert image_size(progressive) == (20, 30)

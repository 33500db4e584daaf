"""Image to tensor per the card's input spec, and boxes back to source pixels."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import time

import cv2
import numpy as np
import pytest

from ros_onnx_vision.inference.decoders import RawDetections
from ros_onnx_vision.inference.model_card import InputSpec
from ros_onnx_vision.inference.postprocessing import postprocess
from ros_onnx_vision.inference.preprocessing import preprocess, resize_geometry, ScaleInfo

NANODET = InputSpec(name='images', layout='NCHW', width=416, height=416, dtype='float32',
                    color_order='BGR', mean=(103.53, 116.28, 123.675),
                    std=(57.375, 57.12, 58.395))


def reference(image: np.ndarray, spec: InputSpec, code: int | None) -> np.ndarray:
    """Straightforward float implementation (stretch only) to compare against."""
    if code is not None:
        image = cv2.cvtColor(image, code)
    image = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    x = image.astype(np.float64).reshape(spec.height, spec.width, -1)
    x = (x * spec.scale - np.array(spec.mean)) / np.array(spec.std)
    return x.transpose(2, 0, 1)[None] if spec.layout == 'NCHW' else x[None]


@pytest.mark.parametrize('order,model_order,code', [
    ('BGR', 'BGR', None), ('BGR', 'RGB', cv2.COLOR_BGR2RGB), ('RGB', 'BGR', cv2.COLOR_RGB2BGR),
    ('BGR', 'GRAY', cv2.COLOR_BGR2GRAY), ('BGRA', 'RGB', cv2.COLOR_BGRA2RGB)])
@pytest.mark.parametrize('layout', ['NCHW', 'NHWC'])
def test_float_tensor_matches_reference(order: str, model_order: str, code: int | None,
                                        layout: str) -> None:
    rng = np.random.default_rng(1)
    # Smooth content so that resizing before or after the colour conversion agrees.
    image = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, len(order)), np.uint8), (9, 9), 3)
    channels = 1 if model_order == 'GRAY' else 3
    spec = InputSpec(name='x', layout=layout, width=64, height=48, color_order=model_order,
                     scale=1 / 255, mean=(0.5,) * channels, std=(0.25,) * channels)
    tensor, info = preprocess(image, spec, order)
    expected = reference(image, spec, code)
    assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
    assert tensor.shape == expected.shape
    np.testing.assert_allclose(tensor, expected, atol=0.05)  # rounding of uint8 steps
    assert (info.scale_x, info.scale_y) == (64 / 160, 48 / 120)


def test_uint8_nhwc_and_mono_input() -> None:
    spec = InputSpec(name='image_tensor', layout='NHWC', width=30, height=20, dtype='uint8',
                     color_order='RGB')
    image = np.zeros((40, 60, 3), np.uint8)
    image[..., 0] = 200  # blue in BGR
    tensor, _ = preprocess(image, spec, 'BGR')
    assert tensor.shape == (1, 20, 30, 3) and tensor.dtype == np.uint8
    assert tensor[0, 5, 5].tolist() == [0, 0, 200]
    mono, _ = preprocess(np.full((40, 60), 7, np.uint8), spec)
    assert mono[0, 0, 0].tolist() == [7, 7, 7]


def test_dynamic_input_keeps_image_size() -> None:
    spec = InputSpec(name='x', layout='NHWC', dtype='uint8', color_order='RGB')
    tensor, info = preprocess(np.zeros((37, 53, 3), np.uint8), spec)
    assert tensor.shape == (1, 37, 53, 3) and (info.scale_x, info.scale_y) == (1, 1)


def test_bad_images_are_rejected() -> None:
    with pytest.raises(ValueError, match='uint8'):
        preprocess(np.zeros((10, 10, 3), np.float32), NANODET)
    with pytest.raises(ValueError, match='colour order'):
        preprocess(np.zeros((10, 10, 4), np.uint8), NANODET, 'BGR')


SIZES = [(640, 480), (480, 640), (1280, 360), (300, 300), (333, 777), (1920, 1080)]


@pytest.mark.parametrize('width,height', SIZES)
def test_letterbox_round_trip_is_exact(width: int, height: int) -> None:
    info = resize_geometry(width, height, 416, 320, 'letterbox')
    # The image fills one dimension, and is centred in the other.
    assert info.pad_x == 0 or info.pad_y == 0
    new_w, new_h = round(width * info.scale_x), round(height * info.scale_y)
    assert new_w == 416 or new_h == 320
    assert info.pad_x == (416 - new_w) // 2 and info.pad_y == (320 - new_h) // 2
    rng = np.random.default_rng(width * height)
    xy = rng.uniform(0, 1, (20, 4)) * [width, height, width, height]
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])],
                           axis=1).astype(np.float32)
    scale = np.array([info.scale_x, info.scale_y] * 2, np.float32)
    planted = boxes * scale + np.array([info.pad_x, info.pad_y] * 2, np.float32)  # to input
    np.testing.assert_allclose(info.to_source(planted), boxes, rtol=1e-5, atol=1e-3)
    # Through the shared post-processing, as a decoder would hand them over.
    raw = RawDetections(planted, np.linspace(0.9, 0.5, 20, dtype=np.float32),
                        np.arange(20, dtype=np.int64))
    dets = postprocess(raw, info, score_threshold=0.1, nms_iou=0.5)
    np.testing.assert_allclose([d.box for d in dets], boxes, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize('width,height', SIZES)
def test_letterboxed_pixels_land_where_the_geometry_says(width: int, height: int) -> None:
    spec = InputSpec(name='x', width=416, height=320, color_order='GRAY', resize='letterbox',
                     pad_value=114)
    image = np.full((height, width), 30, np.uint8)
    box = np.array([[width * 0.3, height * 0.2, width * 0.7, height * 0.9]]).round()
    x1, y1, x2, y2 = box[0].astype(int)
    image[y1:y2, x1:x2] = 250
    tensor, info = preprocess(image, spec)
    plane = tensor[0, 0]
    ys, xs = np.nonzero(plane > 140)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    # One input pixel of interpolation blur, mapped back.
    tolerance = 1.0 / min(info.scale_x, info.scale_y) + 1
    np.testing.assert_allclose(info.to_source(found), box, atol=tolerance)
    # The pad holds the pad value, the image area never does (background is 30).
    if info.pad_y:
        assert np.all(plane[:int(info.pad_y)] == 114)
    if info.pad_x:
        assert np.all(plane[:, :int(info.pad_x)] == 114)


def test_to_source_clips_to_the_image() -> None:
    info = ScaleInfo(100, 50, 200, 200, 2.0, 2.0, 0.0, 50.0)
    out = info.to_source(np.array([[-10, 0, 300, 250]]))
    assert out.tolist() == [[0, 0, 100, 50]]


def test_stretch_timing_print() -> None:
    image = cv2.imread(str(Path(__file__).parents[1] / "data" / 'vtest_000.jpg'))
    preprocess(image, NANODET)
    start = time.perf_counter()
    for _ in range(20):
        tensor, _ = preprocess(image, NANODET)
    per_frame = (time.perf_counter() - start) / 20 * 1e3
    letterbox = dataclasses.replace(NANODET, resize='letterbox')
    start = time.perf_counter()
    for _ in range(20):
        preprocess(image, letterbox)
    print(f'\npreprocess 768x576 -> 1x3x416x416 float32: stretch {per_frame:.2f} ms, '
          f'letterbox {(time.perf_counter() - start) / 20 * 1e3:.2f} ms')
    assert tensor.shape == (1, 3, 416, 416)

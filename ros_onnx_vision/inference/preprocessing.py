"""Image to model input tensor, per the card's input spec, and the way back for boxes.

:func:`preprocess` resizes (stretch or letterbox), converts the colour order, normalises
(``(x * scale - mean) / std``), lays out (NCHW / NHWC) and casts in one pass per step; it
returns the tensor and a :class:`ScaleInfo` that maps boxes from model-input pixels back to
source-image pixels with any letterbox undone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ros_onnx_vision.inference.model_card import InputSpec

IMAGE_ORDERS = ('BGR', 'RGB', 'GRAY', 'BGRA', 'RGBA')

# cv2 colour conversion from (image order, model order); missing pairs need no conversion.
_CONVERSIONS = {
    ('BGR', 'RGB'): cv2.COLOR_BGR2RGB, ('RGB', 'BGR'): cv2.COLOR_RGB2BGR,
    ('BGR', 'GRAY'): cv2.COLOR_BGR2GRAY, ('RGB', 'GRAY'): cv2.COLOR_RGB2GRAY,
    ('GRAY', 'BGR'): cv2.COLOR_GRAY2BGR, ('GRAY', 'RGB'): cv2.COLOR_GRAY2RGB,
    ('BGRA', 'BGR'): cv2.COLOR_BGRA2BGR, ('BGRA', 'RGB'): cv2.COLOR_BGRA2RGB,
    ('BGRA', 'GRAY'): cv2.COLOR_BGRA2GRAY, ('RGBA', 'RGB'): cv2.COLOR_RGBA2RGB,
    ('RGBA', 'BGR'): cv2.COLOR_RGBA2BGR, ('RGBA', 'GRAY'): cv2.COLOR_RGBA2GRAY,
}


@dataclass(frozen=True)
class ScaleInfo:
    """Geometry of one resize: input pixel = source pixel * scale + pad."""

    source_width: int
    source_height: int
    input_width: int
    input_height: int
    scale_x: float
    scale_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0

    def to_source(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """Map ``[N, 4]`` x1, y1, x2, y2 boxes from model-input to source pixels (float32).

        With ``clip`` the boxes are clipped to the source image, 0..width and 0..height.
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        out = (boxes - pad) / scale
        if clip:
            np.clip(out[:, 0::2], 0, self.source_width, out=out[:, 0::2])
            np.clip(out[:, 1::2], 0, self.source_height, out=out[:, 1::2])
        return out


def image_order(image: np.ndarray, color_order: str) -> str:
    """The effective channel order of an image: GRAY for one channel, else ``color_order``."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return 'GRAY'
    order = color_order.upper()
    channels = image.shape[2] if image.ndim == 3 else 0
    if order not in IMAGE_ORDERS or channels != len(order):
        raise ValueError(f'image with shape {list(image.shape)} does not fit colour order '
                         f'{color_order!r}; expected one of {IMAGE_ORDERS} with as many '
                         'channels')
    return order


def resize_geometry(width: int, height: int, target_w: int, target_h: int,
                    mode: str) -> ScaleInfo:
    """Geometry of a stretch or letterbox resize from width x height to target_w x target_h."""
    if mode == 'letterbox':
        ratio = min(target_w / width, target_h / height)
        new_w = max(1, min(target_w, round(width * ratio)))
        new_h = max(1, min(target_h, round(height * ratio)))
        # Pixel-exact pads; scales from the rounded size so the mapping matches the pixels.
        return ScaleInfo(width, height, target_w, target_h, new_w / width, new_h / height,
                         float((target_w - new_w) // 2), float((target_h - new_h) // 2))
    return ScaleInfo(width, height, target_w, target_h, target_w / width, target_h / height)


def preprocess(image: np.ndarray, spec: InputSpec,
               color_order: str = 'BGR') -> tuple[np.ndarray, ScaleInfo]:
    """Turn a uint8 image into the model's input tensor, as the card's input spec says.

    ``image`` is HxW (mono) or HxWxC in ``color_order`` (BGR, RGB, BGRA, RGBA). A spec
    without width/height (dynamic model input) keeps the image size. Returns a contiguous
    tensor ``[1, C, H, W]`` or ``[1, H, W, C]`` (a uint8 NHWC one may share memory with
    ``image`` when nothing needed changing) and the :class:`ScaleInfo` for the boxes.
    """
    if image.dtype != np.uint8:
        raise ValueError(f'expected a uint8 image, got {image.dtype}')
    src_order = image_order(image, color_order)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    height, width = image.shape[:2]
    if width == 0 or height == 0:
        raise ValueError(f'empty image {list(image.shape)}')
    target_w = spec.width or width
    target_h = spec.height or height
    info = resize_geometry(width, height, target_w, target_h, spec.resize)
    # Resize first: the colour conversion and normalisation then touch fewer pixels.
    new_w = round(width * info.scale_x)
    new_h = round(height * info.scale_y)
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    code = _CONVERSIONS.get((src_order, spec.color_order))
    if code is not None:
        image = cv2.cvtColor(image, code)
    if (new_w, new_h) != (target_w, target_h):
        canvas = np.full((target_h, target_w) + image.shape[2:], int(spec.pad_value), np.uint8)
        x0, y0 = int(info.pad_x), int(info.pad_y)
        canvas[y0:y0 + new_h, x0:x0 + new_w] = image
        image = canvas
    return _normalise(image, spec), info


def _normalise(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    channels = 1 if image.ndim == 2 else image.shape[2]
    if spec.dtype == 'uint8':  # the card guarantees no normalisation for uint8 inputs
        if spec.layout == 'NHWC':
            return np.ascontiguousarray(image.reshape(1, *image.shape[:2], channels))
        return np.ascontiguousarray(image.reshape(*image.shape[:2], channels)
                                    .transpose(2, 0, 1)[None])
    std = np.broadcast_to(np.asarray(spec.std, np.float64), (channels,))
    mean = np.broadcast_to(np.asarray(spec.mean, np.float64), (channels,))
    gain = spec.scale / std
    offset = -mean / std
    h, w = image.shape[:2]
    if spec.layout == 'NCHW':
        out = np.empty((1, channels, h, w), np.float32)
        for c, plane in enumerate(cv2.split(image) if channels > 1 else [image]):
            # One fused pass per channel: plane * gain + offset, written into the output.
            cv2.addWeighted(plane, float(gain[c]), plane, 0.0, float(offset[c]),
                            dst=out[0, c], dtype=cv2.CV_32F)
        return out
    out = image.astype(np.float32).reshape(1, h, w, channels)
    if np.all(gain == gain[0]) and np.all(offset == offset[0]):
        if gain[0] != 1.0:
            out *= np.float32(gain[0])
        if offset[0] != 0.0:
            out += np.float32(offset[0])
        return out
    # Per channel: one affine pass by OpenCV; numpy's broadcast over a last axis of 3 is slow.
    matrix = np.zeros((channels, channels + 1))
    matrix[np.arange(channels), np.arange(channels)] = gain
    matrix[:, channels] = offset
    return cv2.transform(out[0], matrix).reshape(1, h, w, channels)

"""A digit written on paper, seen by a camera, to an MNIST-like 28x28 input.

MNIST digits are white on black, scaled to fit a 20x20 box keeping their aspect ratio and
placed in a 28x28 field with their centre of mass at the centre. :func:`extract_digit` builds
the same from a region of a camera frame (dark ink on light paper, off centre, any size) and
says "no digit" with a reason, rather than guessing, when the region holds none.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np

from ros_onnx_vision.inference.model_card import DigitSpec
from ros_onnx_vision.inference.preprocessing import image_order

# The analysis runs on the region scaled down to at most this many pixels per side: the
# thresholds and components do not need more, and it bounds the cost per frame.
ANALYSIS_SIZE = 256
MNIST_SIZE = 28
MNIST_BOX = 20


@dataclass(frozen=True)
class DigitExtraction:
    """The result of :func:`extract_digit`.

    ``image``: 28x28 uint8, white digit on black, or None when there is no digit, with
    ``reason`` saying why. ``box`` (the digit) and ``roi_box`` (the searched region) are
    x1, y1, x2, y2 in source pixels.
    """

    image: np.ndarray | None
    box: tuple[int, int, int, int] | None
    roi_box: tuple[int, int, int, int]
    reason: str | None = None


def roi_pixels(width: int, height: int,
               roi: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The region of interest, (x, y, width, height) fractions, as pixels x1, y1, x2, y2."""
    x0 = min(int(round(roi[0] * width)), width - 1)
    y0 = min(int(round(roi[1] * height)), height - 1)
    x1 = min(int(round((roi[0] + roi[2]) * width)), width)
    y1 = min(int(round((roi[1] + roi[3]) * height)), height)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def _odd(value: float) -> int:
    return max(3, int(value) // 2 * 2 + 1)


def _ink_mask(gray: np.ndarray, spec: DigitSpec) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the paper's illumination, then threshold: (mask of ink, flattened image)."""
    # A closing wider than any stroke erases the ink and leaves the paper brightness, shading
    # included; dividing by it makes the paper uniformly white.
    size = _odd(min(gray.shape) / 3)
    paper = cv2.morphologyEx(gray, cv2.MORPH_CLOSE,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    flat = cv2.divide(gray, np.maximum(paper, 1), scale=255)
    if spec.threshold == 'adaptive':
        mask = cv2.adaptiveThreshold(flat, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
                                     cv2.THRESH_BINARY_INV, _odd(min(gray.shape) / 4),
                                     spec.min_contrast / 4)
    else:
        _, mask = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # Ink must also be clearly darker than the paper: this drops texture and sensor noise
    # that Otsu would split in two on a blank page.
    mask[flat > 255 - spec.min_contrast] = 0
    return mask, flat


def _select(mask: np.ndarray, flat: np.ndarray, spec: DigitSpec,
            centres_in: tuple[int, int, int, int] | None = None
            ) -> tuple[np.ndarray | None, str | None]:
    """Pick the digit's connected component(s); a mask of them, or None and a reason.

    ``centres_in`` None: ``mask`` is the region and a mark cut by its border is refused.
    Otherwise ``mask`` is the whole frame and a mark counts when the centre of its box lies in
    that box (the region, x1, y1, x2, y2) and it is cut by at most one side of the frame: a
    digit held close crosses the region and may leave the picture on one side, while a paper
    edge, a shadow or a table corner runs along two.
    """
    height, width = mask.shape
    if centres_in is None:
        ink = float(np.count_nonzero(mask)) / mask.size
        min_h = spec.min_height_fraction * height
    else:
        rx0, ry0, rx1, ry1 = centres_in
        ink = float(np.count_nonzero(mask[ry0:ry1, rx0:rx1])) / max(1, (rx1 - rx0) * (ry1 - ry0))
        min_h = spec.min_height_fraction * (ry1 - ry0)
    if ink > spec.max_ink_fraction and centres_in is None:
        return None, (f'noise or clutter: {ink:.0%} of the region is dark '
                      f'(a digit covers at most {spec.max_ink_fraction:.0%})')
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    cut_sides = ((x <= 0).astype(int) + (y <= 0) + (x + w >= width) + (y + h >= height))
    if centres_in is None:
        inside = cut_sides == 0
    else:
        cx, cy = x + w / 2, y + h / 2
        inside = (cx >= rx0) & (cx < rx1) & (cy >= ry0) & (cy < ry1) & (cut_sides <= 1)
    tall = h >= min_h
    upright = (w <= 2.0 * h) & (area <= 0.85 * w * h)
    plausible = np.nonzero(inside & tall & upright)[0]
    if plausible.size == 0:
        if count == 1:
            return None, 'no dark marks on the paper'
        if np.any(tall & ~inside):
            return None, 'the only large marks touch the border of the region'
        tallest = int(h.max()) if h.size else 0
        return None, (f'no digit-sized mark: the tallest is {tallest} px, a digit needs '
                      f'{math.ceil(min_h)} px ({spec.min_height_fraction:.0%} of the region)')
    main = plausible[np.argmax(area[plausible])]
    # Broken strokes (the bar of a 5, a thin pen line) are separate components close to the
    # main one: grow the digit's box by each piece that is near it, nearest first.
    margin = 0.25 * h[main]
    union = [x[main], y[main], x[main] + w[main], y[main] + h[main]]
    pieces = [main]
    candidates = np.nonzero(inside & (area >= 0.03 * area[main]))[0]
    for _ in range(len(candidates)):
        gap_x = np.maximum(0, np.maximum(union[0] - (x + w), x - union[2]))
        gap_y = np.maximum(0, np.maximum(union[1] - (y + h), y - union[3]))
        gap = np.maximum(gap_x, gap_y)[candidates]
        gap[np.isin(candidates, pieces)] = np.iinfo(gap.dtype).max
        nearest = int(np.argmin(gap))
        if gap[nearest] > margin:
            break
        piece = candidates[nearest]
        pieces.append(piece)
        union = [min(union[0], x[piece]), min(union[1], y[piece]),
                 max(union[2], x[piece] + w[piece]), max(union[3], y[piece] + h[piece])]
    chosen = np.isin(labels, np.asarray(pieces) + 1)
    paper = flat[mask == 0]
    darkness = float(paper.mean()) - float(flat[chosen].mean())
    spread = float(paper.std()) + 1.0
    if darkness < 4 * spread:
        return None, (f'noise: the marks are only {darkness:.0f} levels darker than the '
                      f'paper, which varies by {spread:.0f}')
    return chosen.astype(np.uint8) * 255, None


def _normalise_stroke(mask: np.ndarray, target: float) -> np.ndarray:
    """Thicken thin pen strokes so that, scaled into 20x20, they are about MNIST-thick."""
    area = np.count_nonzero(mask)
    edge = area - np.count_nonzero(cv2.erode(mask, np.ones((3, 3), np.uint8)))
    width = 2.0 * area / max(edge, 1)  # a stroke of length L and width w has ~2L edge pixels
    wanted = target * max(mask.shape) / MNIST_BOX
    grow = int(round(wanted - width))
    if grow >= 1:
        pad = (grow + 1) // 2
        mask = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                          (grow + 1, grow + 1)))
    return mask


def mnist_layout(digit: np.ndarray) -> np.ndarray:
    """Fit a white-on-black crop into 20x20 (aspect kept) and centre its mass in 28x28."""
    h, w = digit.shape
    ratio = MNIST_BOX / max(h, w)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    small = cv2.resize(digit, (new_w, new_h), interpolation=cv2.INTER_AREA)
    moments = cv2.moments(small)
    if moments['m00'] > 0:
        cx, cy = moments['m10'] / moments['m00'], moments['m01'] / moments['m00']
    else:
        cx, cy = new_w / 2, new_h / 2
    left = int(np.clip(round(MNIST_SIZE / 2 - cx), 0, MNIST_SIZE - new_w))
    top = int(np.clip(round(MNIST_SIZE / 2 - cy), 0, MNIST_SIZE - new_h))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)
    out[top:top + new_h, left:left + new_w] = small
    return out


def _gray(image: np.ndarray, order: str) -> np.ndarray:
    if order != 'GRAY':
        code = {'BGR': cv2.COLOR_BGR2GRAY, 'RGB': cv2.COLOR_RGB2GRAY,
                'BGRA': cv2.COLOR_BGRA2GRAY, 'RGBA': cv2.COLOR_RGBA2GRAY}[order]
        return cv2.cvtColor(image, code)
    return image[:, :, 0] if image.ndim == 3 else image


def _analysis_image(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Scaled down to at most ANALYSIS_SIZE per side and denoised, with the scale factor."""
    factor = min(1.0, ANALYSIS_SIZE / max(gray.shape))
    if factor < 1.0:
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * factor)),
                                 max(1, round(gray.shape[0] * factor))),
                          interpolation=cv2.INTER_AREA)
    return gray, factor


# Reasons of the region-only search after which the digit may be one that crosses the region's
# border (held close to the camera): the whole frame is searched for it.
_CROSSING_REASONS = ('the only large marks touch', 'noise or clutter')


def extract_digit(image: np.ndarray, spec: DigitSpec = DigitSpec(),
                  color_order: str = 'BGR') -> DigitExtraction:
    """Find a dark digit on light paper in ``spec.roi`` and make it MNIST-like.

    ``image`` is uint8 HxW or HxWxC in ``color_order``. The region is searched first; when the
    only large marks there are cut by its border, or fill it, the digit is taken to be one that
    crosses the border (a page held close to the camera) and the whole frame is searched for a
    mark centred in the region. Returns a :class:`DigitExtraction` with a 28x28 image, or None
    and a reason (blank, noise, nothing digit-sized, only marks cut by the frame).
    """
    order = image_order(image, color_order)
    height, width = image.shape[:2]
    roi_box = roi_pixels(width, height, spec.roi)
    x0, y0, x1, y1 = roi_box
    gray = _gray(image, order)
    region, factor = _analysis_image(gray[y0:y1, x0:x1])
    if min(region.shape) < 8:
        return DigitExtraction(None, None, roi_box, 'the region is too small to hold a digit')
    region = cv2.GaussianBlur(region, (3, 3), 0)
    # The darkest (denoised) mark against the typical paper: a small digit covers well under
    # 1% of the region, so percentiles would miss it.
    contrast = float(np.median(region)) - float(region.min())
    if contrast < spec.min_contrast:
        return DigitExtraction(None, None, roi_box,
                               f'blank region: the darkest mark is {contrast:.0f} levels below '
                               f'the paper, a digit needs {spec.min_contrast:.0f}')
    mask, flat = _ink_mask(region, spec)
    chosen, reason = _select(mask, flat, spec)
    origin = (x0, y0)
    if chosen is None and reason is not None and reason.startswith(_CROSSING_REASONS):
        frame, factor = _analysis_image(gray)
        frame = cv2.GaussianBlur(frame, (3, 3), 0)
        scaled_roi = tuple(int(round(v * factor)) for v in roi_box)
        mask, flat = _ink_mask(frame, spec)
        crossing, _ = _select(mask, flat, spec, centres_in=scaled_roi)
        if crossing is not None:
            chosen, origin, x1, y1 = crossing, (0, 0), width, height
    if chosen is None:
        return DigitExtraction(None, None, roi_box, reason)
    ys, xs = np.nonzero(chosen)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = _normalise_stroke(chosen[top:bottom, left:right], spec.stroke_width)
    ox, oy = origin
    box = (ox + int(left / factor), oy + int(top / factor),
           ox + min(int(math.ceil(right / factor)), x1 - ox),
           oy + min(int(math.ceil(bottom / factor)), y1 - oy))
    return DigitExtraction(mnist_layout(crop), box, roi_box)

"""Axis-aligned boxes as (x1, y1, x2, y2) pixels, and their IoU: the one copy every stage uses.

NMS, the tracker's association and the accuracy evaluation all compare boxes; they share this
so that a degenerate or empty box means the same thing everywhere (IoU 0, never NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
Boxes = Sequence[Box] | np.ndarray


def iou_matrix(boxes_a: Boxes, boxes_b: Boxes) -> np.ndarray:
    """Pairwise IoU, shape [len(a), len(b)]; degenerate or empty boxes give 0."""
    a = np.asarray(boxes_a, dtype=float).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=float).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0)


def iou(box_a: Box, box_b: Box) -> float:
    """IoU of two boxes (0 when they do not overlap)."""
    return float(iou_matrix([box_a], [box_b])[0, 0])

"""Shared detection post-processing: thresholds, class filter, NMS, source-pixel boxes.

Every detection decoder hands its candidates (model-input pixels) to :func:`postprocess`, so
thresholds, class filtering, class-aware NMS and the letterbox/stretch mapping back to the
source image are written once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ros_onnx_vision.geometry import iou_matrix
from ros_onnx_vision.inference.decoders import RawDetections
from ros_onnx_vision.inference.preprocessing import ScaleInfo
from ros_onnx_vision.results import Detection

# Candidates kept (by score) before NMS, which is quadratic in their number.
MAX_CANDIDATES = 2000


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        class_ids: np.ndarray | None = None, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS; class-aware when ``class_ids`` is given. Returns kept indices, best first.

    Each iteration keeps the best remaining box and drops, in one vectorised step, all boxes
    of its class overlapping it by more than ``iou_threshold``; it loops once per kept box.
    """
    boxes = np.asarray(boxes, np.float32)
    classes = None if class_ids is None else np.asarray(class_ids)
    order = np.argsort(-np.asarray(scores), kind='stable')
    keep = []
    limit = len(order) if max_keep is None else max_keep
    while order.size and len(keep) < limit:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        survives = iou_matrix(boxes[best], boxes[rest])[0] <= iou_threshold
        if classes is not None:
            survives |= classes[rest] != classes[best]
        order = rest[survives]
    return np.asarray(keep, np.int64)


def postprocess(raw: RawDetections, scale: ScaleInfo, *, score_threshold: float,
                nms_iou: float, labels: Sequence[str] = (), class_ids: Sequence[int] = (),
                max_detections: int = 100, apply_nms: bool = True) -> list[Detection]:
    """Candidates in model-input pixels to final detections in source pixels.

    Keeps finite boxes with score >= ``score_threshold`` whose class is in ``class_ids``
    (empty: all), maps them to source pixels clipped to the image, drops empty boxes, runs
    class-aware NMS (unless the model already did, ``apply_nms=False``) and returns at most
    ``max_detections``, best score first.
    """
    boxes = np.asarray(raw.boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(raw.scores, np.float32).reshape(-1)
    classes = np.asarray(raw.class_ids, np.int64).reshape(-1)
    keep = (scores >= score_threshold) & np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
    if len(class_ids):
        keep &= np.isin(classes, np.asarray(class_ids, np.int64))
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    if len(scores) > MAX_CANDIDATES:
        top = np.argpartition(-scores, MAX_CANDIDATES)[:MAX_CANDIDATES]
        boxes, scores, classes = boxes[top], scores[top], classes[top]
    boxes = scale.to_source(boxes, clip=True)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, classes = boxes[valid], scores[valid], classes[valid]
    if apply_nms:
        order = nms(boxes, scores, nms_iou, classes, max_detections)
    else:
        order = np.argsort(-scores, kind='stable')[:max_detections]
    return [Detection(labels[c] if 0 <= c < len(labels) else f'class_{c}', float(s),
                      (float(b[0]), float(b[1]), float(b[2]), float(b[3])), class_index=int(c))
            for b, s, c in zip(boxes[order], scores[order], classes[order])]

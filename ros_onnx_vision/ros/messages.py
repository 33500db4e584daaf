"""vision_msgs <-> the package's plain result types. Imports message types, never rclpy."""

from __future__ import annotations

from typing import Any

from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Classification, Detection2D, Detection2DArray,
                             ObjectHypothesis, ObjectHypothesisWithPose)

from ros_onnx_vision.inference.engine import InferenceResult
from ros_onnx_vision.smoothing.voting import Detection, Track


def _bbox(x1: float, y1: float, x2: float, y2: float) -> BoundingBox2D:
    # float(): a Python int in a float64 field would be serialised wrongly by rclpy.
    bbox = BoundingBox2D(size_x=float(x2 - x1), size_y=float(y2 - y1))
    bbox.center.position.x = float(x1 + x2) / 2.0
    bbox.center.position.y = float(y1 + y2) / 2.0
    return bbox


def _corners(bbox: BoundingBox2D) -> tuple[float, float, float, float]:
    cx, cy = bbox.center.position.x, bbox.center.position.y
    w, h = bbox.size_x, bbox.size_y
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def result_to_msg(header: Header, result: InferenceResult
                  ) -> Detection2DArray | Classification:
    """Detection2DArray (boxes in source pixels) or Classification (top-k), with `header`."""
    if result.task == 'detection':
        msg = Detection2DArray(header=header)
        for det in result.detections:
            hypothesis = ObjectHypothesisWithPose(
                hypothesis=ObjectHypothesis(class_id=det.label, score=float(det.score)))
            msg.detections.append(
                Detection2D(header=header, results=[hypothesis], bbox=_bbox(*det.box)))
        return msg
    return Classification(header=header, results=[
        ObjectHypothesis(class_id=c.label, score=float(c.score))
        for c in result.classifications])


def detections_from_msg(msg: Detection2DArray) -> list[Detection]:
    """Best hypothesis of each Detection2D, with its box as x1, y1, x2, y2."""
    result = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score).hypothesis
        result.append(Detection(best.class_id, float(best.score), _corners(det.bbox)))
    return result


def tracks_to_msg(header: Header, tracks: list[Track]) -> Detection2DArray:
    msg = Detection2DArray(header=header)
    for track in tracks:
        hypothesis = ObjectHypothesisWithPose(
            hypothesis=ObjectHypothesis(class_id=track.class_id, score=float(track.score)))
        msg.detections.append(
            Detection2D(header=header, results=[hypothesis], bbox=_bbox(*track.box), id=track.id))
    return msg


def results_as_dicts(msg: Detection2DArray | Classification) -> list[dict[str, Any]]:
    """JSON-friendly results: detections as {id, label, score, box}, else {label, score}."""
    if isinstance(msg, Detection2DArray):
        out = []
        for det in msg.detections:
            if not det.results:
                continue
            best = max(det.results, key=lambda r: r.hypothesis.score).hypothesis
            out.append({'id': det.id, 'label': best.class_id, 'score': round(best.score, 3),
                        'box': [round(v, 1) for v in _corners(det.bbox)]})
        return out
    return [{'label': r.class_id, 'score': round(r.score, 3)} for r in msg.results]

"""vision_msgs <-> the package's result types (ros_onnx_vision.results).

Imports message types only: neither rclpy nor the engine, so smoothing_node can convert
messages without loading ONNX Runtime or OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence

from std_msgs.msg import Header
from vision_msgs.msg import (BoundingBox2D, Classification, Detection2D, Detection2DArray,
                             ObjectHypothesis, ObjectHypothesisWithPose)

from ros_onnx_vision.geometry import Box
from ros_onnx_vision.results import Detection, Hypothesis, InferenceResult, Result, Task

RESULT_MESSAGES = {Task.DETECTION: Detection2DArray, Task.CLASSIFICATION: Classification}


def _bbox(x1: float, y1: float, x2: float, y2: float) -> BoundingBox2D:
    # float(): a Python int in a float64 field would be serialised wrongly by rclpy.
    bbox = BoundingBox2D(size_x=float(x2 - x1), size_y=float(y2 - y1))
    bbox.center.position.x = float(x1 + x2) / 2.0
    bbox.center.position.y = float(y1 + y2) / 2.0
    return bbox


def _corners(bbox: BoundingBox2D) -> Box:
    cx, cy = bbox.center.position.x, bbox.center.position.y
    w, h = bbox.size_x, bbox.size_y
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def results_to_msg(task: Task, header: Header, results: Sequence[Result]
                   ) -> Detection2DArray | Classification:
    """Detection2DArray (boxes in source pixels, track ids as ``id``) or Classification."""
    if task is Task.DETECTION:
        msg = Detection2DArray(header=header)
        for det in results:
            hypothesis = ObjectHypothesisWithPose(
                hypothesis=ObjectHypothesis(class_id=det.label, score=float(det.score)))
            msg.detections.append(Detection2D(header=header, results=[hypothesis],
                                              bbox=_bbox(*det.box), id=det.track_id))
        return msg
    return Classification(header=header, results=[
        ObjectHypothesis(class_id=r.label, score=float(r.score)) for r in results])


def result_to_msg(header: Header, result: InferenceResult) -> Detection2DArray | Classification:
    """The message of one frame's result, with the source image's ``header``."""
    return results_to_msg(result.task, header, result.results)


def results_from_msg(msg: Detection2DArray | Classification) -> list[Result]:
    """Detections (the best hypothesis of each, ``id`` as track_id) or class hypotheses."""
    if isinstance(msg, Classification):
        return [Hypothesis(r.class_id, float(r.score)) for r in msg.results]
    out: list[Result] = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score).hypothesis
        out.append(Detection(best.class_id, float(best.score), _corners(det.bbox),
                             track_id=det.id))
    return out

"""The package's result types, one shape from the engine to the messages and the drawings.

The engine produces them, the message layer converts them to and from vision_msgs, the
smoothing stage votes on them and the annotation draws them. They depend on nothing but the
standard library, so any stage can import them without pulling in ONNX Runtime, OpenCV or ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from ros_onnx_vision.geometry import Box


class Task(str, Enum):
    """What a model does; it decides the message type and the topic names of its results."""

    DETECTION = 'detection'
    CLASSIFICATION = 'classification'

    def __str__(self) -> str:  # 'detection' in logs, messages and topic names, not 'Task.X'
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def result_topic(self) -> str:
        """inference_node's output topic."""
        return 'detections' if self is Task.DETECTION else 'classification'

    @property
    def smoothed_topic(self) -> str:
        """smoothing_node's output topic."""
        return self.result_topic + '_smoothed'


@dataclass(frozen=True)
class Detection:
    """One box: ``label`` is the class name (vision_msgs ``class_id``), ``box`` source pixels.

    ``class_index`` is the model's numeric class (None when read back from a message);
    ``track_id`` is set on confirmed tracks (vision_msgs ``Detection2D.id``).
    """

    label: str
    score: float
    box: Box
    class_index: int | None = None
    track_id: str = ''

    def to_dict(self) -> dict[str, Any]:
        """The offline command's JSON form: class_id, label, score (4 decimals), box (2)."""
        return {'class_id': self.class_index, 'label': self.label,
                'score': round(self.score, 4), 'box': [round(v, 2) for v in self.box]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Detection:
        """A detection read back from the offline command's or the demo's JSON (the demo
        adds the track ``id``)."""
        x1, y1, x2, y2 = (float(v) for v in data['box'])
        return cls(str(data['label']), float(data['score']), (x1, y1, x2, y2),
                   class_index=data.get('class_id'), track_id=str(data.get('id', '')))


@dataclass(frozen=True)
class Hypothesis:
    """One class hypothesis of a classifier (vision_msgs ``ObjectHypothesis``)."""

    label: str
    score: float
    class_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The offline command's JSON form: class_id, label, score (4 decimals)."""
        return {'class_id': self.class_index, 'label': self.label,
                'score': round(self.score, 4)}


Result = Detection | Hypothesis


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent per engine stage on one frame."""

    pre_ms: float = 0.0
    run_ms: float = 0.0
    post_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Sum of the stages."""
        return self.pre_ms + self.run_ms + self.post_ms


@dataclass(frozen=True)
class InferenceResult:
    """The outcome of one frame.

    Detection: ``detections`` (source pixels, best first). Classification: ``classifications``
    (top-k, best first). Digit cards: when no digit is found, ``classifications`` is empty and
    ``no_digit`` says why; ``digit_box`` / ``roi_box`` are x1, y1, x2, y2 in source pixels.
    ``implausible``: why the decoder cannot have read this frame's outputs right (a card that
    does not fit its model), else None.
    """

    task: Task
    image_size: tuple[int, int]  # width, height of the source image
    timings: StageTimings
    detections: list[Detection] = field(default_factory=list)
    classifications: list[Hypothesis] = field(default_factory=list)
    no_digit: str | None = None
    digit_box: tuple[int, int, int, int] | None = None
    roi_box: tuple[int, int, int, int] | None = None
    implausible: str | None = None

    @property
    def results(self) -> list[Detection] | list[Hypothesis]:
        """The task's results: detections or classifications."""
        return self.detections if self.task is Task.DETECTION else self.classifications

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by the offline command (without file and frame)."""
        if self.task is Task.DETECTION:
            detections: dict[str, Any] = {'detections': [d.to_dict() for d in self.detections]}
            if self.implausible is not None:
                detections['implausible'] = self.implausible
            return detections
        out: dict[str, Any] = {'classification': [c.to_dict() for c in self.classifications]}
        if self.no_digit is not None:
            out['no_digit'] = self.no_digit
        if self.digit_box is not None:
            out['digit_box'] = list(self.digit_box)
        return out

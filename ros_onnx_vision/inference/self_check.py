"""The self-check: a card's model run on a shipped image, here, and compared with its reference.

A model can run wrong on one machine and right on another without any error: an int8
convolution that saturates on a CPU without VNNI, a provider that computes garbage, an export
that the card's decoder misreads. The result is a detector that silently sees nobody. So the
engine is checked where it runs, on its actual provider and CPU: the card's ``reference`` (a
shipped image and what the model gave on it where it was verified) is run and compared, and a
card without one is run on the package's own people image. Configuring inference_node and the
start of ``infer`` call :func:`open_checked_engine` (the two runs also warm the session up).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
from pathlib import Path
import platform
import re
import time
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import yaml

from ros_onnx_vision.geometry import iou_matrix
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card, ModelCard, ReferenceResult
from ros_onnx_vision.resources import model_file
from ros_onnx_vision.results import Detection, InferenceResult, Task

# The package's reference images under models/ (models/reference/README.md): vtest.avi frame
# 200, seven pedestrians near and far, also the image for detection cards without a reference;
# a held-out MNIST digit on paper.
REFERENCE_IMAGES = {Task.DETECTION: 'reference/people.jpg',
                    Task.CLASSIFICATION: 'reference/digit.png'}
PACKAGE_REFERENCE_IMAGE = REFERENCE_IMAGES[Task.DETECTION]
MATCH_IOU = 0.5
# A box counts as sure when it scores this much above the card threshold: boxes nearer to it
# may go either way with another CPU's rounding and are neither required nor counted extra.
SURE_MARGIN = 0.05
MISSES_ALLOWED = 0.2  # of the sure reference boxes
MAX_SCORE_DRIFT = 0.1  # mean |score difference| over the matched boxes
CHECK_RUNS = 2  # the first also warms the session up (its first runs are slower)
# CPU features that decide which int8 and float kernels onnxruntime runs.
_CPU_FLAGS = {'x86_64': ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni'),
              'aarch64': ('asimd', 'asimddp', 'i8mm', 'sve')}


class SelfCheckError(RuntimeError):
    """The model gave a wrong result on its reference image, on this provider and CPU."""


@dataclass(frozen=True)
class SelfCheckReport:
    """The outcome of one card's self-check, in one line each."""

    card: str
    passed: bool
    message: str  # what was found against the reference; the reason when failed
    warning: str | None  # passed, but something a user should know (nobody found)
    elapsed_ms: float


def cpu_summary(cpuinfo: str | None = None, machine: str | None = None) -> str:
    """The CPU model and the extensions that matter to onnxruntime's kernels, in one phrase."""
    machine = machine or platform.machine()
    if cpuinfo is None:
        try:
            cpuinfo = Path('/proc/cpuinfo').read_text(errors='replace')
        except OSError:
            return machine
    model, flags = '', set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(':')
        key = key.strip().lower()
        if key in ('model name', 'cpu model') and not model:
            model = value.strip()
        elif key in ('flags', 'features') and not flags:
            flags = set(value.split())
    wanted = _CPU_FLAGS.get(machine, ())
    have = [f for f in wanted if f in flags]
    lacks = [f for f in wanted if f not in flags]
    text = f'{machine}: {" ".join(have) or "none of " + ", ".join(wanted)}'
    if have and lacks:
        text += f'; no {", ".join(lacks)}'
    return f'{model} ({text})' if model else text


def where_it_runs(engine: InferenceEngine) -> str:
    """The engine's provider, onnxruntime version and CPU, in one phrase."""
    report = engine.provider_report
    return (f'{report.active[0] if report.active else "?"}, onnxruntime '
            f'{report.onnxruntime_version}, {cpu_summary()}')


def _plural(label: str) -> str:
    return 'people' if label == 'person' else f'{label} boxes'


def compare_detections(reference: Sequence[tuple[float, float, float, float, float, int]],
                       found: Sequence[Detection], threshold: float,
                       labels: Sequence[str]) -> tuple[bool, str]:
    """Whether ``found`` agrees with the reference rows; and what was found, in words.

    Sure boxes (score >= threshold + SURE_MARGIN) on either side must have a partner of the
    same class at IoU >= 0.5 on the other side (a fifth of the reference may be missed, one or
    a fifth may be extra), and matched scores may drift by MAX_SCORE_DRIFT on average.
    """
    ref_boxes = np.array([r[:4] for r in reference], np.float32).reshape(-1, 4)
    ref_scores = np.array([r[4] for r in reference], np.float32)
    ref_classes = np.array([r[5] for r in reference], np.int64)
    got_boxes = np.array([d.box for d in found], np.float32).reshape(-1, 4)
    got_scores = np.array([d.score for d in found], np.float32)
    got_classes = np.array([-1 if d.class_index is None else d.class_index for d in found],
                           np.int64)
    iou = (iou_matrix(ref_boxes, got_boxes) if len(ref_boxes) and len(got_boxes)
           else np.zeros((len(ref_boxes), len(got_boxes)), np.float32))
    iou[ref_classes[:, None] != got_classes[None, :]] = 0.0
    ref_partner = np.full(len(ref_boxes), -1)
    got_taken = np.zeros(len(got_boxes), bool)
    for r, g in zip(*np.unravel_index(np.argsort(-iou, axis=None), iou.shape)):
        if iou[r, g] < MATCH_IOU:
            break
        if ref_partner[r] < 0 and not got_taken[g]:
            ref_partner[r], got_taken[g] = g, True
    sure = threshold + SURE_MARGIN
    ref_sure = ref_scores >= sure
    missed = int(np.sum(ref_sure & (ref_partner < 0)))
    extra = int(np.sum((got_scores >= sure) & ~got_taken))
    matched = ref_partner >= 0
    drift = float(np.mean(np.abs(ref_scores[matched] - got_scores[ref_partner[matched]]))) \
        if matched.any() else 0.0
    names = {labels[c] if 0 <= c < len(labels) else f'class_{c}' for c in ref_classes}
    what = _plural(names.pop()) if len(names) == 1 else 'boxes'
    text = (f'found {int(np.sum(ref_sure)) - missed} of the {int(np.sum(ref_sure))} reference '
            f'{what} (IoU >= {MATCH_IOU}, score >= {sure:.2f})')
    if extra:
        text += f', and {extra} box(es) the reference does not have'
    if matched.any():
        text += f'; scores differ by {drift:.3f} on average'
    ok = (missed <= math.floor(MISSES_ALLOWED * int(np.sum(ref_sure)))
          and extra <= max(1, math.floor(MISSES_ALLOWED * len(reference)))
          and drift <= MAX_SCORE_DRIFT)
    return ok, text


def compare_classification(reference: tuple[str, float], result: InferenceResult
                           ) -> tuple[bool, str]:
    """Whether the top class is the reference's, its score within MAX_SCORE_DRIFT."""
    label, score = reference
    if result.no_digit:
        return False, f'expected {label!r} ({score:.3f}), found no result: {result.no_digit}'
    if not result.classifications:
        return False, f'expected {label!r} ({score:.3f}), found nothing above the threshold'
    top = result.classifications[0]
    text = f'top class {top.label!r} ({top.score:.3f}), reference {label!r} ({score:.3f})'
    return top.label == label and abs(top.score - score) <= MAX_SCORE_DRIFT, text


def default_score_floor(card: ModelCard) -> float:
    """The lowest score a new reference records: below the threshold, so that a box near it
    that goes either way on another CPU is still seen."""
    return max(0.05, card.score_threshold - 0.15)


def score_floor(card: ModelCard) -> float:
    """The card's reference score floor, else :func:`default_score_floor`."""
    recorded = card.reference.score_floor if card.reference is not None else 0.0
    return recorded or default_score_floor(card)


def _run_at(engine: InferenceEngine, image: np.ndarray, card: ModelCard,
            floor: float | None = None) -> InferenceResult:
    """``card`` on one BGR image (a detector down to ``floor``, else at its threshold)."""
    if floor is not None and card.task is Task.DETECTION:
        card = dataclasses.replace(card, score_threshold=floor)
    frame = engine.prepare(image, 'BGR', card=card)
    return engine.decode(frame, engine.run(frame))


def run_reference(engine: InferenceEngine, image: np.ndarray) -> InferenceResult:
    """The engine's base card on one BGR image (at the reference's score floor for a
    detector); its ``implausible`` says when the decoder cannot have read the outputs."""
    card = engine.base_card
    return _run_at(engine, image, card, score_floor(card) if card.reference else None)


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SelfCheckError(f'self-check: cannot read the reference image {path}')
    return image


def self_check(engine: InferenceEngine) -> SelfCheckReport:
    """Run the base card's reference (or the package's image) CHECK_RUNS times and compare.

    Never raises for a wrong result: the report says it. The engine's timings are reset.
    """
    card = engine.base_card
    t0 = time.perf_counter()
    reference: ReferenceResult | None = card.reference
    if reference is None and card.task is Task.CLASSIFICATION:
        return SelfCheckReport(card.name, True, 'no reference to check against', (
            f'{card.name}: the card has no reference: its results on this machine are not '
            'checked (add one with python -m tools.models.record_reference)'), 0.0)
    path = reference.image if reference is not None else model_file(PACKAGE_REFERENCE_IMAGE)
    image = _read_image(path)
    passed, text, warning = True, '', None
    for _ in range(CHECK_RUNS):
        result = run_reference(engine, image)
        if result.implausible is not None:
            passed, text = False, (f'the decoder {card.decoder.type!r} cannot have read the '
                                   f'outputs right: {result.implausible}')
        elif reference is None:
            text = f'{len(result.detections)} detection(s), no reference to compare with'
            if not result.detections:
                warning = (f'{card.name} found nobody on the package reference image {path} '
                           '(seven pedestrians): check its input spec and decoder; the card has '
                           'no reference of its own to check against')
        elif card.task is Task.DETECTION:
            assert reference.detections is not None
            passed, text = compare_detections(reference.detections, result.detections,
                                              card.score_threshold, card.labels)
        else:
            assert reference.classification is not None
            passed, text = compare_classification(reference.classification, result)
        if not passed:
            break
    engine.timings.reset()
    elapsed = (time.perf_counter() - t0) * 1e3
    here = where_it_runs(engine)
    verified = ''
    if reference is not None and reference.verified_on:
        verified = (' (as where it was verified)' if reference.verified_on == here
                    else f' (verified on {reference.verified_on})')
    message = f'{card.name} on {here}: {text} on {path.name}{verified}'
    return SelfCheckReport(card.name, passed, message if passed else
                           f'self-check failed: {message}', warning, elapsed)


def open_checked_engine(card: ModelCard, warn: Callable[[str], None],
                        **engine_kwargs: Any) -> tuple[InferenceEngine, SelfCheckReport]:
    """An engine for ``card`` that passed its self-check, else for the card's fallback.

    ``warn`` receives the warnings (nobody found, a failed check before the fallback).
    Raises :class:`SelfCheckError` with the one-line reason when no card passes.
    """
    engine = InferenceEngine(card, **engine_kwargs)
    report = self_check(engine)
    if report.passed:
        if report.warning:
            warn(report.warning)
        return engine, report
    if card.fallback is None:
        raise SelfCheckError(report.message)
    warn(f'{report.message}; using the fallback card {card.fallback} instead')
    fallback = load_model_card(card.fallback)
    engine = InferenceEngine(fallback, **engine_kwargs)
    second = self_check(engine)
    if not second.passed:
        raise SelfCheckError(f'{report.message}; and its fallback: {second.message}')
    if second.warning:
        warn(second.warning)
    return engine, second


def reference_block(engine: InferenceEngine, image_path: Path, image_value: str,
                    floor: float) -> dict[str, Any]:
    """A card's ``reference`` mapping, from this engine's result on one image (for the tools
    that record references: tools/models/record_reference.py and the optimiser)."""
    card = engine.base_card
    block: dict[str, Any] = {'image': image_value, 'verified_on': where_it_runs(engine)}
    image = _read_image(image_path)
    result = _run_at(engine, image, card, floor)
    if card.task is Task.DETECTION:
        block['score_floor'] = round(floor, 3)
        if result.implausible is not None:
            raise SelfCheckError(f'{card.name}: not a usable reference: {result.implausible}')
        block['detections'] = [[round(v, 1) for v in d.box] + [round(d.score, 4),
                                                               int(d.class_index or 0)]
                               for d in result.detections]
    else:
        if not result.classifications:
            raise SelfCheckError(f'{card.name}: no class above the threshold on {image_path}: '
                                 'not a usable reference image')
        top = result.classifications[0]
        block['classification'] = {'label': top.label, 'score': round(top.score, 4)}
    engine.timings.reset()
    return block


def write_reference(card_path: Path, block: dict[str, Any]) -> None:
    """Write (or replace) a card file's top-level ``reference:`` block, at its end, keeping the
    rest of the card and its comments as they are."""
    text = card_path.read_text(encoding='utf-8')
    kept = re.sub(r'(?ms)^reference:.*?(?=^\S|\Z)', '', text).rstrip('\n')
    dumped = yaml.safe_dump({'reference': block}, sort_keys=False, width=200,
                            default_flow_style=None)
    card_path.write_text(f'{kept}\n{dumped}', encoding='utf-8')

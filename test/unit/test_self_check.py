"""The self-check: every shipped card passes on this machine, and a model that runs wrong here is
caught and named (a card whose input spec makes it blind, a reference it no longer gives)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card, ModelCardError
from ros_onnx_vision.inference.self_check import (compare_detections, cpu_summary,
                                                  open_checked_engine, self_check,
                                                  SelfCheckError)
from ros_onnx_vision.results import Detection

from conftest import REPO

MODELS = REPO / 'models'
SHIPPED = sorted(MODELS.glob('*.yaml'))
CENTERNET = MODELS / 'centernet_mobilenetv3_512.yaml'

X86_NO_VNNI = 'model name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n'
X86_VNNI = 'model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n'
ARM = 'CPU implementer\t: 0x41\nFeatures\t: fp asimd asimddp\n'


def test_cpu_summary_names_the_extensions_that_pick_the_kernels():
    assert cpu_summary(X86_NO_VNNI, 'x86_64') == (
        'AMD EPYC (x86_64: avx2; no avx512f, avx512_vnni, avx_vnni)')
    assert cpu_summary(X86_VNNI, 'x86_64') == (
        'Intel Xeon (x86_64: avx2 avx512f avx512_vnni; no avx_vnni)')
    assert cpu_summary(ARM, 'aarch64') == 'aarch64: asimd asimddp; no i8mm, sve'


def person(box: tuple[float, float, float, float], score: float) -> Detection:
    return Detection('person', score, box, class_index=0)


REFERENCE = [(10, 10, 50, 110, 0.8, 0), (100, 20, 130, 90, 0.7, 0),
             (200, 30, 220, 70, 0.47, 0)]  # the last one is near the threshold 0.45


def test_compare_detections_accepts_the_same_people_and_borderline_changes():
    found = [person(r[:4], r[4]) for r in REFERENCE[:2]]  # the borderline box went away
    ok, text = compare_detections(REFERENCE, found, 0.45, ['person'])
    assert ok, text
    assert text.startswith('found 2 of the 2 reference people')
    moved = [person((12, 11, 52, 108), 0.78), person((101, 22, 131, 92), 0.72)]
    assert compare_detections(REFERENCE, moved, 0.45, ['person'])[0]


@pytest.mark.parametrize('found, expected', [
    ([], 'found 0 of the 2 reference people'),
    ([person((10, 10, 50, 110), 0.8)], 'found 1 of the 2 reference people'),
    ([person(r[:4], r[4]) for r in REFERENCE] + [person((300, 0, 340, 60), 0.9),
                                                 person((400, 0, 440, 60), 0.9)],
     '2 box(es) the reference does not have'),
    ([person((10, 10, 50, 110), 0.5), person((100, 20, 130, 90), 0.99)],
     'scores differ by 0.295'),
])
def test_compare_detections_names_what_differs(found, expected):
    ok, text = compare_detections(REFERENCE, found, 0.45, ['person'])
    assert not ok and expected in text, text


@pytest.mark.parametrize('card', SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_card_has_a_reference_and_passes_here(card):
    loaded = load_model_card(card)
    assert loaded.reference is not None, f'{card.name} has no reference'
    report = self_check(InferenceEngine(loaded, intra_op_threads=1))
    assert report.passed and report.warning is None, report.message
    assert cpu_summary() in report.message and 'CPUExecutionProvider' in report.message


def copied_card(tmp_path: Path, source: Path, **changes: Any) -> Path:
    """The card copied to tmp_path with its model and labels paths made absolute (as a user
    does), its reference left as it was; ``section.key`` changes a nested value."""
    data = yaml.safe_load(source.read_text())
    data['file'] = str(source.parent / data['file'])
    data['labels'] = str(source.parent / data['labels'])
    data.pop('sha256', None)
    for key, value in changes.items():
        section, _, sub = key.partition('.')
        if sub:
            data[section][sub] = value
        elif value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_copied_card_keeps_its_reference(tmp_path):
    card = load_model_card(copied_card(tmp_path, CENTERNET))
    assert card.reference is not None and card.reference.image == (
        MODELS / 'reference' / 'people.jpg').resolve()


def test_a_model_that_runs_blind_fails_with_one_line_naming_card_provider_cpu_and_what(
        tmp_path):
    # CenterNet takes raw 0-255 pixels; fed 0-1 it sees nobody, without any error.
    card = copied_card(tmp_path, CENTERNET, **{'input.scale': 1 / 255})
    with pytest.raises(SelfCheckError) as caught:
        open_checked_engine(load_model_card(card), lambda _: None, intra_op_threads=1)
    message = str(caught.value)
    assert '\n' not in message
    assert message.startswith('self-check failed: centernet_mobilenetv3_512 on '
                              'CPUExecutionProvider')
    assert cpu_summary() in message
    assert 'found 0 of the 7 reference people' in message, message


def test_a_failing_card_switches_to_its_fallback_with_a_warning(tmp_path):
    card = copied_card(tmp_path, CENTERNET, **{'input.scale': 1 / 255},
                       fallback=str(MODELS / 'nanodet_m_416.yaml'))
    warnings: list[str] = []
    engine, report = open_checked_engine(load_model_card(card), warnings.append,
                                         intra_op_threads=1)
    assert engine.card.name == 'nanodet_m_416' and report.passed
    assert len(warnings) == 1 and 'self-check failed: centernet' in warnings[0]
    assert 'using the fallback card' in warnings[0]


def test_a_fallback_that_fails_too_is_an_error_naming_both(tmp_path):
    (tmp_path / 'fallback').mkdir()
    broken_fallback = copied_card(tmp_path / 'fallback', MODELS / 'nanodet_m_416.yaml',
                                  **{'input.scale': 1 / 255})
    card = copied_card(tmp_path, CENTERNET, **{'input.scale': 1 / 255},
                       fallback=str(broken_fallback))
    with pytest.raises(SelfCheckError, match='and its fallback: self-check failed: nanodet'):
        open_checked_engine(load_model_card(card), lambda _: None, intra_op_threads=1)


def test_a_detection_card_without_reference_warns_when_it_finds_nobody(tmp_path):
    card = copied_card(tmp_path, MODELS / 'nanodet_m_416.yaml', reference=None,
                       **{'thresholds.score': 0.99})
    warnings: list[str] = []
    _, report = open_checked_engine(load_model_card(card), warnings.append, intra_op_threads=1)
    assert report.passed and 'no reference to compare with' in report.message
    assert len(warnings) == 1 and 'found nobody on the package reference image' in warnings[0]


def test_a_classification_card_whose_model_answers_otherwise_fails(tmp_path):
    card = copied_card(tmp_path, MODELS / 'mnist_digits_cnn.yaml',
                       **{'reference.classification': {'label': '1', 'score': 0.98}})
    with pytest.raises(SelfCheckError, match=r"top class '7' \(0.98\d\), reference '1'"):
        open_checked_engine(load_model_card(card), lambda _: None, intra_op_threads=1)


@pytest.mark.parametrize('change, expected', [
    ({'reference.image': 'no_such.jpg'}, "key 'reference.image' is 'no_such.jpg'"),
    ({'reference.detections': [[1, 2, 3]]}, 'x1, y1, x2, y2, score, class id'),
    ({'fallback': 'missing.yaml'}, "key 'fallback' is 'missing.yaml'"),
])
def test_bad_reference_or_fallback_keys_are_refused_clearly(tmp_path, change, expected):
    with pytest.raises(ModelCardError, match=expected.replace('(', r'\(').replace(')', r'\)')):
        load_model_card(copied_card(tmp_path, CENTERNET, **change))

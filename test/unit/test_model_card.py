"""Model cards: validation errors that name the card, the key, the value and what is expected,
and the check of a card against the real model it describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import (apply_overrides, check_model_against_card,
                                                  file_sha256, load_model_card, ModelCardError)
from ros_onnx_vision.inference.session import create_session, ModelLoadError

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / 'models'
NANODET = MODELS / 'nanodet_m_416.onnx'
COCO = MODELS / 'coco_labels.txt'


def nanodet_card(**changes: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        'name': 'nanodet_m_416', 'task': 'detection', 'file': str(NANODET),
        'input': {'name': 'images', 'layout': 'NCHW', 'width': 416, 'height': 416,
                  'dtype': 'float32', 'color_order': 'BGR', 'scale': 1.0,
                  'mean': [103.53, 116.28, 123.675], 'std': [57.375, 57.12, 58.395],
                  'resize': 'stretch'},
        'decoder': {'type': 'nanodet', 'options': {'strides': [8, 16, 32], 'reg_max': 10}},
        'labels': str(COCO), 'thresholds': {'score': 0.35, 'nms_iou': 0.5},
        'class_filter': ['person'],
    }
    for key, value in changes.items():
        if '.' in key:
            section, sub = key.split('.')
            card[section][sub] = value
        elif value is None:
            card.pop(key)
        else:
            card[key] = value
    return card


def write(tmp_path: Path, card: dict[str, Any], name: str = 'card.yaml') -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(card))
    return path


def check_with_session(card_path: Path) -> None:
    card = load_model_card(card_path)
    session, _ = create_session(card.model_path, ['cpu'])
    check_model_against_card(card, session.get_inputs(), session.get_outputs())


def test_valid_card(tmp_path: Path) -> None:
    card = load_model_card(write(tmp_path, nanodet_card(sha256=file_sha256(NANODET))))
    assert card.task == 'detection' and card.model_path == NANODET
    assert len(card.labels) == 80 and card.class_filter_ids == (0,)
    assert card.input.mean == (103.53, 116.28, 123.675) and card.input.channels == 3
    assert card.decoder.options['reg_max'] == 10 and card.score_threshold == 0.35


def test_relative_paths_are_relative_to_the_card(tmp_path: Path) -> None:
    (tmp_path / 'labels.txt').write_text('a\nb\n\n')
    card = nanodet_card(labels='labels.txt', class_filter=[])
    card['file'] = 'model.onnx'
    (tmp_path / 'model.onnx').write_bytes(NANODET.read_bytes()[:64])
    loaded = load_model_card(write(tmp_path / '', card))
    assert loaded.labels == ('a', 'b') and loaded.model_path == tmp_path / 'model.onnx'


@pytest.mark.parametrize('changes,pattern', [
    ({'task': 'segmentation'}, r"key 'task' is 'segmentation', expected one of detection, "
                               r'classification'),
    ({'input.layout': 'NCWH'}, r"key 'input.layout' is 'NCWH', expected one of NCHW, NHWC"),
    ({'decoder': {'type': 'yolov9'}}, r"'decoder.type' is 'yolov9', expected one of nanodet, "
                                      r'tf_ssd, yolov5, yolov8'),
    ({'input.std': [1, 0, 1]}, r"'input.std' is \[1.0, 0.0, 1.0\], expected non-zero"),
    ({'input.mean': [1, 2]}, r"'input.mean' is \[1, 2\], expected a number or a list of 1 or 3"),
    ({'input.width': -3}, r"'input.width' is -3, expected an integer"),
    ({'input.dtype': 'uint8'}, r"'input.dtype' is 'uint8', expected float32 when scale"),
    ({'thresholds': {'score': 1.5}}, r"'thresholds.score' is 1.5, expected a number in"),
    ({'class_filter': ['pedestrian']}, r"'class_filter' is \['pedestrian'\], expected names "
                                       r"from the labels \(person, bicycle"),
    ({'task': None}, r"missing required key 'task'"),
    ({'colour': 'BGR'}, r"unknown key\(s\) colour"),
    ({'sha256': 'abc'}, r"'sha256' is 'abc', expected a 64-digit hex"),
])
def test_invalid_values_are_named(tmp_path: Path, changes: dict[str, Any],
                                  pattern: str) -> None:
    path = write(tmp_path, nanodet_card(**changes))
    with pytest.raises(ModelCardError, match=pattern) as info:
        load_model_card(path)
    assert str(path) in str(info.value)


def test_missing_card_and_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match='does not exist'):
        load_model_card(tmp_path / 'nope.yaml')
    card = nanodet_card()
    card['file'] = 'gone.onnx'
    with pytest.raises(ModelCardError, match=r"'file' is 'gone.onnx', expected an existing "
                                             r'ONNX file \(no file at .*gone.onnx\)'):
        load_model_card(write(tmp_path, card))


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match=r"'labels' is 'x.txt', expected an existing"):
        load_model_card(write(tmp_path, nanodet_card(labels='x.txt', class_filter=[])))


def test_non_onnx_file(tmp_path: Path) -> None:
    fake = tmp_path / 'model.onnx'
    fake.write_text('<html>404 Not Found</html>')
    card = nanodet_card()
    card['file'] = str(fake)
    with pytest.raises(ModelCardError, match=r'is not ONNX: starts with'):
        load_model_card(write(tmp_path, card))


def test_truncated_onnx(tmp_path: Path) -> None:
    cut = tmp_path / 'cut.onnx'
    cut.write_bytes(NANODET.read_bytes()[:200_000])
    card = nanodet_card()
    card['file'] = str(cut)
    # With the card's hash: caught at load, naming both hashes.
    with pytest.raises(ModelCardError, match=r'sha256 mismatch .* card expects '
                                             f'{file_sha256(NANODET)}, file has '):
        load_model_card(write(tmp_path, dict(card, sha256=file_sha256(NANODET))))
    # Without one: onnxruntime's failure becomes a clear load error.
    loaded = load_model_card(write(tmp_path, card))
    with pytest.raises(ModelLoadError, match=r'cannot load .*cut.onnx.*truncated'):
        InferenceEngine(loaded)


@pytest.mark.parametrize('changes,pattern', [
    ({'input.width': 320}, r"input.width is 320 but the model input 'images' has shape "
                           r'\[1, 3, 416, 416\] \(NCHW\), i.e. width 416'),
    ({'input.layout': 'NHWC'}, r'has shape \[1, 3, 416, 416\]; with layout NHWC that is 416 '
                               r'channels, card expects 3'),
    ({'input.name': 'image'}, r"input.name 'image' not in the model inputs \['images'\]"),
    ({'decoder': {'type': 'nanodet', 'options': {'reg_max': 7}}},
     r'stride 8 .*expected a class output'),
    ({'outputs': [{'name': 'cls_pred_stride8', 'shape': [1, 2704, 81]}]},
     r'card lists outputs \[.cls_pred_stride8.\], the model has \[.cls_pred_stride8., '),
])
def test_card_contradicting_the_model(tmp_path: Path, changes: dict[str, Any],
                                      pattern: str) -> None:
    with pytest.raises(ModelCardError, match=pattern):
        check_with_session(write(tmp_path, nanodet_card(**changes)))


def test_output_shape_and_label_count_mismatch(tmp_path: Path) -> None:
    outputs = [{'name': f'{kind}_pred_stride{s}', 'shape': [1, (416 // s) ** 2, width]}
               for s in (8, 16, 32) for kind, width in (('cls', 80), ('reg', 44))]
    check_with_session(write(tmp_path, nanodet_card(outputs=outputs)))
    outputs[2]['shape'] = [1, 676, 81]
    with pytest.raises(ModelCardError, match=r"output 'cls_pred_stride16' has shape "
                                             r'\[1, 676, 80\], card expects \[1, 676, 81\]'):
        check_with_session(write(tmp_path, nanodet_card(outputs=outputs)))
    labels = tmp_path / 'short.txt'
    labels.write_text('\n'.join(COCO.read_text().splitlines()[:79]) + '\n')
    with pytest.raises(ModelCardError, match=r'short.txt has 79 labels but the model outputs '
                                             r'80 classes'):
        check_with_session(write(tmp_path, nanodet_card(labels=str(labels))))


def test_classification_label_count(tmp_path: Path) -> None:
    card = yaml.safe_load((MODELS / 'mnist_digits_cnn.yaml').read_text())
    card['file'] = str(MODELS / card['file'])
    card['labels'] = [str(i) for i in range(9)]
    with pytest.raises(ModelCardError, match=r'labels has 9 labels but the model outputs 10 '
                                             'classes'):
        check_with_session(write(tmp_path, card))


def test_null_size_is_read_from_the_model(tmp_path: Path) -> None:
    changes = {'input.width': None, 'input.height': None}
    card = load_model_card(write(tmp_path, nanodet_card(**changes)))
    assert card.input.width is None
    session, _ = create_session(card.model_path, ['cpu'])
    resolved = check_model_against_card(card, session.get_inputs(), session.get_outputs())
    assert (resolved.input.width, resolved.input.height) == (416, 416)


def test_overrides(tmp_path: Path) -> None:
    card = load_model_card(write(tmp_path, nanodet_card()))
    changed = apply_overrides(card, score_threshold=0.6, class_filter=['dog', 'person'],
                              nms_iou=0.3, top_k=2)
    assert (changed.score_threshold, changed.nms_iou, changed.top_k) == (0.6, 0.3, 2)
    assert changed.class_filter_ids == (16, 0) and card.score_threshold == 0.35
    assert apply_overrides(card, class_filter=[]).class_filter_ids == ()
    with pytest.raises(ModelCardError, match=r"'override score' is 2.0, expected a number"):
        apply_overrides(card, score_threshold=2.0)
    with pytest.raises(ModelCardError, match=r"'unicorn' is not one"):
        apply_overrides(card, class_filter=['unicorn'])
    with pytest.raises(ModelCardError, match=r"'override digit_roi' .* no region for a "
                                             r'detection card'):
        apply_overrides(card, digit_roi=[0, 0, 1, 1])


def test_digit_section_and_roi_override(tmp_path: Path) -> None:
    labels = tmp_path / 'digits.txt'
    labels.write_text(''.join(f'{i}\n' for i in range(10)))
    card = {'task': 'classification', 'file': str(NANODET), 'labels': str(labels),
            'input': {'color_order': 'GRAY', 'width': 28, 'height': 28, 'scale': 1 / 255},
            'decoder': {'type': 'classification', 'options': {'softmax': True}}, 'top_k': 3,
            'digit_preprocessing': {'roi': [0.25, 0.25, 0.5, 0.5], 'threshold': 'adaptive'}}
    loaded = load_model_card(write(tmp_path, card))
    assert loaded.digit is not None and loaded.digit.roi == (0.25, 0.25, 0.5, 0.5)
    assert loaded.digit.threshold == 'adaptive' and loaded.top_k == 3
    moved = apply_overrides(loaded, digit_roi=[0.0, 0.5, 1.0, 0.5])
    assert moved.digit is not None and moved.digit.roi == (0.0, 0.5, 1.0, 0.5)
    assert moved.digit.threshold == 'adaptive'
    with pytest.raises(ModelCardError, match=r"'override digit_roi' is \[0.5, 0.5, 0.6, 0.5\], "
                                             r'expected \[x, y, width, height\]'):
        apply_overrides(loaded, digit_roi=[0.5, 0.5, 0.6, 0.5])
    card['digit_preprocessing'] = {'roi': [0.5, 0.5, 0.5, 0.5], 'blur': 3}
    with pytest.raises(ModelCardError, match=r'unknown key\(s\) digit_preprocessing.blur'):
        load_model_card(write(tmp_path, card))
    card['digit_preprocessing'] = {}
    card['decoder'] = {'type': 'classification', 'options': {'softmax': 'yes', 'temp': 1}}
    with pytest.raises(ModelCardError, match=r'unknown key\(s\) decoder.options.temp'):
        load_model_card(write(tmp_path, card))


@pytest.mark.parametrize('card_path', sorted(MODELS.glob('*.yaml')), ids=lambda p: p.stem)
def test_shipped_cards_match_their_models(card_path: Path) -> None:
    card = load_model_card(card_path)  # also verifies the sha256
    assert card.sha256 is not None, 'shipped models are pinned by hash'
    check_with_session(card_path)

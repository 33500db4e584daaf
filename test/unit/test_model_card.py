"""Model cards: validation errors that name the card, the key, the value and what is expected,
and the check of a card against the real model it describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
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


# Extra inputs (DETR-style orig_target_sizes). -------------------------------------------------

def two_input_model(path: Path, size_type: int = TensorProto.INT64,
                    size_shape: list[Any] | None = None) -> Path:
    """A model taking images [batch, 3, 32, 32] and orig_target_sizes [batch, 2]; it returns
    the sizes it was fed as float boxes [1, 4] (w, h, w, h) with labels and scores."""
    nodes = [
        helper.make_node('Cast', ['orig_target_sizes'], ['sizes_f'], to=TensorProto.FLOAT),
        helper.make_node('Constant', [], ['repeats'],
                         value=numpy_helper.from_array(np.array([1, 2], np.int64), 'repeats')),
        helper.make_node('Tile', ['sizes_f', 'repeats'], ['boxes']),
        helper.make_node('Constant', [], ['labels'],
                         value=numpy_helper.from_array(np.array([0], np.int64), 'labels')),
        helper.make_node('Constant', [], ['scores'],
                         value=numpy_helper.from_array(np.array([0.9], np.float32), 'scores')),
    ]
    graph = helper.make_graph(
        nodes, 'two_inputs',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, ['batch', 3, 32, 32]),
         helper.make_tensor_value_info('orig_target_sizes', size_type,
                                       size_shape or ['batch', 2])],
        [helper.make_tensor_value_info('labels', TensorProto.INT64, [1]),
         helper.make_tensor_value_info('boxes', TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def detr_card(model: Path, **changes: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        'task': 'detection', 'file': str(model),
        'input': {'name': 'images', 'width': 32, 'height': 32, 'color_order': 'RGB'},
        'decoder': {'type': 'detr'}, 'labels': ['person'],
        'extra_inputs': {'orig_target_sizes': 'input_size'},
    }
    card.update(changes)
    return card


@pytest.mark.parametrize('value,pattern', [
    ('orig_size', r"'extra_inputs.orig_target_sizes' is 'orig_size', expected one of "
                  r'source_size, input_size, \{value: source_size or input_size'),
    ({'value': 'source_size', 'order': 'xy'}, r"'extra_inputs.orig_target_sizes.order' is "
                                              r"'xy', expected one of wh, hw"),
    ({'value': 'input_size', 'size': 2}, r'unknown key\(s\) extra_inputs.orig_target_sizes.size'),
    ([320, 'x'], r"'extra_inputs.orig_target_sizes' is \[320, 'x'\], expected"),
    (7, r"'extra_inputs.orig_target_sizes' is 7, expected"),
])
def test_extra_input_values_are_named(tmp_path: Path, value: Any, pattern: str) -> None:
    model = two_input_model(tmp_path / 'm.onnx')
    path = write(tmp_path, detr_card(model, extra_inputs={'orig_target_sizes': value}))
    with pytest.raises(ModelCardError, match=pattern):
        load_model_card(path)


def test_extra_inputs_are_read_and_resolved_from_the_model(tmp_path: Path) -> None:
    model = two_input_model(tmp_path / 'm.onnx', TensorProto.INT32)
    extra = {'orig_target_sizes': {'value': 'input_size', 'order': 'hw'}}
    card = load_model_card(write(tmp_path, detr_card(model, extra_inputs=extra)))
    (spec,) = card.extra_inputs
    assert (spec.name, spec.value, spec.order, spec.dtype) == ('orig_target_sizes',
                                                               'input_size', 'hw', None)
    assert spec.numbers((640, 480), (32, 16)) == (16, 32)
    # input.name may be left out: the image is the one input the card does not feed otherwise.
    data = detr_card(model, extra_inputs=extra)
    del data['input']['name']
    engine = InferenceEngine(load_model_card(write(tmp_path, data)))
    assert engine.card.input.name == 'images'
    (resolved,) = engine.card.extra_inputs
    assert (resolved.dtype, resolved.shape) == ('int32', (1, 2))
    literal = load_model_card(write(tmp_path, detr_card(
        model, extra_inputs={'orig_target_sizes': [640, 480]})))
    assert literal.extra_inputs[0].numbers((1, 1), (1, 1)) == (640.0, 480.0)


@pytest.mark.parametrize('value,fed', [
    ('source_size', [64, 48]), ({'value': 'source_size', 'order': 'hw'}, [48, 64]),
    ('input_size', [32, 32]), ([7, 9.4], [7, 9])])
def test_the_engine_feeds_extra_inputs(tmp_path: Path, value: Any, fed: list[int]) -> None:
    model = two_input_model(tmp_path / 'm.onnx')
    options = {'boxes_in': 'source'} if 'source_size' in str(value) else {}
    card = detr_card(model, extra_inputs={'orig_target_sizes': value},
                     decoder={'type': 'detr', 'options': options})
    engine = InferenceEngine(load_model_card(write(tmp_path, card)))
    frame = engine.prepare(np.zeros((48, 64, 3), np.uint8))
    assert engine.run(frame).outputs['boxes'].tolist() == [fed * 2]


@pytest.mark.parametrize('changes,pattern', [
    ({'extra_inputs': None}, r"the model also takes input\(s\) \['orig_target_sizes'\] that "
                             r'the card does not feed; declare each under extra_inputs, e.g. '
                             r'"extra_inputs: \{orig_target_sizes: input_size\}"'),
    ({'extra_inputs': {'orig_target_sizes': 'source_size', 'im_shape': 'input_size'}},
     r"extra_inputs names \['im_shape'\], not inputs of the model \(its inputs: \['images', "
     r"'orig_target_sizes'\]\)"),
    ({'extra_inputs': {'orig_target_sizes': [1, 2, 3]}},
     r"extra input 'orig_target_sizes' has shape \[\?, 2\]; the card feeds 3 number\(s\)"),
    ({'extra_inputs': {'orig_target_sizes': 'source_size', 'images': 'input_size'}},
     r"extra_inputs feeds 'images', the image input"),
    ({'extra_inputs': {'orig_target_sizes': 'input_size'},
      'decoder': {'type': 'detr', 'options': {'boxes_in': 'source'}}},
     r'decoder option boxes_in: source, but no extra input feeds source_size'),
    ({'extra_inputs': {'orig_target_sizes': 'source_size'}},
     r"\['orig_target_sizes'\] feed source_size, so the boxes come in source pixels, but "
     r'decoder .detr. reads them as input pixels; set decoder option boxes_in: source'),
])
def test_extra_inputs_contradicting_the_model(tmp_path: Path, changes: dict[str, Any],
                                              pattern: str) -> None:
    model = two_input_model(tmp_path / 'm.onnx')
    card = {k: v for k, v in detr_card(model, **changes).items() if v is not None}
    with pytest.raises(ModelCardError, match=pattern):
        check_with_session(write(tmp_path, card))


def test_extra_input_of_a_type_the_card_cannot_feed(tmp_path: Path) -> None:
    model = two_input_model(tmp_path / 'm.onnx', TensorProto.STRING)
    with pytest.raises(ModelCardError, match=r"'orig_target_sizes' is tensor\(string\); the "
                                             r'card can feed tensor\(double\)'):
        check_with_session(write(tmp_path, detr_card(model)))

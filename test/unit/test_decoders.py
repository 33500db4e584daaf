"""Decoders and shared detection post-processing: synthetic tensors, tiny exported models of
the YOLOv5/YOLOv8 layouts, the shipped NanoDet and SSD models on real images, and fuzzing."""

from __future__ import annotations

import math
from pathlib import Path
import re

import cv2
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import pytest
import yaml

from ros_onnx_vision.inference import decoders
from ros_onnx_vision.inference.decoders import RawDetections
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.postprocessing import nms, postprocess
from ros_onnx_vision.inference.preprocessing import resize_geometry, ScaleInfo

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / 'models'
DATA = ROOT / 'test' / 'data'
IDENTITY = ScaleInfo(416, 416, 416, 416, 1.0, 1.0)


def write_constant_model(path: Path, input_shape: list[int], outputs: dict[str, np.ndarray],
                         input_name: str = 'images') -> None:
    """An ONNX model that takes an image tensor and returns fixed tensors (Constant ops)."""
    nodes = [helper.make_node('Constant', [], [name], value=numpy_helper.from_array(
        value, f'{name}_value')) for name, value in outputs.items()]
    graph = helper.make_graph(
        nodes, 'constant', [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                          input_shape)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape))
         for name, value in outputs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_card(path: Path, model: str, decoder: str, labels: list[str], **extra: object) -> Path:
    """A detection card for a 3x320x320 float input with letterbox resize."""
    card = {
        'name': path.stem, 'task': 'detection', 'file': model,
        'input': {'name': 'images', 'layout': 'NCHW', 'width': 320, 'height': 320,
                  'dtype': 'float32', 'color_order': 'RGB', 'scale': 1 / 255,
                  'resize': 'letterbox'},
        'decoder': {'type': decoder, 'options': {}},
        'labels': labels, 'thresholds': {'score': 0.25, 'nms_iou': 0.45},
        'class_filter': [],
    }
    card.update(extra)
    path.write_text(yaml.safe_dump(card))
    return path


# Boxes in source pixels of a 640x480 frame, and their classes and scores.
PLANTED = np.array([[100, 50, 220, 400], [300, 120, 380, 200], [500.5, 300, 639, 479]],
                   np.float32)
PLANTED_CLASSES = [0, 2, 1]
PLANTED_SCORES = [0.9, 0.8, 0.7]
FRAME_W, FRAME_H = 640, 480


def to_input(info: ScaleInfo, boxes: np.ndarray) -> np.ndarray:
    """Source-pixel boxes in model-input pixels: the inverse of ``info.to_source``."""
    scale = np.array([info.scale_x, info.scale_y] * 2, np.float32)
    return boxes.astype(np.float32) * scale + np.array([info.pad_x, info.pad_y] * 2, np.float32)


def planted_input_cxcywh() -> np.ndarray:
    """The planted boxes as cx, cy, w, h in the 320x320 letterboxed input."""
    info = resize_geometry(FRAME_W, FRAME_H, 320, 320, 'letterbox')
    boxes = to_input(info, PLANTED)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)


def check_planted(engine: InferenceEngine) -> None:
    result = engine.infer(np.zeros((FRAME_H, FRAME_W, 3), np.uint8))
    assert len(result.detections) == 3
    for det, box, cls, score in zip(result.detections, PLANTED, PLANTED_CLASSES,
                                    PLANTED_SCORES):
        assert det.class_index == cls and det.label == ['person', 'bicycle', 'car'][cls]
        assert det.score == pytest.approx(score, abs=1e-6)
        np.testing.assert_allclose(det.box, box, atol=1e-3)


def test_yolov5_layout_model_decodes_to_planted_boxes(tmp_path: Path) -> None:
    anchors = 200
    pred = np.zeros((1, anchors, 5 + 3), np.float32)
    pred[0, :, :4] = [160, 160, 10, 10]
    pred[0, :, 4] = 0.05  # background anchors: low objectness
    rows = [17, 90, 150]
    for row, box, cls, score in zip(rows, planted_input_cxcywh(), PLANTED_CLASSES,
                                    PLANTED_SCORES):
        pred[0, row, :4] = box
        pred[0, row, 4] = 0.95
        pred[0, row, 5 + cls] = score / 0.95
    # A duplicate of the first box, weaker: NMS removes it.
    pred[0, 18] = pred[0, 17]
    pred[0, 18, 5] *= 0.9
    write_constant_model(tmp_path / 'v5.onnx', [1, 3, 320, 320], {'output0': pred})
    card = write_card(tmp_path / 'v5.yaml', 'v5.onnx', 'yolov5', ['person', 'bicycle', 'car'])
    check_planted(InferenceEngine.from_card_file(card))


def test_yolov8_layout_model_decodes_to_planted_boxes(tmp_path: Path) -> None:
    anchors = 2100
    pred = np.zeros((1, 4 + 3, anchors), np.float32)
    pred[0, :4] = np.array([50, 50, 20, 20], np.float32)[:, None]
    pred[0, 4:] = 0.01
    for col, box, cls, score in zip([5, 700, 2099], planted_input_cxcywh(), PLANTED_CLASSES,
                                    PLANTED_SCORES):
        pred[0, :4, col] = box
        pred[0, 4 + cls, col] = score
        pred[0, 4 + (cls + 1) % 3, col] = score / 2  # a weaker second class on the same box
    write_constant_model(tmp_path / 'v8.onnx', [1, 3, 320, 320], {'output0': pred})
    card = write_card(tmp_path / 'v8.yaml', 'v8.onnx', 'yolov8', ['person', 'bicycle', 'car'])
    check_planted(InferenceEngine.from_card_file(card))


def test_boxes_xyxy_layout_model_decodes_to_planted_boxes(tmp_path: Path) -> None:
    """CenterNet-style final detections [1, N, 6]: x1, y1, x2, y2, score, class."""
    cxcywh = planted_input_cxcywh()
    rows = np.zeros((1, 100, 6), np.float32)  # padding rows: score 0
    for row, box, cls, score in zip([0, 1, 2], cxcywh, PLANTED_CLASSES, PLANTED_SCORES):
        rows[0, row, :4] = [box[0] - box[2] / 2, box[1] - box[3] / 2,
                            box[0] + box[2] / 2, box[1] + box[3] / 2]
        rows[0, row, 4:] = score, cls
    write_constant_model(tmp_path / 'cn.onnx', [1, 3, 320, 320], {'detections': rows})
    card = write_card(tmp_path / 'cn.yaml', 'cn.onnx', 'boxes_xyxy', ['person', 'bicycle', 'car'])
    check_planted(InferenceEngine.from_card_file(card))
    normalized = decoders.decode_boxes_xyxy({'d': rows / np.array([320, 320, 320, 320, 1, 1],
                                                                  np.float32)},
                                            (320, 320), {'normalized': True}, 0.5)
    np.testing.assert_allclose(normalized.boxes, rows[0, :3, :4], rtol=1e-5)
    with pytest.raises(decoders.DecoderError, match=r'expected \[1, N, 6\]'):
        decoders.decode_boxes_xyxy({'d': np.zeros((1, 100, 4), np.float32)}, (320, 320), {}, 0.5)


def test_yolov8_transposed_option_and_guess() -> None:
    pred = np.zeros((1, 7, 3), np.float32)  # 3 anchors: fewer than channels
    pred[0, :, 1] = [100, 100, 20, 40, 0.0, 0.9, 0.0]
    size = (320, 320)
    raw = decoders.decode_yolov8({'o': pred}, size, {'transposed': False}, 0.5)
    np.testing.assert_allclose(raw.boxes, [[90, 80, 110, 120]])
    assert raw.class_ids.tolist() == [1]
    # [1, anchors, 4 + C] with more anchors than channels is recognised without the option.
    many = np.zeros((1, 12, 7), np.float32)
    many[0, 1] = pred[0, :, 1]
    guessed = decoders.decode_yolov8({'o': many}, size, {}, 0.5)
    np.testing.assert_allclose(guessed.boxes, [[90, 80, 110, 120]])


def test_yolo_normalized_coordinates() -> None:
    pred = np.array([[[0.5, 0.5, 0.25, 0.5, 1.0, 0.8]]], np.float32)
    raw = decoders.decode_yolov5({'o': pred}, (320, 240), {'normalized': True}, 0.5)
    np.testing.assert_allclose(raw.boxes, [[120, 60, 200, 180]])


def nanodet_outputs(size: int = 416, reg_max: int = 10, classes: int = 80,
                    ) -> dict[str, np.ndarray]:
    outputs = {}
    for s in (8, 16, 32):
        n = math.ceil(size / s) ** 2
        outputs[f'cls{s}'] = np.zeros((1, n, classes), np.float32)
        outputs[f'reg{s}'] = np.zeros((1, n, 4 * (reg_max + 1)), np.float32)
    return outputs


def test_nanodet_planted_cell() -> None:
    outputs = nanodet_outputs()
    grid = 416 // 16
    cell = 5 * grid + 7  # row 5, column 7: centre (7.5 * 16, 5.5 * 16) = (120, 88)
    outputs['cls16'][0, cell, 3] = 0.8
    bins = np.full((4, 11), -20.0, np.float32)
    bins[0, 2] = bins[1, 3] = 20  # left 2 bins, top 3 bins: exactly
    bins[2, 4] = bins[2, 5] = 20  # right: half 4, half 5 -> 4.5 bins
    bins[3, 10] = 20
    outputs['reg16'][0, cell] = bins.reshape(-1)
    raw = decoders.decode_nanodet(outputs, (416, 416), {'reg_max': 10}, 0.35)
    np.testing.assert_allclose(raw.boxes, [[120 - 32, 88 - 48, 120 + 72, 88 + 160]], atol=1e-3)
    assert raw.class_ids.tolist() == [3] and raw.scores.tolist() == pytest.approx([0.8])


def test_nanodet_outputs_found_by_shape_in_any_order_and_combined() -> None:
    outputs = nanodet_outputs(320, reg_max=7, classes=2)
    outputs['cls32'][0, 4, 1] = 0.9
    outputs['reg32'][0, 4] = 1.0  # uniform bins: 3.5 bins * 32 px each side
    shuffled = {f'out{i}': outputs[k] for i, k in enumerate(sorted(outputs, reverse=True))}
    raw = decoders.decode_nanodet(shuffled, (320, 320), {'reg_max': 7}, 0.5)
    centre = (4 + 0.5) * 32, 0.5 * 32
    np.testing.assert_allclose(raw.boxes, [[centre[0] - 112, centre[1] - 112,
                                            centre[0] + 112, centre[1] + 112]])
    levels = [np.concatenate([outputs[f'cls{s}'], outputs[f'reg{s}']], axis=2)
              for s in (8, 16, 32)]
    combined = {'output': np.concatenate(levels, axis=1)}
    again = decoders.decode_nanodet(combined, (320, 320), {'reg_max': 7}, 0.5)
    np.testing.assert_allclose(again.boxes, raw.boxes)
    assert decoders.num_classes('nanodet', {'output': combined['output'].shape},
                                {'reg_max': 7}) == 2


def test_nanodet_wrong_outputs_name_the_expected_shapes() -> None:
    outputs = nanodet_outputs(416)
    del outputs['reg8']
    with pytest.raises(decoders.DecoderError, match=r'stride 8 .*\[1, 2704, 44\]'):
        decoders.decode_nanodet(outputs, (416, 416), {'reg_max': 10}, 0.3)


def test_tf_ssd_by_name_and_by_shape() -> None:
    boxes = np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.3, 0.3]]],
                     np.float32)
    scores = np.array([[0.9, 0.2, 0.8]], np.float32)
    classes = np.array([[1.0, 1.0, 3.0]], np.float32)
    named = {'num_detections:0': np.array([2.0], np.float32), 'detection_boxes:0': boxes,
             'detection_scores:0': scores, 'detection_classes:0': classes}
    raw = decoders.decode_tf_ssd(named, (300, 200), {}, 0.5)
    np.testing.assert_allclose(raw.boxes, [[60, 20, 180, 100]], atol=1e-4)  # num limits to 2
    assert raw.class_ids.tolist() == [0]
    anonymous = {'a': classes, 'b': boxes, 'c': scores}
    raw = decoders.decode_tf_ssd(anonymous, (300, 200), {'label_offset': 0}, 0.5)
    assert raw.class_ids.tolist() == [1, 3] and raw.scores.tolist() == pytest.approx([.9, .8])
    xyxy = decoders.decode_tf_ssd(named, (300, 200), {'box_order': 'xyxy'}, 0.5)
    np.testing.assert_allclose(xyxy.boxes, [[30, 40, 150, 120]], atol=1e-4)


def test_classification_softmax_and_top_k() -> None:
    logits = {'logits': np.array([[1.0, 3.0, -2.0, 2.0]], np.float32)}
    ids, scores = decoders.decode_classification(logits, {}, 2)
    assert ids.tolist() == [1, 3]
    expected = np.exp([3.0, 2.0]) / np.exp([1.0, 3.0, -2.0, 2.0]).sum()
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    probs = {'p': np.array([[0.1, 0.6, 0.3]], np.float32)}
    ids, scores = decoders.decode_classification(probs, {}, 5)
    assert ids.tolist() == [1, 2, 0] and scores.tolist() == pytest.approx([0.6, 0.3, 0.1])
    _, forced = decoders.decode_classification(probs, {'softmax': True}, 1)
    assert forced[0] < 0.6


def test_nms_is_class_aware_and_postprocess_filters() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]],
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, 0.5, classes).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    raw = RawDetections(boxes, scores, classes)
    dets = postprocess(raw, ScaleInfo(100, 100, 100, 100, 1, 1), score_threshold=0.65,
                       nms_iou=0.5, labels=['a', 'b'], class_ids=[1])
    assert [(d.label, d.box) for d in dets] == [('b', (0.0, 0.0, 10.0, 10.0))]


# Fuzzing: random well-formed outputs never crash, and boxes stay inside the image. --------

SOURCE = st.tuples(st.integers(1, 2000), st.integers(1, 2000))
FLOATS = st.floats(-1e4, 1e4, width=32)
CLASS_IDS = st.lists(st.integers(0, 6), max_size=3)  # 5 classes: ids 5, 6 match nothing


def _check_inside(raw: RawDetections, source: tuple[int, int], letterbox: bool,
                  size: tuple[int, int], class_ids: list[int] | None = None) -> None:
    info = resize_geometry(source[0], source[1], size[0], size[1],
                           'letterbox' if letterbox else 'stretch')
    dets = postprocess(raw, info, score_threshold=0.3, nms_iou=0.5, labels=['x'] * 5,
                       class_ids=class_ids or ())
    for det in dets:
        assert not class_ids or det.class_index in class_ids
        x1, y1, x2, y2 = det.box
        assert 0 <= x1 < x2 <= source[0] and 0 <= y1 < y2 <= source[1]
        assert det.score >= 0.3


@settings(max_examples=60, deadline=None)
@given(cls=arrays(np.float32, 84 + 21 + 5, elements=st.floats(0, 1, width=32)),
       reg=arrays(np.float32, 4 * 8, elements=FLOATS), source=SOURCE, letterbox=st.booleans(),
       class_ids=CLASS_IDS)
def test_fuzz_nanodet(cls: np.ndarray, reg: np.ndarray, source: tuple[int, int],
                      letterbox: bool, class_ids: list[int]) -> None:
    # 80x48 input: 10x6 + 5x3 + 3x2 = 81 cells, tiled from the drawn values.
    outputs = {}
    for s in (8, 16, 32):
        n = math.ceil(80 / s) * math.ceil(48 / s)
        outputs[f'c{s}'] = np.resize(cls, (1, n, 5))
        outputs[f'r{s}'] = np.resize(reg, (1, n, 32))
    raw = decoders.decode_nanodet(outputs, (80, 48), {'reg_max': 7}, 0.3, class_ids)
    _check_inside(raw, source, letterbox, (80, 48), class_ids)


@settings(max_examples=60, deadline=None)
@given(pred=arrays(np.float32, (1, 30, 10), elements=FLOATS), source=SOURCE,
       letterbox=st.booleans(), v8=st.booleans(), normalized=st.booleans(),
       multi_label=st.booleans(), class_ids=CLASS_IDS)
def test_fuzz_yolo(pred: np.ndarray, source: tuple[int, int], letterbox: bool, v8: bool,
                   normalized: bool, multi_label: bool, class_ids: list[int]) -> None:
    options = {'normalized': normalized, 'multi_label': multi_label}
    decode = decoders.decode_yolov8 if v8 else decoders.decode_yolov5
    raw = decode({'o': pred}, (64, 96), options, 0.3, class_ids)
    _check_inside(raw, source, letterbox, (64, 96), class_ids)


@settings(max_examples=60, deadline=None)
@given(boxes=arrays(np.float32, (1, 12, 4), elements=FLOATS),
       scores=arrays(np.float32, (1, 12), elements=st.floats(0, 1, width=32)),
       classes=arrays(np.float32, (1, 12), elements=st.integers(0, 6).map(float)),
       num=st.integers(0, 20), source=SOURCE)
def test_fuzz_tf_ssd(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, num: int,
                     source: tuple[int, int]) -> None:
    outputs = {'detection_boxes': boxes, 'detection_scores': scores,
               'detection_classes': classes, 'num_detections': np.array([num], np.float32)}
    raw = decoders.decode_tf_ssd(outputs, source, {}, 0.3)
    _check_inside(raw, source, False, source)


@settings(max_examples=40, deadline=None)
@given(values=arrays(np.float32, (1, 10), elements=FLOATS), top_k=st.integers(1, 20))
def test_fuzz_classification(values: np.ndarray, top_k: int) -> None:
    ids, scores = decoders.decode_classification({'o': values}, {}, top_k)
    assert len(ids) == min(top_k, 10) and np.all(np.diff(scores) <= 0)
    assert np.all((scores >= 0) & (scores <= 1))


# The shipped models on real images. ----------------------------------------------------------

@pytest.fixture(scope='module', params=['nanodet_m_416', 'ssdlite_mobilenet_v2_person'])
def person_engine(request: pytest.FixtureRequest) -> InferenceEngine:
    engine = InferenceEngine.from_card_file(MODELS / f'{request.param}.yaml',
                                            intra_op_threads=2)
    engine.apply_overrides(class_filter=['person'])
    return engine


def people(engine: InferenceEngine, name: str) -> tuple[np.ndarray, list]:
    image = cv2.imread(str(DATA / name))
    assert image is not None, name
    return image, engine.infer(image).detections


VTEST = ['vtest_000.jpg', 'vtest_200.jpg', 'vtest_400.jpg', 'vtest_600.jpg']


@pytest.mark.parametrize('name', VTEST)
def test_real_pedestrians_found_in_source_pixels(person_engine: InferenceEngine,
                                                 name: str) -> None:
    image, dets = people(person_engine, name)
    height, width = image.shape[:2]
    for det in dets:
        x1, y1, x2, y2 = det.box
        assert det.label == 'person' and 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    # At the card's threshold NanoDet also fires on a few traffic cones; the confident boxes
    # are upright people: taller than wide, between 8% and 50% of the frame height.
    confident = [d for d in dets if d.score >= 0.5]
    # SSDLite misses small, distant pedestrians (see notes); NanoDet finds most of them.
    assert len(confident) >= (3 if person_engine.card.decoder.type == 'nanodet' else 1)
    for det in confident:
        x1, y1, x2, y2 = det.box
        assert 0.08 * height < y2 - y1 < 0.5 * height and y2 - y1 > 1.1 * (x2 - x1)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


@pytest.fixture(scope='module')
def both_engines() -> list[InferenceEngine]:
    return [InferenceEngine.from_card_file(MODELS / f'{n}.yaml', intra_op_threads=2)
            for n in ('ssdlite_mobilenet_v2_person', 'nanodet_m_416')]


@pytest.mark.parametrize('name', VTEST + ['person.jpg', 'messi5.jpg'])
def test_real_models_agree_on_confident_people(both_engines: list[InferenceEngine],
                                               name: str) -> None:
    # No ground truth ships with the images: two unrelated models, decoded by different
    # decoders from different input layouts, finding the same person in the same place
    # (IoU > 0.5, the usual match criterion) is the check on the positions.
    image = cv2.imread(str(DATA / name))
    ssd, nanodet = (e.infer(image).detections for e in both_engines)
    sure = [d for d in ssd if d.score >= 0.8]
    assert sure
    for det in sure:
        assert max(iou(det.box, other.box) for other in nanodet) > 0.5


def test_real_person_jpg(person_engine: InferenceEngine) -> None:
    image, dets = people(person_engine, 'person.jpg')
    assert len(dets) == 1
    x1, y1, x2, y2 = dets[0].box
    # darknet's person.jpg (640x424): one woman standing right of centre, most of the height.
    assert 150 < (x1 + x2) / 2 < 320 and y2 - y1 > 0.6 * image.shape[0]
    assert y2 - y1 > 1.5 * (x2 - x1)


@pytest.mark.parametrize('name', ['dog.jpg', 'horses.jpg'])
def test_real_no_people_on_animals(person_engine: InferenceEngine, name: str) -> None:
    _, dets = people(person_engine, name)
    assert dets == []


# YOLOX, DETR-style and NMS-free exports. -----------------------------------------------------

def yolox_head(size: tuple[int, int], classes: int = 3,
               strides: tuple[int, ...] = (8, 16, 32)) -> np.ndarray:
    """An empty raw YOLOX head [1, N, 5 + C] for a w x h input: one row per grid cell."""
    cells = sum(math.ceil(size[0] / s) * math.ceil(size[1] / s) for s in strides)
    return np.zeros((1, cells, 5 + classes), np.float32)


def plant_yolox(head: np.ndarray, size: tuple[int, int], stride: int, cxcywh: np.ndarray,
                objectness: float, scores: np.ndarray, level_start: int) -> int:
    """Write one box as raw head offsets into the cell holding its centre; returns the row."""
    grid_w = math.ceil(size[0] / stride)
    col, row = int(cxcywh[0] // stride), int(cxcywh[1] // stride)
    index = level_start + row * grid_w + col
    head[0, index, :4] = [cxcywh[0] / stride - col, cxcywh[1] / stride - row,
                          math.log(cxcywh[2] / stride), math.log(cxcywh[3] / stride)]
    head[0, index, 4] = objectness
    head[0, index, 5:] = scores
    return index


def test_yolox_raw_head_model_decodes_to_planted_boxes(tmp_path: Path) -> None:
    head = yolox_head((320, 320))
    start16 = 40 * 40  # the stride-16 level follows the 40x40 stride-8 cells
    for box, cls, score in zip(planted_input_cxcywh(), PLANTED_CLASSES, PLANTED_SCORES):
        scores = np.zeros(3, np.float32)
        scores[cls] = score / 0.95
        plant_yolox(head, (320, 320), 16, box, 0.95, scores, start16)
    write_constant_model(tmp_path / 'yolox.onnx', [1, 3, 320, 320], {'output': head})
    card = write_card(tmp_path / 'yolox.yaml', 'yolox.onnx', 'yolox', ['person', 'bicycle', 'car'])
    check_planted(InferenceEngine.from_card_file(card))


def test_yolox_raw_and_decoded_heads() -> None:
    size = (64, 64)  # 8x8 + 4x4 + 2x2 = 84 cells
    head = yolox_head(size)
    row = plant_yolox(head, size, 16, np.array([40, 20, 32, 48], np.float32), 0.9,
                      np.array([0, 0.8, 0], np.float32), 64)
    assert row == 64 + 1 * 4 + 2
    raw = decoders.decode_yolox({'output': head}, size, {}, 0.5)
    np.testing.assert_allclose(raw.boxes, [[24, -4, 56, 44]], atol=1e-4)
    assert raw.class_ids.tolist() == [1] and raw.scores.tolist() == pytest.approx([0.72])
    assert decoders.implausible_output(raw, size, 0.5) is None
    decoded = head.copy()
    decoded[0, row, :4] = [40, 20, 32, 48]
    same = decoders.decode_yolox({'output': decoded}, size, {'decoded': True}, 0.5)
    np.testing.assert_allclose(same.boxes, raw.boxes, atol=1e-4)
    # The wrong way round: pixel sizes through exp, offsets read as pixels.
    wrong = decoders.decode_yolox({'output': decoded}, size, {}, 0.5)
    assert 'far outside' in decoders.implausible_output(wrong, size, 0.5)
    wrong = decoders.decode_yolox({'output': head}, size, {'decoded': True}, 0.5)
    assert 'origin' in decoders.implausible_output(wrong, size, 0.5)
    assert decoders.num_classes('yolox', {'output': head.shape}, {}, size) == 3


def test_yolox_cell_count_and_strides_are_checked() -> None:
    size = (64, 64)
    head = yolox_head(size)[:, :80]
    pattern = r'84 rows \(8x8 \+ 4x4 \+ 2x2 cells\), the output has 80'
    with pytest.raises(decoders.DecoderError, match=pattern):
        decoders.num_classes('yolox', {'output': head.shape}, {}, size)
    with pytest.raises(decoders.DecoderError, match=pattern):
        decoders.decode_yolox({'output': head}, size, {}, 0.5)
    # decoded: any number of rows; other strides: another grid.
    assert decoders.num_classes('yolox', {'output': head.shape}, {'decoded': True}, size) == 3
    four = yolox_head(size, strides=(8, 16, 32, 64))
    assert decoders.num_classes('yolox', {'output': four.shape},
                                {'strides': [8, 16, 32, 64]}, size) == 3


DETR_BOXES = np.array([[10, 20, 50, 100], [0, 0, 5, 5], [100, 50, 300, 310]], np.float32)


def detr_outputs(batch: bool) -> dict[str, np.ndarray]:
    outputs = {'labels': np.array([0, 2, 1], np.int64), 'boxes': DETR_BOXES,
               'scores': np.array([0.9, 0.2, 0.6], np.float32)}
    return {k: v[None] for k, v in outputs.items()} if batch else outputs


@pytest.mark.parametrize('batch', [False, True])
def test_detr_labels_boxes_scores_with_and_without_batch(batch: bool) -> None:
    outputs = detr_outputs(batch)
    raw = decoders.decode_detr(outputs, (320, 320), {}, 0.5)
    np.testing.assert_allclose(raw.boxes, DETR_BOXES[[0, 2]])
    assert raw.class_ids.tolist() == [0, 1] and raw.scores.tolist() == pytest.approx([.9, .6])
    # Found by shape and type when the names say nothing, in any order.
    anonymous = {'a': outputs['scores'], 'b': outputs['boxes'], 'c': outputs['labels']}
    again = decoders.decode_detr(anonymous, (320, 320), {}, 0.5)
    np.testing.assert_allclose(again.boxes, raw.boxes)
    assert again.class_ids.tolist() == [0, 1]
    shapes = {k: v.shape for k, v in outputs.items()}
    assert decoders.num_classes('detr', shapes, {}) is None
    assert decoders.DETECTION_DECODERS['detr'].applies_nms


def test_detr_box_format_normalized_and_label_offset() -> None:
    xyxy = DETR_BOXES[[0]]
    cxcywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1)
    outputs = {'pred_labels': np.array([[1.0]], np.float32),
               'pred_boxes': (cxcywh / np.array([320, 240, 320, 240], np.float32))[None],
               'pred_scores': np.array([[0.8]], np.float32)}
    raw = decoders.decode_detr(outputs, (320, 240),
                               {'box_format': 'cxcywh', 'normalized': True, 'label_offset': 1},
                               0.5)
    np.testing.assert_allclose(raw.boxes, xyxy, atol=1e-4)
    assert raw.class_ids.tolist() == [0]
    with pytest.raises(decoders.DecoderError, match="box_format 'yxyx'"):
        decoders.decode_detr(outputs, (320, 240), {'box_format': 'yxyx'}, 0.5)
    with pytest.raises(decoders.DecoderError, match='expected outputs labels'):
        decoders.decode_detr({'a': np.zeros((3, 4)), 'b': np.zeros(3)}, (320, 240), {}, 0.5)
    with pytest.raises(decoders.DecoderError, match='expected three outputs'):
        decoders.num_classes('detr', {'a': (1, 300, 4), 'b': (1, 300)}, {})


def test_detr_boxes_in_source_pixels() -> None:
    source = (640, 480)
    in_source = DETR_BOXES * np.array([2, 1.5, 2, 1.5], np.float32)  # a 320x320 stretch
    outputs = {**detr_outputs(False), 'boxes': in_source}
    raw = decoders.decode_detr(outputs, (320, 320), {'boxes_in': 'source'}, 0.5,
                               source_size=source)
    np.testing.assert_allclose(raw.boxes, DETR_BOXES[[0, 2]], rtol=1e-6)
    with pytest.raises(decoders.DecoderError, match='needs the source image size'):
        decoders.decode_detr(outputs, (320, 320), {'boxes_in': 'source'}, 0.5)


def write_detr_model(path: Path, normalized: np.ndarray, labels: list[int],
                     scores: list[float]) -> None:
    """A DETR-style model with a second input orig_target_sizes [batch, 2] int64 (w, h): boxes
    = normalised boxes x (w, h, w, h), as the exports' post-processor computes them."""
    const = [helper.make_node('Constant', [], [name], value=numpy_helper.from_array(v, name))
             for name, v in (('norm', normalized[None]), ('repeats', np.array([1, 2], np.int64)),
                             ('axes', np.array([1], np.int64)),
                             ('labels', np.array([labels], np.int64)),
                             ('scores', np.array([scores], np.float32)))]
    nodes = const + [
        helper.make_node('Cast', ['orig_target_sizes'], ['sizes_f'], to=TensorProto.FLOAT),
        helper.make_node('Tile', ['sizes_f', 'repeats'], ['whwh']),
        helper.make_node('Unsqueeze', ['whwh', 'axes'], ['whwh3']),
        helper.make_node('Mul', ['norm', 'whwh3'], ['boxes']),
    ]
    graph = helper.make_graph(
        nodes, 'detr',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, ['batch', 3, 320, 320]),
         helper.make_tensor_value_info('orig_target_sizes', TensorProto.INT64, ['batch', 2])],
        [helper.make_tensor_value_info('labels', TensorProto.INT64, [1, len(labels)]),
         helper.make_tensor_value_info('boxes', TensorProto.FLOAT, [1, len(labels), 4]),
         helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, len(labels)])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.mark.parametrize('size_input,options', [
    ('input_size', {}), ('source_size', {'boxes_in': 'source'})])
def test_detr_model_with_orig_target_sizes(tmp_path: Path, size_input: str,
                                           options: dict[str, str]) -> None:
    normalized = PLANTED / np.array([FRAME_W, FRAME_H, FRAME_W, FRAME_H], np.float32)
    padded = np.concatenate([normalized, np.full((2, 4), 0.5, np.float32)])
    write_detr_model(tmp_path / 'detr.onnx', padded, PLANTED_CLASSES + [0, 0],
                     PLANTED_SCORES + [0.1, 0.0])
    card = write_card(tmp_path / 'detr.yaml', 'detr.onnx', 'detr', ['person', 'bicycle', 'car'],
                      extra_inputs={'orig_target_sizes': size_input})
    data = yaml.safe_load(card.read_text())
    data['input']['resize'] = 'stretch'  # DETR exports scale normalised boxes to any size
    data['decoder']['options'] = options
    card.write_text(yaml.safe_dump(data))
    engine = InferenceEngine.from_card_file(card)
    feed = engine.card.extra_inputs[0]
    assert (feed.dtype, feed.shape) == ('int64', (1, 2))
    check_planted(engine)
    result = engine.infer(np.zeros((FRAME_H, FRAME_W, 3), np.uint8))
    assert result.implausible is None


def test_nms_free_rows_without_batch() -> None:
    """YOLOv10 / ultralytics end2end: [N, 6] or [1, N, 6] x1, y1, x2, y2, score, class."""
    rows = np.array([[10, 20, 50, 100, 0.9, 3], [0, 0, 0, 0, 0.0, 0],
                     [100, 50, 300, 310, 0.7, 0]], np.float32)
    for tensor in (rows, rows[None]):
        raw = decoders.decode_boxes_xyxy({'output0': tensor}, (320, 320), {}, 0.5)
        np.testing.assert_allclose(raw.boxes, rows[[0, 2], :4])
        assert raw.class_ids.tolist() == [3, 0]
        assert decoders.num_classes('boxes_xyxy', {'output0': tensor.shape}, {}) is None


# implausible_output: a decoder that accepted the shape but misread the values. ----------------

def candidates(boxes: list[list[float]], scores: list[float] | None = None,
               class_ids: list[int] | None = None) -> RawDetections:
    n = len(boxes)
    return RawDetections(np.array(boxes, np.float32).reshape(-1, 4),
                         np.array(scores or [0.8] * n, np.float32),
                         np.array(class_ids or [0] * n, np.int64))


PLAUSIBLE = [[10, 20, 50, 100], [300, 200, 330, 260], [-5, 100, 40, 200], [600, 0, 660, 80]]


@pytest.mark.parametrize('raw,pattern', [
    (candidates(PLAUSIBLE[:3] + [[1, 2, np.inf, 9]]), r'1 of 4 candidates have NaN or inf'),
    (candidates(PLAUSIBLE, [0.9, 3.5, 7.0, 0.8]), r'scores range 0\.8 to 7, outside \[0, 1\]'),
    (candidates(PLAUSIBLE, [1.0, 1.0, 1.0, 1.0]), r'all 4 candidate scores are exactly 0 or 1'),
    (candidates(PLAUSIBLE, class_ids=[0, 1, 80, 97]), r'class ids \[80, 97\] are outside 0\.\.79'),
    (candidates([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.9, 0.8]]), r'all 2 .* at the origin'),
    (candidates([[0.1, 3.2, 0.5, 9.6], [10.3, 0.3, 0.9, 0.8], PLAUSIBLE[0]]),
     r'2 of 3 candidate boxes are under 2 px'),
    (candidates([[6400, 2000, 9000, 4000], [100, 100, 1500, 1500], PLAUSIBLE[1]]),
     r'2 of 3 candidate boxes lie far outside the 640x480 input'),
])
def test_implausible_output_fires(raw: RawDetections, pattern: str) -> None:
    message = decoders.implausible_output(raw, (640, 480), 0.5, 80)
    assert message is not None and '\n' not in message
    assert re.search(pattern, message), message


def test_implausible_output_quiet_on_plausible_candidates() -> None:
    assert decoders.implausible_output(candidates(PLAUSIBLE), (640, 480), 0.5, 80) is None
    assert decoders.implausible_output(decoders.empty_detections(), (640, 480), 0.5) is None
    # One odd box among good ones, and odd boxes below the threshold, are no misreading.
    mixed = candidates(PLAUSIBLE + [[0, 0, 1, 1]], [0.8, 0.8, 0.8, 0.8, 0.9])
    assert decoders.implausible_output(mixed, (640, 480), 0.5) is None
    weak = candidates(PLAUSIBLE + [[0, 0, 1, 1]] * 5, [0.8] * 4 + [0.1] * 5)
    assert decoders.implausible_output(weak, (640, 480), 0.5) is None
    # Two real scores of exactly 1 are not saturation; class ids are checked only when known.
    assert decoders.implausible_output(candidates(PLAUSIBLE[:2], [1.0, 1.0], [0, 500]),
                                       (640, 480), 0.5) is None


SHIPPED_DETECTORS = sorted(p.stem for p in MODELS.glob('*.yaml')
                           if yaml.safe_load(p.read_text())['task'] == 'detection')


@pytest.mark.parametrize('card', SHIPPED_DETECTORS)
def test_implausible_output_quiet_on_shipped_models(card: str) -> None:
    engine = InferenceEngine.from_card_file(MODELS / f'{card}.yaml', intra_op_threads=2)
    for image in sorted(DATA.glob('*.jpg')):
        result = engine.infer(cv2.imread(str(image)))
        assert result.implausible is None, (image.name, result.implausible)

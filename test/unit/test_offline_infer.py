"""The offline command: JSON lines per frame for images and videos, annotated output, and
clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import onnxruntime as ort
import pytest
import yaml

from ros_onnx_vision.cli import infer
from ros_onnx_vision.cli.infer import main
from ros_onnx_vision.inference.engine import InferenceEngine

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / 'models'
DATA = ROOT / 'test' / 'data'
NANODET = str(MODELS / 'nanodet_m_416.yaml')


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_images_give_one_json_object_each(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    files = [str(DATA / 'person.jpg'), str(DATA / 'dog.jpg')]
    code, records, err = run(capsys, 'infer', '--model', NANODET, *files, '--threads', '2',
                             '--annotate-dir', str(tmp_path / 'out'))
    assert code == 0
    assert [(r['file'], r['frame']) for r in records] == [(f, 0) for f in files]
    person, dog = records
    assert len(person['detections']) == 1 and dog['detections'] == []
    det = person['detections'][0]
    assert set(det) == {'class_id', 'label', 'score', 'box'}
    assert det['class_id'] == 0 and det['label'] == 'person' and 0.35 < det['score'] <= 1
    x1, y1, x2, y2 = det['box']
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 424  # person.jpg is 640x424
    assert 'active' in err and 'session run' in err
    annotated = cv2.imread(str(tmp_path / 'out' / 'person.png'))
    assert annotated.shape == (424, 640, 3)
    assert not np.array_equal(annotated, cv2.imread(files[0]))


def test_overrides_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    image = str(DATA / 'person.jpg')
    _, records, _ = run(capsys, '--model', NANODET, image, '--class-filter', 'dog,horse')
    labels = {d['label'] for d in records[0]['detections']}
    assert labels and labels <= {'dog', 'horse'}
    _, records, _ = run(capsys, '--model', NANODET, image, '--score-threshold', '0.99')
    assert records[0]['detections'] == []


def test_video_frames(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5, (768, 576))
    for name in ('vtest_000.jpg', 'vtest_200.jpg', 'vtest_400.jpg'):
        writer.write(cv2.imread(str(DATA / name)))
    writer.release()
    code, records, _ = run(capsys, '--model', NANODET, str(video), '--annotate-dir',
                           str(tmp_path), '--max-frames', '2')
    assert code == 0 and [r['frame'] for r in records] == [0, 1]
    assert all(len(r['detections']) >= 3 for r in records)
    capture = cv2.VideoCapture(str(tmp_path / 'clip.avi'))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2


def test_digits_report_no_digit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blank = tmp_path / 'blank.png'
    cv2.imwrite(str(blank), np.full((480, 640, 3), 200, np.uint8))
    digit = tmp_path / 'seven.png'
    frame = np.full((480, 640, 3), 205, np.uint8)
    cv2.line(frame, (270, 170), (370, 170), (30, 30, 30), 14)
    cv2.line(frame, (370, 170), (300, 330), (30, 30, 30), 14)
    cv2.imwrite(str(digit), frame)
    # --digit-roi (like the node's digit_roi parameter) turns on digit extraction whether or
    # not the card has a digit_preprocessing section.
    code, records, _ = run(capsys, '--model', str(MODELS / 'mnist_digits_cnn.yaml'),
                           str(blank), str(digit), '--top-k', '2', '--score-threshold', '0',
                           '--digit-roi', '0.2', '0.1', '0.6', '0.8')
    assert code == 0
    assert records[0]['classification'] == [] and 'blank' in records[0]['no_digit']
    assert 'no_digit' not in records[1] and len(records[1]['classification']) == 2
    best = records[1]['classification'][0]
    assert set(best) == {'class_id', 'label', 'score'}
    assert best['label'] == '7' and best['class_id'] == 7
    x1, y1, x2, y2 = records[1]['digit_box']
    assert abs(x1 - 263) < 12 and abs(y1 - 163) < 12 and abs(x2 - 377) < 12


@pytest.mark.parametrize('argv,message', [
    (['--model', 'missing.yaml', 'x.jpg'], 'model card missing.yaml does not exist'),
    (['--model', NANODET, 'nope.jpg'], 'input file(s) not found: nope.jpg'),
    (['--model', NANODET, __file__], 'cannot read image'),
    (['--model', NANODET, str(DATA / 'dog.jpg'), '--class-filter', 'unicorn'],
     "'unicorn' is not one"),
])
def test_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], argv: list[str],
                                      message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.startswith('error: ')


@pytest.mark.skipif('CUDAExecutionProvider' in ort.get_available_providers(),
                    reason='this onnxruntime has CUDA')
def test_strict_providers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ['--model', NANODET, str(DATA / 'dog.jpg'), '--providers', 'cuda']
    code, records, err = run(capsys, *argv)
    assert code == 0 and len(records) == 1 and 'CUDAExecutionProvider NOT used' in err
    code, _, err = run(capsys, *argv, '--strict-providers')
    assert code == 2 and 'CUDAExecutionProvider NOT used: not in this onnxruntime build' in err


def test_bad_card_and_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    card = tmp_path / 'card.yaml'
    card.write_text('task: detection\nfile: missing.onnx\n')
    code, _, err = run(capsys, '--model', str(card), str(DATA / 'dog.jpg'))
    assert code == 2 and "'file' is 'missing.onnx'" in err
    code, _, err = run(capsys, '--model', NANODET)  # no files
    assert code == 2 and 'usage:' in err


def test_implausible_frames_warn_and_all_implausible_exits_1(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A card whose decoder misreads every frame (here: class ids far beyond the labels) says
    so per frame and exits 1; the start-up self-check, which would catch it first, is skipped."""
    rows = np.array([[[10, 10, 60, 90, 0.9, 500]]], np.float32)
    graph = helper.make_graph(
        [helper.make_node('Constant', [], ['rows'], value=numpy_helper.from_array(rows, 'r'))],
        'constant', [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info('rows', TensorProto.FLOAT, [1, 1, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / 'm.onnx'))
    card = tmp_path / 'card.yaml'
    card.write_text(yaml.safe_dump({
        'task': 'detection', 'file': 'm.onnx', 'input': {'width': 64, 'height': 64},
        'decoder': {'type': 'boxes_xyxy'}, 'labels': ['person']}))

    class Skipped:
        elapsed_ms = 0.0
        message = 'skipped'

    monkeypatch.setattr(infer, 'open_checked_engine',
                        lambda card, warn, **kwargs: (InferenceEngine(card, **kwargs), Skipped()))
    code, records, err = run(capsys, '--model', str(card), str(DATA / 'dog.jpg'),
                             str(DATA / 'person.jpg'))
    assert code == 1
    assert all('class ids [500] are outside 0..0' in r['implausible'] for r in records)
    assert err.count('warning: ') == 2 and 'error: 2 of 2 frame(s)' in err

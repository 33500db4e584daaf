"""The optimiser's graph work: the portable offline-optimised graph and static int8 variants.

Quantisation goes through onnxruntime.quantization (pre-processing, then static calibration on
the card's own model inputs). One graph fix comes first: a constant -inf Pad feeding a MaxPool
is folded into the MaxPool, since a -inf tensor gives calibration an infinite scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import tempfile
from typing import Any, Sequence

import numpy as np

from tools.optimize.frames import OptimizationError
from ros_onnx_vision.inference.model_card import ModelCard


@dataclass(frozen=True)
class QuantSettings:
    """Static quantisation settings (names as in ``onnxruntime.quantization``)."""

    quant_format: str = 'QDQ'          # QDQ or QOperator
    per_channel: bool = False
    reduce_range: bool = False         # 7-bit weights: no VPMADDUBSW saturation, less precision
    activation_type: str = 'QUInt8'
    weight_type: str = 'QInt8'         # QInt8 = U8S8 (fast on AVX2), QUInt8 = U8U8
    calibrate_method: str = 'MinMax'   # MinMax, Percentile, Entropy
    exclude_nodes: tuple[str, ...] = ()   # names of nodes left in float
    float_tail: bool = False  # leave the post-processing after the last Conv/MatMul in float
    float_heads: bool = False  # ... and the last Conv/MatMul of each path (the output layers)
    op_types: tuple[str, ...] = ()  # quantise only these op types (default: all it can)
    # Rescale int8 weights so that no convolution can saturate on CPUs without VNNI
    # (limit_weight_pairs): results then agree on every CPU. Off only to measure the risk.
    limit_pairs: bool = True

    def short(self) -> str:
        """A one-line description for tables."""
        act = 'U8' if self.activation_type == 'QUInt8' else 'S8'
        wt = 'S8' if self.weight_type == 'QInt8' else 'U8'
        granularity = 'per-channel' if self.per_channel else 'per-tensor'
        text = f'{self.quant_format} {act}{wt} {granularity} {self.calibrate_method}'
        if self.reduce_range:
            text += ' reduce-range'
        if self.exclude_nodes:
            text += f' float:{",".join(self.exclude_nodes)}'
        if self.float_tail:
            text += ' float heads and tail' if self.float_heads else ' float tail'
        if self.op_types:
            text += f' only {",".join(self.op_types)}'
        if self.limit_pairs and self.weight_type == 'QInt8' and not self.reduce_range:
            text += ' pair-limited'
        return text


# The default was chosen by measuring all of these (docs/optimization.md).
VARIANTS: dict[str, QuantSettings] = {
    'qdq': QuantSettings(),
    'qdq_pc': QuantSettings(per_channel=True),
    'qdq_rr': QuantSettings(reduce_range=True),
    'qop': QuantSettings(quant_format='QOperator'),
    'qop_pc': QuantSettings(quant_format='QOperator', per_channel=True),
    'qdq_u8u8': QuantSettings(weight_type='QUInt8'),
    'qdq_percentile': QuantSettings(calibrate_method='Percentile'),
    'qdq_entropy': QuantSettings(calibrate_method='Entropy'),
    # Models that decode inside the graph (CenterNet's peak test compares a max-pooled heatmap
    # with itself for equality, which requantised values fail): only the network is int8.
    'qdq_float_tail': QuantSettings(float_tail=True),
    'qdq_pc_float_tail': QuantSettings(per_channel=True, float_tail=True),
    'qdq_pc_conv_tail': QuantSettings(per_channel=True, float_tail=True, op_types=('Conv',)),
    'qdq_pc_float_heads': QuantSettings(per_channel=True, float_tail=True, float_heads=True),
    'qdq_float_heads': QuantSettings(float_tail=True, float_heads=True),
    # As made before the pair limit (saturates on CPUs without VNNI): to measure the risk.
    'qdq_pc_float_heads_unlimited': QuantSettings(per_channel=True, float_tail=True,
                                                  float_heads=True, limit_pairs=False),
    'qdq_pc_rr_float_heads': QuantSettings(per_channel=True, reduce_range=True,
                                           float_tail=True, float_heads=True),
}
DEFAULT_VARIANT = 'qdq'


def check_quantizable(card: ModelCard) -> None:
    """Raise :class:`OptimizationError` for cards this command cannot quantise."""
    if card.input.dtype != 'float32':
        raise OptimizationError(
            f'model card {card.path}: input {card.input.name!r} is {card.input.dtype}; static '
            'int8 quantisation here needs a float32 image input (a model that takes raw uint8 '
            'pixels, such as the SSD with its TF preprocessing and NMS inside the graph, is not '
            'supported)')
    if card.extra_inputs:
        names = ', '.join(extra.name for extra in card.extra_inputs)
        raise OptimizationError(
            f'model card {card.path}: the model takes inputs besides the image ({names}); '
            'calibration, timing and the accuracy checks here feed the image input only, so '
            'such a model (e.g. an RT-DETR / DEIM export with orig_target_sizes) is not '
            'supported: quantise it with onnxruntime.quantization directly')


def save_offline_optimized(model_path: Path, output: Path) -> None:
    """Write onnxruntime's basic-level (portable) optimised graph of a model to ``output``."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    # Basic only: files saved at extended/all are tied to the provider and CPU that wrote
    # them (contrib ops, NCHWc block size); basic rewrites are plain ONNX.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(output)
    ort.InferenceSession(str(model_path), options, providers=['CPUExecutionProvider'])
    if not output.is_file():
        raise OptimizationError(f'onnxruntime did not write the optimised model {output}')


def fold_neg_inf_pad_into_maxpool(model: Any) -> list[str]:
    """Move constant -inf Pads that feed only MaxPools into the MaxPools' ``pads``, in place.

    ONNX MaxPool pads with -inf itself, so the result is exact. The point is calibration: a
    tensor holding -inf gets an infinite quantisation scale. Returns the removed Pad names.
    """
    from onnx import helper, numpy_helper
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    removed = []
    for pad in list(graph.node):
        if pad.op_type != 'Pad' or len(pad.input) < 3:
            continue
        mode = next((a.s for a in pad.attribute if a.name == 'mode'), b'constant')
        if mode != b'constant' or pad.input[1] not in initializers \
                or pad.input[2] not in initializers:
            continue
        value = numpy_helper.to_array(initializers[pad.input[2]])
        if value.size != 1 or not np.isneginf(value).all():
            continue
        pads = [int(p) for p in numpy_helper.to_array(initializers[pad.input[1]]).tolist()]
        rank = len(pads) // 2
        users = consumers.get(pad.output[0], [])
        if (pad.output[0] in graph_outputs or not users or rank < 3 or min(pads) < 0
                or any(pads[i] for i in (0, 1, rank, rank + 1))
                or any(u.op_type != 'MaxPool' or any(
                    (a.name == 'pads' and any(a.ints))
                    or (a.name == 'auto_pad' and a.s not in (b'', b'NOTSET'))
                    for a in u.attribute) for u in users)):
            continue
        spatial = pads[2:rank] + pads[rank + 2:]
        for user in users:
            for attribute in [a for a in user.attribute if a.name in ('pads', 'auto_pad')]:
                user.attribute.remove(attribute)
            user.attribute.append(helper.make_attribute('pads', spatial))
            user.input[0] = pad.input[0]
        graph.node.remove(pad)
        removed.append(pad.name)
    return removed


class _TensorReader:
    """A ``CalibrationDataReader`` over prepared input tensors."""

    def __init__(self, input_name: str, tensors: Sequence[np.ndarray]) -> None:
        self.input_name = input_name
        self._iterator = iter(tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tensor = next(self._iterator, None)
        return None if tensor is None else {self.input_name: tensor}


def quantize_model(model_path: Path, output: Path, input_name: str,
                   tensors: Sequence[np.ndarray], settings: QuantSettings) -> list[str]:
    """Static int8 quantisation of ``model_path`` into ``output``; returns the graph fixes
    applied before calibration (removed Pad nodes)."""
    import onnx
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not tensors:
        raise OptimizationError('no calibration tensors (for a digit card: no digit was found '
                                'in any calibration frame)')

    class Reader(_TensorReader, q.CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix='ros_onnx_vision_quant_') as tmp:
        prepared = Path(tmp) / 'prepared.onnx'
        # Symbolic shape inference needs sympy and only matters for dynamic shapes; onnx shape
        # inference is enough for the fixed-size image models here.
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        fixes = fold_neg_inf_pad_into_maxpool(model)
        onnx.save(model, str(prepared))
        exclude = list(settings.exclude_nodes)
        if settings.float_tail:
            exclude += post_processing_tail(model, heads=settings.float_heads)
        q.quantize_static(
            str(prepared), str(output), Reader(input_name, tensors),
            quant_format=getattr(q.QuantFormat, settings.quant_format),
            per_channel=settings.per_channel, reduce_range=settings.reduce_range,
            activation_type=getattr(q.QuantType, settings.activation_type),
            weight_type=getattr(q.QuantType, settings.weight_type),
            calibrate_method=getattr(q.CalibrationMethod, settings.calibrate_method),
            nodes_to_exclude=exclude or None,
            op_types_to_quantize=list(settings.op_types) or None,
            # Calibration runs on temporary files, not next to the output.
            calibration_providers=['CPUExecutionProvider'])
    if settings.limit_pairs and settings.weight_type == 'QInt8':
        quantized = onnx.load(str(output))
        if limit_weight_pairs(quantized):
            onnx.save(quantized, str(output))
    return fixes


WEIGHTED_OPS = ('Conv', 'ConvTranspose', 'MatMul', 'Gemm')


def post_processing_tail(model: Any, heads: bool = False) -> list[str]:
    """Nodes after the last weighted op on every path: they decode, not learn.

    A node is in the tail when a weighted op (Conv, MatMul, ...) runs before it and none after
    it, i.e. it is not on the way to any weighted op. With ``heads``, those last weighted ops
    (the output layers, whose scores the tail thresholds) are included.
    """
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    feeds_weighted: dict[str, bool] = {}

    def leads_to_weighted(node: Any) -> bool:
        key = node.name or id(node)
        if key not in feeds_weighted:
            feeds_weighted[key] = False  # cycles cannot occur in ONNX; this guards recursion
            feeds_weighted[key] = any(
                nxt.op_type in WEIGHTED_OPS or leads_to_weighted(nxt)
                for out in node.output for nxt in consumers.get(out, ()))
        return feeds_weighted[key]

    after_weighted: set[str] = set()
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if node.op_type in WEIGHTED_OPS:
            after_weighted.update(node.output)
        elif any(name in after_weighted for name in node.input):
            after_weighted.update(node.output)
    return [node.name for node in model.graph.node
            if (node.op_type not in WEIGHTED_OPS or heads)
            and any(o in after_weighted for o in node.output) and not leads_to_weighted(node)]


def quantized_op_counts(model_path: Path) -> dict[str, int]:
    """Number of quantised operators (QLinear*, QuantizeLinear, DequantizeLinear, ...)."""
    import onnx
    counts: dict[str, int] = {}
    for node in onnx.load(str(model_path)).graph.node:
        if node.op_type.startswith(('QLinear', 'Quantize', 'Dequantize', 'DynamicQuantize',
                                    'ConvInteger', 'MatMulInteger')):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


# --- int16 saturation on CPUs without VNNI -----------------------------------------------------
# On x86 without VNNI (AVX2, AVX-512F alone), MLAS's U8S8 GEMM multiplies uint8 activations by
# int8 weights with VPMADDUBSW, which adds each adjacent pair of products into an int16 *with
# saturation*: 255 * (w1 + w2) must stay within 32767, i.e. |w1 + w2| <= 128. Per-channel
# weights reach 127 by construction, so two large same-sign neighbours saturate and the
# convolution silently computes something else (CenterNet int8 found nobody on such a CPU).
# VNNI (VPDPBUSD) sums into int32 and is exact; the depthwise kernel widens to int16 before
# multiplying; U8U8 is widened too. Which weights end up adjacent depends on MLAS's packing, so
# the bound takes the two largest same-sign weights of each output channel: a sufficient
# condition, whatever the packing.
PAIR_LIMIT = 32767 // 255  # 128: the largest |w1 + w2| that cannot saturate


@dataclass(frozen=True)
class SaturationRisk:
    """One quantised convolution's worst int16 pair sum on the VPMADDUBSW path."""

    node: str
    depthwise: bool  # not on the VPMADDUBSW path (MLAS widens depthwise inputs)
    channels: int
    channels_at_risk: int  # output channels whose two largest same-sign weights exceed 128
    worst_pair: int  # the largest same-sign pair |w1 + w2| in any output channel

    @property
    def at_risk(self) -> bool:
        """Whether this convolution can saturate on a CPU without VNNI."""
        return not self.depthwise and self.channels_at_risk > 0


def _worst_pairs(weights: np.ndarray) -> np.ndarray:
    """Per output channel (axis 0), the largest |w1 + w2| of two same-sign weights."""
    flat = weights.reshape(weights.shape[0], -1).astype(np.int32)
    if flat.shape[1] < 2:
        return np.abs(flat[:, 0]) if flat.size else np.zeros(0, np.int32)
    positive = -np.sort(-np.clip(flat, 0, None), axis=1)[:, :2].sum(axis=1)
    negative = -np.sort(-np.clip(-flat, 0, None), axis=1)[:, :2].sum(axis=1)
    return np.maximum(positive, negative)


def _int8_conv_weights(model: Any) -> list[tuple[Any, Any, Any, Any]]:
    """(conv node, weight initializer, its DequantizeLinear or None, group) for every Conv /
    QLinearConv whose weights are an int8 initializer."""
    initializers = {init.name: init for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == 'group'), 1)
        if node.op_type == 'QLinearConv':
            weight = initializers.get(node.input[3])
            dequantize = None
        elif node.op_type == 'Conv':
            dequantize = producers.get(node.input[1])
            if dequantize is None or dequantize.op_type != 'DequantizeLinear':
                continue
            weight = initializers.get(dequantize.input[0])
        else:
            continue
        if weight is not None and weight.data_type == 3:  # TensorProto.INT8
            found.append((node, weight, dequantize, group))
    return found


def saturation_risks(model_path: Path) -> list[SaturationRisk]:
    """Each int8-weight convolution's saturation risk on the VPMADDUBSW path (U8S8 without
    VNNI). uint8 weights (U8U8) are widened before multiplying and are not listed."""
    import onnx
    from onnx import numpy_helper
    risks = []
    for node, weight, _, group in _int8_conv_weights(onnx.load(str(model_path))):
        values = numpy_helper.to_array(weight)
        pairs = _worst_pairs(values)
        risks.append(SaturationRisk(
            node.name, depthwise=group > 1 and values.shape[1] == 1, channels=len(pairs),
            channels_at_risk=int(np.sum(pairs > PAIR_LIMIT)),
            worst_pair=int(pairs.max()) if pairs.size else 0))
    return risks


def limit_weight_pairs(model: Any) -> list[str]:
    """Rescale the int8 weights of every non-depthwise QDQ convolution so that no two
    same-sign weights of an output channel add up to more than 128 (no saturation on any
    CPU), in place; returns the names of the convolutions changed.

    Only the channels at risk lose precision (their scale grows by just enough), unlike
    ``reduce_range``, which halves every weight of every layer. The int32 bias, whose scale is
    the input scale times the weight scale, is rescaled with them.
    """
    from onnx import numpy_helper
    initializers = {init.name: init for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    changed = []
    for node, weight, dequantize, group in _int8_conv_weights(model):
        values = numpy_helper.to_array(weight).astype(np.int32)
        if dequantize is None or (group > 1 and values.shape[1] == 1):
            continue  # QOperator graphs are left alone; depthwise cannot saturate
        factor = np.maximum(_worst_pairs(values) / PAIR_LIMIT, 1.0)
        if not np.any(factor > 1.0):
            continue
        scale_init = initializers[dequantize.input[1]]
        scale = numpy_helper.to_array(scale_init).astype(np.float64)
        if scale.size == 1:  # per-tensor weights: one factor for the whole tensor
            factor = np.full_like(factor, factor.max())
        shape = (-1,) + (1,) * (values.ndim - 1)
        limited = np.clip(np.round(values / factor.reshape(shape)), -127, 127)
        # Rounding may push a pair back over: shrink those channels by one step more.
        while np.any(over := _worst_pairs(limited) > PAIR_LIMIT):
            factor[over] *= 1.02
            limited = np.clip(np.round(values / factor.reshape(shape)), -127, 127)
        new_scale = scale * (factor if scale.size > 1 else factor.max())
        weight.CopyFrom(numpy_helper.from_array(limited.astype(np.int8), weight.name))
        scale_init.CopyFrom(numpy_helper.from_array(
            new_scale.astype(np.float32).reshape(scale.shape), scale_init.name))
        if len(node.input) > 2 and node.input[2] in producers:
            bias_dq = producers[node.input[2]]
            if bias_dq.op_type == 'DequantizeLinear' and bias_dq.input[0] in initializers:
                bias_init = initializers[bias_dq.input[0]]
                bias_scale_init = initializers[bias_dq.input[1]]
                bias_scale = numpy_helper.to_array(bias_scale_init).astype(np.float64)
                bias = numpy_helper.to_array(bias_init).astype(np.float64) * bias_scale
                new_bias_scale = bias_scale * (factor if bias_scale.size > 1 else factor.max())
                bias_init.CopyFrom(numpy_helper.from_array(
                    np.round(bias / new_bias_scale).astype(np.int32), bias_init.name))
                bias_scale_init.CopyFrom(numpy_helper.from_array(
                    new_bias_scale.astype(np.float32).reshape(bias_scale.shape),
                    bias_scale_init.name))
        changed.append(node.name)
    return changed

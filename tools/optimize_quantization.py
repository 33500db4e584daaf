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

from optimize_frames import OptimizationError
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

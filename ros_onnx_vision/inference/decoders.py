"""Decoders: raw ONNX outputs to candidate detections or class scores (pure numpy).

Detection decoders return :class:`RawDetections` with boxes in model-input pixels; score
threshold (again), class filter, NMS and the mapping back to source pixels are shared and live in
``inference.postprocessing``. Every decoder is vectorised: no Python loop runs per anchor.

Decoders are looked up by the card's ``decoder.type`` in :data:`DETECTION_DECODERS` or
:data:`CLASSIFICATION_DECODERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

Shape = Sequence[int | None]


class DecoderError(ValueError):
    """The model outputs do not fit the decoder or its options."""


class RawDetections(NamedTuple):
    """Candidate detections in model-input pixels, before NMS."""

    boxes: np.ndarray  # float32 [N, 4]: x1, y1, x2, y2
    scores: np.ndarray  # float32 [N]
    class_ids: np.ndarray  # int64 [N]


def empty_detections() -> RawDetections:
    """No detections."""
    return RawDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                         np.zeros(0, np.int64))


# (outputs by name in session order, input (width, height), options, score threshold,
# class ids that matter or () for all). Threshold and class ids only let a decoder skip work:
# post-processing applies both again.
DecodeFn = Callable[[Mapping[str, np.ndarray], tuple[int, int], Mapping[str, Any], float,
                     Sequence[int]], RawDetections]


@dataclass(frozen=True)
class DetectionDecoder:
    """A detection decoder and how many classes it reads from the output shapes."""

    decode: DecodeFn
    # (output shapes by name, options, input (width, height) or None) -> classes or None;
    # raises DecoderError when the outputs cannot fit the decoder.
    num_classes: Callable[[Mapping[str, Shape], Mapping[str, Any], tuple[int, int] | None],
                          int | None]
    options: frozenset[str] = frozenset()  # option names the decoder understands
    # True when the model already ran NMS or needs none (TF OD API graphs, DETR, YOLOv10).
    applies_nms: bool = False
    # True when ``decode`` also takes the keyword ``source_size``: the source image (w, h).
    takes_source_size: bool = False


@dataclass(frozen=True)
class ClassificationDecoder:
    """A classification decoder: outputs to (class ids, scores), best first."""

    decode: Callable[[Mapping[str, np.ndarray], Mapping[str, Any], int],
                     tuple[np.ndarray, np.ndarray]]
    num_classes: Callable[[Mapping[str, Shape], Mapping[str, Any], tuple[int, int] | None],
                          int | None]
    options: frozenset[str] = frozenset()


def _squeeze_batch(array: np.ndarray, rank: int, what: str) -> np.ndarray:
    """Drop a leading batch dimension of 1 so the array has ``rank`` dimensions."""
    while array.ndim > rank and array.shape[0] == 1:
        array = array[0]
    if array.ndim != rank:
        raise DecoderError(f'{what}: expected a tensor of rank {rank} (plus batch 1), got '
                           f'shape {list(array.shape)}')
    return array


def _columns(scores: np.ndarray, class_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Only the score columns of ``class_ids`` (all when empty), and their class ids."""
    if len(class_ids) == 0:
        return scores, np.arange(scores.shape[1])
    ids = np.asarray(class_ids, np.int64)
    ids = ids[(ids >= 0) & (ids < scores.shape[1])]
    return scores[:, ids], ids


def _at_least(scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the entries >= ``threshold`` (faster than a 2-D nonzero)."""
    return np.divmod(np.flatnonzero(scores >= threshold), scores.shape[1])


def _tail(shape: Shape, rank: int) -> tuple[int | None, ...]:
    """The last ``rank`` dimensions of a shape (the batch dimension dropped)."""
    return tuple(shape)[-rank:] if len(shape) >= rank else tuple(shape)


# NanoDet (Generalized Focal Loss) ----------------------------------------------------------

def _nanodet_options(options: Mapping[str, Any]) -> tuple[tuple[int, ...], int, float]:
    strides = tuple(int(s) for s in options.get('strides', (8, 16, 32)))
    reg_max = int(options.get('reg_max', 7))
    if not strides or min(strides) <= 0 or reg_max < 1:
        raise DecoderError(f'nanodet options: strides {list(strides)} and reg_max {reg_max} '
                           'must be positive')
    return strides, reg_max, float(options.get('center_offset', 0.5))


def _nanodet_levels(shapes: Sequence[tuple[int, ...]], names: Sequence[str],
                    input_size: tuple[int, int], options: Mapping[str, Any]
                    ) -> list[tuple[int, int, int, int]]:
    """Match outputs to stride levels by shape: per level (stride, cells, class output index,
    box output index); one combined output (class columns, then bins) has the same index twice.
    """
    strides, reg_max, _ = _nanodet_options(options)
    bins = 4 * (reg_max + 1)
    width, height = input_size
    cells = [math.ceil(height / s) * math.ceil(width / s) for s in strides]
    total = sum(cells)
    if len(shapes) == 1 and shapes[0][0] == total and shapes[0][1] > bins:
        return [(s, n, 0, 0) for s, n in zip(strides, cells)]
    cls_by_n: dict[int, int] = {}
    reg_by_n: dict[int, int] = {}
    for index, (n, k) in enumerate(shapes):
        if k == bins:
            if n in reg_by_n and n not in cls_by_n:
                # As many classes as bins: the class output is the one that came first.
                cls_by_n[n] = reg_by_n[n]
            reg_by_n[n] = index
        else:
            cls_by_n.setdefault(n, index)
    if total in cls_by_n and total in reg_by_n:  # levels concatenated
        return [(s, n, cls_by_n[total], reg_by_n[total]) for s, n in zip(strides, cells)]
    levels = []
    for stride, n in zip(strides, cells):
        if n not in cls_by_n or n not in reg_by_n:
            found = ', '.join(f'{name} {list(shape)}' for name, shape in zip(names, shapes))
            raise DecoderError(
                f'nanodet: for stride {stride} on a {width}x{height} input expected a class '
                f'output [1, {n}, classes] and a box output [1, {n}, {bins}] '
                f'(reg_max {reg_max}); outputs are {found}')
        levels.append((stride, n, cls_by_n[n], reg_by_n[n]))
    return levels


def _nanodet_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                         input_size: tuple[int, int] | None) -> int | None:
    _, reg_max, _ = _nanodet_options(options)
    bins = 4 * (reg_max + 1)
    tails = [_tail(s, 2) for s in shapes.values()]
    if input_size is not None and all(len(t) == 2 and None not in t for t in tails):
        concrete = [(int(n or 0), int(k or 0)) for n, k in tails]
        _, _, cls_index, reg_index = _nanodet_levels(concrete, list(shapes), input_size,
                                                     options)[0]
        return concrete[cls_index][1] - (bins if cls_index == reg_index else 0)
    if len(tails) == 1 and tails[0][1] is not None:
        return tails[0][1] - bins
    cls = {t[1] for t in tails if t[1] != bins}
    if not cls:  # every output is bins wide: as many classes as bins
        return bins
    return cls.pop() if len(cls) == 1 else None


def decode_nanodet(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                   options: Mapping[str, Any], score_threshold: float,
                   class_ids: Sequence[int] = ()) -> RawDetections:
    """NanoDet / NanoDet-Plus (GFL) outputs to boxes in input pixels.

    Per stride s, class scores ``[1, n, C]`` (already sigmoid) and box bins
    ``[1, n, 4 * (reg_max + 1)]`` with n = ceil(H/s) * ceil(W/s) cells in row-major order;
    also accepts the levels concatenated, or one ``[1, N, C + bins]`` tensor. Outputs are
    identified by shape, not name. The distance to each side is the expectation of the softmax
    over the bins, times the stride, from the cell centre ``(col + offset) * s``.
    Options: ``strides`` (8, 16, 32), ``reg_max`` (7), ``center_offset`` (0.5).
    """
    names = list(outputs)
    arrays = [_squeeze_batch(np.asarray(outputs[n]), 2, f'nanodet output {n!r}') for n in names]
    levels = _nanodet_levels([a.shape for a in arrays], names, input_size, options)
    _, reg_max, offset = _nanodet_options(options)
    bins = 4 * (reg_max + 1)
    width = input_size[0]
    project = np.arange(reg_max + 1, dtype=np.float32)
    boxes, scores, classes = [], [], []
    start = 0
    for stride, n, cls_index, reg_index in levels:
        cls = arrays[cls_index]
        reg = arrays[reg_index]
        if cls.shape[0] != n:  # levels concatenated in one tensor: take this level's rows
            cls, reg = cls[start:start + n], reg[start:start + n]
        if cls_index == reg_index:  # one combined tensor: class columns, then the bins
            cls, reg = cls[:, :-bins], reg[:, -bins:]
        start += n
        cls, column_class = _columns(cls, class_ids)
        anchor, column = _at_least(cls, score_threshold)
        if anchor.size == 0:
            continue
        # Decode each candidate cell once, even when several classes pass the threshold.
        cells, inverse = np.unique(anchor, return_inverse=True)
        logits = reg[cells].reshape(-1, 4, reg_max + 1).astype(np.float32)
        logits = logits - logits.max(axis=2, keepdims=True)
        prob = np.exp(logits)
        dist = (prob @ project) / prob.sum(axis=2) * stride
        grid_w = math.ceil(width / stride)
        cx = ((cells % grid_w) + offset) * stride
        cy = ((cells // grid_w) + offset) * stride
        cell_boxes = np.stack([cx - dist[:, 0], cy - dist[:, 1],
                               cx + dist[:, 2], cy + dist[:, 3]], axis=1)
        boxes.append(cell_boxes[inverse.reshape(-1)])
        scores.append(cls[anchor, column])
        classes.append(column_class[column])
    if not boxes:
        return empty_detections()
    return RawDetections(np.concatenate(boxes).astype(np.float32),
                         np.concatenate(scores).astype(np.float32),
                         np.concatenate(classes).astype(np.int64))


# TensorFlow Object Detection API SSD ---------------------------------------------------------

def _roles_by_name(names: Sequence[str], roles: Sequence[str]) -> dict[str, str]:
    """Output name per role: the first name that contains it, each name one role at most."""
    found: dict[str, str] = {}
    for name in names:
        lowered = name.lower()
        role = next((r for r in roles if r in lowered and r not in found), None)
        if role is not None:
            found[role] = name
    return found


def _tf_ssd_pick(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Find boxes, scores, classes and num by name, else by shape and content."""
    named = _roles_by_name(list(outputs), ('box', 'score', 'class', 'num'))
    if {'box', 'score', 'class'} <= set(named):
        return {role: np.asarray(outputs[name]) for role, name in named.items()}
    picked = {}
    pairs = []
    for array in map(np.asarray, outputs.values()):
        if array.ndim >= 2 and array.shape[-1] == 4 and 'box' not in picked:
            picked['box'] = array
        elif array.size == 1:
            picked['num'] = array
        else:
            pairs.append(array)
    if 'box' not in picked or len(pairs) != 2:
        raise DecoderError('tf_ssd: expected outputs boxes [1, N, 4], scores [1, N], classes '
                           f'[1, N] and optionally num [1]; got '
                           f'{[list(np.shape(a)) for a in outputs.values()]}')
    # Class ids are whole numbers; when both look whole keep the TF order (scores first).
    whole = [bool(np.all(np.mod(p, 1) == 0)) for p in pairs]
    first_is_classes = whole[0] and not whole[1]
    picked['class'], picked['score'] = pairs if first_is_classes else pairs[::-1]
    return picked


def decode_tf_ssd(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                  options: Mapping[str, Any], score_threshold: float,
                  class_ids: Sequence[int] = ()) -> RawDetections:
    """TensorFlow Object Detection API outputs (NMS already in the graph) to input pixels.

    Outputs ``detection_boxes [1, N, 4]`` as ymin, xmin, ymax, xmax (normalised unless
    ``normalized: false``), ``detection_scores [1, N]``, ``detection_classes [1, N]`` and
    ``num_detections [1]``, found by name or else by shape. ``label_offset`` (or
    ``class_offset``; default 1, TF's background slot) is subtracted from the class ids to
    index the labels. ``box_order``: 'yxyx' (default, TF) or 'xyxy'.
    """
    picked = _tf_ssd_pick(outputs)
    boxes = _squeeze_batch(picked['box'], 2, 'tf_ssd boxes')
    scores = picked['score'].reshape(-1)
    classes = picked['class'].reshape(-1)
    count = min(len(boxes), len(scores), len(classes))
    if 'num' in picked:
        num = float(picked['num'].reshape(-1)[0])
        count = min(count, int(num)) if math.isfinite(num) and num >= 0 else count
    boxes, scores, classes = boxes[:count], scores[:count], classes[:count]
    offset = options.get('label_offset', options.get('class_offset', 1))
    class_ids = np.rint(np.nan_to_num(classes)).astype(np.int64) - int(offset)
    keep = (scores >= score_threshold) & (class_ids >= 0)
    boxes = boxes[keep].astype(np.float32)
    order = options.get('box_order', 'yxyx')
    if order not in ('yxyx', 'xyxy'):
        raise DecoderError(f"tf_ssd option box_order {order!r}: expected 'yxyx' or 'xyxy'")
    if order == 'yxyx':
        boxes = boxes[:, [1, 0, 3, 2]]
    if options.get('normalized', True):
        width, height = input_size
        boxes = boxes * np.array([width, height, width, height], np.float32)
    return RawDetections(boxes, scores[keep].astype(np.float32), class_ids[keep])


# YOLOv5 / YOLOv8 ------------------------------------------------------------------------------

def _cxcywh_to_xyxy(xywh: np.ndarray, input_size: tuple[int, int],
                    normalized: bool) -> np.ndarray:
    xywh = xywh.astype(np.float32)
    if normalized:
        xywh = xywh * np.array([input_size[0], input_size[1]] * 2, np.float32)
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def _best_class(scores: np.ndarray, score_threshold: float, multi_label: bool,
                class_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, class ids and scores of (anchor, class) pairs at or above the threshold.

    Single-label: each anchor's best class over all classes, then the class filter (as
    YOLOv5's NMS does), so an anchor that is mostly 'dog' never becomes a weak 'person'.
    """
    if multi_label:
        scores, column_class = _columns(scores, class_ids)
        rows, column = _at_least(scores, score_threshold)
        return rows, column_class[column], scores[rows, column]
    if scores.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    column = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), column]
    keep = best >= score_threshold
    if len(class_ids):
        keep &= np.isin(column, np.asarray(class_ids, np.int64))
    rows = np.flatnonzero(keep)
    return rows, column[rows], best[rows]


def decode_yolov5(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                  options: Mapping[str, Any], score_threshold: float,
                  class_ids: Sequence[int] = ()) -> RawDetections:
    """YOLOv5-style ``[1, anchors, 5 + C]``: cx, cy, w, h, objectness, class scores.

    Score = objectness x class score. Options: ``normalized`` (false: coordinates in input
    pixels), ``multi_label`` (false: best class per anchor), ``output`` (name, default first).
    """
    pred = _squeeze_batch(_first_output(outputs, options), 2, 'yolov5 output')
    if pred.shape[1] < 6:
        raise DecoderError(f'yolov5: expected [1, anchors, 5 + classes], got {list(pred.shape)}')
    # Objectness bounds the score (class scores are probabilities), so filter on it first.
    pred = pred[pred[:, 4] >= score_threshold]
    scores = pred[:, 5:] * pred[:, 4:5]
    rows, cls, best = _best_class(scores, score_threshold, bool(options.get('multi_label')),
                                  class_ids)
    boxes = _cxcywh_to_xyxy(pred[rows, :4], input_size, bool(options.get('normalized')))
    return RawDetections(boxes, best.astype(np.float32), cls.astype(np.int64))


def _yolov8_transposed(shape: Shape, options: Mapping[str, Any]) -> bool:
    """True when the tensor is [anchors, 4 + C] rather than the usual [4 + C, anchors]."""
    if options.get('transposed') is not None:
        return bool(options['transposed'])
    rows, cols = _tail(shape, 2)
    # Exports have far more anchors than classes; a dynamic anchor count is the usual layout.
    return rows is None or (cols is not None and rows > cols)


def decode_yolov8(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                  options: Mapping[str, Any], score_threshold: float,
                  class_ids: Sequence[int] = ()) -> RawDetections:
    """YOLOv8/v11-style ``[1, 4 + C, anchors]``: cx, cy, w, h, class scores (no objectness).

    Options: ``transposed`` (``[1, anchors, 4 + C]``; default: guessed from the shape, more
    anchors than channels), ``normalized`` (false), ``multi_label`` (false), ``output``.
    """
    pred = _squeeze_batch(_first_output(outputs, options), 2, 'yolov8 output')
    if not _yolov8_transposed(pred.shape, options):
        pred = pred.T  # a view; the reductions below work on it without a copy
    if pred.shape[1] < 5:
        raise DecoderError(f'yolov8: expected [1, 4 + classes, anchors], got {list(pred.shape)}')
    rows, cls, best = _best_class(pred[:, 4:], score_threshold,
                                  bool(options.get('multi_label')), class_ids)
    boxes = _cxcywh_to_xyxy(pred[rows, :4], input_size, bool(options.get('normalized')))
    return RawDetections(boxes, best.astype(np.float32), cls.astype(np.int64))


def decode_boxes_xyxy(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                      options: Mapping[str, Any], score_threshold: float,
                      class_ids: Sequence[int] = ()) -> RawDetections:
    """Final detections ``[1, N, 6]`` or ``[N, 6]``: x1, y1, x2, y2, score, class per row
    (CenterNet, YOLOv10 and other NMS-free or end-to-end exports that picked their boxes).

    Options: ``normalized`` (false: coordinates in input pixels), ``output`` (name, default
    first), ``nms`` (run the shared NMS too; default off, the model chose its boxes).
    """
    rows = _squeeze_batch(_first_output(outputs, options), 2, 'boxes_xyxy output')
    if rows.shape[1] < 6:
        hint = ("; boxes [N, 4] with separate labels and scores outputs are decoder 'detr'"
                if rows.shape[1] == 4 and len(outputs) > 1 else '')
        raise DecoderError(f'boxes_xyxy: expected [1, N, 6] rows of x1, y1, x2, y2, score, '
                           f'class, got {list(rows.shape)}{hint}')
    rows = rows[rows[:, 4] >= score_threshold]
    boxes = rows[:, :4].astype(np.float32)
    if options.get('normalized'):
        boxes = boxes * np.array([*input_size, *input_size], np.float32)
    return RawDetections(boxes, rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64))


def _boxes_xyxy_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                            input_size: tuple[int, int] | None = None) -> int | None:
    width = _first_shape(shapes, options)[-1]
    if width is not None and width < 6:
        raise DecoderError(f'boxes_xyxy: expected rows of 6 values (x1, y1, x2, y2, score, '
                           f'class), the output has {width}')
    return None  # the class is a value, not a column: the labels file says how many


def _first_output(outputs: Mapping[str, np.ndarray], options: Mapping[str, Any]) -> np.ndarray:
    name = options.get('output')
    if name is None:
        return np.asarray(next(iter(outputs.values())))
    if name not in outputs:
        raise DecoderError(f'option output {name!r} is not one of the outputs {list(outputs)}')
    return np.asarray(outputs[name])


def _first_shape(shapes: Mapping[str, Shape],
                 options: Mapping[str, Any]) -> tuple[int | None, ...]:
    name = options.get('output')
    return _tail(shapes[name] if name in shapes else next(iter(shapes.values())), 2)


def _yolov5_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                        input_size: tuple[int, int] | None = None) -> int | None:
    k = _first_shape(shapes, options)[-1]
    return None if k is None else k - 5


def _yolov8_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                        input_size: tuple[int, int] | None = None) -> int | None:
    shape = _first_shape(shapes, options)
    k = shape[-1] if _yolov8_transposed(shape, options) else shape[0]
    return None if k is None else k - 4


# YOLOX ----------------------------------------------------------------------------------------

def _yolox_strides(options: Mapping[str, Any]) -> tuple[int, ...]:
    strides = tuple(int(s) for s in options.get('strides', (8, 16, 32)))
    if not strides or min(strides) <= 0:
        raise DecoderError(f'yolox option strides {list(strides)}: expected positive strides')
    return strides


@functools.lru_cache(maxsize=16)
def _yolox_grid(input_size: tuple[int, int], strides: tuple[int, ...]) -> np.ndarray:
    """Per head row: column, row and stride of its cell; levels in stride order, cells
    row-major (read-only: it is shared between calls)."""
    width, height = input_size
    levels = []
    for stride in strides:
        grid_w, grid_h = math.ceil(width / stride), math.ceil(height / stride)
        rows, cols = np.divmod(np.arange(grid_w * grid_h), grid_w)
        levels.append(np.stack([cols, rows, np.full_like(cols, stride)], axis=1))
    grid = np.concatenate(levels).astype(np.float32)
    grid.setflags(write=False)
    return grid


def _yolox_cells_error(rows: int, input_size: tuple[int, int],
                       strides: tuple[int, ...]) -> str | None:
    """Why ``rows`` head rows cannot be the raw head on this input (None: they can)."""
    expected = len(_yolox_grid(input_size, strides))
    if rows == expected:
        return None
    width, height = input_size
    grids = ' + '.join(f'{math.ceil(height / s)}x{math.ceil(width / s)}' for s in strides)
    return (f'yolox: the raw head on a {width}x{height} input with strides {list(strides)} has '
            f'{expected} rows ({grids} cells), the output has {rows}; set the strides the '
            'model was exported with, or decoded: true for boxes already decoded in the graph')


def decode_yolox(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                 options: Mapping[str, Any], score_threshold: float,
                 class_ids: Sequence[int] = ()) -> RawDetections:
    """YOLOX ``[1, N, 5 + C]``: box, objectness, class scores (both already sigmoid).

    The raw head (default): N = sum of the grid cells over the strides (8, 16, 32), each level
    row-major; cx = (o0 + col) * s, cy = (o1 + row) * s, w = exp(o2) * s, h = exp(o3) * s.
    ``decoded: true``: the graph decoded the boxes, cx, cy, w, h in input pixels. Score =
    objectness x class score. Options: ``strides``, ``decoded``, ``multi_label``, ``output``.
    """
    pred = _squeeze_batch(_first_output(outputs, options), 2, 'yolox output')
    if pred.shape[1] < 6:
        raise DecoderError(f'yolox: expected [1, N, 5 + classes], got {list(pred.shape)}')
    decoded = bool(options.get('decoded'))
    grid = None
    if not decoded:
        strides = _yolox_strides(options)
        error = _yolox_cells_error(pred.shape[0], input_size, strides)
        if error:
            raise DecoderError(error)
        grid = _yolox_grid(input_size, strides)
    keep = pred[:, 4] >= score_threshold  # objectness bounds the score, as for yolov5
    pred = pred[keep]
    rows, cls, best = _best_class(pred[:, 5:] * pred[:, 4:5], score_threshold,
                                  bool(options.get('multi_label')), class_ids)
    xywh = pred[rows, :4].astype(np.float32)
    if grid is not None:
        cell = grid[keep][rows]
        # A wrong pairing (a decoded export read as raw) overflows exp: inf, reported by
        # implausible_output rather than as a numpy warning.
        with np.errstate(over='ignore'):
            xywh = np.concatenate([(xywh[:, :2] + cell[:, :2]) * cell[:, 2:],
                                   np.exp(xywh[:, 2:]) * cell[:, 2:]], axis=1)
    boxes = _cxcywh_to_xyxy(xywh, input_size, False)
    return RawDetections(boxes, best.astype(np.float32), cls.astype(np.int64))


def _yolox_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                       input_size: tuple[int, int] | None = None) -> int | None:
    rows, k = _first_shape(shapes, options)
    if k is not None and k < 6:
        raise DecoderError(f'yolox: expected [1, N, 5 + classes], the output has {k} columns')
    if not options.get('decoded') and rows is not None and input_size is not None:
        error = _yolox_cells_error(rows, input_size, _yolox_strides(options))
        if error:
            raise DecoderError(error)
    return None if k is None else k - 5


# DETR / RT-DETR / DEIM: labels, boxes, scores -------------------------------------------------

_DETR_ROLES = ('label', 'box', 'score')


def _detr_names(names: Sequence[str]) -> dict[str, str] | None:
    """Output name per role, by name (labels, boxes, scores); None when a role is unnamed."""
    found = _roles_by_name(names, _DETR_ROLES)
    return found if len(found) == 3 else None


def _detr_pick(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Labels, boxes and scores by name, else by shape (boxes: last dimension 4) and type
    (labels: integers, or whole numbers when both others are floats)."""
    named = _detr_names(list(outputs))
    if named is not None:
        return {role: np.asarray(outputs[name]) for role, name in named.items()}
    arrays = [np.asarray(a) for a in outputs.values()]
    boxes = [a for a in arrays if a.ndim >= 2 and a.shape[-1] == 4]
    rest = [a for a in arrays if not (a.ndim >= 2 and a.shape[-1] == 4)]
    if len(arrays) != 3 or len(boxes) != 1:
        raise DecoderError(f'detr: expected outputs labels [N], boxes [N, 4] and scores [N] '
                           f'(batch dimension optional); got '
                           f'{[list(a.shape) for a in arrays]}')
    integer = [np.issubdtype(a.dtype, np.integer) for a in rest]
    if integer[0] != integer[1]:
        labels, scores = rest if integer[0] else rest[::-1]
    else:
        whole = [bool(np.all(np.mod(a, 1) == 0)) for a in rest]
        labels, scores = rest if whole[0] and not whole[1] else rest[::-1]
    return {'label': labels, 'box': boxes[0], 'score': scores}


def _detr_options(options: Mapping[str, Any]) -> tuple[str, bool, str]:
    box_format = options.get('box_format', 'xyxy')
    boxes_in = options.get('boxes_in', 'input')
    normalized = bool(options.get('normalized'))
    if box_format not in ('xyxy', 'cxcywh'):
        raise DecoderError(f"detr option box_format {box_format!r}: expected 'xyxy' or "
                           "'cxcywh'")
    if boxes_in not in ('input', 'source'):
        raise DecoderError(f"detr option boxes_in {boxes_in!r}: expected 'input' or 'source'")
    if normalized and boxes_in == 'source':
        raise DecoderError('detr: normalized boxes are fractions of the input image; '
                           'boxes_in: source is for boxes in source pixels, not both')
    return box_format, normalized, boxes_in


def decode_detr(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int],
                options: Mapping[str, Any], score_threshold: float,
                class_ids: Sequence[int] = (), *,
                source_size: tuple[int, int] | None = None) -> RawDetections:
    """DETR-family final detections: labels ``[N]``, boxes ``[N, 4]``, scores ``[N]`` (each
    with an optional batch dimension of 1; RT-DETR, D-FINE, DEIM, DEIMv2 exports).

    Outputs are found by name (containing label, box, score), else by shape and type. The
    model picks its boxes itself: no NMS. Options: ``box_format`` 'xyxy' (default) or
    'cxcywh'; ``normalized`` (fractions of the input); ``boxes_in`` 'input' (default: input
    pixels) or 'source' (boxes scaled to the source size fed as the model's
    ``orig_target_sizes``; mapped back to input pixels here, so they need ``source_size``);
    ``label_offset`` (0) subtracted from the labels.
    """
    box_format, normalized, boxes_in = _detr_options(options)
    picked = _detr_pick(outputs)
    boxes = _squeeze_batch(picked['box'], 2, 'detr boxes').astype(np.float32)
    scores = _squeeze_batch(picked['score'], 1, 'detr scores').astype(np.float32)
    labels = _squeeze_batch(picked['label'], 1, 'detr labels')
    if not len(boxes) == len(scores) == len(labels):
        raise DecoderError(f'detr: {len(labels)} labels, {len(boxes)} boxes and {len(scores)} '
                           'scores: expected as many of each')
    keep = scores >= score_threshold
    boxes, scores = boxes[keep], scores[keep]
    ids = np.rint(np.nan_to_num(labels[keep].astype(np.float64))).astype(np.int64)
    ids -= int(options.get('label_offset', 0))
    if box_format == 'cxcywh':
        boxes = _cxcywh_to_xyxy(boxes, input_size, False)
    width, height = input_size
    if normalized:
        boxes = boxes * np.array([width, height, width, height], np.float32)
    elif boxes_in == 'source':
        if source_size is None:
            raise DecoderError('detr: boxes_in: source needs the source image size')
        gain = np.array([width / source_size[0], height / source_size[1]] * 2, np.float32)
        boxes = boxes * gain
    return RawDetections(boxes, scores, ids)


def _detr_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                      input_size: tuple[int, int] | None = None) -> int | None:
    _detr_options(options)
    named = _detr_names(list(shapes))
    listed = ', '.join(f'{name} {list(shape)}' for name, shape in shapes.items())
    if named is None:
        boxes = [s for s in shapes.values() if len(s) >= 2 and s[-1] in (4, None)]
        if len(shapes) != 3 or not boxes:
            raise DecoderError(f'detr: expected three outputs, labels [N], boxes [N, 4] and '
                               f'scores [N] (batch dimension optional); outputs are {listed}')
        return None
    box = shapes[named['box']]
    if not 2 <= len(box) <= 3 or box[-1] not in (4, None):
        raise DecoderError(f'detr: output {named["box"]!r} should be boxes [N, 4] (batch '
                           f'dimension optional); outputs are {listed}')
    for role in ('label', 'score'):
        if not 1 <= len(shapes[named[role]]) <= 2:
            raise DecoderError(f'detr: output {named[role]!r} should be {role}s [N] (batch '
                               f'dimension optional); outputs are {listed}')
    return None  # labels are values: the labels file says how many classes


# Classification -------------------------------------------------------------------------------

def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def decode_classification(outputs: Mapping[str, np.ndarray], options: Mapping[str, Any],
                          top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits or probabilities ``[1, C]`` to the top-k (class ids, scores), best first.

    Option ``softmax`` (or ``apply_softmax``): true, false, or 'auto' (default: applied
    unless the values already look like probabilities, all in [0, 1] and summing to 1).
    """
    values = np.asarray(_first_output(outputs, options), dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise DecoderError('classification: the output is empty')
    mode = options.get('softmax', options.get('apply_softmax', 'auto'))
    if mode == 'auto':
        mode = not (values.min() >= 0 and values.max() <= 1 and abs(values.sum() - 1) < 1e-3)
    probs = softmax(values) if mode else values
    k = min(top_k, probs.size)
    top = np.argpartition(-probs, k - 1)[:k]
    top = top[np.argsort(-probs[top], kind='stable')]
    return top.astype(np.int64), probs[top].astype(np.float32)


def _classification_num_classes(shapes: Mapping[str, Shape], options: Mapping[str, Any],
                                input_size: tuple[int, int] | None = None) -> int | None:
    name = options.get('output')
    shape = shapes[name] if name in shapes else next(iter(shapes.values()))
    return shape[-1] if len(shape) else None  # [C], [1, C] or [N, C]


_YOLO_OPTIONS = frozenset({'normalized', 'multi_label', 'output', 'nms'})

DETECTION_DECODERS: dict[str, DetectionDecoder] = {
    'nanodet': DetectionDecoder(decode_nanodet, _nanodet_num_classes,
                                frozenset({'strides', 'reg_max', 'center_offset', 'nms'})),
    'tf_ssd': DetectionDecoder(
        decode_tf_ssd, lambda shapes, options, size: None,
        frozenset({'label_offset', 'class_offset', 'box_order', 'normalized', 'nms'}),
        applies_nms=True),
    'yolov5': DetectionDecoder(decode_yolov5, _yolov5_num_classes, _YOLO_OPTIONS),
    'yolov8': DetectionDecoder(decode_yolov8, _yolov8_num_classes,
                               _YOLO_OPTIONS | {'transposed'}),
    'boxes_xyxy': DetectionDecoder(decode_boxes_xyxy, _boxes_xyxy_num_classes,
                                   frozenset({'normalized', 'output', 'nms'}), applies_nms=True),
    'yolox': DetectionDecoder(decode_yolox, _yolox_num_classes,
                              frozenset({'strides', 'decoded', 'multi_label', 'output', 'nms'})),
    'detr': DetectionDecoder(
        decode_detr, _detr_num_classes,
        frozenset({'box_format', 'normalized', 'boxes_in', 'label_offset', 'nms'}),
        applies_nms=True, takes_source_size=True),
}
"""Detection decoders by card ``decoder.type``. Option ``nms``: run the shared NMS even
when the model has its own (default: only when it has none)."""

CLASSIFICATION_DECODERS: dict[str, ClassificationDecoder] = {
    'classification': ClassificationDecoder(decode_classification,
                                            _classification_num_classes,
                                            frozenset({'softmax', 'apply_softmax', 'output'})),
}


def num_classes(decoder_type: str, shapes: Mapping[str, Shape], options: Mapping[str, Any],
                input_size: tuple[int, int] | None = None) -> int | None:
    """Number of classes the model outputs, from its output shapes by name (None: unknown).

    Raises :class:`DecoderError` when the outputs cannot fit the decoder and its options.
    """
    registry: Mapping[str, Any] = {**DETECTION_DECODERS, **CLASSIFICATION_DECODERS}
    if decoder_type not in registry:
        raise DecoderError(f'unknown decoder {decoder_type!r}; known: {sorted(registry)}')
    if not shapes:
        raise DecoderError('the model has no outputs')
    return registry[decoder_type].num_classes(shapes, options, input_size)


# Plausibility ---------------------------------------------------------------------------------

MIN_BOX_PX = 2.0  # a box narrower or lower than this (input pixels) is degenerate
FAR_MARGIN = 0.25  # a box centre beyond this fraction of the input outside it is far off


def implausible_output(raw: RawDetections, input_size: tuple[int, int], score_threshold: float,
                       num_classes: int | None = None) -> str | None:
    """Why the candidates cannot come from a decoder that read the outputs right, in one line;
    None when they look plausible (or there is none to judge).

    A decoder that accepts an output's shape may still read it wrong (a YOLOX raw head read as
    YOLOv5 boxes, pixels read as normalised values). That shows in the candidates scoring at
    least ``score_threshold``: NaN or infinite values, scores outside [0, 1] or all exactly 0
    or 1, class ids outside ``0 .. num_classes - 1``, or most boxes under 2 px, all at the
    origin, or far outside the ``input_size`` (w, h) image.
    """
    scores = np.asarray(raw.scores, np.float64).reshape(-1)
    boxes = np.asarray(raw.boxes, np.float64).reshape(-1, 4)
    ids = np.asarray(raw.class_ids).reshape(-1)
    # NaN scores never pass a threshold; infinite ones do.
    keep = (scores >= score_threshold) | np.isinf(scores)
    scores, boxes, ids = scores[keep], boxes[keep], ids[keep]
    count = len(scores)
    if count == 0:
        return None
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    if not finite.all():
        return f'{count - int(finite.sum())} of {count} candidates have NaN or infinite values'
    if scores.max() > 1 + 1e-3 or scores.min() < 0:
        return (f'scores range {scores.min():.3g} to {scores.max():.3g}, outside [0, 1] '
                '(logits, or another column read as the score?)')
    if count >= 3 and np.all((scores == 0) | (scores == 1)):
        return (f'all {count} candidate scores are exactly 0 or 1 (a label or flag column read '
                'as the score?)')
    if num_classes is not None:
        bad = np.unique(ids[(ids < 0) | (ids >= num_classes)])
        if bad.size:
            return (f'class ids {bad[:5].tolist()} are outside 0..{num_classes - 1} '
                    '(another column read as the class?)')
    width, height = input_size
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    tiny = (w < MIN_BOX_PX) | (h < MIN_BOX_PX)
    far = ((cx < -FAR_MARGIN * width) | (cx > (1 + FAR_MARGIN) * width)
           | (cy < -FAR_MARGIN * height) | (cy > (1 + FAR_MARGIN) * height)
           | (w > 2 * width) | (h > 2 * height))
    where = f'the {width}x{height} input'
    if np.all(np.abs(boxes) < MIN_BOX_PX):
        return (f'all {count} candidate boxes are at the origin of {where} (offsets or '
                'normalised values read as pixels?)')
    if 2 * (tiny | far).sum() <= count:
        return None
    if tiny.sum() >= far.sum():
        return (f'{int(tiny.sum())} of {count} candidate boxes are under {MIN_BOX_PX:g} px wide '
                f'or high in {where} (offsets or normalised values read as pixels?)')
    return (f'{int(far.sum())} of {count} candidate boxes lie far outside {where} or are over '
            'twice its size (pixels read as normalised values, or decoded boxes read as a raw '
            'head?)')

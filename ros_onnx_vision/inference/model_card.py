"""Model cards: the YAML contract that describes how to feed and decode an ONNX model.

A card sits next to its model; every relative path in it is relative to the card.
:func:`load_model_card` validates the card itself, :func:`check_model_against_card` checks it
against the inputs and outputs of a loaded ONNX session, and :func:`apply_overrides` applies
run-time parameters (thresholds, class filter, top-k) on top of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import hashlib
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from ros_onnx_vision.inference import decoders
from ros_onnx_vision.resources import model_file
from ros_onnx_vision.results import Task

TASKS = tuple(task.value for task in Task)
LAYOUTS = ('NCHW', 'NHWC')
DTYPES = ('float32', 'uint8')
COLOR_ORDERS = ('BGR', 'RGB', 'GRAY')
RESIZE_MODES = ('stretch', 'letterbox')
THRESHOLD_METHODS = ('otsu', 'adaptive')

# ONNX type strings as onnxruntime reports them, per card dtype.
_ORT_TYPES = {'float32': 'tensor(float)', 'uint8': 'tensor(uint8)'}
# Extra (non-image) inputs: the values a card may feed, and the ONNX types they may be fed as.
EXTRA_VALUES = ('source_size', 'input_size')
_EXTRA_TYPES = {'tensor(int64)': 'int64', 'tensor(int32)': 'int32', 'tensor(float)': 'float32',
                'tensor(double)': 'float64', 'tensor(float16)': 'float16'}

_TOP_KEYS = {
    'name', 'task', 'file', 'sha256', 'input', 'decoder', 'labels', 'thresholds',
    'class_filter', 'top_k', 'max_detections', 'outputs', 'extra_inputs', 'digit_preprocessing',
    'provenance', 'description', 'license', 'version', 'reference', 'fallback',
}
_INPUT_KEYS = {
    'name', 'layout', 'width', 'height', 'dtype', 'color_order', 'scale', 'mean', 'std',
    'resize', 'pad_value',
}
_REFERENCE_KEYS = {'image', 'verified_on', 'score_floor', 'detections', 'classification'}
_DIGIT_KEYS = {
    'roi', 'threshold', 'min_contrast', 'min_height_fraction', 'max_ink_fraction',
    'stroke_width',
}


class ModelCardError(ValueError):
    """A model card is invalid or contradicts the model it describes."""


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the model's input tensor."""

    name: str | None
    layout: str = 'NCHW'
    width: int | None = None
    height: int | None = None
    dtype: str = 'float32'
    color_order: str = 'BGR'
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    resize: str = 'stretch'
    pad_value: float = 114.0

    @property
    def channels(self) -> int:
        """Number of image channels the model takes (1 for GRAY, else 3)."""
        return 1 if self.color_order == 'GRAY' else 3


@dataclass(frozen=True)
class DecoderSpec:
    """Which decoder turns the raw outputs into results, with its options."""

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputSpec:
    """An expected model output; ``None`` in a shape means any size."""

    name: str
    shape: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class ExtraInput:
    """A model input besides the image, fed each frame (the card's ``extra_inputs``).

    ``value``: 'source_size' (the source image's width, height), 'input_size' (the model
    input's), or None for the fixed numbers ``literal``; ``order``: 'wh' or 'hw'. ``dtype``
    (numpy name) and ``shape`` come from the model, filled in by check_model_against_card.
    """

    name: str
    value: str | None = None
    order: str = 'wh'
    literal: tuple[float, ...] = ()
    dtype: str | None = None
    shape: tuple[int, ...] | None = None

    def numbers(self, source_size: tuple[int, int],
                input_size: tuple[int, int]) -> tuple[float, ...]:
        """The values fed for a frame of ``source_size`` on an ``input_size`` input (w, h)."""
        if self.value is None:
            return self.literal
        width, height = source_size if self.value == 'source_size' else input_size
        return (height, width) if self.order == 'hw' else (width, height)

    @property
    def count(self) -> int:
        """How many numbers it feeds."""
        return 2 if self.value is not None else len(self.literal)


@dataclass(frozen=True)
class DigitSpec:
    """Settings for MNIST-style digit extraction from a camera frame (``inference.digit_finder``).

    ``roi``: the region searched, (x, y, width, height) as fractions of the frame.
    """

    roi: tuple[float, float, float, float] = (0.2, 0.1, 0.6, 0.8)
    threshold: str = 'otsu'
    min_contrast: float = 30.0
    min_height_fraction: float = 0.08
    max_ink_fraction: float = 0.35
    stroke_width: float = 2.0  # MNIST median, in pixels of the 20x20 box


@dataclass(frozen=True)
class ReferenceResult:
    """What the card's model gave on a shipped image where it was verified (the self-check).

    ``detections``: rows x1, y1, x2, y2 (source pixels), score, class id, every box scoring at
    least ``score_floor`` (below the card threshold, so that a box near it may go either way);
    ``classification``: the top (label, score). ``verified_on``: provider, onnxruntime and CPU.
    """

    image: Path
    verified_on: str = ''
    score_floor: float = 0.0
    detections: tuple[tuple[float, float, float, float, float, int], ...] | None = None
    classification: tuple[str, float] | None = None


@dataclass(frozen=True)
class ModelCard:
    """A validated model card. ``model_path`` and ``labels_path`` are absolute."""

    path: Path
    name: str
    task: Task
    model_path: Path
    sha256: str | None
    input: InputSpec
    decoder: DecoderSpec
    labels: tuple[str, ...]
    labels_path: Path | None
    score_threshold: float
    nms_iou: float
    class_filter: tuple[str, ...] = ()
    top_k: int = 5
    max_detections: int = 100
    outputs: tuple[OutputSpec, ...] = ()
    extra_inputs: tuple[ExtraInput, ...] = ()
    digit: DigitSpec | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    reference: ReferenceResult | None = None  # None: checked on the package's own image
    fallback: Path | None = None  # the card to use instead when the self-check fails

    @property
    def class_filter_ids(self) -> tuple[int, ...]:
        """Label indices named by ``class_filter`` (empty means keep every class)."""
        return tuple(self.labels.index(name) for name in self.class_filter)

    def label(self, class_id: int) -> str:
        """Label of a class index, or ``class_<id>`` when the labels do not cover it."""
        if 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return f'class_{class_id}'


class _Reader:
    """Typed access to one mapping of the card, with errors that name card, key and value."""

    def __init__(self, card_path: Path, data: Mapping[str, Any], prefix: str = '') -> None:
        self.card_path = card_path
        self.data = data
        self.prefix = prefix

    def error(self, key: str, value: Any, expected: str) -> ModelCardError:
        return ModelCardError(
            f'model card {self.card_path}: key {self.prefix + key!r} is {value!r}, '
            f'expected {expected}')

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise ModelCardError(
                f'model card {self.card_path}: unknown key(s) '
                f'{", ".join(self.prefix + k for k in unknown)}; '
                f'allowed here: {", ".join(sorted(allowed))}')

    def raw(self, key: str, default: Any = ...) -> Any:
        if key not in self.data or self.data[key] is None and default is not ...:
            if default is ...:
                raise ModelCardError(
                    f'model card {self.card_path}: missing required key {self.prefix + key!r}')
            return default
        return self.data[key]

    def str_(self, key: str, default: Any = ...) -> Any:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(key, value, 'a non-empty string')
        return value

    def choice(self, key: str, choices: Sequence[str], default: Any = ...,
               upper: bool = False) -> str:
        value = self.raw(key, default)
        norm = value.upper() if upper and isinstance(value, str) else value
        if norm not in choices:
            raise self.error(key, value, f'one of {", ".join(choices)}')
        return norm

    def number(self, key: str, default: Any = ..., *, lo: float = -math.inf,
               hi: float = math.inf, integer: bool = False, allow_none: bool = False) -> Any:
        value = self.raw(key, None if allow_none else default)
        if value is None and allow_none:
            return None
        kind = 'an integer' if integer else 'a number'
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if (isinstance(value, bool) or not ok_type or not math.isfinite(value)
                or not lo <= value <= hi):
            bounds = '' if math.isinf(lo) and math.isinf(hi) else f' in [{lo:g}, {hi:g}]'
            raise self.error(key, value, f'{kind}{bounds}')
        return int(value) if integer else float(value)

    def numbers(self, key: str, default: Any, count: Iterable[int]) -> tuple[float, ...]:
        value = self.raw(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        counts = tuple(count)
        if (not isinstance(value, (list, tuple)) or len(value) not in counts
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in value)):
            raise self.error(key, value, f'a number or a list of {" or ".join(map(str, counts))}'
                                         ' numbers')
        return tuple(float(v) for v in value)

    def mapping(self, key: str, default: Any = ...) -> Mapping[str, Any]:
        value = self.raw(key, default)
        if not isinstance(value, Mapping):
            raise self.error(key, value, 'a mapping')
        return value

    def sub(self, key: str, default: Any = ...) -> '_Reader':
        return _Reader(self.card_path, self.mapping(key, default), f'{self.prefix}{key}.')


def _read_labels(reader: _Reader, card_dir: Path) -> tuple[tuple[str, ...], Path | None]:
    value = reader.raw('labels', [])
    if isinstance(value, list):
        if not all(isinstance(v, (str, int)) for v in value):
            raise reader.error('labels', value, 'a labels file name or a list of strings')
        return tuple(str(v) for v in value), None
    if not isinstance(value, str):
        raise reader.error('labels', value, 'a labels file name or a list of strings')
    path = (card_dir / value).resolve()
    if not path.is_file():
        raise reader.error('labels', value, f'an existing labels file (no file at {path})')
    lines = path.read_text(encoding='utf-8').splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    labels = tuple(line.strip() for line in lines)
    if not labels or not all(labels):
        raise reader.error('labels', value, f'one non-empty label per line in {path}')
    return labels, path


def _read_input(reader: _Reader) -> InputSpec:
    reader.check_keys(_INPUT_KEYS)
    color = reader.choice('color_order', COLOR_ORDERS, 'BGR', upper=True)
    channels = 1 if color == 'GRAY' else 3
    counts = (1,) if channels == 1 else (1, 3)
    std = reader.numbers('std', [1.0], counts)
    if any(s == 0 for s in std):
        raise reader.error('std', list(std), 'non-zero values')
    spec = InputSpec(
        name=reader.str_('name', None),
        layout=reader.choice('layout', LAYOUTS, 'NCHW', upper=True),
        width=reader.number('width', lo=1, hi=65535, integer=True, allow_none=True),
        height=reader.number('height', lo=1, hi=65535, integer=True, allow_none=True),
        dtype=reader.choice('dtype', DTYPES, 'float32'),
        color_order=color,
        scale=reader.number('scale', 1.0),
        mean=reader.numbers('mean', [0.0], counts),
        std=std,
        resize=reader.choice('resize', RESIZE_MODES, 'stretch'),
        pad_value=reader.number('pad_value', 114.0, lo=0, hi=255),
    )
    if spec.dtype == 'uint8' and (spec.scale != 1 or any(spec.mean) or
                                  any(s != 1 for s in spec.std)):
        raise reader.error('dtype', 'uint8', 'float32 when scale, mean or std normalise '
                                             '(a uint8 input takes raw pixels)')
    return spec


def _read_outputs(reader: _Reader) -> tuple[OutputSpec, ...]:
    value = reader.raw('outputs', [])
    expected = 'a list of {name: str, shape: [int or null, ...]}'
    if not isinstance(value, list):
        raise reader.error('outputs', value, expected)
    specs = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get('name'), str):
            raise reader.error('outputs', item, expected)
        shape = item.get('shape')
        if shape is not None:
            if not isinstance(shape, list) or not all(
                    d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                    for d in shape):
                raise reader.error('outputs', item, expected)
            shape = tuple(shape)
        specs.append(OutputSpec(item['name'], shape))
    return tuple(specs)


def _read_extra_inputs(reader: _Reader) -> tuple[ExtraInput, ...]:
    section = reader.sub('extra_inputs', {})
    expected = (f'one of {", ".join(EXTRA_VALUES)}, {{value: source_size or input_size, '
                'order: wh or hw}, or a list of numbers')
    specs = []
    for name, item in section.data.items():
        if not isinstance(name, str) or not name:
            raise reader.error('extra_inputs', dict(section.data),
                               'a mapping of model input names to values')
        if isinstance(item, str) and item in EXTRA_VALUES:
            specs.append(ExtraInput(name, item))
        elif isinstance(item, list):
            if not item or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   and math.isfinite(v) for v in item):
                raise section.error(name, item, expected)
            specs.append(ExtraInput(name, literal=tuple(float(v) for v in item)))
        elif isinstance(item, Mapping):
            sub = section.sub(name)
            sub.check_keys({'value', 'order'})
            specs.append(ExtraInput(name, sub.choice('value', EXTRA_VALUES),
                                    sub.choice('order', ('wh', 'hw'), 'wh')))
        else:
            raise section.error(name, item, expected)
    return tuple(specs)


def _read_roi(reader: _Reader, key: str, default: Sequence[float]
              ) -> tuple[float, float, float, float]:
    x, y, w, h = reader.numbers(key, list(default), (4,))
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
        raise reader.error(key, [x, y, w, h], '[x, y, width, height] as fractions of the image, '
                                              'inside it, with a positive size')
    return x, y, w, h


def _read_digit(reader: _Reader) -> DigitSpec:
    reader.check_keys(_DIGIT_KEYS)
    default = DigitSpec()
    return DigitSpec(
        roi=_read_roi(reader, 'roi', default.roi),
        threshold=reader.choice('threshold', THRESHOLD_METHODS, default.threshold),
        min_contrast=reader.number('min_contrast', default.min_contrast, lo=0, hi=255),
        min_height_fraction=reader.number('min_height_fraction', default.min_height_fraction,
                                          lo=0, hi=1),
        max_ink_fraction=reader.number('max_ink_fraction', default.max_ink_fraction,
                                       lo=0, hi=1),
        stroke_width=reader.number('stroke_width', default.stroke_width, lo=0, hi=10),
    )


def _package_models() -> Path | None:
    try:
        return model_file('README.md').parent
    except FileNotFoundError:  # no share directory: only the card's own folder counts
        return None


def _existing_file(value: str, *folders: Path | None) -> Path | None:
    """``value`` as an absolute path, else relative to the first folder that has it."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    return next((folder / path for folder in folders
                 if folder is not None and (folder / path).is_file()), None)


def _read_reference(reader: _Reader, task: Task, labels: Sequence[str], card_dir: Path,
                    model_dir: Path) -> ReferenceResult:
    reader.check_keys(_REFERENCE_KEYS)
    value = reader.str_('image')
    # A card copied elsewhere with its model path made absolute still finds the image next to
    # the model; a packaged card's relative path also resolves in the package's models/.
    image = _existing_file(value, card_dir, model_dir, _package_models())
    if image is None:
        raise reader.error('image', value, f'an image file next to the card ({card_dir}) or '
                                           f'the model ({model_dir}), or an absolute path')
    common = dict(image=image.resolve(), verified_on=str(reader.raw('verified_on', '')),
                  score_floor=reader.number('score_floor', 0.0, lo=0, hi=1))
    if task is Task.DETECTION:
        rows = reader.raw('detections')
        expected = 'a list of [x1, y1, x2, y2, score, class id] rows ([] for none)'
        if not isinstance(rows, list) or not all(
                isinstance(r, list) and len(r) == 6 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
                for r in rows):
            raise reader.error('detections', rows, expected)
        return ReferenceResult(**common, detections=tuple(
            (float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]))
            for r in rows))
    top = reader.sub('classification')
    top.check_keys({'label', 'score'})
    label = str(top.raw('label'))
    if labels and label not in labels:
        raise top.error('label', label, f'one of the labels {list(labels)[:20]}')
    return ReferenceResult(**common, classification=(label, top.number('score', lo=0, hi=1)))


def _class_filter(reader: _Reader, value: Any, labels: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise reader.error('class_filter', value, 'a list of label names ([] keeps all)')
    names = []
    for item in value:
        # An integer is taken as a label index, for labels that are numbers ('0'..'9').
        name = str(item)
        if name not in labels:
            shown = ', '.join(labels[:20]) + (', ...' if len(labels) > 20 else '')
            raise reader.error('class_filter', list(value),
                               f'names from the labels ({shown}); {name!r} is not one')
        names.append(name)
    return tuple(dict.fromkeys(names))


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def load_model_card(path: str | Path, *, verify_sha256: bool = True) -> ModelCard:
    """Load and validate a model card; raise :class:`ModelCardError` on any problem.

    Checks every key and value, that the model file exists, looks like ONNX and matches the
    card's ``sha256`` (when given and ``verify_sha256``), and reads the labels.
    """
    card_path = Path(path).expanduser().resolve()
    if not card_path.is_file():
        raise ModelCardError(f'model card {card_path} does not exist')
    try:
        data = yaml.safe_load(card_path.read_text(encoding='utf-8'))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ModelCardError(f'model card {card_path} is not valid YAML: {err}') from err
    if not isinstance(data, Mapping):
        raise ModelCardError(f'model card {card_path} must be a YAML mapping, got {data!r:.80}')
    top = _Reader(card_path, data)
    top.check_keys(_TOP_KEYS)
    card_dir = card_path.parent

    name = top.str_('name', card_path.stem)
    task = Task(top.choice('task', TASKS))
    model_file = top.str_('file')
    model_path = (card_dir / model_file).resolve()
    if not model_path.is_file():
        raise top.error('file', model_file, f'an existing ONNX file (no file at {model_path})')
    _check_onnx_header(top, model_file, model_path)
    sha256 = top.str_('sha256', None)
    if sha256 is not None:
        sha256 = sha256.lower()
        if len(sha256) != 64 or any(c not in '0123456789abcdef' for c in sha256):
            raise top.error('sha256', sha256, 'a 64-digit hex SHA-256')
        if verify_sha256:
            actual = file_sha256(model_path)
            if actual != sha256:
                raise ModelCardError(
                    f'model card {card_path}: sha256 mismatch for {model_path}: card expects '
                    f'{sha256}, file has {actual} (wrong, modified or truncated model file)')

    input_spec = _read_input(top.sub('input'))
    dec = top.sub('decoder')
    dec.check_keys({'type', 'options'})
    allowed = (decoders.CLASSIFICATION_DECODERS if task is Task.CLASSIFICATION
               else decoders.DETECTION_DECODERS)
    dec_type = dec.choice('type', tuple(allowed))
    decoder = DecoderSpec(dec_type, dict(dec.sub('options', {}).data))
    dec.sub('options', {}).check_keys(set(allowed[dec_type].options))

    labels, labels_path = _read_labels(top, card_dir)
    th = top.sub('thresholds', {})
    th.check_keys({'score', 'nms_iou'})
    digit = None
    if 'digit_preprocessing' in data:
        if task is not Task.CLASSIFICATION:
            raise top.error('task', task.value,
                            "'classification' when digit_preprocessing is given")
        digit = _read_digit(top.sub('digit_preprocessing', {}))
    provenance = top.raw('provenance', {})
    reference = None
    if top.raw('reference', None) is not None:
        reference = _read_reference(top.sub('reference'), task, labels, card_dir,
                                    model_path.parent)
    fallback = None
    if top.raw('fallback', None) is not None:
        value = top.str_('fallback')
        fallback = _existing_file(value, card_dir, _package_models())
        if fallback is None or fallback.resolve() == card_path:
            raise top.error('fallback', value, 'another model card file, next to this one or '
                                               'an absolute path')
        fallback = fallback.resolve()
    return ModelCard(
        path=card_path,
        name=name,
        task=task,
        model_path=model_path,
        sha256=sha256,
        input=input_spec,
        decoder=decoder,
        labels=labels,
        labels_path=labels_path,
        # Unset: 0.35 for detection (a common default), none for classification.
        score_threshold=th.number('score', 0.35 if task is Task.DETECTION else 0.0, lo=0, hi=1),
        nms_iou=th.number('nms_iou', 0.5, lo=0, hi=1),
        class_filter=_class_filter(top, top.raw('class_filter', []), labels),
        top_k=top.number('top_k', 5, lo=1, hi=100000, integer=True),
        max_detections=top.number('max_detections', 100, lo=1, hi=100000, integer=True),
        outputs=_read_outputs(top),
        extra_inputs=_read_extra_inputs(top),
        digit=digit,
        provenance=provenance if isinstance(provenance, Mapping) else {'text': provenance},
        reference=reference,
        fallback=fallback,
    )


def _check_onnx_header(reader: _Reader, value: str, model_path: Path) -> None:
    # An ONNX file is a protobuf ModelProto whose first field is ir_version (tag 0x08).
    # Catching a text file, an HTML error page or an empty file here gives a clearer message
    # than onnxruntime's protobuf parse error.
    with open(model_path, 'rb') as stream:
        head = stream.read(2)
    if len(head) < 2 or head[0] != 0x08:
        raise reader.error('file', value, f'an ONNX model file ({model_path} is not ONNX: '
                                          f'starts with {head!r})')


def _ort_shape(arg: Any) -> tuple[int | None, ...]:
    # onnxruntime reports dynamic dimensions as strings or None.
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in arg.shape)


def _fmt(shape: Sequence[int | None]) -> str:
    return '[' + ', '.join('?' if d is None else str(d) for d in shape) + ']'


def _check_extra_inputs(where: str, card: ModelCard, session_inputs: Sequence[Any],
                        image: str) -> tuple[ExtraInput, ...]:
    """The card's extra inputs with the model's dtype and feed shape, or ModelCardError when
    the model takes inputs the card does not feed, the card feeds inputs it does not take, or
    the decoder's ``boxes_in`` contradicts a fed source size."""
    extras = card.extra_inputs
    by_name = {arg.name: arg for arg in session_inputs}
    declared = {extra.name for extra in extras}
    if image in declared:
        raise ModelCardError(f'{where}: extra_inputs feeds {image!r}, the image input')
    missing = [name for name in by_name if name != image and name not in declared]
    if missing:
        raise ModelCardError(
            f'{where}: the model also takes input(s) {missing} that the card does not feed; '
            f'declare each under extra_inputs, e.g. "extra_inputs: {{{missing[0]}: '
            'input_size}" (input_size or source_size: (w, h) of the model input or of the '
            'source image; {value: input_size, order: hw} for (h, w); or a list of numbers)')
    unknown = sorted(declared - set(by_name))
    if unknown:
        raise ModelCardError(f'{where}: extra_inputs names {unknown}, not inputs of the model '
                             f'(its inputs: {sorted(by_name)})')
    resolved = []
    for extra in extras:
        arg = by_name[extra.name]
        dtype = _EXTRA_TYPES.get(arg.type)
        if dtype is None:
            raise ModelCardError(f'{where}: extra input {extra.name!r} is {arg.type}; the card '
                                 f'can feed {", ".join(sorted(_EXTRA_TYPES))}')
        shape = _ort_shape(arg)
        # Dynamic dimensions (batch) are 1, except a dynamic last one, which takes the values.
        feed = tuple(d if d is not None else (extra.count if i == len(shape) - 1 else 1)
                     for i, d in enumerate(shape))
        if math.prod(feed) != extra.count:
            what = extra.value or 'a list'
            raise ModelCardError(f'{where}: extra input {extra.name!r} has shape {_fmt(shape)}; '
                                 f'the card feeds {extra.count} number(s) ({what})')
        resolved.append(dataclasses.replace(extra, dtype=dtype, shape=feed))
    decoder = decoders.DETECTION_DECODERS.get(card.decoder.type)
    if decoder is not None and 'boxes_in' in decoder.options:
        # Boxes come scaled to the size fed (DETR's orig_target_sizes): the two must agree.
        sources = [extra.name for extra in extras if extra.value == 'source_size']
        boxes_in = card.decoder.options.get('boxes_in', 'input')
        if boxes_in == 'source' and not sources:
            raise ModelCardError(f'{where}: decoder option boxes_in: source, but no extra '
                                 'input feeds source_size (the size the boxes are scaled to)')
        if boxes_in != 'source' and sources:
            raise ModelCardError(
                f'{where}: extra input(s) {sources} feed source_size, so the boxes come in '
                f'source pixels, but decoder {card.decoder.type!r} reads them as input pixels; '
                'set decoder option boxes_in: source, or feed input_size')
    return tuple(resolved)


def check_model_against_card(card: ModelCard, session_inputs: Sequence[Any],
                             session_outputs: Sequence[Any]) -> ModelCard:
    """Check the card against a session's ``get_inputs()`` / ``get_outputs()``.

    Raises :class:`ModelCardError` naming expected and actual (input name, rank, channels,
    size, dtype, outputs, number of labels, inputs besides the image that the card's
    ``extra_inputs`` does not feed). Returns the card with the input name and a width/height
    left ``null`` in the card filled in from the model where it fixes them, and the extra
    inputs' dtype and shape.
    """
    where = f'model {card.model_path.name} vs card {card.path}'
    spec = card.input
    by_name = {arg.name: arg for arg in session_inputs}
    if spec.name is None:
        extra_names = {extra.name for extra in card.extra_inputs}
        images = [a for a in session_inputs if a.name not in extra_names]
        if len(images) != 1:
            raise ModelCardError(f'{where}: the model has inputs {sorted(by_name)}; name the '
                                 f'image input in input.name')
        arg = images[0]
    elif spec.name not in by_name:
        raise ModelCardError(f'{where}: input.name {spec.name!r} not in the model inputs '
                             f'{sorted(by_name)}')
    else:
        arg = by_name[spec.name]
    shape = _ort_shape(arg)
    if len(shape) != 4:
        raise ModelCardError(f'{where}: input {arg.name!r} has shape {_fmt(shape)} (rank '
                             f'{len(shape)}), expected rank 4 ({spec.layout})')
    if spec.layout == 'NCHW':
        channels, height, width = shape[1], shape[2], shape[3]
    else:
        height, width, channels = shape[1], shape[2], shape[3]
    if channels is not None and channels != spec.channels:
        raise ModelCardError(
            f'{where}: input {arg.name!r} has shape {_fmt(shape)}; with layout {spec.layout} '
            f'that is {channels} channels, card expects {spec.channels} ({spec.color_order})')
    for key, card_value, model_value in (('width', spec.width, width),
                                         ('height', spec.height, height)):
        if card_value is not None and model_value is not None and card_value != model_value:
            raise ModelCardError(
                f'{where}: input.{key} is {card_value} but the model input {arg.name!r} has '
                f'shape {_fmt(shape)} ({spec.layout}), i.e. {key} {model_value}')
    expected_type = _ORT_TYPES[spec.dtype]
    if arg.type != expected_type:
        raise ModelCardError(f'{where}: input.dtype {spec.dtype} means {expected_type} but the '
                             f'model input {arg.name!r} is {arg.type}')

    out_shapes = {o.name: _ort_shape(o) for o in session_outputs}
    if card.outputs:
        listed = [o.name for o in card.outputs]
        if sorted(listed) != sorted(out_shapes):
            raise ModelCardError(f'{where}: card lists outputs {listed}, the model has '
                                 f'{list(out_shapes)}')
        for out in card.outputs:
            actual = out_shapes[out.name]
            if out.shape is not None and (len(out.shape) != len(actual) or any(
                    e is not None and a is not None and e != a
                    for e, a in zip(out.shape, actual))):
                raise ModelCardError(f'{where}: output {out.name!r} has shape {_fmt(actual)}, '
                                     f'card expects {_fmt(out.shape)}')
    resolved_w = spec.width if spec.width is not None else width
    resolved_h = spec.height if spec.height is not None else height
    try:
        size = (resolved_w, resolved_h) if resolved_w and resolved_h else None
        num_classes = decoders.num_classes(card.decoder.type, out_shapes, card.decoder.options,
                                           size)
    except (ValueError, TypeError) as err:  # DecoderError, or options of a wrong type
        raise ModelCardError(f'{where}: decoder {card.decoder.type!r} cannot use the model '
                             f'outputs: {err}') from err
    if num_classes is not None and card.labels and num_classes != len(card.labels):
        source = card.labels_path or 'labels'
        raise ModelCardError(f'{where}: {source} has {len(card.labels)} labels but the model '
                             f'outputs {num_classes} classes')
    return dataclasses.replace(card, input=dataclasses.replace(
        spec, name=arg.name, width=resolved_w, height=resolved_h),
        extra_inputs=_check_extra_inputs(where, card, session_inputs, arg.name))


def apply_overrides(card: ModelCard, *, score_threshold: float | None = None,
                    nms_iou: float | None = None, class_filter: Sequence[str] | None = None,
                    top_k: int | None = None, max_detections: int | None = None,
                    digit_roi: Sequence[float] | None = None) -> ModelCard:
    """Return a copy of the card with run-time parameters applied (``None`` keeps the card's).

    ``class_filter``: label names, ``[]`` keeps every class. ``digit_roi``: (x, y, width,
    height) fractions; it turns digit extraction on for a classification card without it.
    Raises :class:`ModelCardError` for out-of-range values or class names not in the labels.
    """
    reader = _Reader(card.path, {
        'score': score_threshold, 'nms_iou': nms_iou, 'top_k': top_k,
        'max_detections': max_detections, 'digit_roi': digit_roi}, 'override ')
    changes: dict[str, Any] = {}
    if score_threshold is not None:
        changes['score_threshold'] = reader.number('score', lo=0, hi=1)
    if nms_iou is not None:
        changes['nms_iou'] = reader.number('nms_iou', lo=0, hi=1)
    if top_k is not None:
        changes['top_k'] = reader.number('top_k', lo=1, hi=100000, integer=True)
    if max_detections is not None:
        changes['max_detections'] = reader.number('max_detections', lo=1, hi=100000,
                                                  integer=True)
    if class_filter is not None:
        changes['class_filter'] = _class_filter(reader, list(class_filter), card.labels)
    if digit_roi is not None:
        if card.task is not Task.CLASSIFICATION:
            raise reader.error('digit_roi', list(digit_roi), 'no region for a detection card')
        changes['digit'] = dataclasses.replace(
            card.digit or DigitSpec(), roi=_read_roi(reader, 'digit_roi', (0, 0, 1, 1)))
    return dataclasses.replace(card, **changes)

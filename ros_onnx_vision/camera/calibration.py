"""Camera calibration files in the ROS camera_calibration / camera_info_manager YAML format.

Pure Python: the node copies the fields of `CameraCalibration` into sensor_msgs/CameraInfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import os
from typing import Any

import yaml

__all__ = [
    'CalibrationError', 'CameraCalibration', 'calibration_to_yaml', 'default_calibration',
    'load_calibration', 'parse_calibration', 'save_calibration', 'scaled',
]

IDENTITY_3X3 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
# Coefficient counts of the models whose length is fixed; other models accept any length.
DISTORTION_LENGTHS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}


class CalibrationError(ValueError):
    """A calibration file or value is invalid."""


@dataclass
class CameraCalibration:
    """Intrinsics as in sensor_msgs/CameraInfo (row-major K 3x3, R 3x3, P 3x4)."""

    width: int
    height: int
    camera_name: str = ''
    distortion_model: str = 'plumb_bob'
    d: list[float] = field(default_factory=lambda: [0.0] * 5)
    k: list[float] = field(default_factory=lambda: [0.0] * 9)
    r: list[float] = field(default_factory=lambda: list(IDENTITY_3X3))
    p: list[float] = field(default_factory=lambda: [0.0] * 12)

    def __post_init__(self) -> None:
        """Validate sizes and values."""
        _check_size('image_width', self.width)
        _check_size('image_height', self.height)
        for key, values, expected in (('camera_matrix', self.k, 9),
                                      ('rectification_matrix', self.r, 9),
                                      ('projection_matrix', self.p, 12)):
            if len(values) != expected:
                raise CalibrationError(f'{key}: expected {expected} values, got {len(values)}')
        _check_distortion(self.distortion_model, self.d)
        for key, values in (('camera_matrix', self.k), ('rectification_matrix', self.r),
                            ('projection_matrix', self.p), ('distortion_coefficients', self.d)):
            if not all(math.isfinite(v) for v in values):
                raise CalibrationError(f'{key}: values must be finite numbers, got {values}')


def _check_size(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CalibrationError(f'{key}: expected a positive integer, got {value!r}')


def _check_distortion(model: str, d: list[float]) -> None:
    expected = DISTORTION_LENGTHS.get(model)
    if expected is not None and len(d) != expected:
        raise CalibrationError(f'distortion_coefficients: model {model!r} expects {expected} '
                               f'values, got {len(d)}')


def _floats(key: str, values: Any) -> list[float]:
    if not isinstance(values, list):
        raise CalibrationError(f'{key}: expected a list of numbers, got {values!r}')
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise CalibrationError(f'{key}: expected numbers, got {values!r}') from None


def _matrix(data: dict[str, Any], key: str, rows: int | None, cols: int | None) -> list[float]:
    """Read a {rows, cols, data} block, checking its declared and actual shape."""
    block = data[key]
    if not isinstance(block, dict) or 'data' not in block:
        raise CalibrationError(f'{key}: expected a mapping with rows, cols and data, got '
                               f'{block!r}')
    values = _floats(f'{key}.data', block['data'])
    declared = (block.get('rows'), block.get('cols'))
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in declared):
        raise CalibrationError(f'{key}: rows and cols must be integers, got {declared}')
    if declared[0] is not None and declared[1] is not None:
        if declared[0] * declared[1] != len(values):
            raise CalibrationError(f'{key}: rows x cols = {declared[0]}x{declared[1]} but data '
                                   f'has {len(values)} values')
    if rows is not None and cols is not None:
        if declared not in ((rows, cols), (None, None)) or len(values) != rows * cols:
            raise CalibrationError(f'{key}: expected {rows}x{cols} ({rows * cols} values), got '
                                   f'{declared[0]}x{declared[1]} with {len(values)} values')
    return values


def parse_calibration(data: dict[str, Any] | str, origin: str = '<calibration>'
                      ) -> CameraCalibration:
    """Build a calibration from YAML text or an already-loaded mapping.

    Required: image_width, image_height, camera_matrix. Optional: camera_name (''),
    distortion_model ('plumb_bob'), distortion_coefficients (zeros), rectification_matrix
    (identity), projection_matrix ([K | 0]). Errors name `origin` and the offending key.
    """
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise CalibrationError(f'{origin}: not valid YAML: {exc}') from None
    if not isinstance(data, dict):
        raise CalibrationError(f'{origin}: expected a YAML mapping, got {type(data).__name__}')
    try:
        missing = [key for key in ('image_width', 'image_height', 'camera_matrix')
                   if key not in data]
        if missing:
            raise CalibrationError(f'missing required key(s) {", ".join(missing)}')
        k = _matrix(data, 'camera_matrix', 3, 3)
        model = str(data.get('distortion_model') or 'plumb_bob')
        if 'distortion_coefficients' in data:
            d = _matrix(data, 'distortion_coefficients', None, None)
        else:
            d = [0.0] * DISTORTION_LENGTHS.get(model, 5)
        r = (_matrix(data, 'rectification_matrix', 3, 3) if 'rectification_matrix' in data
             else list(IDENTITY_3X3))
        if 'projection_matrix' in data:
            p = _matrix(data, 'projection_matrix', 3, 4)
        else:
            p = k[0:3] + [0.0] + k[3:6] + [0.0] + k[6:9] + [0.0]
        return CameraCalibration(width=data['image_width'], height=data['image_height'],
                                 camera_name=str(data.get('camera_name') or ''),
                                 distortion_model=model, d=d, k=k, r=r, p=p)
    except CalibrationError as exc:
        raise CalibrationError(f'{origin}: {exc}') from None


def load_calibration(path: str) -> CameraCalibration:
    """Read a calibration YAML file (a leading 'file://' is accepted, like camera_info_url)."""
    if path.startswith('file://'):
        path = path[len('file://'):]
    path = os.path.expanduser(path)
    try:
        with open(path, encoding='utf-8') as stream:
            text = stream.read()
    except OSError as exc:
        raise CalibrationError(f'cannot read calibration file {path!r}: {exc.strerror}') from None
    return parse_calibration(text, origin=path)


def default_calibration(width: int, height: int, camera_name: str = 'camera'
                        ) -> CameraCalibration:
    """Return a plausible uncalibrated pinhole: fx = fy = width, centred, no distortion."""
    _check_size('width', width)
    _check_size('height', height)
    f = float(width)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return CameraCalibration(
        width=width, height=height, camera_name=camera_name, distortion_model='plumb_bob',
        d=[0.0] * 5, k=[f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0], r=list(IDENTITY_3X3),
        p=[f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def scaled(calib: CameraCalibration, width: int, height: int) -> CameraCalibration:
    """Return the calibration for the image resized to width x height.

    Uses the pixel-centre mapping of cv2.resize, c' = (c + 0.5) * s - 0.5, so projections stay
    exact for images produced by `convert_frame`. D and R do not change with scale. A change
    of aspect ratio is applied as is (it is only right if the image was stretched, not cropped).
    """
    _check_size('width', width)
    _check_size('height', height)
    if (width, height) == (calib.width, calib.height):
        return CameraCalibration(calib.width, calib.height, calib.camera_name,
                                 calib.distortion_model, list(calib.d), list(calib.k),
                                 list(calib.r), list(calib.p))
    sx, sy = width / calib.width, height / calib.height
    k, p = list(calib.k), list(calib.p)
    for m, cols in ((k, 3), (p, 4)):
        m[0] *= sx  # fx
        m[1] *= sx  # skew
        m[2] = (m[2] + 0.5) * sx - 0.5  # cx
        m[cols + 1] *= sy  # fy
        m[cols + 2] = (m[cols + 2] + 0.5) * sy - 0.5  # cy
    p[3] *= sx  # Tx = -fx' * baseline
    p[7] *= sy  # Ty
    return CameraCalibration(width, height, calib.camera_name, calib.distortion_model,
                             list(calib.d), k, list(calib.r), p)


def calibration_to_yaml(calib: CameraCalibration) -> str:
    """Serialise in the layout camera_calibration writes."""
    def block(rows: int, cols: int, values: list[float]) -> dict[str, Any]:
        return {'rows': rows, 'cols': cols, 'data': [float(v) for v in values]}

    data = {
        'image_width': calib.width,
        'image_height': calib.height,
        'camera_name': calib.camera_name,
        'camera_matrix': block(3, 3, calib.k),
        'distortion_model': calib.distortion_model,
        'distortion_coefficients': block(1, len(calib.d), calib.d),
        'rectification_matrix': block(3, 3, calib.r),
        'projection_matrix': block(3, 4, calib.p),
    }
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def save_calibration(calib: CameraCalibration, path: str) -> None:
    """Write the calibration YAML to `path` (atomically: temp file then rename)."""
    path = os.path.expanduser(path)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as stream:
        stream.write(calibration_to_yaml(calib))
    os.replace(tmp, path)

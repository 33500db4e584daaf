"""Tests for ros_onnx_vision.camera.calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ros_onnx_vision.camera.calibration import (calibration_to_yaml, CalibrationError,
                                                CameraCalibration, default_calibration,
                                                load_calibration, parse_calibration,
                                                save_calibration, scaled)

# As written by ros2 camera_calibration (cameracalibrator) / camera_info_manager.
ROS_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [610.5, 0., 318.2, 0., 612.25, 241.7, 0., 0., 1.]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.31, 0.12, 0.001, -0.0005, 0.]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1., 0., 0., 0., 1., 0., 0., 0., 1.]
projection_matrix:
  rows: 3
  cols: 4
  data: [560.1, 0., 317.0, 0., 0., 590.3, 240.9, 0., 0., 0., 1., 0.]
"""


def test_parse_ros_file(tmp_path: Path) -> None:
    path = tmp_path / 'cam.yaml'
    path.write_text(ROS_YAML)
    calib = load_calibration(f'file://{path}')
    assert (calib.width, calib.height, calib.camera_name) == (640, 480, 'narrow_stereo')
    assert calib.distortion_model == 'plumb_bob'
    assert calib.k == [610.5, 0.0, 318.2, 0.0, 612.25, 241.7, 0.0, 0.0, 1.0]
    assert calib.d == [-0.31, 0.12, 0.001, -0.0005, 0.0]
    assert calib.r[0] == 1.0 and len(calib.r) == 9
    assert calib.p[0] == 560.1 and len(calib.p) == 12


def test_round_trip(tmp_path: Path) -> None:
    calib = parse_calibration(ROS_YAML)
    path = tmp_path / 'out.yaml'
    save_calibration(calib, str(path))
    assert load_calibration(str(path)) == calib
    assert 'camera_matrix:' in calibration_to_yaml(calib)


def test_optional_keys_default() -> None:
    text = ('image_width: 320\nimage_height: 240\n'
            'camera_matrix: {rows: 3, cols: 3, data: [300, 0, 160, 0, 300, 120, 0, 0, 1]}\n')
    calib = parse_calibration(text)
    assert calib.camera_name == '' and calib.d == [0.0] * 5
    assert calib.r == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert calib.p == [300.0, 0.0, 160.0, 0.0, 0.0, 300.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize('edit, message', [
    (lambda t: t.replace('image_width: 640\n', ''), 'missing required key.*image_width'),
    (lambda t: t.replace('image_height: 480', 'image_height: -4'),
     'image_height: expected a positive integer'),
    (lambda t: t.replace('[610.5, 0., ', '[0., '),
     'camera_matrix: rows x cols = 3x3 but data has 8 values'),
    (lambda t: t.replace('cols: 4', 'cols: 3').replace(
        '[560.1, 0., 317.0, 0., 0., 590.3, 240.9, 0., 0., 0., 1., 0.]',
        '[1, 0, 0, 0, 1, 0, 0, 0, 1]'),
     r'projection_matrix: expected 3x4 \(12 values\), got 3x3 with 9 values'),
    (lambda t: t.replace('cols: 5', 'cols: 4').replace(' -0.0005, 0.]', ' -0.0005]'),
     "model 'plumb_bob' expects 5 values, got 4"),
    (lambda t: t.replace('data: [1., 0., 0.,', 'data: [x, 0., 0.,'),
     'rectification_matrix.data: expected numbers'),
    (lambda t: t.replace('camera_matrix:\n  rows: 3', 'camera_matrix: 3\n  rows: 3'),
     'not valid YAML'),
    (lambda t: '- just\n- a list\n', 'expected a YAML mapping'),
])
def test_validation_errors(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CalibrationError, match=message) as err:
        parse_calibration(edit(ROS_YAML), origin='cam.yaml')
    assert str(err.value).startswith('cam.yaml: ')


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"cannot read calibration file '.*nope\.yaml'"):
        load_calibration(str(tmp_path / 'nope.yaml'))


def test_other_models_accept_any_length() -> None:
    calib = CameraCalibration(10, 10, distortion_model='equidistant', d=[0.1, 0.0, 0.0, 0.0])
    assert len(calib.d) == 4
    with pytest.raises(CalibrationError, match="'rational_polynomial' expects 8"):
        CameraCalibration(10, 10, distortion_model='rational_polynomial', d=[0.0] * 5)
    assert CameraCalibration(10, 10, distortion_model='custom', d=[1.0] * 3).d == [1.0] * 3


def test_default_calibration() -> None:
    calib = default_calibration(640, 480)
    assert calib.k == [640.0, 0.0, 319.5, 0.0, 640.0, 239.5, 0.0, 0.0, 1.0]
    assert calib.p[:3] == [640.0, 0.0, 319.5] and calib.p[5:7] == [640.0, 239.5]
    assert calib.d == [0.0] * 5 and calib.distortion_model == 'plumb_bob'
    assert calib.r == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(CalibrationError, match='width'):
        default_calibration(0, 480)


def project(k: list[float], point: np.ndarray) -> np.ndarray:
    uvw = np.array(k).reshape(3, 3) @ point
    return uvw[:2] / uvw[2]


def test_scaled_matches_resized_pixels() -> None:
    calib = parse_calibration(ROS_YAML)
    half = scaled(calib, 320, 240)
    assert (half.width, half.height) == (320, 240)
    assert half.k[0] == pytest.approx(305.25) and half.k[4] == pytest.approx(306.125)
    assert half.d == calib.d and half.r == calib.r
    # A pixel centre u maps to (u + 0.5) * s - 0.5 under cv2.resize.
    point = np.array([0.3, -0.2, 2.0])
    u, v = project(calib.k, point)
    u2, v2 = project(half.k, point)
    assert u2 == pytest.approx((u + 0.5) * 0.5 - 0.5)
    assert v2 == pytest.approx((v + 0.5) * 0.5 - 0.5)
    stretched = scaled(calib, 1280, 480)
    assert stretched.p[0] == pytest.approx(1120.2) and stretched.p[5] == pytest.approx(590.3)
    assert scaled(calib, 640, 480) == calib
    assert default_calibration(640, 480).k[2] == pytest.approx(
        scaled(default_calibration(1280, 960), 640, 480).k[2])

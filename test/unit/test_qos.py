"""ros.qos and the best_available rule, without DDS: what each setting requests."""

from __future__ import annotations

import pytest
from rclpy.qos import ReliabilityPolicy

from ros_onnx_vision.ros import qos as qos_module
from ros_onnx_vision.ros.parameters import (CameraParameters, InferenceParameters,
                                            parameter_specs, SmoothingParameters)
from ros_onnx_vision.ros.qos import has_best_available, qos, reliability_for


class Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)


def test_subscriptions_default_to_best_available_and_can_force_either():
    def reliability(parameters):
        return next(s for s in parameter_specs(parameters) if s.name == 'reliability')

    for parameters in (InferenceParameters, SmoothingParameters):
        spec = reliability(parameters)
        assert spec.default == 'best_available'
        assert spec.choices == ('best_available', 'best_effort', 'reliable')
    assert reliability(CameraParameters).default == 'best_effort'  # a publisher
    assert qos('best_effort', 1).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos('reliable', 10).reliability == ReliabilityPolicy.RELIABLE
    assert qos('reliable', 10).depth == 10


def test_best_available_where_the_distro_has_it():
    assert has_best_available()  # Jazzy (the development venv); Humble has not
    assert qos('best_available', 1).reliability == ReliabilityPolicy.BEST_AVAILABLE


def test_humble_falls_back_to_best_effort_and_says_so_once(monkeypatch):
    monkeypatch.setattr(qos_module, 'has_best_available', lambda: False)
    monkeypatch.setattr(qos_module, '_fallback_logged', False)
    logger = Logger()
    assert qos('best_available', 1, logger).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos('best_available', 1, logger).reliability == ReliabilityPolicy.BEST_EFFORT
    assert len(logger.lines) == 1 and 'no BEST_AVAILABLE' in logger.lines[0]
    assert 'reliability:=reliable' in logger.lines[0]


@pytest.mark.parametrize('offered, chosen', [
    ([], None),  # no publisher: keep what is there (best effort hears any camera)
    (['reliable'], 'reliable'),  # usb_cam's default: repaired fragments, no lost frames
    (['best_effort'], 'best_effort'),  # a simulator camera: reliable would hear nothing
    (['reliable', 'best_effort'], 'best_effort'),  # the one that hears both
])
def test_best_available_follows_the_publishers(offered, chosen):
    assert reliability_for(offered) == chosen

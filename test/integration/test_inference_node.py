"""inference_node in-process: lifecycle transitions own the session; bad images are refused."""

from __future__ import annotations

import array

import numpy as np
import pytest
import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from ros_onnx_vision.ros.image_conversion import ImageConversionError, numpy_to_image
from ros_onnx_vision.ros.inference_node import InferenceNode, to_engine_image


@pytest.fixture
def rclpy_context(ros_domain):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    yield context
    rclpy.try_shutdown(context=context)


def test_lifecycle_creates_and_releases_the_session(rclpy_context):
    node = InferenceNode(context=rclpy_context, parameter_overrides=[
        Parameter('autostart', value=False), Parameter('model', value='mnist_digits_cnn.yaml')])
    try:
        assert node.engine is None  # nothing heavy before configure
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.engine is not None and node.engine.card.task == 'classification'
        assert node.engine.card.score_threshold == 0.5  # the card's default
        # Threshold, top-k and region are live: applied between frames, over the card's values.
        assert node.set_parameters([Parameter('score_threshold', value=0.8),
                                    Parameter('top_k', value=2)])[0].successful
        assert (node.engine.card.score_threshold, node.engine.card.top_k) == (0.8, 2)
        node.set_parameters([Parameter('score_threshold', value=-1.0)])
        assert node.engine.card.score_threshold == 0.5
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.engine is None
    finally:
        node.destroy_node()


def test_configure_fails_cleanly_on_a_non_onnx_model(rclpy_context, tmp_path):
    card = tmp_path / 'card.yaml'
    fake = tmp_path / 'model.onnx'
    fake.write_bytes(b'this is not an ONNX file')
    card.write_text('name: fake\ntask: classification\nfile: model.onnx\n'
                    'input: {name: x, layout: NCHW, width: 28, height: 28, dtype: float32, '
                    'color_order: GRAY}\ndecoder: {type: classification}\n')
    node = InferenceNode(context=rclpy_context, parameter_overrides=[
        Parameter('autostart', value=False), Parameter('model', value=str(card))])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.engine is None
    finally:
        node.destroy_node()


def test_images_the_engine_cannot_take_are_refused_clearly():
    mono16 = numpy_to_image(np.zeros((4, 4), np.uint16), 'mono16')
    with pytest.raises(ImageConversionError, match="'mono16'.*expected one of bgr8"):
        to_engine_image(mono16, 1000)
    big = numpy_to_image(np.zeros((40, 50, 3), np.uint8), 'bgr8')
    with pytest.raises(ImageConversionError, match='2000 pixels exceeds max_image_pixels 1000'):
        to_engine_image(big, 1000)
    short = Image(height=4, width=4, encoding='bgr8', step=12)
    short.data = array.array('B', bytes(40))
    with pytest.raises(ImageConversionError, match='40 bytes'):
        to_engine_image(short, 1000)
    image, order = to_engine_image(numpy_to_image(np.zeros((2, 2, 4), np.uint8), 'rgba8'), 1000)
    assert order == 'RGB' and image.shape == (2, 2, 3)

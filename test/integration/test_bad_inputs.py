"""Bad inputs through the real node processes: each one gives a clear error, the node keeps
running where that makes sense, and nothing already confirmed is lost.

- models: a card or model the inference_node cannot use ends the process with status 1 and a
  one-line error naming the problem (no traceback);
- images: frames the inference_node cannot take are logged and dropped; the next good frame is
  processed;
- parameters: out-of-range values and unknown choices stop every node at start with the reason,
  and a bad runtime `set_parameters` is refused with the reason;
- timing: smoothing_node ignores (and counts) backward and duplicate stamps without losing a
  confirmed label, and recovers from a stamp far in the future.

Processes that only fail at start are started together by module fixtures, to keep this file
quick.
"""

from __future__ import annotations

from collections.abc import Iterator
import itertools
import os
from pathlib import Path
import re
import subprocess
import time
from typing import Any

import numpy as np
import onnx
from onnx import helper, TensorProto
import pytest
import yaml

from tools.demo.graph_runner import node_environment

from conftest import reliability_settled, REPO, RosProbe
from tools.demo.graph_runner import start_node

MODELS = REPO / 'models'
MNIST = MODELS / 'mnist_digits_cnn.onnx'
START_TIMEOUT = 90.0  # generous: several node processes start at once on a small machine

_domains = itertools.count(60)


def own_domain() -> int:
    """A domain for a module fixture (the conftest fixture is per test)."""
    return 1 + (os.getpid() * 13 + next(_domains)) % 100


def mnist_card(tmp: Path, name: str, **changes: Any) -> Path:
    """The shipped digit card with absolute paths, changed (None removes a key), written to
    `tmp`/`name`.yaml.
    """
    card = yaml.safe_load((MODELS / 'mnist_digits_cnn.yaml').read_text())
    card['file'] = str(MODELS / card['file'])
    card['labels'] = str(MODELS / card['labels'])
    for key, value in changes.items():
        if '.' in key:
            section, sub = key.split('.')
            card[section][sub] = value
        elif value is None:
            card.pop(key, None)
        else:
            card[key] = value
    path = tmp / f'{name}.yaml'
    path.write_text(yaml.safe_dump(card))
    return path


def tiny_classifier(path: Path, shape: list[int], elem_type: int) -> Path:
    """A valid 10-class ONNX model with the given input shape and type (flatten, matmul)."""
    features = int(np.prod(shape[1:]))
    nodes = [helper.make_node('Cast', ['input'], ['xf'], to=TensorProto.FLOAT),
             helper.make_node('Flatten', ['xf'], ['flat'], axis=1),
             helper.make_node('MatMul', ['flat', 'w'], ['logits'])]
    weights = helper.make_tensor('w', TensorProto.FLOAT, [features, 10],
                                 np.zeros(features * 10, np.float32).tolist())
    graph = helper.make_graph(
        nodes, 'tiny', [helper.make_tensor_value_info('input', elem_type, shape)],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [shape[0], 10])],
        initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# --- models ------------------------------------------------------------------------------------

# case: text the one error line must contain
BAD_MODELS = {
    'missing_file': 'expected an existing ONNX file (no file at',
    'not_onnx': 'is not ONNX: starts with',
    'truncated': 'truncated or corrupt file',
    'truncated_hash_pinned': 'sha256 mismatch',
    'input_size': 'input.width is 32 but the model input',
    'input_rank': 'expected rank 4 (NCHW)',
    'input_dtype': 'input.dtype float32 means',
    'label_count': 'has 9 labels but the model outputs 10 classes',
    # Loads, fits its card, and runs wrong here: the self-check names card, provider and CPU.
    'runs_blind_here': 'SelfCheckError: self-check failed: centernet_mobilenetv3_512 on '
                       'CPUExecutionProvider',
}


def _bad_model_cards(tmp: Path) -> dict[str, Path]:
    """case -> card path (the cases of BAD_MODELS)."""
    not_onnx = tmp / 'not_onnx.onnx'
    not_onnx.write_text('<html>404 Not Found</html>\n')
    cut = tmp / 'cut.onnx'
    cut.write_bytes(MNIST.read_bytes()[:MNIST.stat().st_size // 2])
    rank2 = tiny_classifier(tmp / 'rank2.onnx', [1, 784], TensorProto.FLOAT)
    as_uint8 = tiny_classifier(tmp / 'uint8.onnx', [1, 1, 28, 28], TensorProto.UINT8)
    labels = tmp / 'nine_labels.txt'
    labels.write_text(''.join(f'{i}\n' for i in range(9)))
    unhashed = {'sha256': None}
    return {
        'missing_file': mnist_card(tmp, 'missing', file=str(tmp / 'gone.onnx'), **unhashed),
        'not_onnx': mnist_card(tmp, 'not_onnx', file=str(not_onnx), **unhashed),
        'truncated': mnist_card(tmp, 'truncated', file=str(cut), **unhashed),
        'truncated_hash_pinned': mnist_card(tmp, 'pinned', file=str(cut)),
        'input_size': mnist_card(tmp, 'size', **{'input.width': 32}),
        'input_rank': mnist_card(tmp, 'rank', file=str(rank2), outputs=None, **unhashed),
        'input_dtype': mnist_card(tmp, 'dtype', file=str(as_uint8), outputs=None, **unhashed),
        'label_count': mnist_card(tmp, 'labels', labels=str(labels)),
        'runs_blind_here': blind_centernet_card(tmp),
    }


def blind_centernet_card(tmp: Path) -> Path:
    """The default detector fed 0-1 instead of the raw 0-255 pixels it takes: no error, and
    it sees nobody."""
    card = yaml.safe_load((MODELS / 'centernet_mobilenetv3_512.yaml').read_text())
    card.update(file=str(MODELS / card['file']), labels=str(MODELS / card['labels']))
    card['input']['scale'] = 1 / 255
    path = tmp / 'blind.yaml'
    path.write_text(yaml.safe_dump(card))
    return path


@pytest.fixture(scope='module')
def start_failures(tmp_path_factory) -> Iterator[dict[str, tuple[subprocess.Popen, Path]]]:
    """Every process expected to fail at start (bad models, bad parameters), started at once:
    case -> (process, log).
    """
    tmp = tmp_path_factory.mktemp('start_failures')
    runs = {}
    for case, card in _bad_model_cards(tmp).items():
        log = tmp / f'{case}.log'
        runs[case] = (start_node('inference_node', node_environment(own_domain()),
                                 parameters={'model': str(card)}, log_file=log), log)
    for case, (executable, parameters, _, _) in BAD_PARAMETERS.items():
        log = tmp / f'{case}.log'
        runs[case] = (start_node(executable, node_environment(own_domain()),
                                 parameters=parameters, log_file=log), log)
    yield runs
    for process, _ in runs.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize('case', list(BAD_MODELS))
def test_bad_model_exits_with_one_clear_line(start_failures, case):
    process, log_path = start_failures[case]
    expected = BAD_MODELS[case]
    code = process.wait(START_TIMEOUT)
    log = log_path.read_text()
    assert code == 1, log
    assert 'Traceback' not in log, log
    # One line says what is wrong: the failed transition, with the problem named in it.
    lines = [line for line in log.splitlines() if 'configure failed' in line]
    assert len(lines) == 1 and expected in lines[0], log
    assert 'autostart failed' in log, log


# --- parameters at start -----------------------------------------------------------------------

RANGE = r'out of range\.? Min: .*, Max: .*|below the minimum|above the maximum'
CHOICE = r'is not one of'
# case: (executable, overrides, parameter named in the error, reason pattern). Ranges are
# checked by rclpy against the declared descriptor ("out of range Min/Max"), choices by
# ParameterSpec.check ("is not one of ...").
BAD_PARAMETERS = {
    'smoothing_window_negative': ('smoothing_node', {'window': -1.0}, 'window', RANGE),
    'smoothing_task_unknown': ('smoothing_node', {'task': 'tracking'}, 'task',
                               CHOICE + ' detection, classification'),
    'smoothing_timeout_zero': ('smoothing_node', {'timeout': 0.0}, 'timeout', RANGE),
    'camera_encoding_unknown': ('camera_node', {'encoding': 'yuv9'}, 'encoding',
                                CHOICE + ' bgr8, rgb8, mono8'),
    'camera_fps_negative': ('camera_node', {'fps': -5.0}, 'fps', RANGE),
    'camera_depth_zero': ('camera_node', {'depth': 0}, 'depth', RANGE),
    'inference_optimization_unknown': ('inference_node', {'graph_optimization': 'turbo'},
                                       'graph_optimization', CHOICE),
    'inference_score_above_one': ('inference_node', {'score_threshold': 2.0},
                                  'score_threshold', RANGE),
    'inference_max_pixels_zero': ('inference_node', {'max_image_pixels': 0},
                                  'max_image_pixels', RANGE),
}


@pytest.mark.parametrize('case', list(BAD_PARAMETERS))
def test_bad_parameter_is_refused_at_start(start_failures, case):
    process, log_path = start_failures[case]
    _, parameters, name, reason = BAD_PARAMETERS[case]
    code = process.wait(START_TIMEOUT)
    log = log_path.read_text()
    assert code == 1, log
    assert 'Traceback' not in log, log
    # One fatal line names the parameter, the value and why it is refused.
    value = repr(next(iter(parameters.values())))
    assert any('[FATAL]' in line and name in line and value.strip("'") in line and
               re.search(reason, line) for line in log.splitlines()), log


def _set_parameter(probe: RosProbe, node: str, name: str, value: Any):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    client = probe.node.create_client(SetParameters, f'/{node}/set_parameters')
    try:
        assert probe.spin_until(client.service_is_ready, 20), f'no {node}/set_parameters'
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        future = client.call_async(request)
        assert probe.spin_until(future.done, 10), 'set_parameters did not answer'
        return future.result().results[0]
    finally:
        probe.node.destroy_client(client)


def test_bad_runtime_parameter_is_refused_with_the_reason(ros_probe, node_env, tmp_path):
    log = tmp_path / 'smoothing.log'
    process = start_node('smoothing_node', node_env, parameters={'task': 'classification'},
                         log_file=log)
    try:
        refused = _set_parameter(ros_probe, 'smoothing_node', 'min_score', 1.5)
        assert not refused.successful
        assert 'min_score' in refused.reason, refused.reason
        wrong_type = _set_parameter(ros_probe, 'smoothing_node', 'min_score', 'high')
        assert not wrong_type.successful and wrong_type.reason, wrong_type
        read_only = _set_parameter(ros_probe, 'smoothing_node', 'task', 'detection')
        assert not read_only.successful and read_only.reason, read_only
        accepted = _set_parameter(ros_probe, 'smoothing_node', 'min_score', 0.25)
        assert accepted.successful, accepted.reason
        assert process.poll() is None, log.read_text()
    finally:
        process.terminate()
        assert process.wait(10) == 0, log.read_text()


# --- images --------------------------------------------------------------------------------------

class ImageRig:
    """A running digit inference_node (max_image_pixels 10000) and a probe that feeds it."""

    MAX_PIXELS = 10_000
    THROTTLE_S = 2.2  # the node logs frame errors at most every 2 s (throttle)

    def __init__(self, tmp: Path) -> None:
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Classification
        domain = own_domain()
        self.probe = RosProbe(domain)
        self.log = tmp / 'inference.log'
        self.results = self.probe.subscribe(Classification, 'classification',
                                            QoSProfile(depth=50))
        self.publisher = self.probe.node.create_publisher(Image, 'image_raw', 10)
        self.process = start_node(
            'inference_node', node_environment(domain),
            parameters={'model': 'mnist_digits_cnn.yaml', 'max_image_pixels': self.MAX_PIXELS},
            log_file=self.log)
        self.last_bad = 0.0
        self.stamp = itertools.count(1)
        ready = self.probe.spin_until(
            lambda: self.publisher.get_subscription_count() > 0 and
            self.probe.node.count_publishers('classification') > 0 or
            self.process.poll() is not None, START_TIMEOUT)
        assert ready and self.process.poll() is None, self.log.read_text()
        # Bad frames are sent once each: the reliability must be final, and a good frame must
        # have come back (both ends matched).
        settled = self.probe.spin_until(lambda: reliability_settled(self.log_text()),
                                        START_TIMEOUT)
        assert settled, self.log_text()
        assert any(self.good_image_processed(timeout=2.0) for _ in range(5)), self.log_text()

    def log_text(self) -> str:
        return self.log.read_text(errors='replace')


    def send(self, msg) -> int:
        """Publish with a fresh stamp (seconds); return the stamp."""
        sec = next(self.stamp)
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 0
        msg.header.frame_id = 'rig'
        self.publisher.publish(msg)
        return sec

    def good_image_processed(self, timeout: float = 10.0) -> bool:
        from ros_onnx_vision.ros.image_conversion import numpy_to_image
        image = np.full((60, 80, 3), 210, np.uint8)
        sec = self.send(numpy_to_image(image, 'bgr8'))
        return self.probe.spin_until(
            lambda: any(m.header.stamp.sec == sec for _, m in self.results), timeout)

    def send_bad(self, msg) -> None:
        wait = self.last_bad + self.THROTTLE_S - time.monotonic()
        if wait > 0:
            self.probe.spin_for(wait)
        self.send(msg)
        self.last_bad = time.monotonic()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        finally:
            self.probe.close()


@pytest.fixture(scope='module')
def image_rig(tmp_path_factory) -> Iterator[ImageRig]:
    rig = ImageRig(tmp_path_factory.mktemp('images'))
    yield rig
    rig.close()


def _image(width: int, height: int, encoding: str, step: int, data_size: int):
    from sensor_msgs.msg import Image
    msg = Image(width=width, height=height, encoding=encoding, step=step)
    msg.data = bytes(data_size)
    return msg


BAD_IMAGES = {
    # case: (width, height, encoding, step, data bytes, logged error)
    'unsupported_encoding': (8, 8, '32FC1', 32, 256,
                             "unsupported image encoding '32FC1' for inference"),
    'zero_width': (0, 8, 'bgr8', 0, 0, 'image has zero size (0x8)'),
    'zero_height': (8, 0, 'bgr8', 24, 0, 'image has zero size (8x0)'),
    'data_too_short': (8, 8, 'bgr8', 24, 100,
                       'image data has 100 bytes; expected height x step = 8 x 24 = 192'),
    'data_too_long': (8, 8, 'bgr8', 24, 500,
                      'image data has 500 bytes; expected height x step = 8 x 24 = 192'),
    'step_below_row': (8, 8, 'bgr8', 10, 80, 'image step 10 is smaller than one row'),
    'absurd_dimensions': (100_000, 100_000, 'bgr8', 300_000, 16,
                          '100000x100000 = 10000000000 pixels exceeds max_image_pixels 10000'),
    'above_max_image_pixels': (200, 100, 'mono8', 200, 20_000,
                               '200x100 = 20000 pixels exceeds max_image_pixels 10000'),
}


@pytest.mark.parametrize('case', list(BAD_IMAGES))
def test_bad_image_is_logged_and_the_node_goes_on(image_rig, case):
    width, height, encoding, step, size, expected = BAD_IMAGES[case]
    rig = image_rig
    before = len(rig.results)
    rig.send_bad(_image(width, height, encoding, step, size))
    assert rig.probe.spin_until(lambda: expected in rig.log_text(), 10), rig.log_text()
    line = next(line for line in rig.log_text().splitlines() if expected in line)
    assert '[ERROR]' in line and 'dropped' in line, line
    assert 'Traceback' not in rig.log_text()
    assert rig.process.poll() is None, rig.log_text()
    assert len(rig.results) == before, 'a result was published for a bad frame'
    assert rig.good_image_processed(), f'no result for a good frame after {case}'


# --- timing --------------------------------------------------------------------------------------

def test_stamps_backwards_duplicated_and_far_in_the_future(ros_probe, node_env, tmp_path):
    """Backward and duplicate stamps are ignored and counted: a confirmed label survives more of
    them than M (= N = 5 at 10 Hz) disagreeing frames would allow. A stamp 1e6 s ahead is a gap
    longer than the timeout: everything is released. The next stamp on the real clock is then
    a backward jump larger than the rate window, taken as a clock restart (history cleared,
    counted in `resets`), and the label is confirmed again after N frames on that clock.
    """
    from test_smoothing_node import classification, send_and_collect, start_smoothing
    publisher, out, process = start_smoothing(ros_probe, node_env, tmp_path, 'classification')
    log = tmp_path / 'smoothing.log'
    try:
        fps, n, t0 = 10.0, 5, 500.0
        stamps = [t0 + i / fps for i in range(10)]
        answers = send_and_collect(ros_probe, publisher, out,
                                   [classification(t, '3') for t in stamps])
        labels = [a.results[0].class_id if a.results else None for a in answers]
        assert labels == [None] * (n - 1) + ['3'] * 6, labels
        last = stamps[-1]
        # 3 backward (within the rate window) and 3 duplicated stamps, all with no result:
        # 6 > M misses, so the label would be released if they counted.
        odd = [last - 0.05, last - 0.15, last - 0.25, last, last, last]
        answers = send_and_collect(ros_probe, publisher, out,
                                   [classification(t, None) for t in odd])
        assert all(a.results and a.results[0].class_id == '3' for a in answers), answers
        # Their answers keep their own (odd) headers.
        assert [a.header.stamp.nanosec for a in answers[:1]] == \
            [classification(odd[0], None).header.stamp.nanosec]
        answers = send_and_collect(ros_probe, publisher, out,
                                   [classification(last + 0.1, '3')])
        assert answers[0].results[0].class_id == '3'
        # Far in the future: a gap > timeout releases everything (published empty).
        future = last + 1e6
        answers = send_and_collect(ros_probe, publisher, out, [classification(future, '3')])
        assert not answers[0].results
        assert ros_probe.spin_until(lambda: 'backwards=3 duplicates=3 resets=0' in
                                    log.read_text(), 5), log.read_text()
        # Back on the real clock: a clock restart, then confirmation after N frames again.
        resumed = [last + 0.2 + i / fps for i in range(n + 2)]
        answers = send_and_collect(ros_probe, publisher, out,
                                   [classification(t, '3') for t in resumed])
        labels = [a.results[0].class_id if a.results else None for a in answers]
        assert labels == [None] * (n - 1) + ['3'] * 3, labels
        assert ros_probe.spin_until(lambda: re.search(
            r'label=3 .*backwards=4 duplicates=3 resets=1', log.read_text()) is not None, 5), \
            log.read_text()
        assert process.poll() is None
    finally:
        process.terminate()
        assert process.wait(10) == 0, log.read_text()


def test_accepted_runtime_min_score_takes_effect(ros_probe, node_env, tmp_path):
    from test_smoothing_node import classification, send_and_collect, start_smoothing
    publisher, out, process = start_smoothing(ros_probe, node_env, tmp_path, 'classification')
    try:
        assert _set_parameter(ros_probe, 'smoothing_node', 'min_score', 0.95).successful
        # Scores 0.9 are below the new min_score: no result, nothing may be confirmed.
        answers = send_and_collect(ros_probe, publisher, out,
                                   [classification(700.0 + i / 10.0, '3') for i in range(8)])
        assert not any(a.results for a in answers), [a.results for a in answers]
    finally:
        process.terminate()
        process.wait(10)

"""Diagnostics: the pure rules of `diagnostics`, and /diagnostics from the three node processes."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import pytest
import yaml

from ros_onnx_vision.ros.diagnostics import (CameraMonitor, CameraSnapshot, CounterRate, ERROR,
                                             InferenceMonitor, InferenceSnapshot, OK,
                                             qos_mismatch_message, QosMismatch, SmoothingMonitor,
                                             SmoothingSnapshot, WARN)
from ros_onnx_vision.ros.graph import pipeline

from conftest import node_logs, REPO
from tools.demo.graph_runner import GraphProcesses, start_node

MODELS = REPO / 'models'


# --- pure rules ----------------------------------------------------------------------------
def test_counter_rate_over_a_window_and_after_a_reset():
    rate = CounterRate(window_s=5.0)
    assert rate.update(0.0, 0) is None  # one snapshot spans no time
    for t in range(1, 11):
        measured = rate.update(float(t), 10 * t)
    assert measured == pytest.approx(10.0)
    assert len(rate._samples) <= 7  # old snapshots are dropped
    assert rate.update(11.0, 3) is None  # the counter restarted (e.g. re-activation)
    assert rate.update(12.0, 8) == pytest.approx(5.0)


def test_qos_mismatch_message_names_both_sides_and_the_fix():
    text = qos_mismatch_message('image_raw', 'RELIABILITY', {'RELIABILITY': 'reliable'},
                                {'RELIABILITY': 'reliability'})
    assert text == ('image_raw: a publisher offers best_effort but this subscription requests '
                    'reliable (policy RELIABILITY); no data will flow. '
                    'Set reliability:=best_effort')
    durability = qos_mismatch_message('detections', 'DURABILITY',
                                      {'DURABILITY': 'transient_local'})
    assert 'offers volatile but this subscription requests transient_local' in durability
    assert 'Set' not in durability
    other = qos_mismatch_message('detections', 'DEADLINE', {})
    assert 'incompatible' in other and 'DEADLINE' in other


def camera(state='publishing', published=0, target=10.0, **kw) -> CameraSnapshot:
    fields = dict(state=state, source='synthetic 320x240', target_hz=target,
                  published=published, skipped=0, publish_cost_ms=0.4, retries=0,
                  reconnects=0)
    fields.update(kw)
    return CameraSnapshot(**fields)


def test_camera_ok_at_the_target_rate():
    monitor = CameraMonitor('camera_node')
    for t in range(12):
        status = monitor.report(float(t), camera(published=10 * t))
    assert (status.level, status.name) == (OK, 'camera_node: camera')
    assert status.message == 'publishing at 10.00 Hz'
    assert status.values['achieved rate (Hz)'] == '10.00'
    assert status.values['target rate (Hz)'] == '10'
    assert status.hardware_id == 'synthetic 320x240'


def test_camera_warns_when_slow_for_a_while_only():
    monitor = CameraMonitor('camera_node', low_after_s=5.0)
    levels = [monitor.report(float(t), camera(published=8 * t)).level for t in range(9)]
    # 80% of the target: tolerated for 5 s, then WARN
    assert levels == [OK] * 6 + [WARN] * 3, levels
    status = monitor.report(9.0, camera(published=72))
    assert 'below 90% of the target 10 Hz' in status.message
    # back to the target rate: OK again once the window holds only fast frames
    for t in range(10, 20):
        status = monitor.report(float(t), camera(published=72 + 10 * (t - 9)))
    assert status.level == OK
    # a source that paces itself (target 0) is never too slow
    own = CameraMonitor('camera_node')
    assert all(own.report(float(t), camera(published=t, target=0.0)).level == OK
               for t in range(10))


def test_camera_reconnecting_warns_and_failure_is_an_error():
    monitor = CameraMonitor('camera_node')
    status = monitor.report(0.0, camera('reconnecting', retries=3, error='stream dropped'))
    assert status.level == WARN and 'reconnecting (retry 3): stream dropped' in status.message
    status = monitor.report(1.0, camera('failed', error='no such device'))
    assert status.level == ERROR and 'failed for good: no such device' in status.message
    assert monitor.report(2.0, camera('waiting for subscribers')).level == OK


def inference(**kw) -> InferenceSnapshot:
    fields = dict(state='active', model='nanodet_m_416', input_topic='image_raw', received=0,
                  processed=0, skipped=0, errors=0, stages_ms={'inference (session run)': 30.0},
                  provider='CPUExecutionProvider', fallback='', idle_s=0.05, latency_ms=40.0,
                  mean_latency_ms=41.0)
    fields.update(kw)
    return InferenceSnapshot(**fields)


def test_inference_ok_with_rates_provider_and_latency():
    monitor = InferenceMonitor('inference_node')
    monitor.report(0.0, inference())
    status = monitor.report(1.0, inference(received=10, processed=9, skipped=1))
    assert (status.level, status.name) == (OK, 'inference_node: inference')
    assert status.message == '9.00 Hz on CPUExecutionProvider'
    values = status.values
    assert (values['input rate (Hz)'], values['output rate (Hz)']) == ('10.00', '9.00')
    assert values['frames skipped (newest-frame policy)'] == '1'
    assert values['mean inference (session run) time (ms)'] == '30.00'
    assert values['active execution provider'] == 'CPUExecutionProvider'
    assert values['end-to-end latency (ms)'] == '40.00'
    assert values['lifecycle state'] == 'active'


def test_inference_warns_on_no_input_fallback_errors_and_qos():
    monitor = InferenceMonitor('inference_node')
    status = monitor.report(0.0, inference(idle_s=3.04))
    assert status.level == WARN and status.message == 'no input on image_raw for 3.0 s'
    # not while inactive: then nothing is expected
    assert monitor.report(1.0, inference(state='inactive', idle_s=9.0)).level == OK
    status = monitor.report(2.0, inference(fallback='CUDAExecutionProvider not used: no lib'))
    assert status.level == WARN and 'fell back: CUDAExecutionProvider not used' in status.message
    status = monitor.report(3.0, inference(errors=2))
    assert status.level == WARN and status.message == '2 frame errors in the last 1.0 s'
    assert monitor.report(4.0, inference(errors=2)).level == OK  # none new in this period
    qos = QosMismatch()
    qos.record('image_raw: a publisher offers best_effort ...', total=1)
    status = monitor.report(5.0, inference(qos=qos))
    assert status.level == WARN and 'offers best_effort' in status.message
    assert status.values['incompatible QoS events'] == '1'


def test_inference_error_when_configure_failed_and_the_self_check_line_otherwise():
    monitor = InferenceMonitor('inference_node')
    failed = ('configure failed: SelfCheckError: self-check failed: centernet on '
              'CPUExecutionProvider: found 0 of the 7 reference people')
    status = monitor.report(0.0, inference(state='unconfigured', provider='',
                                           configure_error=failed))
    assert status.level == ERROR and status.message == failed
    status = monitor.report(1.0, inference(self_check='found 7 of the 7 reference people'))
    assert status.level == OK
    assert status.values['self-check'] == 'found 7 of the 7 reference people'


def smoothing(**kw) -> SmoothingSnapshot:
    fields = dict(task='detection', input_topic='detections', received=0, fps=10.0, n=5, m=5,
                  confirmed=['1'], backwards=0, duplicates=2, resets=0, idle_s=0.1,
                  timeout_s=1.0)
    fields.update(kw)
    return SmoothingSnapshot(**fields)


def test_smoothing_reports_n_and_warns_on_stale_input():
    monitor = SmoothingMonitor('smoothing_node')
    monitor.report(0.0, smoothing())
    status = monitor.report(2.0, smoothing(received=20))
    assert (status.level, status.name) == (OK, 'smoothing_node: smoothing')
    assert status.message == 'N=5 at 10.00 FPS, confirmed tracks: 1'
    assert status.values['input rate (Hz)'] == '10.00'
    assert status.values['N (frames to confirm)'] == '5'
    assert status.values['duplicate stamps'] == '2'
    status = monitor.report(3.0, smoothing(idle_s=1.5))
    assert status.level == WARN and status.message.startswith('stale input')
    status = monitor.report(4.0, smoothing(fps=None, n=None, m=None, confirmed=[]))
    assert status.level == OK and status.values['N (frames to confirm)'] == '-'


# --- the node processes --------------------------------------------------------------------
def latest_statuses(received) -> dict[str, DiagnosticStatus]:
    latest: dict[str, DiagnosticStatus] = {}
    for _, array in received:
        for status in array.status:
            latest[status.name] = status
    return latest


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_every_node_reports_on_diagnostics(ros_probe, node_env, tmp_path):
    received = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 50)
    seen: dict[str, DiagnosticStatus] = {}

    def healthy() -> bool:
        seen.update(latest_statuses(received[-10:]))
        camera = seen.get('camera_node: camera')
        infer = seen.get('inference_node: inference')
        smooth = seen.get('smoothing_node: smoothing')
        # (N from two intervals or more: from the first one alone it may be held back.)
        return (camera is not None and float(values(camera)['achieved rate (Hz)']) > 0
                and infer is not None and float(values(infer)['output rate (Hz)']) > 0
                and smooth is not None and values(smooth)['N (frames to confirm)'] != '-'
                and int(values(smooth)['inputs received']) >= 3)

    parameters = {'camera_node': {'source': 'synthetic:320x240', 'fps': 10.0}}
    with GraphProcesses(pipeline('human_detection'), node_env, parameters=parameters,
                        log_dir=tmp_path) as nodes:
        ok = ros_probe.spin_until(lambda: healthy() or bool(nodes.exited()), 30)
        exited = nodes.exited()
    names = ('camera_node', 'inference_node', 'smoothing_node')
    assert ok and not exited, f'{exited}; statuses {list(seen)}\n{node_logs(tmp_path, *names)}'
    camera = values(seen['camera_node: camera'])
    assert camera['target rate (Hz)'] == '10' and camera['state'] == 'publishing'
    assert 5.0 < float(camera['achieved rate (Hz)']) < 15.0
    infer = seen['inference_node: inference']
    assert values(infer)['active execution provider'] == 'CPUExecutionProvider'
    assert values(infer)['lifecycle state'] == 'active'
    assert float(values(infer)['input rate (Hz)']) > 0
    assert float(values(infer)['mean inference (session run) time (ms)']) > 0
    assert float(values(infer)['end-to-end latency (ms)']) > 0
    # The results' rate (inference may skip frames on a loaded machine) gives N = FPS x 0.5 s
    smooth = values(seen['smoothing_node: smoothing'])
    fps = float(smooth['FPS estimate (stamps)'])
    assert smooth['task'] == 'detection' and 0 < fps < 12.0
    assert abs(int(smooth['N (frames to confirm)']) - max(1.0, fps * 0.5)) <= 0.51, smooth


def test_incompatible_qos_is_logged_and_reported(ros_probe, node_env, tmp_path):
    received = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 50)
    expected = ('image_raw: a publisher offers best_effort but this subscription requests '
                'reliable (policy RELIABILITY); no data will flow. Set reliability:=best_effort')
    inference_node = start_node(
        'inference_node', node_env, log_file=tmp_path / 'inference_node.log',
        parameters={'model': 'mnist_digits_cnn.yaml', 'reliability': 'reliable'})
    camera_node = start_node('camera_node', node_env, log_file=tmp_path / 'camera_node.log',
                             parameters={'source': 'synthetic:160x120', 'fps': 10.0})

    def reported() -> DiagnosticStatus | None:
        status = latest_statuses(received).get('inference_node: inference')
        return status if status is not None and expected in status.message else None

    try:
        ros_probe.spin_until(lambda: reported() is not None or inference_node.poll() is not None,
                             25)
    finally:
        for process in (camera_node, inference_node):
            process.terminate()
            process.wait(10)
    log = (tmp_path / 'inference_node.log').read_text()
    status = reported()
    assert status is not None, node_logs(tmp_path, 'inference_node', 'camera_node')
    assert status.level == DiagnosticStatus.WARN
    assert int(values(status)['incompatible QoS events']) >= 1
    assert values(status)['frames received'] == '0'  # no data flowed
    assert expected in log, log


def test_a_model_that_runs_blind_here_is_an_error_on_diagnostics(ros_probe, node_env, tmp_path):
    """The self-check fails configure: the node says ERROR on /diagnostics, then exits 1."""
    received = ros_probe.subscribe(DiagnosticArray, '/diagnostics', 50)
    card = yaml.safe_load((MODELS / 'centernet_mobilenetv3_512.yaml').read_text())
    card.update(file=str(MODELS / card['file']), labels=str(MODELS / card['labels']))
    card['input']['scale'] = 1 / 255  # it takes raw 0-255 pixels: blind, with no error
    (tmp_path / 'blind.yaml').write_text(yaml.safe_dump(card))
    node = start_node('inference_node', node_env, log_file=tmp_path / 'inference_node.log',
                      parameters={'model': str(tmp_path / 'blind.yaml')})

    def error() -> DiagnosticStatus | None:
        status = latest_statuses(received).get('inference_node: inference')
        return status if status is not None and status.level == DiagnosticStatus.ERROR \
            else None

    try:
        ros_probe.spin_until(lambda: error() is not None, 60)
        code = node.wait(30)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    log = (tmp_path / 'inference_node.log').read_text()
    status = error()
    assert code == 1, log
    assert status is not None, log
    assert 'self-check failed: centernet_mobilenetv3_512 on CPUExecutionProvider' in \
        status.message and 'found 0 of the 7 reference people' in status.message, status.message
    assert values(status)['lifecycle state'] == 'unconfigured'

"""Session creation with an honest provider report, and the engine's per-stage timings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from ros_onnx_vision.inference.engine import InferenceEngine, TimingStats
from ros_onnx_vision.inference.model_card import load_model_card
from ros_onnx_vision.inference.session import (create_session, ModelLoadError, ProviderError,
                                               resolve_provider)
from ros_onnx_vision.results import StageTimings

ROOT = Path(__file__).resolve().parents[2]
NANODET_CARD = ROOT / 'models' / 'nanodet_m_416.yaml'
NANODET = ROOT / 'models' / 'nanodet_m_416.onnx'
CPU_ONLY = 'CUDAExecutionProvider' not in ort.get_available_providers()


@pytest.mark.parametrize('name,full', [
    ('cpu', 'CPUExecutionProvider'), ('CUDA', 'CUDAExecutionProvider'),
    ('TensorRT', 'TensorrtExecutionProvider'), ('trt', 'TensorrtExecutionProvider'),
    ('CUDAExecutionProvider', 'CUDAExecutionProvider'),
    ('openvinoexecutionprovider', 'OpenVINOExecutionProvider'),
    ('dnnl', 'DnnlExecutionProvider'), ('no-such-thing', 'no-such-thing')])
def test_provider_names(name: str, full: str) -> None:
    assert resolve_provider(name) == full


def test_cpu_session_reports_no_failures() -> None:
    session, report = create_session(NANODET, ['CPU'], strict=True, intra_op_threads=1)
    assert report.active == ['CPUExecutionProvider'] and not report.fell_back
    assert session.get_inputs()[0].name == 'images'


@pytest.mark.skipif(not CPU_ONLY, reason='this onnxruntime has CUDA')
def test_cuda_on_cpu_only_build_falls_back_with_a_reason() -> None:
    _, report = create_session(NANODET, ['cuda', 'cpu'], strict=False)
    assert report.requested == ['CUDAExecutionProvider', 'CPUExecutionProvider']
    assert report.active == ['CPUExecutionProvider'] and report.fell_back
    reason = report.failures['CUDAExecutionProvider']
    assert 'not in this onnxruntime build' in reason and 'onnxruntime 1.' in reason
    assert 'onnxruntime-gpu' in reason  # what to do about it
    assert 'CUDAExecutionProvider NOT used' in report.summary()


@pytest.mark.skipif(not CPU_ONLY, reason='this onnxruntime has CUDA')
def test_cuda_strict_raises_with_the_reason() -> None:
    with pytest.raises(ProviderError, match=r'CUDAExecutionProvider NOT used: not in this '
                                            r'onnxruntime build'):
        create_session(NANODET, ['tensorrt', 'cuda'], strict=True)


def test_unknown_provider_is_reported() -> None:
    _, report = create_session(NANODET, ['warp-drive'])
    assert 'unknown provider name' in report.failures['warp-drive']
    assert report.active == ['CPUExecutionProvider']


@pytest.mark.skipif(not CPU_ONLY, reason='this onnxruntime has CUDA')
def test_provider_in_build_but_not_loading_is_diagnosed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # An onnxruntime-gpu whose CUDA libraries are missing lists CUDA as available, yet the
    # session runs on the CPU: simulated by listing it here, where its library is absent.
    monkeypatch.setattr(ort, 'get_available_providers',
                        lambda: ['CUDAExecutionProvider', 'CPUExecutionProvider'])
    with pytest.warns(UserWarning, match='not in available provider'):  # onnxruntime's own
        _, report = create_session(NANODET, ['cuda'])
    assert report.active == ['CPUExecutionProvider']
    assert 'libonnxruntime_providers_cuda.so' in report.failures['CUDAExecutionProvider']
    with pytest.raises(ProviderError, match='libonnxruntime_providers_cuda.so'), \
            pytest.warns(UserWarning):
        create_session(NANODET, ['cuda'], strict=True)


@pytest.mark.parametrize('level', ['disable', 'basic', 'extended', 'all'])
def test_graph_optimization_levels(level: str) -> None:
    session, _ = create_session(NANODET, ['cpu'], graph_optimization=level)
    assert len(session.get_outputs()) == 6


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="graph_optimization 'max'"):
        create_session(NANODET, ['cpu'], graph_optimization='max')
    with pytest.raises(ValueError, match='intra_op_threads -1'):
        create_session(NANODET, ['cpu'], intra_op_threads=-1)
    with pytest.raises(ModelLoadError, match='does not exist'):
        create_session(NANODET.with_name('missing.onnx'), ['cpu'])


def test_not_onnx_is_a_load_error(tmp_path: Path) -> None:
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'\x08' + bytes(range(200)))
    with pytest.raises(ModelLoadError, match='cannot load .*junk.onnx'):
        create_session(junk, ['cpu'])


def test_intra_op_threads_sleep_between_runs_unless_asked_to_spin() -> None:
    # Spinning threads took 35% of a core at 10 frames/s of a 1 ms model (tools.bench.pipeline).
    for spinning, entry in ((False, '0'), (True, '1')):
        session, _ = create_session(NANODET, ['cpu'], intra_op_spinning=spinning)
        options = session.get_session_options()
        assert options.get_session_config_entry('session.intra_op.allow_spinning') == entry


def test_optimized_model_cache(tmp_path: Path) -> None:
    create_session(NANODET, ['cpu'], optimized_model_cache=str(tmp_path / 'cache'))
    cached = list((tmp_path / 'cache').glob('nanodet_m_416.*.onnx'))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    session, _ = create_session(NANODET, ['cpu'], optimized_model_cache=str(tmp_path / 'cache'))
    assert cached[0].stat().st_mtime_ns == stamp  # loaded, not written again
    image = np.zeros((1, 3, 416, 416), np.float32)
    reference, _ = create_session(NANODET, ['cpu'])
    for a, b in zip(session.run(None, {'images': image}), reference.run(None, {'images': image})):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_timing_stats() -> None:
    stats = TimingStats()
    assert stats.mean == StageTimings() and stats.count == 0
    stats.add(StageTimings(1, 10, 2))
    stats.add(StageTimings(3, 20, 4))
    assert stats.latest == StageTimings(3, 20, 4) and stats.mean == StageTimings(2, 15, 3)
    assert stats.mean.total_ms == 20
    stats.reset()
    assert stats.count == 0


@pytest.fixture(scope='module')
def engine() -> InferenceEngine:
    return InferenceEngine(load_model_card(NANODET_CARD), providers=['cpu'], intra_op_threads=2)


def test_engine_result_and_overrides(engine: InferenceEngine) -> None:
    image = cv2.imread(str(ROOT / 'test' / 'data' / 'vtest_600.jpg'))
    result = engine.infer(image)
    assert result.task == 'detection' and result.image_size == (768, 576)
    scale = engine.prepare(image).scale
    assert scale is not None and scale.scale_x == pytest.approx(416 / 768)
    assert len(result.detections) >= 3
    assert [d.score for d in result.detections] == sorted((d.score for d in result.detections),
                                                          reverse=True)
    assert result.to_dict()['detections'][0]['label'] == 'person'
    engine.apply_overrides(score_threshold=0.75)
    try:
        stricter = engine.infer(image).detections
        assert 0 < len(stricter) < len(result.detections)
        assert all(d.score > 0.75 for d in stricter)
    finally:
        engine.apply_overrides(score_threshold=0.35)
    # RGB input gives the same boxes as BGR once converted.
    rgb = engine.infer(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 'RGB').detections
    np.testing.assert_allclose([d.box for d in rgb], [d.box for d in result.detections],
                               atol=0.5)


def test_engine_per_stage_timings(engine: InferenceEngine) -> None:
    image = cv2.imread(str(ROOT / 'test' / 'data' / 'vtest_200.jpg'))
    engine.infer(image)  # warm-up
    engine.timings.reset()
    for _ in range(20):
        result = engine.infer(image)
    stats = engine.timings
    assert stats.count == 20 and stats.latest == result.timings
    mean = stats.mean
    assert mean.pre_ms > 0 and mean.run_ms > 0 and mean.post_ms > 0
    print(f'\nNanoDet-m 416, 768x576 frame, 2 threads, mean of 20: pre-processing '
          f'{mean.pre_ms:.2f} ms, session run {mean.run_ms:.2f} ms, decoding '
          f'{mean.post_ms:.2f} ms; (pre + decoding) / run = '
          f'{(mean.pre_ms + mean.post_ms) / mean.run_ms:.1%}')


def test_automatic_threads_leave_a_cpu_to_the_other_nodes() -> None:
    from ros_onnx_vision.inference.session import threads_beside_other_work
    assert [threads_beside_other_work(n) for n in (1, 2, 4, 16)] == [1, 1, 3, 15]
    assert threads_beside_other_work() >= 1


def test_the_self_check_warms_up_without_recording_a_frame() -> None:
    from ros_onnx_vision.inference.self_check import CHECK_RUNS, self_check
    engine = InferenceEngine(load_model_card(NANODET_CARD), providers=['cpu'],
                             intra_op_threads=1)
    report = self_check(engine)
    assert report.passed and report.elapsed_ms > 0 and CHECK_RUNS >= 2
    assert engine.timings.count == 0


def test_the_three_stages_give_the_result_of_infer(engine: InferenceEngine) -> None:
    image = cv2.imread(str(ROOT / 'test' / 'data' / 'vtest_400.jpg'))
    whole = engine.infer(image)
    frame = engine.prepare(image)
    staged = engine.decode(frame, engine.run(frame))
    assert [d.box for d in staged.detections] == [d.box for d in whole.detections]
    assert staged.timings.pre_ms == frame.pre_ms and staged.timings.run_ms > 0

"""NewestFramePipeline: three overlapped stages, newest frame first, every run delivered."""

from __future__ import annotations

import threading
import time

import pytest

from ros_onnx_vision.inference.frame_pipeline import NewestFramePipeline


class Recorder:
    """Stages that record what they saw; `run` blocks while `gate` is clear."""

    def __init__(self, run_s: float = 0.0) -> None:
        self.run_s = run_s
        self.gate = threading.Event()
        self.gate.set()
        self.prepared: list[int] = []
        self.ran: list[int] = []
        self.delivered: list[tuple[int, str]] = []
        self.errors: list[tuple[int, str]] = []
        self.threads: dict[str, str] = {}

    def prepare(self, frame: int) -> str:
        self.threads['prepare'] = threading.current_thread().name
        if frame < 0:
            raise ValueError(f'bad frame {frame}')
        self.prepared.append(frame)
        return f'p{frame}'

    def run(self, prepared: str) -> str:
        self.threads['run'] = threading.current_thread().name
        self.gate.wait(5)
        time.sleep(self.run_s)
        self.ran.append(int(prepared[1:]))
        return prepared + '-r'

    def deliver(self, frame: int, ran: str) -> None:
        self.threads['deliver'] = threading.current_thread().name
        if ran == 'p13-r':
            raise RuntimeError('publish failed')
        self.delivered.append((frame, ran))

    def on_error(self, frame: int, error: Exception) -> None:
        self.errors.append((frame, str(error)))


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def recorder():
    return Recorder()


def start(recorder: Recorder) -> NewestFramePipeline[int]:
    return NewestFramePipeline(recorder.prepare, recorder.run, recorder.deliver,
                               recorder.on_error, name='test')


def test_every_frame_goes_through_three_threads_when_the_model_keeps_up(recorder):
    pipeline = start(recorder)
    try:
        for frame in range(5):
            pipeline.submit(frame)
            assert wait_for(lambda: len(recorder.delivered) == frame + 1)
        assert recorder.delivered == [(i, f'p{i}-r') for i in range(5)]
        counts = pipeline.counts
        assert (counts.received, counts.processed, counts.skipped, counts.errors) == (5, 5, 0, 0)
        assert recorder.threads == {'prepare': 'test-prepare', 'run': 'test-run',
                                    'deliver': 'test-deliver'}
    finally:
        pipeline.stop()


def test_a_busy_model_takes_the_newest_prepared_frame_and_skips_the_rest(recorder):
    pipeline = start(recorder)
    try:
        recorder.gate.clear()  # the model is busy with frame 0
        pipeline.submit(0)
        assert wait_for(lambda: recorder.prepared == [0])
        time.sleep(0.05)  # frame 0 is in run, waiting on the gate
        for frame in range(1, 6):
            pipeline.submit(frame)
            # each is prepared as soon as it comes (the prepare thread is free)
            assert wait_for(lambda: recorder.prepared[-1] == frame)
        recorder.gate.set()
        assert wait_for(lambda: len(recorder.delivered) == 2)
        time.sleep(0.05)
        # 0 was running; 5 was the newest prepared one when it finished; 1-4 were replaced.
        assert [frame for frame, _ in recorder.delivered] == [0, 5]
        counts = pipeline.counts
        assert (counts.received, counts.processed, counts.skipped) == (6, 2, 4)
        assert counts.received == counts.processed + counts.skipped + counts.errors
    finally:
        pipeline.stop()


def test_a_stage_that_raises_drops_its_frame_and_the_pipeline_goes_on(recorder):
    pipeline = start(recorder)
    try:
        for frame in (-1, 12, 13, 14):  # -1: prepare raises; 13: deliver raises
            pipeline.submit(frame)
            assert wait_for(lambda: len(recorder.delivered) + len(recorder.errors) >=
                            (-1, 12, 13, 14).index(frame) + 1)
        assert recorder.errors == [(-1, 'bad frame -1'), (13, 'publish failed')]
        assert [frame for frame, _ in recorder.delivered] == [12, 14]
        counts = pipeline.counts
        assert (counts.received, counts.processed, counts.errors) == (4, 2, 2)
    finally:
        pipeline.stop()


def test_stop_ends_the_threads_and_later_frames_are_ignored(recorder):
    pipeline = start(recorder)
    recorder.gate.clear()
    pipeline.submit(1)
    assert wait_for(lambda: recorder.prepared == [1])
    started = time.monotonic()
    stopper = threading.Thread(target=pipeline.stop)
    stopper.start()
    time.sleep(0.05)
    recorder.gate.set()  # the run in progress finishes; its result is not delivered
    stopper.join(5)
    assert not stopper.is_alive() and time.monotonic() - started < 5
    assert not any(thread.is_alive() for thread in pipeline._threads)
    pipeline.submit(2)
    assert recorder.delivered == [] and recorder.errors == []
    assert pipeline.counts.received == 1


def test_results_are_delivered_in_order_under_load():
    recorder = Recorder(run_s=0.002)
    pipeline = start(recorder)
    try:
        for frame in range(200):
            pipeline.submit(frame)
            time.sleep(0.0005)
        assert wait_for(lambda: pipeline.counts.processed + pipeline.counts.skipped == 200)
        delivered = [frame for frame, _ in recorder.delivered]
        assert delivered == sorted(delivered) and len(delivered) >= 20
        assert pipeline.counts.processed == len(delivered)
    finally:
        pipeline.stop()

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
        self.running: list[int] = []  # run() entered, before the gate
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
        self.running.append(int(prepared[1:]))
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


def settled(pipeline: NewestFramePipeline[int]) -> bool:
    """Every submitted frame is counted exactly once: nothing is in flight any more."""
    counts = pipeline.counts
    return counts.received == counts.processed + counts.skipped + counts.errors


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
        # Frame 0 is in run, waiting on the gate (no sleep: on a busy machine it may still be
        # in the prepared slot after 50 ms, and frame 1 would replace it).
        assert wait_for(lambda: recorder.running == [0])
        for frame in range(1, 6):
            pipeline.submit(frame)
            # each is prepared as soon as it comes (the prepare thread is free)
            assert wait_for(lambda: recorder.prepared[-1] == frame)
        recorder.gate.set()
        assert wait_for(lambda: settled(pipeline))  # then nothing more can be delivered
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
        # deliver() returned before counts.processed is incremented: wait for the accounting.
        assert wait_for(lambda: settled(pipeline))
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
    # stop() has begun before the run finishes (a sleep here assumed a fast thread start).
    assert wait_for(lambda: pipeline._stopping)
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
        # The accounting, not a racy count: each frame is processed, skipped or (13, when it is
        # not skipped: thread timing decides) a deliver error, exactly once. processed + skipped
        # alone is 199 whenever 13 ran.
        assert wait_for(lambda: settled(pipeline))
        counts = pipeline.counts
        assert counts.received == 200
        delivered = [frame for frame, _ in recorder.delivered]
        errors = [(13, 'publish failed')] if 13 in recorder.ran else []
        assert recorder.errors == errors and counts.errors == len(errors)
        # Every run is delivered, in order, newest first: the last frame is never skipped.
        assert recorder.ran == sorted(recorder.ran) and recorder.ran[-1] == 199
        assert delivered == [frame for frame in recorder.ran if frame != 13]
        assert counts.processed == len(delivered)
        # The model keeps running while frames come (not only the last one): 62-91 of the 200
        # ran here, alone or beside a busy loop on the same core. Submitting takes >= 0.5 ms a
        # frame and a run >= 2 ms, and scheduling delays lengthen both, so >= 20 holds with a
        # 3x margin on a slower or busier CPU.
        assert len(recorder.ran) >= 20
    finally:
        pipeline.stop()

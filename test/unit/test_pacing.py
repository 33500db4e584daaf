"""Tests for ros_onnx_vision.camera.pacing with a fake clock (and one short real-time check)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from ros_onnx_vision.camera.pacing import RateMeter, RatePacer


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def make(fps: float, start: float = 1000.0) -> tuple[RatePacer, FakeClock]:
    clock = FakeClock(start)
    return RatePacer(fps, clock=clock, sleep=clock.sleep), clock


def test_no_drift_over_10k_periods() -> None:
    pacer, clock = make(30.0, start=12345.678)
    t0 = clock.now
    rng = random.Random(7)
    for k in range(10_001):
        tick = pacer.wait()
        assert tick is not None and tick.index == k and tick.skipped == 0
        assert tick.deadline == pytest.approx(t0 + k / 30.0, abs=1e-9)
        clock.now += rng.uniform(0.0, 0.9) / 30.0  # work shorter than a period
    assert tick.released == pytest.approx(t0 + 10_000 / 30.0, abs=1e-6)
    assert pacer.released == 10_001 and pacer.skipped == 0 and pacer.late == 0


def test_slow_frame_does_not_delay_later_deadlines() -> None:
    pacer, clock = make(10.0, start=0.0)
    assert pacer.wait().deadline == 0.0
    clock.now += 0.15  # this frame took 1.5 periods: slot 1 (0.1) is missed by 0.05
    tick = pacer.wait()
    assert tick.index == 1 and tick.deadline == pytest.approx(0.1)
    assert tick.lateness == pytest.approx(0.05) and tick.skipped == 0
    assert pacer.late == 1
    tick = pacer.wait()  # back on the original grid: no burst, no shift
    assert tick.index == 2 and tick.released == pytest.approx(0.2)
    assert clock.sleeps[-1] == pytest.approx(0.05)
    assert pacer.next_deadline() == pytest.approx(0.3)


def test_skips_missed_slots_instead_of_bursting() -> None:
    pacer, clock = make(10.0, start=0.0)
    pacer.wait()
    clock.now = 0.47  # stalled across slots 1..3; slot 4 (0.4) is the latest that is due
    tick = pacer.wait()
    assert (tick.index, tick.skipped) == (4, 3)
    assert tick.deadline == pytest.approx(0.4) and tick.released == pytest.approx(0.47)
    assert pacer.skipped == 3 and pacer.late == 1
    released = [pacer.wait().released for _ in range(3)]
    assert released == pytest.approx([0.5, 0.6, 0.7])  # one period apart, never back to back


def test_poll_and_sleep_time() -> None:
    clock = FakeClock(0.0)
    pacer = RatePacer(4.0, clock=clock)
    assert pacer.next_deadline() is None and pacer.sleep_time() == 0.0
    assert pacer.poll().index == 0
    assert pacer.sleep_time() == pytest.approx(0.25)
    assert pacer.poll(0.2) is None
    assert pacer.sleep_time(0.2) == pytest.approx(0.05)
    assert pacer.poll(0.25).index == 1
    assert pacer.poll(0.26) is None


def test_unpaced_and_rate_change() -> None:
    pacer, clock = make(0.0, start=5.0)
    assert [pacer.wait().index for _ in range(3)] == [0, 1, 2]
    assert clock.sleeps == [] and pacer.next_deadline() is None
    pacer.set_rate(10.0)
    assert pacer.wait().released == 5.0  # first paced slot starts the schedule
    assert pacer.wait().released == pytest.approx(5.1)
    pacer.set_rate(2.0)  # next slot one new period after the last release
    assert pacer.wait().released == pytest.approx(5.6)
    assert pacer.wait().released == pytest.approx(6.1)
    clock.now += 10.0
    pacer.reset()  # e.g. after a reconnect: no skipped slots counted for the outage
    tick = pacer.wait()
    assert tick.released == pytest.approx(16.1) and tick.skipped == 0 and pacer.skipped == 0
    with pytest.raises(ValueError, match='fps'):
        pacer.set_rate(-1.0)
    with pytest.raises(ValueError, match='fps'):
        RatePacer(float('nan'))


def test_real_clock_thread_and_stop() -> None:
    pacer = RatePacer(100.0)
    start = time.monotonic()
    ticks = [pacer.wait() for _ in range(6)]
    elapsed = time.monotonic() - start
    assert 0.045 <= elapsed < 0.5
    assert all(t is not None for t in ticks)
    slow = RatePacer(0.2)  # 5 s period: stop() must interrupt the sleep
    slow.wait()
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(slow.wait()))
    worker.start()
    time.sleep(0.05)
    slow.stop()
    worker.join(timeout=1.0)
    assert not worker.is_alive() and result == [None] and slow.stopped


def test_rate_meter() -> None:
    clock = FakeClock(0.0)
    meter = RateMeter(window=1.0, clock=clock)
    assert meter.rate() == 0.0
    for _ in range(21):
        meter.tick()
        clock.now += 0.05
    assert meter.rate(clock.now - 0.05) == pytest.approx(20.0)
    assert meter.count == 21
    assert meter.rate(clock.now + 5.0) == 0.0  # stalled: window emptied
    with pytest.raises(ValueError):
        RateMeter(window=0.0)

"""Tests for ros_onnx_vision.camera.pacing with a fake clock (and one short real-time check)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from ros_onnx_vision.camera.pacing import RateMeter, RatePacer, Tick


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


def late(ticks: list[Tick], fps: float) -> int:
    """Released slots more than a tenth of a period past their deadline."""
    return sum(t.released - t.deadline > 0.1 / fps for t in ticks)


def test_no_drift_over_10k_periods() -> None:
    pacer, clock = make(30.0, start=12345.678)
    t0 = clock.now
    rng = random.Random(7)
    ticks = []
    for k in range(10_001):
        tick = pacer.wait()
        assert tick is not None and tick.index == k and tick.skipped == 0
        assert tick.deadline == pytest.approx(t0 + k / 30.0, abs=1e-9)
        ticks.append(tick)
        clock.now += rng.uniform(0.0, 0.9) / 30.0  # work shorter than a period
    assert tick.released == pytest.approx(t0 + 10_000 / 30.0, abs=1e-6)
    assert pacer.released == 10_001 and pacer.skipped == 0 and late(ticks, 30.0) == 0


def test_slow_frame_does_not_delay_later_deadlines() -> None:
    pacer, clock = make(10.0, start=0.0)
    first = pacer.wait()
    assert first.deadline == 0.0
    clock.now += 0.15  # this frame took 1.5 periods: slot 1 (0.1) is missed by 0.05
    tick = pacer.wait()
    assert tick.index == 1 and tick.deadline == pytest.approx(0.1)
    assert tick.released - tick.deadline == pytest.approx(0.05) and tick.skipped == 0
    assert late([first, tick], 10.0) == 1
    tick = pacer.wait()  # back on the original grid: no burst, no shift
    assert tick.index == 2 and tick.released == pytest.approx(0.2)
    assert clock.sleeps[-1] == pytest.approx(0.05)
    assert pacer.wait().deadline == pytest.approx(0.3)


def test_skips_missed_slots_instead_of_bursting() -> None:
    pacer, clock = make(10.0, start=0.0)
    first = pacer.wait()
    clock.now = 0.47  # stalled across slots 1..3; slot 4 (0.4) is the latest that is due
    tick = pacer.wait()
    assert (tick.index, tick.skipped) == (4, 3)
    assert tick.deadline == pytest.approx(0.4) and tick.released == pytest.approx(0.47)
    assert pacer.skipped == 3 and late([first, tick], 10.0) == 1
    released = [pacer.wait().released for _ in range(3)]
    assert released == pytest.approx([0.5, 0.6, 0.7])  # one period apart, never back to back


def test_wait_sleeps_until_the_next_slot() -> None:
    pacer, clock = make(4.0, start=0.0)
    assert pacer.wait().index == 0 and clock.sleeps == []  # the first slot is due at once
    clock.now = 0.2  # slot 1 (0.25) is not due yet: 0.05 left
    tick = pacer.wait()
    assert clock.sleeps == [pytest.approx(0.05)]
    assert tick.index == 1 and tick.released == pytest.approx(0.25)
    clock.now = 0.26  # slot 2 (0.5) is not due either
    tick = pacer.wait()
    assert clock.sleeps[-1] == pytest.approx(0.24) and tick.index == 2
    tick = pacer.wait()  # right after a release the next slot is a period away
    assert clock.sleeps[-1] == pytest.approx(0.25) and tick.index == 3


def test_unpaced_and_bad_rates() -> None:
    pacer, clock = make(0.0, start=5.0)
    ticks = [pacer.wait() for _ in range(3)]
    assert [t.index for t in ticks] == [0, 1, 2]
    assert clock.sleeps == [] and all(t.deadline == t.released == 5.0 for t in ticks)
    with pytest.raises(ValueError, match='fps'):
        RatePacer(-1.0)
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
    assert not worker.is_alive() and result == [None] and slow.wait() is None


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

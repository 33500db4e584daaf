"""Frame pacing on absolute deadlines, and an achieved-rate meter (pure Python).

`RatePacer` releases slot k at t0 + k / fps. Deadlines are computed from t0, never by adding
periods, so nothing drifts, and a slow frame does not delay the following deadlines. When the
caller falls a whole period or more behind, the missed slots are skipped (counted in
`skipped`) instead of being released back to back.

A dedicated thread drives it with the blocking `wait()`; `stop()` from another thread ends
it. The clock and the sleep are injectable, so tests use a fake clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
import math
import threading
import time

__all__ = ['RateMeter', 'RatePacer', 'Tick']

# Clock readings this close to a deadline count as on it (float rounding of fake sleeps).
_EPSILON = 1e-9


@dataclass(frozen=True)
class Tick:
    """A released slot."""

    index: int  #: slot number k (counts skipped slots too)
    deadline: float  #: t0 + k / fps (the release time itself when fps is 0)
    released: float  #: clock reading at release
    skipped: int  #: slots dropped right before this one


def _check_fps(fps: float) -> float:
    if not math.isfinite(fps) or fps < 0:
        raise ValueError(f'fps must be a finite number >= 0 (0 = as fast as possible), got {fps}')
    return float(fps)


class RatePacer:
    """Paces a loop at `fps` slots per second on absolute deadlines (0 = no pacing).

    Counters: `released` slots delivered, `skipped` slots dropped because the caller was a
    period or more behind. Thread-safe.
    """

    def __init__(self, fps: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None):
        """Create a pacer; the schedule starts (slot 0 released) at the first wait.

        `sleep` defaults to an interruptible wait, so that `stop()` takes effect at once; a
        fake sleep for tests must advance the fake clock.
        """
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._clock = clock
        self._sleep = sleep
        self._fps = _check_fps(fps)
        self._t0: float | None = None
        self._k = 0
        self._stopped = False
        self.released = 0
        self.skipped = 0

    @property
    def fps(self) -> float:
        """The target rate (0 = as fast as possible)."""
        return self._fps

    def stop(self) -> None:
        """Make a blocked and every later `wait()` return None."""
        with self._lock:
            self._stopped = True
            self._wake.set()

    def wait(self) -> Tick | None:
        """Block until the next slot and release it; None once `stop()` was called."""
        while True:
            with self._lock:
                if self._stopped:
                    return None
                self._wake.clear()
                now = self._clock()
                tick = self._release(now)
                if tick is not None:
                    return tick
                assert self._t0 is not None
                delay = self._t0 + self._k / self._fps - now
            if self._sleep is not None:
                self._sleep(delay)
            else:
                self._wake.wait(delay)

    def _release(self, now: float) -> Tick | None:
        if not self._fps:
            tick = Tick(self._k, now, now, 0)
            self._k += 1
            self.released += 1
            return tick
        if self._t0 is None:
            self._t0, self._k = now, 0
        period = 1.0 / self._fps
        deadline = self._t0 + self._k * period
        if now + _EPSILON < deadline:
            return None
        skipped = 0
        if now - deadline >= period:
            # Jump to the latest slot that is already due; the ones in between are dropped.
            latest = max(self._k, math.floor((now - self._t0) / period))
            while self._t0 + latest * period > now + _EPSILON:  # float rounding guard
                latest -= 1
            skipped = latest - self._k
            self._k = latest
            deadline = self._t0 + latest * period
        self.skipped += skipped
        self.released += 1
        tick = Tick(self._k, deadline, now, skipped)
        self._k += 1
        return tick


class RateMeter:
    """Achieved rate over a sliding time window."""

    def __init__(self, window: float = 2.0, *, clock: Callable[[], float] = time.monotonic):
        """Measure over the last `window` seconds."""
        if not window > 0:
            raise ValueError(f'window must be > 0 seconds, got {window}')
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self.count = 0

    def tick(self, now: float | None = None) -> None:
        """Record one event (a frame published)."""
        now = self._clock() if now is None else now
        self._times.append(now)
        self.count += 1
        self._prune(now)

    def rate(self, now: float | None = None) -> float:
        """Events per second within the window ending at `now`; 0.0 with fewer than two."""
        self._prune(self._clock() if now is None else now)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()

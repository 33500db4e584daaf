"""Frame pacing on absolute deadlines, and an achieved-rate meter (pure Python).

`RatePacer` releases slot k at t0 + k / fps. Deadlines are computed from t0, never by adding
periods, so nothing drifts, and a slow frame does not delay the following deadlines. When the
caller falls a whole period or more behind, the missed slots are skipped (counted in
`skipped`) instead of being released back to back.

Two ways to drive it:

* a dedicated thread calling the blocking `wait()` (stop it from another thread with `stop()`);
* a caller-owned loop or fast timer calling the non-blocking `poll(now)`, with `sleep_time(now)`
  telling how long until the next slot.

Both take an injectable clock (and `wait()` an injectable sleep) so tests use a fake clock.
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

    @property
    def lateness(self) -> float:
        """Seconds between the deadline and the release (>= 0)."""
        return max(0.0, self.released - self.deadline)


def _check_fps(fps: float) -> float:
    if not math.isfinite(fps) or fps < 0:
        raise ValueError(f'fps must be a finite number >= 0 (0 = as fast as possible), got {fps}')
    return float(fps)


class RatePacer:
    """Paces a loop at `fps` slots per second on absolute deadlines (0 = no pacing).

    Counters: `released` slots delivered, `skipped` slots dropped because the caller was a
    period or more behind, `late` released slots that were more than `late_tolerance`
    (default: a tenth of the period) past their deadline. Thread-safe.
    """

    def __init__(self, fps: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None,
                 late_tolerance: float | None = None):
        """Create a pacer; the schedule starts (slot 0 released) at the first wait/poll.

        `sleep` defaults to an interruptible wait, so that `stop()` and `set_rate()` take
        effect at once; a fake sleep for tests must advance the fake clock.
        """
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._clock = clock
        self._sleep = sleep
        self._late_tolerance = late_tolerance
        self._fps = _check_fps(fps)
        self._t0: float | None = None
        self._k = 0
        self._stopped = False
        self.released = 0
        self.skipped = 0
        self.late = 0

    @property
    def fps(self) -> float:
        """The target rate (0 = as fast as possible)."""
        return self._fps

    def set_rate(self, fps: float) -> None:
        """Change the rate; the next slot comes one new period after the last released one."""
        fps = _check_fps(fps)
        with self._lock:
            if fps == self._fps:
                return
            if self._t0 is not None and self._fps and fps and self._k > 0:
                last = self._t0 + (self._k - 1) / self._fps
                self._t0, self._k = last, 1
            else:
                self._t0, self._k = None, 0
            self._fps = fps
            self._wake.set()

    def reset(self) -> None:
        """Restart the schedule: the next wait/poll releases at once (e.g. after an outage)."""
        with self._lock:
            self._t0, self._k = None, 0
            self._wake.set()

    def stop(self) -> None:
        """Make a blocked and every later `wait()` return None."""
        with self._lock:
            self._stopped = True
            self._wake.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped

    def next_deadline(self) -> float | None:
        """Clock time of the next slot; None before the first release or when unpaced."""
        with self._lock:
            if self._t0 is None or not self._fps:
                return None
            return self._t0 + self._k / self._fps

    def sleep_time(self, now: float | None = None) -> float:
        """Seconds from `now` (default: the clock) until the next slot, 0 if it is due."""
        deadline = self.next_deadline()
        if deadline is None:
            return 0.0
        now = self._clock() if now is None else now
        return max(0.0, deadline - now)

    def poll(self, now: float | None = None) -> Tick | None:
        """Release the current slot if it is due at `now` (default: the clock), else None."""
        with self._lock:
            return self._release(self._clock() if now is None else now)

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
        tolerance = period / 10 if self._late_tolerance is None else self._late_tolerance
        if now - deadline > tolerance:
            self.late += 1
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

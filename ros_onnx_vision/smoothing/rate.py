"""The frame-rate half of smoothing: N from the measured rate, and the voters' interface.

N = round_half_up(fps * window_s) consecutive agreeing frames confirm a result (window_s =
0.5 s by default), so a confirmation always takes about half a second whatever the rate, and
flicker or one-frame false positives never reach the robot. The fps is measured from the
header stamps of the results themselves, i.e. the rate at which results really arrive, so a
model slower than the camera still confirms in half a second. A rate from one interval is not
trusted for N unless that interval spans the window (see RateVoting.n): one stall at the start
would make it look slow and let two frames confirm. No ROS imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
import enum
import math

import numpy as np

from ros_onnx_vision.results import Result

# fps * window_s values this close below x.5 count as x.5: stamps quantised to nanoseconds or
# to float64 near 1.7e9 s turn an exact 15 fps into 14.9999999 fps, which must still give 8.
_HALF_TOLERANCE = 1e-3
# Intervals shorter than this fraction of the median are bursts (a backlog flushed at once).
_BURST_FRACTION = 0.5
# Intervals longer than this many medians are stalls. Shorter ones count: a newest-frame
# pipeline slower than its camera skips a camera frame as a matter of course, and
# results arrive at that rate (a 10 Hz camera processed at 7 Hz alternates 0.1 and 0.2 s; gating
# the 0.2 s out measured 10 fps, so N frames took 0.7 s instead of 0.5 s).
_STALL_FACTOR = 2.5
# A single interval this close below the voting window still spans it (stamp jitter: 2 fps
# with tens of ms of jitter must still confirm on its second frame, as at exactly 2 fps).
_SPAN_TOLERANCE = 0.1


def check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
    return float(value)


def check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    return float(value)


def check_release_frames(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f'release_frames must be an integer >= 1 or None (= same as the confirmation '
            f'frames N), got {value!r}')
    return value


def confirmation_frames(fps: float, window_s: float) -> int:
    """Return N = max(1, fps * window_s rounded half up), e.g. 15 fps * 0.5 s -> 8."""
    fps = check_positive('fps', fps)
    window_s = check_positive('window_s', window_s)
    # Not round(): banker's rounding would give round(7.5) == 8 but round(12.5) == 12.
    return max(1, math.floor(fps * window_s + 0.5 + _HALF_TOLERANCE))


class StampStatus(enum.Enum):
    """What FrameRateEstimator.add did with a stamp."""

    ACCEPTED = 'accepted'
    DUPLICATE = 'duplicate'  # same stamp as the previous one: ignored
    BACKWARDS = 'backwards'  # earlier than the previous one: ignored
    RESET = 'reset'  # jumped back by more than the window: clock restart, history cleared


class FrameRateEstimator:
    """Frame rate from header stamps (any clock, sim time included) over a sliding window.

    Method: the median interval in the window sets the scale, then the fps is 1 / mean of the
    intervals from half the median to 2.5 medians. The gate throws out bursts and stalls but
    keeps single skipped frames (an interval of two), so the fps is the rate results
    really arrive at; averaging (consecutive intervals telescope to span / count) makes the
    estimate far less sensitive to per-stamp jitter than the median alone. One interval
    (two frames) suffices for a first estimate. After a gap longer than the window the history
    holds only the new stamp: the last estimate is kept until the next interval arrives, which
    then gives the new rate at once; a gap shorter than the window is gated out.
    """

    def __init__(self, window_s: float = 2.0, max_samples: int = 1024) -> None:
        """Create an estimator over the last window_s seconds (at most max_samples stamps)."""
        self.window_s = check_positive('window_s', window_s)
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
            raise ValueError(f'max_samples must be an integer >= 2, got {max_samples!r}')
        self._stamps: deque[float] = deque(maxlen=max_samples)
        self._fps: float | None = None
        self.backwards = 0  # stamps earlier than the previous one (resets included)
        self.duplicates = 0  # stamps equal to the previous one
        self.resets = 0  # backward jumps larger than the window, taken as a clock restart

    @property
    def fps(self) -> float | None:
        """Current estimate, None until two distinct stamps were seen."""
        return self._fps

    @property
    def last_stamp(self) -> float | None:
        """Most recent accepted stamp."""
        return self._stamps[-1] if self._stamps else None

    @property
    def single_interval(self) -> float | None:
        """The interval, when the estimate rests on exactly one (two stamps in the history)."""
        return self._stamps[1] - self._stamps[0] if len(self._stamps) == 2 else None

    def add(self, stamp: float) -> StampStatus:
        """Feed one header stamp in seconds; duplicates and backward stamps are counted."""
        stamp = check_finite('stamp', stamp)
        last = self.last_stamp
        if last is not None and stamp == last:
            self.duplicates += 1
            return StampStatus.DUPLICATE
        if last is not None and stamp < last:
            self.backwards += 1
            if last - stamp <= self.window_s:
                return StampStatus.BACKWARDS
            # Otherwise every later stamp would be ignored forever (sim restart, bag loop).
            self.resets += 1
            self._stamps.clear()
            self._stamps.append(stamp)
            self._fps = None
            return StampStatus.RESET
        self._stamps.append(stamp)
        while self._stamps[0] < stamp - self.window_s:
            self._stamps.popleft()
        if len(self._stamps) >= 2:
            self._fps = self._estimate()
        return StampStatus.ACCEPTED

    def _estimate(self) -> float:
        intervals = np.diff(np.fromiter(self._stamps, dtype=float, count=len(self._stamps)))
        # Lower median: an actual interval, so the inlier set is never empty.
        median = float(np.partition(intervals, (len(intervals) - 1) // 2)[
            (len(intervals) - 1) // 2])
        inliers = intervals[(intervals >= _BURST_FRACTION * median) &
                            (intervals <= _STALL_FACTOR * median)]
        return 1.0 / float(inliers.mean())


class RateVoting(ABC):
    """The interface of both voters, and their shared frame-rate, N / M and timeout logic.

    smoothing_node only calls :meth:`vote`, :meth:`release_if_stale`, :attr:`confirmed_keys`
    and :meth:`describe`, so it never needs to know which task it smooths.
    """

    def __init__(self, window_s: float, release_frames: int | None, timeout_s: float,
                 rate_window_s: float, default_fps: float | None) -> None:
        self.window_s = check_positive('window_s', window_s)
        self.release_frames = check_release_frames(release_frames)
        self.timeout_s = check_positive('timeout_s', timeout_s)
        self.default_fps = None if default_fps is None else check_positive(
            'default_fps', default_fps)
        self.estimator = FrameRateEstimator(rate_window_s)

    @property
    def fps(self) -> float | None:
        """Measured fps, else default_fps, else None (nothing can be confirmed yet)."""
        fps = self.estimator.fps
        return fps if fps is not None else self.default_fps

    @property
    def n(self) -> int | None:
        """Consecutive agreeing frames needed to confirm, from the current fps.

        One interval is not trusted: a stall (a loaded machine, a camera catching up) makes it
        long, the rate slow and N small; at 10 Hz with a 0.34 s first interval N would be 1,
        confirming frame 2. Two intervals gate such a stall out (median), so until then a
        single interval shorter than the window counts as no measurement (default_fps, else
        nothing is confirmable yet), and one of about the window or longer (N = 1: waiting for
        another would double the delay) needs both frames to agree. Nothing is confirmed
        sooner than about window_s after its first frame, nor on a single frame.
        """
        fps = self.fps
        single = self.estimator.single_interval
        if single is not None and single < self.window_s * (1 - _SPAN_TOLERANCE):
            fps = self.default_fps
        if fps is None:
            return None
        n = confirmation_frames(fps, self.window_s)
        return n if single is None else max(n, 2)

    @property
    def m(self) -> int | None:
        """Consecutive misses that release a confirmed result (release_frames, else N from
        the current fps: releasing early is the safe side, so a single interval counts)."""
        if self.release_frames is not None:
            return self.release_frames
        fps = self.fps
        return None if fps is None else confirmation_frames(fps, self.window_s)

    @property
    def backwards(self) -> int:
        """Stamps ignored (or taken as a clock restart) because they went backwards."""
        return self.estimator.backwards

    @property
    def duplicates(self) -> int:
        """Stamps ignored because they repeated the previous one."""
        return self.estimator.duplicates

    @property
    def resets(self) -> int:
        """Clock restarts seen (backward jumps larger than the rate window)."""
        return self.estimator.resets

    def _accept(self, stamp: float) -> tuple[bool, bool]:
        """Feed a stamp; return (count this frame as a vote, release everything first)."""
        previous = self.estimator.last_stamp
        status = self.estimator.add(stamp)
        if status in (StampStatus.DUPLICATE, StampStatus.BACKWARDS):
            return False, False
        if status is StampStatus.RESET:
            return True, True
        return True, previous is not None and stamp - previous > self.timeout_s

    def _timed_out(self, stamp_now: float) -> bool:
        last = self.estimator.last_stamp
        return last is not None and check_finite('stamp_now', stamp_now) - last > self.timeout_s

    def _counters(self) -> str:
        fps = 'none' if self.fps is None else f'{self.fps:.1f}'
        return (f'fps={fps} n={self.n} m={self.m} backwards={self.backwards} '
                f'duplicates={self.duplicates} resets={self.resets}')

    @abstractmethod
    def vote(self, stamp: float, results: Sequence[Result]) -> list[Result]:
        """Vote with one frame's results; return the confirmed results, best first."""

    @abstractmethod
    def release_if_stale(self, stamp_now: float) -> bool:
        """Release everything when no input came for timeout_s; True if a result was released."""

    @property
    @abstractmethod
    def confirmed_keys(self) -> list[str]:
        """What is confirmed (labels or track ids), for diagnostics and change logs."""

    @abstractmethod
    def describe(self) -> str:
        """One line for logging when it changes."""

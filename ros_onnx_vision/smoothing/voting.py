"""Consecutive-frame voting whose window follows the measured frame rate (no ROS imports).

A result is confirmed only after N = round_half_up(fps * window_s) consecutive agreeing frames
(window_s = 0.5 s by default), so a confirmation always takes about half a second whatever the
rate, and flicker or one-frame false positives never reach the robot. The fps is measured from
the header stamps of the results themselves, i.e. the rate at which results really arrive.

Confirmation delay at a 30 Hz camera, window 0.5 s, versus the old rule N = (1 / inference
time) / 2 (a model slower than the camera delivers results at the model rate):

    model time | results seen | this rule: N, delay   | old rule: N, delay
    2 ms       | 30 Hz        | 15 frames, 0.50 s     | 250 frames, 8.33 s
    10 ms      | 30 Hz        | 15 frames, 0.50 s     | 50 frames, 1.67 s
    30 ms      | 30 Hz        | 15 frames, 0.50 s     | 17 frames, 0.57 s
    100 ms     | 10 Hz        | 5 frames, 0.50 s      | 5 frames, 0.50 s
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import enum
import math
from typing import Sequence

import numpy as np

from ros_onnx_vision.geometry import Box, Boxes, iou_matrix

# fps * window_s values this close below x.5 count as x.5: stamps quantised to nanoseconds or
# to float64 near 1.7e9 s turn an exact 15 fps into 14.9999999 fps, which must still give 8.
_HALF_TOLERANCE = 1e-3
# Intervals further than this fraction from the median are gaps, drops or bursts.
_INLIER_BAND = 0.5


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be a finite number > 0, got {value!r}')
    return float(value)


def _check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    return float(value)


def _check_release_frames(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f'release_frames must be an integer >= 1 or None (= same as the confirmation '
            f'frames N), got {value!r}')
    return value


def confirmation_frames(fps: float, window_s: float) -> int:
    """Return N = max(1, fps * window_s rounded half up), e.g. 15 fps * 0.5 s -> 8."""
    fps = _check_positive('fps', fps)
    window_s = _check_positive('window_s', window_s)
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

    Method: the median interval in the window picks the dominant spacing, then the fps is 1 /
    mean of the intervals within +-50 % of it. The median gate throws out gaps, dropped frames
    and bursts; averaging the inliers (consecutive intervals telescope to span / count) makes
    the estimate far less sensitive to per-stamp jitter than the median alone. One interval
    (two frames) suffices for a first estimate. After a gap longer than the window the history
    holds only the new stamp: the last estimate is kept until the next interval arrives, which
    then gives the new rate at once; a gap shorter than the window is gated out.
    """

    def __init__(self, window_s: float = 2.0, max_samples: int = 1024) -> None:
        """Create an estimator over the last window_s seconds (at most max_samples stamps)."""
        self.window_s = _check_positive('window_s', window_s)
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

    def add(self, stamp: float) -> StampStatus:
        """Feed one header stamp in seconds; duplicates and backward stamps are counted."""
        stamp = _check_finite('stamp', stamp)
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
        inliers = intervals[np.abs(intervals - median) <= _INLIER_BAND * median]
        return 1.0 / float(inliers.mean())


class _RateVoting:
    """Shared frame-rate, N / M and timeout bookkeeping of LabelVoter and DetectionTracker."""

    def __init__(self, window_s: float, release_frames: int | None, timeout_s: float,
                 rate_window_s: float, default_fps: float | None) -> None:
        self.window_s = _check_positive('window_s', window_s)
        self.release_frames = _check_release_frames(release_frames)
        self.timeout_s = _check_positive('timeout_s', timeout_s)
        self.default_fps = None if default_fps is None else _check_positive(
            'default_fps', default_fps)
        self.estimator = FrameRateEstimator(rate_window_s)

    @property
    def fps(self) -> float | None:
        """Measured fps, else default_fps, else None (nothing can be confirmed yet)."""
        fps = self.estimator.fps
        return fps if fps is not None else self.default_fps

    @property
    def n(self) -> int | None:
        """Consecutive agreeing frames needed to confirm, from the current fps."""
        fps = self.fps
        return None if fps is None else confirmation_frames(fps, self.window_s)

    @property
    def m(self) -> int | None:
        """Consecutive misses that release a confirmed result (release_frames, else N)."""
        return self.release_frames if self.release_frames is not None else self.n

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
        return last is not None and _check_finite('stamp_now', stamp_now) - last > self.timeout_s

    def _counters(self) -> str:
        fps = 'none' if self.fps is None else f'{self.fps:.1f}'
        return (f'fps={fps} n={self.n} m={self.m} backwards={self.backwards} '
                f'duplicates={self.duplicates} resets={self.resets}')


@dataclass(frozen=True)
class LabelState:
    """Snapshot of a LabelVoter after one input or timeout check."""

    label: str | None  # confirmed label, None when nothing is confirmed
    score: float | None  # score of the latest frame that agreed with the confirmed label
    fps: float | None
    n: int | None
    m: int | None
    changed: bool  # the confirmed label changed on this call
    candidate: str | None = None  # label of the current run of agreeing frames
    streak: int = 0  # length of that run
    misses: int = 0  # consecutive frames not agreeing with the confirmed label


class LabelVoter(_RateVoting):
    """Confirm a classification label after N consecutive agreeing frames, with hysteresis.

    A frame votes for its label when score >= min_score, otherwise it is "no result". Nothing
    is confirmed before the rate is known (second frame, unless default_fps is given), and a
    confirmation on frame k always has k agreeing frames, counting from the first. A confirmed
    label is released after M consecutive frames that disagree or have no result, or after
    timeout_s without input. A different label with N consecutive frames replaces the
    confirmed one directly; it counts as misses meanwhile, so with M < N the old label is
    released at frame M and the new one confirmed at frame N (no label in between), with
    M >= N the switch happens at frame N without a gap. Duplicate and backward stamps are not
    votes; a clock restart releases everything.
    """

    def __init__(self, *, window_s: float = 0.5, release_frames: int | None = None,
                 min_score: float = 0.0, timeout_s: float = 1.0, rate_window_s: float = 2.0,
                 default_fps: float | None = None) -> None:
        """Validate parameters; see the class docstring for their meaning."""
        super().__init__(window_s, release_frames, timeout_s, rate_window_s, default_fps)
        self.min_score = _check_finite('min_score', min_score)
        self._label: str | None = None
        self._score: float | None = None
        self._candidate: str | None = None
        self._streak = 0
        self._misses = 0

    @property
    def label(self) -> str | None:
        """Confirmed label, or None."""
        return self._label

    @property
    def state(self) -> LabelState:
        """Current state, with changed=False."""
        return self._state(False)

    def update(self, stamp: float, label: str | None, score: float) -> LabelState:
        """Vote with one frame's top label and score (label None = no result)."""
        before = self._label
        vote, release = self._accept(stamp)
        if not vote:
            return self._state(False)
        if release:
            self._release()
        effective = label if label is not None and score >= self.min_score else None
        if effective is not None and effective == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = effective, int(effective is not None)
        n, m = self.n, self.m
        confirmable = effective is not None and n is not None and self._streak >= n
        if self._label is not None and effective == self._label:
            self._misses, self._score = 0, float(score)
        elif self._label is not None and not confirmable:
            self._misses += 1
            if m is not None and self._misses >= m:
                # Keep the candidate's run: its frames were real votes for the next label.
                self._label, self._score, self._misses = None, None, 0
        elif confirmable:  # fresh confirmation or replacement of a different label
            self._label, self._score, self._misses = effective, float(score), 0
        return self._state(self._label != before)

    def check_timeout(self, stamp_now: float) -> LabelState:
        """Release everything if no input arrived for timeout_s (call from a timer)."""
        before = self._label
        if self._timed_out(stamp_now):
            self._release()
        return self._state(self._label != before)

    def describe(self) -> str:
        """One line for logging when it changes."""
        score = '' if self._score is None else f' score={self._score:.2f}'
        return f'label={self._label}{score} {self._counters()}'

    def _release(self) -> None:
        self._label = self._score = self._candidate = None
        self._streak = self._misses = 0

    def _state(self, changed: bool) -> LabelState:
        return LabelState(self._label, self._score, self.fps, self.n, self.m, changed,
                          self._candidate, self._streak, self._misses)


@dataclass(frozen=True)
class Detection:
    """One detected box: class, score and (x1, y1, x2, y2) in pixels."""

    class_id: str
    score: float
    box: Box


@dataclass(frozen=True)
class Track:
    """Snapshot of a tracked object; only confirmed tracks are meant to be published."""

    id: str  # noqa: A003 (same name as vision_msgs Detection2D.id)
    class_id: str
    score: float  # score of the latest matched detection
    box: Box  # smoothed box when smoothing > 0
    hits: int  # frames matched since creation
    misses: int  # consecutive frames without a match
    confirmed: bool


class _TrackState:
    """Mutable per-track bookkeeping behind the Track snapshots."""

    def __init__(self, track_id: str, detection: Detection) -> None:
        self.id = track_id
        self.class_id = detection.class_id
        self.score = float(detection.score)
        self.raw_box = np.asarray(detection.box, dtype=float)  # associated on, never smoothed
        self.box = self.raw_box.copy()
        self.hits = 1
        self.misses = 0
        self.confirmed = False

    def snapshot(self) -> Track:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return Track(self.id, self.class_id, self.score, (x1, y1, x2, y2),
                     self.hits, self.misses, self.confirmed)


def hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment (Kuhn-Munkres, O(n^2 m)) of a finite rectangular cost matrix.

    Returns min(rows, cols) (row, col) pairs sorted by row, each row and column used once.
    """
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise ValueError(f'cost must be a 2-D matrix, got shape {cost.shape}')
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return []
    if not np.all(np.isfinite(cost)):
        raise ValueError('cost must contain finite values only')
    if rows > cols:
        return sorted((r, c) for c, r in hungarian(cost.T))
    # Shortest augmenting paths with row/column potentials u, v; column 0 is a sentinel and
    # rows are 1-based in owner (0 = free column).
    u = np.zeros(rows + 1)
    v = np.zeros(cols + 1)
    owner = np.zeros(cols + 1, dtype=int)
    way = np.zeros(cols + 1, dtype=int)
    for row in range(1, rows + 1):
        owner[0] = row
        j0 = 0
        min_reduced = np.full(cols + 1, np.inf)
        used = np.zeros(cols + 1, dtype=bool)
        while True:
            used[j0] = True
            reduced = cost[owner[j0] - 1] - u[owner[j0]] - v[1:]
            better = ~used[1:] & (reduced < min_reduced[1:])
            min_reduced[1:][better] = reduced[better]
            way[1:][better] = j0
            free = np.flatnonzero(~used)
            j1 = int(free[np.argmin(min_reduced[free])])
            delta = min_reduced[j1]
            u[owner[used]] += delta
            v[used] -= delta
            min_reduced[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = int(way[j0])
            owner[j0] = owner[j1]
            j0 = j1
    return sorted((int(owner[j]) - 1, j - 1) for j in range(1, cols + 1) if owner[j])


def match_boxes(track_boxes: Boxes, track_classes: Sequence[str],
                det_boxes: Boxes, det_classes: Sequence[str],
                min_iou: float) -> list[tuple[int, int]]:
    """Pairs (track, detection) of equal class and IoU >= min_iou maximising the total IoU."""
    iou = iou_matrix(track_boxes, det_boxes)
    same_class = np.asarray(track_classes, dtype=object)[:, None] == \
        np.asarray(det_classes, dtype=object)[None, :]
    weight = np.where(same_class & (iou >= min_iou), iou, 0.0)
    # Forbidden pairs weigh 0, so the optimum over all pairs is the optimum over allowed ones;
    # pairs it puts on forbidden cells are just "unmatched".
    return [(t, d) for t, d in hungarian(-weight) if weight[t, d] > 0]


class DetectionTracker(_RateVoting):
    """Confirm detections after N consecutive frames by class-aware IoU tracking.

    Tracks are associated with an optimal assignment (maximum total IoU, min_iou threshold,
    classes never mixed). A new track is tentative; it is confirmed after N consecutive hits
    and dropped at its first miss before that. A confirmed track keeps its id and last box
    while missed and is deleted after M consecutive misses. smoothing is the weight of the
    previous box in an exponential moving average of the published box (0 = off); association
    always uses the raw latest box so smoothing lag never breaks matching. Ids are increasing
    integers as strings, never reused. A timeout without input or a clock restart deletes all.
    """

    def __init__(self, *, window_s: float = 0.5, release_frames: int | None = None,
                 min_iou: float = 0.3, smoothing: float = 0.0, min_score: float = 0.0,
                 timeout_s: float = 1.0, rate_window_s: float = 2.0,
                 default_fps: float | None = None) -> None:
        """Validate parameters; see the class docstring for their meaning."""
        super().__init__(window_s, release_frames, timeout_s, rate_window_s, default_fps)
        self.min_iou = _check_positive('min_iou', min_iou)
        if self.min_iou > 1:
            raise ValueError(f'min_iou must be in (0, 1], got {min_iou!r}')
        self.smoothing = _check_finite('smoothing', smoothing)
        if not 0 <= self.smoothing < 1:
            raise ValueError(
                f'smoothing must be in [0, 1) (0 = off; 1 would freeze boxes), got {smoothing!r}')
        self.min_score = _check_finite('min_score', min_score)
        self._tracks: list[_TrackState] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """All tracks, tentative ones included (for debugging)."""
        return [t.snapshot() for t in self._tracks]

    @property
    def confirmed(self) -> list[Track]:
        """Confirmed tracks, the ones to publish."""
        return [t.snapshot() for t in self._tracks if t.confirmed]

    def update(self, stamp: float, detections: Sequence[Detection]) -> list[Track]:
        """Associate one frame's detections and return the confirmed tracks."""
        vote, release = self._accept(stamp)
        if not vote:
            return self.confirmed
        if release:
            self._tracks.clear()
        detections = [d for d in detections if d.score >= self.min_score]
        track_boxes = np.array([t.raw_box for t in self._tracks], dtype=float).reshape(-1, 4)
        pairs = match_boxes(track_boxes, [t.class_id for t in self._tracks],
                            [d.box for d in detections], [d.class_id for d in detections],
                            self.min_iou)
        matched_tracks = {t for t, _ in pairs}
        matched_dets = {d for _, d in pairs}
        for t, d in pairs:
            track, det = self._tracks[t], detections[d]
            track.raw_box = np.asarray(det.box, dtype=float)
            track.box = self.smoothing * track.box + (1 - self.smoothing) * track.raw_box
            track.score = float(det.score)
            track.hits += 1
            track.misses = 0
        m = self.m
        kept = []
        for index, track in enumerate(self._tracks):
            if index not in matched_tracks:
                track.misses += 1
                if not track.confirmed or (m is not None and track.misses >= m):
                    continue
            kept.append(track)
        for index, det in enumerate(detections):
            if index not in matched_dets:
                kept.append(_TrackState(str(self._next_id), det))
                self._next_id += 1
        n = self.n
        for track in kept:
            if not track.confirmed and n is not None and track.hits >= n:
                track.confirmed = True
        self._tracks = kept
        return self.confirmed

    def check_timeout(self, stamp_now: float) -> bool:
        """Delete all tracks if no input arrived for timeout_s; True if any was confirmed."""
        if not self._timed_out(stamp_now):
            return False
        had_confirmed = any(t.confirmed for t in self._tracks)
        self._tracks.clear()
        return had_confirmed

    def describe(self) -> str:
        """One line for logging when it changes."""
        confirmed = ', '.join(f'{t.id}:{t.class_id}' for t in self._tracks if t.confirmed)
        return f'tracks={len(self._tracks)} confirmed=[{confirmed}] {self._counters()}'

"""Confirming detections: class-aware IoU tracking with N-frame confirmation and stable ids.

Detections are associated with tracks by an optimal assignment (maximum total IoU); a track
is published only once confirmed, with an id that never changes or repeats. The rate
bookkeeping is shared with the label voter in :mod:`ros_onnx_vision.smoothing.rate`.
No ROS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ros_onnx_vision.geometry import Box, Boxes, iou_matrix
from ros_onnx_vision.results import Detection, Result
from ros_onnx_vision.smoothing.rate import check_finite, check_positive, RateVoting


@dataclass(frozen=True)
class Track:
    """Snapshot of a tracked object; only confirmed tracks are meant to be published."""

    id: str  # noqa: A003 (same name as vision_msgs Detection2D.id)
    label: str
    score: float  # score of the latest matched detection
    box: Box  # smoothed box when smoothing > 0
    hits: int  # frames matched since creation
    misses: int  # consecutive frames without a match
    confirmed: bool

    def as_detection(self) -> Detection:
        """The track as a result: its box, label and score, with its id as track_id."""
        return Detection(self.label, self.score, self.box, track_id=self.id)


class _TrackState:
    """Mutable per-track bookkeeping behind the Track snapshots."""

    def __init__(self, track_id: str, detection: Detection) -> None:
        self.id = track_id
        self.label = detection.label
        self.score = float(detection.score)
        self.raw_box = np.asarray(detection.box, dtype=float)  # associated on, never smoothed
        self.box = self.raw_box.copy()
        self.hits = 1
        self.misses = 0
        self.confirmed = False

    def snapshot(self) -> Track:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return Track(self.id, self.label, self.score, (x1, y1, x2, y2),
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


class DetectionTracker(RateVoting):
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
        self.min_iou = check_positive('min_iou', min_iou)
        if self.min_iou > 1:
            raise ValueError(f'min_iou must be in (0, 1], got {min_iou!r}')
        self.smoothing = check_finite('smoothing', smoothing)
        if not 0 <= self.smoothing < 1:
            raise ValueError(
                f'smoothing must be in [0, 1) (0 = off; 1 would freeze boxes), got {smoothing!r}')
        self.min_score = check_finite('min_score', min_score)
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
        pairs = match_boxes(track_boxes, [t.label for t in self._tracks],
                            [d.box for d in detections], [d.label for d in detections],
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

    def vote(self, stamp: float, results: Sequence[Result]) -> list[Result]:
        """Associate the frame's detections; the confirmed tracks as detections."""
        return [track.as_detection() for track in self.update(stamp, results)]

    def release_if_stale(self, stamp_now: float) -> bool:
        return self.check_timeout(stamp_now)

    @property
    def confirmed_keys(self) -> list[str]:
        return sorted(t.id for t in self._tracks if t.confirmed)

    def describe(self) -> str:
        """One line for logging when it changes."""
        confirmed = ', '.join(f'{t.id}:{t.label}' for t in self._tracks if t.confirmed)
        return f'tracks={len(self._tracks)} confirmed=[{confirmed}] {self._counters()}'

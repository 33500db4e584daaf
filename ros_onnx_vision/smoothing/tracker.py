"""Confirming detections: class-aware tracking with "N of the last N + slack" confirmation.

Detections are associated with the tracks' predicted boxes by an optimal assignment; a track
is published only once confirmed, with an id that never changes or repeats, and only while it
is seen or was missed for a short gap. The rule, as users can check it against the output, is
in :class:`DetectionTracker` and docs/voting.md. The rate bookkeeping is shared with the label
voter in :mod:`ros_onnx_vision.smoothing.rate`. No ROS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ros_onnx_vision.geometry import Box, Boxes, iou_matrix
from ros_onnx_vision.results import Detection, Result
from ros_onnx_vision.smoothing.rate import check_finite, check_positive, RateVoting

# Box width and height may differ by at most this factor between a track and its detection
# when they are associated on centre distance (IoU below min_iou).
_MAX_SIZE_RATIO = 1.6
# Weight of the newest measured velocity in the track's velocity (exponential average): one
# noisy frame (a shaking camera) must not throw the prediction far.
_VELOCITY_GAIN = 0.2
# A missed track whose predicted box is covered this much by one detection is taken as
# hidden behind that person.
_HIDDEN_COVER = 0.5
# A largest x2 (y2) that recurs within this many pixels on this many frames is the border.
_BORDER_TOLERANCE = 0.01
_BORDER_FRAMES = 2
# A released track is remembered until _FORGET_RELEASES x M consecutive misses (3 s with the
# default M = N = FPS / 2), and is published again (same id) once matched on this many
# consecutive frames: a person who stepped out from behind another or back into the picture, not
# a one-frame false positive in their place. On the dev video, remembering 1 s (2 M) lost
# people hidden for longer to a new track that needed its N frames again: 3 s gave 0.9% more
# of raw recall there and up to 1.8% on hand-held copies; longer, little more.
_REGAIN_FRAMES = 2
_FORGET_RELEASES = 6
# A missed track is published at its predicted box only while its predictions have been landing
# on its detections (a running mean, gain 0.5, of their IoU at least this) and the camera is
# steady (a running mean, gain 0.3, of the frame's camera shift at most this many box widths).
# On the shaken dev copy a coasted box was more often off the person than on; a stricter IoU
# alone (0.8) also stopped bridging small people's jittering boxes on a steady camera.
_COAST_PREDICTION_IOU = 0.5
_PREDICTION_IOU_GAIN = 0.5
_COAST_SHAKE = 0.1
_SHAKE_GAIN = 0.3
# Camera shift proposals: each track's nearest detections, at most this many, within this many
# box sizes; of them, the most offered few are scored.
_SHIFT_PROPOSALS = 3
_SHIFT_RANGE = 3.0
_SHIFT_CANDIDATES = 8


@dataclass(frozen=True)
class Track:
    """Snapshot of a tracked object; only confirmed tracks are meant to be published."""

    id: str  # noqa: A003 (same name as vision_msgs Detection2D.id)
    label: str
    score: float  # score of the latest matched detection
    box: Box  # this frame's detection (smoothed when smoothing > 0), else the predicted box
    hits: int  # frames matched since creation
    misses: int  # consecutive frames without a match
    confirmed: bool  # published now: confirmed once, and seen or missed for <= the coast gap
    predicted: bool = False  # box is a constant-velocity prediction (missed this frame)

    def as_detection(self) -> Detection:
        """The track as a result: its box, label and score, with its id as track_id."""
        return Detection(self.label, self.score, self.box, track_id=self.id)


class _TrackState:
    """Mutable per-track bookkeeping behind the Track snapshots."""

    def __init__(self, track_id: str, detection: Detection, stamp: float) -> None:
        self.id = track_id
        self.label = detection.label
        self.score = float(detection.score)
        self.raw_box = np.asarray(detection.box, dtype=float)  # latest detection, unsmoothed
        self.box = self.raw_box.copy()  # published box while matched
        self.stamp = stamp  # of the latest match
        self.velocity = np.zeros(2)  # box centre, pixels per second
        self.seen = [True]  # matched or not, per frame, latest last (N + slack at most)
        self.hits = 1
        self.misses = 0
        self.ever_confirmed = False
        self.published = False
        self.regained = 0  # consecutive matches since it was re-found after being released
        self.prediction_iou: float | None = None  # running mean IoU, prediction vs detection

    def predict(self, stamp: float, horizon_s: float) -> np.ndarray:
        """The latest detection moved on at the track's velocity (for at most horizon_s)."""
        dt = min(max(stamp - self.stamp, 0.0), horizon_s)
        return self.raw_box + np.tile(self.velocity * dt, 2)

    def matched(self, detection: Detection, stamp: float, smoothing: float) -> None:
        box = np.asarray(detection.box, dtype=float)
        dt = stamp - self.stamp
        if dt > 0:
            centre_shift = (box[:2] + box[2:] - self.raw_box[:2] - self.raw_box[2:]) / 2
            self.velocity += _VELOCITY_GAIN * (centre_shift / dt - self.velocity)
        if self.misses:  # re-found: start smoothing afresh rather than from a stale box
            self.box = box.copy()
        self.raw_box, self.stamp = box, stamp
        self.box = smoothing * self.box + (1 - smoothing) * box
        self.score = float(detection.score)
        self.hits += 1
        self.misses = 0
        self.seen.append(True)

    def landed(self, prediction_iou: float) -> None:
        """Matched with a detection overlapping its predicted box by prediction_iou."""
        if self.prediction_iou is None:
            self.prediction_iou = prediction_iou
        else:
            self.prediction_iou += _PREDICTION_IOU_GAIN * (prediction_iou - self.prediction_iou)

    def released(self, m: int) -> bool:
        """Confirmed once, then missed M times in a row and not yet regained."""
        return self.ever_confirmed and (self.misses >= m or self.regained > 0)

    def missed(self, camera_shift: np.ndarray) -> None:
        """Not matched on this frame; the camera moved its picture by camera_shift pixels
        (x, y) since the last frame, so the unseen person's box moves with it."""
        self.misses += 1
        self.seen.append(False)
        self.raw_box = self.raw_box + np.tile(camera_shift, 2)

    def snapshot(self, stamp: float, horizon_s: float) -> Track:
        box = self.box if not self.misses else self.predict(stamp, horizon_s)
        x1, y1, x2, y2 = (float(v) for v in box)
        return Track(self.id, self.label, self.score, (x1, y1, x2, y2), self.hits, self.misses,
                     self.published, bool(self.misses))


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


def _same_class(track_classes: Sequence[str], det_classes: Sequence[str]) -> np.ndarray:
    """[track, detection]: whether the two have the same class."""
    return np.asarray(track_classes, dtype=object)[:, None] == \
        np.asarray(det_classes, dtype=object)[None, :]


def _pair_geometry(tracks: np.ndarray,
                   dets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[track, detection]: the centre offset in pixels ([..., (dx, dy)]), its length in track
    box widths and heights (sqrt((dx / w)^2 + (dy / h)^2)), and the larger of the width and
    height ratios (>= 1)."""
    size = np.clip(tracks[:, 2:] - tracks[:, :2], 1e-6, None)
    det_size = np.clip(dets[:, 2:] - dets[:, :2], 1e-6, None)
    offsets = ((dets[None, :, :2] + dets[None, :, 2:]) -
               (tracks[:, None, :2] + tracks[:, None, 2:])) / 2
    relative = offsets / size[:, None, :]
    distance = np.hypot(relative[..., 0], relative[..., 1])
    ratio = np.maximum(det_size[None] / size[:, None], size[:, None] / det_size[None]).max(-1)
    return offsets, distance, ratio


def associate(track_boxes: Boxes, track_classes: Sequence[str], det_boxes: Boxes,
              det_classes: Sequence[str], min_iou: float,
              max_distance: float) -> list[tuple[int, int]]:
    """Pairs (track, detection) of equal class maximising the total similarity.

    A pair may match when its IoU >= min_iou, or when the detection's centre lies within
    max_distance of the track box's centre, measured in track box widths and heights
    (sqrt((dx / w)^2 + (dy / h)^2)), with width and height within a factor 1.6: a shaking
    camera or a fast person moves a box further than IoU tolerates, not its size. Similarity
    = IoU + (1 - distance / max_distance), so the closest, most overlapping pairs win.
    """
    tracks = np.asarray(track_boxes, dtype=float).reshape(-1, 4)
    dets = np.asarray(det_boxes, dtype=float).reshape(-1, 4)
    if not len(tracks) or not len(dets):
        return []
    iou = iou_matrix(tracks, dets)
    _, distance, ratio = _pair_geometry(tracks, dets)
    near = (distance <= max_distance) & (ratio <= _MAX_SIZE_RATIO) & (max_distance > 0)
    allowed = _same_class(track_classes, det_classes) & ((iou >= min_iou) | near)
    closeness = np.clip(1 - distance / max_distance, 0, None) if max_distance > 0 else 0.0
    # Allowed pairs weigh > 0, forbidden ones 0: the optimum over all pairs is the optimum
    # over allowed ones, and pairs it puts on forbidden cells are just "unmatched".
    weight = np.where(allowed, iou + closeness + 1e-6, 0.0)
    return [(t, d) for t, d in hungarian(-weight) if weight[t, d] > 0]


def camera_shift(track_boxes: Boxes, track_classes: Sequence[str], det_boxes: Boxes,
                 det_classes: Sequence[str]) -> np.ndarray:
    """The picture's shift (x, y pixels) from the tracks' predicted boxes to this frame's
    detections: the translation that lines up the most of them.

    Each track proposes the shifts to its nearest same-class detections of similar size
    (at most _SHIFT_PROPOSALS, within _SHIFT_RANGE box sizes); a proposal scores the sum over
    tracks of their best IoU >= 0.5 once shifted, and the best one is refined to the median
    offset of the pairs it lines up; of proposals about as good, the smallest wins (no shift
    is always a proposal). A shaking camera moves every box alike, by up to a box width a
    frame, further than per-track association survives (it pairs neighbours).
    """
    tracks = np.asarray(track_boxes, dtype=float).reshape(-1, 4)
    dets = np.asarray(det_boxes, dtype=float).reshape(-1, 4)
    if not len(tracks) or not len(dets):
        return np.zeros(2)
    same = _same_class(track_classes, det_classes)
    offsets, distance, ratio = _pair_geometry(tracks, dets)
    distance = np.where(same & (ratio <= _MAX_SIZE_RATIO) & (distance <= _SHIFT_RANGE),
                        distance, np.inf)
    nearest = np.argsort(distance, axis=1)[:, :_SHIFT_PROPOSALS]
    rows = np.repeat(np.arange(len(tracks)), nearest.shape[1])
    cols = nearest.ravel()
    keep = np.isfinite(distance[rows, cols])
    offered = offsets[rows[keep], cols[keep]]
    # The camera's shift is proposed by most tracks at once: bin the proposals (cells of a
    # quarter of the median box size) and score the _SHIFT_CANDIDATES most offered bins only,
    # so a crowd costs a few IoU matrices, not one per proposal.
    cell = np.median(tracks[:, 2:] - tracks[:, :2], axis=0) / 4
    _, inverse, counts = np.unique(np.round(offered / cell), axis=0, return_inverse=True,
                                   return_counts=True)
    inverse = inverse.reshape(-1)
    proposals = np.vstack([np.zeros((1, 2))] + [
        np.median(offered[inverse == b], axis=0, keepdims=True)
        for b in np.argsort(-counts, kind='stable')[:_SHIFT_CANDIDATES]])
    # [proposal, track, detection] IoU of every shifted track with every detection.
    shifted = tracks[None] + np.tile(proposals, 2)[:, None, :]
    overlap = np.stack([iou_matrix(boxes, dets) for boxes in shifted])
    overlap = np.where(same[None] & (overlap >= 0.5), overlap, 0.0)
    scores = overlap.max(axis=2).sum(axis=1)
    # The smallest shift of those lining up about as many tracks (within half a track): in a
    # row of evenly spaced people with one missing, a shift by the spacing lines up as many.
    near_best = np.flatnonzero(scores >= scores.max() - 0.5)
    best = int(near_best[np.argmin(np.hypot(*proposals[near_best].T))])
    if scores[best] <= 0:
        return np.zeros(2)
    lined_up = overlap[best]
    pairs = [(t, d) for t, d in hungarian(-lined_up) if lined_up[t, d] > 0]
    return np.median([offsets[t, d] for t, d in pairs], axis=0)


class DetectionTracker(RateVoting):
    """Confirm detections seen in N of the last N + slack frames, by class-aware tracking.

    N = FPS x window_s, slack = ceil(N / 4), coast gap G = max(1, N // 4) (coast_frames when
    given), M = release_frames, else N; all in processed frames, so they follow the measured
    rate.
    Each track predicts its box at the frame's stamp (its latest detection moved on at its
    velocity, an exponential average of the measured ones). Detections are associated with
    the predicted boxes by an optimal assignment (:func:`associate`: IoU >= min_iou or centre
    within max_distance box sizes, classes never mixed) in a cascade: confirmed tracks matched
    on the previous frame first, then the missed confirmed ones, then the released ones, then
    the tentative ones; with motion compensation the camera's shift (:func:`camera_shift` of
    the tracks seen on the previous frame) is applied to every prediction first. A new track
    is tentative; it is
    confirmed on a frame where it is matched and was matched in at least N (and at least 2) of
    its last N + slack frames; it is dropped after more than slack consecutive misses. A
    confirmed track is published with this frame's detection box when matched (exponentially
    smoothed when smoothing > 0), with its predicted box for the first G consecutive misses,
    then not at all; coasting needs the track matched on at least max(2, N // 2) of its last
    N + slack frames, its recent predictions to have landed on its detections (running mean
    IoU >= 0.5) and a steady camera (running mean shift <= 0.1 box widths). It keeps its id
    while unpublished and is published again at once when it is matched before M consecutive
    misses. After M misses it is released, and remembered for 5 M more: matched on 2
    consecutive frames in that time, it is published again with its id, else deleted. Ids are
    increasing integers as strings, never reused. A timeout without input or a clock restart
    deletes all.
    """

    def __init__(self, *, window_s: float = 0.5, release_frames: int | None = None,
                 min_iou: float = 0.3, max_distance: float = 1.5, coast_frames: int | None = None,
                 motion_compensation: bool = True, smoothing: float = 0.0,
                 min_score: float = 0.0, timeout_s: float = 1.0, rate_window_s: float = 2.0,
                 default_fps: float | None = None) -> None:
        """Validate parameters; see the class docstring for their meaning."""
        super().__init__(window_s, release_frames, timeout_s, rate_window_s, default_fps)
        self.min_iou = check_positive('min_iou', min_iou)
        if self.min_iou > 1:
            raise ValueError(f'min_iou must be in (0, 1], got {min_iou!r}')
        self.max_distance = check_finite('max_distance', max_distance)
        if self.max_distance < 0:
            raise ValueError(f'max_distance must be >= 0 (0 = IoU only), got {max_distance!r}')
        if coast_frames is not None and (isinstance(coast_frames, bool) or
                                         not isinstance(coast_frames, int) or coast_frames < 0):
            raise ValueError('coast_frames must be an integer >= 0 or None (= max(1, N // 4)), '
                             f'got {coast_frames!r}')
        self.coast_frames = coast_frames
        self.motion_compensation = bool(motion_compensation)
        self.smoothing = check_finite('smoothing', smoothing)
        if not 0 <= self.smoothing < 1:
            raise ValueError(
                f'smoothing must be in [0, 1) (0 = off; 1 would freeze boxes), got {smoothing!r}')
        self.min_score = check_finite('min_score', min_score)
        self._tracks: list[_TrackState] = []
        self._next_id = 1
        self._shake = 0.0  # running mean camera shift per frame, in box widths
        self._stamp = 0.0  # of the latest vote
        # Largest x2, y2 of any detection and on how many frames it recurred: the decoders
        # clip boxes to the picture, so a recurring maximum is its right or bottom border.
        self._extent = np.zeros(2)
        self._extent_hits = np.zeros(2, dtype=int)

    @property
    def slack(self) -> int | None:
        """Misses tolerated before confirmation: N of the last N + slack frames confirm."""
        n = self.n
        return None if n is None else -(-n // 4)

    @property
    def coast(self) -> int | None:
        """G: consecutive misses for which a confirmed track is published at its prediction."""
        n, m = self.n, self.m
        if n is None or m is None:
            return None
        # A quarter window: long enough to carry a person through single missed frames at any
        # rate, short enough that the prediction still covers them (with N // 2 a third of the
        # coasted boxes on the dev video were off the person: precision below raw).
        gap = self.coast_frames if self.coast_frames is not None else max(1, n // 4)
        return min(gap, m - 1)

    @property
    def tracks(self) -> list[Track]:
        """All tracks, tentative and unpublished ones included (for debugging)."""
        horizon = self._horizon_s()
        return [t.snapshot(self._stamp, horizon) for t in self._tracks]

    @property
    def confirmed(self) -> list[Track]:
        """Published tracks: confirmed, and seen or missed for at most the coast gap."""
        horizon = self._horizon_s()
        return [t.snapshot(self._stamp, horizon) for t in self._tracks if t.published]

    def update(self, stamp: float, detections: Sequence[Detection]) -> list[Track]:
        """Associate one frame's detections and return the published tracks."""
        vote, release = self._accept(stamp)
        if not vote:
            return self.confirmed
        if release:
            self._tracks.clear()
            self._shake = 0.0
        self._stamp = stamp
        detections = [d for d in detections if d.score >= self.min_score]
        self._update_extent(detections)
        horizon = self._horizon_s()
        predicted = np.array([t.predict(stamp, horizon) for t in self._tracks],
                             dtype=float).reshape(-1, 4)
        # Matching cascade: confirmed tracks matched on the previous frame, then confirmed
        # ones missed (coasting or unpublished), then released ones, then tentative ones.
        # Where two people cross and one is hidden, the track that followed the visible one
        # keeps it and the hidden one's track takes the person re-appearing beside it, instead
        # of an optimum over both that trades one close pair for two loose ones (an identity
        # swap).
        m = self.m or 1
        levels = [[i for i, t in enumerate(self._tracks)
                   if t.ever_confirmed and not t.misses and not t.released(m)],
                  [i for i, t in enumerate(self._tracks)
                   if t.ever_confirmed and t.misses and not t.released(m)],
                  [i for i, t in enumerate(self._tracks) if t.released(m)],
                  [i for i, t in enumerate(self._tracks) if not t.ever_confirmed]]
        # Camera motion from the tracks seen on the previous frame (tentative ones too, so a
        # shaking camera does not restart them before they are confirmed): a missed track's
        # box is older, and no measure of it. The consensus outvotes a false positive.
        shift = np.zeros(2)
        seen = [i for i, t in enumerate(self._tracks) if not t.misses]
        if self.motion_compensation and seen and detections:
            shift = camera_shift(predicted[seen], [self._tracks[i].label for i in seen],
                                 [d.box for d in detections], [d.label for d in detections])
            predicted = predicted + np.tile(shift, 2)
        pairs = self._cascade(levels, predicted, detections)
        for t, d in pairs:
            self._tracks[t].landed(float(iou_matrix(predicted[t], detections[d].box)[0, 0]))
        self._apply(stamp, detections, dict(pairs), shift)
        if self.motion_compensation and len(self._tracks):
            # After publishing: coasting follows how the camera has been moving, so one jolt
            # of a steady camera is still bridged (the coasted box moves with it).
            widths = [t.raw_box[2] - t.raw_box[0] for t in self._tracks if not t.misses]
            if widths:
                self._shake += _SHAKE_GAIN * (float(np.hypot(*shift)) / max(
                    float(np.median(widths)), 1e-6) - self._shake)
        return self.confirmed

    def _cascade(self, levels: Sequence[Sequence[int]], predicted: np.ndarray,
                 detections: Sequence[Detection]) -> list[tuple[int, int]]:
        """Associate each level of tracks in turn with the detections the former left."""
        pairs: list[tuple[int, int]] = []
        free = list(range(len(detections)))
        for level in levels:
            if level and free:
                pairs += self._associate(level, predicted, detections, free)
                used = {d for _, d in pairs}
                free = [d for d in free if d not in used]
        return pairs

    def _associate(self, track_indices: Sequence[int], predicted: np.ndarray,
                   detections: Sequence[Detection],
                   det_indices: Sequence[int]) -> list[tuple[int, int]]:
        rows, cols = list(track_indices), list(det_indices)
        pairs = associate(predicted[rows], [self._tracks[t].label for t in rows],
                          [detections[d].box for d in cols], [detections[d].label for d in cols],
                          self.min_iou, self.max_distance)
        return [(rows[t], cols[d]) for t, d in pairs]

    def _apply(self, stamp: float, detections: Sequence[Detection],
               matches: dict[int, int], camera_shift: np.ndarray) -> None:
        n, m, slack, coast = self.n, self.m, self.slack, self.coast
        kept = []
        for index, track in enumerate(self._tracks):
            released = m is not None and track.released(m)
            if index in matches:
                track.matched(detections[matches[index]], stamp, self.smoothing)
                if released:  # published again (regained = 0) on its _REGAIN_FRAMES-th match
                    track.regained += 1
                    if track.regained >= _REGAIN_FRAMES:
                        track.regained = 0
            else:
                track.missed(camera_shift)
                if track.regained and m is not None:  # the regain failed: released again
                    track.regained, track.misses = 0, max(track.misses, m)
                limit = None if m is None else _FORGET_RELEASES * m if track.ever_confirmed else \
                    (slack or 0) + 1
                if limit is not None and track.misses >= limit:
                    continue
            kept.append(track)
        matched_dets = set(matches.values())
        for index, det in enumerate(detections):
            if index not in matched_dets:
                kept.append(_TrackState(str(self._next_id), det, stamp))
                self._next_id += 1
        for track in kept:
            if n is not None and slack is not None:
                del track.seen[:-(n + slack)]
                if not track.ever_confirmed and not track.misses and \
                        sum(track.seen) >= max(2, n):
                    track.ever_confirmed = True
            # Coasting also needs the track seen on half its recent window: one regained after
            # seconds away (2 matches) has no motion to go on (on the dev video it coasted a
            # person's sliver out of the picture for 3 frames).
            track.published = track.ever_confirmed and coast is not None and \
                not track.regained and track.misses <= coast and not (track.misses and (
                    sum(track.seen) < max(2, (n or 0) // 2) or
                    (track.prediction_iou or 0.0) < _COAST_PREDICTION_IOU or
                    self._shake > _COAST_SHAKE or
                    self._leaving(track, stamp) or self._hidden(track, stamp, detections)))
        self._tracks = kept

    def _update_extent(self, detections: Sequence[Detection]) -> None:
        ends = np.array([d.box[2:] for d in detections], dtype=float).reshape(-1, 2)
        if not len(ends):
            return
        top = ends.max(axis=0)
        recurred = np.abs(ends - self._extent).min(axis=0) <= _BORDER_TOLERANCE
        grew = top > self._extent + _BORDER_TOLERANCE
        self._extent_hits = np.where(grew, 1, self._extent_hits + recurred)
        self._extent = np.where(grew, top, self._extent)

    def _leaving(self, track: _TrackState, stamp: float) -> bool:
        """Whether the predicted box crosses a border of the picture: the person walked out."""
        box = track.predict(stamp, self._horizon_s())
        known = self._extent_hits >= _BORDER_FRAMES
        return bool(box[0] < 0 or box[1] < 0 or np.any(known & (box[2:] > self._extent)))

    def _hidden(self, track: _TrackState, stamp: float,
                detections: Sequence[Detection]) -> bool:
        """Whether a detection of its class covers most of the predicted box: the person is
        behind someone, and a fully occluded person is not there to act on."""
        det_boxes = np.array([d.box for d in detections if d.label == track.label],
                             dtype=float).reshape(-1, 4)
        if not len(det_boxes):
            return False
        box = track.predict(stamp, self._horizon_s())
        size = np.clip(np.minimum(det_boxes[:, 2:], box[2:]) - np.maximum(det_boxes[:, :2],
                                                                           box[:2]), 0, None)
        area = max(float(np.prod(box[2:] - box[:2])), 1e-6)
        return bool((size.prod(axis=1) / area).max() >= _HIDDEN_COVER)

    def _horizon_s(self) -> float:
        """How far ahead boxes are predicted: the coast gap (one frame more), in seconds."""
        fps, coast = self.fps, self.coast
        return 0.0 if fps is None or coast is None else (coast + 1) / fps

    def check_timeout(self, stamp_now: float) -> bool:
        """Delete all tracks if no input arrived for timeout_s; True if any was published."""
        if not self._timed_out(stamp_now):
            return False
        had_confirmed = any(t.published for t in self._tracks)
        self._tracks.clear()
        return had_confirmed

    def vote(self, stamp: float, results: Sequence[Result]) -> list[Result]:
        """Associate the frame's detections; the published tracks as detections."""
        return [track.as_detection() for track in self.update(stamp, results)]

    def release_if_stale(self, stamp_now: float) -> bool:
        return self.check_timeout(stamp_now)

    @property
    def confirmed_keys(self) -> list[str]:
        return sorted(t.id for t in self._tracks if t.published)

    def describe(self) -> str:
        """One line for logging when it changes."""
        confirmed = ', '.join(f'{t.id}:{t.label}' for t in self._tracks if t.published)
        return (f'tracks={len(self._tracks)} confirmed=[{confirmed}] {self._counters()} '
                f'slack={self.slack} coast={self.coast}')

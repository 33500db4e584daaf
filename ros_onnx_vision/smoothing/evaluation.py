"""Scoring raw vs confirmed detections on labelled video, and replaying detections offline.

MOTChallenge-style per-frame matching at IoU >= 0.5: a labelled person keeps the output id it
was matched to last time while that output still overlaps it by 0.5 (identity continuity),
the rest are matched by an optimal assignment (maximum total IoU). A labelled person matched
to a different id than the last time it was matched is an id switch. Frame-level recall and
precision, count changes (frames whose number of outputs differs from the previous scored
frame) and id switches are the figures; only frames that got a result after the first
``skip_s`` seconds are scored. The replay feeds cached detections to a DetectionTracker with
camera stamps, at a camera rate resampled from the video's and with the frames that a slower
processing rate would skip left out. No ROS imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import random
from typing import Any

import numpy as np

from ros_onnx_vision.geometry import iou_matrix
from ros_onnx_vision.results import Detection
from ros_onnx_vision.smoothing.labelled_video import LabelledFrame
from ros_onnx_vision.smoothing.tracker import DetectionTracker, hungarian

MATCH_IOU = 0.5


def load_infer_jsonl(path: Path) -> list[list[Detection]]:
    """Detections per frame from `python -m ros_onnx_vision infer` output (one line a frame)."""
    frames = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            frames.append([Detection.from_dict(d) for d in record.get('detections', [])])
    return frames


@dataclass
class Scores:
    """Matching outcome over the scored frames of one output stream."""

    frames: int = 0
    truth: int = 0  # labelled people over the scored frames
    tp: int = 0
    fp: int = 0
    id_switches: int = 0
    count_changes: int = 0
    truth_tracks: int = 0  # labelled ids seen in the scored frames
    max_track_switches: int = 0  # the most id switches of any one labelled person

    @property
    def fn(self) -> int:
        return self.truth - self.tp

    @property
    def recall(self) -> float:
        return self.tp / self.truth if self.truth else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), 'fn': self.fn, 'recall': round(self.recall, 3),
                'precision': round(self.precision, 3)}


def score_frames(truth: Sequence[LabelledFrame], outputs: Sequence[Sequence[Detection]],
                 with_ids: bool = True) -> Scores:
    """Score outputs[i] against truth[i], frame by frame in order (see the module docstring)."""
    scores = Scores()
    last_id: dict[int, str] = {}  # labelled id -> output id it was last matched to
    switches: dict[int, int] = {}
    seen: set[int] = set()
    previous_count: int | None = None
    for frame, dets in zip(truth, outputs, strict=True):
        scores.frames += 1
        scores.truth += len(frame.boxes)
        seen.update(frame.ids)
        if previous_count is not None and len(dets) != previous_count:
            scores.count_changes += 1
        previous_count = len(dets)
        iou = iou_matrix(frame.boxes, [d.box for d in dets]) if dets else np.zeros(
            (len(frame.boxes), 0))
        pairs: list[tuple[int, int]] = []
        free_t, free_d = set(range(len(frame.boxes))), set(range(len(dets)))
        if with_ids:
            by_id = {d.track_id: k for k, d in enumerate(dets) if d.track_id}
            for t, gid in enumerate(frame.ids):
                k = by_id.get(last_id.get(gid, ''))
                if k is not None and k in free_d and iou[t, k] >= MATCH_IOU:
                    pairs.append((t, k))
                    free_t.discard(t)
                    free_d.discard(k)
        rows, cols = sorted(free_t), sorted(free_d)
        if rows and cols:
            sub = iou[np.ix_(rows, cols)]
            weight = np.where(sub >= MATCH_IOU, sub, 0.0)
            pairs += [(rows[r], cols[c]) for r, c in hungarian(-weight) if weight[r, c] > 0]
        scores.tp += len(pairs)
        scores.fp += len(dets) - len(pairs) - _on_ignored(frame, dets, {k for _, k in pairs})
        if with_ids:
            for t, k in pairs:
                gid, tid = frame.ids[t], dets[k].track_id
                if gid in last_id and last_id[gid] != tid:
                    scores.id_switches += 1
                    switches[gid] = switches.get(gid, 0) + 1
                last_id[gid] = tid
    scores.truth_tracks = len(seen)
    scores.max_track_switches = max(switches.values(), default=0)
    return scores


def _on_ignored(frame: LabelledFrame, dets: Sequence[Detection], matched: set[int]) -> int:
    """How many unmatched detections lie on an ignored region (IoU >= 0.5, one each)."""
    rest = [d.box for k, d in enumerate(dets) if k not in matched]
    if not frame.ignore or not rest:
        return 0
    iou = iou_matrix(rest, frame.ignore)
    weight = np.where(iou >= MATCH_IOU, iou, 0.0)
    return sum(1 for r, c in hungarian(-weight) if weight[r, c] > 0)


def resample(frames: int, video_fps: float, camera_fps: float) -> list[int]:
    """Video frame shown at each tick of a camera at camera_fps (nearest earlier frame)."""
    ticks = math.floor((frames - 1) / video_fps * camera_fps + 1e-9) + 1
    return [min(frames - 1, math.floor(k * video_fps / camera_fps + 1e-9)) for k in range(ticks)]


def processed_ticks(count: int, camera_fps: float, processed_hz: tuple[float, float] | None,
                    seed: int = 0) -> list[int]:
    """Camera ticks that a newest-frame pipeline processes when each frame takes a random
    1 / U(processed_hz) seconds (all ticks when processed_hz is None)."""
    if processed_hz is None:
        return list(range(count))
    rng = random.Random(seed)
    ticks, free_at = [], 0.0
    while True:
        # The newest frame already captured when the processor gets free, else the next one.
        tick = max(math.floor(free_at * camera_fps + 1e-9), ticks[-1] + 1 if ticks else 0)
        if tick >= count:
            return ticks
        ticks.append(tick)
        free_at = max(free_at, tick / camera_fps) + 1.0 / rng.uniform(*processed_hz)


@dataclass
class Replay:
    """One replayed stream: the scored frames' labels, raw and confirmed outputs, stamps."""

    stamps: list[float]
    truth: list[LabelledFrame]
    raw: list[list[Detection]]
    confirmed: list[list[Detection]]
    n: int | None = None

    def scores(self, skip_s: float = 0.5) -> dict[str, Scores]:
        """Raw and confirmed scores after the first skip_s seconds."""
        start = next((i for i, t in enumerate(self.stamps) if t - self.stamps[0] >= skip_s),
                     len(self.stamps))
        return {'raw': score_frames(self.truth[start:], self.raw[start:], with_ids=False),
                'confirmed': score_frames(self.truth[start:], self.confirmed[start:])}


def replay(truth: Sequence[LabelledFrame], detections: Sequence[Sequence[Detection]],
           video_fps: float, camera_fps: float | None = None,
           processed_hz: tuple[float, float] | None = None, seed: int = 0,
           tracker: Callable[[], DetectionTracker] = DetectionTracker,
           start_stamp: float = 1000.0) -> Replay:
    """Run a fresh tracker over the detections as a camera at camera_fps and a processing
    rate drawn from processed_hz would deliver them (see :func:`processed_ticks`)."""
    camera_fps = camera_fps or video_fps
    shown = resample(len(detections), video_fps, camera_fps)
    voter = tracker()
    out = Replay([], [], [], [])
    for tick in processed_ticks(len(shown), camera_fps, processed_hz, seed):
        stamp = start_stamp + tick / camera_fps
        frame = shown[tick]
        raw = list(detections[frame])
        out.stamps.append(stamp)
        out.truth.append(truth[frame])
        out.raw.append(raw)
        out.confirmed.append([t.as_detection() for t in voter.update(stamp, raw)])
    out.n = voter.n
    return out


@dataclass
class Scenario:
    """A camera rate and a processed-rate range to replay a sequence at."""

    name: str
    camera_fps: float | None = None  # None: the video's own rate
    processed_hz: tuple[float, float] | None = None
    seeds: Sequence[int] = field(default_factory=lambda: (0,))


SCENARIOS = (
    Scenario("camera at the video's rate, every frame processed"),
    Scenario('camera 25 Hz, processed 12-16 Hz', 25.0, (12.0, 16.0), range(5)),
    Scenario('camera 10 Hz, processed 6-8 Hz', 10.0, (6.0, 8.0), range(5)),
    Scenario('camera 30 Hz, processed 12-16 Hz', 30.0, (12.0, 16.0), range(5)),
)


def evaluate(truth: Sequence[LabelledFrame], detections: Sequence[Sequence[Detection]],
             video_fps: float, scenario: Scenario,
             tracker: Callable[[], DetectionTracker] = DetectionTracker,
             skip_s: float = 0.5) -> list[dict[str, Scores]]:
    """Raw and confirmed scores of each seed of a scenario."""
    return [replay(truth, detections, video_fps, scenario.camera_fps, scenario.processed_hz,
                   seed, tracker).scores(skip_s) for seed in scenario.seeds]


def summarise(runs: Sequence[Mapping[str, Scores]]) -> dict[str, dict[str, Any]]:
    """Worst and best recall / precision and the largest count changes and id switches of
    several seeds, per stream ('raw', 'confirmed')."""
    out: dict[str, dict[str, Any]] = {}
    for stream in ('raw', 'confirmed'):
        items = [run[stream] for run in runs]
        out[stream] = {
            'recall': (min(s.recall for s in items), max(s.recall for s in items)),
            'precision': (min(s.precision for s in items), max(s.precision for s in items)),
            'count_changes': max(s.count_changes for s in items),
            'id_switches': max(s.id_switches for s in items),
            'truth_tracks': max(s.truth_tracks for s in items),
            'max_track_switches': max(s.max_track_switches for s in items),
            'frames': (min(s.frames for s in items), max(s.frames for s in items))}
    return out

"""Confirming a classification label: N consecutive agreeing frames, N // 2 misses release it.

The voter sees only the best hypothesis of each frame; the rate bookkeeping is shared with the
tracker in :mod:`ros_onnx_vision.smoothing.rate`. No ROS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ros_onnx_vision.results import Hypothesis, Result
from ros_onnx_vision.smoothing.rate import check_finite, RateVoting


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


class LabelVoter(RateVoting):
    """Confirm a classification label after N consecutive agreeing frames, with hysteresis.

    A frame votes for its label when score >= min_score, otherwise it is "no result". Nothing
    is confirmed before the rate is known (second frame, unless default_fps is given), and a
    confirmation on frame k always has k agreeing frames, counting from the first. A confirmed
    label is released after M consecutive frames that disagree or have no result (M =
    release_frames, else N // 2 and at least 2: the label shown is gone within half a window,
    a single outlier frame never releases it), or after timeout_s without input. A different
    label with N consecutive frames replaces the confirmed one directly; it counts as misses
    meanwhile, so with M < N (the default) the old label is released at frame M and the new
    one confirmed at frame N (no label in between), with M >= N the switch happens at frame N
    without a gap. Duplicate and backward stamps are not votes; a clock restart releases
    everything.
    """

    def __init__(self, *, window_s: float = 0.5, release_frames: int | None = None,
                 min_score: float = 0.0, timeout_s: float = 1.0, rate_window_s: float = 2.0,
                 default_fps: float | None = None) -> None:
        """Validate parameters; see the class docstring for their meaning."""
        super().__init__(window_s, release_frames, timeout_s, rate_window_s, default_fps)
        self.min_score = check_finite('min_score', min_score)
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

    def vote(self, stamp: float, results: Sequence[Result]) -> list[Result]:
        """Vote with the frame's best hypothesis; the confirmed label, if any."""
        best = max(results, key=lambda r: r.score) if results else None
        state = self.update(stamp, best.label if best else None,
                            float(best.score) if best else 0.0)
        return [] if state.label is None else [Hypothesis(state.label, state.score or 0.0)]

    def release_if_stale(self, stamp_now: float) -> bool:
        return self.check_timeout(stamp_now).changed

    @property
    def confirmed_keys(self) -> list[str]:
        return [] if self._label is None else [self._label]

    def describe(self) -> str:
        """One line for logging when it changes."""
        score = '' if self._score is None else f' score={self._score:.2f}'
        return f'label={self._label}{score} {self._counters()}'

    @property
    def m(self) -> int | None:
        """Consecutive disagreeing frames that release the label: release_frames, else N // 2
        (at least 2, so that one outlier frame never releases; 1 when N is 1). N here is
        the one of the current fps estimate, even from a single interval: releasing early is
        the safe side."""
        n = super().m  # release_frames, else N of the current fps
        if self.release_frames is not None or n is None:
            return n
        return max(min(2, n), n // 2)

    def _release(self) -> None:
        self._label = self._score = self._candidate = None
        self._streak = self._misses = 0

    def _state(self, changed: bool) -> LabelState:
        return LabelState(self._label, self._score, self.fps, self.n, self.m, changed,
                          self._candidate, self._streak, self._misses)

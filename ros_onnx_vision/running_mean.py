"""A running mean, for the per-frame costs the nodes and the engine report."""

from __future__ import annotations


class RunningMean:
    """The mean of every value added; with `horizon`, it follows the last ~horizon values
    (an exponential mean once more than `horizon` were added)."""

    def __init__(self, horizon: int | None = None) -> None:
        self.horizon = horizon
        self.count = 0
        self.value = 0.0  # 0.0 before the first value

    def add(self, value: float) -> None:
        self.count += 1
        weight = self.count if self.horizon is None else min(self.count, self.horizon)
        self.value += (value - self.value) / weight

    def reset(self) -> None:
        self.count, self.value = 0, 0.0

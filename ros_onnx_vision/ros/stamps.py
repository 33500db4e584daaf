"""Header stamps <-> float seconds."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time as TimeMsg


def stamp_to_seconds(stamp: TimeMsg) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> TimeMsg:
    sec = math.floor(seconds)
    return TimeMsg(sec=int(sec), nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))

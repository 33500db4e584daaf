"""What every frame source shares: the Frame and FrameSource types, kinds, errors, helpers.

Each kind of source lives in its own module next to this one and builds on this contract;
``camera.frame_sources`` picks one (`open_source`). This module imports no source, so the
sources and the factory can both import it. Pure Python, no ROS imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
import math
import os
from pathlib import Path
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({
    '.png', '.jpg', '.jpeg', '.jpe', '.bmp', '.dib', '.tif', '.tiff', '.webp', '.pbm', '.pgm',
    '.ppm', '.pnm', '.jp2', '.ras', '.sr',
})
BAG_EXTENSIONS = frozenset({'.mcap', '.db3'})
IMAGE_MSG_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')

_MAX_SANE_FPS = 1000.0


class FrameSourceError(RuntimeError):
    """Base class of frame source errors."""


class SourceError(FrameSourceError):
    """The source cannot be opened or used (missing, unreadable, empty, misconfigured)."""


class SourceReadError(FrameSourceError):
    """A live source failed transiently; call `read()` again (after a backoff) to reconnect."""


class SourceKind(str, Enum):
    """What kind of source a source string names."""

    DEVICE = 'device'
    VIDEO = 'video'
    IMAGE = 'image'
    IMAGES = 'images'
    STREAM = 'stream'
    ROSBAG = 'rosbag'
    SYNTHETIC = 'synthetic'

    @property
    def live(self) -> bool:
        """Delivers at its own pace (device, stream): read() blocks, and reconnects on faults."""
        return self in (SourceKind.DEVICE, SourceKind.STREAM)


@dataclass
class Frame:
    """One frame delivered by a source.

    `image` is HxWx3 uint8 BGR, or HxW uint8 for mono sources; it is C-contiguous, writeable
    and owned by the caller. `source_time` is the position on the source's own timeline in
    seconds (rosbag log time, video position, synthetic index/fps), which paces replays at their
    recorded rate; it jumps back when a source loops. The node stamps every frame with its
    capture time on the node clock.
    """

    image: np.ndarray
    index: int
    source_time: float | None = None


class FrameSource(ABC):
    """A source of frames. Not thread-safe: read and close from the same thread."""

    kind: SourceKind

    def __init__(self, name: str):
        """Initialise common state; `name` is the source as shown in messages."""
        self.name = name
        self.nominal_fps: float | None = None
        self._size: tuple[int, int] | None = None
        self._count = 0
        self._warnings: list[str] = []

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the frames when known."""
        return self._size

    @abstractmethod
    def read(self) -> Frame | None:
        """Return the next frame, or None at the end of a finite, non-looping source."""

    def close(self) -> None:
        """Release the underlying resources (idempotent)."""

    @abstractmethod
    def describe(self) -> str:
        """One line describing the source, for logs."""

    def take_warnings(self) -> list[str]:
        """Return and clear non-fatal problems seen so far (skipped files, denied settings)."""
        warnings, self._warnings = self._warnings, []
        return warnings

    def _deliver(self, image: np.ndarray, source_time: float | None = None) -> Frame:
        if not image.flags.c_contiguous or not image.flags.writeable:
            image = image.copy()
        self._size = (image.shape[1], image.shape[0])
        frame = Frame(image, self._count, source_time)
        self._count += 1
        return frame

    def _fps_text(self) -> str:
        return f'{self.nominal_fps:.3g} fps' if self.nominal_fps else 'unknown fps'

    def _size_text(self) -> str:
        return f'{self._size[0]}x{self._size[1]}' if self._size else 'unknown size'

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- shared helpers

def natural_key(path: str) -> list[Any]:
    # 'img2' sorts before 'img10'
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r'(\d+)', os.path.basename(path))] + [path]


def normalize_decoded(image: np.ndarray) -> np.ndarray:
    """Bring a decoded image to uint8 BGR (HxWx3) or mono (HxW)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f'unsupported pixel type {image.dtype}')
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 1:
            image = image[:, :, 0]
        elif channels == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        elif channels != 3:
            raise ValueError(f'unsupported channel count {channels}')
    return np.ascontiguousarray(image)


def imread(path: str) -> np.ndarray | None:
    # ANYCOLOR|ANYDEPTH keeps mono as mono and 16-bit as 16-bit, drops alpha and still
    # applies EXIF orientation (IMREAD_UNCHANGED would not).
    try:
        image = cv2.imread(path, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error:
        return None
    if image is None:
        return None
    try:
        return normalize_decoded(image)
    except ValueError:
        return None


def sane_fps(value: float) -> float | None:
    return value if math.isfinite(value) and 0 < value <= _MAX_SANE_FPS else None


def redact_url(url: str) -> str:
    """Hide credentials (rtsp://user:pass@host) in messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ''
    if parts.port:
        host = f'{host}:{parts.port}'
    return urlunsplit((parts.scheme, f'***@{host}', parts.path, parts.query, parts.fragment))


def bag_files_in(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.suffix.lower() in BAG_EXTENSIONS)
    except OSError:
        return []

"""Frame sources for the camera node: kinds, the Frame and FrameSource types, open_source.

Each kind of source lives in its own module under ``camera/sources/``; this module holds what
they share and the factory that picks one, so a newcomer reads the contract here and one
implementation there. Pure Python, no ROS imports.

A *source* string names where frames come from; `infer_kind` classifies it and `open_source`
returns a `FrameSource` whose `read()` yields `Frame` objects. Supported kinds:

* DEVICE: a V4L2 camera, '/dev/video0' (or any path under /dev) or an index such as '0'.
* VIDEO: a video file OpenCV/FFmpeg can decode; loops when ``loop=True``.
* IMAGE: one image file, delivered once (or forever when looping).
* IMAGES: a directory (image files in natural sort order) or a glob pattern; undecodable files
  are skipped and reported through `FrameSource.take_warnings()`.
* STREAM: rtsp://, http(s)://, ... read through OpenCV's FFmpeg backend (MJPEG over HTTP works).
* ROSBAG: a rosbag2 recording (.mcap/.db3 file or bag directory), replaying a
  sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage topic with its recorded stamps.
* SYNTHETIC: 'synthetic', 'synthetic:640x480' or 'synthetic:640x480@30', a deterministic test
  pattern with the frame counter drawn as text and as a 16-bit binary strip.

Errors: `SourceError` means the source cannot be used (fatal); `SourceReadError` means a live
source (device, stream) failed transiently; calling `read()` again reconnects, ideally after
a delay from `Backoff`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
import math
import os
from pathlib import Path
import re
from typing import Any, TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from ros_onnx_vision.image_encodings import CAMERA_ENCODINGS

if TYPE_CHECKING:
    from ros_onnx_vision.camera.sources.capture import CaptureFactory

IMAGE_EXTENSIONS = frozenset({
    '.png', '.jpg', '.jpeg', '.jpe', '.bmp', '.dib', '.tif', '.tiff', '.webp', '.pbm', '.pgm',
    '.ppm', '.pnm', '.jp2', '.ras', '.sr',
})
VIDEO_EXTENSIONS = frozenset({
    '.avi', '.mp4', '.m4v', '.mkv', '.mov', '.webm', '.mpg', '.mpeg', '.wmv', '.flv', '.ts',
    '.mts', '.m2ts', '.3gp', '.ogv', '.mjpg', '.mjpeg', '.h264', '.264', '.h265', '.hevc',
    '.gif', '.y4m',
})
BAG_EXTENSIONS = frozenset({'.mcap', '.db3'})
STREAM_SCHEMES = frozenset({
    'rtsp', 'rtsps', 'rtmp', 'rtmps', 'http', 'https', 'udp', 'tcp', 'srt', 'rtp',
})
IMAGE_MSG_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')

ACCEPTED_FORMS = (
    "a V4L2 device ('/dev/video0' or an index like '0'), a video file (.mp4, .avi, ...), "
    "an image file (.png, .jpg, ...), a directory of images or a glob pattern ('dir/*.png'), "
    'a stream URL (rtsp://, http(s)://, ...), a rosbag2 (.mcap/.db3 file or bag directory), '
    "or 'synthetic[:WIDTHxHEIGHT][@FPS]'"
)

SYNTHETIC_RE = re.compile(r'^synthetic(?::(\d+)x(\d+))?(?:@(\d+(?:\.\d*)?))?$', re.IGNORECASE)
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


def parse_kind(text: str) -> SourceKind | None:
    """Parse a `source_kind` override; '' or 'auto' mean None (infer from the source)."""
    value = text.strip().lower()
    if value in ('', 'auto'):
        return None
    try:
        return SourceKind(value)
    except ValueError:
        accepted = ', '.join(repr(k.value) for k in SourceKind)
        raise SourceError(
            f'unknown source kind {text!r}; accepted: {accepted} or empty/auto') from None


def infer_kind(source: str) -> SourceKind:
    """Classify a source string; raises SourceError when it cannot tell."""
    text = source.strip()
    if not text:
        raise SourceError(f'empty source string; expected {ACCEPTED_FORMS}')
    if SYNTHETIC_RE.match(text):
        return SourceKind.SYNTHETIC
    scheme = urlsplit(text).scheme.lower()
    if '://' in text and scheme in STREAM_SCHEMES:
        return SourceKind.STREAM
    if text.isdigit() or text.startswith('/dev/'):
        return SourceKind.DEVICE
    path = Path(os.path.expanduser(text))
    if any(c in text for c in '*?['):
        return SourceKind.IMAGES
    if path.is_dir():
        if (path / 'metadata.yaml').is_file():
            return SourceKind.ROSBAG
        has_images = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())
        # A lone recording without metadata.yaml, e.g. a copied bag folder.
        return SourceKind.ROSBAG if bag_files_in(path) and not has_images else SourceKind.IMAGES
    suffix = path.suffix.lower()
    if suffix in BAG_EXTENSIONS:
        return SourceKind.ROSBAG
    if suffix in IMAGE_EXTENSIONS:
        return SourceKind.IMAGE
    if suffix in VIDEO_EXTENSIONS or path.is_file():
        # Unknown suffix on an existing file: let OpenCV try it as a video.
        return SourceKind.VIDEO
    raise SourceError(
        f'cannot tell what kind of source {source!r} is (no such file or directory, and not a '
        f'recognised URL or device); expected {ACCEPTED_FORMS}')


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


class Backoff:
    """Exponential retry delays: initial, initial*factor, ... capped at max_delay."""

    def __init__(self, initial: float = 0.5, factor: float = 2.0, max_delay: float = 10.0):
        """Create a backoff; `reset()` after a success restarts from `initial`."""
        if initial <= 0 or factor < 1 or max_delay < initial:
            raise ValueError(
                f'invalid backoff (initial={initial}, factor={factor}, max_delay={max_delay}); '
                'need initial > 0, factor >= 1, max_delay >= initial')
        self.initial = initial
        self.factor = factor
        self.max_delay = max_delay
        self.attempts = 0

    @property
    def current(self) -> float:
        """The delay the next `next_delay()` call returns."""
        return min(self.max_delay, self.initial * self.factor ** self.attempts)

    def next_delay(self) -> float:
        """Return the delay to wait before the next retry and grow it."""
        delay = self.current
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Forget past failures."""
        self.attempts = 0


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



# --------------------------------------------------------------------------- factory

def open_source(source: str, kind: SourceKind | str | None = None, *, loop: bool = True,
                width: int = 0, height: int = 0, fps: float = 0.0, pixel_format: str = '',
                rosbag_topic: str = '', capture_factory: CaptureFactory | None = None,
                stream_timeout: float = 5.0) -> FrameSource:
    """Open `source` (kind inferred unless given).

    width/height/fps/pixel_format are requested from V4L2 devices; width/height/fps also size
    and rate the synthetic pattern (unless given in the string). Other sources deliver their
    native size; resize with `convert_frame`. `capture_factory` replaces cv2.VideoCapture for
    devices, videos and streams. Raises SourceError, or ValueError for bad arguments.
    """
    if width < 0 or height < 0:
        raise ValueError(f'width and height must be >= 0 (0 = keep), got {width}x{height}')
    if not math.isfinite(fps) or fps < 0:
        raise ValueError(f'fps must be a finite number >= 0 (0 = unset), got {fps}')
    if stream_timeout <= 0:
        raise ValueError(f'stream_timeout must be > 0, got {stream_timeout}')
    # Each kind's module is imported only when used (rosbag pulls in rosbags, for one).
    text = source.strip()
    if isinstance(kind, str) and not isinstance(kind, SourceKind):
        kind = parse_kind(kind)
    kind = kind or infer_kind(text)
    if kind is SourceKind.SYNTHETIC:
        from ros_onnx_vision.camera.sources.synthetic import SyntheticSource
        match = SYNTHETIC_RE.match(text or 'synthetic')
        if not match:
            raise SourceError(f'bad synthetic source {source!r}; expected '
                              "'synthetic', 'synthetic:640x480' or 'synthetic:640x480@30'")
        w_text, h_text, fps_text = match.groups()
        size = (int(w_text), int(h_text)) if w_text else (width or 640, height or 480)
        rate = float(fps_text) if fps_text else fps
        return SyntheticSource(size[0], size[1], rate or None)
    if kind is SourceKind.DEVICE:
        from ros_onnx_vision.camera.sources.capture import DeviceSettings, DeviceSource
        return DeviceSource(text, DeviceSettings(width, height, fps, pixel_format),
                            capture_factory)
    if kind is SourceKind.STREAM:
        from ros_onnx_vision.camera.sources.capture import StreamSource
        return StreamSource(text, capture_factory, stream_timeout)
    if kind is SourceKind.ROSBAG:
        from ros_onnx_vision.camera.sources.rosbag import RosbagSource
        return RosbagSource(text, rosbag_topic, loop)
    path = os.path.expanduser(text)
    if kind is SourceKind.VIDEO:
        from ros_onnx_vision.camera.sources.capture import VideoFileSource
        return VideoFileSource(path, loop, capture_factory)
    from ros_onnx_vision.camera.sources.image_files import ImageFileSource, ImageListSource
    if kind is SourceKind.IMAGE:
        return ImageFileSource(path, loop)
    return ImageListSource(text, loop)


# --------------------------------------------------------------------------- conversion

def convert_frame(image: np.ndarray, *, width: int = 0, height: int = 0,
                  encoding: str = 'bgr8') -> np.ndarray:
    """Resize and convert a BGR (HxWx3) or mono (HxW / HxWx1) uint8 image.

    width/height 0 keeps that dimension; when only one is given the aspect ratio is kept.
    `encoding` is 'bgr8', 'rgb8' or 'mono8'. Returns a C-contiguous array; the input array
    itself when nothing needs to change.
    """
    if encoding not in CAMERA_ENCODINGS:
        raise ValueError(f'unsupported encoding {encoding!r}; accepted: '
                         f'{", ".join(CAMERA_ENCODINGS)}')
    if width < 0 or height < 0:
        raise ValueError(f'width and height must be >= 0 (0 = keep), got {width}x{height}')
    if image.dtype != np.uint8:
        raise ValueError(f'expected a uint8 image, got {image.dtype}')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f'expected an HxWx3 BGR or HxW mono image, got shape {image.shape}')
    src_h, src_w = image.shape[:2]
    if width and not height:
        height = max(1, round(src_h * width / src_w))
    elif height and not width:
        width = max(1, round(src_w * height / src_h))
    if (width and width != src_w) or (height and height != src_h):
        shrinking = width * height < src_w * src_h
        image = cv2.resize(image, (width, height),
                           interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    mono = image.ndim == 2
    if encoding == 'mono8' and not mono:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif encoding == 'bgr8' and mono:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif encoding == 'rgb8':
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if mono else cv2.COLOR_BGR2RGB)
    return image if image.flags.c_contiguous else np.ascontiguousarray(image)

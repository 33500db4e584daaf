"""Frame sources for the camera node (pure Python, no ROS imports).

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
import glob
import math
import os
from pathlib import Path
import re
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

__all__ = [
    'Backoff', 'CaptureFactory', 'CaptureLike', 'DeviceSettings', 'Frame', 'FrameSource',
    'FrameSourceError', 'SourceError', 'SourceKind', 'SourceReadError', 'convert_frame',
    'decode_synthetic_counter', 'infer_kind', 'open_source', 'parse_kind',
]

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
ENCODINGS = ('bgr8', 'rgb8', 'mono8')
IMAGE_MSG_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')

ACCEPTED_FORMS = (
    "a V4L2 device ('/dev/video0' or an index like '0'), a video file (.mp4, .avi, ...), "
    "an image file (.png, .jpg, ...), a directory of images or a glob pattern ('dir/*.png'), "
    'a stream URL (rtsp://, http(s)://, ...), a rosbag2 (.mcap/.db3 file or bag directory), '
    "or 'synthetic[:WIDTHxHEIGHT][@FPS]'"
)

_SYNTHETIC_RE = re.compile(r'^synthetic(?::(\d+)x(\d+))?(?:@(\d+(?:\.\d*)?))?$', re.IGNORECASE)
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
    if _SYNTHETIC_RE.match(text):
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
        return SourceKind.ROSBAG if _bag_files_in(path) and not has_images else SourceKind.IMAGES
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
    and owned by the caller. `stamp` is the source's own timestamp in seconds (rosbag header
    stamp, falling back to the recorded log time) or None, in which case the node stamps with
    the capture time. `source_time` is the position on the source's own timeline in seconds
    (rosbag log time, video position, synthetic index/fps); it jumps back when a source loops.
    """

    image: np.ndarray
    index: int
    stamp: float | None = None
    source_time: float | None = None
    frame_id: str = ''


class CaptureLike(Protocol):
    """The subset of cv2.VideoCapture used here (lets tests inject a capture double)."""

    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV's name)

    def set(self, prop_id: int, value: float) -> bool: ...  # noqa: A003

    def get(self, prop_id: int) -> float: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


# (source, api_preference, open params as [prop, value, ...]) -> capture
CaptureFactory = Callable[[int | str, int, Sequence[int]], CaptureLike]


def _default_capture_factory(source: int | str, api: int, params: Sequence[int]) -> CaptureLike:
    return cv2.VideoCapture(source, api, list(params))


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
    #: True for sources that deliver at their own pace (device, stream); read() then blocks.
    live: bool = False

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

    def _deliver(self, image: np.ndarray, stamp: float | None = None,
                 source_time: float | None = None, frame_id: str = '') -> Frame:
        if not image.flags.c_contiguous or not image.flags.writeable:
            image = image.copy()
        self._size = (image.shape[1], image.shape[0])
        frame = Frame(image, self._count, stamp, source_time, frame_id)
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


# --------------------------------------------------------------------------- image helpers

def _natural_key(path: str) -> list[Any]:
    # 'img2' sorts before 'img10'
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r'(\d+)', os.path.basename(path))] + [path]


def _normalize_decoded(image: np.ndarray) -> np.ndarray:
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


def _imread(path: str) -> np.ndarray | None:
    # ANYCOLOR|ANYDEPTH keeps mono as mono and 16-bit as 16-bit, drops alpha and still
    # applies EXIF orientation (IMREAD_UNCHANGED would not).
    try:
        image = cv2.imread(path, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error:
        return None
    if image is None:
        return None
    try:
        return _normalize_decoded(image)
    except ValueError:
        return None


def _sane_fps(value: float) -> float | None:
    return value if math.isfinite(value) and 0 < value <= _MAX_SANE_FPS else None


def _redact_url(url: str) -> str:
    """Hide credentials (rtsp://user:pass@host) in messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ''
    if parts.port:
        host = f'{host}:{parts.port}'
    return urlunsplit((parts.scheme, f'***@{host}', parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- sources

class SyntheticSource(FrameSource):
    """Deterministic moving shapes with the frame counter drawn in (never ends)."""

    kind = SourceKind.SYNTHETIC
    BITS = 16

    def __init__(self, width: int, height: int, fps: float | None):
        """Create a width x height pattern; `fps` only sets nominal_fps and source_time."""
        super().__init__(f'synthetic:{width}x{height}')
        if width < 64 or height < 48:
            raise SourceError(f'synthetic source size {width}x{height} is too small '
                              '(minimum 64x48)')
        self.nominal_fps = fps or None
        self._size = (width, height)
        xs = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        self._background = np.dstack([
            np.broadcast_to(xs, (height, width)),
            np.broadcast_to(ys, (height, width)),
            np.full((height, width), 96, np.float32),
        ]).astype(np.uint8)

    @staticmethod
    def _bounce(step: int, span: int) -> int:
        # Triangle wave 0..span..0 so shapes bounce off the edges.
        if span <= 0:
            return 0
        phase = step % (2 * span)
        return phase if phase <= span else 2 * span - phase

    def render(self, index: int) -> np.ndarray:
        """Return the pattern for frame `index` (pure function of the index)."""
        width, height = self._size or (0, 0)
        image = self._background.copy()
        radius = max(4, min(width, height) // 10)
        cx = radius + self._bounce(index * 4, width - 2 * radius)
        cv2.circle(image, (cx, height // 2), radius, (0, 0, 255), -1)
        side = radius
        sy = self._bounce(index * 3, height - side)
        cv2.rectangle(image, (width // 4, sy), (width // 4 + side, sy + side), (255, 255, 0), -1)
        scale = max(0.4, height / 480)
        cv2.putText(image, f'frame {index}', (8, height - 12), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), max(1, round(2 * scale)), cv2.LINE_AA)
        block, strip = _counter_geometry(width, height)
        for bit in range(self.BITS):
            on = (index >> (self.BITS - 1 - bit)) & 1
            image[:strip, bit * block:(bit + 1) * block] = 255 if on else 0
        return image

    def read(self) -> Frame:
        """Render the next frame."""
        index = self._count
        source_time = index / self.nominal_fps if self.nominal_fps else None
        return self._deliver(self.render(index), source_time=source_time)

    def describe(self) -> str:
        """Describe the pattern."""
        return f'synthetic pattern {self._size_text()} at {self._fps_text()}'


def _counter_geometry(width: int, height: int) -> tuple[int, int]:
    return width // (2 * SyntheticSource.BITS), max(4, height // 40)


def decode_synthetic_counter(image: np.ndarray) -> int:
    """Read back the 16-bit frame counter strip of a (possibly converted) synthetic frame."""
    height, width = image.shape[:2]
    block, strip = _counter_geometry(width, height)
    gray = image if image.ndim == 2 else image.mean(axis=2)
    value = 0
    for bit in range(SyntheticSource.BITS):
        cell = gray[:strip, bit * block + block // 4:(bit + 1) * block - block // 4]
        value = (value << 1) | int(cell.mean() > 127)
    return value


class ImageFileSource(FrameSource):
    """A single image file: one frame, or the same frame forever when looping."""

    kind = SourceKind.IMAGE

    def __init__(self, path: str, loop: bool):
        """Decode the image now so problems surface at open time."""
        super().__init__(path)
        if not os.path.isfile(path):
            raise SourceError(f'image file {path!r} does not exist')
        image = _imread(path)
        if image is None:
            raise SourceError(f'cannot decode image file {path!r} (not an image OpenCV reads, '
                              'or corrupt)')
        self._image = image
        self._size = (image.shape[1], image.shape[0])
        self._loop = loop

    def read(self) -> Frame | None:
        """Return (a copy of) the image; None after the first frame unless looping."""
        if self._count and not self._loop:
            return None
        return self._deliver(self._image.copy())

    def describe(self) -> str:
        """Describe the image."""
        return f'image {self.name!r} ({self._size_text()}, loop={self._loop})'


class ImageListSource(FrameSource):
    """Images from a directory or glob, in natural sort order, decoded lazily.

    Files that cannot be decoded are skipped, dropped from the list and reported once via
    `take_warnings()`; SourceError is raised when no file at all can be decoded.
    """

    kind = SourceKind.IMAGES

    def __init__(self, source: str, loop: bool):
        """List the files now and decode the first one to fail fast."""
        super().__init__(source)
        path = os.path.expanduser(source)
        if os.path.isdir(path):
            names = [os.path.join(path, n) for n in os.listdir(path)]
            files = [n for n in names
                     if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(n)]
            if not files:
                exts = ', '.join(sorted(IMAGE_EXTENSIONS))
                raise SourceError(f'directory {source!r} contains no image files '
                                  f'(looked for {exts})')
        elif any(c in source for c in '*?['):
            files = [n for n in glob.glob(path) if os.path.isfile(n)]
            if not files:
                raise SourceError(f'glob pattern {source!r} matched no files')
        else:
            raise SourceError(f'{source!r} is neither a directory nor a glob pattern')
        self._files = sorted(files, key=_natural_key)
        self._total = len(self._files)
        self._pos = 0
        self._loop = loop
        self._pending = self._next_image()
        assert self._pending is not None  # the list is not empty, so it decodes one or raises
        self._size = (self._pending.shape[1], self._pending.shape[0])

    @property
    def files(self) -> list[str]:
        """The (remaining decodable) files, in delivery order."""
        return list(self._files)

    def _next_image(self) -> np.ndarray | None:
        wrapped = False
        while self._files:
            if self._pos >= len(self._files):
                if not self._loop or wrapped:
                    return None
                self._pos, wrapped = 0, True
                continue
            path = self._files[self._pos]
            image = _imread(path)
            if image is not None:
                self._pos += 1
                return image
            self._warnings.append(f'skipping {path!r}: cannot decode it as an image')
            del self._files[self._pos]
        raise SourceError(f'none of the {self._total} files of {self.name!r} could be decoded '
                          'as images')

    def read(self) -> Frame | None:
        """Return the next image; loops or returns None at the end."""
        image, self._pending = self._pending, None
        if image is None:
            image = self._next_image()
            if image is None:
                return None
        return self._deliver(image)

    def describe(self) -> str:
        """Describe the image list."""
        return (f'{len(self._files)} images from {self.name!r} (first {self._size_text()}, '
                f'loop={self._loop})')


class _CaptureSource(FrameSource):
    """Shared logic of the cv2.VideoCapture based sources."""

    def __init__(self, name: str, factory: CaptureFactory | None):
        super().__init__(name)
        self._factory = factory or _default_capture_factory
        self._cap: CaptureLike | None = None

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def close(self) -> None:
        """Release the capture."""
        self._release()


class VideoFileSource(_CaptureSource):
    """A video file read through OpenCV (FFmpeg backend), optionally looping."""

    kind = SourceKind.VIDEO

    def __init__(self, path: str, loop: bool, factory: CaptureFactory | None = None):
        """Open the file and decode its first frame so problems surface at open time."""
        super().__init__(path, factory)
        if not os.path.isfile(path):
            raise SourceError(f'video file {path!r} does not exist')
        self._loop = loop
        self._ended = False
        self.frame_count: int | None = None
        self._pending: tuple[np.ndarray, float | None] | None = self._open_and_read_first()
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT) if self._cap else 0
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None

    def _open_and_read_first(self) -> tuple[np.ndarray, float | None]:
        self._release()
        cap = self._factory(self.name, cv2.CAP_FFMPEG, ())
        if not cap.isOpened():
            cap.release()
            cap = self._factory(self.name, cv2.CAP_ANY, ())  # builds without FFmpeg
        if not cap.isOpened():
            cap.release()
            raise SourceError(f'cannot open video file {self.name!r}: OpenCV cannot read it '
                              '(unsupported format or corrupt file)')
        self._cap = cap
        self.nominal_fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS))
        first = self._grab()
        if first is None:
            self._release()
            raise SourceError(f'video file {self.name!r} contains no decodable frames')
        self._size = (first[0].shape[1], first[0].shape[0])
        return first

    def _grab(self) -> tuple[np.ndarray, float | None] | None:
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        return image, (pos_ms / 1000.0 if math.isfinite(pos_ms) and pos_ms >= 0 else None)

    def read(self) -> Frame | None:
        """Return the next frame; restarts the file at the end when looping."""
        if self._ended:
            return None
        item = self._pending
        self._pending = None
        if item is None and self._cap is not None:
            item = self._grab()
        if item is None:
            if not self._loop:
                self._ended = True
                self._release()
                return None
            # Reopening is more reliable than seeking to frame 0 across codecs/containers.
            item = self._open_and_read_first()
        image, source_time = item
        return self._deliver(_normalize_decoded(image), source_time=source_time)

    def describe(self) -> str:
        """Describe the video."""
        frames = f', {self.frame_count} frames' if self.frame_count else ''
        return (f'video {self.name!r} ({self._size_text()}, {self._fps_text()}{frames}, '
                f'loop={self._loop})')


class StreamSource(_CaptureSource):
    """A network stream (rtsp, http MJPEG, ...) through OpenCV's FFmpeg backend.

    A failed read raises SourceReadError and drops the connection; the next `read()`
    reconnects. `nominal_fps` stays None: FFmpeg reports a placeholder (25) for MJPEG over
    HTTP, and live streams are paced by the sender anyway.
    """

    kind = SourceKind.STREAM
    live = True

    def __init__(self, url: str, factory: CaptureFactory | None = None, timeout: float = 5.0):
        """Connect now; SourceError when the first connection fails."""
        super().__init__(url, factory)
        self._shown = _redact_url(url)
        self._timeout_ms = max(1, int(timeout * 1000))
        self.reported_fps: float | None = None
        error = self._connect()
        if error:
            raise SourceError(error)

    def _connect(self) -> str:
        self._release()
        params = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout_ms)
        cap = self._factory(self.name, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return (f'cannot open stream {self._shown}: unreachable, refused, timed out after '
                    f'{self._timeout_ms / 1000:g} s, or not a format FFmpeg understands')
        self._cap = cap
        self.reported_fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS))
        return ''

    def read(self) -> Frame:
        """Return the next frame; SourceReadError when the stream drops or stalls."""
        if self._cap is None:
            error = self._connect()
            if error:
                raise SourceReadError(f'reconnect failed: {error}')
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok or image is None:
            self._release()
            raise SourceReadError(
                f'stream {self._shown}: no frame (connection closed, or nothing received for '
                f'{self._timeout_ms / 1000:g} s); reconnecting on the next read')
        return self._deliver(_normalize_decoded(image))

    def describe(self) -> str:
        """Describe the stream."""
        reported = f', sender reports {self.reported_fps:g} fps' if self.reported_fps else ''
        return f'stream {self._shown} ({self._size_text()}{reported})'


@dataclass
class DeviceSettings:
    """Capture settings of a V4L2 device (0 / '' = not requested or unknown)."""

    width: int = 0
    height: int = 0
    fps: float = 0.0
    pixel_format: str = ''


def _fourcc_text(value: float) -> str:
    code = int(value) if math.isfinite(value) and value > 0 else 0
    text = ''.join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text.strip('\0 ') if text.isprintable() else ''


def _available_devices() -> str:
    found = sorted(glob.glob('/dev/video*'), key=_natural_key)
    return ', '.join(found) if found else 'none'


class DeviceSource(_CaptureSource):
    """A V4L2 camera through cv2.VideoCapture(..., cv2.CAP_V4L2).

    Requested settings are applied in the order pixel format, width, height, fps (drivers
    pick the frame sizes and rates available for the pixel format). What the driver granted
    is in `granted`; differences from `requested` are reported through `take_warnings()`.
    A failed read raises SourceReadError and the next `read()` reopens the device.
    """

    kind = SourceKind.DEVICE
    live = True

    def __init__(self, device: str, requested: DeviceSettings,
                 factory: CaptureFactory | None = None):
        """Open the device and apply the requested settings."""
        super().__init__(device, factory)
        self._target: int | str = int(device) if device.isdigit() else device
        self._path = f'/dev/video{device}' if device.isdigit() else device
        fourcc = requested.pixel_format.strip().upper()
        if fourcc and len(fourcc) > 4:
            raise SourceError(f'pixel format {requested.pixel_format!r} for {device!r} is not '
                              "a FOURCC code (up to 4 characters, e.g. 'MJPG', 'YUYV')")
        self.requested = DeviceSettings(requested.width, requested.height, requested.fps,
                                        fourcc)
        self.granted = DeviceSettings()
        error = self._open()
        if error:
            raise SourceError(error)

    def _open(self) -> str:
        self._release()
        cap = self._factory(self._target, cv2.CAP_V4L2, ())
        if not cap.isOpened():
            cap.release()
            if not os.path.exists(self._path):
                return (f'V4L2 device {self._path!r} does not exist '
                        f'(available: {_available_devices()})')
            return (f'cannot open V4L2 device {self._path!r}: in use by another process, or no '
                    'permission (is the user in the video group?)')
        self._cap = cap
        req = self.requested
        if req.pixel_format:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*req.pixel_format.ljust(4)))
        if req.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, req.width)
        if req.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, req.height)
        if req.fps:
            cap.set(cv2.CAP_PROP_FPS, req.fps)
        width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        self.granted = DeviceSettings(int(width) if width > 0 else 0,
                                      int(height) if height > 0 else 0, fps,
                                      _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)))
        self.nominal_fps = fps or None
        if self.granted.width and self.granted.height:
            self._size = (self.granted.width, self.granted.height)
        self._warnings.extend(self._mismatches())
        return ''

    def _mismatches(self) -> list[str]:
        req, got = self.requested, self.granted
        out = []
        if (req.width and req.width != got.width) or (req.height and req.height != got.height):
            out.append(f'{self._path}: requested {req.width or "any"}x{req.height or "any"}, '
                       f'device granted {got.width}x{got.height}')
        if req.fps and abs(req.fps - got.fps) > 0.5:
            granted = f'{got.fps:g} fps' if got.fps else 'no rate'
            out.append(f'{self._path}: requested {req.fps:g} fps, device granted {granted}')
        if req.pixel_format and req.pixel_format != got.pixel_format:
            out.append(f'{self._path}: requested pixel format {req.pixel_format!r}, device '
                       f'granted {got.pixel_format or "unknown"!r}')
        return out

    def read(self) -> Frame:
        """Return the next frame; SourceReadError when the device fails or disappears."""
        if self._cap is None:
            error = self._open()
            if error:
                raise SourceReadError(f'reopen failed: {error}')
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok or image is None:
            self._release()
            raise SourceReadError(f'V4L2 device {self._path!r}: read failed (unplugged, or '
                                  'timed out); reopening on the next read')
        return self._deliver(_normalize_decoded(image))

    def describe(self) -> str:
        """Describe the device and what it granted."""
        got = self.granted
        fmt = f' {got.pixel_format}' if got.pixel_format else ''
        return f'V4L2 device {self._path!r} ({self._size_text()}{fmt}, {self._fps_text()})'


# --------------------------------------------------------------------------- rosbag

_RAW_ENCODINGS: dict[str, tuple[int, Any, int | None]] = {
    # encoding: (channels, dtype, cv2 conversion to BGR or None)
    'bgr8': (3, np.uint8, None),
    '8uc3': (3, np.uint8, None),
    'rgb8': (3, np.uint8, cv2.COLOR_RGB2BGR),
    'bgra8': (4, np.uint8, cv2.COLOR_BGRA2BGR),
    '8uc4': (4, np.uint8, cv2.COLOR_BGRA2BGR),
    'rgba8': (4, np.uint8, cv2.COLOR_RGBA2BGR),
    'mono8': (1, np.uint8, None),
    '8uc1': (1, np.uint8, None),
    'mono16': (1, np.uint16, None),
    '16uc1': (1, np.uint16, None),
    'bgr16': (3, np.uint16, None),
    'rgb16': (3, np.uint16, cv2.COLOR_RGB2BGR),
    # ROS names the Bayer pattern from the top-left pixel, OpenCV from the second row.
    'bayer_rggb8': (1, np.uint8, cv2.COLOR_BayerBG2BGR),
    'bayer_bggr8': (1, np.uint8, cv2.COLOR_BayerRG2BGR),
    'bayer_gbrg8': (1, np.uint8, cv2.COLOR_BayerGR2BGR),
    'bayer_grbg8': (1, np.uint8, cv2.COLOR_BayerGB2BGR),
    'yuv422': (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    'uyvy': (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    'yuv422_yuy2': (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
    'yuyv': (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
}


class _Unsupported(ValueError):
    """An encoding/format that is never decodable (as opposed to one corrupt message)."""


def decode_image_msg(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/msg/Image-like object to uint8 BGR or mono.

    16-bit images keep their high byte. Raises ValueError for a malformed message or an
    unsupported encoding.
    """
    encoding = str(msg.encoding).lower()
    if encoding not in _RAW_ENCODINGS:
        raise _Unsupported(f'unsupported image encoding {msg.encoding!r} (supported: '
                           f'{", ".join(sorted(_RAW_ENCODINGS))})')
    channels, dtype, conversion = _RAW_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    data = np.frombuffer(msg.data, np.uint8) if not isinstance(msg.data, np.ndarray) \
        else msg.data.view(np.uint8).reshape(-1)
    if height == 0 or width == 0 or step < row_bytes or data.size < step * height:
        raise ValueError(f'malformed {msg.encoding} image: {width}x{height}, step {step}, '
                         f'{data.size} bytes')
    rows: np.ndarray = data[:step * height].reshape(height, step)[:, :row_bytes]
    rows = np.ascontiguousarray(rows)  # copies only when rows are padded
    if itemsize > 1:
        wide = rows.view(np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<'))
        rows = (wide >> 8).astype(np.uint8)
    image = rows.reshape((height, width) if channels == 1 else (height, width, channels))
    if conversion is not None:
        image = cv2.cvtColor(image, conversion)
    return image


def decode_compressed_msg(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/msg/CompressedImage (jpeg/png) to uint8 BGR or mono."""
    fmt = str(msg.format)
    if 'compresseddepth' in fmt.lower():
        raise _Unsupported(f'unsupported CompressedImage format {fmt!r}')
    buffer = np.frombuffer(bytes(msg.data), np.uint8) if not isinstance(msg.data, np.ndarray) \
        else msg.data.view(np.uint8).reshape(-1)
    image = cv2.imdecode(buffer, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ValueError(f'cannot decode CompressedImage data (format {fmt!r})')
    return _normalize_decoded(image)


def _bag_files_in(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.suffix.lower() in BAG_EXTENSIONS)
    except OSError:
        return []


class RosbagSource(FrameSource):
    """Replays an image topic of a rosbag2 recording (mcap or sqlite3) via `rosbags`.

    `Frame.stamp` is the header stamp (the recorded log time when the header stamp is zero)
    and `Frame.source_time` the recorded log time, so the node can replay with the recorded
    timing. `nominal_fps` is the topic's message count over the bag's duration. Corrupt
    messages are skipped and reported; an unsupported encoding is a SourceError.
    """

    kind = SourceKind.ROSBAG

    def __init__(self, source: str, topic: str, loop: bool):
        """Open the bag, choose the topic and decode the first frame."""
        super().__init__(source)
        try:
            from rosbags.rosbag2 import Reader
            from rosbags.typesys import get_typestore, Stores
        except ImportError as exc:  # pragma: no cover - rosbags is a declared dependency
            raise SourceError(f'cannot read rosbag {source!r}: the rosbags package is missing '
                              f'(pip install rosbags): {exc}') from exc
        path = Path(os.path.expanduser(source))
        if not path.exists():
            raise SourceError(f'rosbag {source!r} does not exist')
        if path.is_dir() and not (path / 'metadata.yaml').is_file():
            files = _bag_files_in(path)
            if len(files) != 1:
                raise SourceError(f'{source!r} is not a rosbag2 directory: no metadata.yaml and '
                                  f'{len(files)} .mcap/.db3 files')
            path = files[0]
        self._loop = loop
        # Image and CompressedImage have the same layout in every ROS 2 distro.
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        try:
            self._reader = Reader(path)
            self._reader.open()
        except Exception as exc:  # rosbags raises several unrelated types
            raise SourceError(f'cannot read rosbag {source!r}: {exc}') from exc
        try:
            self._select_topic(topic)
            self._messages = self._new_iterator()
            self._delivered_in_pass = 0
            self._ended = False
            self._pending = self._next_decoded()
            if self._pending is None:
                raise SourceError(f'rosbag {source!r}: topic {self.topic!r} has no decodable '
                                  'images')
        except BaseException:
            self.close()
            raise

    def _select_topic(self, topic: str) -> None:
        connections = self._reader.connections
        image_topics = sorted({c.topic for c in connections if c.msgtype in IMAGE_MSG_TYPES})
        if topic:
            chosen = [c for c in connections if c.topic == topic]
            if not chosen:
                raise SourceError(f'rosbag {self.name!r} has no topic {topic!r}; image topics: '
                                  f'{", ".join(image_topics) or "none"}')
            if chosen[0].msgtype not in IMAGE_MSG_TYPES:
                raise SourceError(f'rosbag {self.name!r}: topic {topic!r} is '
                                  f'{chosen[0].msgtype}, expected one of '
                                  f'{", ".join(IMAGE_MSG_TYPES)}')
        elif len(image_topics) == 1:
            topic = image_topics[0]
        elif not image_topics:
            others = ', '.join(sorted({f'{c.topic} ({c.msgtype})' for c in connections}))
            raise SourceError(f'rosbag {self.name!r} has no sensor_msgs/msg/Image or '
                              f'CompressedImage topic (topics: {others or "none"})')
        else:
            raise SourceError(f'rosbag {self.name!r} has several image topics, choose one with '
                              f'the rosbag topic parameter: {", ".join(image_topics)}')
        self.topic = topic
        self._connections = [c for c in connections if c.topic == topic]
        self.message_count = sum(c.msgcount for c in self._connections)
        duration = self._reader.duration / 1e9
        if self.message_count > 1 and duration > 0:
            self.nominal_fps = _sane_fps((self.message_count - 1) / duration)

    def _new_iterator(self) -> Iterator[Any]:
        return iter(self._reader.messages(connections=self._connections))

    def _next_decoded(self) -> tuple[np.ndarray, float, float, str] | None:
        while True:
            try:
                connection, log_ns, raw = next(self._messages)
            except StopIteration:
                if not self._loop or self._delivered_in_pass == 0:
                    return None
                self._messages = self._new_iterator()
                self._delivered_in_pass = 0
                continue
            try:
                msg: Any = self._typestore.deserialize_cdr(raw, connection.msgtype)
                if connection.msgtype == IMAGE_MSG_TYPES[0]:
                    image = decode_image_msg(msg)
                else:
                    image = decode_compressed_msg(msg)
            except _Unsupported as exc:
                raise SourceError(f'rosbag {self.name!r} topic {self.topic!r}: {exc}') from None
            except Exception as exc:  # one corrupt message must not stop the replay
                self._warnings.append(f'rosbag {self.name!r} topic {self.topic!r}: skipping '
                                      f'message at {log_ns / 1e9:.9f}: {exc}')
                continue
            self._delivered_in_pass += 1
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            stamp = stamp_ns / 1e9 if stamp_ns else log_ns / 1e9
            return image, stamp, log_ns / 1e9, str(msg.header.frame_id)

    def read(self) -> Frame | None:
        """Return the next recorded image; loops or returns None at the end."""
        if self._ended:
            return None
        item, self._pending = self._pending, None
        if item is None:
            item = self._next_decoded()
        if item is None:
            self._ended = True
            return None
        image, stamp, log_time, frame_id = item
        return self._deliver(image, stamp=stamp, source_time=log_time, frame_id=frame_id)

    def close(self) -> None:
        """Close the bag."""
        reader = getattr(self, '_reader', None)
        if reader is not None and reader.is_open:
            reader.close()

    def describe(self) -> str:
        """Describe the bag and topic."""
        return (f'rosbag {self.name!r} topic {self.topic!r} ({self.message_count} messages, '
                f'{self._size_text()}, {self._fps_text()}, loop={self._loop})')


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
    text = source.strip()
    if isinstance(kind, str) and not isinstance(kind, SourceKind):
        kind = parse_kind(kind)
    kind = kind or infer_kind(text)
    if kind is SourceKind.SYNTHETIC:
        match = _SYNTHETIC_RE.match(text or 'synthetic')
        if not match:
            raise SourceError(f'bad synthetic source {source!r}; expected '
                              "'synthetic', 'synthetic:640x480' or 'synthetic:640x480@30'")
        w_text, h_text, fps_text = match.groups()
        size = (int(w_text), int(h_text)) if w_text else (width or 640, height or 480)
        rate = float(fps_text) if fps_text else fps
        return SyntheticSource(size[0], size[1], rate or None)
    if kind is SourceKind.DEVICE:
        return DeviceSource(text, DeviceSettings(width, height, fps, pixel_format),
                            capture_factory)
    if kind is SourceKind.STREAM:
        return StreamSource(text, capture_factory, stream_timeout)
    if kind is SourceKind.ROSBAG:
        return RosbagSource(text, rosbag_topic, loop)
    path = os.path.expanduser(text)
    if kind is SourceKind.VIDEO:
        return VideoFileSource(path, loop, capture_factory)
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
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported encoding {encoding!r}; accepted: {", ".join(ENCODINGS)}')
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

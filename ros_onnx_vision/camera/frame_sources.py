"""Frame sources for the camera node: source kinds, open_source, convert_frame, the contract.

Each kind of source lives in its own module under ``camera/sources/``, on the contract in
``camera/sources/base.py`` (Frame, FrameSource, SourceKind, the errors); this module classifies
source strings and holds the factory that picks a source, and re-exports the contract, so a
caller imports everything from here. Pure Python, no ROS imports.

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

import math
import os
from pathlib import Path
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import cv2
import numpy as np

from ros_onnx_vision.camera.sources.base import (BAG_EXTENSIONS, bag_files_in, Frame,
                                                 FrameSource, FrameSourceError, IMAGE_EXTENSIONS,
                                                 SourceError, SourceKind, SourceReadError)
from ros_onnx_vision.image_encodings import CAMERA_ENCODINGS

if TYPE_CHECKING:
    from ros_onnx_vision.camera.sources.capture import CaptureFactory

__all__ = [
    'ACCEPTED_FORMS', 'BAG_EXTENSIONS', 'Backoff', 'convert_frame', 'Frame', 'FrameSource',
    'FrameSourceError', 'IMAGE_EXTENSIONS', 'infer_kind', 'open_source', 'parse_kind',
    'SourceError', 'SourceKind', 'SourceReadError', 'STREAM_SCHEMES', 'SYNTHETIC_RE',
    'VIDEO_EXTENSIONS',
]

VIDEO_EXTENSIONS = frozenset({
    '.avi', '.mp4', '.m4v', '.mkv', '.mov', '.webm', '.mpg', '.mpeg', '.wmv', '.flv', '.ts',
    '.mts', '.m2ts', '.3gp', '.ogv', '.mjpg', '.mjpeg', '.h264', '.264', '.h265', '.hevc',
    '.gif', '.y4m',
})
STREAM_SCHEMES = frozenset({
    'rtsp', 'rtsps', 'rtmp', 'rtmps', 'http', 'https', 'udp', 'tcp', 'srt', 'rtp',
})

ACCEPTED_FORMS = (
    "a V4L2 device ('/dev/video0' or an index like '0'), a video file (.mp4, .avi, ...), "
    "an image file (.png, .jpg, ...), a directory of images or a glob pattern ('dir/*.png'), "
    'a stream URL (rtsp://, http(s)://, ...), a rosbag2 (.mcap/.db3 file or bag directory), '
    "or 'synthetic[:WIDTHxHEIGHT][@FPS]'"
)

SYNTHETIC_RE = re.compile(r'^synthetic(?::(\d+)x(\d+))?(?:@(\d+(?:\.\d*)?))?$', re.IGNORECASE)


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

"""Sources read through cv2.VideoCapture: video files, network streams and V4L2 devices.

The capture is injectable (``CaptureFactory``) so tests can stand in for a camera that
disconnects, stalls or refuses settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import glob
import math
import os
from typing import Protocol

import cv2
import numpy as np

from ros_onnx_vision.camera.sources.base import (Frame, FrameSource, natural_key,
                                                 normalize_decoded, redact_url, sane_fps,
                                                 SourceError, SourceKind, SourceReadError)


class CaptureLike(Protocol):
    """The subset of cv2.VideoCapture used here (lets tests inject a capture double)."""

    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV's name)

    def set(self, prop_id: int, value: float) -> bool: ...  # noqa: A003

    def get(self, prop_id: int) -> float: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


# (source, api_preference, open params as [prop, value, ...]) -> capture
CaptureFactory = Callable[[int | str, int, Sequence[int]], CaptureLike]


def default_capture_factory(source: int | str, api: int, params: Sequence[int]) -> CaptureLike:
    return cv2.VideoCapture(source, api, list(params))


class CaptureSource(FrameSource):
    """Shared logic of the cv2.VideoCapture based sources."""

    def __init__(self, name: str, factory: CaptureFactory | None):
        super().__init__(name)
        self._factory = factory or default_capture_factory
        self._cap: CaptureLike | None = None

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def close(self) -> None:
        """Release the capture."""
        self._release()


class VideoFileSource(CaptureSource):
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
        self.nominal_fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
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
        return self._deliver(normalize_decoded(image), source_time=source_time)

    def describe(self) -> str:
        """Describe the video."""
        frames = f', {self.frame_count} frames' if self.frame_count else ''
        return (f'video {self.name!r} ({self._size_text()}, {self._fps_text()}{frames}, '
                f'loop={self._loop})')


class StreamSource(CaptureSource):
    """A network stream (rtsp, http MJPEG, ...) through OpenCV's FFmpeg backend.

    A failed read raises SourceReadError and drops the connection; the next `read()`
    reconnects. `nominal_fps` stays None: FFmpeg reports a placeholder (25) for MJPEG over
    HTTP, and live streams are paced by the sender anyway.
    """

    kind = SourceKind.STREAM

    def __init__(self, url: str, factory: CaptureFactory | None = None, timeout: float = 5.0):
        """Connect now; SourceError when the first connection fails."""
        super().__init__(url, factory)
        self._shown = redact_url(url)
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
        self.reported_fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
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
        return self._deliver(normalize_decoded(image))

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
    found = sorted(glob.glob('/dev/video*'), key=natural_key)
    return ', '.join(found) if found else 'none'


class DeviceSource(CaptureSource):
    """A V4L2 camera through cv2.VideoCapture(..., cv2.CAP_V4L2).

    Requested settings are applied in the order pixel format, width, height, fps (drivers
    pick the frame sizes and rates available for the pixel format). What the driver granted
    is in `granted`; differences from `requested` are reported through `take_warnings()`.
    A failed read raises SourceReadError and the next `read()` reopens the device.
    """

    kind = SourceKind.DEVICE

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
        fps = sane_fps(cap.get(cv2.CAP_PROP_FPS)) or 0.0
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
        return self._deliver(normalize_decoded(image))

    def describe(self) -> str:
        """Describe the device and what it granted."""
        got = self.granted
        fmt = f' {got.pixel_format}' if got.pixel_format else ''
        return f'V4L2 device {self._path!r} ({self._size_text()}{fmt}, {self._fps_text()})'

"""The synthetic pattern: moving shapes with the frame counter drawn as text and as bits.

Deterministic, so tests and benchmarks can read back which frame they received.
"""

from __future__ import annotations

import cv2
import numpy as np

from ros_onnx_vision.camera.sources.base import Frame, FrameSource, SourceError, SourceKind


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

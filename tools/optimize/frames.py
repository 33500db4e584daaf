"""Frames for the optimiser: calibration frames, held-out frames, and model inputs from them.

Calibration reads real frames (vtest.avi by default, a video, an image folder or a glob) and
keeps them apart from the frames the variants are judged on: the labelled vtest stills and
their neighbours, and for the fp32 agreement check the frames calibration did not use.
Needs the source checkout: the default video is fetched by tools/demo/inputs.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import glob
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np

from ros_onnx_vision.camera.frame_sources import (IMAGE_EXTENSIONS, open_source, SourceError,
                                                  SourceKind)
from ros_onnx_vision.inference.model_card import ModelCard

DEFAULT_FRAMES = 100
# The labelled stills test/data/vtest_000/200/400/600.jpg are these frames of vtest.avi;
# calibration skips them and their neighbours so evaluation images are not calibration images.
LABELLED_VTEST_FRAMES = (0, 200, 400, 600)
LABELLED_MARGIN = 10
# The agreement check with fp32 (unlabelled vtest.avi frames calibration did not use).
DEFAULT_AGREEMENT_FRAMES = 80
CALIBRATION_MARGIN = 2  # frames this close to a calibration frame are not used (10 fps)


class OptimizationError(RuntimeError):
    """The card cannot be optimised as asked (what was wrong and what was expected)."""


@dataclass
class CalibrationSet:
    """Frames (BGR uint8) for calibration, and where they came from (for the card)."""

    frames: list[np.ndarray]
    source: str
    frame_ids: list[int | str] = field(default_factory=list)
    video: Path | None = None  # the video the frames came from (None: images)


def _evenly(items: Sequence[Any], count: int) -> list[Any]:
    if count >= len(items):
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in dict.fromkeys(picks.tolist())]


def _video_frames(path: Path, count: int, skip_labelled: bool) -> CalibrationSet:
    total = video_frame_count(path)
    if total <= 0:
        raise OptimizationError(f'calibration video {path} cannot be read (no frames); '
                                'expected a video OpenCV can decode')
    candidates = [i for i in range(total) if not skip_labelled or not _near_labelled(i)]
    frames, ids = read_video_frames(path, _evenly(candidates, count))
    if not frames:
        raise OptimizationError(f'calibration video {path}: no frame could be decoded')
    note = (f', skipping frames within +-{LABELLED_MARGIN} of the labelled frames '
            f'{list(LABELLED_VTEST_FRAMES)}' if skip_labelled else '')
    return CalibrationSet(frames, f'{path.name} ({total} frames): {len(frames)} evenly spaced '
                                  f'frames {ids[0]}..{ids[-1]}{note}', list(ids), path)


def _near_labelled(index: int) -> bool:
    return any(abs(index - f) <= LABELLED_MARGIN for f in LABELLED_VTEST_FRAMES)


def video_frame_count(path: Path) -> int:
    """Frames in a video as OpenCV reports them (0 when it cannot be opened)."""
    try:
        with open_source(str(path), SourceKind.VIDEO, loop=False) as source:
            return source.frame_count or 0
    except SourceError:
        return 0


def read_video_frames(path: Path, indices: Iterable[int]) -> tuple[list[np.ndarray], list[int]]:
    """The frames of a video at ``indices`` (BGR), and the indices that could be decoded.

    Decoded in order by the camera package's video source, which camera_node plays too:
    seeking is unreliable with some codecs, and the few hundred frames needed decode fast.
    """
    wanted = set(indices)
    frames, ids = [], []
    try:
        source = open_source(str(path), SourceKind.VIDEO, loop=False)
    except SourceError:
        return frames, ids
    with source:
        while len(ids) < len(wanted):
            frame = source.read()
            if frame is None:
                break
            if frame.index in wanted:
                frames.append(frame.image)
                ids.append(frame.index)
    return frames, ids


def _image_frames(paths: Sequence[Path], count: int, described: str) -> CalibrationSet:
    chosen = _evenly(sorted(paths), count)
    frames, ids = [], []
    for path in chosen:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            frames.append(image)
            ids.append(path.name)
    if not frames:
        raise OptimizationError(f'calibration source {described}: none of its {len(chosen)} '
                                'image files could be read')
    return CalibrationSet(frames, f'{described}: {len(frames)} images', ids)


def calibration_frames(source: str | Path | None, count: int = DEFAULT_FRAMES,
                       log: Callable[[str], None] = print) -> CalibrationSet:
    """Real frames for calibration.

    ``source``: None for the default, vtest.avi (fetched once by
    :func:`tools.demo.inputs.pedestrian_video`), skipping the labelled frames and
    their neighbours; or a video file, a folder of images, or a glob pattern of images.
    Raises :class:`OptimizationError` when there is no usable source.
    """
    if count < 1:
        raise OptimizationError(f'--frames {count}: expected at least 1 calibration frame')
    if source is None:
        from tools.demo.inputs import pedestrian_video
        video = pedestrian_video(log=log)
        if video is None:
            raise OptimizationError(
                'no calibration source: the default, vtest.avi from Debian\'s opencv-doc '
                '(apt-get download), is not available here; pass --calibration with a video '
                'file, a folder of images or a glob such as "test/data/vtest_*.jpg" (real '
                'frames like the ones the model will see)')
        return _video_frames(Path(video), count, skip_labelled=True)
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        images = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise OptimizationError(f'calibration folder {path} holds no image files '
                                    f'(expected {", ".join(sorted(IMAGE_EXTENSIONS))})')
        return _image_frames(images, count, f'folder {path}')
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return _image_frames([path], count, f'image {path}')
        return _video_frames(path, count, skip_labelled=path.name == 'vtest.avi')
    matches = [Path(p) for p in glob.glob(os.path.expanduser(text))
               if Path(p).suffix.lower() in IMAGE_EXTENSIONS]
    if matches:
        return _image_frames(matches, count, f'glob {text!r}')
    raise OptimizationError(f'calibration source {text!r} is not a video file, an image folder '
                            'or a glob matching image files (nothing found there)')


def add_zoomed_crops(calib: CalibrationSet, fraction: float = 0.5,
                     scales: tuple[float, float] = (0.15, 0.6), seed: int = 0) -> CalibrationSet:
    """Add seeded zoomed crops of evenly chosen frames (``fraction`` of their number).

    Why: vtest.avi shows only small, distant pedestrians; calibrated on it alone, int8 clips
    the activations of near, large persons. A crop resized back to the frame size shows the
    same real people larger (figures in docs/optimization.md).
    """
    count = round(len(calib.frames) * fraction)
    if count <= 0:
        return calib
    rng = np.random.default_rng(seed)
    picks = _evenly(list(range(len(calib.frames))), count)
    crops = []
    for index in picks:
        frame = calib.frames[index]
        height, width = frame.shape[:2]
        scale = rng.uniform(*scales)
        crop_h, crop_w = max(1, int(height * scale)), max(1, int(width * scale))
        y = int(rng.integers(0, height - crop_h + 1))
        x = int(rng.integers(0, width - crop_w + 1))
        crops.append(cv2.resize(frame[y:y + crop_h, x:x + crop_w], (width, height),
                                interpolation=cv2.INTER_LINEAR))
    return CalibrationSet(
        calib.frames + crops,
        f'{calib.source}; plus {len(crops)} zoomed crops (side {scales[0]:g}-{scales[1]:g} of '
        f'the frame, seed {seed}) of frames {[calib.frame_ids[i] for i in picks]}',
        calib.frame_ids + [f'zoom:{calib.frame_ids[i]}' for i in picks], calib.video)

def card_tensors(card: ModelCard, frames: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Model inputs for frames, made by the card's own preprocessing (digit cards: the digit
    extraction first, frames with no digit skipped), exactly as inference makes them."""
    from ros_onnx_vision.inference.digit_finder import extract_digit
    from ros_onnx_vision.inference.preprocessing import preprocess
    tensors = []
    for frame in frames:
        if card.digit is not None:
            extraction = extract_digit(frame, card.digit, 'BGR')
            if extraction.image is None:
                continue
            tensors.append(preprocess(extraction.image, card.input, 'GRAY')[0])
        else:
            tensors.append(preprocess(frame, card.input, 'BGR')[0])
    return tensors


@dataclass
class HeldOutFrames:
    """Unlabelled video frames for the fp32 agreement check, none used for calibration."""

    frames: list[np.ndarray]
    frame_ids: list[int]
    source: str  # where they came from, or why there are none


def agreement_frames(video: Path | None, calibration_ids: Iterable[int | str],
                     count: int = DEFAULT_AGREEMENT_FRAMES) -> HeldOutFrames:
    """``count`` evenly spaced frames of the calibration video that calibration did not use:
    neither a calibration frame (nor a zoomed crop's frame) or within
    :data:`CALIBRATION_MARGIN` of one, nor (vtest.avi) within :data:`LABELLED_MARGIN` of a
    labelled frame. No frames (and the reason in ``source``) when there is no such video."""
    if count <= 0:
        return HeldOutFrames([], [], 'not run (0 agreement frames asked)')
    if video is None or not video.is_file():
        return HeldOutFrames([], [], 'skipped: the calibration source was not a video, so there '
                                     'are no unpicked frames of it to compare on')
    used = {int(str(i).removeprefix('zoom:')) for i in calibration_ids
            if str(i).removeprefix('zoom:').isdigit()}
    labelled = video.name == 'vtest.avi'
    total = video_frame_count(video)
    candidates = [i for i in range(total)
                  if all(abs(i - u) > CALIBRATION_MARGIN for u in used)
                  and not (labelled and _near_labelled(i))]
    frames, ids = read_video_frames(video, _evenly(candidates, count))
    if not frames:
        return HeldOutFrames([], [], f'skipped: {video.name} has no frame left that calibration '
                                     'did not use')
    note = (f' or +-{LABELLED_MARGIN} of the labelled frames {list(LABELLED_VTEST_FRAMES)}'
            if labelled else '')
    return HeldOutFrames(frames, ids, f'{video.name}: {len(ids)} evenly spaced frames '
                                      f'{ids[0]}..{ids[-1]}, none within +-{CALIBRATION_MARGIN} '
                                      f'of a calibration frame{note}')

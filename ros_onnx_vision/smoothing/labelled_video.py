"""Labelled people on video, read from the formats sequences come in. No ROS imports.

- this project's ``labels.json`` (``../shared/data/people_video_dev``, ``tools.evaluate.video
  shake``): ``{"fps": F, "frames": {"<file>": {"persons": [[x1, y1, x2, y2, id], ...],
  "difficult": [[x1, y1, x2, y2], ...]}}}``, 0-based pixels, frames in file-name order;
- MOTChallenge ``gt/gt.txt`` (MOT15 to MOT20), with the sequence's ``seqinfo.ini`` for the frame
  rate and length: ``frame, id, left, top, width, height, flag, class, visibility`` (MOT15:
  ``..., flag, x, y, z``, 10 values), 1-based. As the MOTChallenge evaluation does, rows whose
  flag is 0 are left out, pedestrians (class 1) are the people to find, and people on vehicles,
  static people, distractors and reflections (classes 2, 7, 8, 12) are *ignored*: a detection on
  one is neither a hit nor a false positive;
- OTB / VOT-style ``groundtruth_rect.txt``: one ``x, y, width, height`` line per frame (commas,
  tabs or spaces), 1-based, one labelled target (id 1); a line of zeros or NaN: the target is
  not in view. Only that person is labelled, so other people count as false positives.
"""

from __future__ import annotations

from collections.abc import Mapping
import configparser
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import re

from ros_onnx_vision.geometry import Box

# MOTChallenge classes (MOT16 onwards): the ones to find, and the person-like ones ignored.
MOT_PEDESTRIAN = 1
MOT_IGNORED = {2, 7, 8, 12}  # person on vehicle, static person, distractor, reflection


@dataclass(frozen=True)
class LabelledFrame:
    """The labelled people of one video frame, and regions where output is not scored."""

    name: str
    boxes: list[Box]
    ids: list[int]
    ignore: list[Box] = field(default_factory=list)


def load_video_labels(path: Path, fps: float | None = None) -> tuple[float, list[LabelledFrame]]:
    """(frame rate, one LabelledFrame per video frame in order) from a labels.json, a
    MOTChallenge gt.txt or sequence folder, or an OTB groundtruth_rect.txt.

    fps overrides the file's rate; OTB files have none and need it. Raises ValueError naming
    what was wrong and what was expected.
    """
    rate, frames = read_video_labels(path)
    rate = fps if fps else rate
    if not rate or not math.isfinite(rate) or rate <= 0:
        raise ValueError(f'{path} gives no frame rate: pass it (--fps), e.g. 30 for OTB')
    return float(rate), frames


def read_video_labels(path: Path) -> tuple[float | None, list[LabelledFrame]]:
    """(the file's frame rate or None, the frames) as :func:`load_video_labels` reads them,
    for callers that take the timing from elsewhere (the demo's stamps)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / 'gt' / 'gt.txt', path / 'labels.json',
                          path / 'groundtruth_rect.txt', path / 'groundtruth.txt'):
            if candidate.is_file():
                return read_video_labels(candidate)
        raise ValueError(f'{path} has no labels.json, gt/gt.txt or groundtruth_rect.txt')
    if not path.is_file():
        raise ValueError(f'labels file {path} does not exist')
    if path.suffix == '.json':
        return _read_labels_json(path)
    if _is_mot(path):
        return _read_mot(path)
    return None, _read_otb(path)


def read_seqinfo(sequence: Path) -> Mapping[str, str]:
    """The [Sequence] entries of a MOTChallenge sequence folder's seqinfo.ini ({} without one),
    keys in any case: frameRate, seqLength, imDir, imExt, ..."""
    info = configparser.ConfigParser()
    info.read(Path(sequence) / 'seqinfo.ini')
    return info['Sequence'] if info.has_section('Sequence') else {}


def _read_labels_json(path: Path) -> tuple[float | None, list[LabelledFrame]]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get('frames'), dict):
        raise ValueError(f'{path}: expected {{"fps": F, "frames": {{"<file>": {{"persons": '
                         '[[x1, y1, x2, y2, id], ...]}}}}}}')
    frames = []
    for name in sorted(data['frames']):
        entry = data['frames'][name]
        persons = entry['persons']
        frames.append(LabelledFrame(
            name, [_box(p[:4]) for p in persons], [int(p[4]) for p in persons],
            [_box(d[:4]) for d in entry.get('difficult', [])]))
    return data.get('fps'), frames


def _box(values) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


def _rows(path: Path) -> list[list[float]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append([float(v) for v in re.split(r'[,\s]+', line.strip())])
        except ValueError:
            raise ValueError(f'{path}:{number}: expected numbers separated by commas, tabs or '
                             f'spaces, got {line.strip()[:60]!r}') from None
    return rows


def _is_mot(path: Path) -> bool:
    """gt.txt, or a file of 9-10 column rows with a frame number and an id first."""
    if path.name == 'gt.txt' or read_seqinfo(path.parent.parent):
        return True
    first = next((line for line in path.read_text().splitlines() if line.strip()), '')
    return len(re.split(r'[,\s]+', first.strip())) >= 9


def _read_mot(path: Path) -> tuple[float | None, list[LabelledFrame]]:
    rows = _rows(path)
    bad = next((r for r in rows if len(r) < 7), None)
    if bad is not None:
        raise ValueError(f'{path}: expected MOTChallenge rows "frame, id, left, top, width, '
                         f'height, flag[, class, visibility]", got {len(bad)} values')
    seq = read_seqinfo(path.parent.parent)
    length = int(seq.get('seqLength', 0)) or int(max((r[0] for r in rows), default=0))
    ext = seq.get('imExt', '.jpg')
    frames = [LabelledFrame(f'{i:06d}{ext}', [], [], []) for i in range(1, length + 1)]
    for row in rows:
        index, flag = int(row[0]) - 1, row[6]
        # MOT16+ gt rows have 9 values, the class 8th; MOT15's have 10, world x, y, z there.
        label = int(row[7]) if len(row) == 9 else MOT_PEDESTRIAN
        if not 0 <= index < length or flag == 0:
            continue
        left, top, width, height = row[2:6]
        box = (left - 1, top - 1, left - 1 + width, top - 1 + height)
        frame = frames[index]
        if label == MOT_PEDESTRIAN:
            frame.boxes.append(box)
            frame.ids.append(int(row[1]))
        elif label in MOT_IGNORED:
            frame.ignore.append(box)
    rate = float(seq['frameRate']) if 'frameRate' in seq else None
    return rate, frames


def _read_otb(path: Path) -> list[LabelledFrame]:
    frames = []
    for k, row in enumerate(_rows(path)):
        if len(row) != 4:
            raise ValueError(f'{path}: expected one "x, y, width, height" line per frame '
                             f'(OTB), got {len(row)} values on frame {k + 1}')
        x, y, width, height = row
        present = all(math.isfinite(v) for v in row) and width > 0 and height > 0
        frames.append(LabelledFrame(
            f'{k + 1:04d}', [(x - 1, y - 1, x - 1 + width, y - 1 + height)] if present else [],
            [1] if present else []))
    return frames

"""Confirmed vs raw detections on a labelled pedestrian video (../shared/data/people_video_dev).

The default detector runs once on every frame of TUD-Stadtmitte (179 frames, 25 fps) and of
a shaken copy (python -m tools.evaluate.video shake); the detections are replayed through
DetectionTracker as cameras at 10, 25 and 30 Hz with a processed rate below the camera's
(ros_onnx_vision.smoothing.evaluation), and raw vs confirmed are scored after the first
0.5 s. Skipped where the development set is not beside the checkout (its licence forbids
copying it into the repository).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from conftest import REPO
from tools.evaluate.video import shake
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card
from ros_onnx_vision.results import Detection
from ros_onnx_vision.smoothing.evaluation import evaluate, load_video_labels, SCENARIOS, Scores

TUD = REPO.parent / 'shared' / 'data' / 'people_video_dev' / 'tud_stadtmitte'

pytestmark = pytest.mark.skipif(not (TUD / 'labels.json').is_file(),
                                reason=f'no development video at {TUD}')


def detect(engine: InferenceEngine, frames: Path, names: list[str]) -> list[list[Detection]]:
    return [engine.infer(cv2.imread(str(frames / name)), 'BGR').detections for name in names]


@pytest.fixture(scope='module')
def sequences(tmp_path_factory) -> dict[str, tuple]:
    """(fps, labelled frames, detections) of the sequence and of its shaken copy."""
    engine = InferenceEngine(load_model_card(REPO / 'models' / 'centernet_mobilenetv3_512.yaml'),
                             intra_op_threads=1)
    shaken = tmp_path_factory.mktemp('shaken')
    shake(TUD / 'labels.json', TUD / 'frames', shaken)
    out = {}
    for name, folder in (('tud', TUD), ('shaky', shaken)):
        fps, truth = load_video_labels(folder / 'labels.json')
        out[name] = (fps, truth, detect(engine, folder / 'frames', [f.name for f in truth]))
    return out


def check(runs: list[dict[str, Scores]], *, recall_ratio: float, precision_loss: float,
          switches: int) -> None:
    for run in runs:
        raw, confirmed = run['raw'], run['confirmed']
        figures = f'raw {raw.to_dict()}\nconfirmed {confirmed.to_dict()}'
        assert confirmed.recall >= recall_ratio * raw.recall, figures
        assert confirmed.precision >= raw.precision - precision_loss, figures
        assert confirmed.count_changes < raw.count_changes, figures
        assert confirmed.max_track_switches <= switches, figures


# Measured (issue 20, docs/voting.md; coast max(1, N // 4)): confirmed recall 0.88-0.94 of raw,
# precision at most 0.011 below raw (static camera), 0.016 (shaken), above raw at 25-30 Hz with
# 12-16 Hz processed on the static one; at most one id switch per person (two on the shaken
# copy). The floors leave room for other CPUs' detections (0.020 / 0.026 below raw with the
# coast of N // 2). The target (precision >= raw, recall >= 0.95 raw) is not reached
# everywhere: a person's first 0.5 s after (re)appearing is never confirmed.
@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda s: s.name)
def test_confirmed_detections_on_the_dev_video(sequences, scenario):
    fps, truth, detections = sequences['tud']
    check(evaluate(truth, detections, fps, scenario), recall_ratio=0.87, precision_loss=0.018,
          switches=1)


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda s: s.name)
def test_confirmed_detections_under_camera_shake(sequences, scenario):
    fps, truth, detections = sequences['shaky']
    check(evaluate(truth, detections, fps, scenario), recall_ratio=0.87, precision_loss=0.024,
          switches=2)

"""Confirmed vs raw detections on a labelled pedestrian video (../shared/data/people_video_dev).

The default detector runs once on every frame of TUD-Stadtmitte (179 frames, 25 fps), of two
shaken copies (python -m tools.evaluate.video shake, 20 and 40 px) and of a hand-held camera
following one person (python -m tools.evaluate.video follow); the detections are
replayed through DetectionTracker as cameras at 10, 25 and 30 Hz with a processed rate below
the camera's (ros_onnx_vision.smoothing.evaluation), and raw vs confirmed are scored after
the first 0.5 s. Skipped where the development set is not beside the checkout (its licence forbids
copying it into the repository).
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import cv2
import pytest

from conftest import REPO
from tools.evaluate.video import follow, shake
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card
from ros_onnx_vision.results import Detection
from ros_onnx_vision.smoothing.evaluation import evaluate, SCENARIOS, Scores
from ros_onnx_vision.smoothing.labelled_video import load_video_labels

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
    # A hand-held camera jumping up to a box width a frame (20 px mean, 41 px at most).
    jumpy = tmp_path_factory.mktemp('jumpy')
    shake(TUD / 'labels.json', TUD / 'frames', jumpy, seed=1, amplitude=40.0)
    # A hand-held camera zoomed 1.8x on person 6, panning after them and shaking (25 px).
    following = tmp_path_factory.mktemp('follow')
    follow(TUD / 'labels.json', TUD / 'frames', following, person=6, seed=1, amplitude=25.0)
    out = {}
    for name, folder in (('tud', TUD), ('shaky', shaken), ('jumpy', jumpy),
                         ('follow', following)):
        fps, truth = load_video_labels(folder / 'labels.json')
        out[name] = (fps, truth, detect(engine, folder / 'frames', [f.name for f in truth]))
    return out


def check(runs: list[dict[str, Scores]], *, recall_ratio: float, precision_loss: float,
          switches: int, count_changes_each_run: bool = True) -> None:
    for run in runs:
        raw, confirmed = run['raw'], run['confirmed']
        figures = f'raw {raw.to_dict()}\nconfirmed {confirmed.to_dict()}'
        assert confirmed.recall >= recall_ratio * raw.recall, figures
        assert confirmed.precision >= raw.precision - precision_loss, figures
        if count_changes_each_run:
            assert confirmed.count_changes <= raw.count_changes, figures
        assert confirmed.max_track_switches <= switches, figures
    # Fewer count changes over the seeds: one seed at 10 Hz ties, where raw jumps 4 -> 6 people
    # in one frame and the two tracks are confirmed on successive frames (two changes). On the
    # shaken copy a missed person is not coasted, so one seed may change once more than raw.
    assert sum(r['confirmed'].count_changes for r in runs) < \
        sum(r['raw'].count_changes for r in runs)


# Measured (issue 20, docs/voting.md): confirmed recall 0.930-0.964 of raw on the static camera,
# 0.914-0.942 on the shaken copy; precision at most 0.005 below raw (10 Hz camera), above raw at
# 25-30 Hz with 12-16 Hz processed on both; at most one id switch per person (two on
# the shaken copy). The floors leave room for other CPUs' detections. The issue's target
# (precision >= raw, recall >= 0.95 raw) is not reached everywhere: a person's first N frames
# are never confirmed: with perfect identity that alone caps the ratio at 0.96 (docs/voting.md).
@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda s: s.name)
def test_confirmed_detections_on_the_dev_video(sequences, scenario):
    fps, truth, detections = sequences['tud']
    check(evaluate(truth, detections, fps, scenario), recall_ratio=0.91, precision_loss=0.01,
          switches=1)


@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda s: s.name)
def test_confirmed_detections_under_camera_shake(sequences, scenario):
    fps, truth, detections = sequences['shaky']
    check(evaluate(truth, detections, fps, scenario), recall_ratio=0.9, precision_loss=0.01,
          switches=2, count_changes_each_run=False)


# Measured (docs/voting.md): 0.929-0.957 of raw recall, precision within 0.001 of raw, at most
# 3 id switches for one person; before the camera-shift consensus 0.851-0.946 and 6-11
# switches for one person (neighbours' tracks swapped on every jump).
@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda s: s.name)
def test_confirmed_detections_when_the_camera_jumps_a_box_width(sequences, scenario):
    fps, truth, detections = sequences['jumpy']
    check(evaluate(truth, detections, fps, scenario), recall_ratio=0.9, precision_loss=0.01,
          switches=3, count_changes_each_run=False)


# Measured (docs/voting.md): 0.894-0.921 of raw recall, precision 0.009-0.025 above raw, at most
# 2 id switches for one person. People walk in and out of the zoomed view and each entry costs
# its N frames: with perfect identity the rule allows 0.90-0.91 here. Without motion
# compensation precision falls below raw (-0.008) with 3 switches; IoU alone 0.722 / -0.059.
@pytest.mark.parametrize('scenario', SCENARIOS, ids=lambda s: s.name)
def test_confirmed_detections_from_a_hand_held_camera_following_a_person(sequences, scenario):
    fps, truth, detections = sequences['follow']
    check(evaluate(truth, detections, fps, scenario), recall_ratio=0.85, precision_loss=0.0,
          switches=2, count_changes_each_run=False)


def motchallenge_copy(root: Path) -> Path:
    """TUD-Stadtmitte laid out as MOTChallenge ships it: img1/, seqinfo.ini, gt/gt.txt (MOT15
    rows, 1-based), written from the dev set's labels (frames linked, not copied)."""
    data = json.loads((TUD / 'labels.json').read_text())
    names = sorted(data['frames'])
    (root / 'gt').mkdir(parents=True)
    (root / 'img1').symlink_to(TUD / 'frames', target_is_directory=True)
    (root / 'seqinfo.ini').write_text(
        f'[Sequence]\nname=TUD-Stadtmitte\nimDir=img1\nframeRate={data["fps"]}\n'
        f'seqLength={len(names)}\nimWidth=640\nimHeight=480\nimExt=.jpg\n')
    rows = [f'{i},{p[4]},{p[0] + 1:g},{p[1] + 1:g},{p[2] - p[0]:.1f},{p[3] - p[1]:.1f},1,-1,-1,-1'
            for i, name in enumerate(names, 1) for p in data['frames'][name]['persons']]
    (root / 'gt' / 'gt.txt').write_text('\n'.join(rows) + '\n')
    return root


# The issue's own measurement, as a user makes it: the demo (the four nodes over DDS) on a
# MOTChallenge sequence folder at its seqinfo.ini rate, scored against its gt.txt. Measured
# 2026-12-06: raw R / P 0.764 / 0.994, confirmed 0.724 / 0.995 (0.948 of raw) at 25 Hz; the
# replays above give 0.930-0.953 at any rate. The floors leave room for a slower CPU's rate.
def test_demo_on_a_motchallenge_sequence_scored_against_its_gt(tmp_path, node_env):
    seq = motchallenge_copy(tmp_path / 'TUD-Stadtmitte')
    out = tmp_path / 'demo'
    demo = subprocess.run([sys.executable, '-m', 'tools.demo', '--input', str(seq / 'img1'),
                           '--output', str(out)], env=node_env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert f'179 frames at 25 fps from {seq / "seqinfo.ini"}' in demo.stdout, demo.stdout[:2000]
    assert json.loads((out / 'summary.json').read_text())['raw_missing'] == 0
    figures = tmp_path / 'figures.json'
    score = subprocess.run([sys.executable, '-m', 'tools.evaluate.video', 'score', '--labels',
                            str(seq), '--results', str(out / 'results.jsonl'), '--json',
                            str(figures)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert score.returncode == 0, score.stdout + score.stderr
    result = json.loads(figures.read_text())
    raw, confirmed = result['raw'], result['confirmed']
    assert raw['frames'] >= 60, result  # at least 10 Hz processed of the 25 Hz camera
    assert raw['recall'] >= 0.65 and raw['precision'] >= 0.95, result
    assert confirmed['recall'] >= 0.9 * raw['recall'], result
    assert confirmed['precision'] >= raw['precision'] - 0.01, result
    assert confirmed['max_track_switches'] <= 2, result
    assert confirmed['count_changes'] < raw['count_changes'], result

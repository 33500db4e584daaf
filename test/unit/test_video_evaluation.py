"""Scoring raw vs confirmed on labelled video, and reading the label formats sequences come in
(this project's labels.json, MOTChallenge gt.txt + seqinfo.ini, OTB groundtruth_rect.txt)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ros_onnx_vision.results import Detection
from ros_onnx_vision.smoothing.evaluation import score_frames
from ros_onnx_vision.smoothing.labelled_video import LabelledFrame, load_video_labels
from tools.evaluate.video import follow, main as video_main

# MOT17-style rows: frame, id, left, top, width, height, flag, class, visibility (1-based).
MOT17_GT = """\
1,1,101,51,40,100,1,1,1.0
1,2,301,51,40,100,1,1,0.6
1,3,501,51,40,100,0,1,1.0
1,4,201,201,40,100,1,7,1.0
1,5,401,201,60,30,1,3,1.0
2,1,106,51,40,100,1,1,1.0
2,2,306,51,40,100,1,1,0.5
3,2,311,51,40,100,1,1,0.4
"""
SEQINFO = """[Sequence]
name=TOY
imDir=img1
frameRate=14
seqLength=4
imWidth=640
imHeight=480
imExt=.jpg
"""


def mot_sequence(root: Path) -> Path:
    (root / 'gt').mkdir(parents=True)
    (root / 'gt' / 'gt.txt').write_text(MOT17_GT)
    (root / 'seqinfo.ini').write_text(SEQINFO)
    return root


def det(box, track_id: str = '') -> Detection:
    return Detection('person', 0.9, tuple(float(v) for v in box), track_id=track_id)


def test_mot17_gt_keeps_pedestrians_and_ignores_static_people(tmp_path):
    fps, frames = load_video_labels(mot_sequence(tmp_path / 'TOY'))  # the sequence folder
    assert fps == 14.0
    # seqLength frames, named as img1/ names them, frame 4 without anyone.
    assert [f.name for f in frames] == ['000001.jpg', '000002.jpg', '000003.jpg', '000004.jpg']
    first = frames[0]
    # Pedestrians with flag 1, converted to 0-based x1, y1, x2, y2; flag 0 (id 3) left out.
    assert first.ids == [1, 2]
    assert first.boxes == [(100.0, 50.0, 140.0, 150.0), (300.0, 50.0, 340.0, 150.0)]
    assert first.ignore == [(200.0, 200.0, 240.0, 300.0)]  # class 7, static person; car: gone
    assert frames[2].ids == [2] and frames[3].boxes == []
    # gt.txt itself, or an override of the rate, read the same.
    assert load_video_labels(tmp_path / 'TOY' / 'gt' / 'gt.txt', fps=30)[0] == 30.0


def test_mot15_gt_has_world_coordinates_where_mot17_has_the_class(tmp_path):
    gt = tmp_path / 'gt.txt'
    # MOT15 rows: ..., flag, x, y, z (10 values): every row is a pedestrian.
    gt.write_text('1,1,87,98,61,219,1,-1,-1,-1\n2,1,88,98,61,219,1,12.5,3.0,-1\n')
    with pytest.raises(ValueError, match='no frame rate'):
        load_video_labels(gt)  # no seqinfo.ini beside it: the rate must be given
    fps, frames = load_video_labels(gt, fps=25)
    assert fps == 25 and [f.ids for f in frames] == [[1], [1]]
    assert frames[1].boxes == [(87.0, 97.0, 148.0, 316.0)] and not frames[1].ignore


def test_otb_groundtruth_one_target_absent_frames_and_separators(tmp_path):
    gt = tmp_path / 'groundtruth_rect.txt'
    gt.write_text('11,21,30,60\n12\t22\t30\t60\n0,0,0,0\nNaN,NaN,NaN,NaN\n14 24 30 60\n')
    fps, frames = load_video_labels(gt, fps=30)
    assert fps == 30 and len(frames) == 5
    assert frames[0].boxes == [(10.0, 20.0, 40.0, 80.0)] and frames[0].ids == [1]
    assert frames[1].boxes == [(11.0, 21.0, 41.0, 81.0)]
    assert frames[2].boxes == [] and frames[3].ids == []  # not in view
    with pytest.raises(ValueError, match='no frame rate'):
        load_video_labels(gt)
    gt.write_text('11,21,30\n')
    with pytest.raises(ValueError, match='x, y, width, height'):
        load_video_labels(gt, fps=30)
    gt.write_text('11,21,30,sixty\n')
    with pytest.raises(ValueError, match='expected numbers'):
        load_video_labels(gt, fps=30)


def test_labels_json_difficult_boxes_are_ignored_regions(tmp_path):
    labels = tmp_path / 'labels.json'
    labels.write_text(json.dumps({'fps': 25, 'frames': {
        'b.jpg': {'persons': [], 'difficult': []},
        'a.jpg': {'persons': [[0, 0, 10, 20, 7]], 'difficult': [[50, 0, 60, 20]]}}}))
    fps, frames = load_video_labels(labels)
    assert fps == 25 and [f.name for f in frames] == ['a.jpg', 'b.jpg']
    assert frames[0].ids == [7] and frames[0].ignore == [(50.0, 0.0, 60.0, 20.0)]
    with pytest.raises(ValueError, match='does not exist'):
        load_video_labels(tmp_path / 'missing.json')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no labels.json'):
        load_video_labels(empty)


def test_score_frames_counts_hits_false_positives_switches_and_count_changes():
    person = (0.0, 0.0, 10.0, 20.0)
    frames = [LabelledFrame(str(i), [person], [1], [(50.0, 0.0, 60.0, 20.0)]) for i in range(4)]
    outputs = [
        [det(person, '1')],
        [det(person, '1'), det((50, 0, 60, 20), '9')],  # on the ignored region: no FP
        [det(person, '2'), det((100, 0, 110, 20), '3')],  # id switch, and a false positive
        [],  # a miss
    ]
    scores = score_frames(frames, outputs)
    assert (scores.frames, scores.truth, scores.tp, scores.fp, scores.fn) == (4, 4, 3, 1, 1)
    assert scores.id_switches == 1 and scores.max_track_switches == 1
    assert scores.count_changes == 2  # 1 -> 2 (-> 2) -> 0
    assert scores.recall == 0.75 and scores.precision == 0.75
    # Without ids (raw detections) nothing is a switch; a loose box (IoU < 0.5) is no hit.
    raw = score_frames(frames[:1], [[det((5, 0, 15, 20))]], with_ids=False)
    assert (raw.tp, raw.fp, raw.id_switches) == (0, 1, 0)


def test_score_cli_replays_detections_against_motchallenge_labels(tmp_path, capsys):
    seq = mot_sequence(tmp_path / 'TOY')
    people = {1: [(100, 50, 140, 150), (105, 50, 145, 150), (110, 50, 150, 150), None],
              2: [(300, 50, 340, 150), (305, 50, 345, 150), (310, 50, 350, 150), None]}
    infer = tmp_path / 'raw.jsonl'
    infer.write_text(''.join(json.dumps({'detections': [
        det(boxes[i]).to_dict() for boxes in people.values() if boxes[i]]}) + '\n'
        for i in range(4)))
    out = tmp_path / 'figures.json'
    assert video_main(['score', '--labels', str(seq), '--infer', str(infer),
                       '--json', str(out)]) == 0
    # The first scenario plays the video at its own rate, and says which.
    assert '| camera 14 Hz, every frame processed' in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert len(rows) == 4 and all('raw' in r and 'confirmed' in r for r in rows)
    # A frame count that does not match the labels is an error that says so, not a traceback.
    infer.write_text(infer.read_text() * 2)
    assert video_main(['score', '--labels', str(seq), '--infer', str(infer)]) == 2
    assert 'has 8 frames' in capsys.readouterr().err


def test_follow_moves_labels_with_the_picture(tmp_path):
    # A bright "person" walking right on a dark 320x240 picture; the followed view's labels
    # must lie on the person's pixels in the written frames (zoom, pan and shake alike).
    frames, labels = tmp_path / 'in', {}
    frames.mkdir()
    for i in range(6):
        image = np.zeros((240, 320, 3), np.uint8)
        x = 100 + 8 * i
        image[80:180, x:x + 40] = 255
        cv2.imwrite(str(frames / f'{i:06d}.png'), image)
        labels[f'{i:06d}.png'] = {'persons': [[x, 80, x + 40, 180, 3]], 'difficult': []}
    (tmp_path / 'labels.json').write_text(json.dumps({'fps': 25, 'frames': labels}))
    out = tmp_path / 'out'
    follow(tmp_path / 'labels.json', frames, out, person=3, seed=2, amplitude=10.0)
    fps, truth = load_video_labels(out / 'labels.json')
    assert fps == 25 and len(truth) == 6
    for frame in truth:
        assert frame.ids == [3]
        view = cv2.imread(str(out / 'frames' / frame.name), cv2.IMREAD_GRAYSCALE)
        ys, xs = np.nonzero(view > 128)
        bright = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # Zoomed 1.8x: the 40x100 person is about 72x180 in the view.
        assert np.allclose(frame.boxes[0], bright, atol=4), (frame.boxes[0], bright)

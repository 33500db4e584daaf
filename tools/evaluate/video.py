"""Raw vs confirmed detections on labelled video: recall, precision, count changes, id switches.

    python -m tools.evaluate.video score --labels LABELS --infer raw.jsonl [--json OUT]
    python -m tools.evaluate.video score --labels LABELS --results DEMO_DIR/results.jsonl
    python -m tools.evaluate.video shake --labels labels.json --frames DIR --output DIR [--seed S]
    python -m tools.evaluate.video follow --labels labels.json --frames DIR --output DIR --person P

`score --infer` replays the detections of `python -m ros_onnx_vision infer FRAMES...` (one JSON
line per frame, in frame order) through DetectionTracker at several camera and processed rates
(ros_onnx_vision.smoothing.evaluation.SCENARIOS) and prints raw vs confirmed per scenario.
`score --results` scores what the demo recorded (python -m tools.demo --input VIDEO, results.jsonl:
raw and confirmed per frame) on the frames that got a result. Both skip the first 0.5 s.
`shake` writes a hand-held-camera variant of a labelled sequence: each frame translated by a
random offset (a slow drift plus per-frame jitter), the labels moved alike. `follow` writes a
hand-held camera that zooms in on one labelled person and pans after them, shaking and blurring
(people walk in and out of its view).
LABELS: a labels.json, a MOTChallenge sequence folder or gt/gt.txt (rate from seqinfo.ini), or
an OTB groundtruth_rect.txt (give --fps); see ros_onnx_vision.smoothing.labelled_video.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import cv2
import numpy as np

from ros_onnx_vision.results import Detection
from ros_onnx_vision.smoothing.evaluation import (evaluate, load_infer_jsonl, SCENARIOS,
                                                  score_frames, Scores, summarise)
from ros_onnx_vision.smoothing.labelled_video import load_video_labels, read_video_labels


def _span(pair: tuple[float, float]) -> str:
    low, high = pair
    return f'{low:.3f}' if round(low, 3) == round(high, 3) else f'{low:.3f}-{high:.3f}'


def scenario_table(labels: Path, infer: Path,
                   fps: float | None = None) -> tuple[str, list[dict]]:
    """Markdown table of every scenario (worst-best over its seeds) and the raw figures."""
    fps, truth = load_video_labels(labels, fps)
    detections = load_infer_jsonl(infer)
    if len(detections) != len(truth):
        raise ValueError(f'{infer} has {len(detections)} frames, {labels} {len(truth)}')
    lines = ['| camera, processed | scored frames | raw R / P | confirmed R / P | '
             'count changes raw / confirmed | id switches, most for one person (people) |',
             '|---|---|---|---|---|---|']
    rows = []
    for scenario in SCENARIOS:
        summary = summarise(evaluate(truth, detections, fps, scenario))
        raw, confirmed = summary['raw'], summary['confirmed']
        rows.append({'scenario': scenario.name, **summary})
        frames = _span(confirmed['frames']).replace('.000', '')
        name = scenario.name.replace("at the video's rate", f'{fps:g} Hz')
        lines.append(
            f'| {name} ({len(scenario.seeds)} seeds) | {frames} | '
            f'{_span(raw["recall"])} / {_span(raw["precision"])} | '
            f'{_span(confirmed["recall"])} / {_span(confirmed["precision"])} | '
            f'{raw["count_changes"]} / {confirmed["count_changes"]} | '
            f'{confirmed["id_switches"]}, {confirmed["max_track_switches"]} '
            f'({confirmed["truth_tracks"]}) |')
    return '\n'.join(lines), rows


def score_results(labels: Path, results: Path, skip_s: float = 0.5) -> dict[str, Scores]:
    """Raw and confirmed scores of a demo results.jsonl (frames numbered as in the video; the
    demo's stamps give the timing, so the labels need no rate)."""
    _, truth = read_video_labels(labels)
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    done = [r for r in records if r.get('latency_ms') is not None]
    if not done:
        raise ValueError(f'{results} has no processed frame')
    if len(records) != len(truth):
        print(f'warning: {results} has {len(records)} frames, {labels} {len(truth)}: frame '
              'numbers may not match', file=sys.stderr)
    scored = [r for r in done if r['stamp'] - done[0]['stamp'] >= skip_s
              and r['frame'] < len(truth)]
    # raw_received false: processed, but inference_node's result never reached the recorder;
    # both streams are scored on the same frames.
    received = [r for r in scored if r.get('raw_received', True)]
    if len(received) < len(scored):
        print(f'warning: {results}: {len(scored) - len(received)} of {len(scored)} scored frames '
              'have no raw result (raw_received: false); they are left out of both scores',
              file=sys.stderr)
    scored = received
    frames = [truth[r['frame']] for r in scored]

    def stream(key: str) -> list[list[Detection]]:
        return [[Detection.from_dict(d) for d in r[key]] for r in scored]

    return {'raw': score_frames(frames, stream('raw'), False),
            'confirmed': score_frames(frames, stream('confirmed'))}


def _hand_shake(rng: np.random.Generator, drift: np.ndarray,
                amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """(next drift, this frame's picture offset): a slow drift plus per-frame jitter, up to
    about +-amplitude px (x) and 0.6 of it (y)."""
    drift = 0.8 * drift + rng.normal(0.0, 0.25 * amplitude, 2)
    return drift, np.clip(drift + rng.uniform(-0.5, 0.5, 2) * amplitude, -1.5 * amplitude,
                          1.5 * amplitude) * (1.0, 0.6)


def _in_view(box: np.ndarray, width: int, height: int) -> list[float] | None:
    """A moved label clipped to the picture (rounded to 0.1 px), or None when less than half of
    it is in view: a person pushed half out of the picture is no longer a fair target."""
    inside = np.clip(box, 0, [width, height] * 2)
    if np.prod(inside[2:] - inside[:2]) < 0.5 * np.prod(box[2:] - box[:2]):
        return None
    return [round(float(v), 1) for v in inside]


def shake(labels: Path, frames: Path, output: Path, seed: int = 0,
          amplitude: float = 20.0) -> None:
    """Write frames translated by drift + jitter (up to about +-amplitude px) and labels."""
    data = json.loads(labels.read_text())
    rng = np.random.default_rng(seed)
    (output / 'frames').mkdir(parents=True, exist_ok=True)
    drift = np.zeros(2)
    shaken = {}
    for name in sorted(data['frames']):
        image = cv2.imread(str(frames / name))
        height, width = image.shape[:2]
        drift, (dx, dy) = _hand_shake(rng, drift, amplitude)
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        cv2.imwrite(str(output / 'frames' / name), cv2.warpAffine(
            image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE),
            [cv2.IMWRITE_JPEG_QUALITY, 90])
        persons = [view + [track] for *box, track in data['frames'][name]['persons']
                   if (view := _in_view(np.add(box, [dx, dy, dx, dy]), width, height))]
        shaken[name] = {'persons': persons, 'difficult': [],
                        'shift': [round(float(dx), 1), round(float(dy), 1)]}
    note = f'{labels} shaken by python -m tools.evaluate.video shake (seed {seed}, {amplitude} px)'
    (output / 'labels.json').write_text(json.dumps(
        {'note': note, 'fps': data['fps'], 'frames': shaken}))


def follow(labels: Path, frames: Path, output: Path, person: int, seed: int = 0,
           amplitude: float = 20.0, zoom: float = 1.8) -> None:
    """Write a hand-held camera following one person: a window 1 / zoom of the frame that pans
    after the person's centre (lagging, gain 0.25 a frame) with drift + jitter of up to about
    +-amplitude px, scaled back to the frame's size, motion-blurred along the pan; the labels
    moved alike, a person less than half in view left out (as `shake` does)."""
    data = json.loads(labels.read_text())
    rng = np.random.default_rng(seed)
    (output / 'frames').mkdir(parents=True, exist_ok=True)
    centre = None
    drift = np.zeros(2)
    previous = None
    followed = {}
    for name in sorted(data['frames']):
        image = cv2.imread(str(frames / name))
        height, width = image.shape[:2]
        view_w, view_h = width / zoom, height / zoom
        target = [((x1 + x2) / 2, (y1 + y2) / 2)
                  for x1, y1, x2, y2, track in data['frames'][name]['persons'] if track == person]
        if target:
            centre = np.array(target[0]) if centre is None else \
                centre + 0.25 * (np.array(target[0]) - centre)
        if centre is None:  # not in view yet: hold the middle
            centre = np.array([width / 2, height / 2])
        drift, offset = _hand_shake(rng, drift, amplitude)
        aim = centre + offset
        left = float(np.clip(aim[0] - view_w / 2, 0, width - view_w))
        top = float(np.clip(aim[1] - view_h / 2, 0, height - view_h))
        matrix = np.float32([[zoom, 0, -left * zoom], [0, zoom, -top * zoom]])
        view = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
        if previous is not None:  # horizontal blur over half the pan of this frame
            length = int(min(abs(left - previous) * zoom * 0.5, 15))
            if length >= 3:
                kernel = np.zeros((length, length), np.float32)
                kernel[length // 2, :] = 1.0 / length
                view = cv2.filter2D(view, -1, kernel)
        previous = left
        cv2.imwrite(str(output / 'frames' / name), view, [cv2.IMWRITE_JPEG_QUALITY, 90])
        persons = [view + [track] for *box, track in data['frames'][name]['persons']
                   if (view := _in_view(np.subtract(box, [left, top, left, top]) * zoom,
                                        width, height))]
        followed[name] = {'persons': persons, 'difficult': []}
    note = (f'{labels} seen by a hand-held camera following person {person} (python -m '
            f'tools.evaluate.video follow, seed {seed}, {amplitude} px, zoom {zoom})')
    (output / 'labels.json').write_text(json.dumps(
        {'note': note, 'fps': data['fps'], 'frames': followed}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.evaluate.video',
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    score = sub.add_parser('score', help='raw vs confirmed on a labelled sequence')
    score.add_argument('--labels', type=Path, required=True,
                       help='labels.json, MOTChallenge sequence folder or gt.txt, OTB '
                       'groundtruth_rect.txt')
    score.add_argument('--fps', type=float,
                       help="with --infer: the video's frame rate (OTB files have none; default: "
                       "the labels')")
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument('--infer', type=Path, help='JSON lines of `ros_onnx_vision infer`')
    source.add_argument('--results', type=Path, help="the demo's results.jsonl")
    score.add_argument('--json', type=Path, help='also write the figures here')
    shaker = sub.add_parser('shake', help='make a shaky-camera variant of a sequence')
    shaker.add_argument('--labels', type=Path, required=True)
    shaker.add_argument('--frames', type=Path, required=True)
    shaker.add_argument('--output', type=Path, required=True)
    shaker.add_argument('--seed', type=int, default=0)
    shaker.add_argument('--amplitude', type=float, default=20.0)
    follower = sub.add_parser('follow', help='make a hand-held camera following one person')
    follower.add_argument('--labels', type=Path, required=True)
    follower.add_argument('--frames', type=Path, required=True)
    follower.add_argument('--output', type=Path, required=True)
    follower.add_argument('--person', type=int, required=True, help='labelled id to follow')
    follower.add_argument('--seed', type=int, default=0)
    follower.add_argument('--amplitude', type=float, default=20.0)
    follower.add_argument('--zoom', type=float, default=1.8)
    args = parser.parse_args(argv)
    if args.command == 'shake':
        shake(args.labels, args.frames, args.output, args.seed, args.amplitude)
        return 0
    if args.command == 'follow':
        follow(args.labels, args.frames, args.output, args.person, args.seed, args.amplitude,
               args.zoom)
        return 0
    try:
        if args.infer is not None:
            table, rows = scenario_table(args.labels, args.infer, args.fps)
        else:
            scores = score_results(args.labels, args.results)
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if args.infer is not None:
        print(table)
        figures: object = rows
    else:
        figures = {k: v.to_dict() for k, v in scores.items()}
        raw, confirmed = scores['raw'], scores['confirmed']
        print(f'scored frames {raw.frames}: raw R {raw.recall:.3f} P {raw.precision:.3f} '
              f'count changes {raw.count_changes} | confirmed R {confirmed.recall:.3f} '
              f'P {confirmed.precision:.3f} count changes {confirmed.count_changes} '
              f'id switches {confirmed.id_switches}, at most {confirmed.max_track_switches} for '
              f'one of {confirmed.truth_tracks} labelled people')
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())

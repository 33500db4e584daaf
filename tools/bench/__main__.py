#!/usr/bin/env python3
"""The benchmark suite: every performance target's figures in one run, as JSON and a report.

    tools/benchmark.sh [--output DIR] [--quick]      # builds .venv first, then runs this
    .venv/bin/python -m tools.bench --render DIR/results.json   # re-render a report

Sections (each also runs alone, see its script):
1. image transport between processes, 640x480 / 1280x720 / 1920x1080 bgr8, best effort and
   reliable, Fast DDS defaults vs the shipped profile (`tools/bench/transport.py`);
2. inference_node per stage for every model card in models/ (`tools/bench/inference.py`), and the
   accuracy of every card: people near (../shared/data/pennfudan_dev) and far (the project's
   labels), digits held out and photographed (the int8 default against fp32: speed and
   accuracy from this same run);
3. end-to-end latency (p50/p90/p99/max, stalls over 3x p50 with the stage they happened in),
   processed rate and the frame accounting (camera, inference_node, probe) at camera
   10/30/60 Hz for each task, and 4. the single-process baseline on the same frames
   (`tools/bench/pipeline.py`); 5. the options table: the human detection pipeline at 30 and 60 Hz
   with each configuration worth trying on this machine (threads, spinning, int8, pinning).
Targets are evaluated as ratios (`tools/bench/report.py`). Writes DIR/results.json,
DIR/report.md and DIR/*.png (default DIR: output/benchmark). Windows are 20 s; --quick
shortens every measurement, for checking the command, and its report says it is not for
targets. Exits 1 when the frame counts of a window disagree beyond its edges.
Needs the source checkout: it reads models/ and test/data and writes output/.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time

from tools.bench.report import write_report
from tools.machine import machine_record

ROOT = Path(__file__).resolve().parents[2]


def transport(seconds: float, rate: float, sizes: list[str]) -> list[dict]:
    from tools.bench import transport as bench_transport
    domain = 200 + os.getpid() % 30
    rows = []
    for size in sizes:
        for reliability in ('best_effort', 'reliable'):
            for profile in (False, True):
                row = bench_transport.measure(size, reliability, profile, seconds, rate, domain)
                print(f'[benchmark] transport {size} {reliability} {row["profile"]}: '
                      f'p50 {row["p50_ms"]} ms, {row["received_pct"]}% received', flush=True)
                rows.append(row)
    return rows


def inference(frames: int, threads: int) -> list[dict]:
    from tools.bench import inference as bench_inference
    from tools.ros_probe import RosProbe
    cards = [p.name for p in sorted((ROOT / 'models').glob('*.yaml'))]
    probe = RosProbe(None, 'benchmark_inference')  # only a node to publish from
    try:
        rows = []
        for card in cards:
            row = bench_inference.bench(card, frames, threads, probe.node)
            print(f'[benchmark] inference {card}: run {row["mean_ms"]["run"]:.2f} ms, '
                  f'everything else {row["other_ms"]:.2f} ms', flush=True)
            rows.append(row)
        return rows
    finally:
        probe.close()


def accuracy() -> list[dict]:
    """Every shipped card's accuracy: person recall/precision on the project's labels and on
    the near pedestrians of ../shared/data/pennfudan_dev (where present); digit top-1 on the
    held-out MNIST digits and on the photos of ../shared/data/digit_photos_dev."""
    import cv2
    from tools.evaluate.people import evaluate_engine, load_box_labels, PENNFUDAN
    from ros_onnx_vision.inference.engine import InferenceEngine
    from ros_onnx_vision.inference.model_card import load_model_card
    from ros_onnx_vision.results import Task
    rows = []
    for path in sorted((ROOT / 'models').glob('*.yaml')):
        card = load_model_card(path)
        engine = InferenceEngine(card)
        if card.task is Task.DETECTION:
            row = {'card': path.name, 'task': 'detection', **evaluate_engine(engine).to_dict()}
            if (PENNFUDAN / 'labels.json').is_file():
                near = evaluate_engine(engine, load_box_labels(PENNFUDAN / 'labels.json'),
                                       PENNFUDAN)
                row['near'] = near.to_dict()
            print(f'[benchmark] accuracy {path.name}: recall {row["recall"]:.3f}, precision '
                  f'{row["precision"]:.3f}' + (f'; near {row["near"]["recall"]:.3f} / '
                                               f'{row["near"]["precision"]:.3f}'
                                               if 'near' in row else ''), flush=True)
        else:
            from tools.optimize.evaluation import evaluate_digits, heldout_digits
            held = evaluate_digits(card, card.model_path, 0, heldout_digits())
            row = {'card': path.name, 'task': 'classification',
                   'heldout_top1': held.get('accuracy')}
            photos = ROOT.parent / 'shared' / 'data' / 'digit_photos_dev'
            if (photos / 'labels.json').is_file():
                items = json.loads((photos / 'labels.json').read_text())
                right = 0
                for item in items:
                    result = engine.infer(cv2.imread(str(photos / item['file'])))
                    right += bool(result.classifications) and \
                        result.classifications[0].label == str(item['label'])
                row.update(photos_top1=round(right / len(items), 4), photos=len(items))
            print(f'[benchmark] accuracy {path.name}: {row}', flush=True)
        rows.append(row)
    return rows


# Configurations of the human detection pipeline tried side by side in the options table, on
# a camera faster than the model and one slower (node parameters, card, pinning).
def options(cpus: int) -> list[tuple[str, dict]]:
    from tools.bench.pipeline import CARD_OF_TASK
    from ros_onnx_vision.inference.session import threads_beside_other_work
    auto = threads_beside_other_work()
    int8 = CARD_OF_TASK['human_detection'].replace('.yaml', '_int8.yaml')
    rows = [(f'default (automatic: {auto} thread{"s" if auto > 1 else ""})', {})]
    if cpus > auto:
        rows.append((f'{cpus} threads (ONNX Runtime\'s default)', {'threads': cpus}))
        rows.append((f'{cpus} threads, spinning', {'threads': cpus, 'inference_parameters':
                                                    {'intra_op_spinning': True}}))
    rows.append(('int8 card, automatic threads', {'card': int8}))
    if cpus >= 2:
        rows.append(('automatic threads, inference_node pinned to the last CPU, the other '
                     'nodes to the rest', {'pinning': {'inference_node': {cpus - 1},
                                                       'camera_node': set(range(cpus - 1)),
                                                       'smoothing_node': set(range(cpus - 1))}}))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.bench',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--output', type=Path, default=ROOT / 'output' / 'benchmark')
    parser.add_argument('--quick', action='store_true',
                        help='short measurements (checks the command; figures are rougher)')
    parser.add_argument('--threads', type=int, default=0,
                        help='ONNX Runtime intra-op threads (0 = automatic, as the nodes)')
    parser.add_argument('--render', type=Path, metavar='RESULTS_JSON',
                        help='only re-render the report of an earlier results.json')
    args = parser.parse_args()
    if args.render:
        results = json.loads(args.render.read_text())
        results.pop('targets', None)
        report, _ = write_report(results, args.render.parent)
        print(f'[benchmark] wrote {report}')
        return 0

    from tools.bench import pipeline as bench_pipeline
    from tools.ros_probe import host_only_participant
    # This process's own nodes (probe, publisher of the stage benchmark) use the same transport
    # as the nodes; the defaults-vs-profile comparison sets its child processes' environment.
    host_only_participant()
    command = 'tools/benchmark.sh' + (' --quick' if args.quick else '')
    started = time.monotonic()
    results: dict = {'machine': machine_record(command, ROOT), 'quick': args.quick}
    seconds = 1.5 if args.quick else 4.0
    results.update(transport_rate_hz=30.0, transport_seconds=seconds)
    results['transport'] = transport(seconds, 30.0, ['640x480', '1280x720', '1920x1080'])
    results['inference'] = inference(15 if args.quick else 100, args.threads)
    results['accuracy'] = accuracy()
    workdir = ROOT / 'output' / 'benchmark_work'  # inputs made here and node logs (ignored)
    workdir.mkdir(parents=True, exist_ok=True)
    timing = {'seconds': 4.0 if args.quick else 20.0, 'warmup': 2.0 if args.quick else 3.0,
              'frames': 15 if args.quick else 60, 'workdir': workdir,
              'log': lambda m: print(m.replace('[bench]', '[benchmark]'), flush=True)}
    results['pipeline'] = bench_pipeline.run(
        ['human_detection', 'digit_classification'], [10.0, 30.0, 60.0], threads=args.threads,
        **timing)
    results['options'] = []
    for name, config in options(len(os.sched_getaffinity(0))):
        threads = config.pop('threads', args.threads)
        option = bench_pipeline.run(['human_detection'], [30.0, 60.0], threads=threads,
                                    label=name, **config, **timing)
        results['options'].append({'name': name, **option['tasks'][name]})
    results['seconds'] = round(time.monotonic() - started, 1)
    report, targets = write_report(results, args.output)
    print(f'[benchmark] {len(targets)} targets: '
          f'{sum(t.met is True for t in targets)} met, {sum(t.met is False for t in targets)} '
          f'missed')
    for t in targets:
        print(f'[benchmark]   {"met   " if t.met else "MISSED" if t.met is False else "n/a   "} '
              f'{t.name} ({t.where}): {t.measured}; limit {t.limit}')
    print(f'[benchmark] wrote {report} (and results.json, plots) in {results["seconds"]:.0f} s')
    rows = [(task, row) for task, data in results['pipeline']['tasks'].items()
            for row in data['pipeline']] + [(o['name'], row) for o in results['options']
                                            for row in o['pipeline']]
    disagree = [(task, row['camera_hz'], check) for task, row in rows
                for check in row['accounting']['checks']]
    for task, rate, check in disagree:
        print(f'[benchmark] COUNTS DISAGREE: {task} at {rate:g} Hz: {check}', file=sys.stderr)
    if disagree:
        print(f'[benchmark] FAILED: {len(disagree)} disagreement(s) between the camera, '
              'inference_node and the probe counts (see the report\'s accounting table)',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

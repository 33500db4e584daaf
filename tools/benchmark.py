#!/usr/bin/env python3
"""The benchmark suite: every performance target's figures in one run, as JSON and a report.

    tools/benchmark.sh [--output DIR] [--quick]      # builds .venv first, then runs this
    .venv/bin/python tools/benchmark.py --render DIR/results.json   # re-render a report

Sections (each also runs alone, see its script):
1. image transport between processes, 640x480 / 1280x720 / 1920x1080 bgr8, best effort and
   reliable, Fast DDS defaults vs the shipped profile (`bench_transport.py`);
2. inference_node per stage for every model card in models/ (`bench_inference.py`), and person
   recall/precision of every detector card on the labelled images (the int8 NanoDet against
   fp32: speed and accuracy from this same run);
3. end-to-end latency, processed rate, dropped frames and CPU per node at camera 10/30/60 Hz
   for each task, and 4. the single-process baseline on the same frames (`bench_pipeline.py`).
Targets are evaluated as ratios (`tools/benchmark_report.py`). Writes DIR/results.json,
DIR/report.md and DIR/*.png (default DIR: output/benchmark); --quick shortens every
measurement, for checking the command (run times: README, Performance).
Needs the source checkout: it reads models/ and test/data and writes output/.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tools'))

from benchmark_report import write_report  # noqa: E402
from machine import machine_record  # noqa: E402


def transport(seconds: float, rate: float, sizes: list[str]) -> list[dict]:
    import bench_transport
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
    import bench_inference
    from ros_probe import RosProbe
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
    """Person recall/precision of every detection card on the labelled images."""
    from detection_evaluation import evaluate_card
    from ros_onnx_vision.inference.model_card import load_model_card
    from ros_onnx_vision.results import Task
    rows = []
    for path in sorted((ROOT / 'models').glob('*.yaml')):
        if load_model_card(path).task is not Task.DETECTION:
            continue
        evaluation = evaluate_card(path)
        rows.append({'card': path.name, **evaluation.to_dict()})
        print(f'[benchmark] accuracy {path.name}: recall {evaluation.recall:.3f}, precision '
              f'{evaluation.precision:.3f}', flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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

    import bench_pipeline
    from ros_probe import host_only_participant
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
    timing = {'seconds': 4.0 if args.quick else 15.0, 'warmup': 2.0 if args.quick else 3.0,
              'frames': 15 if args.quick else 60, 'workdir': workdir,
              'log': lambda m: print(m.replace('[bench]', '[benchmark]'), flush=True)}
    results['pipeline'] = bench_pipeline.run(
        ['human_detection', 'digit_classification'], [10.0, 30.0, 60.0], threads=args.threads,
        **timing)
    if args.threads != 1 and (os.cpu_count() or 1) <= 2:
        # On two cores, two ONNX Runtime threads leave nothing for the camera, DDS and
        # smoothing when the camera outpaces the model; one thread is the alternative.
        single = bench_pipeline.run(['human_detection'], [30.0, 60.0], threads=1,
                                    label='human_detection, intra_op_threads 1', **timing)
        results['pipeline']['tasks'].update(single['tasks'])
    results['seconds'] = round(time.monotonic() - started, 1)
    report, targets = write_report(results, args.output)
    print(f'[benchmark] {len(targets)} targets: '
          f'{sum(t.met is True for t in targets)} met, {sum(t.met is False for t in targets)} '
          f'missed')
    for t in targets:
        print(f'[benchmark]   {"met   " if t.met else "MISSED" if t.met is False else "n/a   "} '
              f'{t.name} ({t.where}): {t.measured}; limit {t.limit}')
    print(f'[benchmark] wrote {report} (and results.json, plots) in {results["seconds"]:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())

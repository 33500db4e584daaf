#!/usr/bin/env python3
"""Soak run: the full pipeline for a long time, watching memory and end-to-end latency.

    .venv/bin/python -m tools.soak [--minutes 20] [--source test/data/vtest_000.jpg]
        [--fps 30] [--interval 5] [--warmup S] [--output output/soak] [--domain D]

Starts camera_node (an image, video or `synthetic` source at `--fps`), inference_node and
smoothing_node of the human detection graph as separate processes (`tools.demo.graph_runner`,
the same commands as the launch files), on a private ROS domain with host-only discovery. This
process subscribes `detections_smoothed` (reliable); each message's latency is its receive wall
time minus its header stamp (the camera's capture stamp, same host clock).

Every `--interval` seconds it samples the resident memory of each node process (VmRSS from
/proc/<pid>/status) and the latencies received since the last sample, and writes one CSV row.
At the end it writes a JSON summary (also printed):

- per node: RSS at start (median of the first 3 samples after the warm-up), at the end (median
  of the last 3), the maximum, and the growth in %;
- latency: p50/p95 overall after the warm-up, p50 per minute, and a linear trend (least squares
  of the per-sample p50 against time after the warm-up, in ms per minute);
- failures: a node that exited, or no smoothed result for `--stall` seconds.

The warm-up (default: the larger of 30 s and 10% of the run, at most half of it) lets Python,
ONNX Runtime and DDS allocate their steady-state buffers before the start figures are taken.
Goals: RSS growth < 5% per node after the warm-up, and no upward latency trend (the trend over
the measured span is less than max(5 ms, 10% of the p50)). Exit status: 0 when no failure
occurred (goals are reported in the summary, `goals_met`), 1 on a failure.
Needs the source checkout: the default source is in test/data, the default output in output/.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from pathlib import Path
import statistics
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

NODES = ('camera_node', 'inference_node', 'smoothing_node')
GROWTH_GOAL_PCT = 5.0


def read_rss_kb(pid: int) -> int | None:
    """VmRSS of a process in KiB (from /proc), None when it is gone."""
    try:
        with open(f'/proc/{pid}/status') as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def percentile(values: list[float], q: float) -> float | None:
    """q-th percentile (0..100) by linear interpolation, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def linear_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys against xs, None with fewer than 2 distinct xs."""
    if len(xs) < 2:
        return None
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var


def default_warmup(duration_s: float) -> float:
    return min(max(30.0, 0.1 * duration_s), 0.5 * duration_s)


def summarise(rows: list[dict[str, Any]], latencies: list[tuple[float, float]],
              warmup_s: float, duration_s: float, failures: list[str],
              extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON summary from the CSV rows and all (elapsed s, latency ms) pairs."""
    measured = [row for row in rows if row['t_s'] >= warmup_s]
    nodes: dict[str, Any] = {}
    growth_ok = True
    for name in NODES:
        series = [row[f'{name}_rss_kb'] for row in measured if row[f'{name}_rss_kb']]
        if not series:
            nodes[name] = {'rss_start_kb': None, 'rss_end_kb': None, 'growth_pct': None}
            growth_ok = False
            continue
        start = statistics.median(series[:3])
        end = statistics.median(series[-3:])
        growth = 100.0 * (end - start) / start
        growth_ok = growth_ok and growth < GROWTH_GOAL_PCT
        nodes[name] = {'rss_start_kb': start, 'rss_end_kb': end, 'rss_max_kb': max(series),
                       'growth_pct': round(growth, 2)}
    after = [(t, ms) for t, ms in latencies if t >= warmup_s]
    values = [ms for _, ms in after]
    per_minute: list[dict[str, Any]] = []
    minutes = max(1, math.ceil(duration_s / 60.0 - 0.01))  # the run overshoots by a few ms
    for minute in range(minutes):
        last = minute == minutes - 1
        in_minute = [ms for t, ms in after
                     if minute * 60 <= t and (last or t < (minute + 1) * 60)]
        if in_minute:
            per_minute.append({'minute': minute + 1, 'count': len(in_minute),
                               'p50_ms': round(percentile(in_minute, 50) or 0.0, 2)})
    sample_t = [row['t_s'] for row in measured if row['latency_p50_ms'] is not None]
    sample_p50 = [row['latency_p50_ms'] for row in measured
                  if row['latency_p50_ms'] is not None]
    slope_s = linear_slope(sample_t, sample_p50)
    trend = None if slope_s is None else slope_s * 60.0
    p50 = percentile(values, 50)
    span_min = (max(sample_t) - min(sample_t)) / 60.0 if sample_t else 0.0
    trend_ok = trend is not None and p50 is not None and \
        trend * span_min < max(5.0, 0.1 * p50)
    return {
        **extra,
        'duration_s': round(duration_s, 1),
        'warmup_s': warmup_s,
        'samples': len(rows),
        'nodes': nodes,
        'results_received': len(latencies),
        'results_after_warmup': len(after),
        'result_rate_hz': round(len(after) / max(duration_s - warmup_s, 1e-9), 2),
        'latency': {
            'p50_ms': None if p50 is None else round(p50, 2),
            'p95_ms': None if not values else round(percentile(values, 95) or 0.0, 2),
            'max_ms': None if not values else round(max(values), 2),
            'per_minute_p50': per_minute,
            'trend_ms_per_min': None if trend is None else round(trend, 3),
        },
        'failures': failures,
        'goals': {f'rss_growth_below_{GROWTH_GOAL_PCT:g}pct': growth_ok,
                  'no_upward_latency_trend': trend_ok},
        'goals_met': growth_ok and trend_ok and not failures,
    }


def run(args: argparse.Namespace) -> int:
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Detection2DArray

    from ros_onnx_vision.ros.graph import pipeline
    from tools.demo.graph_runner import GraphProcesses
    from ros_onnx_vision.ros.stamps import stamp_to_seconds
    from tools.demo.graph_runner import node_environment
    from tools.ros_probe import host_only_participant, RosProbe

    duration = args.minutes * 60.0
    warmup = default_warmup(duration) if args.warmup is None else args.warmup
    domain = args.domain if args.domain is not None else 1 + (os.getpid() * 7) % 100
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    env = node_environment(domain)
    host_only_participant()

    probe = RosProbe(domain, f'soak_probe_{os.getpid()}')
    origin = [0.0]  # monotonic time of the first frame's arrival window (set below)
    pending: list[float] = []
    latencies: list[tuple[float, float]] = []

    def on_result(msg: Detection2DArray) -> None:
        now_wall, now = time.time(), time.monotonic()
        ms = (now_wall - stamp_to_seconds(msg.header.stamp)) * 1e3
        pending.append(ms)
        latencies.append((now - origin[0], ms))

    probe.node.create_subscription(Detection2DArray, 'detections_smoothed', on_result,
                             QoSProfile(depth=50))
    graph = pipeline('human_detection')
    parameters = {'camera_node': {'source': args.source, 'fps': args.fps}}
    log_dir = output / 'logs'
    nodes = GraphProcesses(graph, env, parameters=parameters, log_dir=log_dir)
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    fields = ['t_s'] + [f'{n}_rss_kb' for n in NODES] + [
        'results', 'latency_p50_ms', 'latency_p95_ms', 'latency_max_ms']
    csv_path = output / 'soak.csv'
    print(f'soak: {args.minutes:g} min, warm-up {warmup:.0f} s, source {args.source} at '
          f'{args.fps:g} Hz, domain {domain}; logs in {log_dir}', flush=True)
    with open(csv_path, 'w', newline='') as csv_file, nodes:
        writer = csv.DictWriter(csv_file, fieldnames=fields)
        writer.writeheader()
        origin[0] = time.monotonic()
        last_result, seen = origin[0], 0
        next_sample = origin[0] + args.interval
        end = origin[0] + duration
        while time.monotonic() < end:
            probe.spin_once()
            now = time.monotonic()
            if len(latencies) > seen:
                last_result, seen = now, len(latencies)
            exited = nodes.exited()
            if exited:
                failures.append(f'node(s) exited: {exited}')
                break
            if now - last_result > args.stall:
                failures.append(f'no smoothed result for {args.stall:g} s at '
                                f't={now - origin[0]:.0f} s')
                break
            if now < next_sample:
                continue
            next_sample += args.interval
            row: dict[str, Any] = {'t_s': round(now - origin[0], 2)}
            for name in NODES:
                row[f'{name}_rss_kb'] = read_rss_kb(nodes.processes[name].pid)
            row['results'] = len(pending)
            row['latency_p50_ms'] = None if not pending else round(
                percentile(pending, 50) or 0.0, 2)
            row['latency_p95_ms'] = None if not pending else round(
                percentile(pending, 95) or 0.0, 2)
            row['latency_max_ms'] = None if not pending else round(max(pending), 2)
            pending.clear()
            rows.append(row)
            writer.writerow(row)
            csv_file.flush()
            if args.verbose:
                print(' '.join(f'{k}={v}' for k, v in row.items()), flush=True)
        elapsed = time.monotonic() - origin[0]
    probe.close()
    summary = summarise(rows, latencies, warmup, elapsed, failures, {
        'source': args.source, 'fps': args.fps, 'minutes': args.minutes,
        'interval_s': args.interval, 'csv': str(csv_path)})
    (output / 'soak_summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    print(json.dumps(summary, indent=2), flush=True)
    if failures:
        for name in NODES:
            print(f'--- {name} log (tail)\n{nodes.log_text(name)[-2000:]}', file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.soak',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--minutes', type=float, default=20.0)
    parser.add_argument('--source', default=str(ROOT / 'test' / 'data' / 'vtest_000.jpg'),
                        help='camera_node source: image, video, or synthetic[:WxH]')
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--interval', type=float, default=5.0, help='seconds between samples')
    parser.add_argument('--warmup', type=float, default=None,
                        help='seconds before the start figures (default max(30 s, 10%%))')
    parser.add_argument('--stall', type=float, default=20.0,
                        help='a failure when no smoothed result arrives for this long')
    parser.add_argument('--output', default=str(ROOT / 'output' / 'soak'))
    parser.add_argument('--domain', type=int, default=None, help='ROS domain (default: own)')
    parser.add_argument('--verbose', action='store_true', help='print every sample')
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(main())

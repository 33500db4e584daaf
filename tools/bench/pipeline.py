#!/usr/bin/env python3
"""End-to-end latency of the three-node pipeline, against a single-process baseline, one run.

    .venv/bin/python -m tools.bench.pipeline [--tasks human_detection,digit_classification]
        [--rates 10,30,60] [--seconds 15] [--json out.json]

For each task:
- **model alone**: the card's session run back to back on the task's frames (the rate the
  model sustains), and the engine's whole per-frame work (pre-processing + run + decoding);
- **baseline**: one process in the style of the original exercise: OpenCV reads a frame of
  the same video, the same engine runs it, the result is drawn; per-frame time;
- **pipeline**: camera_node plays the same video at each camera rate, inference_node and
  smoothing_node run as in the launch files, and a probe node in this process records, for
  every smoothed result, receive time - camera stamp (same host clock). Also the processed
  rate, the camera frames the newest-frame policy skipped, CPU per node from /proc, and where
  the mean time goes (inference_node's stage means from /diagnostics over the same window).

The model alone and the baseline are measured again just before and after each pipeline window
(camera stopped, nodes idle) and stored with the row as its `reference`: this machine's speed
drifts within minutes. The reference baseline reads frames paced at the row's
camera rate when the model keeps up with it, as the original exercise read a webcam.
`--set NAME:=VALUE` passes inference_node parameters, e.g. `--set intra_op_spinning:=true`.

Input: vtest.avi (the demo's pedestrian video; the four vtest stills where it cannot be
fetched) for human detection, the demo's digits-on-paper video for digits.
Needs the source checkout: the inputs come from tools/demo/inputs.py and test/data.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Callable

import cv2
import numpy as np
import yaml

from ros_onnx_vision.ros.graph import pipeline
from tools.demo import inputs as demo_inputs
from tools.ros_probe import host_only_participant, RosProbe

ROOT = Path(__file__).resolve().parents[2]

CARD_OF_TASK = {'human_detection': 'centernet_mobilenetv3_512.yaml',
                'digit_classification': 'mnist_digits_cnn.yaml'}
CLK_TCK = os.sysconf('SC_CLK_TCK')


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max (nearest rank) and mean of `values`, rounded to 0.01."""
    if not values:
        return {'p50': None, 'p90': None, 'p99': None, 'max': None, 'mean': None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)
    return {'p50': rank(0.5), 'p90': rank(0.9), 'p99': rank(0.99),
            'max': round(ordered[-1], 2), 'mean': round(statistics.fmean(ordered), 2)}


def task_video(task: str, workdir: Path) -> Path:
    """The video both the baseline and camera_node play for `task`."""
    if task == 'human_detection':
        video = demo_inputs.pedestrian_video(log=lambda m: print(f'[bench] {m}', flush=True))
        if video is None:
            print('[bench] vtest.avi could not be fetched: using the four vtest stills',
                  flush=True)
            video = demo_inputs.stills_video(workdir / 'stills.avi')
        return video
    workdir.mkdir(parents=True, exist_ok=True)
    video = workdir / 'digits.avi'
    if not video.exists():
        demo_inputs.digits_video(video)
    return video


def read_frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise RuntimeError(f'could not read any frame from {video}')
    return frames


class Reference:
    """The model alone and the single-process baseline, measurable again and again.

    One engine, the task's frames and their pre-made tensors are kept, so a short measurement
    can be taken between pipeline windows (the camera stopped, the downstream nodes idle):
    each pipeline row is then compared with references taken just before and after it, which
    keeps the ratios honest on a machine whose speed drifts.
    """

    def __init__(self, card: str, video: Path, threads: int) -> None:
        from ros_onnx_vision.inference.engine import InferenceEngine
        from ros_onnx_vision.inference.session import threads_beside_other_work
        self.card, self.video = card, video
        # The node's thread count: 0 means its automatic choice, measured alike here.
        self.engine = InferenceEngine.from_card_file(
            ROOT / 'models' / card, intra_op_threads=threads or threads_beside_other_work())
        self.images = read_frames(video, 200)[::4]
        # What the engine would feed (extra inputs included), made once, outside the timing;
        # a digit frame without a digit has nothing to run.
        self.prepared = [frame for frame in (self.engine.prepare(image) for image in self.images)
                         if frame.tensor is not None]
        self.capture = cv2.VideoCapture(str(video))

    def model_alone(self, frames: int) -> dict:
        """Session run alone, and the engine's whole per-frame work, back to back."""
        engine = self.engine
        run_ms, infer_ms = [], []
        for i in range(frames + 3):
            t0 = time.perf_counter()
            engine.run(self.prepared[i % len(self.prepared)])
            t1 = time.perf_counter()
            engine.infer(self.images[i % len(self.images)])
            t2 = time.perf_counter()
            if i >= 3:  # warm-up
                run_ms.append((t1 - t0) * 1e3)
                infer_ms.append((t2 - t1) * 1e3)
        run, infer = statistics.fmean(run_ms), statistics.fmean(infer_ms)
        return {'card': self.card, 'frames': frames, 'run_ms': percentiles(run_ms),
                'engine_ms': percentiles(infer_ms), 'run_rate_hz': round(1e3 / run, 2),
                'engine_rate_hz': round(1e3 / infer, 2)}

    def baseline(self, frames: int, rate: float = 0.0) -> dict:
        """The single-process loop: OpenCV reads a frame, ONNX Runtime runs, the result is
        drawn. The same engine (pre-processing, session, decoding) as inference_node, so the
        difference to the pipeline is what ROS, DDS and the process split cost.

        `rate` > 0 paces the reads like a camera delivering frames at that rate (the original
        exercise read a webcam): a model that waits between frames runs each one slower
        than back to back (colder caches, sleeping threads), in the pipeline and here alike.
        Per-frame time excludes the wait.
        """
        from ros_onnx_vision.inference.annotation import draw_result
        stages: dict[str, list[float]] = {'read': [], 'infer': [], 'draw': [], 'total': []}
        start = time.perf_counter()
        for i in range(frames + 3):
            if rate > 0:
                time.sleep(max(0.0, start + i / rate - time.perf_counter()))
            t0 = time.perf_counter()
            ok, frame = self.capture.read()
            if not ok:  # loop the video like camera_node does
                self.capture.release()
                self.capture = cv2.VideoCapture(str(self.video))
                ok, frame = self.capture.read()
            t1 = time.perf_counter()
            result = self.engine.infer(frame)
            t2 = time.perf_counter()
            draw_result(frame, result, in_place=True)
            t3 = time.perf_counter()
            if i >= 3:
                for key, value in (('read', t1 - t0), ('infer', t2 - t1), ('draw', t3 - t2),
                                   ('total', t3 - t0)):
                    stages[key].append(value * 1e3)
        return {'card': self.card, 'frames': frames,
                'mean_ms': {k: round(statistics.fmean(v), 2) for k, v in stages.items()},
                'total_ms': percentiles(stages['total']),
                'rate_hz': round(1e3 / statistics.fmean(stages['total']), 2)}

    def snapshot(self, frames: int, rate: float) -> dict:
        """A short measurement of both, for the row around it: the model back to back, the
        baseline paced at the row's camera rate where the model keeps up with it."""
        alone = self.model_alone(frames)
        paced = rate if rate < 1e3 / alone['engine_ms']['mean'] else 0.0
        base = self.baseline(frames, paced)
        return {'run_ms': alone['run_ms']['mean'], 'engine_ms': alone['engine_ms']['mean'],
                'baseline_ms': base['mean_ms']['total'], 'baseline_paced_hz': paced}


def _around(before: dict, after: dict) -> dict:
    """The mean of the reference snapshots taken before and after a pipeline window."""
    out = {key: round((before[key] + after[key]) / 2, 2) for key in before
           if key != 'baseline_paced_hz'}
    out['baseline_paced_hz'] = before['baseline_paced_hz']
    out.update(run_rate_hz=round(1e3 / out['run_ms'], 2),
               engine_rate_hz=round(1e3 / out['engine_ms'], 2),
               before=before, after=after)
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None once it has exited)."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


class Probe(RosProbe):
    """An rclpy node in this process: smoothed results, raw results, camera frame counter."""

    def __init__(self, domain: int, task: str) -> None:
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import UInt64
        from ros_onnx_vision.ros.messages import RESULT_MESSAGES
        super().__init__(domain, 'bench_probe')
        self.task = task
        self.smoothed: list[tuple[float, float]] = []  # (stamp, received)
        self.raw: list[tuple[float, float]] = []
        self.frame_counts: list[tuple[float, int]] = []  # (received, count)
        self.inference_status: dict[str, str] = {}  # latest diagnostics values
        # (receive time, values) of every inference_node status: the counters' history.
        self.inference_history: list[tuple[float, dict[str, str]]] = []
        graph = pipeline(self.task)
        self.graph = graph
        kind = RESULT_MESSAGES[graph.inference_task]
        reliable = QoSProfile(depth=100)
        self.node.create_subscription(kind, graph.smoothed_topic,
                                      lambda m: self._record(self.smoothed, m), reliable)
        self.node.create_subscription(kind, graph.result_topic,
                                      lambda m: self._record(self.raw, m), reliable)
        self.node.create_subscription(
            UInt64, 'frame_count',
            lambda m: self.frame_counts.append((time.time(), int(m.data))),
            qos_profile_sensor_data)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith(': inference'):
                self.inference_status = {kv.key: kv.value for kv in status.values}
                self.inference_history.append((time.time(), self.inference_status))

    @staticmethod
    def _record(into: list[tuple[float, float]], msg) -> None:
        received = time.time()
        into.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, received))

    def clear(self) -> None:
        self.smoothed.clear()
        self.raw.clear()
        self.frame_counts.clear()
        self.inference_history = self.inference_history[-1:]  # the status just before


def pin(pid: int, cpus: set[int]) -> None:
    """Restrict every thread of process `pid` to `cpus` (threads it starts later inherit it)."""
    for task in Path(f'/proc/{pid}/task').iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:
            pass  # a thread that ended meanwhile


def pipeline_run(task: str, video: Path, rates: list[float], seconds: float, warmup: float,
                 domain: int, log_dir: Path, inference_parameters: dict | None = None,
                 reference: Reference | None = None, reference_frames: int = 20,
                 pinning: dict[str, set[int]] | None = None) -> list[dict]:
    """The three nodes at each camera rate; downstream nodes stay up, the camera restarts.

    `pinning`: node -> CPUs it may run on (e.g. inference_node on one core, the others on the
    rest); None leaves scheduling to the kernel."""
    from tools.demo.graph_runner import GraphProcesses
    from tools.demo.graph_runner import node_environment
    env = node_environment(domain)
    graph = pipeline(task)
    probe = Probe(domain, task)
    downstream = GraphProcesses(graph.subset('inference_node', 'smoothing_node'), env,
                                parameters={'inference_node': inference_parameters or {}},
                                log_dir=log_dir).start()
    results = []
    try:
        deadline = time.monotonic() + 60
        while probe.node.count_publishers(graph.smoothed_topic) == 0 or \
                probe.node.count_publishers(graph.result_topic) == 0:
            if downstream.exited() or time.monotonic() > deadline:
                raise RuntimeError(f'{task}: downstream nodes did not come up '
                                   f'(exited: {downstream.exited()}; logs in {log_dir})')
            probe.spin_for(0.2)
        for rate in rates:
            # The camera waits for inference_node's subscription: frames published before
            # discovery matched the two would be counted as published and never arrive.
            parameters = {'camera_node': {'source': str(video), 'fps': float(rate),
                                          'loop': True, 'wait_for_subscribers': 1}}
            before = reference.snapshot(reference_frames, rate) if reference else None
            camera = GraphProcesses(graph.subset('camera_node'), env, parameters=parameters,
                                    log_dir=log_dir / f'camera_{rate:g}hz').start()
            try:
                # The window opens `warmup` seconds after the first result of this camera.
                probe.clear()
                if not probe.spin_until(lambda: bool(probe.raw) or bool(camera.exited()), 60):
                    raise RuntimeError(f'{task} at {rate:g} Hz: no result within 60 s of the '
                                       f'camera starting; logs in {log_dir}')
                probe.spin_for(warmup)
                if camera.exited() or downstream.exited():
                    raise RuntimeError(f'{task} at {rate:g} Hz: a node exited '
                                       f'({camera.exited() or downstream.exited()}); '
                                       f'logs in {log_dir}')
                pids = {name: p.pid for name, p in
                        {**camera.processes, **downstream.processes}.items()}
                for name, cpus in (pinning or {}).items():
                    pin(pids[name], cpus)
                cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
                probe.clear()
                status0 = dict(probe.inference_status)
                t0 = time.time()
                probe.spin_for(seconds)
                wall = time.time() - t0
                cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
                status1 = dict(probe.inference_status)
            finally:
                camera.stop()
            cpu = {name: round(100 * (cpu1[name] - cpu0[name]) / wall, 1)
                   for name in pids if cpu0[name] is not None and cpu1[name] is not None}
            row = summarise(task, rate, probe, wall, cpu, t0)
            row['accounting'] = accounting(probe, t0, t0 + wall)
            row['stalls'] = stalls(probe, t0, t0 + wall, row['latency_ms']['p50'])
            row['breakdown_ms'] = breakdown(status0, status1, row)
            probe.spin_for(1.5)  # smoothing releases on its timeout before the next rate
            if reference is not None and before is not None:
                after = reference.snapshot(reference_frames, rate)  # camera stopped: idle
                row['reference'] = _around(before, after)
            results.append(row)
    finally:
        downstream.stop()
        probe.close()
    return results


def frame_count_rate(counts: list[tuple[float, int]]) -> float:
    """The camera's rate from its own frame counter, (receive time, count) pairs: best
    effort, so a lost count message does not matter, only the first and last received."""
    counts = sorted(counts)
    if len(counts) > 1 and counts[-1][0] > counts[0][0]:
        return (counts[-1][1] - counts[0][1]) / (counts[-1][0] - counts[0][0])
    return 0.0


def summarise(task: str, rate: float, probe: Probe, wall: float, cpu: dict[str, float],
              t0: float) -> dict:
    latencies = [(received - stamp) * 1e3 for stamp, received in probe.smoothed
                 if stamp >= t0 - 1.0]
    raw_latencies = [(received - stamp) * 1e3 for stamp, received in probe.raw]
    camera_hz = frame_count_rate(probe.frame_counts)
    published = round(camera_hz * wall)
    processed = len(probe.raw)
    return {'task': task, 'camera_hz': rate, 'seconds': round(wall, 2),
            'camera_frames': published, 'camera_rate_hz': round(camera_hz, 2),
            'processed': processed, 'processed_rate_hz': round(processed / wall, 2),
            'smoothed': len(latencies),
            'dropped': max(0, published - processed),
            'dropped_pct': round(100 * max(0, published - processed) / max(published, 1), 1),
            'latency_ms': percentiles(latencies), 'raw_latency_ms': percentiles(raw_latencies),
            'cpu_pct': cpu}


COUNTERS = {'received': 'frames received', 'processed': 'frames processed',
            'skipped': 'frames skipped (newest-frame policy)', 'errors': 'errors'}
# Counts from different sources agree when they differ by at most this fraction, plus two frames
# (a frame in flight at each edge of the window).
ACCOUNTING_TOLERANCE = 0.05


def accounting(probe: Probe, t0: float, t1: float) -> dict:
    """The window's frames as each source counted them, so that the figures reconcile.

    camera: frame_count's slope (camera_node's own index of published frames); inference:
    inference_node's counters from its diagnostics, the two statuses that bracket the window
    (published once a second, so their span is the window give or take a second, and their
    counts are scaled to the window); probe: the raw results this process received. `checks`
    name each disagreement beyond the edges; an empty list means the counts reconcile.
    """
    wall = t1 - t0
    camera_hz = frame_count_rate([(t, c) for t, c in probe.frame_counts if t0 <= t <= t1])
    out: dict = {'window_s': round(wall, 2), 'camera_published': round(camera_hz * wall),
                 'probe_results': sum(t0 <= received <= t1 for _, received in probe.raw)}
    history = probe.inference_history
    start = [h for h in history if h[0] <= t0 + 0.5] or history[:1]
    end = [h for h in history if h[0] <= t1 + 0.5]
    checks: list[str] = []
    if start and end and end[-1][0] - start[-1][0] > 0.5 * wall:
        (ta, a), (tb, b) = start[-1], end[-1]
        try:
            scale = wall / (tb - ta)
            for key, name in COUNTERS.items():
                out[f'inference_{key}'] = round((int(b[name]) - int(a[name])) * scale)
        except (KeyError, ValueError):
            checks.append('inference_node diagnostics lack the frame counters')
    else:
        checks.append('no inference_node diagnostics bracket the window')

    def differ(x: int, y: int) -> bool:
        return abs(x - y) > 2 + ACCOUNTING_TOLERANCE * max(x, y)

    if 'inference_processed' in out:
        if differ(out['probe_results'], out['inference_processed']):
            checks.append(f'the probe saw {out["probe_results"]} results, inference_node '
                          f'processed {out["inference_processed"]}')
        handled = out['inference_processed'] + out['inference_skipped'] + out['inference_errors']
        if differ(out['inference_received'], handled):
            checks.append(f'inference_node received {out["inference_received"]} frames, '
                          f'processed + skipped + errors = {handled}')
        if out['inference_received'] > out['camera_published'] + 2 + \
                ACCOUNTING_TOLERANCE * out['camera_published']:
            checks.append(f'inference_node received {out["inference_received"]} frames, more '
                          f'than the {out["camera_published"]} the camera published')
        out['transport_lost'] = max(0, out['camera_published'] - out['inference_received'])
    out['checks'] = checks
    return out


STALL_FACTOR = 3.0  # a result later than this many times the window's p50 is a stall
STALLS_LISTED = 10


def stalls(probe: Probe, t0: float, t1: float, p50: float | None) -> dict:
    """Results later than STALL_FACTOR x p50, each with the stage it happened in.

    Per frame, the probe has the raw result (inference_node's output) and the smoothed one: a
    stall whose raw result was already late happened before smoothing; inside inference_node
    the stage is the one whose mean, over the diagnostics second that holds the frame, grew
    most against the window's mean (the node publishes cumulative means once a second)."""
    if p50 is None:
        return {'count': 0, 'threshold_ms': None, 'listed': []}
    threshold = STALL_FACTOR * p50
    raw = {stamp: received for stamp, received in probe.raw}
    history = probe.inference_history

    def stage_means(a: dict[str, str], b: dict[str, str]) -> dict[str, float] | None:
        try:
            n0, n1 = int(a['frames processed']), int(b['frames processed'])
            if n1 <= n0:
                return None
            return {short: (float(b[f'mean {long} time (ms)']) * n1 -
                            float(a[f'mean {long} time (ms)']) * n0) / (n1 - n0)
                    for long, short in STAGE_KEYS.items()}
        except (KeyError, ValueError):
            return None

    window = stage_means(history[0][1], history[-1][1]) if len(history) > 1 else None
    found = []
    for stamp, received in sorted(probe.smoothed):
        latency = (received - stamp) * 1e3
        if not t0 <= received <= t1 or latency <= threshold:
            continue
        entry: dict = {'stamp': round(stamp, 3), 'latency_ms': round(latency, 1)}
        if stamp in raw:
            raw_ms = (raw[stamp] - stamp) * 1e3
            entry['raw_latency_ms'] = round(raw_ms, 1)
            if raw_ms <= threshold / 2 and latency - raw_ms > raw_ms:
                entry['stage'] = 'smoothing_node (or the hop to it)'
        if 'stage' not in entry:
            around = [(t, h) for t, h in history if t >= received]
            before = [(t, h) for t, h in history if t < received]
            second = stage_means(before[-1][1], around[0][1]) if around and before else None
            if second and window:
                growth = {k: second[k] - window[k] for k in second}
                stage = max(growth, key=growth.get)
                entry['stage'] = (f'inference_node {stage} (+{growth[stage]:.1f} ms mean '
                                  f'in that second)') if growth[stage] > 1.0 else \
                    'before inference_node (camera, DDS or the wait for the worker)'
            else:
                entry['stage'] = 'unattributed (no diagnostics around it)'
        found.append(entry)
    return {'count': len(found), 'threshold_ms': round(threshold, 1),
            'listed': sorted(found, key=lambda e: -e['latency_ms'])[:STALLS_LISTED]}


STAGE_KEYS = {'convert': 'convert', 'pre-processing': 'pre', 'inference (session run)': 'run',
              'decoding': 'decode', 'message': 'message', 'publish': 'publish'}


def breakdown(before: dict[str, str], after: dict[str, str], row: dict) -> dict | None:
    """Where the mean end-to-end time goes, from inference_node's diagnostics (cumulative
    means and counts, taken at the start and end of the window) and the probe's means.

    waiting = camera stamp to the worker taking the frame: publish, transport, the newest-
    frame wait; inference_node stages; to_probe = result published to the probe receiving it;
    smoothing = raw result received to smoothed result received by the probe.
    """
    try:
        n0 = int(before.get('frames processed', 0))
        n1 = int(after['frames processed'])

        def window_mean(key: str) -> float:
            m0 = float(before.get(key, 0.0)) if n0 else 0.0
            return (float(after[key]) * n1 - m0 * n0) / (n1 - n0)
        stages = {short: window_mean(f'mean {long} time (ms)') for long, short in
                  STAGE_KEYS.items()}
        at_publish = window_mean('mean end-to-end latency (ms)')
    except (KeyError, ValueError, ZeroDivisionError):
        return None  # no diagnostics in the window (e.g. a very short run)
    raw, smoothed = row['raw_latency_ms']['mean'], row['latency_ms']['mean']
    out = {'waiting': at_publish - sum(stages.values()), **stages}
    if raw is not None and smoothed is not None:
        out.update(to_probe=raw - at_publish, smoothing=smoothed - raw, total=smoothed)
    return {k: round(v, 2) for k, v in out.items()}


def run(tasks: list[str], rates: list[float], seconds: float, warmup: float, frames: int,
        threads: int, workdir: Path, log: Callable[[str], None] = print,
        inference_parameters: dict | None = None, domain: int | None = None,
        label: str = '', card: str | None = None,
        pinning: dict[str, set[int]] | None = None) -> dict:
    """Everything above for every task; returns the JSON-ready results, keyed by task (or
    `label`, for a single task run in a second configuration: another `card`, inference_node
    parameters or `pinning`)."""
    out: dict = {'tasks': {}}
    domain = 150 + os.getpid() % 50 if domain is None else domain
    for task in tasks:
        task_card = card or CARD_OF_TASK[task]
        video = task_video(task, workdir)
        log(f'[bench] {task}: model alone and baseline ({task_card}, {video.name})')
        reference = Reference(task_card, video, threads)
        alone, base = reference.model_alone(frames), reference.baseline(frames)
        log(f'[bench]   session run {alone["run_ms"]["mean"]} ms ({alone["run_rate_hz"]} Hz), '
            f'baseline per frame {base["mean_ms"]["total"]} ms')
        runs = pipeline_run(task, video, rates, seconds, warmup, domain,
                            workdir / 'logs' / task,
                            {'intra_op_threads': threads, 'model': task_card,
                             **(inference_parameters or {})},
                            reference=reference, reference_frames=max(5, frames // 3),
                            pinning=pinning)
        for r in runs:
            lat = r['latency_ms']
            ref = r.get('reference', {})
            acc = r['accounting']
            log(f'[bench]   camera {r["camera_hz"]:g} Hz: processed {r["processed_rate_hz"]} Hz,'
                f' dropped {r["dropped_pct"]}%, latency p50 {lat["p50"]} p90 {lat["p90"]} '
                f'p99 {lat["p99"]} ms, CPU {r["cpu_pct"]}; around it: session run '
                f'{ref.get("run_ms")} ms, baseline {ref.get("baseline_ms")} ms/frame')
            log(f'[bench]     frames: camera {acc["camera_published"]}, inference_node received '
                f'{acc.get("inference_received")} processed {acc.get("inference_processed")} '
                f'skipped {acc.get("inference_skipped")}, probe {acc["probe_results"]}'
                + ''.join(f'\n[bench]     DISAGREE: {c}' for c in acc['checks']))
        out['tasks'][label or task] = {'card': task_card, 'intra_op_threads': threads,
                                       'inference_parameters': inference_parameters or {},
                                       'pinning': {k: sorted(v) for k, v in
                                                   (pinning or {}).items()},
                                       'video': video.name, 'model_alone': alone,
                                       'baseline': base, 'pipeline': runs}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.bench.pipeline',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', default='human_detection,digit_classification')
    parser.add_argument('--rates', default='10,30,60')
    parser.add_argument('--seconds', type=float, default=15.0, help='measured per rate')
    parser.add_argument('--warmup', type=float, default=3.0)
    parser.add_argument('--frames', type=int, default=60, help='model-alone/baseline frames')
    parser.add_argument('--threads', type=int, default=0, help='intra-op threads (0 = ORT)')
    parser.add_argument('--json', type=Path)
    parser.add_argument('--set', action='append', default=[], metavar='NAME:=VALUE',
                        help='inference_node parameter for the pipeline runs (repeatable)')
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        name, _, value = item.partition(':=')
        overrides[name] = yaml.safe_load(value)
    host_only_participant()  # the probe, like the nodes
    with tempfile.TemporaryDirectory(prefix='bench_pipeline_') as tmp:
        results = run(args.tasks.split(','), [float(r) for r in args.rates.split(',')],
                      args.seconds, args.warmup, args.frames, args.threads, Path(tmp),
                      inference_parameters=overrides)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""camera_node benchmark: achieved publish rate, drops and jitter, and per-frame publish cost.

    .venv/bin/python -m tools.bench.camera [--seconds 30] [--rates 30,60] [--json out.json]

Part 1 (rate) starts the real `camera_node` executable as its own process on a private ROS
domain, once per target rate with a synthetic 640x480 source and once with a 640x480 30 fps
MJPG video file (fps -1: the file's own rate), and subscribes from this process with
sensor-data QoS. Over `--seconds` (after a short warm-up) it measures the achieved rate from
the header stamps and from the receive times, the publish count from the `frame_count` topic
against the images received (drops), and the inter-frame intervals (p50/p99/max, and jitter:
|interval - period|). Both sources draw a frame counter into the image (the synthetic pattern's
binary strip), so a missing image (transport drop) is told apart from a stamp gap with
consecutive frames (a pacing slot the node skipped).

Part 2 (cost) measures in this process, without a subprocess, what the node's `_publish` does
with a captured frame: `convert_frame`, `numpy_to_image` and `publisher.publish` timed
separately (plus the CameraInfo and frame_count publishes), for bgr8 and mono8 at 640x480 and
1280x720, with one matched subscriber so that publish really delivers.

This is a benchmark that prints figures, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
import math
import os
from pathlib import Path
import re
import statistics
import sys
import tempfile
import time
from typing import Any


import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tools.demo.graph_runner import node_environment  # noqa: E402
from tools.ros_probe import host_only_participant, RosProbe  # noqa: E402

# This process is a DDS participant too: same profile and discovery rules as the node it
# talks to (as test/conftest.py does). Must happen before rclpy creates anything.
host_only_participant()

from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header, UInt64  # noqa: E402

from ros_onnx_vision.camera.calibration import default_calibration  # noqa: E402
from ros_onnx_vision.ros.camera_node import camera_info_msg  # noqa: E402
from ros_onnx_vision.camera.frame_sources import convert_frame  # noqa: E402
from ros_onnx_vision.camera.sources.synthetic import (decode_synthetic_counter,  # noqa: E402
                                                      SyntheticSource)
from tools.demo.graph_runner import start_node, stop_processes  # noqa: E402
from ros_onnx_vision.ros.image_conversion import (cv_bridge_in_use, image_to_numpy,  # noqa: E402
                                                  numpy_to_image)
from ros_onnx_vision.ros.qos import qos  # noqa: E402
from ros_onnx_vision.ros.stamps import stamp_to_seconds  # noqa: E402

WIDTH, HEIGHT = 640, 480
VIDEO_FPS = 30.0
VIDEO_FRAMES = 300  # 10 s at 30 fps
COUNTER_WRAP = 1 << SyntheticSource.BITS
GOAL_PCT = 2.0  # the goal: achieved rate within 2 % of the target
STATS_LINE = re.compile(r'(\d+) frames, ([\d.]+) Hz, (\d+) slots skipped, publish cost '
                        r'([\d.]+) ms/frame')


# --------------------------------------------------------------------------- helpers

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def error_pct(achieved: float, target: float) -> float:
    return 100.0 * (achieved - target) / target


def frame_index(image: Any) -> int:
    """The counter drawn into a synthetic frame (and into the benchmark's video).

    Only the top rows are read: the strip is at least 4 rows high, and decoding a 4-row crop
    reads the same cells (the geometry along x depends on the width only), at a fraction of
    the cost of the full frame.
    """
    return decode_synthetic_counter(image[:4])


def write_video(path: Path, frames: int = VIDEO_FRAMES) -> Path:
    """A 640x480 30 fps MJPG .avi of synthetic frames (counter strip included)."""
    pattern = SyntheticSource(WIDTH, HEIGHT, VIDEO_FPS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*'MJPG'), VIDEO_FPS,
                             (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write an MJPG video to {path}')
    for index in range(frames):
        writer.write(pattern.render(index))
    writer.release()
    return path


# --------------------------------------------------------------------------- part 1: rate

def node_stats(log: str) -> dict[str, float] | None:
    """The camera node's last periodic stats line (published, Hz, skipped, cost)."""
    matches = STATS_LINE.findall(log)
    if not matches:
        return None
    published, hz, skipped, cost = matches[-1]
    return {'published': int(published), 'meter_hz': float(hz), 'slots_skipped': int(skipped),
            'publish_cost_ms': float(cost)}


def measure_rate(probe: RosProbe, env: dict[str, str], label: str, parameters: dict[str, Any],
                 target: float, seconds: float, warmup: float, wrap: int,
                 log_file: Path) -> dict[str, Any]:
    """Run camera_node with `parameters`; statistics over `seconds` after `warmup`."""
    images: list[tuple[float, float, int]] = []  # (receive time, stamp, drawn counter)
    counts: list[tuple[float, int]] = []  # (receive time, frame_count value)

    def on_image(msg: Image) -> None:
        received = time.monotonic()
        images.append((received, stamp_to_seconds(msg.header.stamp),
                       frame_index(image_to_numpy(msg))))

    def on_count(msg: UInt64) -> None:
        counts.append((time.monotonic(), int(msg.data)))

    node = probe.node
    subscriptions = [
        node.create_subscription(Image, 'image_raw', on_image, qos_profile_sensor_data),
        node.create_subscription(UInt64, 'frame_count', on_count, qos_profile_sensor_data),
    ]
    process = start_node('camera_node', env, parameters=parameters, log_file=log_file)
    try:
        if not probe.spin_until(lambda: bool(images), 30.0):
            raise RuntimeError(f'{label}: no image within 30 s; camera_node log:\n'
                               f'{log_file.read_text(errors="replace")}')
        start = time.monotonic() + warmup
        end = start + seconds
        probe.spin_for(end - time.monotonic())
        exit_code = process.poll()
    finally:
        stop_processes([process])
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
    if exit_code is not None:
        raise RuntimeError(f'{label}: camera_node exited early ({exit_code}); log:\n'
                           f'{log_file.read_text(errors="replace")}')

    window = [row for row in images if start <= row[0] <= end]
    window_counts = [row for row in counts if start <= row[0] <= end]
    period = 1.0 / target
    recv = [row[0] for row in window]
    stamps = [row[1] for row in window]
    index = [row[2] for row in window]
    steps = [(b - a) % wrap for a, b in zip(index, index[1:])]
    # Consecutive frames (drawn counter +1): their stamp interval is the pacing interval.
    paced = [(stamps[i + 1] - stamps[i], recv[i + 1] - recv[i])
             for i, step in enumerate(steps) if step == 1]
    stamp_dt = [dt for dt, _ in paced]
    recv_dt = [dt for _, dt in paced]
    stamp_span = stamps[-1] - stamps[0]
    recv_span = recv[-1] - recv[0]
    rate_stamps = (len(window) - 1) / stamp_span
    rate_recv = (len(window) - 1) / recv_span
    # Frames the node published within the stamp span, lost ones included (counter steps).
    rate_published = sum(steps) / stamp_span
    counter_drops = sum(step - 1 for step in steps if step > 1)
    # Stamps against the absolute slot grid of the target rate, phased on the median frame:
    # how far each stamp is from its grid point. A late frame that does not delay the next
    # ones (absolute deadlines) shows as one long and one short interval and a lone phase
    # outlier; drift would show as a growing phase; a skipped slot (the node's pacer fell a
    # whole period behind) is a grid slot without a frame. Deviations beyond half a period
    # wrap around (they are visible in the intervals anyway).
    raw = [(stamp - stamps[0]) % period for stamp in stamps]
    median_phase = statistics.median(raw)
    phase = [(r - median_phase + period / 2) % period - period / 2 for r in raw]
    deviation = [abs(p) for p in phase]
    slots = round((stamps[-1] - stamps[0] - phase[-1] + phase[0]) / period)
    skipped = max(0, slots - sum(steps))
    worst = sorted(range(len(steps)), key=lambda i: stamps[i] - stamps[i + 1])[:3]
    worst_intervals = [
        {'ms': rounded((stamps[i + 1] - stamps[i]) * 1e3, 2),
         'next_ms': rounded((stamps[i + 2] - stamps[i + 1]) * 1e3, 2) if i + 2 < len(stamps)
         else None,
         'at_s': rounded(stamps[i + 1] - stamps[0], 2), 'counter_step': steps[i]}
        for i in worst]

    # frame_count: the node publishes the index of each frame right after its image, so the
    # images received between the first and the last counter of the window are the frames
    # first + 1 .. last.
    c_first_t, c_first = window_counts[0]
    c_last_t, c_last = window_counts[-1]
    published = c_last - c_first
    received_between = sum(1 for t in recv if c_first_t < t <= c_last_t)
    counter_rate = published / (c_last_t - c_first_t)
    jitter = [abs(dt - period) for dt in stamp_dt]
    stats = node_stats(log_file.read_text(errors='replace'))
    result = {
        'run': label, 'target_hz': target, 'seconds': rounded(recv_span, 2),
        'received': len(window),
        'rate_stamps_hz': rounded(rate_stamps), 'error_stamps_pct': rounded(
            error_pct(rate_stamps, target), 2),
        'rate_recv_hz': rounded(rate_recv), 'error_recv_pct': rounded(
            error_pct(rate_recv, target), 2),
        'rate_published_hz': rounded(rate_published), 'error_published_pct': rounded(
            error_pct(rate_published, target), 2),
        'frame_count_rate_hz': rounded(counter_rate),
        'frame_count_published': published, 'images_received_between': received_between,
        'drops_frame_count': published - received_between,
        'drops_counter': counter_drops,
        'frame_count_msgs_lost': (c_last - c_first + 1) - len(window_counts),
        'slots_skipped_stamps': skipped,
        'interval_p50_ms': rounded(percentile(stamp_dt, 50) * 1e3),
        'interval_p99_ms': rounded(percentile(stamp_dt, 99) * 1e3),
        'interval_max_ms': rounded(max(stamp_dt) * 1e3),
        'interval_min_ms': rounded(min(stamp_dt) * 1e3),
        'jitter_p50_ms': rounded(percentile(jitter, 50) * 1e3),
        'jitter_p99_ms': rounded(percentile(jitter, 99) * 1e3),
        'jitter_max_ms': rounded(max(jitter) * 1e3),
        'recv_interval_p99_ms': rounded(percentile(recv_dt, 99) * 1e3),
        'recv_interval_max_ms': rounded(max(recv_dt) * 1e3),
        'late_intervals_gt_1_5_period': sum(1 for dt in stamp_dt if dt > 1.5 * period),
        'grid_deviation_p50_ms': rounded(percentile(deviation, 50) * 1e3),
        'grid_deviation_p99_ms': rounded(percentile(deviation, 99) * 1e3),
        'grid_deviation_max_ms': rounded(max(deviation) * 1e3),
        'grid_phase_first_last_ms': [rounded(phase[0] * 1e3), rounded(phase[-1] * 1e3)],
        'worst_intervals': worst_intervals,
        'within_goal': abs(error_pct(rate_stamps, target)) <= GOAL_PCT,
        'node_stats': stats,
    }
    return result


def rate_runs(rates: Sequence[float], seconds: float, warmup: float, domain: int,
              work: Path) -> list[dict[str, Any]]:
    env = node_environment(domain)
    probe = RosProbe(domain, f'bench_camera_{os.getpid()}', step=0.02)
    results = []
    try:
        for rate in rates:
            label = f'synthetic@{rate:g}'
            params = {'source': f'synthetic:{WIDTH}x{HEIGHT}', 'fps': float(rate),
                      'encoding': 'bgr8'}
            print(f'  {label}: {seconds:g} s ...', flush=True)
            results.append(measure_rate(probe, env, label, params, rate, seconds, warmup,
                                        COUNTER_WRAP, work / f'camera_{label}.log'))
        video = write_video(work / 'clip.avi')
        label = f'video@file({VIDEO_FPS:g})'
        params = {'source': str(video), 'fps': -1.0, 'encoding': 'bgr8', 'loop': True}
        print(f'  {label}: {seconds:g} s ...', flush=True)
        results.append(measure_rate(probe, env, label, params, VIDEO_FPS, seconds, warmup,
                                    VIDEO_FRAMES, work / 'camera_video.log'))
    finally:
        probe.close()
    return results


def print_rates(results: Sequence[dict[str, Any]]) -> None:
    print()
    print(f'{"run":<18} {"target":>6} {"recv":>5} {"Hz(stamp)":>10} {"err%":>6} '
          f'{"Hz(recv)":>9} {"err%":>6} {"Hz(count)":>9} {"drops":>5} {"skip":>4} '
          f'{"p50 ms":>7} {"p99 ms":>7} {"max ms":>7} {"jit99":>6} {"jitmax":>6} {"goal":>4}')
    for r in results:
        print(f'{r["run"]:<18} {r["target_hz"]:>6g} {r["received"]:>5} '
              f'{r["rate_stamps_hz"]:>10.3f} {r["error_stamps_pct"]:>6.2f} '
              f'{r["rate_recv_hz"]:>9.3f} {r["error_recv_pct"]:>6.2f} '
              f'{r["frame_count_rate_hz"]:>9.3f} '
              f'{r["drops_counter"]:>5} {r["slots_skipped_stamps"]:>4} '
              f'{r["interval_p50_ms"]:>7.2f} {r["interval_p99_ms"]:>7.2f} '
              f'{r["interval_max_ms"]:>7.2f} {r["jitter_p99_ms"]:>6.2f} '
              f'{r["jitter_max_ms"]:>6.2f} {"ok" if r["within_goal"] else "MISS":>4}')
    print('  Hz(stamp) = (received - 1) / (last - first header stamp); Hz(recv) the same over '
          'receive times;')
    print('  Hz(count) = frame_count increase / time; drops = frames missing from the drawn '
          'counter; skip = slots')
    print('  of the target-rate grid with no frame; p50/p99/max = interval between the stamps '
          'of consecutive frames;')
    print('  jit = |interval - period|; grid = |stamp - its point on the target-rate grid| '
          '(phased on the median).')
    for r in results:
        stats = r['node_stats'] or {}
        print(f'  {r["run"]}: frame_count published {r["frame_count_published"]}, images '
              f'received {r["images_received_between"]} (drops {r["drops_frame_count"]}); '
              f'frame_count msgs lost {r["frame_count_msgs_lost"]}; node log: '
              f'{stats.get("slots_skipped", "?")} slots skipped, publish cost '
              f'{stats.get("publish_cost_ms", "?")} ms/frame')
        worst = ', '.join(f'{w["ms"]} ms then {w["next_ms"]} ms at {w["at_s"]} s'
                          for w in r['worst_intervals'])
        first, last = r['grid_phase_first_last_ms']
        print(f'    grid p50/p99/max {r["grid_deviation_p50_ms"]}/{r["grid_deviation_p99_ms"]}/'
              f'{r["grid_deviation_max_ms"]} ms (phase first {first}, last {last} ms); '
              f'longest intervals: {worst}')


# --------------------------------------------------------------------------- part 2: cost

def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def summary(samples: Sequence[float]) -> dict[str, float | None]:
    return {'p50_ms': rounded(statistics.median(samples) * 1e3, 4),
            'mean_ms': rounded(statistics.fmean(samples) * 1e3, 4),
            'p99_ms': rounded(percentile(samples, 99) * 1e3, 4)}


def measure_cost(publisher_node: Node, width: int, height: int, encoding: str, frames: int,
                 warmup: int = 20) -> dict[str, Any]:
    """Time the steps of CameraNode._publish for `frames` captured width x height frames."""
    image_pub = publisher_node.create_publisher(Image, 'bench_image_raw', qos('best_effort', 5))
    info_pub = publisher_node.create_publisher(CameraInfo, 'bench_camera_info',
                                               qos('best_effort', 5))
    count_pub = publisher_node.create_publisher(UInt64, 'bench_frame_count',
                                                qos('best_effort', 5))
    deadline = time.monotonic() + 10.0
    while image_pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    matched = image_pub.get_subscription_count()
    pattern = SyntheticSource(width, height, 30.0)
    captured = [pattern.render(i) for i in range(8)]  # what a source's read() returns
    scratch = np.empty_like(convert_frame(captured[0], encoding=encoding))
    calib = default_calibration(width, height, 'camera')
    clock = publisher_node.get_clock()
    convert_s: list[float] = []
    message_s: list[float] = []
    publish_s: list[float] = []
    other_s: list[float] = []
    copy_s: list[float] = []
    shares_input = False
    shares_message = False
    nbytes = 0
    for i in range(frames + warmup):
        frame = captured[i % len(captured)]
        header = Header(frame_id='camera', stamp=clock.now().to_msg())
        t_convert, image = time_call(
            lambda: convert_frame(frame, width=0, height=0, encoding=encoding))
        t_message, msg = time_call(lambda: numpy_to_image(image, encoding, header))
        t_publish, _ = time_call(lambda: image_pub.publish(msg))

        def rest() -> None:
            info_pub.publish(camera_info_msg(calib, header))
            count_pub.publish(UInt64(data=i))
        t_other, _ = time_call(rest)
        # Reference: one plain memcpy of the message's bytes into a preallocated buffer.
        t_copy, _ = time_call(lambda: np.copyto(scratch, image))
        if i < warmup:
            continue
        convert_s.append(t_convert)
        message_s.append(t_message)
        publish_s.append(t_publish)
        other_s.append(t_other)
        copy_s.append(t_copy)
        shares_input = np.shares_memory(image, frame)
        shares_message = np.shares_memory(np.frombuffer(msg.data, np.uint8), image)
        nbytes = len(msg.data)
    for publisher in (image_pub, info_pub, count_pub):
        publisher_node.destroy_publisher(publisher)
    copy_p50 = statistics.median(copy_s)
    publish_p50 = statistics.median(publish_s)
    total = [a + b + c + d for a, b, c, d in zip(convert_s, message_s, publish_s, other_s)]
    return {
        'size': f'{width}x{height}', 'encoding': encoding, 'bytes': nbytes, 'frames': frames,
        'matched_subscribers': matched,
        'convert_frame': summary(convert_s), 'numpy_to_image': summary(message_s),
        'publish_image': summary(publish_s), 'info_and_count': summary(other_s),
        'total': summary(total), 'memcpy_reference': summary(copy_s),
        # Copies of the pixel bytes after capture:
        # - convert_frame: none for bgr8 from a BGR capture at the same size (the capture array
        #   itself is returned); mono8 is a cvtColor pass into a new, 3x smaller array (a
        #   conversion, not a copy).
        # - numpy_to_image: 1 (inherent): the pixels are copied into the array.array the
        #   message keeps (sensor_msgs/Image owns its data; rclpy has no zero-copy loan).
        # - publish: rclpy copies the array.array into the C message struct (1, avoidable only
        #   by publishing pre-serialised bytes), rmw serialises the struct into CDR (1,
        #   inherent) and Fast DDS hands the CDR payload to the shared-memory transport
        #   (1 more). The measured ratio publish / memcpy estimates them (upper bound: it also
        #   counts the fixed per-publish overhead).
        'copies_convert_frame': 0 if shares_input else 1,
        'copies_numpy_to_image': 0 if shares_message else 1,
        'publish_memcpy_equivalents': rounded(publish_p50 / copy_p50, 1),
    }


def cost_runs(frames: int, domain: int) -> list[dict[str, Any]]:
    publisher = RosProbe(domain, f'bench_cost_pub_{os.getpid()}')
    subscriber = RosProbe(domain, f'bench_cost_sub_{os.getpid()}')
    publisher_node, subscriber_node = publisher.node, subscriber.node
    # A matched best-effort subscriber in another participant, never spun: Fast DDS still
    # delivers every sample into its history, so publish does the full transport work.
    subscription = subscriber_node.create_subscription(Image, 'bench_image_raw', lambda _: None,
                                                       qos_profile_sensor_data)
    results = []
    try:
        for width, height in ((640, 480), (1280, 720)):
            for encoding in ('bgr8', 'mono8'):
                results.append(measure_cost(publisher_node, width, height, encoding, frames))
    finally:
        subscriber_node.destroy_subscription(subscription)
        subscriber.close()
        publisher.close()
    return results


def print_costs(results: Sequence[dict[str, Any]]) -> None:
    print()
    print(f'{"frame":>9} {"enc":>5} {"bytes":>8} {"convert":>8} {"to_msg":>8} {"publish":>8} '
          f'{"info+cnt":>8} {"total":>8} {"memcpy":>7} {"copies":>6} {"pub/memcpy":>10}')
    for stat in ('p50_ms', 'mean_ms'):
        for r in results:
            print(f'{r["size"]:>9} {r["encoding"]:>5} {r["bytes"]:>8} '
                  f'{r["convert_frame"][stat]:>8.3f} {r["numpy_to_image"][stat]:>8.3f} '
                  f'{r["publish_image"][stat]:>8.3f} {r["info_and_count"][stat]:>8.3f} '
                  f'{r["total"][stat]:>8.3f} {r["memcpy_reference"][stat]:>7.3f} '
                  f'{r["copies_convert_frame"] + r["copies_numpy_to_image"]:>6} '
                  f'{r["publish_memcpy_equivalents"]:>10}   ({stat[:-3]})')
    print('  ms per frame; copies = new pixel buffers written by convert_frame (mono8: cvtColor) '
          '+ numpy_to_image;')
    print('  pub/memcpy = publish time in')
    print('  memcpy-equivalents of the message bytes (python -> C struct, CDR serialisation, '
          'SHM transport, fixed cost).')


# --------------------------------------------------------------------------- main

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.bench.camera',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=30.0,
                        help='measurement time per rate run (default 30)')
    parser.add_argument('--rates', default='30,60',
                        help='comma-separated target rates of the synthetic runs (Hz)')
    parser.add_argument('--warmup', type=float, default=2.0,
                        help='seconds discarded after the first image of each run')
    parser.add_argument('--frames', type=int, default=500,
                        help='frames per configuration of the cost measurement')
    parser.add_argument('--domain', type=int, default=60 + os.getpid() % 20,
                        help='ROS domain id (default 60 + pid %% 20)')
    parser.add_argument('--skip-rate', action='store_true', help='only the cost measurement')
    parser.add_argument('--skip-cost', action='store_true', help='only the rate measurement')
    parser.add_argument('--json', type=Path, help='write the results here')
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(',') if r.strip()]
    print(f'camera_node benchmark: domain {args.domain}, {os.cpu_count()} CPUs, '
          f'cv_bridge {"in use" if cv_bridge_in_use() else "not used"}', flush=True)
    rate_results: list[dict[str, Any]] = []
    cost_results: list[dict[str, Any]] = []
    if not args.skip_rate:
        print(f'rate: {WIDTH}x{HEIGHT} bgr8, {args.seconds:g} s per run after '
              f'{args.warmup:g} s warm-up', flush=True)
        with tempfile.TemporaryDirectory(prefix='bench_camera_') as work:
            rate_results = rate_runs(rates, args.seconds, args.warmup, args.domain, Path(work))
        print_rates(rate_results)
    if not args.skip_cost:
        print(f'\ncost: {args.frames} frames per configuration, in-process', flush=True)
        cost_results = cost_runs(args.frames, args.domain)
        print_costs(cost_results)
    if args.json:
        args.json.write_text(json.dumps({
            'seconds': args.seconds, 'rates': rates, 'warmup': args.warmup,
            'goal_pct': GOAL_PCT, 'cpus': os.cpu_count(), 'rate': rate_results,
            'cost': cost_results}, indent=2))
        print(f'\nwrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

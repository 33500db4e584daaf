#!/usr/bin/env python3
"""Cross-process image transport latency: Fast DDS defaults vs the shipped profile, one run.

    .venv/bin/python -m tools.bench.transport [--seconds 4] [--rate 30] [--json out.json]
        [--no-keep-buffers] [--compare-buffers]

For each frame size, reliability and profile, a publisher process sends bgr8 frames (built with
ros_onnx_vision.ros.image_conversion) stamped just before publishing, and a subscriber process
(spinning a SingleThreadedExecutor like run_node) records receive time - stamp (same host clock).
Both call ros.malloc_tuning.keep_image_buffers() first, as image nodes should (without it the
subscriber page-faults three fresh frame buffers per message);
--no-keep-buffers leaves glibc's defaults, --compare-buffers runs both for each case.
Prints a table and optionally writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import time

SIZES = {'640x480': (640, 480), '1280x720': (1280, 720), '1920x1080': (1920, 1080)}
ROOT = Path(__file__).resolve().parents[2]


def _qos(reliability: str):
    from ros_onnx_vision.ros.qos import qos
    return qos(reliability, 1)


def _keep_buffers(keep: bool) -> None:
    if keep:
        from ros_onnx_vision.ros.malloc_tuning import keep_image_buffers
        keep_image_buffers()


def publisher(size: str, reliability: str, seconds: float, rate: float,
              keep_buffers: bool = True) -> None:
    _keep_buffers(keep_buffers)
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ros_onnx_vision.ros.image_conversion import numpy_to_image
    from ros_onnx_vision.ros.stamps import seconds_to_stamp
    width, height = SIZES[size]
    rclpy.init()
    node = rclpy.create_node('bench_publisher')
    pub = node.create_publisher(Image, 'bench_image', _qos(reliability))
    deadline = time.monotonic() + 15
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the subscriber's reader match fully
    frame = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    start = time.monotonic()
    count = int(seconds * rate)
    for i in range(count):
        next_at = start + i / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
        msg = numpy_to_image(frame, 'bgr8', Header(frame_id=str(i)))
        msg.header.stamp = seconds_to_stamp(time.time())
        pub.publish(msg)
    time.sleep(0.5)
    print(json.dumps({'sent': count}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def subscriber(reliability: str, seconds: float, keep_buffers: bool = True) -> None:
    _keep_buffers(keep_buffers)
    import rclpy
    from sensor_msgs.msg import Image

    from ros_onnx_vision.ros.image_conversion import image_to_numpy
    from ros_onnx_vision.ros.stamps import stamp_to_seconds
    rclpy.init()
    node = rclpy.create_node('bench_subscriber')
    latencies: list[float] = []

    def on_image(msg: Image) -> None:
        image_to_numpy(msg)
        latencies.append(time.time() - stamp_to_seconds(msg.header.stamp))

    node.create_subscription(Image, 'bench_image', on_image, _qos(reliability))
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    executor = SingleThreadedExecutor()  # as run_node spins the nodes
    executor.add_node(node)
    end = time.monotonic() + seconds + 30  # stopped by SIGINT from the benchmark long before
    try:
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps({'latencies': latencies}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def measure(size: str, reliability: str, profile: bool, seconds: float, rate: float,
            domain: int, keep_buffers: bool = True) -> dict:
    from ros_onnx_vision.ros.dds_profile import LEGACY_PROFILE_VARIABLE, PROFILE_VARIABLE
    from tools.demo.graph_runner import node_environment
    env = node_environment(domain, localhost_only=os.environ.get('BENCH_LOCALHOST', '1') == '1')
    if not profile:
        env.pop(PROFILE_VARIABLE, None)
        env.pop(LEGACY_PROFILE_VARIABLE, None)
    # -m needs the repository root on the path: the children run from it (cwd=ROOT).
    script = [sys.executable, '-m', 'tools.bench.transport'] + (
        [] if keep_buffers else ['--no-keep-buffers'])
    sub = subprocess.Popen(script + ['--role', 'sub', '--reliability', reliability,
                                     '--seconds', str(seconds)],
                           env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pub = subprocess.Popen(script + ['--role', 'pub', '--size', size, '--reliability',
                                     reliability, '--seconds', str(seconds), '--rate',
                                     str(rate)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                           text=True)
    sent = json.loads(pub.communicate(timeout=120)[0].strip().splitlines()[-1])['sent']
    sub.send_signal(2)
    out = sub.communicate(timeout=60)[0].strip().splitlines()
    latencies = json.loads(out[-1])['latencies'] if out else []
    ms = sorted(x * 1e3 for x in latencies)

    def pct(q: float) -> float | None:
        return round(ms[min(len(ms) - 1, int(q * len(ms)))], 2) if ms else None
    return {'size': size, 'reliability': reliability,
            'profile': 'shipped' if profile else 'defaults', 'sent': sent,
            'received': len(ms), 'received_pct': round(100 * len(ms) / max(sent, 1), 1),
            'p50_ms': pct(0.5), 'p90_ms': pct(0.9), 'p99_ms': pct(0.99),
            'max_ms': round(ms[-1], 2) if ms else None,
            'mean_ms': round(statistics.fmean(ms), 2) if ms else None,
            'keep_buffers': keep_buffers}


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.bench.transport',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--role', choices=('bench', 'pub', 'sub'), default='bench')
    parser.add_argument('--size', default='640x480', choices=sorted(SIZES))
    parser.add_argument('--sizes', default='640x480,1920x1080')
    parser.add_argument('--reliability', default='best_effort')
    parser.add_argument('--reliabilities', default='best_effort,reliable')
    parser.add_argument('--seconds', type=float, default=4.0)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--json', type=Path, help='write the results here')
    parser.add_argument('--no-keep-buffers', action='store_true',
                        help="glibc's default malloc thresholds (no keep_image_buffers())")
    parser.add_argument('--compare-buffers', action='store_true',
                        help='run each case with and without keep_image_buffers(), interleaved')
    args = parser.parse_args()
    keep = not args.no_keep_buffers
    if args.role == 'pub':
        publisher(args.size, args.reliability, args.seconds, args.rate, keep)
        return 0
    if args.role == 'sub':
        subscriber(args.reliability, args.seconds, keep)
        return 0
    variants = (True, False) if args.compare_buffers else (keep,)
    results = []
    domain = 90 + os.getpid() % 10
    print(f'{"frame":>10} {"reliability":>12} {"profile":>9} {"buffers":>8} {"recv":>7} '
          f'{"p50 ms":>8} {"p90 ms":>8} {"max ms":>8}')
    for size in args.sizes.split(','):
        for reliability in args.reliabilities.split(','):
            for profile in (False, True):
                for keep_buffers in variants:
                    r = measure(size, reliability, profile, args.seconds, args.rate, domain,
                                keep_buffers)
                    results.append(r)
                    print(f'{size:>10} {reliability:>12} {r["profile"]:>9} '
                          f'{"kept" if keep_buffers else "default":>8} '
                          f'{r["received_pct"]:>6}% {r["p50_ms"]!s:>8} {r["p90_ms"]!s:>8} '
                          f'{r["max_ms"]!s:>8}', flush=True)
    if args.json:
        args.json.write_text(json.dumps({'rate_hz': args.rate, 'seconds': args.seconds,
                                         'results': results}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""A camera on another host, measured: raw vs compressed over a bandwidth-limited UDP link.

    sudo .venv/bin/python -m tools.bench.remote [--seconds 8] [--bandwidths 50,300]
        [--sizes 640x480,1280x720] [--rates 15,30] [--json out.json]

Two hosts are stood in for by one network namespace (`ip netns add`, hence root) whose only
interface, its loopback, is shaped like a link between hosts: MTU 1500 (so a 64 KB DDS datagram
travels as ~44 IP fragments and is lost whole when one is, as on Ethernet or Wi-Fi) and a
`tc ... tbf` rate limit (netem is not available on these machines; tbf is). Every process runs
in that namespace with a Fast DDS profile that has only UDPv4 (no shared memory), so every
frame crosses the shaped link, and no traffic leaves it. Both directions share the one qdisc,
like a half-duplex radio link.

Per window: camera_node (a real photo resized to the size, `reliability` reliable as usb_cam,
or best effort as a simulator) and inference_node (the digit model, about 2 ms a frame, so the
model does not hide the link; `image_transport` raw or compressed, reliability best_available)
start fresh; after the first result (or 15 s without one) and 1 s of settling, `--seconds` are
measured: frames the
camera published, frames inference_node received (delivered), results, camera stamp to result
received here (p50/p99: encode + link + decode + model + the result's way back), and bytes/s
on the link (the namespace's loopback tx counter: frames, fragments' headers, repairs,
discovery, results) with the packets the qdisc dropped. Prints a Markdown table, optionally
writes JSON. Windows are short because the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parents[2]

PICTURE = ROOT / 'test' / 'data' / 'vtest_000.jpg'
DOMAIN = 42  # the namespace is private: no other run can share it
UDP_ONLY_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- tools.bench.remote: UDPv4 only, as between two hosts (no shared memory). -->
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>udp_only</transport_id>
      <type>UDPv4</type>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="udp_only" is_default_profile="true">
    <rtps>
      <useBuiltinTransports>false</useBuiltinTransports>
      <userTransports><transport_id>udp_only</transport_id></userTransports>
    </rtps>
  </participant>
</profiles>
"""


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# --- the shaped link ---------------------------------------------------------------------

def shape(mbit: float) -> None:
    """Rate-limit this namespace's loopback; the queue holds 100 ms at the rate (then drops)."""
    burst = max(64_000, int(mbit * 1e6 / 8 * 0.004))  # 4 ms at the rate, at least 64 KB
    run('tc', 'qdisc', 'replace', 'dev', 'lo', 'root', 'tbf', 'rate', f'{mbit}mbit',
        'burst', str(burst), 'latency', '100ms')


def link_counters() -> tuple[int, int]:
    """(tx bytes of lo, packets the qdisc dropped) in this namespace."""
    tx = 0
    for line in Path('/proc/net/dev').read_text().splitlines():
        name, _, fields = line.partition(':')
        if name.strip() == 'lo':
            tx = int(fields.split()[8])
    dropped = re.search(r'dropped (\d+)', run('tc', '-s', 'qdisc', 'show', 'dev', 'lo'))
    return tx, int(dropped.group(1)) if dropped else 0


# --- one window ---------------------------------------------------------------------------

def payload_bytes(width: int, height: int, transport: str, quality: int) -> int:
    """Bytes of one frame's image data, as camera_node builds it from the picture."""
    import cv2
    from ros_onnx_vision.camera.compression import encode_jpeg
    from ros_onnx_vision.camera.frame_sources import convert_frame
    frame = convert_frame(cv2.imread(str(PICTURE)), width=width, height=height,
                          encoding='bgr8')
    if transport == 'raw':
        return frame.size
    return len(encode_jpeg(frame, 'bgr8', quality)[0])


def window(probe, env: dict[str, str], logs: Path, *, mbit: float, size: str, fps: float,
           transport: str, reliability: str, seconds: float, quality: int) -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from vision_msgs.msg import Classification
    from tools.demo.graph_runner import start_node, stop_processes

    shape(mbit)
    width, height = (int(v) for v in size.split('x'))
    results: list[tuple[float, float]] = []  # (receive time, camera stamp)
    values: dict[str, dict[str, str]] = {}

    def on_result(msg: Classification) -> None:
        results.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values[status.name.split(':')[0]] = {kv.key: kv.value for kv in status.values}

    subs = [probe.node.create_subscription(Classification, 'classification', on_result,
                                           QoSProfile(depth=100)),
            probe.node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics,
                                           50)]
    name = f'{transport}_{size}_{fps:g}hz_{mbit:g}mbit_{reliability}'
    camera = start_node('camera_node', env, log_file=logs / f'{name}.camera.log', parameters={
        'source': str(PICTURE), 'width': width, 'height': height, 'fps': fps,
        'reliability': reliability, 'jpeg_quality': quality})
    inference = start_node('inference_node', env, log_file=logs / f'{name}.inference.log',
                           parameters={'model': 'mnist_digits_cnn.yaml',
                                       'image_transport': transport})
    try:
        started = probe.spin_until(lambda: bool(results), 15.0)
        probe.spin_for(1.0)
        first = {k: dict(v) for k, v in values.items()}
        tx0, drop0 = link_counters()
        results.clear()
        t0 = time.monotonic()
        probe.spin_for(seconds)
        elapsed = time.monotonic() - t0
        tx1, drop1 = link_counters()
        last = {k: dict(v) for k, v in values.items()}
    finally:
        # SIGTERM: a run started in the background of a script ignores SIGINT, and so would
        # every node it starts
        stop_processes([camera, inference], signal.SIGTERM)
        for sub in subs:
            probe.node.destroy_subscription(sub)

    def delta(node: str, key: str) -> int:
        try:
            return int(last[node][key]) - int(first.get(node, {}).get(key, 0))
        except (KeyError, ValueError):
            return 0

    published = delta('camera_node', 'frames published')
    received = delta('inference_node', 'frames received')
    latencies = sorted((now - stamp) * 1e3 for now, stamp in results)

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        'transport': transport, 'size': size, 'fps': fps, 'mbit': mbit,
        'camera_reliability': reliability, 'seconds': round(elapsed, 2),
        'frame_bytes': payload_bytes(width, height, transport, quality),
        'published': published, 'delivered': received, 'results': len(results),
        'delivered_ratio': received / published if published else None,
        'latency_p50_ms': pct(0.5), 'latency_p99_ms': pct(0.99),
        'link_bytes_per_s': (tx1 - tx0) / elapsed, 'qdisc_drops': drop1 - drop0,
        'first_result': started,
    }


def worker(args: argparse.Namespace) -> int:
    """Inside the namespace: the UDP-only profile for every process, then each window."""
    from ros_onnx_vision.ros.dds_profile import LEGACY_PROFILE_VARIABLE, PROFILE_VARIABLE
    from tools.demo.graph_runner import node_environment
    tmp = Path(tempfile.mkdtemp(prefix='bench_remote_'))
    profile = tmp / 'udp_only.xml'
    profile.write_text(UDP_ONLY_PROFILE)
    os.environ[PROFILE_VARIABLE] = os.environ[LEGACY_PROFILE_VARIABLE] = str(profile)
    # Discovery as between hosts (SUBNET, the default). Not LOCALHOST: with it, rmw_fastrtps
    # delivered the frames without a byte on the loopback (measured), whatever the profile.
    os.environ.pop('ROS_AUTOMATIC_DISCOVERY_RANGE', None)
    env = node_environment(DOMAIN, localhost_only=False)
    from tools.ros_probe import RosProbe
    probe = RosProbe(DOMAIN, 'bench_remote')
    cases = [(t, s, f, m, 'reliable') for t in ('raw', 'compressed') for s in args.sizes
             for f in args.rates for m in args.bandwidths]
    # Best effort (a simulator's camera), for the first size at the highest rate.
    cases += [(t, args.sizes[0], max(args.rates), m, 'best_effort')
              for t in ('raw', 'compressed') for m in args.bandwidths]
    rows = []
    try:
        for transport, size, fps, mbit, reliability in cases:
            row = window(probe, env, tmp, mbit=mbit, size=size, fps=fps, transport=transport,
                         reliability=reliability, seconds=args.seconds, quality=args.quality)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        probe.close()
    Path(args.worker_output).write_text(json.dumps(rows))
    return 0


# --- outside: the namespace and the report -------------------------------------------------

def table(rows: list[dict]) -> str:
    def ms(value: float | None) -> str:
        return f'{value:.0f}' if value is not None else '-'

    # 'delivered' is out of the frames the camera was asked for (rate x window): a reliable
    # camera on a saturated link publishes fewer (its writer waits), and those all arrive.
    lines = ['| transport | size | Hz | link Mbit/s | camera | frame KB | camera published | '
             'delivered | latency p50 / p99 ms | link MB/s | qdisc drops |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        wanted = round(r['fps'] * r['seconds'])
        lines.append(
            f'| {r["transport"]} | {r["size"]} | {r["fps"]:g} | {r["mbit"]:g} | '
            f'{r["camera_reliability"].replace("_", " ")} | {r["frame_bytes"] / 1e3:.0f} | '
            f'{r["published"]}/{wanted} | {r["delivered"]} ({r["delivered"] / wanted:.0%}) | '
            f'{ms(r["latency_p50_ms"])} / {ms(r["latency_p99_ms"])} | '
            f'{r["link_bytes_per_s"] / 1e6:.2f} | {r["qdisc_drops"]} |')
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.bench.remote',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=8.0)
    parser.add_argument('--bandwidths', default='50,300', help='Mbit/s, comma-separated')
    parser.add_argument('--sizes', default='640x480,1280x720')
    parser.add_argument('--rates', default='15,30', help='camera Hz, comma-separated')
    parser.add_argument('--quality', type=int, default=80, help='camera_node jpeg_quality')
    parser.add_argument('--json', help='write the rows here')
    parser.add_argument('--table-from', metavar='JSON', help='print the table of a --json file '
                        'written earlier, and exit')
    parser.add_argument('--worker-output', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table_from:
        saved = json.loads(Path(args.table_from).read_text())
        print(f'{saved["cpu"]}\n\n{table(saved["rows"])}')
        return 0
    args.bandwidths = [float(v) for v in args.bandwidths.split(',')]
    args.sizes = args.sizes.split(',')
    args.rates = [float(v) for v in args.rates.split(',')]
    if args.worker_output:
        return worker(args)
    if os.geteuid() != 0:
        raise SystemExit('tools.bench.remote needs root (ip netns, tc): run it with sudo')
    namespace = f'rov_remote_{os.getpid()}'
    out = Path(tempfile.mkdtemp(prefix='bench_remote_')) / 'rows.json'
    run('ip', 'netns', 'add', namespace)
    try:
        inside = ('ip', 'netns', 'exec', namespace)
        run(*inside, 'ip', 'link', 'set', 'lo', 'up', 'mtu', '1500')
        print(f'namespace {namespace}: lo MTU 1500, tbf at {args.bandwidths} Mbit/s, '
              f'UDPv4 only; {args.seconds:g} s per window', flush=True)
        cmd = [*inside, sys.executable, '-m', 'tools.bench.remote', '--worker-output', str(out),
               '--seconds', str(args.seconds),
               '--bandwidths', ','.join(f'{v:g}' for v in args.bandwidths),
               '--sizes', ','.join(args.sizes),
               '--rates', ','.join(f'{v:g}' for v in args.rates), '--quality', str(args.quality)]
        code = subprocess.run(cmd, cwd=ROOT).returncode  # -m needs the root on the path
    finally:
        # Whatever still runs in the namespace was started by this run: stop it, then the
        # namespace goes (and its shaped loopback with it).
        pids = subprocess.run(['ip', 'netns', 'pids', namespace], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        run('ip', 'netns', 'del', namespace)
    if code != 0 or not out.exists():
        return code or 1
    rows = json.loads(out.read_text())
    from tools.machine import cpu_summary
    print(f'\n{cpu_summary()}; camera_node jpeg_quality {args.quality}\n')
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({'cpu': cpu_summary(), 'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

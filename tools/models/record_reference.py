#!/usr/bin/env python3
"""Record a model card's self-check reference: what its model gives on a shipped image, here.

    .venv/bin/python -m tools.models.record_reference --card models/CARD.yaml \
        [--image models/reference/people.jpg] [--score-floor 0.3]

Runs the card on the CPU and writes (or replaces) the card's top-level ``reference:`` block,
at the end of the file, keeping the rest of the card and its comments as they are. Record on a
machine where the model is known to be right (for int8: results checked against the float
model), and say so in the commit. See ros_onnx_vision/inference/self_check.py.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys

from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card
from ros_onnx_vision.inference.self_check import (default_score_floor, reference_block,
                                                  REFERENCE_IMAGES, self_check,
                                                  write_reference)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.models.record_reference',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--card', required=True, type=Path)
    parser.add_argument('--image', help='relative to the card, or absolute (default: the '
                                        "package's reference image for the card's task)")
    parser.add_argument('--score-floor', type=float,
                        help='record boxes down to this score (default: threshold - 0.15)')
    args = parser.parse_args(argv)
    card = load_model_card(args.card)
    value = args.image or REFERENCE_IMAGES[card.task]
    image = Path(value) if os.path.isabs(value) else card.path.parent / value
    engine = InferenceEngine(card, intra_op_threads=1)
    floor = args.score_floor if args.score_floor is not None else default_score_floor(card)
    block = reference_block(engine, image, value, floor)
    write_reference(card.path, block)
    report = self_check(InferenceEngine(load_model_card(card.path), intra_op_threads=1))
    print(report.message, file=sys.stderr)
    return 0 if report.passed else 1


if __name__ == '__main__':
    sys.exit(main())

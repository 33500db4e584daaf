"""Command line without ROS: `python -m ros_onnx_vision infer --model CARD FILES...`."""

from __future__ import annotations

import sys

USAGE = '''usage: python -m ros_onnx_vision COMMAND ...

commands:
  demo    the main job: the three nodes on an embedded video, with progress; writes an
          annotated video, JSON lines and a summary figure (python -m ros_onnx_vision demo -h)
  infer   run a model card on images or videos, print one JSON object per frame
          (python -m ros_onnx_vision infer --help)
  optimize  write the onnxruntime offline-optimised graph and a static int8 variant of a
          model card, compare speed and accuracy, write new cards
          (python -m ros_onnx_vision optimize --help)
'''


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE, end='')
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == 'demo':
        from ros_onnx_vision.demo import main as demo_main
        return demo_main(rest)
    if command == 'infer':
        from ros_onnx_vision.offline_infer import main as infer_main
        return infer_main(rest)
    if command == 'optimize':
        from ros_onnx_vision.model_optimization import main as optimize_main
        return optimize_main(rest)
    print(f'unknown command {command!r}\n{USAGE}', file=sys.stderr, end='')
    return 2


if __name__ == '__main__':
    sys.exit(main())

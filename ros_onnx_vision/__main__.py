"""Command line without ROS: `python -m ros_onnx_vision infer --model CARD FILES...`.

`infer` is the package's only runtime command. The demo, the benchmark and the model optimiser
are development tools that need a source checkout; they live in tools/ and are named here so a
user who tries the old spelling is told where they went.
"""

from __future__ import annotations

import sys

USAGE = '''usage: python -m ros_onnx_vision infer ...

commands:
  infer   run a model card on images or videos, print one JSON object per frame
          (python -m ros_onnx_vision infer --help)

From a source checkout: tools/demo.sh (the main job), tools/benchmark.sh (the benchmark suite),
python -m tools.optimize --card CARD (int8 and offline-optimised variants of a model card).
'''
CHECKOUT_TOOLS = {'demo': 'tools/demo.sh', 'optimize': 'python -m tools.optimize'}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE, end='')
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == 'infer':
        from ros_onnx_vision.cli.infer import main as infer_main
        return infer_main(rest)
    if command in CHECKOUT_TOOLS:
        print(f'{command!r} is a development tool of the source checkout, not of the installed '
              f'package: run {CHECKOUT_TOOLS[command]} from a clone of ros_onnx_vision',
              file=sys.stderr)
        return 2
    print(f'unknown command {command!r}\n{USAGE}', file=sys.stderr, end='')
    return 2


if __name__ == '__main__':
    sys.exit(main())

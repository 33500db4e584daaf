"""docs/parameters.md's tables, generated from the parameter dataclasses (ros/parameters.py).

    python -m tools.parameters_doc          # rewrite the tables in docs/parameters.md
    python -m tools.parameters_doc --check  # exit 1 when the page is not current

The text around the tables is written by hand; each node's table sits between
`<!-- parameters:NODE -->` and `<!-- /parameters -->` markers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import re
import sys
from typing import Any

from ros_onnx_vision.ros.parameters import (AnnotatorParameters, CameraParameters,
                                            InferenceParameters, parameter_specs, ParameterSpec,
                                            SmoothingParameters)

PAGE = Path(__file__).resolve().parent.parent / 'docs' / 'parameters.md'
NODES: dict[str, type[Any]] = {'camera_node': CameraParameters,
                               'inference_node': InferenceParameters,
                               'smoothing_node': SmoothingParameters,
                               'annotator_node': AnnotatorParameters}
BLOCK = re.compile(r'(<!-- parameters:(\w+) -->\n).*?(<!-- /parameters -->)', re.DOTALL)


def _value(value: Any) -> str:
    if value == '':
        return '(empty)'
    if isinstance(value, bool):
        return f'`{str(value).lower()}`'
    return f'`{value}`'


def _range(spec: ParameterSpec) -> str:
    if spec.choices:
        return ', '.join(_value(choice) for choice in spec.choices)
    if spec.low is not None and spec.high is not None:
        return f'{spec.low:g} to {spec.high:g}'
    return ''


def table(node: str) -> str:
    """The markdown table of one node's parameters."""
    lines = ['| parameter | default | range / choices | live | description |',
             '|---|---|---|---|---|']
    for spec in parameter_specs(NODES[node]):
        lines.append(f'| `{spec.name}` | {_value(spec.default)} | {_range(spec)} | '
                     f'{"" if spec.read_only else "yes"} | {spec.description} |')
    return '\n'.join(lines) + '\n'


def render(text: str) -> str:
    """`text` with every marked table regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m tools.parameters_doc',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true', help='only check the page is current')
    args = parser.parse_args(argv)
    text = PAGE.read_text(encoding='utf-8')
    current = render(text)
    missing = set(NODES) - set(m.group(2) for m in BLOCK.finditer(text))
    if missing:
        print(f'{PAGE}: no table markers for {sorted(missing)}', file=sys.stderr)
        return 1
    if args.check:
        if current != text:
            print(f'{PAGE} is not current: run python -m tools.parameters_doc', file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(current, encoding='utf-8')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

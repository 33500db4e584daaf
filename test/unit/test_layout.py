"""The layout's promises: light stages stay light, plain modules stay free of ROS, no module
imports itself back.

Each weight check imports a module in a fresh interpreter and looks at what that pulled in, so
an import added anywhere down the chain is caught, not only a direct one. The cycle check reads
the sources instead, so it sees every import, also one only a branch or a function would run.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import REPO


def imported_by(module: str) -> set[str]:
    code = (f'import sys, json, {module}; '
            'print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60, check=True)
    return set(json.loads(out.stdout))


def test_smoothing_node_loads_neither_onnxruntime_nor_opencv():
    loaded = imported_by('ros_onnx_vision.ros.smoothing_node')
    assert 'rclpy' in loaded  # the check sees real imports
    assert not loaded & {'onnxruntime', 'cv2'}, loaded & {'onnxruntime', 'cv2'}


def test_message_conversion_does_not_load_the_engine():
    assert not imported_by('ros_onnx_vision.ros.messages') & {'onnxruntime', 'cv2', 'rclpy'}


PLAIN = sorted(str(p.relative_to(REPO).with_suffix('')).replace('/', '.')
               for folder in ('camera', 'camera/sources', 'inference', 'smoothing', 'cli')
               for p in (REPO / 'ros_onnx_vision' / folder).glob('*.py')
               if p.name != '__init__.py') + ['ros_onnx_vision.results',
                                               'ros_onnx_vision.geometry']


@pytest.mark.parametrize('module', PLAIN)
def test_plain_modules_never_import_rclpy(module):
    assert 'rclpy' not in imported_by(module)


def test_results_and_geometry_need_nothing_but_numpy():
    loaded = imported_by('ros_onnx_vision.results') | imported_by('ros_onnx_vision.geometry')
    assert not loaded & {'onnxruntime', 'cv2', 'rclpy', 'yaml'}


def test_the_encoding_table_needs_no_opencv():
    assert 'cv2' not in imported_by('ros_onnx_vision.image_encodings')


def test_a_task_reads_as_its_name_in_logs_and_topic_names():
    from ros_onnx_vision.results import Task
    assert f'bench_{Task.DETECTION}' == 'bench_detection' and str(Task.CLASSIFICATION) == \
        'classification'
    assert Task('detection') is Task.DETECTION and Task.DETECTION == 'detection'


PACKAGE = REPO / 'ros_onnx_vision'


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or \
        (isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at module level or inside a function, minus `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        children: list[ast.AST] = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and is_type_checking(node.test):
            children = list(node.orelse)  # the else branch runs
        pending.extend(children)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of package `root` it imports (`from pkg import mod` -> pkg.mod)."""
    paths = {module_name(p, root): p for p in root.rglob('*.py')}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == '__init__.py' else name.rpartition('.')[0]
        for node in runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ''
                if node.level:
                    anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                    base = '.'.join(anchor + ([base] if base else []))
                targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in paths else base
                           for alias in node.names]
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [(start, iter(sorted(graph[start])))]
        while stack:
            node, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif target in on_path:
                return path[path.index(target):] + [target]
            elif target not in done:
                stack.append((target, iter(sorted(graph[target]))))
                path.append(target)
                on_path.add(target)
    return None


def test_the_import_graph_sees_absolute_relative_and_function_level_imports(tmp_path):
    files = {
        '__init__.py': '',
        'a.py': 'from . import b\nimport os\n',
        'b.py': 'def f():\n    from .sub.c import X\n',
        'sub/__init__.py': '',
        'sub/c.py': ('from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n'
                     'else:\n    from ..d import y\n'),
        'd.py': 'import pkg.sub\n',
    }
    for name, text in files.items():
        (tmp_path / 'pkg' / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'pkg' / name).write_text(text)
    assert import_graph(tmp_path / 'pkg') == {
        'pkg': set(), 'pkg.a': {'pkg.b'}, 'pkg.b': {'pkg.sub.c'}, 'pkg.sub': set(),
        'pkg.sub.c': {'pkg.d'}, 'pkg.d': {'pkg.sub'}}
    graph = import_graph()
    assert 'ros_onnx_vision.results' in graph['ros_onnx_vision.inference.model_card']
    assert 'ros_onnx_vision.camera.compression' in graph['ros_onnx_vision.camera.sources.rosbag']
    assert 'ros_onnx_vision.camera.sources.synthetic' in \
        graph['ros_onnx_vision.camera.frame_sources']  # imported inside open_source
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle or [])

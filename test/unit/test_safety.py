"""Safety of inputs: no eval/exec, no pickle, YAML only via safe_load, in package and tools."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

SOURCES = [path for folder in ('ros_onnx_vision', 'launch', 'tools')
           for path in sorted((REPO / folder).rglob('*.py'))]
FORBIDDEN = {
    # The builtins, not methods such as torch's model.eval().
    r'(?<![.\w])eval\(': 'eval', r'(?<![.\w])exec\(': 'exec', r'\bpickle\b': 'pickle',
    r'allow_pickle\s*=\s*True': 'numpy pickle loading', r'yaml\.load\(': 'yaml.load (unsafe)',
    r'yaml\.unsafe_load': 'yaml.unsafe_load', r'shell\s*=\s*True': 'a shell subprocess',
}


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_unsafe_loading(path):
    text = path.read_text()
    found = [name for pattern, name in FORBIDDEN.items() if re.search(pattern, text)]
    assert not found, f'{path.relative_to(REPO)} uses {found}'


def test_there_are_sources_to_check():
    assert len(SOURCES) > 20

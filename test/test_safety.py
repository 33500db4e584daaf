"""Safety of inputs: no eval/exec, no pickle, YAML only through safe_load, in package code."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

SOURCES = sorted((REPO / 'ros_onnx_vision').glob('*.py')) + sorted(
    (REPO / 'launch').glob('*.py'))
FORBIDDEN = {
    r'\beval\(': 'eval', r'\bexec\(': 'exec', r'\bpickle\b': 'pickle',
    r'allow_pickle\s*=\s*True': 'numpy pickle loading', r'yaml\.load\(': 'yaml.load (unsafe)',
    r'yaml\.unsafe_load': 'yaml.unsafe_load', r'shell\s*=\s*True': 'a shell subprocess',
}


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: p.name)
def test_no_unsafe_loading(path):
    text = path.read_text()
    found = [name for pattern, name in FORBIDDEN.items() if re.search(pattern, text)]
    assert not found, f'{path.name} uses {found}'


def test_there_are_sources_to_check():
    assert len(SOURCES) > 20

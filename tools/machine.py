"""What a measurement ran on: CPU model, core count, memory, OS, versions, commit. No ROS.

The benchmark suite and the optimiser store this next to their figures (results.json, a derived
model card's provenance), since timings only compare on the same machine.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
import platform
import subprocess

from ros_onnx_vision.inference.self_check import cpu_summary as cpu_extensions


def cpu_summary() -> str:
    """One line: the CPU model, the extensions onnxruntime's kernels depend on, the CPU count."""
    return f'{cpu_extensions()}, {os.cpu_count()} CPUs'


def machine_record(command: str, checkout: Path) -> dict:
    """The machine, software versions and `checkout`'s commit, for a results file."""
    import onnxruntime
    try:
        memory_kib = int(Path('/proc/meminfo').read_text().split()[1])
    except OSError:
        memory_kib = 0
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=checkout,
                                text=True, capture_output=True, check=True).stdout.strip()
        if subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                          cwd=checkout, text=True, capture_output=True).stdout.strip():
            commit += ' (with uncommitted changes)'
    except (OSError, subprocess.CalledProcessError):
        commit = 'unknown'
    os_name = platform.platform()
    try:
        os_name = next(line.split('=', 1)[1].strip('"') for line in
                       Path('/etc/os-release').read_text().splitlines()
                       if line.startswith('PRETTY_NAME='))
    except (OSError, StopIteration):
        pass
    return {'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'cpu': cpu_extensions(), 'cpus': os.cpu_count(),
            'memory_gib': round(memory_kib / 2**20, 1),
            'os': os_name, 'python': platform.python_version(),
            'ros_distro': os.environ.get('ROS_DISTRO', 'jazzy'),
            'onnxruntime': onnxruntime.__version__,
            'providers': onnxruntime.get_available_providers(), 'commit': commit,
            'command': command}

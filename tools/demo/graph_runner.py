"""Start the node graph as separate processes, as `ros2 launch` would, without `launch`.

Used by the demo and the integration tests on machines without launch/ros2cli (PyPI has neither).
Commands are built from `graph.Pipeline`, the same description the launch files use.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, IO

from ros_onnx_vision.resources import config_file
from ros_onnx_vision.ros.dds_profile import apply_fastdds_profile
from ros_onnx_vision.ros.graph import NodeSpec, PACKAGE, Pipeline


def node_environment(domain_id: int | None = None, *, localhost_only: bool = True,
                     base: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: shipped profile, optional own domain, host-only discovery.

    Tests pass their own `domain_id` so concurrent runs never see each other.
    """
    env = dict(os.environ if base is None else base)
    apply_fastdds_profile(env)
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    if localhost_only:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env


def find_executable(name: str) -> str:
    """Path of a node executable: lib/<pkg>/ of a colcon install or of this venv, or PATH."""
    prefixes = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) + [sys.prefix]
    for prefix in prefixes:
        candidate = Path(prefix) / 'lib' / PACKAGE / name
        if prefix and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f'node executable {name!r} not found: not in lib/{PACKAGE}/ of AMENT_PREFIX_PATH, '
        f'next to {sys.executable}, or on PATH; is ros_onnx_vision installed?')


def _ros_value(value: Any) -> str:
    """A -p value in the YAML syntax the ROS argument parser expects."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_ros_value(v) for v in value) + ']'
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def node_command(spec: NodeSpec, *, parameters_file: str | Path | None = None,
                 parameters: Mapping[str, Any] | None = None, namespace: str = '',
                 use_sim_time: bool = False) -> list[str]:
    """The command line of one node, with --ros-args for name, files, remaps and overrides."""
    cmd = [find_executable(spec.executable), '--ros-args', '-r', f'__node:={spec.name}']
    if namespace:
        cmd += ['-r', f'__ns:={namespace}']
    if parameters_file:
        cmd += ['--params-file', str(parameters_file)]
    for source, target in spec.remappings:
        cmd += ['-r', f'{source}:={target}']
    overrides = dict(parameters or {})
    if use_sim_time:
        overrides['use_sim_time'] = True
    for name, value in overrides.items():
        cmd += ['-p', f'{name}:={_ros_value(value)}']
    return cmd


class GraphProcesses:
    """The nodes of a pipeline as child processes; stop() sends SIGINT like Ctrl-C."""

    def __init__(self, pipeline: Pipeline, env: Mapping[str, str], *,
                 parameters: Mapping[str, Mapping[str, Any]] | None = None,
                 parameters_file: str | Path | None = None, log_dir: Path | None = None,
                 namespace: str = '', use_sim_time: bool = False) -> None:
        self.pipeline = pipeline
        self.env = dict(env)
        self.parameters = parameters or {}
        self.parameters_file = parameters_file or config_file(pipeline.parameters_file)
        self.log_dir = log_dir
        self.namespace = namespace
        self.use_sim_time = use_sim_time
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self) -> 'GraphProcesses':
        for spec in self.pipeline.nodes:
            cmd = node_command(spec, parameters_file=self.parameters_file,
                               parameters=self.parameters.get(spec.executable),
                               namespace=self.namespace, use_sim_time=self.use_sim_time)
            out: Any = subprocess.DEVNULL
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f'{spec.name}.log', 'wb')
                self._logs.append(out)
            self.processes[spec.name] = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def exited(self) -> dict[str, int]:
        """Nodes that have exited, with their return codes."""
        return {name: p.returncode for name, p in self.processes.items()
                if p.poll() is not None}

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """SIGINT every node, wait, kill stragglers; return the exit codes."""
        codes = stop_processes(list(self.processes.values()), timeout=timeout)
        for log in self._logs:
            log.close()
        return dict(zip(self.processes, codes))

    def log_text(self, name: str) -> str:
        if self.log_dir is None:
            return ''
        path = self.log_dir / f'{name}.log'
        return path.read_text(errors='replace') if path.exists() else ''

    def __enter__(self) -> 'GraphProcesses':
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_processes(processes: Sequence[subprocess.Popen], sig: int = signal.SIGINT,
                   timeout: float = 10.0) -> list[int]:
    """Send `sig` to every process still running, then wait up to `timeout` s for each and
    kill the stragglers; their exit codes, in order."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    codes: list[int] = []
    for process in processes:
        deadline = time.monotonic() + timeout
        while True:
            try:
                code = process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            except KeyboardInterrupt:
                continue  # Ctrl-C reached the nodes too (same process group): keep waiting
            codes.append(code)
            break
    return codes


def start_node(executable: str, env: Mapping[str, str], *, args: Sequence[str] = (),
               parameters: Mapping[str, Any] | None = None,
               log_file: Path | None = None) -> subprocess.Popen[bytes]:
    """Start one node executable with parameter overrides (tests, benchmarks)."""
    cmd = node_command(NodeSpec(executable), parameters=parameters) + list(args)
    out: Any = open(log_file, 'wb') if log_file else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)

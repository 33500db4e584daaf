"""ONNX Runtime sessions with an honest provider report.

:func:`create_session` never falls back to the CPU silently: its :class:`ProviderReport` says
which providers were requested, which this onnxruntime build has, which are active and why each
missing one did not load; with ``strict=True`` a missing one is an error. Kept apart from the
engine because it is about the runtime and the machine, not about the model.
"""

from __future__ import annotations

import contextlib
import ctypes
from dataclasses import dataclass, field
import hashlib
import importlib.metadata
import os
from pathlib import Path
import platform
import tempfile
import threading
from typing import Any, Iterator, Sequence

import onnxruntime as ort

PROVIDER_ALIASES = {
    'cpu': 'CPUExecutionProvider',
    'cuda': 'CUDAExecutionProvider',
    'tensorrt': 'TensorrtExecutionProvider',
    'trt': 'TensorrtExecutionProvider',
    'openvino': 'OpenVINOExecutionProvider',
    'dnnl': 'DnnlExecutionProvider',
    'rocm': 'ROCMExecutionProvider',
    'migraphx': 'MIGraphXExecutionProvider',
    'directml': 'DmlExecutionProvider',
    'dml': 'DmlExecutionProvider',
    'coreml': 'CoreMLExecutionProvider',
    'qnn': 'QNNExecutionProvider',
    'xnnpack': 'XnnpackExecutionProvider',
    'cann': 'CANNExecutionProvider',
}

GRAPH_OPTIMIZATION = {
    'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# Provider -> shared library shipped in onnxruntime/capi (loaded on demand by onnxruntime).
_PROVIDER_LIBRARIES = {
    'CUDAExecutionProvider': 'cuda', 'TensorrtExecutionProvider': 'tensorrt',
    'OpenVINOExecutionProvider': 'openvino', 'DnnlExecutionProvider': 'dnnl',
    'ROCMExecutionProvider': 'rocm', 'MIGraphXExecutionProvider': 'migraphx',
    'QNNExecutionProvider': 'qnn', 'CANNExecutionProvider': 'cann',
}


class ProviderError(RuntimeError):
    """A requested execution provider is not usable and ``strict`` was asked for."""


class ModelLoadError(RuntimeError):
    """onnxruntime could not load the model file."""


class _ProviderInitError(RuntimeError):
    """onnxruntime raised while creating a session with an accelerated provider."""


def resolve_provider(name: str) -> str:
    """Full onnxruntime provider name for a short ('cuda') or full name, case-insensitive.

    Unknown names come back unchanged; :func:`create_session` reports them as unknown.
    """
    key = name.strip().lower()
    if key in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key]
    known = {p.lower(): p for p in ort.get_all_providers()}
    return known.get(key, known.get(key + 'executionprovider', name.strip()))


@dataclass
class ProviderReport:
    """What was asked of onnxruntime, what it has, what it uses, and why not the rest."""

    requested: list[str]
    available: list[str]
    active: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # requested provider -> reason
    onnxruntime_version: str = ort.__version__

    @property
    def fell_back(self) -> bool:
        """True when a requested provider is not active (the work runs elsewhere, e.g. CPU)."""
        return bool(self.failures)

    def summary(self) -> str:
        """One human-readable paragraph for logs and diagnostics."""
        text = (f'onnxruntime {self.onnxruntime_version}: requested {self.requested}, '
                f'available {self.available}, active {self.active}')
        for name, reason in self.failures.items():
            text += f'; {name} NOT used: {reason}'
        return text


def _installed_ort_packages() -> list[str]:
    names = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata['Name'] or '').lower()
        if name.startswith('onnxruntime') and not name.startswith('onnxruntime-extensions'):
            names.append(f'{name} {dist.version}')
    return sorted(set(names))


def _not_in_build_reason(name: str, available: Sequence[str]) -> str:
    if name not in ort.get_all_providers():
        return (f'unknown provider name; use one of {sorted(PROVIDER_ALIASES)} or a full '
                f'name such as {ort.get_all_providers()[:3]}')
    packages = _installed_ort_packages()
    reason = (f'not in this onnxruntime build (installed: {", ".join(packages) or "?"}; '
              f'it has {list(available)})')
    if len(packages) > 1:
        reason += ('; several onnxruntime packages share the import name and one shadows the '
                   'other: uninstall all but one')
    elif name in ('CUDAExecutionProvider', 'TensorrtExecutionProvider'):
        reason += '; install onnxruntime-gpu instead of onnxruntime'
    return reason


def _library_reason(name: str) -> str | None:
    """Why the provider's shared library does not load (a missing CUDA/cuDNN/TensorRT lib)."""
    short = _PROVIDER_LIBRARIES.get(name)
    if short is None:
        return None
    capi = Path(ort.__file__).parent / 'capi'
    library = capi / f'libonnxruntime_providers_{short}.so'
    if not library.exists():
        return f'{library.name} is missing from {capi}'
    try:
        ctypes.CDLL(str(capi / 'libonnxruntime_providers_shared.so'), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(library))
    except OSError as err:
        return f'its shared library does not load: {err}'
    return None


@contextlib.contextmanager
def _capture_native_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to fd 2 (onnxruntime's log) and echo it afterwards."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode='w+b') as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no usable fd 2: nothing to capture
            yield lines
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode('utf-8', 'replace')
            if text:
                os.write(2, text.encode())
            lines.extend(text.splitlines())


_session_lock = threading.Lock()


def _cache_file(cache_dir: str, model_path: Path, level: str) -> Path:
    # Keyed by model content, onnxruntime version, level and CPU architecture: the optimized
    # graph may hold kernels specific to each.
    digest = hashlib.sha256(model_path.read_bytes())
    digest.update(f'{ort.__version__}|{level}|{platform.machine()}'.encode())
    return Path(cache_dir).expanduser() / f'{model_path.stem}.{digest.hexdigest()[:16]}.onnx'


def threads_beside_other_work(cpus: int | None = None) -> int:
    """Intra-op threads for a model that shares the machine with other busy processes.

    One per CPU this process may run on, less one left to the camera, DDS and smoothing (at
    least one). ONNX Runtime's own default takes every core, so on a small machine its threads
    and the other nodes keep preempting each other; the benchmark report measures both.
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (
            os.cpu_count() or 1)
    return max(1, cpus - 1)


def create_session(model_path: str | Path, providers: Sequence[str], *, strict: bool = False,
                   intra_op_threads: int = 0, graph_optimization: str = 'all',
                   optimized_model_cache: str = '',
                   intra_op_spinning: bool = False) -> tuple[ort.InferenceSession,
                                                             ProviderReport]:
    """Create an onnxruntime session on the requested providers, in order of preference.

    ``providers``: short ('tensorrt', 'cuda', 'cpu') or full onnxruntime names; the CPU is
    always added last as the fallback for unsupported nodes. ``strict``: raise
    :class:`ProviderError` when a requested provider is not active instead of reporting it.
    ``intra_op_threads``: 0 lets onnxruntime choose. ``graph_optimization``: 'disable',
    'basic', 'extended' or 'all'. ``optimized_model_cache``: a folder where the optimized model
    (and TensorRT engines) are kept between runs; '' for none. ``intra_op_spinning``: let idle
    intra-op threads busy-wait for the next run (onnxruntime's default). Off by default: in a
    pipeline that shares the cores with the camera and smoothing processes, the spinning
    threads burn the CPU those need (see tools/bench/pipeline.py and the benchmark report).
    Raises :class:`ModelLoadError` when the file is not a loadable ONNX model.
    """
    model_path = Path(model_path)
    if graph_optimization not in GRAPH_OPTIMIZATION:
        raise ValueError(f'graph_optimization {graph_optimization!r}: expected one of '
                         f'{list(GRAPH_OPTIMIZATION)}')
    if intra_op_threads < 0:
        raise ValueError(f'intra_op_threads {intra_op_threads}: expected >= 0 (0 = automatic)')
    if not model_path.is_file():
        raise ModelLoadError(f'model file {model_path} does not exist')
    available = ort.get_available_providers()
    requested = list(dict.fromkeys(resolve_provider(p) for p in providers)) or [
        'CPUExecutionProvider']
    report = ProviderReport(requested, list(available))
    usable = []
    for name in requested:
        if name in available:
            usable.append(name)
        else:
            report.failures[name] = _not_in_build_reason(name, available)
    if 'CPUExecutionProvider' not in usable:
        usable.append('CPUExecutionProvider')

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.add_session_config_entry('session.intra_op.allow_spinning',
                                     '1' if intra_op_spinning else '0')
    options.graph_optimization_level = GRAPH_OPTIMIZATION[graph_optimization]
    load_path = model_path
    provider_options: list[dict[str, Any]] = [{} for _ in usable]
    accelerated = usable != ['CPUExecutionProvider']
    if optimized_model_cache:
        Path(optimized_model_cache).expanduser().mkdir(parents=True, exist_ok=True)
        # Only CPU sessions save their optimized graph: one with nodes compiled by an
        # accelerator cannot be serialised, and TensorRT keeps its own engine cache instead.
        if not accelerated:
            cached = _cache_file(optimized_model_cache, model_path, graph_optimization)
            if cached.is_file():
                load_path = cached
                options.graph_optimization_level = GRAPH_OPTIMIZATION['disable']
            else:
                options.optimized_model_filepath = str(cached)
        if 'TensorrtExecutionProvider' in usable:
            provider_options[usable.index('TensorrtExecutionProvider')] = {
                'trt_engine_cache_enable': True,
                'trt_engine_cache_path': str(Path(optimized_model_cache).expanduser())}

    capture = _capture_native_stderr() if accelerated else contextlib.nullcontext([])
    # The capture redirects the process-wide fd 2: one session creation at a time.
    with _session_lock, capture as log:
        try:
            session = _new_session(load_path, options, usable, provider_options)
        except _ProviderInitError as err:
            for name in usable[:-1]:
                report.failures[name] = f'onnxruntime failed to initialise it: {err}'
            session = None
    if session is None:
        if strict:
            raise ProviderError(report.summary())
        session = _new_session(load_path, options, ['CPUExecutionProvider'], [{}])
    report.active = list(session.get_providers())
    ort_log = [line for line in log if 'rror' in line or 'ailed' in line]
    for name in usable:
        if name not in report.active and name not in report.failures:
            reason = _library_reason(name) or 'onnxruntime did not enable it'
            if ort_log:
                reason += f' (onnxruntime log: {" | ".join(ort_log[-3:])})'
            report.failures[name] = reason
    if strict and report.failures:
        raise ProviderError(report.summary())
    return session, report


def _new_session(path: Path, options: ort.SessionOptions, providers: list[str],
                 provider_options: list[dict[str, Any]]) -> ort.InferenceSession:
    try:
        # enable_fallback=0: onnxruntime's own fallback only prints to stdout; we report.
        return ort.InferenceSession(str(path), sess_options=options, providers=providers,
                                    provider_options=provider_options, enable_fallback=0)
    except Exception as err:  # onnxruntime raises its own pybind exception types
        text = str(err)
        if providers != ['CPUExecutionProvider'] and 'INVALID_PROTOBUF' not in text \
                and 'NO_SUCHFILE' not in text and 'INVALID_GRAPH' not in text:
            raise _ProviderInitError(text) from err
        raise ModelLoadError(f'onnxruntime cannot load {path}: {text.strip()} (not an ONNX '
                             'model, truncated or corrupt file, or an unsupported opset)') from err

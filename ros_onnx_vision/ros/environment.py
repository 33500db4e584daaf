"""Environment for processes that run nodes: fast image transport and test isolation.

`keep_image_buffers()` tunes glibc's allocator for processes that send or receive frames: call it
once, before rclpy.init(), in every such process (it halves the cross-process latency of a
640x480 frame; see its docstring).

Every entry point that starts nodes (the nodes' own main(), launch files, the demo, the tests)
applies the shipped Fast DDS profile unless the user already chose one, because the default
512 KiB shared-memory segment is smaller than one camera frame: frames then travel as fragmented
UDP on loopback, slowly, and best-effort samples are lost whole.
"""

from __future__ import annotations

from collections.abc import MutableMapping
import ctypes
import os
import platform
import sys

from ros_onnx_vision.resources import config_file

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'  # read by Fast DDS 3 (Kilted and later)
LEGACY_PROFILE_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'  # read by Fast DDS 2 (Jazzy, Humble)
PROFILE_NAME = 'fastdds_shm.xml'


def fastdds_profile() -> str:
    """Absolute path of the shipped Fast DDS profile."""
    return str(config_file(PROFILE_NAME))


def apply_fastdds_profile(env: MutableMapping[str, str] | None = None) -> str:
    """Select the shipped profile in `env` (default: this process) unless one is set already.

    A profile the user chose through either variable is kept and set in both, so it applies
    whichever Fast DDS major version the distro has. Returns the profile in effect. Call it
    before rclpy.init(): Fast DDS reads it once.
    """
    env = os.environ if env is None else env
    profile = env.get(PROFILE_VARIABLE) or env.get(LEGACY_PROFILE_VARIABLE) or fastdds_profile()
    for variable in (PROFILE_VARIABLE, LEGACY_PROFILE_VARIABLE):
        if not env.get(variable):
            env[variable] = profile
    return profile


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


# glibc mallopt() parameters (malloc.h) and the values keep_image_buffers() sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest allowed value on 64-bit: above a 4K bgr8 frame
TRIM_THRESHOLD_BYTES = 64 << 20  # free heap kept at most; >= 3 copies of a 1920x1080 bgr8 frame
_buffers_kept: bool | None = None


def keep_image_buffers() -> bool:
    """Make glibc's malloc reuse freed frame-sized buffers instead of returning them to the kernel.

    rclpy copies every received frame three times (Fast CDR into the C message, that into a
    `bytes`, that into the message's `array.array`) and frees the buffers again after the
    callback. With glibc's defaults, buffers of ~1 MB are either mmap()ed or sit at the top of the
    heap, which free() trims, so every frame faults hundreds of fresh pages back in (slow in
    VMs; README, Performance, has the measured effect). This sets M_MMAP_THRESHOLD to 32 MiB and
    M_TRIM_THRESHOLD to 64 MiB: the process then keeps up to 64 MiB of freed heap for reuse.

    Process-wide and idempotent; call it early (before rclpy.init()). Returns True when the
    thresholds are set, False elsewhere: not glibc, or the user chose malloc thresholds through
    GLIBC_TUNABLES already (kept as they are).
    """
    global _buffers_kept
    if _buffers_kept is None:
        _buffers_kept = _set_malloc_thresholds()
    return _buffers_kept


def _set_malloc_thresholds() -> bool:
    tunables = os.environ.get('GLIBC_TUNABLES', '')
    if 'glibc.malloc.mmap_threshold' in tunables or 'glibc.malloc.trim_threshold' in tunables:
        return False
    if sys.platform != 'linux' or platform.libc_ver()[0] != 'glibc':
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; the mmap threshold first: it also stops glibc's own
    # adjustment of both thresholds.
    return (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)

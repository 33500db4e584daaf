"""glibc malloc tuning for processes that send or receive camera frames.

`keep_image_buffers()` makes freed frame-sized buffers stay in the heap for reuse: call it once,
before rclpy.init(), in every such process.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

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
    VMs; docs/image_transport.md has the measured effect). This sets M_MMAP_THRESHOLD to 32 MiB and
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

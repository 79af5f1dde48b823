"""Steady memory for training: keep glibc from handing freed activation buffers back to the
system after every step, only to fault them in again at the next one.

By default glibc serves allocations over its mmap threshold (128 KB at first, growing as large
blocks are freed, up to 32 MB) with fresh mappings and returns them on free, and trims the heap's
top once 128 KB lie free. A convolutional model's activations are such blocks: every step maps,
touches (page faults) and unmaps them again; a fresh process took 5-7 million minor faults per
epoch of 48,000 images. Raising both thresholds once, at the start of training, keeps those
blocks in the heap for reuse. Memory stays bounded: the heap keeps at most the trim threshold
beyond what is in use, and blocks over the mmap threshold still go back at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20

_state: dict[str, str] = {}


def keep_freed_memory() -> str:
    """Raise glibc's mmap and trim thresholds once per process (``AELAB_MALLOC=system`` leaves
    the allocator alone); what the allocator does now, in words."""
    if "allocator" in _state:
        return _state["allocator"]
    text = "the system allocator's defaults"
    if os.environ.get("AELAB_MALLOC", "keep") != "system" and sys.platform.startswith("linux"):
        libc = _glibc()
        if libc is not None:
            ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
            if ok:
                text = (
                    f"glibc keeping freed blocks up to {MMAP_THRESHOLD >> 20} MB "
                    f"(heap trimmed past {TRIM_THRESHOLD >> 20} MB free)"
                )
    _state["allocator"] = text
    return text


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl and others have no mallopt)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p  # glibc only
        libc.gnu_get_libc_version.argtypes = []
        if not libc.gnu_get_libc_version():
            return None
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None

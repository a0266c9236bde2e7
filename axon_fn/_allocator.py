"""Keeps freed memory for reuse: glibc's allocator tuned for a training loop's pattern.

A training step allocates and frees the same large arrays (activations, gradients, optimizer
moments) over and over. glibc's defaults hand big blocks back to the system as soon as they are
freed (mmap above a threshold, and trimming the heap top), so the next step takes the same
memory back page by page, paying a page fault for every 4 KiB: a fifth to a third of a conv
net's step on a 2-core machine. Raising the mmap and trim thresholds keeps those blocks in the
process for the next step; the cost is that up to ``TRIM_THRESHOLD`` bytes of freed memory stay
mapped.

Applied once, when axon_fn is imported, on Linux with glibc only; ``AXON_FN_ALLOCATOR=default``
leaves the allocator alone. ``axon_fn.backend_info()["allocator"]`` tells what was done.

>>> status() in ("tuned", "default", "not glibc", "failed")
True
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["tune", "status"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20  # blocks above this still come straight from the system
TRIM_THRESHOLD = 256 << 20
TOP_PAD = 64 << 20

_status = {"value": None}


def tune():
    """Tune glibc's allocator once (see the module docstring); returns the status."""
    if _status["value"] is not None:
        return _status["value"]
    if os.environ.get("AXON_FN_ALLOCATOR", "").strip().lower() == "default":
        _status["value"] = "default"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _status["value"] = "not glibc"
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            done = all(mallopt(param, value) == 1 for param, value in (
                (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (_M_TOP_PAD, TOP_PAD)))
            _status["value"] = "tuned" if done else "failed"
        except (OSError, AttributeError):
            _status["value"] = "failed"
    return _status["value"]


def status():
    """``"tuned"``, ``"default"`` (left alone on request), ``"not glibc"`` or ``"failed"``."""
    return tune()

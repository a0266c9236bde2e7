"""Loads the compiled C kernels (``axon_fn._native_kernels``, built by cffi at install time).

If the extension is missing (no compiler at install time, or a failed build), axon_fn runs on its
numpy path and warns once with :class:`NativeUnavailableWarning`. ``AXON_FN_NATIVE=0`` forces the
numpy path without a warning.
"""

from __future__ import annotations

import os
import warnings

from .errors import NativeUnavailableWarning

_state = {"lib": None, "ffi": None, "status": None}


def _load():
    if _state["status"] is not None:
        return
    if os.environ.get("AXON_FN_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        _state["status"] = "disabled by AXON_FN_NATIVE=0"
        return
    configure_openmp()
    try:
        from . import _native_kernels
    except ImportError as err:
        _state["status"] = f"not built ({err})"
        warnings.warn(
            "axon_fn: the C kernels are not built, so the numpy path is used (slower for conv, "
            "pooling and softmax). Reinstall with a C compiler present to build them, or set "
            "AXON_FN_NATIVE=0 to silence this warning.",
            NativeUnavailableWarning,
            stacklevel=4,
        )
        return
    _state["lib"], _state["ffi"] = _native_kernels.lib, _native_kernels.ffi
    _state["status"] = "loaded"
    threads = _default_threads()
    if threads is not None:
        set_num_threads(threads)


def configure_openmp():
    """How idle OpenMP threads wait, set before the OpenMP runtime loads (it reads the
    environment once) unless the user set it: they spin for about 10,000 pauses (tens to
    hundreds of microseconds), then sleep. Spinning for long fights numpy's BLAS threads and
    any other busy process for the cores, which can make a 0.2 ms kernel take a whole scheduler
    slice (~10 ms); sleeping at once makes every parallel loop wake its threads, which cost a
    compiled matrix-vector product at batch 1 half its speed (38 against 65 us)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ["GOMP_SPINCOUNT"] = "10000"  # GNU OpenMP: this many pauses, then sleep


def requested_threads():
    """The thread count ``AXON_FN_NUM_THREADS`` asks for (at least 1), or None when it is
    unset (or not a number, which is warned of)."""
    value = os.environ.get("AXON_FN_NUM_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            warnings.warn(f"axon_fn: AXON_FN_NUM_THREADS={value!r} is not a number; ignored",
                          RuntimeWarning, stacklevel=4)
    return None


def _default_threads():
    """``AXON_FN_NUM_THREADS`` when set; else one thread on a machine of two cores or fewer,
    where numpy's BLAS threads already hold both cores between calls: an OpenMP team sharing
    them made a LeNet training step 25 % slower (6.0 against 4.6 ms, measured on 2 cores);
    else OpenMP's own default (``OMP_NUM_THREADS`` or every core)."""
    requested = requested_threads()
    if requested is not None:
        return requested
    return 1 if (os.cpu_count() or 1) <= 2 else None


def available():
    """True when the C kernels are loaded and in use."""
    _load()
    return _state["lib"] is not None


def status():
    """A short human-readable description of the native kernels' state."""
    _load()
    return _state["status"]


def lib():
    """The cffi ``lib`` object of the kernels (``None`` on the numpy path)."""
    _load()
    return _state["lib"]


def ffi():
    _load()
    return _state["ffi"]


def set_num_threads(n):
    """Use ``n`` threads in the C kernels from now on (a no-op on the numpy path)."""
    library = lib()
    if library is not None and hasattr(library, "axon_set_num_threads"):
        library.axon_set_num_threads(int(n))


def num_threads():
    """Threads the C kernels use (OpenMP), or 1 without them."""
    library = lib()
    if library is None or not hasattr(library, "axon_num_threads"):
        return 1
    return int(library.axon_num_threads())

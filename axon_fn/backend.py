"""Array backends: numpy (reference), the native C kernels, and CuPy on NVIDIA GPUs.

cupy is never imported by ``import axon_fn``; it is imported when a cupy array or a ``"cuda"``
device is first seen.

>>> import numpy as np
>>> array_module(np.zeros(3)) is np
True
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from . import _allocator, _native
from ._core import AbstractArray, backing_value, full_value
from .errors import BackendMismatchError
from .typing import PyTree

__all__ = ["array_module", "is_gpu_array", "device_put", "to_numpy", "backend_info"]


def is_gpu_array(x: Any) -> bool:
    """True for a cupy array (without importing cupy)."""
    return type(backing_value(x)).__module__.split(".", 1)[0] == "cupy"


def array_module(*xs: Any) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) of the given arrays; scalars count as numpy.

    Raises :class:`BackendMismatchError` when numpy and cupy arrays are mixed.
    """
    gpu = [is_gpu_array(x) for x in xs if not isinstance(full_value(x), (AbstractArray,))]
    if any(gpu):
        if not all(gpu) and any(isinstance(backing_value(x), np.ndarray) for x in xs):
            raise BackendMismatchError("numpy and cupy arrays were mixed; use axon_fn.device_put")
        import cupy

        return cupy
    return np


def _parse_device(device):
    if device in (None, "cpu"):
        return "cpu", None
    if isinstance(device, str) and device.startswith("cuda"):
        _, _, index = device.partition(":")
        return "cuda", int(index) if index else 0
    raise ValueError(f"device_put: unknown device {device!r}; expected 'cpu', 'cuda' or 'cuda:N'")


def device_put(tree: PyTree, device: str = "cpu") -> PyTree:
    """Move every array leaf of ``tree`` to ``device`` (``"cpu"``, ``"cuda"`` or ``"cuda:N"``).

    Leaves already on the target device are returned as they are (no copy); numpy arrays reach
    the GPU through one host-to-device copy each.

    >>> params = {"w": np.ones((2, 2), np.float32)}
    >>> device_put(params, "cpu")["w"] is params["w"]
    True
    """
    kind, index = _parse_device(device)
    if kind == "cpu":
        return to_numpy(tree)
    import cupy

    def put(leaf):
        with cupy.cuda.Device(index):
            if is_gpu_array(leaf) and leaf.device.id == index:
                return leaf
            return cupy.asarray(leaf)

    return optree.tree_map(put, tree)


def to_numpy(tree: PyTree) -> PyTree:
    """Every array leaf of ``tree`` as a numpy array (GPU arrays are copied to the host).

    >>> to_numpy({"a": [np.float32(1.0)]})["a"][0].dtype
    dtype('float32')
    """

    def get(leaf):
        leaf = full_value(leaf)
        if is_gpu_array(leaf):
            return leaf.get()
        return leaf

    return optree.tree_map(get, tree)


def _blas_info():
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # numpy builds without the dict config
        return "unknown"


def _jit_status():
    from . import _compile  # the jit's native backend: compiler and cache, on demand

    return _compile.status()


def backend_info() -> dict[str, Any]:
    """What axon_fn runs on: native kernels, BLAS, numpy version, CuPy and GPUs.

    >>> sorted(backend_info())  # doctest: +NORMALIZE_WHITESPACE
    ['allocator', 'blas', 'cupy', 'gpu_count', 'jit', 'native', 'native_detail', 'numpy',
     'openblas_coretype', 'threads']
    """
    gpu_count = 0
    cupy_version = None
    try:
        import importlib.util

        if importlib.util.find_spec("cupy") is not None:
            import cupy

            cupy_version = cupy.__version__
            gpu_count = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        gpu_count = 0
    return {
        "native": _native.available(),
        "native_detail": _native.status(),
        "blas": _blas_info(),
        "numpy": np.__version__,
        "threads": _native.num_threads(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "allocator": _allocator.status(),
        "jit": _jit_status(),
        "cupy": cupy_version,
        "gpu_count": gpu_count,
    }

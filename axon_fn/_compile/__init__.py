"""The native backend of ``axon_fn.jit``: a recorded program lowered to C and compiled.

``lowering`` says what each primitive becomes, ``schedule`` groups the steps into fused loops,
``memory`` places every value (registers, the arena, the io table), ``emit`` writes the C,
``toolchain`` compiles and caches it, ``program`` runs it, and ``runtime.h`` (matrix products,
helpers) is included by every program. On CuPy arrays, ``cupy_program`` makes each fused loop
one ``cupy.ElementwiseKernel`` instead. Steps without a lowering run as calls out to their
Python kernels inside the compiled program, so every program runs; without a C compiler,
``jit`` keeps its Python replay and ``backend_info()`` says why.

Settings (environment): ``AXON_FN_JIT=python`` keeps every program on the Python replay;
``AXON_FN_JIT_COMPILE_AFTER=N`` compiles a program on its N-th call (default 2: a function
called once is not worth a compile); ``AXON_FN_CACHE_DIR`` moves the compiled programs;
``AXON_FN_JIT_OWN_GEMM=0`` keeps the big float products of programs loaded from then on on
the BLAS instead of axon_fn's own (``native/axon_gemm.c``, AVX-512 only).
"""

from __future__ import annotations

import os

from . import toolchain
from .toolchain import Unavailable, cache_dir, set_cache_dir

__all__ = ["Unavailable", "compile_native", "compile_cupy", "compile_after", "default_backend",
           "status", "cache_dir", "set_cache_dir"]

BACKENDS = ("auto", "native", "python")


def compile_after():
    """On which call a program of the default (``"auto"``) backend is compiled."""
    try:
        return int(os.environ.get("AXON_FN_JIT_COMPILE_AFTER", "2"))
    except ValueError:
        return 2


def default_backend():
    """``"python"`` when ``AXON_FN_JIT=python`` or the native kernels are switched off
    (``AXON_FN_NATIVE=0``), else ``"auto"``."""
    if os.environ.get("AXON_FN_JIT", "").lower() == "python":
        return "python"
    if os.environ.get("AXON_FN_NATIVE", "1") == "0":
        return "python"
    return "auto"


def compile_native(steps, origins, avals, constants, inputs, outputs, donated=(), *, fallback):
    """A compiled program for a recording's live steps (see :mod:`.program`)."""
    from .program import compile_native as build

    return build(steps, origins, avals, constants, inputs, outputs, fallback, donated)


def compile_cupy(steps, origins, avals, constants, inputs, outputs, *, fallback):
    """Fused CuPy kernels for a recording made on CuPy arrays (see :mod:`.cupy_program`)."""
    import importlib

    from .cupy_program import compile_cupy as build

    return build(steps, origins, avals, constants, inputs, outputs, fallback=fallback,
                 cupy=importlib.import_module("cupy"))


def status():
    """The native jit backend's state: on or off and why, the compiler, the cache."""
    backend = default_backend()
    info = {"backend": "native" if backend == "auto" else "python", "detail": None,
            "compiler": None, "cache_dir": cache_dir(), "compile_after": compile_after()}
    if backend == "python":
        info["detail"] = "AXON_FN_JIT=python or AXON_FN_NATIVE=0"
        return info
    try:
        command, version = toolchain.compiler_info()
    except Unavailable as why:
        info["backend"], info["detail"] = "python", str(why)
        return info
    info["compiler"] = f"{' '.join(command)} ({version})"
    return info

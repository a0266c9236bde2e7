"""Compile generated C into a shared library, cache it on disk, and load it through cffi.

The compiler is the one Python was built with (``CC`` overrides it), the same one the kernels
module needs at install time. A program's library is cached under a key made of its source,
the runtime headers, the compiler (its resolved path, size and time: an upgrade changes the
key, and loading a cached program never runs the compiler), the flags and the CPU
(``-march=native`` code runs only where its instructions exist), in ``AXON_FN_CACHE_DIR`` or
the user cache directory (``~/.cache/axon_fn/jit``); a later process loads it without
compiling. Writes are atomic (compile to a temporary name, then rename), so processes sharing
the cache never see half a library.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading

__all__ = ["Unavailable", "build", "cache_dir", "set_cache_dir", "compiler", "compiler_info",
           "blas_gemm", "blas_thread_control", "threads", "header_text"]

RUNTIME = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime.h")
SCALAR = os.path.join(os.path.dirname(RUNTIME), "scalar.h")  # runtime.h includes it
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp",
         "-std=gnu11", "-fPIC", "-shared", "-w")
# what a compiler that refuses a flag gets instead (-fopenmp: the loops then run on one thread),
# when its message names the flag or what it needs: any other error is an error in the source,
# which a retry without the flag would hide
_FALLBACKS = (("-march=native", None, ("march",)),
              ("-fopenmp", "-fopenmp-simd", ("openmp", "omp.h", "gomp", "-lomp")))
_cache_dir = None
_lock = threading.Lock()


class Unavailable(Exception):
    """Why the native backend cannot compile here (no compiler, a failed compile)."""


def cache_dir():
    """The directory of cached programs (created on first use)."""
    if _cache_dir is not None:
        return _cache_dir
    env = os.environ.get("AXON_FN_CACHE_DIR")
    if env:
        return env
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "axon_fn", "jit")


def set_cache_dir(path):
    """Put compiled programs under ``path`` (None: back to the default)."""
    global _cache_dir
    _cache_dir = None if path is None else os.fspath(path)


@functools.lru_cache(maxsize=None)
def compiler():
    """``(command, identity)`` of the C compiler: its command line, and its resolved path,
    size and modification time (what the cache key needs, without running it). Raises
    :class:`Unavailable` when there is none."""
    chosen = os.environ.get("CC")
    cc = chosen or sysconfig.get_config_var("CC") or "cc"
    command = shlex.split(cc)
    if chosen and (not command or shutil.which(command[0]) is None):
        raise Unavailable(f"no C compiler: CC={chosen!r} is not on PATH")
    if not command or shutil.which(command[0]) is None:  # Python's own, built elsewhere
        for fallback in ("cc", "gcc", "clang"):
            if shutil.which(fallback):
                command = [fallback]
                break
        else:
            raise Unavailable(f"no C compiler found ({cc!r} is not on PATH)")
    path = os.path.realpath(shutil.which(command[0]))
    stat = os.stat(path)
    return tuple(command), f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


@functools.lru_cache(maxsize=None)
def compiler_info():
    """``(command, version line)`` of the C compiler, or raise :class:`Unavailable`."""
    command, _ = compiler()
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        raise Unavailable(f"the C compiler {command[0]!r} does not run: {err}") from err
    version = (done.stdout or done.stderr).strip().splitlines()
    return command, version[0] if version else "unknown"


@functools.lru_cache(maxsize=None)
def _cpu_signature():
    """What decides which instructions ``-march=native`` may use."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return hashlib.sha256(line.encode()).hexdigest()[:16]
    except OSError:
        pass
    return platform.machine() + platform.processor()


def threads():
    """How many threads a compiled program's big loops and matrix-vector products use:
    ``AXON_FN_NUM_THREADS`` when set, else the cores this process may run on."""
    from .. import _native

    requested = _native.requested_threads()
    if requested is not None:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=None)
def blas_gemm():
    """``(addresses, int type)``: the addresses of CBLAS ``sgemm`` and ``dgemm`` in the BLAS
    numpy loaded, or zeros when none is found (products then use the C kernels)."""
    found = _blas()
    if found is None:
        return (0, 0), "int"
    lib, prefix, suffix, int_type = found
    return tuple(_address(lib, f"{prefix}cblas_{name}{suffix}")
                 for name in ("sgemm", "dgemm")), int_type


@functools.lru_cache(maxsize=None)
def blas_thread_control():
    """``(set, get)``: the addresses of the BLAS's ``openblas_set_num_threads`` and
    ``openblas_get_num_threads`` (OpenBLAS's own: other BLAS libraries name theirs otherwise),
    or None."""
    found = _blas()
    if found is None:
        return None
    lib, prefix, suffix, _ = found
    try:
        return tuple(_address(lib, f"{prefix}openblas_{name}_num_threads{suffix}")
                     for name in ("set", "get"))
    except AttributeError:
        return None


@functools.lru_cache(maxsize=None)
def _blas():
    """``(library, symbol prefix, symbol suffix, C type of its integers)`` of the BLAS numpy
    loaded (found among the libraries mapped into this process), or None."""
    import numpy  # noqa: F401 - loads its BLAS into the process

    names = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "blas" in os.path.basename(path).lower() and path not in names:
                    names.append(path)
    except OSError:
        return None
    for path in names:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix, int_type in (("scipy_", "64_", "int64_t"), ("", "64_", "int64_t"),
                                         ("scipy_", "", "int"), ("", "", "int")):
            if hasattr(lib, f"{prefix}cblas_sgemm{suffix}") and \
                    hasattr(lib, f"{prefix}cblas_dgemm{suffix}"):
                return lib, prefix, suffix, int_type
    return None


@functools.lru_cache(maxsize=None)
def header_text(path):
    """The text of one of the package's C headers (read once a process)."""
    with open(path) as f:
        return f.read()


def _address(lib, name):
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def build(source, exports):
    """Compile (or find in the cache) ``source`` and return ``(ffi, lib, seconds, cached)``:
    the library loaded through cffi with the functions ``exports`` declared."""
    import time

    from cffi import FFI

    command, identity = compiler()
    runtime = header_text(RUNTIME) + header_text(SCALAR)
    key = hashlib.sha256("\0".join([source, runtime, identity, " ".join(FLAGS),
                                    _cpu_signature(), sys.platform]).encode()).hexdigest()[:24]
    directory = cache_dir()
    path = os.path.join(directory, f"axon_{key}.so")
    started = time.perf_counter()
    cached = os.path.exists(path)
    if not cached:
        with _lock:
            if not os.path.exists(path):
                _compile(command, source, directory, path)
    ffi = FFI()
    ffi.cdef("\n".join(exports))
    lib = ffi.dlopen(path)
    return ffi, lib, time.perf_counter() - started, cached


def _compile(command, source, directory, path):
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise Unavailable(f"the jit cache directory {directory!r} cannot be made: {err}") from err
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        c_file = os.path.join(tmp, "program.c")
        with open(c_file, "w") as f:
            f.write(source)
        out = os.path.join(tmp, "program.so")
        args = [*command, *FLAGS, f"-I{os.path.dirname(RUNTIME)}", "-o", out, c_file, "-lm"]
        done = _run(args)
        for flag, instead, signs in _FALLBACKS:
            if done.returncode == 0:
                break
            if not any(sign in done.stderr for sign in signs):
                continue
            args = [a for a in (instead if a == flag else a for a in args) if a is not None]
            done = _run(args)
        if done.returncode != 0:
            raise Unavailable(f"compiling a jit program failed: {done.stderr.strip()[-2000:]}")
        os.replace(out, path)


def _run(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        raise Unavailable(f"the C compiler did not run: {err}") from err

"""cffi build script of axon_fn's C kernels: the extension module ``axon_fn._native_kernels``.

setup.py names it in ``cffi_modules``; ``python native/build_native.py`` also builds it in place
(for working on the kernels without reinstalling).

Sources: ``axon_kernels.h`` declares every export (cffi's cdef reads its CDEF block; a family
with a header of its own, ``quantize.h``, is listed in ``HEADERS``); ``SOURCES``
lists the C files compiled into the one extension, one per kernel family, each instantiated for
float and double through ``axon_template.h`` on the helpers of ``axon_common.h``. A new C file
goes into ``SOURCES`` and into MANIFEST.in (the sdist must carry it).

Compiler flags: ``-O3 -ffp-contract=fast -fno-trapping-math`` (the last lets selects vectorize;
never ``-ffast-math``: NaN and inf must behave as in numpy; never ``-march=native``: the binary
must run on other CPUs of the architecture), plus
OpenMP (``-fopenmp``) when a probe shows the configured compiler can compile and link it, else
``-fopenmp-simd`` alone when available. A failed probe never fails the build; a missing compiler
fails it, which setup.py turns into a message (axon_fn then runs on its numpy path).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "axon_kernels.h")
# Every header whose CDEF block cffi reads, in order: the kernels' one, then the families that
# keep their own header (int8 quantization: quantize.h).
HEADERS = [HEADER, os.path.join(HERE, "quantize.h")]

# The C files of the extension, relative to the repository root (setup.py builds from there).
SOURCES = [
    "native/axon_kernels.c",  # the exports of no family: thread count
    "native/axon_conv.c",  # im2col / col2im, direct convolutions
    "native/axon_pool.c",  # max and average pooling
    "native/axon_softmax.c",  # softmax, log-softmax, softmax cross-entropy
    "native/axon_elementwise.c",  # activations, a dense layer's bias + ReLU
    "native/axon_optim.c",  # optimizer updates (Adam)
    "native/axon_gemm.c",  # the float matrix product of the jit's compiled programs
    "native/quantize.c",  # int8 weight-only matrix product (declared in quantize.h)
]

_PROBE_OPENMP = r"""
#include <omp.h>
int main(void) {
    double acc[64] = {0};
    int threads = omp_get_max_threads();
#pragma omp parallel for collapse(2) schedule(static) if (threads > 0)
    for (long i = 0; i < 8; i++)
        for (long j = 0; j < 8; j++)
            acc[i * 8 + j] = (double)(i + j);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < 64; k++)
        s += acc[k];
    return s > 0 ? 0 : 1;
}
"""

_PROBE_PLAIN = r"""
int main(void) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < 64; k++)
        s += k;
    return s > 0 ? 0 : 1;
}
"""


def _cdef_source():
    """The declarations between the CDEF markers of the headers (cffi cannot read
    directives)."""
    parts = []
    for header in HEADERS:
        with open(header) as f:
            text = f.read()
        match = re.search(r"/\* CDEF BEGIN \*/(.*)/\* CDEF END \*/", text, re.S)
        if match is None:
            raise RuntimeError(f"{header}: no CDEF BEGIN/END markers")
        parts.append(re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S))
    return "\n".join(parts)


def _compiler_command():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def _compiles(source, flags):
    """True when the configured compiler compiles and links ``source`` with ``flags``."""
    try:
        with tempfile.TemporaryDirectory(prefix="axon_fn_probe_") as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(source)
            cmd = [*_compiler_command(), *flags, src, "-o", os.path.join(tmp, "probe")]
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=120, check=False)
            return done.returncode == 0
    except Exception:  # no compiler, no permission, timeout: just "no"
        return False


def compiler_flags():
    """(extra_compile_args, extra_link_args) for this platform's configured compiler."""
    if sys.platform == "win32" and not os.environ.get("CC"):
        return ["/O2"], []  # MSVC: its OpenMP 2.0 lacks collapse and simd; stay serial
    base = ["-O3", "-ffp-contract=fast", "-fno-trapping-math", "-fno-math-errno"]
    if not _compiles(_PROBE_PLAIN, base):
        base = ["-O3"] if _compiles(_PROBE_PLAIN, ["-O3"]) else []
    if _compiles(_PROBE_OPENMP, [*base, "-fopenmp"]):
        return [*base, "-fopenmp"], ["-fopenmp"]
    if _compiles(_PROBE_PLAIN, [*base, "-fopenmp-simd"]):
        print("axon_fn: OpenMP is not available; the C kernels will run on one thread.",
              file=sys.stderr)
        return [*base, "-fopenmp-simd"], []
    return base, []


_compile_args, _link_args = compiler_flags()

ffibuilder = FFI()
ffibuilder.cdef(_cdef_source())
ffibuilder.set_source(
    "axon_fn._native_kernels",
    "".join(f'#include "{os.path.basename(h)}"\n' for h in HEADERS),
    sources=SOURCES,
    include_dirs=["native"],
    extra_compile_args=_compile_args,
    extra_link_args=_link_args,
    libraries=[] if sys.platform == "win32" else ["m"],
)

if __name__ == "__main__":
    # In-place build from the repository root: python native/build_native.py
    os.chdir(os.path.dirname(HERE))
    ffibuilder.compile(tmpdir=".", verbose=True)

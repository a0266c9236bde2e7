"""What the native jit's test files share: whether a C compiler is here to compile programs."""

import pytest

from axon_fn._compile import toolchain

try:
    toolchain.compiler()
    HAVE_CC = True
except toolchain.Unavailable:
    HAVE_CC = False

needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler")

"""axon_fn's array operations: differentiable primitives and compositions of them.

Every function takes numpy arrays, cupy arrays, Python scalars, traced values (inside ``grad``)
or :class:`~axon_fn.AbstractArray` shapes (inside ``eval_shape``), and broadcasts like numpy.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.sum(ops.exp(np.zeros((2, 3))), axis=1)
array([3., 3.])
"""

from .._core import PRIMITIVES, AbstractArray
from . import _operators
from .creation import arange, eye, full, full_like, ones, ones_like, zeros, zeros_like
from .elementwise import (
    abs, add, astype, ceil, clip, cos, divide, equal, erf, exp, expm1, floor, greater,
    greater_equal, isfinite, isnan, less, less_equal, log, log1p, logical_and, logical_not,
    logical_or, logical_xor, maximum, minimum, multiply, negative, not_equal, power, relu,
    relu_grad, round, rsqrt, sigmoid, sigmoid_grad, sign, sin, sqrt, subtract, tanh, tanh_grad,
    where,
)
from .linalg import matmul
from .reductions import argmax, argmin, cumsum, logsumexp, max, mean, min, prod, sum, var
from .shape import broadcast_to, expand_dims, reshape, squeeze, swapaxes, transpose
# Family modules are bound under private names first: several export a function named like
# their module (einsum, softmax), which the star imports below rebind.
from . import conv as _conv, einsum as _einsum, indexing as _indexing
from . import manipulation as _manipulation, pool as _pool, softmax as _softmax
from . import fused  # noqa: E402 - layer-sized primitives (ops.fused.dense), not flattened
from .manipulation import *  # noqa: F401,F403,E402
from .indexing import *  # noqa: F401,F403,E402
from .einsum import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from .pool import *  # noqa: F401,F403,E402
from .softmax import *  # noqa: F401,F403,E402

_operators.install()
_operators.install_indexing(_indexing.getitem)

__all__ = sorted(
    {
        "PRIMITIVES", "AbstractArray",
        "arange", "eye", "full", "full_like", "ones", "ones_like", "zeros", "zeros_like",
        "abs", "add", "astype", "ceil", "clip", "cos", "divide", "equal", "erf", "exp", "expm1",
        "floor", "greater", "greater_equal", "isfinite", "isnan", "less", "less_equal", "log",
        "log1p", "logical_and", "logical_not", "logical_or", "logical_xor", "maximum", "minimum",
        "multiply", "negative", "not_equal", "power", "relu", "relu_grad", "round", "rsqrt",
        "sigmoid", "sigmoid_grad", "sign", "sin", "sqrt", "subtract", "tanh", "tanh_grad", "where",
        "matmul",
        "argmax", "argmin", "cumsum", "logsumexp", "max", "mean", "min", "prod", "sum", "var",
        "broadcast_to", "expand_dims", "reshape", "squeeze", "swapaxes", "transpose",
    }
    | set(_manipulation.__all__) | set(_indexing.__all__) | set(_einsum.__all__)
    | set(_conv.__all__) | set(_pool.__all__) | set(_softmax.__all__)
)

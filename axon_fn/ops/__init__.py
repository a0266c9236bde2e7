"""axon_fn's array operations: differentiable primitives and compositions of them.

Every function takes numpy arrays, cupy arrays, Python scalars and lists, traced values
(inside ``grad``), staged values (inside ``jit``) or :class:`~axon_fn.AbstractArray` shapes
(inside ``eval_shape``), broadcasts like numpy, and has numpy's signature: ``ops.sum(x, 1)``,
``ops.reshape(x, (6, 4))``, ``ops.clip(x, a_min=0, a_max=1)`` bind as numpy binds them
(``guides/arrays.md`` lists the functions and the few deliberate differences).
``ops.linalg`` mirrors ``numpy.linalg``.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.sum(ops.exp(np.zeros((2, 3))), 1)
array([3., 3.])
"""

from .._core import PRIMITIVES, AbstractArray
from . import _operators
from .creation import (
    arange, empty, eye, full, full_like, identity, linspace, ones, ones_like, zeros, zeros_like,
)
from .elementwise import (
    abs, add, astype, ceil, clip, cos, divide, equal, erf, exp, expm1, floor, floor_divide,
    greater, greater_equal, isfinite, isnan, less, less_equal, log, log1p, logical_and,
    logical_not, logical_or, logical_xor, maximum, minimum, mod, multiply, negative, not_equal,
    power, relu, relu_grad, round, rsqrt, sigmoid, sigmoid_grad, sign, sin, sqrt, subtract,
    tanh, tanh_grad, where,
)
from . import linalg  # noqa: E402 - numpy.linalg's functions, plus matmul
from .linalg import matmul
from .reductions import (
    all, any, argmax, argmin, cumsum, logsumexp, max, mean, min, prod, std, sum, var,
)
from .shape import broadcast_to, expand_dims, reshape, squeeze, swapaxes, transpose
# Family modules are bound under private names first: several export a function named like
# their module (einsum, softmax), which the star imports below rebind.
from . import arrange as _arrange, conv as _conv, einsum as _einsum, indexing as _indexing
from . import manipulation as _manipulation, pool as _pool, softmax as _softmax
from . import sorting as _sorting, statistics as _statistics, ufuncs as _ufuncs
from . import fused  # noqa: E402 - layer-sized primitives (ops.fused.dense), not flattened
from .manipulation import *  # noqa: F401,F403,E402
from .indexing import *  # noqa: F401,F403,E402
from .einsum import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from .pool import *  # noqa: F401,F403,E402
from .softmax import *  # noqa: F401,F403,E402
from .ufuncs import *  # noqa: F401,F403,E402
from .sorting import *  # noqa: F401,F403,E402
from .statistics import *  # noqa: F401,F403,E402
from .arrange import *  # noqa: F401,F403,E402

_operators.install()
_operators.install_indexing(_indexing.getitem)

__all__ = sorted(
    {
        "PRIMITIVES", "AbstractArray", "linalg",
        "arange", "empty", "eye", "full", "full_like", "identity", "linspace", "ones",
        "ones_like", "zeros", "zeros_like",
        "abs", "add", "astype", "ceil", "clip", "cos", "divide", "equal", "erf", "exp", "expm1",
        "floor", "floor_divide", "greater", "greater_equal", "isfinite", "isnan", "less",
        "less_equal", "log", "log1p", "logical_and", "logical_not", "logical_or", "logical_xor",
        "maximum", "minimum", "mod", "multiply", "negative", "not_equal", "power", "relu",
        "relu_grad", "round", "rsqrt", "sigmoid", "sigmoid_grad", "sign", "sin", "sqrt",
        "subtract", "tanh", "tanh_grad", "where",
        "matmul",
        "all", "any", "argmax", "argmin", "cumsum", "logsumexp", "max", "mean", "min", "prod",
        "std", "sum", "var",
        "broadcast_to", "expand_dims", "reshape", "squeeze", "swapaxes", "transpose",
    }
    | set(_manipulation.__all__) | set(_indexing.__all__) | set(_einsum.__all__)
    | set(_conv.__all__) | set(_pool.__all__) | set(_softmax.__all__) | set(_ufuncs.__all__)
    | set(_sorting.__all__) | set(_statistics.__all__) | set(_arrange.__all__)
)

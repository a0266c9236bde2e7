"""Installs the C kernels (``native/*.c``) as the CPU implementations of their primitives.

Each wrapper takes exactly its primitive's signature. It runs the C kernel when the case is one the
kernels cover (numpy float32/float64 arrays of one dtype, shapes that fit, the reduced axis moved
last) and otherwise calls the primitive's numpy implementation (``PRIMITIVES[name].numpy_cpu``),
so every case stays correct and every error message stays the numpy path's. Outputs are allocated
here with numpy; the kernels only read and write the buffers. Convolutions with one feature group
and few channels run on direct C kernels; the others are im2col / col2im in C around a matrix
product on numpy's BLAS. A dense layer's bias and ReLU are one C pass over numpy's product. The
tanh forward kernel exists but is not installed (``SPARE_WRAPPERS``): numpy's own tanh loop is
as fast.

>>> install()  # idempotent; does nothing without the compiled kernels
"""

from __future__ import annotations

import math
import operator

import numpy as np

from . import _native
from ._core import PRIMITIVES

__all__ = ["install", "uninstall", "WRAPPERS", "SPARE_WRAPPERS", "ELEMENTWISE_MIN_SIZE"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_CTYPES = {_F32: "float[]", _F64: "double[]"}

#: Below this many elements an elementwise activation stays on numpy, whose single-pass loops beat
#: the call into C on small arrays (measured crossovers; the tests set them to 0).
ELEMENTWISE_MIN_SIZE = {
    "relu": 16384, "relu_grad": 1024, "sigmoid": 0, "sigmoid_grad": 8192, "tanh": 8192,
    "tanh_grad": 8192, "dense": 8192,
}

_ffi = None
_kernels: dict = {}  # kernel base name -> {dtype: cffi function}


def _fallback(name):
    return PRIMITIVES[name].numpy_cpu


def _buf(a):
    return _ffi.from_buffer(_CTYPES[a.dtype], a)


def _labels_buf(a):
    return _ffi.from_buffer("int64_t[]", a)


def _kernel(base, *arrays):
    """The kernel for the arrays' common dtype, or None (not numpy, mixed or unsupported dtypes)."""
    first = arrays[0]
    if type(first) is not np.ndarray:
        return None
    dtype = first.dtype
    for a in arrays[1:]:
        if type(a) is not np.ndarray or a.dtype != dtype:
            return None
    return _kernels[base].get(dtype)


def _c(a):
    """``a`` C-contiguous, with its shape kept (``np.ascontiguousarray`` makes a 0-d array
    1-d)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _ints(value, n=None):
    """A tuple of Python ints (exactly ``n`` of them when given), or None."""
    try:
        out = tuple(operator.index(v) for v in value)
    except TypeError:
        return None
    return out if n is None or len(out) == n else None


def _pairs(padding, n):
    try:
        out = tuple(_ints(p, 2) for p in padding)
    except TypeError:
        return None
    if len(out) != n or any(p is None for p in out):
        return None
    return out


def _axis(axis, ndim):
    """A single axis as a non-negative int, or None when it is anything else."""
    if isinstance(axis, (tuple, list)):
        if len(axis) != 1:
            return None
        axis = axis[0]
    try:
        axis = operator.index(axis)
    except TypeError:
        return None
    if not -ndim <= axis < ndim:
        return None
    return axis % ndim


# Elementwise activations ---------------------------------------------------------------------


def _unary(name, base):
    def wrapper(x):
        kernel = _kernel(base, x)
        if kernel is None or x.size < ELEMENTWISE_MIN_SIZE[name]:
            return _fallback(name)(x)
        x = _c(x)
        out = np.empty(x.shape, x.dtype)
        kernel(_buf(x), _buf(out), x.size)
        return out

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def _grad(name, base):
    def wrapper(g, ans):
        kernel = _kernel(base, g, ans)
        if kernel is None or g.shape != ans.shape or g.size < ELEMENTWISE_MIN_SIZE[name]:
            return _fallback(name)(g, ans)
        g, ans = _c(g), _c(ans)
        out = np.empty(g.shape, g.dtype)
        kernel(_buf(g), _buf(ans), _buf(out), g.size)
        return out

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


# Dense layer ---------------------------------------------------------------------------------


def dense(x, kernel, *bias, activation=None):
    """``activation(x @ kernel + bias)``: numpy's product, then the bias and ReLU in one pass over
    its buffer in C (numpy's float32 maximum is several times slower than a select)."""
    # the cheap checks first: small layers (a batch of one) stay on numpy without paying more
    small = (type(x) is not np.ndarray or type(kernel) is not np.ndarray or x.ndim == 0
             or kernel.ndim != 2
             or x.size * kernel.shape[1] < ELEMENTWISE_MIN_SIZE["dense"] * x.shape[-1])
    kernel_fn = None if small else _kernel("bias_act", x, kernel, *bias)
    if (kernel_fn is None or activation not in (None, "relu") or (not bias and activation is None)
            or (bias and bias[0].shape != kernel.shape[1:])):
        return _fallback("dense")(x, kernel, *bias, activation=activation)
    y = np.matmul(x, kernel)  # a new C-contiguous array, written in place below
    cols = kernel.shape[1]
    b = _buf(_c(bias[0])) if bias else _ffi.NULL
    kernel_fn(_buf(y), b, y.size // cols if cols else 0, cols, int(activation == "relu"))
    return y


# Softmax family ------------------------------------------------------------------------------


def _rows(x, axis):
    """``x`` with ``axis`` moved last, C-contiguous, and (rows, cols)."""
    if axis != x.ndim - 1:
        x = np.moveaxis(x, axis, -1)
    x = _c(x)
    cols = x.shape[-1]
    return x, x.size // cols, cols


def _back(out, axis, ndim):
    return out if axis == ndim - 1 else np.moveaxis(out, -1, axis)


def _rowwise(name, base):
    def wrapper(x, **static):
        kernel = _kernel(base, x)
        axis = _axis(static.get("axis"), x.ndim) if kernel is not None and x.ndim else None
        if axis is None or len(static) != 1 or x.size == 0:
            return _fallback(name)(x, **static)
        xr, rows, cols = _rows(x, axis)
        out = np.empty(xr.shape, xr.dtype)
        kernel(_buf(xr), _buf(out), rows, cols)
        return _back(out, axis, x.ndim)

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def _rowwise_grad(name, base):
    def wrapper(g, ans, **static):
        kernel = _kernel(base, g, ans)
        axis = (_axis(static.get("axis"), g.ndim)
                if kernel is not None and g.ndim and g.shape == ans.shape else None)
        if axis is None or len(static) != 1 or g.size == 0:
            return _fallback(name)(g, ans, **static)
        gr, rows, cols = _rows(g, axis)
        ar = _rows(ans, axis)[0]
        out = np.empty(gr.shape, gr.dtype)
        kernel(_buf(gr), _buf(ar), _buf(out), rows, cols)
        return _back(out, axis, g.ndim)

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def _xent_labels(logits, labels, axis):
    """('int', int64 labels) or ('dense', labels moved like the logits), or None."""
    if type(labels) is not np.ndarray:
        return None
    if labels.dtype.kind in "iu":
        if labels.shape != logits.shape[:axis] + logits.shape[axis + 1:]:
            return None
        lab = np.asarray(labels, dtype=np.int64, order="C").reshape(-1)
        if lab.size and (labels.min() < 0 or labels.max() >= logits.shape[axis]):
            return None  # out of range: the numpy path decides (it raises or wraps)
        return "int", lab
    if labels.dtype == logits.dtype and labels.shape == logits.shape:
        return "dense", _rows(labels, axis)[0]
    return None


def softmax_cross_entropy(logits, labels, **static):
    name = "softmax_cross_entropy"
    kernel = _kernel("softmax_xent_int", logits)
    axis = _axis(static.get("axis"), logits.ndim) if kernel is not None and logits.ndim else None
    found = _xent_labels(logits, labels, axis) if axis is not None and logits.size else None
    if found is None or len(static) != 1:
        return _fallback(name)(logits, labels, **static)
    xr, rows, cols = _rows(logits, axis)
    loss = np.empty(rows, xr.dtype)
    kind, lab = found
    if kind == "int":
        kernel(_buf(xr), _labels_buf(lab), _buf(loss), rows, cols)
    else:
        _kernels["softmax_xent_dense"][xr.dtype](_buf(xr), _buf(lab), _buf(loss), rows, cols)
    return loss.reshape(xr.shape[:-1])


def softmax_cross_entropy_grad(logits, labels, g, **static):
    name = "softmax_cross_entropy_grad"
    if isinstance(g, np.generic):  # the cotangent of a 0-d loss may come as a numpy scalar
        g = np.asarray(g)
    kernel = _kernel("softmax_xent_int_grad", logits, g)
    axis = _axis(static.get("axis"), logits.ndim) if kernel is not None and logits.ndim else None
    ok = (axis is not None and logits.size and len(static) == 1
          and g.shape == logits.shape[:axis] + logits.shape[axis + 1:])
    found = _xent_labels(logits, labels, axis) if ok else None
    if found is None:
        return _fallback(name)(logits, labels, g, **static)
    xr, rows, cols = _rows(logits, axis)
    gr = _c(g).reshape(-1)
    out = np.empty(xr.shape, xr.dtype)
    kind, lab = found
    if kind == "int":
        kernel(_buf(xr), _labels_buf(lab), _buf(gr), _buf(out), rows, cols)
    else:
        # (softmax(z) sum(y) - y) g: the kernel sums each row's labels, which need not be one
        _kernels["softmax_xent_dense_grad"][xr.dtype](_buf(xr), _buf(lab), _buf(gr), _buf(out),
                                                     rows, cols)
    return _back(out, axis, logits.ndim)


# Convolution ---------------------------------------------------------------------------------

_CONV_KEYS = frozenset({"strides", "padding", "lhs_dilation", "rhs_dilation", "groups"})

#: Convolutions with one feature group and few output channels run on the direct kernels (no
#: column buffer, no BLAS call); the others on im2col / col2im around a BLAS product.
DIRECT_CONV = True
_DIRECT_MAX_COUT = {_F32: 32, _F64: 16}
_DIRECT_MAX_CHANNEL_PAIRS = 1024  # input gradient: Cin * Cout (a GEMM wins beyond)
_geometry_cache: dict = {}


def _dilate(size, d):
    return (size - 1) * d + 1 if size > 0 else 0


class _ConvPlan:
    """A convolution's geometry: the C struct plus the shapes the wrappers need."""

    __slots__ = ("geom", "out_shape", "groups", "m", "row", "cin", "cout", "identity")

    def __init__(self, geom, out_shape, groups, m, row, cin, cout, identity):
        self.geom, self.out_shape, self.groups = geom, out_shape, groups
        self.m, self.row, self.cin, self.cout, self.identity = m, row, cin, cout, identity


def _conv_plan(xs, ks, static):
    """The plan of a convolution the kernels cover, or None (the numpy path then decides)."""
    try:
        key = ("conv", xs, ks, tuple(sorted(static.items())))
        hash(key)
    except TypeError:
        key = None
    if key is not None:
        plan = _geometry_cache.get(key, False)
        if plan is not False:
            return plan
    plan = _make_conv_plan(xs, ks, static)
    if key is not None:
        if len(_geometry_cache) > 512:
            _geometry_cache.clear()
        _geometry_cache[key] = plan
    return plan


def _make_conv_plan(xs, ks, static):
    nd = len(xs) - 2
    if not 1 <= nd <= 3 or len(ks) != nd + 2 or set(static) != _CONV_KEYS:
        return None
    strides = _ints(static["strides"], nd)
    lhs = _ints(static["lhs_dilation"], nd)
    rhs = _ints(static["rhs_dilation"], nd)
    pads = _pairs(static["padding"], nd)
    try:
        groups = operator.index(static["groups"])
    except TypeError:
        return None
    if strides is None or lhs is None or rhs is None or pads is None:
        return None
    if min(strides + lhs + rhs) < 1 or min(p for pair in pads for p in pair) < 0 or groups < 1:
        return None
    n, spatial, c = xs[0], xs[1:-1], xs[-1]
    window, cg, cout = ks[:-2], ks[-2], ks[-1]
    if c % groups or cg * groups != c or cout % groups or 0 in xs or 0 in ks:
        return None
    out = []
    for s, k, st, (lo, hi), dl, dr in zip(spatial, window, strides, pads, lhs, rhs):
        size = _dilate(s, dl) + lo + hi - _dilate(k, dr)
        if size < 0:
            return None
        out.append(size // st + 1)
    lead = 3 - nd
    geom = _ffi.new("axon_conv_geom *")
    geom.n, geom.c, geom.g = n, c, groups
    geom.s = (1,) * lead + tuple(spatial)
    geom.k = (1,) * lead + tuple(window)
    geom.o = (1,) * lead + tuple(out)
    geom.stride = (1,) * lead + strides
    geom.pad_lo = (0,) * lead + tuple(lo for lo, _ in pads)
    geom.lhs_dil = (1,) * lead + lhs
    geom.rhs_dil = (1,) * lead + rhs
    identity = (groups == 1 and all(k == 1 for k in window) and max(strides + lhs) == 1
                and not any(p for pair in pads for p in pair))
    m = n * math.prod(out)
    return _ConvPlan(geom, (n, *out, cout), groups, m, math.prod(window) * cg, c, cout,
                     identity)


def _im2col(plan, x):
    """Columns ``(groups, m, row)`` of contiguous ``x``, or None when the kernel failed."""
    if plan.identity:
        return x.reshape(1, plan.m, plan.row)
    cols = np.empty((plan.groups, plan.m, plan.row), x.dtype)
    if _kernels["im2col"][x.dtype](plan.geom, _buf(x), _buf(cols)) != 0:
        return None
    return cols


def _kernel_matrix(w, plan):
    """The kernel as ``(row, cout)`` (one group) or ``(groups, row, cout // groups)``."""
    if plan.groups == 1:
        return w.reshape(plan.row, plan.cout)
    return w.reshape(plan.row, plan.groups, plan.cout // plan.groups).transpose(1, 0, 2)


def _direct(plan, dtype):
    """Whether the direct kernels (no column buffer) take this convolution."""
    return (DIRECT_CONV and plan.groups == 1 and not plan.identity
            and plan.cout <= _DIRECT_MAX_COUT[dtype])


def conv_general(x, w, **static):
    kernel = _kernel("im2col", x, w)
    plan = _conv_plan(x.shape, w.shape, static) if kernel is not None else None
    if plan is not None and _direct(plan, x.dtype):
        xc, wc = _c(x), _c(w)
        out = np.empty(plan.out_shape, xc.dtype)
        if _kernels["conv_direct_fwd"][xc.dtype](plan.geom, _buf(xc), _buf(wc), _buf(out),
                                                 plan.cout) == 0:
            return out
    cols = _im2col(plan, _c(x)) if plan is not None else None
    if cols is None:
        return _fallback("conv_general")(x, w, **static)
    wm = _kernel_matrix(w, plan)
    if plan.groups == 1:
        out = cols[0] @ wm
    else:
        out = np.matmul(cols, wm).transpose(1, 0, 2)
    return out.reshape(plan.out_shape)


def conv_general_input_grad(g, w, **static):
    name = "conv_general_input_grad"
    shape = _ints(static.get("input_shape", ()))
    rest = {k: v for k, v in static.items() if k != "input_shape"}
    kernel = _kernel("col2im", g, w)
    plan = (_conv_plan(shape, w.shape, rest)
            if kernel is not None and shape is not None and "input_shape" in static else None)
    if plan is None or g.shape != plan.out_shape:
        return _fallback(name)(g, w, **static)
    if (DIRECT_CONV and plan.groups == 1 and not plan.identity
            and plan.cin * plan.cout <= _DIRECT_MAX_CHANNEL_PAIRS):
        gc, wc = _c(g), _c(w)
        dx = np.empty(shape, gc.dtype)
        if _kernels["conv_direct_igrad"][gc.dtype](plan.geom, _buf(gc), _buf(wc), _buf(dx),
                                                   plan.cout) == 0:
            return dx
    g2 = _c(g).reshape(plan.m, plan.cout)
    wm = _kernel_matrix(w, plan)
    if plan.groups == 1:
        dcols = g2 @ wm.T
    else:
        gg = g2.reshape(plan.m, plan.groups, plan.cout // plan.groups).transpose(1, 0, 2)
        dcols = np.matmul(gg, wm.transpose(0, 2, 1))
    if plan.identity:
        return dcols.reshape(shape)
    dcols = _c(dcols)
    dx = np.empty(shape, g.dtype)
    if kernel(plan.geom, _buf(dcols), _buf(dx)) != 0:
        return _fallback(name)(g, w, **static)
    return dx


def conv_general_kernel_grad(x, g, **static):
    name = "conv_general_kernel_grad"
    shape = _ints(static.get("kernel_shape", ()))
    rest = {k: v for k, v in static.items() if k != "kernel_shape"}
    kernel = _kernel("im2col", x, g)
    plan = (_conv_plan(x.shape, shape, rest)
            if kernel is not None and shape is not None and "kernel_shape" in static else None)
    if plan is not None and g.shape == plan.out_shape and _direct(plan, x.dtype):
        xc, gc = _c(x), _c(g)
        dw = np.empty(shape, xc.dtype)
        if _kernels["conv_direct_wgrad"][xc.dtype](plan.geom, _buf(xc), _buf(gc), _buf(dw),
                                                   plan.cout) == 0:
            return dw
    cols = _im2col(plan, _c(x)) if plan is not None and g.shape == plan.out_shape else None
    if cols is None:
        return _fallback(name)(x, g, **static)
    g2 = _c(g).reshape(plan.m, plan.cout)
    if plan.groups == 1:
        dw = cols[0].T @ g2
    else:
        gg = g2.reshape(plan.m, plan.groups, plan.cout // plan.groups).transpose(1, 0, 2)
        dw = np.matmul(cols.transpose(0, 2, 1), gg).transpose(1, 0, 2)
    return dw.reshape(shape)


# Pooling -------------------------------------------------------------------------------------

_POOL_KEYS = frozenset({"window", "strides", "padding"})


def _pool_geom(xs, static):
    """The C geometry of a pool over ``xs`` (N, *S, C) and its output shape, or None (cached).

    ``window``/``strides``/``padding`` have one entry per spatial dim, or one per dim of ``x``
    with the batch and channel entries trivial (window 1, stride 1, no padding).
    """
    try:
        key = ("pool", xs, tuple(sorted(static.items())))
        hash(key)
    except TypeError:
        return _make_pool_geom(xs, static)
    found = _geometry_cache.get(key, False)
    if found is False:
        if len(_geometry_cache) > 512:
            _geometry_cache.clear()
        found = _geometry_cache[key] = _make_pool_geom(xs, static)
    return found


def _make_pool_geom(xs, static):
    if set(static) != _POOL_KEYS:
        return None
    nd = len(xs) - 2
    if not 1 <= nd <= 3 or 0 in xs:
        return None
    window = _ints(static["window"])
    if window is None:
        return None
    strides = _ints(static["strides"], len(window))
    pads = _pairs(static["padding"], len(window))
    if strides is None or pads is None:
        return None
    if len(window) == nd + 2:
        if (window[0], window[-1], strides[0], strides[-1]) != (1, 1, 1, 1) or any(
                pads[0] + pads[-1]):
            return None
        window, strides, pads = window[1:-1], strides[1:-1], pads[1:-1]
    elif len(window) != nd:
        return None
    if min(window + strides) < 1 or min(p for pair in pads for p in pair) < 0:
        return None
    out = []
    for s, k, st, (lo, hi) in zip(xs[1:-1], window, strides, pads):
        size = s + lo + hi - k
        if size < 0 or lo >= k or hi >= k:  # the numpy path rejects padding >= window
            return None
        out.append(size // st + 1)
    lead = 3 - nd
    geom = _ffi.new("axon_pool_geom *")
    geom.n, geom.c = xs[0], xs[-1]
    geom.s = (1,) * lead + tuple(xs[1:-1])
    geom.w = (1,) * lead + window
    geom.o = (1,) * lead + tuple(out)
    geom.stride = (1,) * lead + strides
    geom.pad_lo = (0,) * lead + tuple(lo for lo, _ in pads)
    return geom, (xs[0], *out, xs[-1])


def max_pool_general(x, **static):
    kernel = _kernel("maxpool_fwd", x)
    found = _pool_geom(x.shape, static) if kernel is not None else None
    if found is not None:
        geom, out_shape = found
        x = _c(x)
        out = np.empty(out_shape, x.dtype)
        if kernel(geom, _buf(x), _buf(out), _ffi.NULL) == 0:
            return out
    return _fallback("max_pool_general")(x, **static)


def max_pool_general_grad(x, g, **static):
    kernel = _kernel("maxpool_bwd", x, g)
    found = _pool_geom(x.shape, static) if kernel is not None else None
    if found is not None and g.shape == found[1]:
        xc, gc = _c(x), _c(g)
        dx = np.empty(xc.shape, xc.dtype)
        if kernel(found[0], _buf(xc), _buf(gc), _buf(dx)) == 0:
            return dx
    return _fallback("max_pool_general_grad")(x, g, **static)


def avg_pool_general(x, **static):
    kernel = _kernel("avgpool_fwd", x)
    found = (_pool_geom(x.shape, {k: v for k, v in static.items() if k != "count_include_pad"})
             if kernel is not None and "count_include_pad" in static else None)
    if found is not None:
        geom, out_shape = found
        xc = _c(x)
        out = np.empty(out_shape, xc.dtype)
        if kernel(geom, _buf(xc), _buf(out), bool(static["count_include_pad"])) == 0:
            return out
    return _fallback("avg_pool_general")(x, **static)


def avg_pool_general_grad(g, **static):
    kernel = _kernel("avgpool_bwd", g)
    shape = _ints(static.get("input_shape", ()))
    keys = ("input_shape", "count_include_pad")
    found = None
    if kernel is not None and shape is not None and all(k in static for k in keys):
        found = _pool_geom(shape, {k: v for k, v in static.items() if k not in keys})
    if found is not None and g.shape == found[1]:
        gc = _c(g)
        dx = np.empty(shape, gc.dtype)
        if kernel(found[0], _buf(gc), _buf(dx), bool(static["count_include_pad"])) == 0:
            return dx
    return _fallback("avg_pool_general_grad")(g, **static)


# Optimizer kernels (called by axon_fn.optim; not primitives) -------------------------------


def adam_leaf(g, mu, nu, constants):
    """``(mu, nu, update)`` for one parameter from the fused Adam kernel (``constants`` as in
    ``axon_kernels.h``), or None when the kernel does not cover these arrays."""
    kernel = _kernel("adam", g, mu, nu, constants) if _kernels else None
    if kernel is None or not (g.shape == mu.shape == nu.shape) or not (
            g.flags.c_contiguous and mu.flags.c_contiguous and nu.flags.c_contiguous):
        return None
    mu_out, nu_out, update = np.empty_like(g), np.empty_like(g), np.empty_like(g)
    kernel(_buf(g), _buf(mu), _buf(nu), _buf(mu_out), _buf(nu_out), _buf(update), g.size,
           _buf(constants))
    return mu_out, nu_out, update


# Registration --------------------------------------------------------------------------------

_KERNEL_NAMES = (
    "im2col", "col2im", "conv_direct_fwd", "conv_direct_igrad", "conv_direct_wgrad",
    "maxpool_fwd", "maxpool_bwd", "avgpool_fwd", "avgpool_bwd",
    "softmax", "log_softmax", "softmax_grad", "log_softmax_grad", "softmax_xent_int",
    "softmax_xent_int_grad", "softmax_xent_dense", "softmax_xent_dense_grad",
    "relu", "relu_grad", "sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "bias_act", "adam",
)

#: primitive name -> its native wrapper (every primitive a C kernel covers).
WRAPPERS = {
    "dense": dense,
    "conv_general": conv_general,
    "conv_general_input_grad": conv_general_input_grad,
    "conv_general_kernel_grad": conv_general_kernel_grad,
    "max_pool_general": max_pool_general,
    "max_pool_general_grad": max_pool_general_grad,
    "avg_pool_general": avg_pool_general,
    "avg_pool_general_grad": avg_pool_general_grad,
    "softmax": _rowwise("softmax", "softmax"),
    "log_softmax": _rowwise("log_softmax", "log_softmax"),
    "softmax_grad": _rowwise_grad("softmax_grad", "softmax_grad"),
    "log_softmax_grad": _rowwise_grad("log_softmax_grad", "log_softmax_grad"),
    "softmax_cross_entropy": softmax_cross_entropy,
    "softmax_cross_entropy_grad": softmax_cross_entropy_grad,
    "relu": _unary("relu", "relu"),
    "relu_grad": _grad("relu_grad", "relu_grad"),
    "sigmoid": _unary("sigmoid", "sigmoid"),
    "sigmoid_grad": _grad("sigmoid_grad", "sigmoid_grad"),
    "tanh_grad": _grad("tanh_grad", "tanh_grad"),
}

# int8 weight-only quantization: native/quantize.c, wrapped in axon_fn/_native_quantize.py
from ._native_quantize import quantized_dense as _quantized_dense  # noqa: E402

WRAPPERS["quantized_dense"] = _quantized_dense

#: Wrappers of kernels that exist but are not installed: numpy's own loop is as fast or faster
#: (np.tanh is one vectorized pass; the C tanh pays a division per element).
SPARE_WRAPPERS = {
    "tanh": _unary("tanh", "tanh"),
}


def _load_kernels():
    global _ffi
    if _kernels:
        return True
    if not _native.available():
        return False
    lib = _native.lib()
    table = {}
    for base in _KERNEL_NAMES:
        entry = {}
        for dtype, suffix in ((_F32, "f32"), (_F64, "f64")):
            fn = getattr(lib, f"axon_{base}_{suffix}", None)
            if fn is not None:
                entry[dtype] = fn
        table[base] = entry
    _ffi = _native.ffi()
    _kernels.update(table)
    return True


def install():
    """Make the C kernels the CPU implementation of every registered primitive they cover.

    Does nothing when the kernels are not available (not built, or ``AXON_FN_NATIVE=0``);
    primitives not registered (yet) are skipped.
    """
    if not _load_kernels():
        return
    for name, wrapper in WRAPPERS.items():
        prim = PRIMITIVES.get(name)
        if prim is not None:
            prim.set_native(wrapper)


def uninstall():
    """Put every primitive back on its numpy implementation."""
    for name in WRAPPERS:
        prim = PRIMITIVES.get(name)
        if prim is not None:
            prim.set_native(None)

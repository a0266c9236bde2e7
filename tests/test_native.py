"""The C kernels: every native wrapper against the numpy path of its primitive, and the fallbacks.

Parity tests call ``axon_fn._native_ops.WRAPPERS[name]`` and ``PRIMITIVES[name].numpy_cpu`` on the
same arguments. For the cases the kernels cover, ``_native_ops._fallback`` is replaced by a
function that fails, so a wrapper that quietly took the numpy path cannot pass for the kernel.
They are skipped when the extension is not built; the subprocess tests of the no-kernel
fallbacks run either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import axon_fn
from axon_fn import _native, _native_ops
from axon_fn._core import PRIMITIVES
from axon_fn.errors import ShapeError

REPO = Path(__file__).resolve().parents[1]

needs_native = pytest.mark.skipif(
    not _native.available(), reason=f"the C kernels are not available: {_native.status()}"
)

DTYPES = [np.float32, np.float64]
ALL_WRAPPERS = {**_native_ops.WRAPPERS, **_native_ops.SPARE_WRAPPERS}


def rand(shape, dtype, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def tolerance(dtype, kind="sum"):
    if np.dtype(dtype) == np.float32:
        return {"rtol": 2e-5, "atol": 2e-5} if kind == "sum" else {"rtol": 3e-6, "atol": 1e-44}
    return {"rtol": 1e-12, "atol": 1e-12} if kind == "sum" else {"rtol": 2e-13, "atol": 1e-320}


def numpy_path(name, *args, **static):
    if name not in PRIMITIVES:
        pytest.skip(f"primitive {name!r} is not registered yet")
    with np.errstate(all="ignore"):  # the numpy path warns on inf/nan; the kernels do not
        return PRIMITIVES[name].numpy_cpu(*args, **static)


@pytest.fixture
def native_only(monkeypatch):
    """Run a wrapper with its numpy fallback forbidden: the C kernel must handle the case."""

    def forbidden(name):
        raise AssertionError(f"{name}: the native wrapper fell back to the numpy path")

    monkeypatch.setattr(_native_ops, "_fallback", forbidden)
    monkeypatch.setattr(_native_ops, "ELEMENTWISE_MIN_SIZE",
                        dict.fromkeys(_native_ops.ELEMENTWISE_MIN_SIZE, 0))

    def run(name, *args, **static):
        return ALL_WRAPPERS[name](*args, **static)

    return run


def check_same(name, native_only, args, static, kind="sum"):
    expected = numpy_path(name, *args, **static)
    got = native_only(name, *args, **static)
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype} != {expected.dtype}"
    tol = tolerance(expected.dtype, kind)
    if kind == "sum" and expected.size:  # sums in another order: errors scale with the values
        finite = np.abs(expected[np.isfinite(expected)])
        tol["atol"] *= max(1.0, float(finite.max()) if finite.size else 1.0)
    if kind == "grad":  # g * (1 - ans**2) may be fused (one rounding): eps * |g| apart
        tol["atol"] = 4 * np.finfo(expected.dtype).eps * float(np.abs(args[0]).max())
    np.testing.assert_allclose(got, expected, **tol, err_msg=name)
    return got


def noncontiguous(a, how):
    """The same values as ``a``, as a non-contiguous view."""
    if how == "transposed":
        return np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)
    if how == "sliced":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return a


# Installation --------------------------------------------------------------------------------


@needs_native
def test_install_overrides_every_registered_primitive():
    for name, wrapper in _native_ops.WRAPPERS.items():
        if name in PRIMITIVES:
            assert PRIMITIVES[name].cpu is wrapper, name
    for name in _native_ops.SPARE_WRAPPERS:
        assert PRIMITIVES[name].cpu is PRIMITIVES[name].numpy_cpu, name
    assert axon_fn.backend_info()["native"] is True
    assert axon_fn.backend_info()["threads"] >= 1


@needs_native
def test_ops_run_on_the_kernels(monkeypatch):
    from axon_fn import ops

    calls = []
    wrapper = _native_ops.WRAPPERS["relu"]
    monkeypatch.setattr(PRIMITIVES["relu"], "cpu", lambda x: calls.append(1) or wrapper(x))
    x = rand((64, 64), np.float32)
    g = axon_fn.grad(lambda v: ops.sum(ops.relu(v)))(x)
    assert calls and np.array_equal(g, (x > 0).astype(np.float32))


# Convolutions --------------------------------------------------------------------------------

CONV_CASES = {
    # id: (x shape, kernel shape, strides, padding, lhs_dilation, rhs_dilation, groups)
    "lenet1": ((2, 28, 28, 1), (5, 5, 1, 6), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
    "lenet2": ((3, 12, 12, 6), (5, 5, 6, 16), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
    "same_pad": ((2, 7, 9, 3), (3, 3, 3, 4), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),
    "strided_asym_pad": ((2, 9, 8, 3), (3, 2, 3, 5), (2, 3), ((2, 1), (0, 3)), (1, 1), (1, 1), 1),
    "rhs_dilation": ((1, 11, 10, 2), (3, 3, 2, 3), (1, 2), ((1, 0), (2, 2)), (1, 1), (2, 3), 1),
    "lhs_dilation": ((2, 5, 6, 2), (3, 2, 2, 3), (1, 1), ((2, 2), (1, 0)), (2, 3), (1, 1), 1),
    "everything": ((2, 6, 7, 4), (2, 3, 2, 6), (2, 1), ((1, 2), (3, 0)), (2, 1), (1, 2), 2),
    "groups": ((2, 6, 6, 6), (3, 3, 2, 9), (1, 1), ((1, 1), (0, 0)), (1, 1), (1, 1), 3),
    "depthwise": ((2, 8, 5, 4), (3, 3, 1, 8), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 4),
    "pointwise": ((3, 4, 5, 7), (1, 1, 7, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
    "pointwise_strided": ((2, 5, 5, 3), (1, 1, 3, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
    "kernel_is_input": ((2, 4, 3, 2), (4, 3, 2, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
    "size_one_dims": ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
    "pad_only": ((1, 1, 1, 1), (3, 3, 1, 2), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),
    "batch1_big": ((1, 33, 31, 3), (5, 4, 3, 8), (1, 1), ((2, 2), (1, 2)), (1, 1), (1, 1), 1),
    "wide_out": ((2, 9, 9, 5), (3, 3, 5, 29), (1, 2), ((1, 1), (2, 0)), (1, 1), (2, 1), 1),
    "too_wide_for_direct": ((2, 6, 6, 3), (3, 3, 3, 40), (1, 1), ((1, 1), (1, 1)), (1, 1),
                            (1, 1), 1),
    "many_in": ((2, 7, 7, 37), (2, 2, 37, 3), (1, 1), ((0, 1), (1, 0)), (1, 1), (1, 1), 1),
    "parallel": ((16, 20, 20, 4), (3, 3, 4, 8), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),
    "1d": ((3, 17, 4), (5, 4, 6), (2,), ((2, 1),), (1,), (2,), 1),
    "1d_groups": ((2, 9, 4), (3, 2, 4), (1,), ((1, 1),), (1,), (1,), 2),
    "3d": ((2, 5, 6, 4, 3), (2, 3, 2, 3, 4), (1, 2, 1), ((1, 0), (1, 1), (0, 1)),
           (1, 1, 2), (2, 1, 1), 1),
    # One input channel and a few outputs take the kernels vectorized along the width.
    "gray_same_pad": ((2, 9, 30, 1), (3, 3, 1, 5), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),
    "gray_wide": ((3, 6, 70, 1), (2, 7, 1, 3), (1, 1), ((0, 1), (3, 2)), (1, 1), (1, 1), 1),
    "gray_eight_out": ((2, 5, 41, 1), (3, 4, 1, 8), (2, 1), ((1, 0), (0, 3)), (2, 1), (1, 1), 1),
    "gray_one_out": ((1, 4, 37, 1), (1, 9, 1, 1), (1, 1), ((0, 0), (4, 4)), (1, 1), (1, 1), 1),
    "gray_many_rows": ((2, 140, 12, 1), (5, 3, 1, 2), (1, 1), ((2, 2), (0, 0)), (1, 1), (1, 1), 1),
    "gray_1d": ((4, 50, 1), (6, 1, 4), (1,), ((2, 3),), (1,), (1,), 1),
}


def conv_statics(strides, padding, lhs, rhs, groups):
    return dict(strides=strides, padding=padding, lhs_dilation=lhs, rhs_dilation=rhs,
                groups=groups)


@needs_native
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "im2col"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_parity(case, dtype, direct, native_only, monkeypatch):
    monkeypatch.setattr(_native_ops, "DIRECT_CONV", direct)
    xs, ws, *geometry = CONV_CASES[case]
    static = conv_statics(*geometry)
    x, w = rand(xs, dtype, 1), rand(ws, dtype, 2)
    y = check_same("conv_general", native_only, (x, w), static)
    g = rand(y.shape, dtype, 3)
    check_same("conv_general_input_grad", native_only, (g, w), dict(static, input_shape=xs))
    check_same("conv_general_kernel_grad", native_only, (x, g), dict(static, kernel_shape=ws))


@needs_native
@pytest.mark.parametrize("how", ["transposed", "sliced"])
def test_conv_noncontiguous_inputs(how, native_only):
    xs, ws, *geometry = CONV_CASES["everything"]
    static = conv_statics(*geometry)
    x, w = noncontiguous(rand(xs, np.float32, 1), how), noncontiguous(rand(ws, np.float32, 2), how)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    y = check_same("conv_general", native_only, (x, w), static)
    g = noncontiguous(rand(y.shape, np.float32, 3), how)
    check_same("conv_general_input_grad", native_only, (g, w), dict(static, input_shape=xs))
    check_same("conv_general_kernel_grad", native_only, (x, g), dict(static, kernel_shape=ws))


@needs_native
def test_conv_statics_as_lists(native_only):
    x, w = rand((2, 6, 6, 2), np.float64, 1), rand((3, 3, 2, 4), np.float64, 2)
    static = dict(strides=[1, 2], padding=[[1, 1], [0, 1]], lhs_dilation=[1, 1],
                  rhs_dilation=[1, 1], groups=1)
    check_same("conv_general", native_only, (x, w), static)


@needs_native
def test_conv_falls_back_for_mixed_dtypes_and_integers():
    conv = _native_ops.WRAPPERS["conv_general"]
    static = conv_statics(*CONV_CASES["same_pad"][2:])
    x, w = rand((2, 7, 9, 3), np.float32, 1), rand((3, 3, 3, 4), np.float64, 2)
    out = conv(x, w, **static)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, numpy_path("conv_general", x, w, **static), rtol=1e-12)
    xi, wi = np.arange(2 * 7 * 9 * 3).reshape(2, 7, 9, 3), np.ones((3, 3, 3, 4), np.int64)
    np.testing.assert_array_equal(conv(xi, wi, **static),
                                  numpy_path("conv_general", xi, wi, **static))


@needs_native
def test_conv_bad_shapes_raise_the_numpy_paths_error():
    static = conv_statics(*CONV_CASES["lenet1"][2:])
    x, w = rand((2, 28, 28, 1), np.float32), rand((5, 5, 2, 6), np.float32)
    with pytest.raises(ShapeError, match="kernel input channels"):
        _native_ops.WRAPPERS["conv_general"](x, w, **static)
    g = rand((2, 23, 24, 6), np.float32)
    with pytest.raises(ShapeError, match="g must have shape"):
        _native_ops.WRAPPERS["conv_general_input_grad"](g, rand((5, 5, 1, 6), np.float32),
                                                        input_shape=(2, 28, 28, 1), **static)
    negative = dict(static, padding=((-1, 0), (0, 0)))
    with pytest.raises(ShapeError):
        _native_ops.WRAPPERS["conv_general"](x, rand((5, 5, 1, 6), np.float32), **negative)


# Pooling -------------------------------------------------------------------------------------

POOL_CASES = {
    # id: (x shape, window, strides, padding)
    "lenet": ((2, 24, 24, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),
    "overlapping": ((2, 7, 8, 3), (3, 3), (1, 1), ((1, 1), (1, 1))),
    "strided_pad": ((3, 9, 7, 5), (3, 2), (2, 3), ((2, 1), (0, 1))),
    "ragged": ((1, 5, 5, 1), (2, 2), (2, 2), ((0, 0), (0, 0))),
    "size_one": ((1, 1, 1, 1), (1, 1), (1, 1), ((0, 0), (0, 0))),
    "parallel": ((16, 16, 16, 8), (3, 3), (2, 2), ((1, 1), (1, 1))),
    "1d": ((3, 11, 4), (3,), (2,), ((1, 2),)),
    "3d": ((2, 5, 4, 6, 3), (2, 3, 2), (1, 2, 2), ((1, 0), (1, 1), (0, 1))),
}


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_max_pool_parity(case, dtype, native_only):
    xs, window, strides, padding = POOL_CASES[case]
    static = dict(window=window, strides=strides, padding=padding)
    x = rand(xs, dtype, 1)
    y = check_same("max_pool_general", native_only, (x,), static)
    check_same("max_pool_general_grad", native_only, (x, rand(y.shape, dtype, 2)), static)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_parity(case, dtype, count_include_pad, native_only):
    xs, window, strides, padding = POOL_CASES[case]
    static = dict(window=window, strides=strides, padding=padding,
                  count_include_pad=count_include_pad)
    x = rand(xs, dtype, 1)
    y = check_same("avg_pool_general", native_only, (x,), static)
    check_same("avg_pool_general_grad", native_only, (rand(y.shape, dtype, 2),),
               dict(static, input_shape=xs))


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ties_nan_and_infinities(dtype, native_only):
    """Ties go to the first maximum in row-major window order; NaN wins; -inf as the numpy path."""
    x = np.array([[[1, 3, 3], [3, 0, 2], [2, 2, 2]],
                  [[np.nan, 5, np.nan], [7, 7, 1], [0, np.nan, 0]],
                  [[-np.inf, -np.inf, 1], [-np.inf, -np.inf, -np.inf], [np.inf, 4, np.inf]]],
                 dtype)[..., None].repeat(5, axis=-1)
    x[..., 1] *= -1  # channels that differ
    x[0, 0, 0, 2] = np.nan
    for static in (dict(window=(2, 2), strides=(1, 1), padding=((0, 0), (0, 0))),
                   dict(window=(2, 2), strides=(1, 1), padding=((1, 1), (1, 0))),
                   dict(window=(3, 2), strides=(1, 2), padding=((1, 1), (0, 1)))):
        y = numpy_path("max_pool_general", x, **static)
        got = native_only("max_pool_general", x, **static)
        np.testing.assert_array_equal(got, y)
        g = rand(y.shape, dtype, 4)
        np.testing.assert_allclose(native_only("max_pool_general_grad", x, g, **static),
                                   numpy_path("max_pool_general_grad", x, g, **static),
                                   **tolerance(dtype))


@needs_native
def test_max_pool_noncontiguous_and_argmax_kernel(native_only):
    x = noncontiguous(rand((2, 9, 8, 4), np.float32, 1), "transposed")
    static = dict(window=(3, 3), strides=(2, 1), padding=((1, 1), (1, 1)))
    y = check_same("max_pool_general", native_only, (x,), static)
    check_same("max_pool_general_grad", native_only, (x, noncontiguous(rand(y.shape, np.float32),
                                                                      "sliced")), static)
    # the forward kernel's optional argmax output: the flat spatial index of each maximum
    ffi, lib = _native.ffi(), _native.lib()
    xc = np.ascontiguousarray(x)
    geom, shape = _native_ops._pool_geom(xc.shape, static)
    out, argmax = np.empty(shape, np.float32), np.empty(shape, np.int64)
    assert lib.axon_maxpool_fwd_f32(geom, ffi.from_buffer("float[]", xc),
                                    ffi.from_buffer("float[]", out),
                                    ffi.from_buffer("int64_t[]", argmax)) == 0
    np.testing.assert_array_equal(out, y)
    flat = xc.reshape(2, -1, 4)
    for n in range(2):
        picked = np.take_along_axis(flat[n], np.maximum(argmax[n].reshape(-1, 4), 0), axis=0)
        np.testing.assert_array_equal(picked, y[n].reshape(-1, 4))


@needs_native
def test_pool_falls_back_for_padding_not_smaller_than_the_window():
    x = rand((1, 4, 4, 1), np.float32)
    with pytest.raises(ShapeError, match="smaller than the window"):
        _native_ops.WRAPPERS["max_pool_general"](x, window=(2, 2), strides=(1, 1),
                                                 padding=((2, 0), (0, 0)))


# Softmax family ------------------------------------------------------------------------------

SOFTMAX_CASES = {
    # id: (shape, axis)
    "rows": ((7, 10), -1),
    "columns": ((7, 10), 0),
    "middle": ((3, 5, 4), 1),
    "single_class": ((6, 1), 1),
    "one_row": ((1, 13), 1),
    "vector": ((9,), 0),
    "parallel": ((300, 257), 1),
}


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(SOFTMAX_CASES))
def test_softmax_family_parity(case, dtype, native_only):
    shape, axis = SOFTMAX_CASES[case]
    x = rand(shape, dtype, 1, scale=3.0)
    g = rand(shape, dtype, 2)
    for name in ("softmax", "log_softmax"):
        ans = check_same(name, native_only, (x,), {"axis": axis})
        check_same(f"{name}_grad", native_only, (g, ans), {"axis": axis})


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family_extreme_rows(dtype, native_only):
    x = np.array([[1000.0, -1000.0, 0.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf],
                  [-np.inf, 2.0, -np.inf], [np.nan, 1.0, 2.0], [88.0, 89.0, 710.0]], dtype)
    for name in ("softmax", "log_softmax"):
        np.testing.assert_allclose(native_only(name, x, axis=1), numpy_path(name, x, axis=1),
                                   **tolerance(dtype))
    labels = np.array([0, 1, 2, 1, 0, 2])
    for name, args in (("softmax_cross_entropy", (x, labels)),
                       ("softmax_cross_entropy_grad", (x, labels, np.ones(6, dtype)))):
        np.testing.assert_allclose(native_only(name, *args, axis=1),
                                   numpy_path(name, *args, axis=1), **tolerance(dtype))


@needs_native
def test_softmax_noncontiguous(native_only):
    x = noncontiguous(rand((6, 8), np.float32, 1), "transposed")
    for axis in (0, 1):
        ans = check_same("softmax", native_only, (x,), {"axis": axis})
        check_same("softmax_grad", native_only, (noncontiguous(rand((6, 8), np.float32), "sliced"),
                                                 ans), {"axis": axis})


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("case", ["rows", "columns", "middle", "single_class", "vector",
                                  "parallel"])
def test_cross_entropy_int_labels(case, label_dtype, dtype, native_only):
    shape, axis = SOFTMAX_CASES[case]
    axis %= len(shape)
    logits = rand(shape, dtype, 1, scale=3.0)
    loss_shape = shape[:axis] + shape[axis + 1:]
    labels = np.random.default_rng(2).integers(0, shape[axis], loss_shape).astype(label_dtype)
    loss = check_same("softmax_cross_entropy", native_only, (logits, labels), {"axis": axis})
    g = rand(loss.shape, dtype, 3)
    check_same("softmax_cross_entropy_grad", native_only, (logits, labels, g), {"axis": axis})


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["rows", "columns", "middle", "single_class"])
def test_cross_entropy_dense_labels(case, dtype, native_only):
    shape, axis = SOFTMAX_CASES[case]
    logits = rand(shape, dtype, 1, scale=3.0)
    probs = numpy_path("softmax", rand(shape, dtype, 2, scale=2.0), axis=axis)
    probs[(0,) * len(shape)] = 0.0  # a zero probability: 0 * log(p) counts as 0
    loss = check_same("softmax_cross_entropy", native_only, (logits, probs), {"axis": axis})
    g = rand(loss.shape, dtype, 3)
    check_same("softmax_cross_entropy_grad", native_only, (logits, probs, g), {"axis": axis})


@needs_native
def test_cross_entropy_perfect_prediction_is_positive_zero(native_only):
    logits = np.array([[1000.0, -1000.0]])
    for labels in (np.array([0]), np.array([[1.0, 0.0]])):
        loss = native_only("softmax_cross_entropy", logits, labels, axis=1)
        assert loss[0] == 0 and not np.signbit(loss[0])


@needs_native
def test_cross_entropy_falls_back_for_what_the_kernels_do_not_cover():
    xent = _native_ops.WRAPPERS["softmax_cross_entropy"]
    logits = rand((4, 3), np.float32)
    with pytest.raises(ShapeError, match=r"labels must lie in \[0, 3\)"):
        xent(logits, np.array([0, 1, 3, 2]), axis=1)
    mixed = xent(logits, np.full((4, 3), 1 / 3), axis=1)  # float64 labels: numpy path promotes
    np.testing.assert_allclose(mixed, numpy_path("softmax_cross_entropy", logits,
                                                 np.full((4, 3), 1 / 3), axis=1))
    assert mixed.dtype == np.float64


# Elementwise activations ---------------------------------------------------------------------

SPECIAL = [0.0, -0.0, 1e-30, -1e-30, 0.3, -0.62, 0.625, -0.7, 1.0, -3.0, 9.0, -9.5, 20.0, -20.0,
           40.0, -40.0, 87.0, -87.0, 89.0, -89.0, 104.0, -104.0, 300.0, -300.0, 709.0, -709.0,
           710.0, -746.0, 1e30, -1e30, np.inf, -np.inf, np.nan]


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_parity(name, dtype, native_only):
    with np.errstate(over="ignore"):
        special = np.array(SPECIAL, dtype)
    dense = np.linspace(-30, 30, 20011).astype(dtype)
    for x in (special, dense, rand((3, 1, 5), dtype, 1, scale=4.0),
              noncontiguous(rand((4, 6), dtype, 2, scale=4.0), "transposed")):
        ans = check_same(name, native_only, (x,), {}, kind="elementwise")
        g = rand(x.shape, dtype, 3)
        check_same(f"{name}_grad", native_only, (g, ans), {}, kind="grad")


@needs_native
def test_activation_parallel_path(native_only):
    x = rand((400, 400), np.float32, 1, scale=5.0)
    for name in ("relu", "sigmoid", "tanh"):
        ans = check_same(name, native_only, (x,), {}, kind="elementwise")
        check_same(f"{name}_grad", native_only, (rand(x.shape, np.float32, 2), ans), {},
                   kind="grad")


@needs_native
def test_activations_fall_back_for_broadcasting_scalars_and_integers():
    relu_grad = _native_ops.WRAPPERS["relu_grad"]
    g, ans = rand((5, 3), np.float32), rand((3,), np.float32)
    np.testing.assert_array_equal(relu_grad(g, ans), numpy_path("relu_grad", g, ans))
    assert ALL_WRAPPERS["tanh"](0.5) == np.tanh(0.5)
    ints = np.arange(-3, 3)
    np.testing.assert_array_equal(_native_ops.WRAPPERS["relu"](ints), np.maximum(ints, 0))


# Dense layer ---------------------------------------------------------------------------------

DENSE_CASES = {
    # id: (x shape, kernel shape, with bias, activation)
    "relu_bias": ((7, 5), (5, 9), True, "relu"),
    "bias_only": ((7, 5), (5, 9), True, None),
    "relu_no_bias": ((3, 4, 5), (5, 6), False, "relu"),
    "vector_input": ((5,), (5, 3), True, "relu"),
    "parallel": ((300, 40), (40, 700), True, "relu"),
}


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(DENSE_CASES))
def test_dense_parity(case, dtype, native_only):
    xs, ks, with_bias, activation = DENSE_CASES[case]
    bias = (rand(ks[1:], dtype, 3),) if with_bias else ()
    args = (rand(xs, dtype, 1), rand(ks, dtype, 2), *bias)
    got = check_same("dense", native_only, args, {"activation": activation})
    assert (got >= 0).all() if activation else (got < 0).any()


@needs_native
def test_dense_relu_passes_nan_and_infinities(native_only):
    x, kernel = np.ones((2, 3), np.float32), np.eye(3, dtype=np.float32)
    bias = np.array([np.nan, -np.inf, np.inf], np.float32)
    got = native_only("dense", x, kernel, bias, activation="relu")
    np.testing.assert_array_equal(got, [[np.nan, 0.0, np.inf]] * 2)


@needs_native
def test_dense_falls_back_for_other_activations_dtypes_and_no_epilogue(monkeypatch):
    monkeypatch.setitem(_native_ops.ELEMENTWISE_MIN_SIZE, "dense", 0)  # not for being small
    fell_back = []
    monkeypatch.setattr(_native_ops, "_fallback",
                        lambda name: fell_back.append(name) or PRIMITIVES[name].numpy_cpu)
    wrapper = _native_ops.WRAPPERS["dense"]
    x, kernel, bias = rand((4, 3), np.float32, 1), rand((3, 2), np.float32, 2), rand(2, np.float32)
    for args, activation in [((x, kernel, bias), "tanh"), ((x, kernel, bias), "sigmoid"),
                             ((x, kernel.astype(np.float64), bias), "relu"), ((x, kernel), None),
                             ((x, kernel[:, 0]), "relu"), ((x[0], kernel, bias[:1]), "relu"),
                             ((np.arange(6).reshape(2, 3), np.ones((3, 2), int)), "relu")]:
        fell_back.clear()
        np.testing.assert_array_equal(wrapper(*args, activation=activation),
                                      numpy_path("dense", *args, activation=activation))
        assert fell_back == ["dense"], (args, activation)


# Without the kernels -------------------------------------------------------------------------


def run_python(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "AXON_FN_NATIVE"}
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_axon_fn_native_0_chooses_the_numpy_path_silently():
    out = run_python("""
        import warnings
        warnings.simplefilter("error")  # any warning fails the import
        import numpy as np
        import axon_fn
        from axon_fn import ops
        from axon_fn._core import PRIMITIVES
        info = axon_fn.backend_info()
        assert info["native"] is False, info
        assert "AXON_FN_NATIVE=0" in info["native_detail"], info
        assert all(p.cpu is p.numpy_cpu for p in PRIMITIVES.values())
        g = axon_fn.grad(lambda x: ops.sum(ops.tanh(x) ** 2))(np.array([0.5, -1.0]))
        print("ok", g)
        """, AXON_FN_NATIVE="0")
    assert out.startswith("ok")


def test_missing_extension_warns_once_and_gradients_still_work():
    out = run_python("""
        import sys
        import warnings
        sys.modules["axon_fn._native_kernels"] = None  # the extension cannot be imported
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import numpy as np
            import axon_fn
            from axon_fn import ops
            g = axon_fn.grad(lambda x: ops.sum(ops.tanh(x) ** 2))(np.array([0.5, -1.0]))
            info = axon_fn.backend_info()
            axon_fn._native.available()
        native = [w for w in caught if issubclass(w.category, axon_fn.NativeUnavailableWarning)]
        assert len(native) == 1, [str(w.message) for w in caught]
        assert info["native"] is False and info["native_detail"].startswith("not built"), info
        t = np.tanh([0.5, -1.0])
        np.testing.assert_allclose(g, 2 * t * (1 - t ** 2))
        print("ok")
        """)
    assert out.startswith("ok")


@needs_native
def test_kernel_threads_follow_axon_fn_num_threads():
    code = "import axon_fn; print(axon_fn.backend_info()['threads'])"
    counts = [int(run_python(code, AXON_FN_NUM_THREADS=n)) for n in ("1", "2")]
    if counts[1] == 1:
        pytest.skip("the kernels were built without OpenMP")
    assert counts == [1, 2]
    expected = 1 if (os.cpu_count() or 1) <= 2 else None  # the default on small machines
    default = int(run_python(code, AXON_FN_NUM_THREADS=""))
    assert default == expected or expected is None


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_dense_labels_that_do_not_sum_to_one(dtype, native_only):
    """The gradient is softmax(z) * sum(y) - y: it differentiates the loss's own value."""
    logits = rand((4, 5), dtype, 1, scale=2.0)
    labels = np.abs(rand((4, 5), dtype, 2)) * np.array([[0.5], [1.0], [2.0], [0.0]], dtype)
    g = rand((4,), dtype, 3)
    native = check_same("softmax_cross_entropy_grad", native_only, (logits, labels, g),
                        {"axis": 1})
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = (p * labels.sum(1, keepdims=True) - labels) * g[:, None]
    np.testing.assert_allclose(native, expected, **tolerance(dtype))


def test_cross_entropy_gradient_differentiates_its_value_for_any_labels():
    from axon_fn.testing import check_grads

    labels = np.abs(rand((3, 4), np.float64, 5)) * 1.7
    check_grads(lambda z, y: axon_fn.ops.sum(axon_fn.ops.softmax_cross_entropy(z, y)),
                rand((3, 4), np.float64, 6), labels, order=2)


@needs_native
@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh"])
def test_zero_dimensional_arrays_keep_their_shape(name, native_only, monkeypatch):
    monkeypatch.setitem(_native_ops.ELEMENTWISE_MIN_SIZE, name, 0)
    for dtype in DTYPES:
        x = np.array(0.25, dtype)
        out = ALL_WRAPPERS[name](x)
        assert out.shape == () and out.dtype == dtype
        grad = ALL_WRAPPERS[f"{name}_grad"](np.array(1.0, dtype), out)
        assert grad.shape == ()
    assert axon_fn.ops.sigmoid(np.array(0.0)).shape == ()

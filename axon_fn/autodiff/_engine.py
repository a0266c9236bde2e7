"""The reverse pass: walk a trace's tape backwards once, accumulating cotangents per value."""

from __future__ import annotations

import math

import numpy as np

from .._dtypes import is_floating, is_low_precision
from .._core import JointVJP, numpy_backed, stageable
from ..ops.creation import zeros_like
from ..ops.elementwise import add, astype
from ..ops.reductions import sum as reduce_sum
from ..ops.shape import reshape

CUSTOM = object()  # marks tape entries recorded by custom_vjp functions


def fit_to(ct, like):
    """Sum a cotangent back over broadcast axes and cast it to the dtype of ``like``.

    Undoing broadcasting here, once, keeps every VJP rule free of it.
    """
    shape = like.shape
    if ct.shape != shape:
        if numpy_backed(ct) and ct.ndim > len(shape) >= 1 and ct.shape[-len(shape):] == shape:
            ct = _sum_leading(ct, shape=shape)  # a bias-like gradient: one matrix-vector product
        else:
            ct = _unbroadcast(ct, shape)
    if ct.dtype != like.dtype and is_floating(like.dtype):
        ct = astype(ct, dtype=like.dtype)
    return ct


@stageable
def _sum_leading(ct, *, shape):
    """``ct`` summed over its leading axes down to ``shape``, on BLAS: numpy's reduction over
    leading axes walks the rows one by one, several times slower than ``ones @ rows``."""
    rows = ct.reshape(-1, math.prod(shape))  # math.prod: np.prod of a tuple costs microseconds
    if is_low_precision(ct.dtype):  # summed in float32, as every float16/bfloat16 reduction
        return (np.ones(rows.shape[0], np.float32) @ rows.astype(np.float32)).astype(
            ct.dtype).reshape(shape)
    if ct.dtype.kind != "f":
        return rows.sum(axis=0).reshape(shape)
    return (np.ones(rows.shape[0], ct.dtype) @ rows).reshape(shape)


def _unbroadcast(ct, shape):
    lead = len(ct.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and ct.shape[lead + i] != 1
    )
    return reshape(reduce_sum(ct, axis=axes), shape=shape)


def backward(trace, seeds):
    """Run the tape of ``trace`` backwards from ``{value index: cotangent}``.

    Returns the list of accumulated cotangents indexed by value (``None`` where no gradient
    reached the value).
    """
    cts = [None] * trace.count
    for index, ct in seeds.items():
        cts[index] = ct if cts[index] is None else add(cts[index], ct)
    for entry in reversed(trace.tape):
        if entry[0] is CUSTOM:
            _backward_custom(entry, cts)
            continue
        prim, out, parents, args, params, ans = entry
        g = cts[out]
        if g is None:
            continue
        cts[out] = None  # intermediate cotangents are dead once used; free them early
        vjps = prim.vjps
        joint = (vjps.rule(tuple(p >= 0 for p in parents), g, ans, *args, **params)
                 if type(vjps) is JointVJP else None)
        for i, parent in enumerate(parents):
            if parent < 0:
                continue
            ct = joint[i] if joint is not None else vjps[i](g, ans, *args, **params)
            if ct is None:  # the rule found no gradient for this input (e.g. integer labels)
                continue
            ct = fit_to(ct, args[i])
            prev = cts[parent]
            cts[parent] = ct if prev is None else add(prev, ct)
    return cts


def _backward_custom(entry, cts):
    _, outs, parents, args, bwd_flat, out_values = entry
    gs = [cts[i] for i in outs]
    if all(g is None for g in gs):
        return
    for i in outs:
        cts[i] = None
    gs = [zeros_like(v) if g is None else g for g, v in zip(gs, out_values)]
    for parent, arg, ct in zip(parents, args, bwd_flat(gs)):
        if parent < 0 or ct is None:
            continue
        ct = fit_to(ct, arg)
        prev = cts[parent]
        cts[parent] = ct if prev is None else add(prev, ct)

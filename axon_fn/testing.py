"""Numerical gradient checking for functions built from axon_fn ops (and your custom layers).

:func:`check_grads` compares the reverse-mode VJP of ``f`` with float64 central differences,
along random directions and, for small inputs, element by element, so a failure names the wrong
entry of the Jacobian.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from ._dtypes import is_real_floating
from ._core import full_value
from .autodiff import vjp
from .backend import to_numpy

__all__ = ["check_grads", "GradientCheckError"]


class GradientCheckError(AssertionError):
    """The VJP of a function disagrees with its finite-difference derivative."""


def _is_float(leaf):
    return hasattr(leaf, "dtype") and is_real_floating(leaf.dtype)


def _to_float64(tree):
    def convert(leaf):
        if isinstance(leaf, float):
            return np.float64(leaf)
        return np.asarray(leaf, dtype=np.float64) if _is_float(leaf) else leaf

    return optree.tree_map(convert, tree)


def _float_leaves(tree):
    """Indices (into the flat leaves) of the leaves that are differentiated."""
    return [i for i, leaf in enumerate(optree.tree_leaves(tree)) if _is_float(leaf)]


def _shift(args, leaf_ids, tangents, scale):
    leaves, treedef = optree.tree_flatten(args)
    leaves = list(leaves)
    for i, t in zip(leaf_ids, tangents):
        leaves[i] = leaves[i] + scale * t
    return treedef.unflatten(leaves)


def _inner(a_leaves, b_leaves):
    return float(sum(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64))
                     for a, b in zip(a_leaves, b_leaves)))


def _output_leaves(f, args):
    return [np.asarray(to_numpy(full_value(o)), np.float64) for o in optree.tree_leaves(f(*args))]


def _pullback_leaves(f, args, cotangent_leaves, leaf_ids):
    out, pullback = vjp(f, *args)
    _, out_tree = optree.tree_flatten(out)
    cts = pullback(out_tree.unflatten(cotangent_leaves))
    leaves = optree.tree_leaves(cts)
    return [np.asarray(to_numpy(full_value(leaves[i])), np.float64) for i in leaf_ids]


def _path_names(args):
    paths, _, _ = optree.tree_flatten_with_path(args)
    return ["args" + "".join(f"[{p!r}]" for p in path) for path in paths]


def check_grads(f: Callable[..., Any], *args: Any, order: int = 1, eps: float = 1e-6,
                atol: float = 1e-6, rtol: float = 1e-5, directions: int = 3,
                jacobian_limit: int = 96, seed: int = 0) -> None:
    """Check ``f``'s reverse-mode derivatives against float64 central differences.

    All floating leaves of ``args`` are cast to float64 and differentiated; other leaves (integer
    labels, indices) are passed through unchanged. ``f`` may return any pytree of arrays.

    * Along ``directions`` random input directions ``v`` and output cotangents ``u``, it checks
      ``<u, (f(x + eps v) - f(x - eps v)) / 2 eps>  ==  <vjp(u), v>``.
    * When inputs and outputs each have at most ``jacobian_limit`` elements, it compares the full
      Jacobian and reports the worst entry by name.
    * ``order=2`` also checks the gradient of the VJP (a second derivative).

    Raises :class:`GradientCheckError` on a mismatch.

    >>> import numpy as np
    >>> from axon_fn import ops
    >>> check_grads(lambda x: ops.tanh(x) * x, np.array([0.3, -1.2]))
    """
    args = _to_float64(args)
    ids = _float_leaves(args)
    if not ids:
        raise GradientCheckError("check_grads: no floating-point argument to differentiate")
    rng = np.random.default_rng(seed)
    in_leaves = optree.tree_leaves(args)
    out_leaves = _output_leaves(f, args)
    names = _path_names(args)

    for _ in range(directions):
        tangents = [rng.standard_normal(np.shape(in_leaves[i])) for i in ids]
        cts = [rng.standard_normal(o.shape) for o in out_leaves]
        plus = _output_leaves(f, _shift(args, ids, tangents, eps))
        minus = _output_leaves(f, _shift(args, ids, tangents, -eps))
        numeric = (_inner(cts, plus) - _inner(cts, minus)) / (2 * eps)
        analytic = _inner(_pullback_leaves(f, args, cts, ids), tangents)
        if not abs(numeric - analytic) <= atol + rtol * abs(numeric):
            raise GradientCheckError(
                f"check_grads: directional derivative mismatch: finite differences give "
                f"{numeric:.10g}, the VJP gives {analytic:.10g}"
            )

    n_in = sum(int(np.size(in_leaves[i])) for i in ids)
    n_out = sum(o.size for o in out_leaves)
    if 0 < n_in <= jacobian_limit and 0 < n_out <= jacobian_limit:
        _check_jacobian(f, args, ids, names, out_leaves, eps, atol, rtol)

    if order >= 2:
        cts = [rng.standard_normal(o.shape) for o in out_leaves]

        def pulled(*xs):
            out, pullback = vjp(f, *xs)
            _, out_tree = optree.tree_flatten(out)
            leaves = optree.tree_leaves(pullback(out_tree.unflatten(cts)))
            return [leaves[i] for i in ids]

        check_grads(pulled, *args, order=order - 1, eps=eps, atol=atol * 10, rtol=rtol * 10,
                    directions=directions, jacobian_limit=jacobian_limit, seed=seed + 1)


def _check_jacobian(f, args, ids, names, out_leaves, eps, atol, rtol):
    in_leaves = optree.tree_leaves(args)
    in_shapes = [np.shape(in_leaves[i]) for i in ids]
    in_sizes = [int(np.prod(s, dtype=np.int64)) for s in in_shapes]
    out_sizes = [o.size for o in out_leaves]

    numeric_columns = []
    for k, size in enumerate(in_sizes):
        for flat in range(size):
            basis = [np.zeros(s) for s in in_shapes]
            basis[k].reshape(-1)[flat] = 1.0
            plus = _output_leaves(f, _shift(args, ids, basis, eps))
            minus = _output_leaves(f, _shift(args, ids, basis, -eps))
            numeric_columns.append(
                np.concatenate([((p - m) / (2 * eps)).ravel() for p, m in zip(plus, minus)]))
    numeric = np.stack(numeric_columns, axis=1) if numeric_columns else np.zeros((0, 0))

    analytic_rows = []
    for o_index, size in enumerate(out_sizes):
        for o_flat in range(size):
            cts = [np.zeros(o.shape) for o in out_leaves]
            cts[o_index].reshape(-1)[o_flat] = 1.0
            pulled = _pullback_leaves(f, args, cts, ids)
            analytic_rows.append(np.concatenate([p.ravel() for p in pulled]))
    analytic = np.stack(analytic_rows, axis=0)

    excess = np.abs(numeric - analytic) - (atol + rtol * np.abs(numeric))
    if excess.size and excess.max() > 0:
        row, col = np.unravel_index(np.argmax(excess), excess.shape)
        o_index = int(np.searchsorted(np.cumsum(out_sizes), row, side="right"))
        o_flat = row - sum(out_sizes[:o_index])
        k = int(np.searchsorted(np.cumsum(in_sizes), col, side="right"))
        flat = col - sum(in_sizes[:k])
        where_out = [int(v) for v in np.unravel_index(o_flat, out_leaves[o_index].shape)]
        where_in = [int(v) for v in np.unravel_index(flat, in_shapes[k])]
        raise GradientCheckError(
            f"check_grads: d output[{o_index}]{where_out} / d {names[ids[k]]}{where_in}: "
            f"finite differences give {numeric[row, col]:.10g}, "
            f"the VJP gives {analytic[row, col]:.10g}"
        )

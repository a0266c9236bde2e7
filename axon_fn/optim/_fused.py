"""Fused optimizer updates: Adam in one C pass per parameter instead of about fifteen numpy
passes (each of which allocates a full-size temporary).

The fused path covers the common case (numpy float32 or float64 leaves, gradients and moments of
one dtype and shape, the C kernels built) and returns ``None`` otherwise, so the caller falls
back to the leafwise numpy formulas, which give the same values up to rounding (the kernel may
fuse a multiply and an add).

>>> import numpy as np
>>> g = {"w": np.array([3.0, -1.0], np.float32)}
>>> zeros = {"w": np.zeros(2, np.float32)}
>>> out = adam_moments_and_update(g, zeros, zeros, 0.9, 0.999, 1e-8, 0.0, 1, scale=-0.1)
>>> out is None or np.allclose(out[2]["w"], [-0.1, 0.1])
True
"""

from __future__ import annotations

import numpy as np
import optree

from .. import _native, _native_ops

__all__ = ["adam_moments_and_update"]


def adam_moments_and_update(updates, mu, nu, b1, b2, eps, eps_root, count, *, scale=1.0):
    """``(mu, nu, update)`` trees for one Adam step with Optax's formulas, the update times
    ``scale``; ``None`` when the fused kernel does not cover these trees."""
    if not _native.available():
        return None
    g_leaves, treedef = optree.tree_flatten(updates)
    mu_leaves, mu_def = optree.tree_flatten(mu)
    nu_leaves, nu_def = optree.tree_flatten(nu)
    if not g_leaves or mu_def != treedef or nu_def != treedef:
        return None
    dtype = getattr(g_leaves[0], "dtype", None)
    if dtype not in (np.float32, np.float64):
        return None
    constants = np.array([1.0 - b1, b1, 1.0 - b2, b2, 1.0 - b1 ** count, 1.0 - b2 ** count,
                          eps_root, eps, scale], dtype)
    results = []
    for g, m, v in zip(g_leaves, mu_leaves, nu_leaves):
        result = _native_ops.adam_leaf(g, m, v, constants)
        if result is None:
            return None
        results.append(result)
    new_mu, new_nu, out = zip(*results)
    return treedef.unflatten(new_mu), treedef.unflatten(new_nu), treedef.unflatten(out)

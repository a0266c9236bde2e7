"""Fused optimizer updates: Adam in one C pass per parameter instead of about fifteen numpy
passes (each of which allocates a full-size temporary).

The fused path covers the common case (numpy float32 or float64 leaves, gradients and moments of
one dtype and shape, the C kernels built) and returns ``None`` otherwise, so the caller falls
back to the leafwise numpy formulas, which give the same values up to rounding (the kernel may
fuse a multiply and an add).

>>> import numpy as np
>>> g = {"w": np.array([3.0, -1.0], np.float32)}
>>> zeros = {"w": np.zeros(2, np.float32)}
>>> out = adam_moments_and_update(g, zeros, zeros, 0.9, 0.999, 1e-8, 0.0, np.int32(1),
...                               scale=-0.1)
>>> out is None or np.allclose(out[2]["w"], [-0.1, 0.1])
True
"""

from __future__ import annotations

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .. import _native, _native_ops
from .._core import numpy_backed, stageable

__all__ = ["adam_moments_and_update"]


def adam_moments_and_update(updates, mu, nu, b1, b2, eps, eps_root, count, *, scale=1.0):
    """``(mu, nu, update)`` trees for one Adam step with Optax's formulas (``count`` the step
    number, from 1), the update times ``scale``; ``None`` when the fused kernel does not cover
    these trees. Which trees it covers depends on their structure, dtypes and shapes only."""
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
    for leaves in zip(g_leaves, mu_leaves, nu_leaves):
        if not all(numpy_backed(a) and a.dtype == dtype and a.shape == leaves[0].shape
                   for a in leaves):
            return None
    n = len(g_leaves)
    out = _adam_step(count, *g_leaves, *mu_leaves, *nu_leaves, b1=b1, b2=b2, eps=eps,
                     eps_root=eps_root, scale=scale)
    return (treedef.unflatten(out[:n]), treedef.unflatten(out[n:2 * n]),
            treedef.unflatten(out[2 * n:]))


@stageable
def _adam_step(count, *leaves, b1, b2, eps, eps_root, scale):
    """All new first moments, then second moments, then updates, from the kernel; one recorded
    step inside ``axon_fn.jit``."""
    n = len(leaves) // 3
    t = int(count)
    constants = np.array([1.0 - b1, b1, 1.0 - b2, b2, 1.0 - b1 ** t, 1.0 - b2 ** t,
                          eps_root, eps, scale], leaves[0].dtype)
    results = [_native_ops.adam_leaf(*map(_contiguous, (g, m, v)), constants)
               for g, m, v in zip(leaves[:n], leaves[n:2 * n], leaves[2 * n:])]
    return tuple(r[0] for r in results) + tuple(r[1] for r in results) + tuple(
        r[2] for r in results)


def _contiguous(a):
    return a if a.flags.c_contiguous else a.copy()  # (np.ascontiguousarray makes 0-d 1-d)

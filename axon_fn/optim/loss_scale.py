"""Loss scaling for mixed-precision training, as in DeepMind's ``jmp``.

In float16 small gradients underflow to zero. Loss scaling multiplies the loss by a large
factor before differentiating (so the gradients are scaled too and stay representable), then
divides the gradients by the same factor. A train step with a loss scale ``ls`` does::

    grads = axon_fn.grad(lambda p: ls.scale(loss_fn(p, batch)))(params)   # scale the loss
    grads = ls.unscale(grads)                                             # unscale the grads
    finite = all_finite(grads)
    ls = ls.adjust(finite)                       # DynamicLossScale: shrink or grow the scale
    if finite:                                   # skip the update on inf/NaN gradients
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)

(:func:`select_tree` picks between two pytrees on a boolean when a branch-free form is
wanted.) numpy reports a float16 overflow as a ``RuntimeWarning``; an overflow is expected
here (it is what shrinks the scale), so run the gradient computation under
``np.errstate(over="ignore", invalid="ignore")`` when warnings are errors. Loss scales are immutable NamedTuples (so pytrees, storable in a train state);
``adjust`` returns a new one.

- :class:`NoOpLossScale` does nothing (full-precision training, same code path);
- :class:`StaticLossScale` scales by a fixed factor;
- :class:`DynamicLossScale` divides its scale by ``factor`` (not below ``min_loss_scale``)
  whenever the gradients are not finite, and multiplies it by ``factor`` after ``period``
  consecutive finite steps.

``scale`` and ``unscale`` multiply every floating leaf by the (inverse) scale cast to that
leaf's dtype, so float16 stays float16; they are differentiable, so ``scale`` may be used
inside ``axon_fn.grad``.

>>> import numpy as np
>>> ls = DynamicLossScale(loss_scale=2.0 ** 10, period=2)
>>> grads = ls.unscale({"w": np.array([2048.0], np.float16)})
>>> grads["w"], bool(all_finite(grads))
(array([2.], dtype=float16), True)
>>> float(ls.adjust(all_finite(grads)).adjust(np.array(True)).loss_scale)
2048.0
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from .. import _pytree as optree  # optree in axon_fn's registry namespace

from .._dtypes import is_real_floating
from .. import tree as tree_util
from .._core import full_value
from ..backend import array_module
from ..errors import InvalidArgumentError, ShapeError
from ..typing import Array, ArrayLike, PyTree

__all__ = ["NoOpLossScale", "StaticLossScale", "DynamicLossScale", "all_finite", "select_tree"]


def _as_float_scalar(x, name):
    """A Python scalar becomes a 0-d float32 array; arrays are kept (warning if not floating,
    as jmp does)."""
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return np.asarray(x, np.float32)
    if isinstance(x, np.generic):
        x = np.asarray(x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and not is_real_floating(np.dtype(dtype)):
        warnings.warn(f"Expected floating type for {name}, got {dtype}", stacklevel=3)
    return x


def _as_int_scalar(x):
    if isinstance(x, (bool, int, np.integer)) and not isinstance(x, np.ndarray):
        return np.asarray(x, np.int32)
    return x


def _scale_tree(tree, factor):
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is what adjust detects
        return tree_util.scale(tree, factor)


class NoOpLossScale(NamedTuple):
    """A loss scale that does nothing: ``scale`` and ``unscale`` return the tree as it is.

    >>> ls = NoOpLossScale()
    >>> ls.loss_scale, ls.scale(3.0), ls.adjust(np.array(False)) is ls
    (1, 3.0, True)
    """

    @property
    def loss_scale(self) -> ArrayLike:
        """Always 1."""
        return 1

    def scale(self, tree: PyTree) -> PyTree:
        """``tree`` unchanged."""
        return tree

    def unscale(self, tree: PyTree) -> PyTree:
        """``tree`` unchanged."""
        return tree

    def adjust(self, grads_finite: ArrayLike) -> NoOpLossScale:
        """``self``: a no-op scale never changes."""
        del grads_finite
        return self


class StaticLossScale(NamedTuple):
    """Scale by the constant ``loss_scale``; ``adjust`` returns the same scale.

    >>> ls = StaticLossScale(128.0)
    >>> ls.scale(np.array([1.0, 2.0], np.float32))
    array([128., 256.], dtype=float32)
    >>> ls.unscale(np.array([64.0]))
    array([0.5])
    """

    loss_scale: Any

    def scale(self, tree: PyTree) -> PyTree:
        """Every leaf of ``tree`` times ``loss_scale``."""
        return _scale_tree(tree, self.loss_scale)

    def unscale(self, tree: PyTree) -> PyTree:
        """Every leaf of ``tree`` times ``1 / loss_scale``."""
        return _scale_tree(tree, 1 / np.asarray(self.loss_scale, np.float64))

    def adjust(self, grads_finite: ArrayLike) -> StaticLossScale:
        """``self``: a static scale never changes."""
        del grads_finite
        return self


class _DynamicFields(NamedTuple):
    loss_scale: Any
    counter: Any
    period: int
    factor: int
    min_loss_scale: Any


class DynamicLossScale(_DynamicFields):
    """A loss scale that adapts to keep gradients finite (jmp's algorithm).

    Fields: ``loss_scale`` (0-d float32), ``counter`` (0-d int32, consecutive finite steps
    modulo ``period``), ``period``, ``factor`` and ``min_loss_scale`` (0-d float32). Python
    numbers given for the array fields are converted.

    ``adjust(grads_finite)``: on finite gradients the counter advances, and when it reaches
    ``period`` it wraps to 0 and the scale is multiplied by ``factor`` (unless that overflows to
    inf); on non-finite gradients the counter resets to 0 and the scale is divided by
    ``factor``, but not below ``min_loss_scale``.

    >>> ls = DynamicLossScale(loss_scale=8.0, period=3)
    >>> for finite in [True, True, False, True, True, True]:
    ...     ls = ls.adjust(np.array(finite))
    ...     print(float(ls.loss_scale), int(ls.counter))
    8.0 1
    8.0 2
    4.0 0
    4.0 1
    4.0 2
    8.0 0
    """

    __slots__ = ()

    def __new__(cls, loss_scale: ArrayLike = 2.0 ** 15, counter: ArrayLike = 0, period: int = 2000,
                factor: float = 2, min_loss_scale: float = 1) -> DynamicLossScale:
        return super().__new__(cls, _as_float_scalar(loss_scale, "loss_scale"),
                               _as_int_scalar(counter), period, factor,
                               _as_float_scalar(min_loss_scale, "min_loss_scale"))

    def scale(self, tree: PyTree) -> PyTree:
        """Every leaf of ``tree`` times ``loss_scale``."""
        return _scale_tree(tree, self.loss_scale)

    def unscale(self, tree: PyTree) -> PyTree:
        """Every leaf of ``tree`` times ``1 / loss_scale``."""
        return _scale_tree(tree, 1 / np.asarray(self.loss_scale, np.float64))

    def adjust(self, grads_finite: ArrayLike) -> DynamicLossScale:
        """The next loss scale, given whether this step's gradients were all finite (a boolean
        scalar, e.g. from :func:`all_finite`)."""
        finite = _bool_scalar(grads_finite, "DynamicLossScale.adjust", "grads_finite")
        loss_scale = np.asarray(self.loss_scale)
        dtype = loss_scale.dtype if is_real_floating(loss_scale.dtype) else np.float32
        counter = np.asarray(self.counter)
        if finite:
            if int(counter) == self.period - 1:
                with np.errstate(over="ignore"):
                    grown = np.asarray(loss_scale * self.factor, dtype)
                new_scale = grown if np.all(np.isfinite(grown)) else loss_scale
            else:
                new_scale = loss_scale
            new_counter = (counter + 1) % self.period
        else:
            new_scale = np.maximum(np.asarray(self.min_loss_scale),
                                   loss_scale / np.asarray(self.factor, dtype))
            new_counter = counter * 0
        return DynamicLossScale(np.asarray(new_scale, dtype),
                                np.asarray(new_counter, counter.dtype),
                                self.period, self.factor, self.min_loss_scale)


def _bool_scalar(pred, where, name):
    value = full_value(pred)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    dtype = getattr(value, "dtype", None)
    if dtype is None or np.dtype(dtype) != np.bool_ or getattr(value, "ndim", None) != 0:
        raise InvalidArgumentError(
            f"{where}: `{name}` must be a boolean scalar (e.g. from all_finite), got "
            f"{type(value).__name__} with dtype {dtype} and shape {getattr(value, 'shape', None)}")
    return bool(value)


def all_finite(tree: PyTree) -> Array:
    """A 0-d boolean array: True when no leaf of ``tree`` holds an inf or a NaN (True for an
    empty tree).

    >>> all_finite({"w": np.array([1.0, 2.0]), "b": np.array(np.inf)})
    array(False)
    >>> all_finite([])
    array(True)
    """
    for leaf in optree.tree_leaves(tree):
        value = full_value(leaf)
        xp = array_module(value)
        if not bool(xp.all(xp.isfinite(value))):
            return np.asarray(False)
    return np.asarray(True)


def select_tree(pred: ArrayLike, a: PyTree, b: PyTree) -> PyTree:
    """``a`` when the boolean scalar ``pred`` is True, else ``b``; the trees must have the
    same structure and leaf shapes (as ``jax.lax.select`` requires).

    >>> select_tree(np.array(False), {"w": np.ones(2)}, {"w": np.zeros(2)})
    {'w': array([0., 0.])}
    """
    choose_a = _bool_scalar(pred, "select_tree", "pred")
    if tree_util.structure(a) != tree_util.structure(b):
        raise ShapeError(f"select_tree: `a` and `b` differ in structure: "
                         f"{tree_util.structure(a)} vs {tree_util.structure(b)}")
    for (path, x), y in zip(tree_util.leaves_with_path(a), tree_util.leaves(b)):
        if np.shape(full_value(x)) != np.shape(full_value(y)):
            raise ShapeError(f"select_tree: leaf '{path}' has shape {np.shape(full_value(x))} "
                             f"in `a` but {np.shape(full_value(y))} in `b`")
    return a if choose_a else b

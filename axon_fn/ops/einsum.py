"""Einstein summation and the products built on it: einsum, dot, outer, tensordot.

``einsum`` is one primitive with the subscripts as a static keyword. The VJP for an operand is
another einsum: the cotangent takes the output's place and the operand's subscripts become the
output. Labels that occur only in that operand were summed away, so their gradient is broadcast
back; labels repeated within it (traces, diagonals) are routed through identity matrices.

>>> import numpy as np
>>> from axon_fn import ops
>>> ops.einsum("bi,oij,bj->bo", np.ones((2, 3)), np.ones((4, 3, 5)), np.ones((2, 5))).shape
(2, 4)
"""

from __future__ import annotations

import functools
import string
from collections import Counter
from typing import Sequence

import numpy as np

from .._core import AbstractArray, VariadicVJP, primitive
from ..errors import AxonTypeError, ShapeError
from ..typing import Array, ArrayLike
from ._rules import as_operand, in_float32, normalize_axis, result_dtype, shape_of
from .creation import eye
from .elementwise import multiply
from .linalg import matmul
from .shape import broadcast_to, reshape

__all__ = ["einsum", "dot", "outer", "tensordot"]

_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # numpy's implicit-mode order
_MAX_OPERANDS = 64  # numpy's limit on einsum operands
# Below this many multiply-adds numpy's path search costs more than it saves.
_OPTIMIZE_MIN_WORK = 1 << 15


# Parsing -----------------------------------------------------------------------------------------


def _bad(subscripts, why):
    return ShapeError(f"einsum: invalid subscripts {subscripts!r}: {why}")


def _expand_ellipsis(subscripts, term, ndim, letters, operand):
    if "..." not in term:
        if "." in term:
            raise _bad(subscripts, "'.' may only appear as part of an ellipsis '...'")
        if len(term) != ndim:
            raise ShapeError(
                f"einsum: operand {operand} has {ndim} dimensions but its subscripts {term!r} "
                f"name {len(term)}"
            )
        return term
    head, tail = term.split("...", 1)
    if "." in head + tail:
        raise _bad(subscripts, "each term may hold at most one ellipsis '...'")
    count = ndim - len(head) - len(tail)
    if count < 0:
        raise ShapeError(
            f"einsum: operand {operand} has {ndim} dimensions but its subscripts {term!r} "
            f"name {len(head) + len(tail)}"
        )
    return head + letters[len(letters) - count:] + tail


@functools.lru_cache(maxsize=1024)
def _parse(subscripts, ndims):
    """Input terms and output term with ``...`` spelled out and the implicit output made
    explicit (numpy's rules: labels seen once, in alphabetical order, after the ellipsis)."""
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise _bad(subscripts, "more than one '->'")
    inputs, arrow, output = spec.partition("->")
    if set(spec) - set(_LETTERS) - set(".,->"):
        bad = sorted(set(spec) - set(_LETTERS) - set(".,->"))
        raise _bad(subscripts, f"labels must be letters, got {bad}")
    if "-" in inputs + output or ">" in inputs + output:
        raise _bad(subscripts, "'-' and '>' may only appear together as '->'")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operands, got {len(ndims)}"
        )
    free = [c for c in _LETTERS if c not in spec]
    broadcast = max((nd - len(t.replace("...", "")) for t, nd in zip(terms, ndims) if "..." in t),
                    default=0)
    if broadcast > len(free):
        raise _bad(subscripts, "too many dimensions under '...'")
    letters = "".join(free[:broadcast])
    terms = tuple(_expand_ellipsis(subscripts, t, nd, letters, i)
                  for i, (t, nd) in enumerate(zip(terms, ndims)))
    if not arrow:
        counts = Counter("".join(terms))
        output = letters + "".join(sorted(c for c, n in counts.items()
                                          if n == 1 and c not in letters))
    elif "..." in output:
        output = output.replace("...", letters, 1)
        if "." in output:
            raise _bad(subscripts, "the output may hold at most one ellipsis '...'")
    elif broadcast:
        raise _bad(subscripts, "the inputs have '...' dimensions but the output has no '...'")
    elif "." in output:
        raise _bad(subscripts, "'.' may only appear as part of an ellipsis '...'")
    seen = set("".join(terms))
    for c in output:
        if c not in seen:
            raise _bad(subscripts, f"output label {c!r} appears in no input")
        if output.count(c) > 1:
            raise _bad(subscripts, f"output label {c!r} is repeated")
    return terms, output


def _label_sizes(terms, shapes):
    """Each label's size (size-1 dimensions broadcast, as in numpy), or a ShapeError."""
    sizes, owner = {}, {}
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        within = {}
        for c, n in zip(term, shape):
            if within.setdefault(c, n) != n:
                raise ShapeError(
                    f"einsum: label {c!r} is repeated in operand {i} (shape {shape}) with "
                    f"different sizes {within[c]} and {n}"
                )
            if c not in sizes or sizes[c] == 1:
                sizes[c], owner[c] = n, (i, shape)
            elif n not in (1, sizes[c]):
                j, other = owner[c]
                raise ShapeError(
                    f"einsum: label {c!r} has size {sizes[c]} in operand {j} (shape {other}) but "
                    f"size {n} in operand {i} (shape {shape})"
                )
    return sizes


@functools.lru_cache(maxsize=1024)
def _plan(subscripts, shapes):
    """The explicit expression and whether numpy's contraction-order search pays off."""
    terms, output = _parse(subscripts, tuple(len(s) for s in shapes))
    sizes = _label_sizes(terms, shapes)
    work = int(np.prod(list(sizes.values()), dtype=np.float64))
    return ",".join(terms) + "->" + output, len(shapes) > 1 and work >= _OPTIMIZE_MIN_WORK


# The primitive -----------------------------------------------------------------------------------


@in_float32("einsum")
def _einsum_impl(xp, *operands, subscripts):
    expr, optimize = _plan(subscripts, tuple(np.shape(o) for o in operands))
    if xp is not np:  # numpy scalars may ride along with device arrays
        operands = [xp.asarray(o) for o in operands]
    return xp.einsum(expr, *operands, optimize=optimize)


def _einsum_rule(*operands, subscripts):
    shapes = tuple(shape_of(o) for o in operands)
    terms, output = _parse(subscripts, tuple(len(s) for s in shapes))
    sizes = _label_sizes(terms, shapes)
    return AbstractArray(tuple(sizes[c] for c in output), result_dtype(*operands))


def _operand_grad(g, operands, terms, output, position):
    """The cotangent of ``operands[position]``: an einsum of ``g`` with the other operands."""
    x_shape = shape_of(operands[position])
    x_term = terms[position]
    fresh = iter(c for c in _LETTERS if c not in "".join(terms) + output)
    sub_terms, args = [output], [g]
    for i, (term, operand) in enumerate(zip(terms, operands)):
        if i != position:
            sub_terms.append(term)
            args.append(operand)
    # A label repeated in x (a diagonal) gets a fresh name tied to the first by an identity.
    target, seen = [], set()
    for c, n in zip(x_term, x_shape):
        if c in seen:
            renamed = next(fresh)
            sub_terms.append(c + renamed)
            args.append(eye(n, dtype=g.dtype, like=g))
            target.append(renamed)
        else:
            seen.add(c)
            target.append(c)
    available = set("".join(sub_terms))
    kept = "".join(c for c in target if c in available)
    if len(args) == 1 and output == kept:
        grad = g
    else:
        grad = _einsum(*args, subscripts=",".join(sub_terms) + "->" + kept)
    if len(kept) != len(target):  # labels summed only inside x: broadcast their gradient back
        sizes = iter(shape_of(grad))
        grad = reshape(grad, shape=tuple(next(sizes) if c in available else 1 for c in target))
    # Dimensions x broadcast (size 1 in x) are summed by the engine; the others must match x.
    full = tuple(max(a, b) for a, b in zip(shape_of(grad), x_shape))
    if shape_of(grad) != full:
        grad = broadcast_to(grad, shape=full)
    return grad


def _einsum_vjp(position):
    def rule(g, ans, *operands, subscripts):
        terms, output = _parse(subscripts, tuple(len(shape_of(o)) for o in operands))
        return _operand_grad(g, operands, terms, output, position)

    return rule


_einsum = primitive(
    "einsum", _einsum_impl, _einsum_rule,
    VariadicVJP(_einsum_vjp),
)


def einsum(subscripts: str, *operands: ArrayLike, out: None = None,
           optimize: bool | str = False) -> Array:
    """Einstein summation over ``operands`` as ``np.einsum`` with a subscripts string.

    Explicit (``"ij,jk->ik"``) and implicit (``"ij,jk"``) modes, ``...`` for broadcast
    dimensions, repeated labels for traces and diagonals. Differentiable in every operand,
    to any order.

    >>> einsum("ij,jk->ik", np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    >>> float(einsum("ii", np.eye(3)))
    3.0
    """
    if out is not None:
        raise AxonTypeError("einsum: out= is not supported: axon_fn ops return new arrays")
    if len(operands) > _MAX_OPERANDS:
        raise ShapeError(f"einsum: at most {_MAX_OPERANDS} operands, got {len(operands)}")
    return _einsum(*(as_operand(o) for o in operands), subscripts=subscripts)


# Compositions ------------------------------------------------------------------------------------


def tensordot(a: ArrayLike, b: ArrayLike,
              axes: int | Sequence[int] | Sequence[Sequence[int]] = 2) -> Array:
    """Sum of products over ``axes``: the last ``axes`` axes of ``x`` with the first of ``y``
    for an int, or the axes named by a pair of sequences, as ``np.tensordot``.

    >>> tensordot(np.ones((2, 3, 4)), np.ones((3, 4, 5))).shape
    (2, 5)
    >>> tensordot(np.ones((2, 3)), np.ones((4, 2)), axes=([0], [1])).shape
    (3, 4)
    """
    x, y = as_operand(a), as_operand(b)
    xs, ys = shape_of(x), shape_of(y)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(len(xs), len(ys)):
            raise ShapeError(f"tensordot: axes={axes} does not fit shapes {xs} and {ys}")
        x_axes, y_axes = list(range(len(xs) - axes, len(xs))), list(range(axes))
    else:
        x_axes, y_axes = ([a] if isinstance(a, (int, np.integer)) else list(a) for a in axes)
        if len(x_axes) != len(y_axes):
            raise ShapeError(
                f"tensordot: axes {tuple(x_axes)} of x and {tuple(y_axes)} of y differ in number"
            )
        x_axes = [normalize_axis("tensordot", a, len(xs), argument="axes") for a in x_axes]
        y_axes = [normalize_axis("tensordot", a, len(ys), argument="axes") for a in y_axes]
    for a, b in zip(x_axes, y_axes):
        if xs[a] != ys[b]:
            raise ShapeError(
                f"tensordot: axis {a} of x (shape {xs}) has length {xs[a]} but axis {b} of y "
                f"(shape {ys}) has length {ys[b]}"
            )
    if len(xs) + len(ys) > len(_LETTERS):
        raise ShapeError(f"tensordot: too many dimensions in shapes {xs} and {ys}")
    x_term = list(_LETTERS[:len(xs)])
    y_term = list(_LETTERS[len(xs):len(xs) + len(ys)])
    for a, b in zip(x_axes, y_axes):
        y_term[b] = x_term[a]
    out = [c for i, c in enumerate(x_term) if i not in x_axes]
    out += [c for i, c in enumerate(y_term) if i not in y_axes]
    return _einsum(x, y, subscripts="".join(x_term) + "," + "".join(y_term) + "->" + "".join(out))


def dot(a: ArrayLike, b: ArrayLike, out: None = None) -> Array:
    """numpy's ``dot``: a product for scalars, the inner product of vectors, the matrix product
    for 2-d operands, and for N-d a sum over the last axis of ``x`` and the second-to-last of
    ``y``.

    >>> float(dot(np.array([1.0, 2.0]), np.array([3.0, 4.0])))
    11.0
    >>> dot(np.ones((2, 3)), np.ones(3))
    array([3., 3.])
    """
    if out is not None:
        raise AxonTypeError("dot: out= is not supported: axon_fn ops return new arrays")
    x, y = as_operand(a), as_operand(b)
    x_rank, y_rank = len(shape_of(x)), len(shape_of(y))
    if x_rank == 0 or y_rank == 0:
        return multiply(x, y)
    if y_rank <= 2 or x_rank == 1:  # matmul agrees with dot here
        return matmul(x, y)
    return tensordot(x, y, axes=([-1], [-2]))


def outer(a: ArrayLike, b: ArrayLike, out: None = None) -> Array:
    """The outer product of ``x`` and ``y`` (both flattened), as ``np.outer``.

    >>> outer(np.array([1.0, 2.0]), np.array([1.0, 10.0, 100.0]))
    array([[  1.,  10., 100.],
           [  2.,  20., 200.]])
    """
    if out is not None:
        raise AxonTypeError("outer: out= is not supported: axon_fn ops return new arrays")
    return multiply(reshape(as_operand(a), shape=(-1, 1)), reshape(as_operand(b), shape=(1, -1)))

"""When a handler runs: filters over how many times its event has fired.

A filter is a function ``(count_total, count_in_epoch, state) -> bool`` where the counts are the
event's occurrences so far, this one included (1 for the first). ``loop.handle`` accepts a
filter, the name ``"always"`` / ``"first"``, a dict such as ``{"every": 10}``, or a predicate
of the loop state.

>>> f = every(3)
>>> [f(n, n, None) for n in range(1, 7)]
[False, False, True, False, False, True]
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from .._checks import is_int
from ..errors import AxonTypeError, InvalidArgumentError

__all__ = ["always", "first", "every", "before", "after", "once", "as_filter"]

Filter = Callable[[int, int, Any], bool]
"""``filter(total_count, epoch_count, state) -> bool``: whether a handler runs this time."""


def _count(n, where):
    if not is_int(n) or n < 1:
        raise InvalidArgumentError(f"filters.{where}: `n` must be a positive int, got {n!r}")
    return int(n)


def _pick(within_epoch):
    return (lambda total, epoch: epoch) if within_epoch else (lambda total, epoch: total)


def always() -> Filter:
    """Every time the event fires.

    >>> always()(5, 1, None)
    True
    """
    return lambda total, epoch, state: True


def first(*, within_epoch: bool = False) -> Filter:
    """Only the first time (in the whole run, or in each epoch).

    >>> [first()(n, n, None) for n in (1, 2)]
    [True, False]
    """
    count = _pick(within_epoch)
    return lambda total, epoch, state: count(total, epoch) == 1


def every(n: int, *, within_epoch: bool = False) -> Filter:
    """Every ``n``-th time: the n-th, 2n-th, ... (see the module example)."""
    n, count = _count(n, "every"), _pick(within_epoch)
    return lambda total, epoch, state: count(total, epoch) % n == 0


def before(n: int, *, within_epoch: bool = False) -> Filter:
    """The times before the ``n``-th (counts 1 .. n-1).

    >>> [before(3)(k, k, None) for k in (1, 2, 3)]
    [True, True, False]
    """
    n, count = _count(n, "before"), _pick(within_epoch)
    return lambda total, epoch, state: count(total, epoch) < n


def after(n: int, *, within_epoch: bool = False) -> Filter:
    """The times after the ``n``-th (counts n+1, n+2, ...).

    >>> [after(2)(k, k, None) for k in (2, 3)]
    [False, True]
    """
    n, count = _count(n, "after"), _pick(within_epoch)
    return lambda total, epoch, state: count(total, epoch) > n


def once(n: int, *, within_epoch: bool = False) -> Filter:
    """Exactly the ``n``-th time.

    >>> [once(2)(k, k, None) for k in (1, 2, 3)]
    [False, True, False]
    """
    n, count = _count(n, "once"), _pick(within_epoch)
    return lambda total, epoch, state: count(total, epoch) == n


_BY_NAME = {"every": every, "before": before, "after": after, "once": once}


def as_filter(spec: Any, where: str = "handle") -> Filter:
    """A filter from any accepted spelling (see the module docstring).

    >>> as_filter({"every": 2, "within_epoch": True})(3, 2, None)
    True
    """
    if spec is None or spec == "always":
        return always()
    if spec == "first":
        return first()
    if isinstance(spec, dict):
        spec = dict(spec)
        within = spec.pop("within_epoch", False)
        if len(spec) != 1 or next(iter(spec)) not in _BY_NAME:
            raise InvalidArgumentError(f"{where}: a filter dict needs one of {sorted(_BY_NAME)} "
                                       f"(and optionally within_epoch), got {spec!r}")
        (name, n), = spec.items()
        return _BY_NAME[name](n, within_epoch=within)
    if callable(spec):
        try:
            arity = sum(1 for p in inspect.signature(spec).parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                               p.POSITIONAL_OR_KEYWORD))
        except (TypeError, ValueError):
            arity = 3
        if arity == 1:  # a predicate of the loop state
            return lambda total, epoch, state: bool(spec(state))
        return spec
    raise AxonTypeError(f"{where}: `filter` must be 'always', 'first', a dict like "
                        f"{{'every': 10}}, a filter from axon_fn.loop.filters or a predicate of "
                        f"the loop state; got {spec!r}")

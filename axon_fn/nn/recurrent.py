"""Graph constructors for the recurrent layers: lstm, gru and conv_lstm.

Each runs the functional layer of :mod:`axon_fn.layers.recurrent` over a ``(batch, time, ...)``
sequence node and returns the output sequence node, so it chains with ``>>``. Parameters
(per layer, PyTorch gate orders; ``u`` = units or filters, ``F`` = input features/channels):

* lstm: ``input_kernel (F, 4u)``, ``hidden_kernel (u, 4u)``, ``bias (4u,)`` (gates i, f, g, o)
* gru: ``input_kernel (F, 3u)``, ``hidden_kernel (u, 3u)``, ``input_bias (3u,)``,
  ``hidden_bias (3u,)`` (gates r, z, n)
* conv_lstm: ``input_kernel (*K, F, 4u)``, ``hidden_kernel (*K, u, 4u)``, ``bias (4u,)``

Input kernels start glorot-uniform, hidden kernels orthogonal and biases at zero (the LSTM
forget-gate bias too: no +1 offset). With ``bidirectional=True`` the layer holds both sets,
flat, prefixed ``forward_`` and ``backward_`` (``forward_input_kernel``, ...,
``backward_bias``), and merges the two output sequences.

Carries: an LSTM / ConvLSTM carry is a pair ``(c, h)``, a GRU carry is ``h``; a bidirectional
carry is ``(forward_carry, backward_carry)``. An initial ``carry`` is given as that structure of
nodes (a node holding a tuple, such as a container, is split into its parts); the final carry
of ``return_state=True`` comes back in the same structure of nodes, so it can be unpacked and
fed to another recurrent layer.

>>> import axon_fn
>>> x = axon_fn.input("x", shape=(None, 5, 3))
>>> axon_fn.get_output_shape(x >> lstm(4) >> gru(2, bidirectional=True))
(1, 5, 4)
"""

from __future__ import annotations

from typing import Callable, Sequence

from .. import initializers as init
from .._checks import is_int
from ..errors import AxonTypeError, InvalidArgumentError, ShapeError
from ..graph.core import make_node, param
from ..graph.node import Node, constructor
from ..initializers import Initializer
from ..layers import recurrent as _recurrent
from ..typing import Array, PyTree
from ._common import positive_int

__all__ = ["lstm", "gru", "conv_lstm"]

_MERGES = ("concatenate", "sum", "mean")
_PAIR = (None, None)  # carry structures: None is one node, a tuple a tuple of them
_KINDS = {  # functional layer, gate count, bias names, carry structure
    "lstm": (_recurrent.lstm, 4, ("bias",), _PAIR),
    "gru": (_recurrent.gru, 3, ("input_bias", "hidden_bias"), None),
    "conv_lstm": (_recurrent.conv_lstm, 4, ("bias",), _PAIR),
}


def _element(value, *, path):
    for i in path:
        value = value[i]
    return value


def _pick(node, structure, path=()):
    """Nodes for the parts of ``node``'s (nested tuple) value, in ``structure``."""
    if structure is None:
        return make_node("element", [node], _element, opts={"path": path}) if path else node
    return tuple(_pick(node, sub, path + (i,)) for i, sub in enumerate(structure))


def _leaves(carry, structure):
    """The carry's nodes in order (a node holding a tuple is split), or None on a mismatch."""
    if isinstance(carry, Node):
        return [carry] if structure is None else _flatten(_pick(carry, structure))
    if structure is None or not isinstance(carry, (tuple, list)) or len(carry) != len(
            structure):
        return None
    parts = [_leaves(part, sub) for part, sub in zip(carry, structure)]
    return None if None in parts else [n for part in parts for n in part]


def _carry_nodes(layer, carry, structure, bidirectional):
    leaves = _leaves(carry, structure)
    if leaves is None:
        one = "h" if layer == "gru" else "(c, h)"
        expected = (f"({one.replace('h', 'h_fwd').replace('c,', 'c_fwd,')}, "
                    f"{one.replace('h', 'h_bwd').replace('c,', 'c_bwd,')})" if bidirectional
                    else one)
        got = (f"a {type(carry).__name__} of {len(carry)}" if isinstance(carry, (tuple, list))
               else type(carry).__name__)
        expected = ("a model node h" if structure is None else
                    f"nodes {expected} (or one node holding that tuple)")
        raise AxonTypeError(f"{layer}: `carry` expected {expected}, got {got}")
    return leaves


def _flatten(tree):
    return [tree] if not isinstance(tree, tuple) else [n for t in tree for n in _flatten(t)]


def _unflatten(structure, leaves):
    if structure is None:
        return next(leaves)
    return tuple(_unflatten(sub, leaves) for sub in structure)


def _forward(x, *rest, kind, n_carry, structure, has_mask, names, bidirectional, merge, reverse,
             return_state):
    fn = _KINDS[kind][0]
    carry = _unflatten(structure, iter(rest[:n_carry])) if n_carry else None
    mask = rest[n_carry] if has_mask else None
    params = dict(zip(names, rest[n_carry + has_mask:]))
    if bidirectional:
        forward = {n[8:]: v for n, v in params.items() if n.startswith("forward_")}
        backward = {n[9:]: v for n, v in params.items() if n.startswith("backward_")}
        out, final = _recurrent.bidirectional(fn, x, forward, backward, carry=carry, mask=mask,
                                              merge=merge)
    else:
        out, final = fn(x, params, carry=carry, mask=mask, reverse=reverse)
    return (out, final) if return_state else out


def _rank_check(layer, layout, rank, exact):
    def check(shape):
        if len(shape) < rank or (exact and len(shape) != rank):
            raise ShapeError(f"{layer}: the input `x` expected shape {layout}, got shape {shape}")
        return shape
    return check


def _recurrent_layer(kind, x, units, kernel_size, carry, mask, reverse, bidirectional, merge,
                     return_state, initializers, name):
    _, gates, bias_names, structure = _KINDS[kind]
    what = "filters" if kind == "conv_lstm" else "units"
    units = positive_int(units, kind, what)
    if not callable(merge) and merge not in _MERGES:
        raise InvalidArgumentError(f"{kind}: `merge` expected one of {_MERGES} or a function "
                                   f"merge(forward, backward), got {merge!r}")
    if bidirectional and reverse:
        raise InvalidArgumentError(f"{kind}: `reverse` expected False with bidirectional=True "
                                   f"(the backward direction already runs in reverse), got True")
    if mask is not None and not isinstance(mask, Node):
        raise AxonTypeError(f"{kind}: `mask` expected a model node of shape (batch, time), got "
                            f"{type(mask).__name__}")
    if bidirectional:
        structure = (structure, structure)
    carry_nodes = [] if carry is None else _carry_nodes(kind, carry, structure, bidirectional)
    kernel_init, hidden_init, bias_init = initializers
    if kind == "conv_lstm":
        check = _rank_check(kind, "(batch, time, *spatial, channels)", 4, exact=False)

        def window(s):
            spatial = len(check(s)) - 3
            if is_int(kernel_size):
                return (kernel_size,) * spatial
            if len(kernel_size) != spatial:
                raise ShapeError(f"conv_lstm: `kernel_size` expected {spatial} sizes (one per "
                                 f"spatial axis of input shape {s}), got {kernel_size}")
            return kernel_size

        def input_shape(s, *_):
            return (*window(s), s[-1], gates * units)

        def hidden_shape(s, *_):
            return (*window(s), units, gates * units)
    else:
        check = _rank_check(kind, "(batch, time, features)", 3, exact=True)

        def input_shape(s, *_):
            return (check(s)[-1], gates * units)

        hidden_shape = (units, gates * units)
    declared = [("input_kernel", input_shape, kernel_init or init.glorot_uniform()),
                ("hidden_kernel", hidden_shape, hidden_init or init.orthogonal())]
    declared += [(b, (gates * units,), bias_init or init.zeros()) for b in bias_names]
    prefixes = ("forward_", "backward_") if bidirectional else ("",)
    params = [param(p + n, shape, i) for p in prefixes for n, shape, i in declared]
    args = [x, *carry_nodes, *([mask] if mask is not None else []), *params]
    node = make_node(kind, args, _forward, name=name, opts={
        "kind": kind, "n_carry": len(carry_nodes), "structure": structure,
        "has_mask": mask is not None, "names": tuple(p.name for p in params),
        "bidirectional": bool(bidirectional), "merge": merge, "reverse": bool(reverse),
        "return_state": bool(return_state)})
    if not return_state:
        return node
    return _pick(node, (None, structure))


def _kernel_size(value):
    sizes = (value,) if is_int(value) else value
    if not (isinstance(sizes, (tuple, list)) and sizes and all(is_int(k) and k > 0
                                                               for k in sizes)):
        raise InvalidArgumentError(f"conv_lstm: `kernel_size` expected a positive int or a tuple "
                                   f"of positive ints (one per spatial axis), got {value!r}")
    return int(value) if is_int(value) else tuple(int(k) for k in sizes)


@constructor("lstm")
def lstm(x: Node, units: int, *, carry: Node | tuple[Node, ...] | None = None,
         mask: Node | None = None, reverse: bool = False, bidirectional: bool = False,
         merge: str | Callable[[Array, Array], Array] = "concatenate", return_state: bool = False,
         kernel_initializer: Initializer | None = None,
         recurrent_initializer: Initializer | None = None,
         bias_initializer: Initializer | None = None,
         name: str | None = None) -> Node | tuple[Node, PyTree]:
    """An LSTM over a ``(batch, time, features)`` node; outputs ``(batch, time, units)``.

    ``carry``: the initial ``(c, h)`` nodes, each ``(batch, units)`` (zeros by default).
    ``mask``: a ``(batch, time)`` node, nonzero on valid steps (a masked step keeps the state
    and outputs zeros). ``reverse`` runs from the last step. ``bidirectional`` runs both ways
    with separate parameters and merges the outputs (``merge``: ``"concatenate"``, ``"sum"``,
    ``"mean"`` or ``merge(forward, backward)``). ``return_state=True`` returns
    ``(outputs, (c, h))`` nodes (bidirectional: ``(outputs, ((c, h), (c, h)))``). All
    biases start at zero, the forget gate's included.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 5, 3))
    >>> outputs, (c, h) = lstm(x, 4, return_state=True)
    >>> axon_fn.get_output_shape((outputs, h))
    ((1, 5, 4), (1, 4))
    >>> {k: v.shape for k, v in axon_fn.init(outputs)["lstm_0"].items()}
    {'input_kernel': (3, 16), 'hidden_kernel': (4, 16), 'bias': (16,)}
    """
    return _recurrent_layer("lstm", x, units, None, carry, mask, reverse, bidirectional, merge,
                            return_state, (kernel_initializer, recurrent_initializer,
                                           bias_initializer), name)


@constructor("gru")
def gru(x: Node, units: int, *, carry: Node | tuple[Node, ...] | None = None,
        mask: Node | None = None, reverse: bool = False, bidirectional: bool = False,
        merge: str | Callable[[Array, Array], Array] = "concatenate", return_state: bool = False,
        kernel_initializer: Initializer | None = None,
        recurrent_initializer: Initializer | None = None,
        bias_initializer: Initializer | None = None,
        name: str | None = None) -> Node | tuple[Node, PyTree]:
    """A GRU (PyTorch's equations) over a ``(batch, time, features)`` node; outputs
    ``(batch, time, units)``.

    The keywords are :func:`lstm`'s; the carry is one node ``h`` of shape ``(batch, units)``
    (bidirectional: a pair of them).

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 5, 3))
    >>> model = x >> gru(2, bidirectional=True, merge="sum")
    >>> axon_fn.get_output_shape(model), sorted(axon_fn.init(model)["gru_0"])[:2]
    ((1, 5, 2), ['backward_hidden_bias', 'backward_hidden_kernel'])
    """
    return _recurrent_layer("gru", x, units, None, carry, mask, reverse, bidirectional, merge,
                            return_state, (kernel_initializer, recurrent_initializer,
                                           bias_initializer), name)


@constructor("conv_lstm")
def conv_lstm(x: Node, filters: int, kernel_size: int | Sequence[int], *,
              carry: Node | tuple[Node, ...] | None = None, mask: Node | None = None,
              reverse: bool = False, bidirectional: bool = False,
              merge: str | Callable[[Array, Array], Array] = "concatenate",
              return_state: bool = False, kernel_initializer: Initializer | None = None,
              recurrent_initializer: Initializer | None = None,
              bias_initializer: Initializer | None = None,
              name: str | None = None) -> Node | tuple[Node, PyTree]:
    """A ConvLSTM (``"same"`` padding, stride 1) over a ``(batch, time, *spatial, channels)``
    node; outputs ``(batch, time, *spatial, filters)``.

    ``kernel_size`` is an int or one size per spatial axis. The keywords are :func:`lstm`'s;
    the carry is ``(c, h)``, each ``(batch, *spatial, filters)``.

    >>> import axon_fn
    >>> x = axon_fn.input("x", shape=(None, 4, 8, 8, 1))
    >>> model = x >> conv_lstm(2, 3)
    >>> axon_fn.get_output_shape(model), axon_fn.init(model)["conv_lstm_0"]["input_kernel"].shape
    ((1, 4, 8, 8, 2), (3, 3, 1, 8))
    """
    return _recurrent_layer("conv_lstm", x, filters, _kernel_size(kernel_size), carry, mask,
                            reverse, bidirectional, merge, return_state,
                            (kernel_initializer, recurrent_initializer, bias_initializer), name)


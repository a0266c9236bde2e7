"""Functional recurrent layers: LSTM, GRU and ConvLSTM cells and their unrolling over time.

Sequences are ``(batch, time, features)``; ConvLSTM inputs are ``(batch, time, *spatial,
channels)``. Parameters are dicts of arrays, with PyTorch's gate orders (LSTM ``i, f, g, o``,
GRU ``r, z, n``) so PyTorch weights load by transposing the kernels. A cell maps
``(x_t, carry, params)`` to ``(output, new_carry)``; :func:`unroll` runs any cell over the time
axis, optionally masked and in reverse. Time is unrolled by a Python loop (the time length is
static), so every layer is differentiable and works under ``axon_fn.eval_shape``.

>>> import numpy as np
>>> params = {"input_kernel": np.zeros((3, 8)), "hidden_kernel": np.zeros((2, 8)),
...           "bias": np.zeros(8)}
>>> outputs, (c, h) = lstm(np.ones((4, 5, 3)), params)
>>> outputs.shape, c.shape, h.shape
((4, 5, 2), (4, 2), (4, 2))
"""

from __future__ import annotations

from typing import Any, Callable

from .. import ops
from ..errors import InvalidArgumentError
from ..tree import tree_map
from ..typing import Array, ArrayLike, PyTree
from ._util import expect, shape_of

__all__ = [
    "bidirectional", "conv_lstm", "conv_lstm_cell", "gru", "gru_cell", "lstm", "lstm_cell",
    "unroll",
]

_MERGES = ("concatenate", "sum", "mean")


# Validation ---------------------------------------------------------------------------------


def _param(layer, params, name):
    try:
        return params[name]
    except (KeyError, TypeError, IndexError):
        raise InvalidArgumentError(f"layers.{layer}: `params` must be a dict holding "
                                   f"{name!r}, got {_describe(params)}") from None


def _describe(params):
    return f"keys {sorted(params)}" if isinstance(params, dict) else type(params).__name__


def _check_shape(layer, params, name, expected, why):
    got = shape_of(_param(layer, params, name))
    if got != expected:
        expect(layer, name, f"shape {expected} ({why})", f"shape {got}")


def _check_rank(layer, x, rank, layout, at_least=False):
    xs = shape_of(x)
    if len(xs) < rank if at_least else len(xs) != rank:
        expect(layer, "x", f"a {rank}-D{' or higher' if at_least else ''} array {layout}",
               f"shape {xs}")
    return xs


def _dense_units(layer, params, features, gates, bias_names):
    """Check LSTM/GRU parameters against ``features`` inputs; the unit count comes from the
    first axis of ``hidden_kernel``, the one axis every other shape is measured against."""
    hs = shape_of(_param(layer, params, "hidden_kernel"))
    if len(hs) != 2:
        expect(layer, "hidden_kernel", f"a 2-D array of shape (units, {gates} * units)",
               f"shape {hs}")
    units = hs[0]
    _check_shape(layer, params, "hidden_kernel", (units, gates * units),
                 f"{gates} gates of {units} units, the units taken from its first axis")
    _check_shape(layer, params, "input_kernel", (features, gates * units),
                 f"{features} input features, {gates} gates of {units} units")
    for name in bias_names:
        _check_shape(layer, params, name, (gates * units,), f"{gates} gates of {units} units")
    return units


def _conv_filters(layer, params, spatial, channels):
    """Check ConvLSTM parameters for inputs with ``spatial`` axes and ``channels`` channels;
    the filter count comes from ``hidden_kernel``'s input-channel axis."""
    rank = len(spatial) + 2
    hs = shape_of(_param(layer, params, "hidden_kernel"))
    if len(hs) != rank:
        expect(layer, "hidden_kernel", f"a {rank}-D array of shape (*kernel_size, filters, "
               f"4 * filters) for {len(spatial)} spatial axes", f"shape {hs}")
    filters = hs[-2]
    _check_shape(layer, params, "hidden_kernel", hs[:-2] + (filters, 4 * filters),
                 f"4 gates of {filters} filters, the filters taken from axis -2")
    ks = shape_of(_param(layer, params, "input_kernel"))
    if len(ks) != rank or ks[-2:] != (channels, 4 * filters):
        sizes = [str(k) for k in ks[:-2]] if len(ks) == rank else ["k"] * len(spatial)
        expected = ", ".join(sizes + [str(channels), str(4 * filters)])
        expect(layer, "input_kernel", f"shape ({expected}) ({channels} input channels, 4 gates "
               f"of {filters} filters)", f"shape {ks}")
    _check_shape(layer, params, "bias", (4 * filters,), f"4 gates of {filters} filters")
    return filters


def _check_carry(layer, carry, shape, pair):
    """The carry as ``(c, h)`` (``pair``) or a single array, each of ``shape``."""
    what = "a pair (c, h) of arrays" if pair else "an array"
    parts = carry if pair else (carry,)
    if pair and not (isinstance(carry, (tuple, list)) and len(carry) == 2):
        expect(layer, "carry", f"{what} of shape {shape}",
               f"{type(carry).__name__} of shape {shape_of(carry)}")
    for part in parts:
        if shape_of(part) != shape:
            got = tuple(shape_of(p) for p in parts) if pair else shape_of(carry)
            expect(layer, "carry", f"{what} of shape {shape}", f"shape{'s' if pair else ''} {got}")
    return tuple(parts) if pair else carry


def _zeros(x, shape):
    """A zero initial state of ``shape`` with ``x``'s dtype and backend (abstract if x is)."""
    if isinstance(x, ops.AbstractArray):
        return ops.AbstractArray(shape, x.dtype)
    return ops.zeros(shape, x.dtype, like=x)


def _valid_steps(layer, mask, xs):
    """``mask`` as a boolean ``(batch, time)`` array; None stays None."""
    if mask is None:
        return None
    ms = shape_of(mask)
    if ms != xs[:2]:
        expect(layer, "mask", f"shape {xs[:2]} (batch, time) for input shape {xs}",
               f"shape {ms}")
    return ops.not_equal(mask, 0)


# Cell updates -------------------------------------------------------------------------------


def _lstm_update(z, c):
    """The LSTM state update from the summed gate pre-activations ``z`` (last axis)."""
    i, f, g, o = ops.split(z, 4, axis=-1)
    c_new = ops.add(ops.multiply(ops.sigmoid(f), c),
                    ops.multiply(ops.sigmoid(i), ops.tanh(g)))
    h_new = ops.multiply(ops.sigmoid(o), ops.tanh(c_new))
    return h_new, (c_new, h_new)


def _gru_update(xg, h, hidden_kernel, hidden_bias):
    """The GRU update from the input projection ``xg`` (input bias included)."""
    hg = ops.add(ops.matmul(h, hidden_kernel), hidden_bias)
    xr, xz, xn = ops.split(xg, 3, axis=-1)
    hr, hz, hn = ops.split(hg, 3, axis=-1)
    r = ops.sigmoid(ops.add(xr, hr))
    z = ops.sigmoid(ops.add(xz, hz))
    # PyTorch's variant: the reset gate scales the hidden projection after its bias.
    n = ops.tanh(ops.add(xn, ops.multiply(r, hn)))
    h_new = ops.add(n, ops.multiply(z, ops.subtract(h, n)))  # (1 - z) * n + z * h
    return h_new, h_new


def _same_conv(x, kernel):
    return ops.conv(x, kernel, padding="same", channels="last")


def lstm_cell(x: ArrayLike, carry: PyTree, params: PyTree) -> tuple[Array, PyTree]:
    """One LSTM step: ``x`` is ``(batch, features)``, ``carry`` is ``(c, h)``, each
    ``(batch, units)``. Returns ``(h_new, (c_new, h_new))``.

    ``params``: ``input_kernel (features, 4u)``, ``hidden_kernel (u, 4u)``, ``bias (4u,)``,
    gates ``i, f, g, o``::

        z = x @ input_kernel + h @ hidden_kernel + bias
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g);  h_new = sigmoid(o) * tanh(c_new)

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((1, 4)), "hidden_kernel": np.zeros((1, 4)),
    ...      "bias": np.zeros(4)}
    >>> h, (c, _) = lstm_cell(np.ones((1, 1)), (np.ones((1, 1)), np.zeros((1, 1))), p)
    >>> c.tolist(), h.round(4).tolist()
    ([[0.5]], [[0.2311]])
    """
    xs = _check_rank("lstm_cell", x, 2, "(batch, features)")
    units = _dense_units("lstm_cell", params, xs[1], 4, ("bias",))
    c, h = _check_carry("lstm_cell", carry, (xs[0], units), pair=True)
    z = ops.add(ops.add(ops.matmul(x, params["input_kernel"]),
                        ops.matmul(h, params["hidden_kernel"])), params["bias"])
    return _lstm_update(z, c)


def gru_cell(x: ArrayLike, carry: PyTree, params: PyTree) -> tuple[Array, PyTree]:
    """One GRU step (PyTorch's equations): ``x`` is ``(batch, features)``, ``carry`` is ``h``
    of shape ``(batch, units)``. Returns ``(h_new, h_new)``.

    ``params``: ``input_kernel (features, 3u)``, ``hidden_kernel (u, 3u)``, ``input_bias (3u,)``,
    ``hidden_bias (3u,)``, gates ``r, z, n``::

        r = sigmoid(x W_r + b_ir + h U_r + b_hr);  z = sigmoid(x W_z + b_iz + h U_z + b_hz)
        n = tanh(x W_n + b_in + r * (h U_n + b_hn));  h_new = (1 - z) * n + z * h

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((1, 3)), "hidden_kernel": np.zeros((1, 3)),
    ...      "input_bias": np.zeros(3), "hidden_bias": np.zeros(3)}
    >>> gru_cell(np.ones((1, 1)), np.ones((1, 1)), p)[0].tolist()  # z = 0.5, n = 0
    [[0.5]]
    """
    xs = _check_rank("gru_cell", x, 2, "(batch, features)")
    units = _dense_units("gru_cell", params, xs[1], 3, ("input_bias", "hidden_bias"))
    h = _check_carry("gru_cell", carry, (xs[0], units), pair=False)
    xg = ops.add(ops.matmul(x, params["input_kernel"]), params["input_bias"])
    return _gru_update(xg, h, params["hidden_kernel"], params["hidden_bias"])


def conv_lstm_cell(x: ArrayLike, carry: PyTree, params: PyTree) -> tuple[Array, PyTree]:
    """One ConvLSTM step: the LSTM equations with ``"same"``-padded, stride-1 convolutions.

    ``x`` is ``(batch, *spatial, channels)``; ``carry`` is ``(c, h)``, each
    ``(batch, *spatial, filters)``. ``params``: ``input_kernel (*K, channels, 4f)``,
    ``hidden_kernel (*K, f, 4f)``, ``bias (4f,)``, gates ``i, f, g, o``. Returns
    ``(h_new, (c_new, h_new))``.

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((3, 3, 2, 8)), "hidden_kernel": np.zeros((3, 3, 2, 8)),
    ...      "bias": np.zeros(8)}
    >>> state = (np.ones((1, 5, 5, 2)), np.zeros((1, 5, 5, 2)))
    >>> h, (c, _) = conv_lstm_cell(np.ones((1, 5, 5, 2)), state, p)
    >>> h.shape, float(c[0, 0, 0, 0])
    ((1, 5, 5, 2), 0.5)
    """
    xs = _check_rank("conv_lstm_cell", x, 3, "(batch, *spatial, channels)", at_least=True)
    filters = _conv_filters("conv_lstm_cell", params, xs[1:-1], xs[-1])
    c, h = _check_carry("conv_lstm_cell", carry, xs[:-1] + (filters,), pair=True)
    z = ops.add(ops.add(_same_conv(x, params["input_kernel"]),
                        _same_conv(h, params["hidden_kernel"])), params["bias"])
    return _lstm_update(z, c)


# Unrolling ----------------------------------------------------------------------------------


def _broadcastable(keep, like):
    """The ``(batch,)`` step mask reshaped to broadcast against ``like``."""
    rank = len(shape_of(like))
    return ops.reshape(keep, shape=shape_of(keep) + (1,) * (rank - 1))


def _unroll(layer, cell, x, carry, params, mask, reverse):
    xs = _check_rank(layer, x, 2, "(batch, time, ...)", at_least=True)
    if xs[1] < 1:
        expect(layer, "x", "at least one time step on axis 1", f"shape {xs}")
    valid = _valid_steps(layer, mask, xs)
    outputs = [None] * xs[1]
    for t in (reversed(range(xs[1])) if reverse else range(xs[1])):
        out, new_carry = cell(ops.getitem(x, (slice(None), t)), carry, params)
        if valid is not None:
            keep = ops.getitem(valid, (slice(None), t))
            # A masked step leaves the state as it was, so padding never moves the final carry
            # and a reverse pass over right-padded rows starts from the initial carry.
            new_carry = tree_map(lambda new, old: ops.where(_broadcastable(keep, new), new, old),
                                 new_carry, carry)
            out = ops.where(_broadcastable(keep, out), out, 0)
        outputs[t] = out
        carry = new_carry
    return ops.stack(outputs, axis=1), carry


def unroll(cell: Callable[..., tuple[PyTree, Array]], x: ArrayLike, carry: PyTree, params: PyTree,
           *, mask: ArrayLike | None = None, reverse: bool = False) -> tuple[Array, PyTree]:
    """Run ``cell(x_t, carry, params) -> (output, new_carry)`` over axis 1 (time) of ``x``.

    Returns ``(outputs, final_carry)`` with ``outputs`` stacked on axis 1, in the original time
    order even with ``reverse=True`` (which processes the last step first). ``mask`` is a
    ``(batch, time)`` boolean or 0/1 array, true on valid steps; on a masked step the carry
    passes through unchanged and the output is zero, so ``final_carry`` is the state after
    each row's last valid step.

    >>> import numpy as np
    >>> running_sum = lambda x, c, _: (x + c, x + c)
    >>> out, total = unroll(running_sum, np.ones((1, 3, 1)), np.zeros((1, 1)), None,
    ...                     mask=np.array([[1, 0, 1]]))
    >>> out[..., 0].tolist(), total.tolist()
    ([[1.0, 0.0, 2.0]], [[2.0]])
    """
    return _unroll("unroll", cell, x, carry, params, mask, reverse)


def lstm(x: ArrayLike, params: PyTree, *, carry: PyTree | None = None,
         mask: ArrayLike | None = None, reverse: bool = False) -> tuple[Array, PyTree]:
    """An LSTM over a ``(batch, time, features)`` sequence: see :func:`lstm_cell` for ``params``.

    ``carry`` is the initial ``(c, h)`` (zeros by default); ``mask`` and ``reverse`` as in
    :func:`unroll`. Returns ``(outputs (batch, time, units), (c, h))``.

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((2, 4)), "hidden_kernel": np.zeros((1, 4)),
    ...      "bias": np.zeros(4)}
    >>> outputs, (c, h) = lstm(np.ones((1, 3, 2)), p, carry=(np.ones((1, 1)), np.ones((1, 1))))
    >>> c.tolist()  # each step halves the cell state: f = 0.5 and g = 0
    [[0.125]]
    """
    xs = _check_rank("lstm", x, 3, "(batch, time, features)")
    units = _dense_units("lstm", params, xs[2], 4, ("bias",))
    shape = (xs[0], units)
    if carry is None:
        carry = (_zeros(x, shape), _zeros(x, shape))
    carry = _check_carry("lstm", carry, shape, pair=True)
    hidden_kernel = params["hidden_kernel"]

    def step(zx, state, _):
        c, h = state
        return _lstm_update(ops.add(zx, ops.matmul(h, hidden_kernel)), c)

    mask = _valid_steps("lstm", mask, xs)  # before the projection, to report the input's shape
    # One matmul projects the inputs of every step; only the recurrent part stays in the loop.
    zx = ops.add(ops.matmul(x, params["input_kernel"]), params["bias"])
    return _unroll("lstm", step, zx, carry, None, mask, reverse)


def gru(x: ArrayLike, params: PyTree, *, carry: PyTree | None = None, mask: ArrayLike | None = None,
        reverse: bool = False) -> tuple[Array, PyTree]:
    """A GRU over a ``(batch, time, features)`` sequence: see :func:`gru_cell` for ``params``.

    ``carry`` is the initial ``h`` (zeros by default); ``mask`` and ``reverse`` as in
    :func:`unroll`. Returns ``(outputs (batch, time, units), h)``.

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((2, 3)), "hidden_kernel": np.zeros((1, 3)),
    ...      "input_bias": np.zeros(3), "hidden_bias": np.zeros(3)}
    >>> outputs, h = gru(np.ones((1, 2, 2)), p, carry=np.ones((1, 1)))
    >>> outputs[0, :, 0].tolist()  # z = 0.5 and n = 0 halve h at each step
    [0.5, 0.25]
    """
    xs = _check_rank("gru", x, 3, "(batch, time, features)")
    units = _dense_units("gru", params, xs[2], 3, ("input_bias", "hidden_bias"))
    shape = (xs[0], units)
    carry = _check_carry("gru", _zeros(x, shape) if carry is None else carry, shape, pair=False)
    hidden_kernel, hidden_bias = params["hidden_kernel"], params["hidden_bias"]

    def step(xg, h, _):
        return _gru_update(xg, h, hidden_kernel, hidden_bias)

    mask = _valid_steps("gru", mask, xs)
    xg = ops.add(ops.matmul(x, params["input_kernel"]), params["input_bias"])
    return _unroll("gru", step, xg, carry, None, mask, reverse)


def conv_lstm(x: ArrayLike, params: PyTree, *, carry: PyTree | None = None,
              mask: ArrayLike | None = None, reverse: bool = False) -> tuple[Array, PyTree]:
    """A ConvLSTM over a ``(batch, time, *spatial, channels)`` sequence: see
    :func:`conv_lstm_cell` for ``params``.

    ``carry`` is the initial ``(c, h)``, each ``(batch, *spatial, filters)`` (zeros by default);
    ``mask`` and ``reverse`` as in :func:`unroll`. Returns
    ``(outputs (batch, time, *spatial, filters), (c, h))``.

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((3, 3, 1, 8)), "hidden_kernel": np.zeros((3, 3, 2, 8)),
    ...      "bias": np.zeros(8)}
    >>> outputs, (c, h) = conv_lstm(np.ones((4, 6, 8, 8, 1)), p)
    >>> outputs.shape, c.shape
    ((4, 6, 8, 8, 2), (4, 8, 8, 2))
    """
    xs = _check_rank("conv_lstm", x, 4, "(batch, time, *spatial, channels)", at_least=True)
    filters = _conv_filters("conv_lstm", params, xs[2:-1], xs[-1])
    shape = (xs[0],) + xs[2:-1] + (filters,)
    if carry is None:
        carry = (_zeros(x, shape), _zeros(x, shape))
    carry = _check_carry("conv_lstm", carry, shape, pair=True)
    hidden_kernel = params["hidden_kernel"]

    def step(zx, state, _):
        c, h = state
        return _lstm_update(ops.add(zx, _same_conv(h, hidden_kernel)), c)

    mask = _valid_steps("conv_lstm", mask, xs)
    # The input convolution of every step runs as one batch of batch * time images.
    frames = ops.reshape(x, shape=(xs[0] * xs[1],) + xs[2:])
    zx = _same_conv(frames, params["input_kernel"])
    zx = ops.add(ops.reshape(zx, shape=xs[:-1] + (4 * filters,)), params["bias"])
    return _unroll("conv_lstm", step, zx, carry, None, mask, reverse)


def _merge_fn(merge):
    if callable(merge):
        return merge
    if merge == "concatenate":
        return lambda a, b: ops.concatenate([a, b], axis=-1)
    if merge == "sum":
        return ops.add
    if merge == "mean":
        return lambda a, b: ops.multiply(ops.add(a, b), 0.5)
    raise InvalidArgumentError(f"layers.bidirectional: `merge` must be one of {_MERGES} or a "
                               f"callable, got {merge!r}")


def bidirectional(layer_fn: Callable[..., Any], x: ArrayLike, forward_params: PyTree,
                  backward_params: PyTree, *, carry: PyTree | None = None,
                  mask: ArrayLike | None = None,
                  merge: str = "concatenate") -> tuple[Array, tuple[PyTree, PyTree]]:
    """Run a recurrent layer forward and in reverse over ``x`` and merge the two outputs.

    ``layer_fn(x, params, *, carry, mask, reverse)`` is :func:`lstm`, :func:`gru`,
    :func:`conv_lstm` or any function with that signature. ``carry`` is ``None`` (both
    directions start from zeros) or a pair ``(forward_carry, backward_carry)``. ``merge`` is
    ``"concatenate"`` (on the last axis), ``"sum"``, ``"mean"`` or a callable
    ``merge(forward_outputs, backward_outputs)``. Returns
    ``(merged_outputs, (forward_carry, backward_carry))``.

    >>> import numpy as np
    >>> p = {"input_kernel": np.zeros((2, 3)), "hidden_kernel": np.zeros((1, 3)),
    ...      "input_bias": np.zeros(3), "hidden_bias": np.zeros(3)}
    >>> outputs, (h_fwd, h_bwd) = bidirectional(gru, np.ones((1, 2, 2)), p, p,
    ...                                         carry=(np.ones((1, 1)), 4 * np.ones((1, 1))))
    >>> outputs[0].tolist()  # [forward, backward] per step; the backward pass starts at the end
    [[0.5, 1.0], [0.25, 2.0]]
    """
    merge_fn = _merge_fn(merge)
    if carry is None:
        forward_carry = backward_carry = None
    elif isinstance(carry, (tuple, list)) and len(carry) == 2:
        forward_carry, backward_carry = carry
    else:
        raise InvalidArgumentError(f"layers.bidirectional: `carry` must be None or a pair "
                                   f"(forward_carry, backward_carry), got "
                                   f"{type(carry).__name__}")
    forward, forward_final = layer_fn(x, forward_params, carry=forward_carry, mask=mask,
                                      reverse=False)
    backward, backward_final = layer_fn(x, backward_params, carry=backward_carry, mask=mask,
                                        reverse=True)
    return merge_fn(forward, backward), (forward_final, backward_final)

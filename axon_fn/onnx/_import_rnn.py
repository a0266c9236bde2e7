"""ONNX recurrent ops: LSTM, GRU and RNN (private).

The three ops share their frame: inputs ``X, W, R, B, sequence_lens, initial_h`` (LSTM adds
``initial_c`` and the peepholes ``P``), a ``direction`` (forward, reverse or bidirectional), a
``layout`` (0: time-major, 1: batch-major; opset 14+), the per-direction ``activations`` with
their ``activation_alpha``/``activation_beta``, and ``clip``. :func:`_recurrence` holds that
frame: it projects the inputs of every step at once (``X W^T + Wb``), runs one cell per
direction over time with :func:`axon_fn.layers.recurrent.unroll`, and assembles ``Y`` and the
final states. Each op contributes only its cell, written in ONNX's equations and gate orders
(LSTM ``iofc``, GRU ``zrh``).

With ``sequence_lens``, step ``t`` of row ``b`` is valid when ``t < sequence_lens[b]``: an
invalid step leaves the state unchanged and writes zeros to ``Y``, so the reverse direction
starts at each row's last valid step, as onnxruntime does. A row of length 0 ends with zero
final states (``Y_h``, ``Y_c``), again as onnxruntime does; the spec leaves that case open.

Everything is written with :mod:`axon_fn.ops`, so an imported recurrent node runs on numpy and
CuPy arrays, under ``grad`` (gradients reach ``W``, ``R``, ``B``, ``P`` and the initial states),
``jit`` and shape-only evaluation.
"""

from __future__ import annotations

from .. import ops
from ..layers.recurrent import unroll
from ._import_registry import handles

__all__ = []

_REVERSE = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}


# Activations ------------------------------------------------------------------------------------

def _leaky_relu(x, alpha, beta):
    return ops.where(ops.greater_equal(x, 0), x, ops.multiply(x, alpha))


def _elu(x, alpha, beta):
    # expm1 of the clamped value: the branch where() drops must not overflow (nor its gradient).
    return ops.where(ops.greater_equal(x, 0), x,
                     ops.multiply(ops.expm1(ops.minimum(x, 0)), alpha))


def _softplus(x, alpha, beta):
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|), without overflow
    return ops.add(ops.maximum(x, 0), ops.log1p(ops.exp(ops.negative(ops.abs(x)))))


# name (lower case) -> (function of (x, alpha, beta), default alpha, default beta). The
# defaults are those of the ONNX operators of the same name, as the spec says (onnxruntime
# takes 0 instead for ThresholdedRelu, Affine and ScaledTanh; ScaledTanh's operator never had
# defaults: 1 and 1 make it tanh). ``None`` marks a coefficient the function does not take,
# which consumes no entry of activation_alpha/beta.
_ACTIVATIONS = {
    "sigmoid": (lambda x, a, b: ops.sigmoid(x), None, None),
    "tanh": (lambda x, a, b: ops.tanh(x), None, None),
    "relu": (lambda x, a, b: ops.relu(x), None, None),
    "hardsigmoid": (lambda x, a, b: ops.clip(ops.add(ops.multiply(x, a), b), 0, 1), 0.2, 0.5),
    "leakyrelu": (_leaky_relu, 0.01, None),
    "thresholdedrelu": (lambda x, a, b: ops.where(ops.greater(x, a), x, 0), 1.0, None),
    "affine": (lambda x, a, b: ops.add(ops.multiply(x, a), b), 1.0, 0.0),
    "scaledtanh": (lambda x, a, b: ops.multiply(ops.tanh(ops.multiply(x, b)), a), 1.0, 1.0),
    "elu": (_elu, 1.0, None),
    "softsign": (lambda x, a, b: ops.divide(x, ops.add(ops.abs(x), 1)), None, None),
    "softplus": (_softplus, None, None),
}


class _Activation:
    """One activation with its coefficients: hashable and printable (it is a node option)."""

    __slots__ = ("name", "alpha", "beta")

    def __init__(self, name, alpha, beta):
        self.name, self.alpha, self.beta = name, alpha, beta

    def __call__(self, x):
        return _ACTIVATIONS[self.name][0](x, self.alpha, self.beta)

    def __eq__(self, other):
        return isinstance(other, _Activation) and (
            (self.name, self.alpha, self.beta) == (other.name, other.alpha, other.beta))

    def __hash__(self):
        return hash((self.name, self.alpha, self.beta))

    def __repr__(self):
        coefficients = [c for c in (self.alpha, self.beta) if c is not None]
        return f"{self.name}({', '.join(map(repr, coefficients))})" if coefficients else self.name


def _activations(ctx, defaults, n_directions):
    """The node's activations as ``n_directions`` tuples of ``len(defaults)`` functions.

    ``activation_alpha`` and ``activation_beta`` are consumed in the order of the activations,
    one entry by each activation that takes that coefficient (onnxruntime's reading); an
    activation left without one takes its operator's default.
    """
    names = list(ctx.attr("activations", None) or defaults * n_directions)
    per_direction = len(defaults)
    if len(names) != per_direction * n_directions:
        raise ctx.error(f"`activations` must name {per_direction} function(s) per direction, "
                        f"forward first ({per_direction * n_directions} for this node), got "
                        f"{names}")
    alphas = iter(ctx.attr("activation_alpha", None) or ())
    betas = iter(ctx.attr("activation_beta", None) or ())
    made = []
    for name in names:
        key = name.lower()
        if key not in _ACTIVATIONS:
            raise ctx.error(f"activation {name!r} is not one the ONNX spec lists; supported: "
                            f"{', '.join(sorted(_ACTIVATIONS))} (any letter case)")
        _, alpha, beta = _ACTIVATIONS[key]
        alpha = None if alpha is None else float(next(alphas, alpha))
        beta = None if beta is None else float(next(betas, beta))
        made.append(_Activation(key, alpha, beta))
    return tuple(tuple(made[d * per_direction:(d + 1) * per_direction])
                 for d in range(n_directions))


# The shared frame -------------------------------------------------------------------------------

def _zeros(x, shape):
    """Zeros of ``shape`` with ``x``'s dtype and backend (abstract if ``x`` is)."""
    if isinstance(x, ops.AbstractArray):
        return ops.AbstractArray(shape, x.dtype)
    return ops.zeros(shape, x.dtype, like=x)


def _transposed(matrix, d):
    """``matrix[d]^T``: direction ``d`` of a ``(directions, rows, cols)`` weight, for ``x @``."""
    return ops.transpose(ops.getitem(matrix, d), axes=(1, 0))


def _bias(B, d):
    """Direction ``d`` of ``B`` as the pair ``(Wb, Rb)``, or ``(None, None)`` when omitted."""
    if B is None:
        return None, None
    return tuple(ops.split(ops.getitem(B, d), 2))


def _clipped(x, clip):
    return x if clip is None else ops.clip(x, -clip, clip)


def _recurrence(cell_of, X, W, B, sequence_lens, initial, *, hidden, direction, layout,
                outputs):
    """Run an ONNX recurrent op: ``cell_of(d)`` gives direction ``d``'s cell
    ``step(xw_t, states, _) -> (h, states)``, where ``xw_t`` is the input projection
    ``X_t W^T + Wb`` of one step and ``states`` is a tuple ``(h, ...)`` of ``(batch, hidden)``
    arrays; ``initial`` holds the initial state inputs (``None`` for zeros). Returns
    ``(Y, Y_h, ...)[:outputs]``, or ``Y`` alone when one output is asked for."""
    xs = X if layout else ops.transpose(X, axes=(1, 0, 2))  # (batch, time, input)
    batch, steps = xs.shape[:2]
    valid = None
    if sequence_lens is not None:
        valid = ops.stack([ops.less(t, sequence_lens) for t in range(steps)], axis=1)
    ys, finals = [], []
    for d, reverse in enumerate(_REVERSE[direction]):
        xw = ops.matmul(xs, _transposed(W, d))
        wb, _ = _bias(B, d)
        if wb is not None:
            xw = ops.add(xw, wb)
        states = tuple(_zeros(xs, (batch, hidden)) if s is None else
                       ops.getitem(s, (slice(None), d) if layout else d) for s in initial)
        y, states = unroll(cell_of(d), xw, states, None, mask=valid, reverse=reverse)
        ys.append(y)
        finals.append(states)
    if sequence_lens is not None:  # onnxruntime's final states of an empty row are zeros
        nonempty = ops.reshape(ops.greater(sequence_lens, 0), shape=(batch, 1))
        finals = [tuple(ops.where(nonempty, s, 0) for s in states) for states in finals]
    if layout:
        y = ops.stack(ys, axis=2)  # (batch, time, directions, hidden)
    else:
        y = ops.transpose(ops.stack(ys, axis=0), axes=(2, 0, 1, 3))  # (time, dirs, batch, hid)
    finals = [ops.stack(list(part), axis=1 if layout else 0) for part in zip(*finals)]
    if outputs == 1:
        return y
    return (y, *finals)[:outputs]


# The ops ----------------------------------------------------------------------------------------

_SIGMOID, _TANH = _Activation("sigmoid", None, None), _Activation("tanh", None, None)


def lstm(X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *,
         direction="forward", layout=0, activations=None, clip=None, input_forget=0, outputs=3):
    """ONNX ``LSTM``: returns ``(Y, Y_h, Y_c)[:outputs]`` (``Y`` alone when ``outputs`` is 1).

    ``activations`` holds per direction the functions ``(f, g, h)`` (default sigmoid, tanh,
    tanh). Gates ``iofc``; ``P`` holds the peepholes ``iof``; ``input_forget`` couples the
    forget gate to the input gate (``f = 1 - i``)."""
    activations = activations or ((_SIGMOID, _TANH, _TANH),) * len(_REVERSE[direction])

    def cell_of(d):
        f, g, h = activations[d]
        r_t = _transposed(R, d)
        _, rb = _bias(B, d)
        p_i, p_o, p_f = (None,) * 3 if P is None else ops.split(ops.getitem(P, d), 3)

        def step(xw, states, _):
            h_prev, c_prev = states
            gates = ops.add(xw, ops.matmul(h_prev, r_t))
            if rb is not None:
                gates = ops.add(gates, rb)
            i, o, forget, c = ops.split(gates, 4, axis=-1)
            if P is not None:
                i = ops.add(i, ops.multiply(p_i, c_prev))
                forget = ops.add(forget, ops.multiply(p_f, c_prev))
            i = f(_clipped(i, clip))
            forget = ops.subtract(1, i) if input_forget else f(_clipped(forget, clip))
            c_new = ops.add(ops.multiply(forget, c_prev), ops.multiply(i, g(_clipped(c, clip))))
            if P is not None:
                o = ops.add(o, ops.multiply(p_o, c_new))
            h_new = ops.multiply(f(_clipped(o, clip)), h(c_new))
            return h_new, (h_new, c_new)

        return step

    return _recurrence(cell_of, X, W, B, sequence_lens, (initial_h, initial_c),
                       direction=direction, layout=layout, hidden=R.shape[-1], outputs=outputs)


def gru(X, W, R, B=None, sequence_lens=None, initial_h=None, *, direction="forward", layout=0,
        activations=None, clip=None, linear_before_reset=0, outputs=2):
    """ONNX ``GRU``: returns ``(Y, Y_h)[:outputs]`` (``Y`` alone when ``outputs`` is 1).

    ``activations`` holds per direction ``(f, g)`` (default sigmoid, tanh). Gates ``zrh``;
    ``linear_before_reset`` applies the reset gate after the hidden gate's recurrent
    projection and its bias (``r * (h Rh^T + Rbh)``) rather than before (``(r * h) Rh^T``)."""
    activations = activations or ((_SIGMOID, _TANH),) * len(_REVERSE[direction])
    zr = [2 * R.shape[-1]]  # where the h gate starts along the gate axis

    def cell_of(d):
        f, g = activations[d]
        r_zr, r_h = ops.split(_transposed(R, d), zr, axis=1)
        _, rb = _bias(B, d)
        rb_zr, rb_h = (None, None) if rb is None else ops.split(rb, zr)

        def step(xw, states, _):
            (h_prev,) = states
            xz, xr, xh = ops.split(xw, 3, axis=-1)
            hzr = ops.matmul(h_prev, r_zr)
            if rb is not None:
                hzr = ops.add(hzr, rb_zr)
            hz, hr = ops.split(hzr, 2, axis=-1)
            z = f(_clipped(ops.add(xz, hz), clip))
            r = f(_clipped(ops.add(xr, hr), clip))
            if linear_before_reset:  # r (.) (H Rh^T + Rbh)
                hh = ops.matmul(h_prev, r_h)
                hh = ops.multiply(r, hh if rb is None else ops.add(hh, rb_h))
            else:  # (r (.) H) Rh^T + Rbh
                hh = ops.matmul(ops.multiply(r, h_prev), r_h)
                hh = hh if rb is None else ops.add(hh, rb_h)
            hh = g(_clipped(ops.add(xh, hh), clip))
            h_new = ops.add(ops.multiply(ops.subtract(1, z), hh), ops.multiply(z, h_prev))
            return h_new, (h_new,)

        return step

    return _recurrence(cell_of, X, W, B, sequence_lens, (initial_h,), direction=direction,
                       layout=layout, hidden=R.shape[-1], outputs=outputs)


def rnn(X, W, R, B=None, sequence_lens=None, initial_h=None, *, direction="forward", layout=0,
        activations=None, clip=None, outputs=2):
    """ONNX ``RNN``: returns ``(Y, Y_h)[:outputs]`` (``Y`` alone when ``outputs`` is 1).

    ``activations`` holds per direction ``(f,)`` (default tanh): ``H = f(X W^T + H R^T + Wb +
    Rb)``."""
    activations = activations or ((_TANH,),) * len(_REVERSE[direction])

    def cell_of(d):
        (f,) = activations[d]
        r_t = _transposed(R, d)
        _, rb = _bias(B, d)

        def step(xw, states, _):
            pre = ops.add(xw, ops.matmul(states[0], r_t))
            h_new = f(_clipped(pre if rb is None else ops.add(pre, rb), clip))
            return h_new, (h_new,)

        return step

    return _recurrence(cell_of, X, W, B, sequence_lens, (initial_h,), direction=direction,
                       layout=layout, hidden=R.shape[-1], outputs=outputs)


# Handlers ---------------------------------------------------------------------------------------

# op type -> (function, its input count, its default activations, its output count)
_OPS = {
    "LSTM": (lstm, 8, ("Sigmoid", "Tanh", "Tanh"), 3),
    "GRU": (gru, 6, ("Sigmoid", "Tanh"), 2),
    "RNN": (rnn, 6, ("Tanh",), 2),
}


@handles("LSTM", "GRU", "RNN", settings=(4,), weights=(1, 2, 3, 5, 6, 7))
def _import_recurrent(ctx):
    fn, n_inputs, defaults, n_outputs = _OPS[ctx.op_type]
    direction = ctx.attr("direction", "forward")
    if direction not in _REVERSE:
        raise ctx.error(f"`direction` must be forward, reverse or bidirectional, got "
                        f"{direction!r}")
    n_directions = len(_REVERSE[direction])
    if len(ctx.inputs) > n_inputs or ctx.n_outputs > n_outputs:
        raise ctx.error(f"{ctx.op_type} takes at most {n_inputs} inputs and gives at most "
                        f"{n_outputs} outputs, got {len(ctx.inputs)} and {ctx.n_outputs}")
    if any(ctx.input(i) is None for i in range(3)):
        raise ctx.error("inputs X, W and R are required")
    _check_shapes(ctx, n_directions)
    layout = int(ctx.attr("layout", 0))
    if layout not in (0, 1):
        raise ctx.error(f"`layout` must be 0 or 1, got {layout}")
    clip = ctx.attr("clip", None)
    static = dict(direction=direction, layout=layout, outputs=ctx.n_outputs,
                  activations=_activations(ctx, defaults, n_directions),
                  clip=None if clip is None else float(clip))
    if ctx.op_type == "LSTM":
        static["input_forget"] = int(ctx.attr("input_forget", 0))
    elif ctx.op_type == "GRU":
        static["linear_before_reset"] = int(ctx.attr("linear_before_reset", 0))
    inputs = [ctx.input(i) for i in range(n_inputs)]
    return ctx.apply(fn, inputs, n_out=ctx.n_outputs, **static)


def _check_shapes(ctx, n_directions):
    """The statically known sizes of W and R against ``direction`` and ``hidden_size``."""
    hidden = ctx.attr("hidden_size", None)
    for i, role in ((1, "W"), (2, "R")):
        shape = ctx.input(i).shape
        if shape is None:
            continue
        if len(shape) != 3 or shape[0] not in (None, n_directions):
            raise ctx.error(f"{role} must have shape (num_directions={n_directions}, ...) with "
                            f"rank 3, got {shape}")
        if hidden is not None and role == "R" and shape[2] not in (None, hidden):
            raise ctx.error(f"R has shape {shape}, which does not match hidden_size={hidden}")

"""int8 weight-only quantization: smaller models for inference.

:func:`quantize` takes a model and its trained :class:`~axon_fn.ModelState` and returns a new
model and state in which every ``dense`` and ``conv`` layer is a quantized layer
(``quantized_dense``, ``quantized_conv``): its kernel is stored as int8 with one float32 scale
per output channel, symmetric (``scale = max|w| / 127`` over the channel, ``q = round(w /
scale)`` clipped to ``[-127, 127]``, so ``w ~= q * scale`` within ``scale / 2``). Biases stay
float. The int8 ``kernel`` and the ``scale`` are frozen parameters (``state.frozen``); the
biases keep their place (trainable ones stay trainable). The layers keep their names, so the
state's paths are the float model's.

A quantized dense layer multiplies its float input by the int8 kernel directly (the C kernel
of ``native/quantize.c``, AVX-512 / AVX2 / portable, chosen for the running CPU; numpy's
``x @ q.astype(float32) * scale`` without the compiled kernels; CuPy on a GPU); a quantized
convolution dequantizes its (small) kernel when it runs and convolves as the float layer does.
``build``, ``predict``, ``jit``, ``save`` and ``load`` work as for any model.

>>> import numpy as np, axon_fn
>>> x = axon_fn.input("x", shape=(None, 8))
>>> model = x >> axon_fn.dense(16, activation="relu") >> axon_fn.dense(4)
>>> state = axon_fn.init(model, np.zeros((1, 8), np.float32), key=0)
>>> qmodel, qstate = quantize(model, state)
>>> axon_fn.get_op_counts(qmodel)
{'input': 1, 'quantized_dense': 2}
>>> qstate.frozen["dense_0"]["kernel"].dtype, qstate.frozen["dense_0"]["scale"].shape
(dtype('int8'), (16,))
>>> inputs = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
>>> float_out = axon_fn.predict(model, state, inputs)
>>> bool(np.allclose(axon_fn.predict(qmodel, qstate, inputs), float_out, atol=0.05))
True
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Sequence

import numpy as np

from . import activations as _activations
from . import initializers as _init
from . import ops
from ._program import compile_graph
from .backend import to_numpy
from .errors import AxonTypeError, InvalidArgumentError, ShapeError
from .graph.node import Node, Parameter
from .graph_tools import _rebuild
from .layers.conv import conv as _conv
from .model_state import ModelState, flatten_paths, nest_paths
from .ops.quantized import quantized_dense as _quantized_dense_op
from .typing import Array, ArrayLike, PyTree

__all__ = ["quantize", "quantize_array", "dequantize_array", "quantized_dense",
           "quantized_conv", "parameter_bytes", "QUANTIZED_OPS"]

#: float layer op -> the op of its quantized replacement
QUANTIZED_OPS = {"dense": "quantized_dense", "conv": "quantized_conv"}

_QMAX = 127


# Arrays ----------------------------------------------------------------------------------------


def quantize_array(w: ArrayLike, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``(q, scale)``: ``w`` as int8 with one float32 scale per index of ``axis`` (the output
    channel), symmetric: ``scale = max|w| / 127`` over all the other axes (1 for an all-zero
    channel), ``q = round(w / scale)`` clipped to ``[-127, 127]``. ``q * scale`` differs from
    ``w`` by at most ``scale / 2`` per element.

    >>> import numpy as np
    >>> q, scale = quantize_array(np.array([[0.5, -2.0], [-1.0, 1.0]]))
    >>> q
    array([[  64, -127],
           [-127,   64]], dtype=int8)
    >>> scale
    array([0.00787402, 0.01574803], dtype=float32)
    """
    w = np.asarray(to_numpy(w))
    if w.ndim == 0:
        raise ShapeError("quantize_array: `w` must have at least one axis (the channels)")
    if w.dtype.kind not in "fV":  # V: ml_dtypes' bfloat16 and friends
        raise AxonTypeError(f"quantize_array: `w` must be a float array, got dtype {w.dtype}")
    axis = _axis(axis, w.ndim, "quantize_array")
    w64 = np.moveaxis(w.astype(np.float64), axis, -1)
    amax = np.max(np.abs(w64.reshape(-1, w64.shape[-1])), axis=0) if w64.size else np.zeros(
        w64.shape[-1])
    if not np.all(np.isfinite(amax)):
        raise InvalidArgumentError("quantize_array: `w` holds NaN or infinity; only finite "
                                   "weights can be quantized")
    scale = np.where(amax > 0, amax / _QMAX, 1.0).astype(np.float32)
    q = np.clip(np.rint(w64 / scale.astype(np.float64)), -_QMAX, _QMAX).astype(np.int8)
    return np.ascontiguousarray(np.moveaxis(q, -1, axis)), scale


def dequantize_array(q: ArrayLike, scale: ArrayLike, axis: int = -1) -> Array:
    """``q * scale`` with ``scale`` along ``axis`` of ``q``, in ``scale``'s dtype: the float
    array :func:`quantize_array` approximates. Made of ops, so it also runs on CuPy arrays and
    inside ``grad`` and ``jit``.

    >>> import numpy as np
    >>> dequantize_array(np.array([[64, -127]], np.int8), np.array([0.5, 0.25], np.float32))
    array([[ 32.  , -31.75]], dtype=float32)
    """
    ndim = len(q.shape)
    axis = _axis(axis, ndim, "dequantize_array")
    if tuple(scale.shape) != (q.shape[axis],):
        raise ShapeError(f"dequantize_array: `scale` expected shape ({q.shape[axis]},) for q of "
                         f"shape {tuple(q.shape)} along axis {axis}, got {tuple(scale.shape)}")
    if axis != ndim - 1:
        scale = ops.reshape(scale, (-1,) + (1,) * (ndim - 1 - axis))
    return ops.multiply(ops.astype(q, scale.dtype), scale)


def _axis(axis, ndim, where):
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise InvalidArgumentError(f"{where}: `axis` must be an int in [{-ndim}, {ndim}), got "
                                   f"{axis!r}")
    return int(axis) % ndim


def parameter_bytes(state: ModelState | PyTree) -> int:
    """The bytes of a state's parameters (trainable and frozen; not layer state such as
    batch-norm statistics), or of every array leaf of a plain pytree.

    >>> import numpy as np, axon_fn
    >>> parameter_bytes(axon_fn.ModelState({"d": {"kernel": np.zeros((4, 2), np.float32)}}))
    32
    """
    tree = (state.trainable, state.frozen) if isinstance(state, ModelState) else state
    from . import tree as _tree

    return int(sum(np.dtype(leaf.dtype).itemsize * int(np.prod(np.shape(leaf)))
                   for leaf in _tree.leaves(tree) if hasattr(leaf, "dtype")))


# Functional layers -----------------------------------------------------------------------------


def _split_activation(activation, where):
    """``(fused, after)``: the activation the primitive fuses ('relu' or None) and a function
    applied after it (or None)."""
    if activation is None:
        return None, None
    if activation == "relu" or activation is _activations.relu:
        return "relu", None
    if isinstance(activation, str):
        fn = getattr(_activations, activation, None)
        if fn is None or activation.startswith("_"):
            raise InvalidArgumentError(f"{where}: unknown activation {activation!r}")
        return None, fn
    if callable(activation):
        return None, activation
    raise AxonTypeError(f"{where}: `activation` must be None, a name such as 'relu' or a "
                        f"function, got {activation!r}")


def quantized_dense(x: ArrayLike, kernel: ArrayLike, scale: ArrayLike,
                    bias: ArrayLike | None = None, *,
                    activation: str | Callable[[Array], Array] | None = None) -> Array:
    """A dense layer with an int8 ``kernel (in, out)`` and float ``scale (out,)``:
    ``activation((x @ kernel) * scale + bias)``, computed without making the float kernel
    (see :func:`axon_fn.ops.quantized.quantized_dense`; ReLU runs fused).

    >>> import numpy as np
    >>> q = np.array([[127, -64]], np.int8)
    >>> quantized_dense(np.array([[2.0]], np.float32), q, np.array([0.01, 0.01], np.float32),
    ...                 np.array([0.0, 1.0], np.float32), activation="relu")
    array([[2.54, 0.  ]], dtype=float32)
    """
    fused, after = _split_activation(activation, "quantized_dense")
    args = (x, kernel, scale) if bias is None else (x, kernel, scale, bias)
    y = _quantized_dense_op(*args, activation=fused)
    return y if after is None else after(y)


def quantized_conv(x: ArrayLike, kernel: ArrayLike, scale: ArrayLike,
                   bias: ArrayLike | None = None, *, strides: int | Sequence[int] = 1,
                   padding: str | Sequence[tuple[int, int]] = "valid",
                   input_dilation: int | Sequence[int] = 1,
                   kernel_dilation: int | Sequence[int] = 1, feature_group_count: int = 1,
                   channels: str = "last") -> Array:
    """A convolution with an int8 ``kernel`` (the layout of :func:`axon_fn.layers.conv`) and
    one float ``scale`` per output channel: the kernel is dequantized (``kernel * scale``, a
    transient float copy of a conv kernel, which is small) and convolved as
    :func:`axon_fn.layers.conv` does.

    >>> import numpy as np
    >>> q, scale = quantize_array(np.ones((3, 1, 1)))
    >>> quantized_conv(np.arange(5.0).reshape(1, 5, 1), q, scale)[0, :, 0]
    array([3., 6., 9.])
    """
    axis = 0 if channels == "first" else -1
    w = dequantize_array(kernel, scale, axis)
    return _conv(x, w, bias, strides=strides, padding=padding, input_dilation=input_dilation,
                 kernel_dilation=kernel_dilation, feature_group_count=feature_group_count,
                 channels=channels)


def _dense_node_fn(x, kernel, scale, bias=None, *, activation=None):
    return quantized_dense(x, kernel, scale, bias, activation=activation)


def _conv_node_fn(x, kernel, scale, bias=None, *, activation=None, **opts):
    y = quantized_conv(x, kernel, scale, bias, **opts)
    return y if activation is None else activation(y)


_NODE_FNS = {"dense": _dense_node_fn, "conv": _conv_node_fn}


# The model rewrite -----------------------------------------------------------------------------


def _lookup(flat, path, where):
    if path not in flat:
        raise InvalidArgumentError(f"{where}: the state has no parameter {'.'.join(path)!r}; pass "
                                   f"the state this model was initialized or trained with")
    return flat[path]


def quantize(model: Node | PyTree, state: ModelState, *,
             exclude: str | Iterable[str] = ()) -> tuple[Node | PyTree, ModelState]:
    """``(quantized model, quantized state)``: every ``dense`` and ``conv`` layer of ``model``
    (except the layer names or dotted paths in ``exclude``) becomes a quantized layer with an
    int8 ``kernel`` and a float32 ``scale`` per output channel, both frozen; biases stay float
    and keep their place. See the module docstring for the scheme; ``state`` is not changed.

    Not quantized: layers inside a :func:`~axon_fn.block` (their parameters are shared between
    calls), layers whose kernel is tied to another layer's, and every other layer kind
    (``conv_transpose``, ``depthwise_conv``, ``embedding``, ``bilinear``...), which keep their
    float parameters.

    >>> import numpy as np, axon_fn
    >>> x = axon_fn.input("image", shape=(None, 8, 8, 1))
    >>> model = x >> axon_fn.conv(4, 3) >> axon_fn.flatten() >> axon_fn.dense(3, name="head")
    >>> state = axon_fn.init(model, np.zeros((1, 8, 8, 1), np.float32))
    >>> qmodel, qstate = quantize(model, state, exclude="head")
    >>> axon_fn.get_op_counts(qmodel)
    {'input': 1, 'quantized_conv': 1, 'flatten': 1, 'dense': 1}
    >>> sorted(qstate.frozen["conv_0"]), sorted(qstate.trainable)
    (['kernel', 'scale'], ['conv_0', 'head'])
    """
    if not isinstance(state, ModelState):
        raise AxonTypeError(f"quantize: `state` must be a ModelState (from init or training), got "
                            f"{type(state).__name__}")
    excluded = {exclude} if isinstance(exclude, str) else set(exclude)
    if not all(isinstance(e, str) for e in excluded):
        raise AxonTypeError(f"quantize: `exclude` must be a layer name or a list of them, got "
                            f"{exclude!r}")
    program = compile_graph(model)
    uses = {}
    for step in program.steps:
        for p in step.node.parameters:
            uses[id(p)] = uses.get(id(p), 0) + 1
    trainable, frozen = flatten_paths(state.trainable), flatten_paths(state.frozen)
    params = {**trainable, **frozen}
    chosen, matched = {}, set()
    for step in program.steps:
        node = step.node
        dotted = ".".join(step.path)
        hit = {e for e in excluded if e in (step.name, dotted)}
        matched |= hit
        if node.op not in QUANTIZED_OPS or step.sub is not None or hit:
            continue
        kernel_param = next((p for p in node.parameters if p.name == "kernel"), None)
        if kernel_param is None or id(kernel_param) in step.owners or uses[id(kernel_param)] > 1:
            continue
        kernel = _lookup(params, step.path + ("kernel",), "quantize")
        axis = 0 if node.op == "conv" and node.opts.get("channels") == "first" else -1
        q, scale = quantize_array(kernel, axis)
        chosen[id(node)] = (step, q, scale)
    unknown = excluded - matched
    if unknown:
        raise InvalidArgumentError(f"quantize: `exclude` names no layer of this model: "
                                   f"{sorted(unknown)}")

    def replace(original, node):
        found = chosen.get(id(original))
        if found is None:
            return node
        step, q, scale = found
        args = []
        for arg in node.args:
            if getattr(arg, "name", None) == "kernel" and not isinstance(arg, Node):
                # kind "frozen": a fresh init of the quantized model (zeros and ones, values
                # that mean nothing; the real ones come from quantize) puts them in frozen too
                args.append(Parameter("kernel", q.shape, _init.zeros(), "int8", "frozen"))
                args.append(Parameter("scale", scale.shape, _init.ones(), "float32", "frozen"))
            else:
                args.append(arg)
        return dataclasses.replace(node, op=QUANTIZED_OPS[node.op], args=tuple(args),
                                   fn=_NODE_FNS[node.op], name=step.name)

    new_model = _rebuild(model, replace)
    for step, q, scale in chosen.values():
        path = step.path
        trainable.pop(path + ("kernel",), None)
        frozen.pop(path + ("kernel",), None)
        frozen[path + ("kernel",)] = q
        frozen[path + ("scale",)] = scale
    return new_model, ModelState(nest_paths(trainable), state.state, nest_paths(frozen))

"""Mixed-precision policies, in the shape of Elixir Axon's ``Axon.MixedPrecision``.

A :class:`Policy` names three dtypes: ``params`` (how parameters are stored and updated),
``compute`` (what each layer computes in) and ``output`` (what the model returns).
:func:`apply_policy` returns a new model graph, a rewrite of every node, not a flag threaded
through the layers:

* every declared floating parameter is stored in ``params``;
* each layer casts its floating inputs and parameters to ``compute`` before it runs (the cast
  is the differentiable ``ops.astype``, so gradients come back in ``params``);
* the layers named in ``except_`` (by op or by layer name; the normalization layers by
  default) compute in float32: their statistics are sums over many values, which float16 and
  bfloat16 round badly;
* the model's output is cast to ``output``, so the loss is computed there.

Layer state updated in train mode (batch-norm statistics) is cast back to ``params``.
The policy works with the ``trainer``, ``jit`` and float16 with dynamic loss scaling
(``trainer(..., loss_scale="dynamic")``); see ``guides/mixed_precision.md``.

>>> import numpy as np, axon_fn
>>> from axon_fn import mixed_precision as mp
>>> model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(4) >> axon_fn.relu()
>>> half = mp.apply_policy(model, mp.create_policy(compute="float16"))
>>> state = axon_fn.init(half)
>>> state.trainable["dense_0"]["kernel"].dtype, axon_fn.predict(half, state, np.ones((2, 3))).dtype
(dtype('float32'), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Iterable

import numpy as np

from . import _pytree as optree  # optree in axon_fn's registry namespace
from . import ops
from ._dtypes import canonical, is_floating, is_real_floating
from ._program import compile_graph
from .errors import AxonTypeError, InvalidArgumentError
from .graph.node import Node, Parameter, StatefulOutput
from .typing import DTypeLike, PyTree

__all__ = ["Policy", "create_policy", "apply_policy", "policy_of", "NORMALIZATION_OPS"]

#: The ops :func:`apply_policy` keeps in float32 unless ``except_`` says otherwise.
NORMALIZATION_OPS = ("batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm")

_FULL = np.dtype(np.float32)


@dataclasses.dataclass(frozen=True)
class Policy:
    """The dtypes of a mixed-precision policy: ``params`` (storage and updates), ``compute``
    (the layers' arithmetic) and ``output`` (the model's result). Make one with
    :func:`create_policy`.

    >>> Policy(np.dtype("float32"), np.dtype("float16"), np.dtype("float32"))
    Policy(params=float32, compute=float16, output=float32)
    """

    params: np.dtype
    compute: np.dtype
    output: np.dtype

    def __repr__(self):
        return (f"Policy(params={self.params.name}, compute={self.compute.name}, "
                f"output={self.output.name})")


def _float_dtype(value, argument):
    try:
        dtype = canonical(value)
    except (TypeError, ValueError) as err:
        raise AxonTypeError(f"create_policy: `{argument}`: {err}") from None
    if not is_real_floating(dtype):
        raise AxonTypeError(f"create_policy: `{argument}` must be a floating dtype (float16, "
                            f"bfloat16, float32 or float64), got {dtype}")
    return dtype


def create_policy(params: DTypeLike = "float32", compute: DTypeLike = "bfloat16",
                  output: DTypeLike = "float32") -> Policy:
    """A :class:`Policy` from three floating dtypes (names such as ``"bfloat16"`` or numpy
    dtypes). bfloat16 needs ``ml_dtypes`` (``pip install axon_fn[bfloat16]``).

    >>> create_policy(compute="float16")
    Policy(params=float32, compute=float16, output=float32)
    >>> create_policy(compute=np.float32).compute
    dtype('float32')
    """
    return Policy(_float_dtype(params, "params"), _float_dtype(compute, "compute"),
                  _float_dtype(output, "output"))


def _cast(value, dtype):
    """``value`` cast to ``dtype`` when it is a floating array of another dtype."""
    current = getattr(value, "dtype", None)
    if current is None or current == dtype or not is_floating(current):
        return value
    return ops.astype(value, dtype)


def _cast_tree(tree, dtype):
    """Every floating array of ``tree`` (an array, a tuple of a recurrent layer's outputs, a
    container's dict) cast to ``dtype``."""
    if hasattr(tree, "dtype"):
        return _cast(tree, dtype)
    if isinstance(tree, StatefulOutput):
        return StatefulOutput(_cast_tree(tree.output, dtype), tree.state)
    return optree.tree_map(lambda v: _cast(v, dtype), tree)


def _layer_fn(fn, dtype, state_dtypes, output_dtype):
    """``fn`` computing in ``dtype``: floating arguments cast first, updated state cast to
    its parameter's dtype after, and the result cast to ``output_dtype`` when given."""

    def run(*values, **kwargs):
        out = fn(*(_cast_tree(v, dtype) for v in values), **kwargs)
        if isinstance(out, StatefulOutput) and state_dtypes:
            out = StatefulOutput(out.output, {
                name: _cast(v, state_dtypes[name]) if name in state_dtypes else v
                for name, v in out.state.items()})
        return out if output_dtype is None else _cast_tree(out, output_dtype)

    run.__name__ = getattr(fn, "__name__", "layer")
    run.__wrapped__ = fn
    return run


def _outputs(fn, output_dtype):
    def run(*values, **kwargs):
        return _cast_tree(fn(*values, **kwargs), output_dtype)

    run.__name__ = getattr(fn, "__name__", "output")
    run.__wrapped__ = fn
    return run


def apply_policy(model: Node | PyTree, policy: Policy,
                 except_: Iterable[str] = NORMALIZATION_OPS) -> Node | PyTree:
    """A copy of ``model`` (a node or a pytree of nodes) following ``policy``: floating
    parameters declared in ``policy.params``, each layer computing in ``policy.compute``
    (inputs and parameters cast on entry), and the output cast to ``policy.output``.

    ``except_`` lists ops (``"batch_norm"``) or layer names (``"dense_2"``) computed in float32
    instead; by default the normalization layers (:data:`NORMALIZATION_OPS`). Layer names,
    and so the ModelState's structure, stay the same. Layers inside a :func:`axon_fn.block`
    run as the block was defined (the block's own parameters are not rewritten).

    >>> import numpy as np, axon_fn
    >>> seen = []
    >>> x = axon_fn.input("x", shape=(None, 2))
    >>> hidden = axon_fn.attach_hook(x >> axon_fn.dense(3), lambda v: seen.append(v.dtype))
    >>> model = hidden >> axon_fn.batch_norm() >> axon_fn.dense(1)
    >>> mixed = apply_policy(model, create_policy(compute="float16"))
    >>> state = axon_fn.init(mixed)
    >>> state.trainable["dense_0"]["kernel"].dtype  # stored in the params dtype
    dtype('float32')
    >>> axon_fn.predict(mixed, state, np.ones((4, 2), np.float32)).dtype  # the output dtype
    dtype('float32')
    >>> seen  # what the first dense layer computed in
    [dtype('float16')]
    """
    if not isinstance(policy, Policy):
        raise AxonTypeError(f"apply_policy: `policy` must come from create_policy, got "
                            f"{type(policy).__name__}")
    if isinstance(except_, str):
        except_ = (except_,)
    try:
        excepted = frozenset(except_)
    except TypeError:
        raise AxonTypeError(f"apply_policy: `except_` must be a list of op or layer names, got "
                            f"{except_!r}") from None
    if not all(isinstance(name, str) for name in excepted):
        raise AxonTypeError(f"apply_policy: `except_` must hold op or layer names (strings), "
                            f"got {sorted(map(repr, excepted))}")
    program = compile_graph(model)
    names = {id(step.node): step.name for step in program.steps}
    known = {step.node.op for step in program.steps} | set(names.values())
    unknown = sorted(excepted - known - set(NORMALIZATION_OPS))
    if unknown:
        raise InvalidArgumentError(f"apply_policy: `except_` names {unknown[0]!r}, which is "
                                   f"neither an op nor a layer name of this model")
    output = program.steps[program.output_slot].node
    parameters = {}

    def stored(p):
        if id(p) not in parameters:
            declared = canonical(p.dtype)
            parameters[id(p)] = dataclasses.replace(p, dtype=policy.params) \
                if is_real_floating(declared) else p
        return parameters[id(p)]

    def rewrite(original, node):
        last = original is output
        if node.op == "input" or node.fn is None:
            return node
        if node.op in ("container", "constant") or "block" in node.meta:
            return dataclasses.replace(node, fn=_outputs(node.fn, policy.output)) if last \
                else node
        full = node.op in excepted or names[id(original)] in excepted
        dtype = _FULL if full else policy.compute
        args = tuple(stored(a) if isinstance(a, Parameter) else a for a in node.args)
        state = {a.name: canonical(a.dtype) for a in args
                 if isinstance(a, Parameter) and a.kind == "state"}
        fn = _layer_fn(node.fn, dtype, state, policy.output if last else None)
        return dataclasses.replace(node, args=args, fn=fn,
                                   meta=MappingProxyType({**node.meta, "policy": policy}))

    return _rebuild(model, rewrite)


def _rebuild(model, rewrite):
    from .graph_tools import _rebuild as rebuild

    return rebuild(model, rewrite)


def policy_of(model: Node) -> Any:
    """The :class:`Policy` ``apply_policy`` gave the model's output node, or None.

    >>> import axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.dense(1)
    >>> policy_of(model) is None, policy_of(apply_policy(model, create_policy(compute="float16")))
    (True, Policy(params=float32, compute=float16, output=float32))
    """
    return model.meta.get("policy") if isinstance(model, Node) else None

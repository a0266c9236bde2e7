"""Turn a model graph into two pure functions: ``init_fn`` and ``predict_fn``.

>>> import numpy as np, axon_fn
>>> model = axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(2)
>>> init_fn, predict_fn = build(model)
>>> state = init_fn(np.zeros((1, 3), np.float32), axon_fn.random.key(0))
>>> predict_fn(state, np.ones((4, 3), np.float32)).shape
(4, 2)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping
import weakref

import numpy as np
from . import _pytree as optree  # optree in axon_fn's registry namespace

from ._dtypes import is_real_floating
from . import random as _random
from ._checks import is_int
from ._core import AbstractArray, Staged
from .backend import is_gpu_array
from ._program import compile_graph, layer_key
from .errors import AxonTypeError, InvalidArgumentError, ShapeError
from .graph.core import MISSING
from .graph.node import Node
from .model_state import ModelState, flatten_paths, merge_trees, nest_paths
from .typing import ArrayLike, PRNGKey, PyTree

__all__ = ["build", "init", "predict", "get_output_shape"]

_MODES = ("inference", "train")


def _describe_inputs(program):
    return ", ".join(f"{name!r} (shape {node.meta['shape']}"
                     f"{', ' + str(node.meta['dtype']) if node.meta['dtype'] else ''}"
                     f"{', optional' if node.meta['optional'] else ''})"
                     for name, node in program.inputs.items())


def _as_input_dict(program, inputs, where):
    if isinstance(inputs, dict):
        return dict(inputs)
    if len(program.inputs) == 1:
        return {next(iter(program.inputs)): inputs}
    raise AxonTypeError(f"{where}: this model has {len(program.inputs)} inputs; pass a dict "
                        f"{{name: array}}. It expects: {_describe_inputs(program)}")


def _check_inputs(program, inputs, where):
    """Validate names, ranks, fixed sizes and dtype kinds against the declared inputs."""
    unknown = [n for n in inputs if n not in program.inputs]
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown input {unknown[0]!r}; the model expects: "
                                   f"{_describe_inputs(program)}")
    for name, node in program.inputs.items():
        if name not in inputs or inputs[name] is None:
            if not node.meta["optional"]:
                raise InvalidArgumentError(f"{where}: missing input {name!r}; the model expects: "
                                           f"{_describe_inputs(program)}")
            inputs.pop(name, None)
            continue
        value = inputs[name]
        if not hasattr(value, "shape"):
            value = inputs[name] = np.asarray(value)
        declared, got = node.meta["shape"], tuple(value.shape)
        if declared is not None and (len(declared) != len(got) or any(
                d is not None and d != g for d, g in zip(declared, got))):
            raise ShapeError(f"{where}: input {name!r} expected shape {declared} (None: any "
                             f"size), got {got}")
        dtype = node.meta["dtype"]
        if dtype is not None and np.dtype(value.dtype).kind != dtype.kind and not (
                dtype.kind in "iu" and np.dtype(value.dtype).kind in "iu"):
            raise AxonTypeError(f"{where}: input {name!r} expected dtype {dtype}, got "
                                f"{np.dtype(value.dtype)}")
    return inputs


def _template(program, template):
    if template is None:
        template = {}
        for name, node in program.inputs.items():
            shape = node.meta["shape"]
            if shape is None:
                if node.meta["optional"]:
                    continue
                raise InvalidArgumentError(f"init: input {name!r} declares no shape; pass a "
                                           f"template array for it")
            template[name] = AbstractArray(tuple(1 if d is None else d for d in shape),
                                           node.meta["dtype"] or "float32")
    template = _check_inputs(program, _as_input_dict(program, template, "init"), "init")
    return {name: AbstractArray(v.shape, v.dtype) for name, v in template.items()}


def _input_shapes(args):
    """The shapes a parameter's shape function receives: a tuple per array input, the same
    structure of tuples for a container input."""
    def shape(value):
        if hasattr(value, "shape"):
            return tuple(value.shape)
        return optree.tree_map(lambda leaf: tuple(leaf.shape), value)
    return [shape(a) for a in args]


def _key_array(key):
    """A numpy or GPU array, staged inside ``axon_fn.jit`` or not (a traced key is refused:
    keys are not differentiated)."""
    value = key.value if type(key) is Staged else key
    return type(value) is np.ndarray or is_gpu_array(value)


def _key(key, where):
    if is_int(key):
        return _random.key(int(key))
    if _key_array(key) and key.shape == (2,) and key.dtype == np.uint32:
        return key
    raise AxonTypeError(f"{where}: `key` must be an int seed or a key from axon_fn.random.key, "
                        f"got {key!r}")


def _initial_leaves(initial):
    if initial is None:
        return {}, set()
    if isinstance(initial, ModelState):
        frozen = set(flatten_paths(initial.frozen))
        return flatten_paths(initial.data), frozen
    if isinstance(initial, dict):
        return flatten_paths(initial), set()
    raise AxonTypeError(f"init: `initial` must be a ModelState or a nested dict "
                        f"{{layer: {{param: array}}}}, got {type(initial).__name__}")


def _init(program, template, key, initial):
    key = _key(key, "init")
    given, frozen_given = _initial_leaves(initial)
    parts = {"trainable": {}, "state": {}, "frozen": {}}
    used, shapes_seen = set(), {}

    def provider(step, path, parameter, args):
        name = parameter.name
        shapes = _input_shapes(args)
        try:
            shape = parameter.resolve_shape(shapes)
        except Exception as error:
            raise ShapeError(f"layer {'.'.join(path)!r} (op {step.node.op}): cannot work out the "
                             f"shape of parameter {name!r} from inputs of shape "
                             f"{', '.join(map(str, shapes))}: {error}") from error
        full = path + (name,)
        if full in shapes_seen and shapes_seen[full] != shape:
            raise ShapeError(f"layer {'.'.join(path)!r}: its parameter {name!r} is shared (a "
                             f"block called more than once, or one param object used by "
                             f"several layers) but one use needs shape {shapes_seen[full]} and "
                             f"another {shape} (op {step.node.op}); give the shared param a "
                             f"fixed shape, or call the block on inputs of the same shapes")
        shapes_seen[full] = shape
        if full in given:
            value = given[full]
            used.add(full)
            if tuple(np.shape(value)) != shape:
                raise ShapeError(f"init: initial value for {'.'.join(full)!r} has shape "
                                 f"{tuple(np.shape(value))}; the model expects {shape} "
                                 f"(parameter {name!r} of layer {'.'.join(path)!r}, op "
                                 f"{step.node.op})")
            dtype = getattr(value, "dtype", None)
            if dtype is None or not _dtype_fits(parameter.dtype, dtype):
                raise AxonTypeError(f"init: initial value for {'.'.join(full)!r} (layer "
                                    f"{'.'.join(path)!r}) has dtype "
                                    f"{dtype if dtype is not None else type(value).__name__}; "
                                    f"the layer declares {np.dtype(parameter.dtype)}")
        else:
            value = parameter.initializer(layer_key(key, full), shape, parameter.dtype)
        part = "state" if parameter.kind == "state" else (
            # kind "frozen": a parameter never trained (int8 kernels of axon_fn.quantize)
            "frozen" if full in frozen_given or parameter.kind == "frozen" else "trainable")
        parts[part][full] = value
        return AbstractArray(shape, value.dtype)

    program.run(template, provider, training=False, hooks=False)
    unknown = [p for p in given if p not in used]
    if unknown:
        known = [".".join(p) for part in parts.values() for p in part]
        raise InvalidArgumentError(f"init: `initial` has {'.'.join(unknown[0])!r}, which is not a "
                                   f"parameter of this model; it has: {', '.join(known) or 'none'}")
    return ModelState(*(nest_paths(parts[k]) for k in ("trainable", "state", "frozen")))


def _lookup(tree, path):
    for part in path:
        tree = tree.get(part)
        if tree is None:
            return None
    return tree


def _param_provider(state):
    def provider(step, path, parameter, args):
        name = parameter.name
        for part in (state.trainable, state.frozen, state.state):
            layer = _lookup(part, path)
            if layer is not None and name in layer:
                return layer[name]
        raise InvalidArgumentError(f"predict: the state has no parameter "
                                   f"{'.'.join(path + (name,))!r}; initialize it with init_fn "
                                   f"(or pass it in `initial`)")
    return provider


def _dtype_fits(declared, got):
    """A parameter declared float accepts any float precision (``state.astype(np.float64)`` for
    a gradient check); otherwise the kind must match (int ids, bool masks)."""
    declared, got = np.dtype(declared), np.dtype(got)
    if is_real_floating(declared):
        return is_real_floating(got)
    return got.kind == declared.kind or (declared.kind in "iu" and got.kind in "iu")


def _state_leaves(program, state, where, strict=False):
    """``{path: (part, value)}`` of ``state``, refusing a leaf that is no parameter of
    ``program`` (PyTorch's "unexpected key"). Unless ``strict``, whole layers the model does not
    have are let through: a sub-graph (an encoder cut from an autoencoder) runs on the state of
    the model it was cut from; a stray parameter inside one of the model's layers is refused."""
    declared = program.parameters()
    found = {}
    for part in ("trainable", "frozen", "state"):  # _param_provider's order: the same value wins
        for path, value in flatten_paths(getattr(state, part)).items():
            found.setdefault(path, (part, value))
    layers = {path[:-1] for path in declared}
    extra = [path for path in found if path not in declared and (strict or path[:-1] in layers)]
    if extra:
        part = found[extra[0]][0]
        known = ", ".join(".".join(p) for p in declared) or "none"
        raise InvalidArgumentError(
            f"{where}: the state has {'.'.join(extra[0])!r} (in state.{part}), which is not a "
            f"parameter of this model (a state made for another model?); the model has: "
            f"{known}. Initialize this model's state with init_fn, passing the parameters that "
            f"fit in `initial`, or drop the extra ones with state.drop(...)")
    return found


def check_state(model, state, where):
    """Raise unless ``state`` (a ModelState) holds no parameter that ``model`` lacks (strict:
    a whole foreign layer counts too); shapes are checked when the state first runs."""
    _state_leaves(compile_graph(model), state, where, strict=True)


def _checking_provider(found, where):
    """A parameter provider that checks each parameter against what its layer expects (PyTorch's
    "missing key" and "size mismatch"), for the first run of a state structure."""
    def provider(step, path, parameter, args):
        full = path + (parameter.name,)
        shapes = _input_shapes(args)
        expected = parameter.resolve_shape(shapes)
        layer = f"layer {'.'.join(path)!r} (op {step.node.op})"
        if full not in found:
            raise InvalidArgumentError(
                f"{where}: the state has no parameter {'.'.join(full)!r}, which {layer} needs "
                f"with shape {expected}; initialize it with init_fn (or pass it in `initial`)")
        value = found[full][1]
        got = tuple(getattr(value, "shape", None) or np.shape(value))
        if got != expected:
            raise ShapeError(
                f"{where}: parameter {'.'.join(full)!r} of {layer} has shape {got} in the "
                f"state; the layer expects {expected} for inputs of shape "
                f"{', '.join(map(str, shapes))}. The state was made for a different model or "
                f"input size; initialize this one with init_fn")
        dtype = getattr(value, "dtype", None)
        if dtype is None or not _dtype_fits(parameter.dtype, dtype):
            raise AxonTypeError(
                f"{where}: parameter {'.'.join(full)!r} of {layer} has dtype "
                f"{dtype if dtype is not None else type(value).__name__} in the state; the "
                f"layer declares {np.dtype(parameter.dtype)} (any float precision fits a float "
                f"parameter)")
        return value
    return provider


def _signature(tree):
    """Layer names, shapes and dtypes of a nested dict of arrays: the key under which a
    state's check is remembered (built from attributes only: no flattening, no copies)."""
    return tuple([(k, _signature(v)) if type(v) is dict else (k, v.shape, v.dtype)
                  for k, v in tree.items()])


class _StateChecks:
    """Which (state structure, input shapes) pairs have been checked, so that only the first
    run of each pays for the check; later runs pay a comparison. The last state's three dicts
    are compared by identity first (an inference loop passes the same state each time), a new
    state by its names, shapes and dtypes (so a dict changed in place after its first run is
    not looked at again). The check itself runs inside the real pass (its provider checks each
    parameter as the layer asks for it), so layers are not called twice."""

    _LIMIT = 64

    def __init__(self, program):
        self.program, self.passed, self.last = program, set(), None

    def provider(self, state, inputs, where):
        """``(provider, key)``: the plain provider when this state was checked before, else the
        checking one and the key to :meth:`passed_run` after the run succeeds."""
        shapes = tuple([(n, v.shape, v.dtype) for n, v in inputs.items()])
        last = self.last
        if (last is not None and last[0] is state.trainable and last[1] is state.state
                and last[2] is state.frozen and last[3] == shapes):
            return _param_provider(state), None
        try:
            key = (_signature(state.trainable), _signature(state.state),
                   _signature(state.frozen), shapes)
        except AttributeError:  # a leaf that is not an array: the checking provider names it
            key = False
        if key in self.passed:
            self.last = (state.trainable, state.state, state.frozen, shapes)
            return _param_provider(state), None
        return _checking_provider(_state_leaves(self.program, state, where), where), (key, state)

    def passed_run(self, pending):
        key, state = pending
        if key is False:
            return
        if len(self.passed) >= self._LIMIT:
            self.passed.clear()
        self.passed.add(key)
        self.last = (state.trainable, state.state, state.frozen, key[3])


def _keep_dtypes(old, updates):
    """New state values in the dtype of the values they replace (float32 statistics stay
    float32 when a float64 batch goes through)."""
    old = flatten_paths(old)
    return nest_paths({path: value.astype(old[path].dtype) if path in old and
                       value.dtype != old[path].dtype else value for path, value in updates.items()})


def _as_state(state):
    if isinstance(state, ModelState):
        return state
    if isinstance(state, dict):
        return ModelState(state)
    raise AxonTypeError(f"predict: `state` must be the ModelState from init_fn, got "
                        f"{type(state).__name__}")


def _output(value):
    return optree.tree_map(lambda v: None if v is MISSING else v, value, none_is_leaf=True)


def build(model: Node | PyTree,
          mode: str = "inference") -> tuple[Callable[..., ModelState], Callable[..., Any]]:
    """Compile ``model`` (a node, or a dict/tuple of nodes) into ``(init_fn, predict_fn)``.

    * ``init_fn(template=None, key=0, initial=None) -> ModelState``: parameter shapes come from
      the template's shapes (an array, ``AbstractArray`` or ``{input name: ...}``; ``None`` uses
      the declared input shapes with 1 for each ``None``). Each parameter's values depend only on
      the key, its layer's name and its own name. ``initial`` (a ModelState or nested dict, may
      be partial) supplies values that are kept as given after a shape check.
    * ``predict_fn(state, inputs, *, key=None)``: ``inputs`` is an array (one-input models) or
      ``{name: array}``. In ``mode="train"`` it returns ``(prediction, new_state)`` with updated
      layer state (batch-norm statistics), and dropout layers draw from ``key``.
      ``predict_fn.stochastic_layers`` names the layers that draw from ``key`` in train mode.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.dense(1) >> axon_fn.dropout(0.5)
    >>> init_fn, train_fn = build(model, mode="train")
    >>> y, new_state = train_fn(init_fn(), np.ones((3, 2)), key=axon_fn.random.key(1))
    >>> y.shape, train_fn.stochastic_layers
    ((3, 1), ('dropout_0',))
    """
    if mode not in _MODES:
        raise InvalidArgumentError(f"build: `mode` must be 'inference' or 'train', got {mode!r}")
    program = compile_graph(model)
    training = mode == "train"
    checks = _StateChecks(program)

    def init_fn(template=None, key=0, initial=None):
        return _init(program, _template(program, template), key, initial)

    def predict_fn(state, inputs, *, key=None):
        state = _as_state(state)
        inputs = _check_inputs(program, _as_input_dict(program, inputs, "predict"), "predict")
        if training and key is None and program.stochastic:
            raise InvalidArgumentError(f"predict: the model has random layers "
                                       f"({', '.join(program.stochastic)}); in train mode pass "
                                       f"key=axon_fn.random.key(...) (a new one each step)")
        if key is not None:
            key = _key(key, "predict")
        provider, pending = checks.provider(state, inputs, "predict")
        updates = {} if training else None
        out = _output(program.run(inputs, provider, training=training, key=key, updates=updates))
        if pending is not None:
            checks.passed_run(pending)
        if not training:
            return out
        new_state = merge_trees(state.state, _keep_dtypes(state.state, updates))
        return out, state.replace(state=new_state)

    init_fn.__doc__ = "Initialize the model's ModelState; see axon_fn.build."
    predict_fn.__doc__ = f"Run the model in {mode} mode; see axon_fn.build."
    predict_fn.stochastic_layers = tuple(program.stochastic)
    return init_fn, predict_fn


_CACHE = weakref.WeakKeyDictionary()


def _cached(model, mode):
    if not hasattr(model, "__weakref__") or isinstance(model, dict):
        return build(model, mode)
    per_model = _CACHE.setdefault(model, {})
    if mode not in per_model:
        per_model[mode] = build(model, mode)
    return per_model[mode]


def init(model: Node | PyTree, template: ArrayLike | Mapping[str, ArrayLike] | None = None,
         key: int | PRNGKey = 0,
         initial: ModelState | Mapping[str, Any] | None = None) -> ModelState:
    """``build(model)[0](template, key, initial)``: initialize a model's parameters.

    >>> import numpy as np, axon_fn
    >>> state = init(axon_fn.input("x", shape=(None, 3)) >> axon_fn.dense(2), np.ones((1, 3)))
    >>> state.trainable["dense_0"]["kernel"].shape
    (3, 2)
    """
    return _cached(model, "inference")[0](template, key, initial)


def predict(model: Node | PyTree, state: ModelState | Mapping[str, Any],
            inputs: ArrayLike | Mapping[str, ArrayLike], *, mode: str = "inference",
            key: int | PRNGKey | None = None) -> Any:
    """``build(model, mode)[1](state, inputs, key=key)``: run a model once.

    >>> import numpy as np, axon_fn
    >>> model = axon_fn.input("x", shape=(None, 2)) >> axon_fn.relu()
    >>> predict(model, init(model), np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """
    return _cached(model, mode)[1](state, inputs, key=key)


def _shape_only(step, path, parameter, args):
    return AbstractArray(parameter.resolve_shape(_input_shapes(args)), parameter.dtype)


def trace_shapes(model, template=None):
    """Run ``model`` on shapes alone: ``(program, records, output)`` where each record is
    ``(step, path, argument values, output value)`` with ``AbstractArray`` values."""
    program = compile_graph(model)
    records = []
    template = _template(program, template)
    output = program.run(template, _shape_only, training=False,
                         record=lambda *record: records.append(record), hooks=False)
    return program, records, output


def get_output_shape(model: Node | PyTree,
                     template: ArrayLike | Mapping[str, ArrayLike] | None = None) -> Any:
    """The output shape(s) of ``model`` for ``template`` (see :func:`build`), from the shape
    rules alone.

    >>> import axon_fn
    >>> get_output_shape(axon_fn.input("x", shape=(None, 5)) >> axon_fn.dense(3))
    (1, 3)
    """
    _, _, output = trace_shapes(model, template)
    return optree.tree_map(lambda v: None if v is MISSING else tuple(v.shape), output,
                           none_is_leaf=True)

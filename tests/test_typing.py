"""The public API carries type annotations (PEP 561: the package ships ``py.typed``).

Modules are added to ANNOTATED as their public functions get annotations; every public function
and method there must annotate each parameter and its return, with names that resolve.
"""

import importlib
import inspect
import pathlib
import typing

import pytest

import axon_fn
import axon_fn.typing as axon_typing
from axon_fn.loop import Loop, State

ANNOTATED = [
    "axon_fn.tree", "axon_fn.random", "axon_fn.model_state", "axon_fn.serialization",
    "axon_fn.initializers", "axon_fn.metrics", "axon_fn.typing", "axon_fn.graph.core",
    "axon_fn.graph.node", "axon_fn.loop.core", "axon_fn.loop.checkpoint", "axon_fn.loop.filters",
    "axon_fn.loop.handlers", "axon_fn.loop.metric_specs", "axon_fn.loop.plot",
    "axon_fn.loop.trainer", "axon_fn.loop.progress", "axon_fn.loop.experiment",
    "axon_fn.layers.normalization", "axon_fn.activations", "axon_fn.losses", "axon_fn.build",
    "axon_fn.backend", "axon_fn.staging", "axon_fn.testing", "axon_fn.display",
    "axon_fn.graph_tools", "axon_fn.eval_shape", "axon_fn.distributed", "axon_fn.autodiff.api",
    "axon_fn.layers.attention", "axon_fn.layers.conv", "axon_fn.layers.dropout",
    "axon_fn.layers.linear", "axon_fn.layers.pooling", "axon_fn.layers.recurrent",
    "axon_fn.layers.shape", "axon_fn.nn.activation", "axon_fn.nn.attention", "axon_fn.nn.combine",
    "axon_fn.nn.conv", "axon_fn.nn.dropout", "axon_fn.nn.linear", "axon_fn.nn.normalization",
    "axon_fn.nn.pooling", "axon_fn.nn.recurrent", "axon_fn.nn.shape", "axon_fn.optim.adaptive",
    "axon_fn.optim.aliases", "axon_fn.optim.base", "axon_fn.optim.combinators",
    "axon_fn.optim.hyperparams", "axon_fn.optim.loss_scale", "axon_fn.optim.schedules",
    "axon_fn.optim.transforms", "axon_fn.onnx._import", "axon_fn.onnx._export",
    "axon_fn.ops.arrange", "axon_fn.ops.conv", "axon_fn.ops.einsum", "axon_fn.ops.indexing",
    "axon_fn.ops.linalg", "axon_fn.ops.manipulation", "axon_fn.ops.pool", "axon_fn.ops.softmax",
    "axon_fn.ops.sorting", "axon_fn.ops.statistics", "axon_fn.ops.ufuncs",
    "axon_fn.mixed_precision",
]

# Exception: most of ``axon_fn.ops`` (``ops.add``, ``ops.sum``, ``ops.reshape``...) is generated
# by ``axon_fn._signature.numpy_signature_op`` from each primitive's numpy signature string
# (``"a, axis=None, dtype=None, out=None, keepdims=False"``) and compiled with ``exec``, so
# that numpy's argument binding costs nothing per call; such a function has no source module
# (``__module__`` is None, its code's file ``<axon_fn.ops.NAME>``) and carries no annotations.
# Annotating them would mean a second, hand-kept type string per registration (about 60) that
# the generator would have to splice into the compiled source. The primitives registered in
# ``axon_fn._core`` (``relu``, ``conv_general``...) are likewise exempt. The hand-written ops,
# including those of the modules without ``__all__`` (``creation``, ``elementwise``,
# ``reductions``, ``shape``), are checked by ``test_hand_written_ops_are_annotated``.


def _is_generated(fn):
    return inspect.unwrap(fn).__code__.co_filename.startswith("<")


def _public_callables(module):
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isfunction(obj) and inspect.unwrap(obj).__module__ == module.__name__:
            yield name, obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__call__"):
                    continue
                if isinstance(member, property):
                    member = member.fget
                elif isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def _missing(fn):
    signature = inspect.signature(fn)
    missing = [p.name for p in signature.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("module_name", ANNOTATED)
def test_public_functions_are_annotated(module_name):
    module = importlib.import_module(module_name)
    localns = {name: getattr(axon_typing, name) for name in axon_typing.__all__}
    localns.update(Loop=Loop, State=State)
    unannotated = {}
    for name, fn in _public_callables(module):
        missing = _missing(fn)
        if missing:
            unannotated[name] = missing
        else:
            typing.get_type_hints(inspect.unwrap(fn), localns=localns)  # every name resolves
    assert not unannotated, f"{module_name}: unannotated parameters/returns: {unannotated}"


def test_hand_written_ops_are_annotated():
    import axon_fn.ops as ops

    localns = {name: getattr(axon_typing, name) for name in axon_typing.__all__}
    unannotated, checked = {}, 0
    for name in ops.__all__:
        fn = getattr(ops, name)
        if not inspect.isfunction(fn) or _is_generated(fn):
            continue
        if not (inspect.unwrap(fn).__module__ or "").startswith("axon_fn.ops."):
            continue  # a primitive of axon_fn._core (see above)
        checked += 1
        missing = _missing(fn)
        if missing:
            unannotated[name] = missing
        else:
            typing.get_type_hints(inspect.unwrap(fn), localns=localns)
    assert checked > 50
    assert not unannotated, f"axon_fn.ops: unannotated parameters/returns: {unannotated}"


def test_the_package_ships_py_typed():
    assert (pathlib.Path(axon_fn.__file__).parent / "py.typed").is_file()

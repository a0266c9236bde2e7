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
    "axon_fn.layers.normalization",
]


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
            typing.get_type_hints(fn, localns=localns)  # every name resolves
    assert not unannotated, f"{module_name}: unannotated parameters/returns: {unannotated}"


def test_the_package_ships_py_typed():
    assert (pathlib.Path(axon_fn.__file__).parent / "py.typed").is_file()

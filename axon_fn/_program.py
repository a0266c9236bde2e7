"""Compile a model graph into a flat program and interpret it (private; see :mod:`axon_fn.build`).

Compiling orders the nodes (inputs first), names them (``op_N`` per op kind unless named),
places each in its namespaces, and turns every node into a step that reads earlier slots and
parameters. Running a program is one pass over the steps; a ``provider`` supplies the
parameters, so the same pass initializes (abstract values, fresh parameters) and predicts.
"""

from __future__ import annotations

import zlib

from . import random as _random
from .autodiff import custom_vjp, stop_gradient
from .errors import AxonError, AxonTypeError, InvalidArgumentError, LayerError
from .graph.core import MISSING, input as _input
from .graph.node import Node, Parameter, StatefulOutput

__all__ = ["Program", "compile_graph", "layer_key"]


def layer_key(key, path):
    """The PRNG key of the layer (or parameter) at ``path``: independent of graph order."""
    for part in path:
        key = _random.fold_in(key, zlib.crc32(part.encode()))
    return key


def _topological(output):
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((parent, False) for parent in reversed(node.inputs) if id(parent) not in seen)
    return order


def _identity(node):
    """What a name belongs to: the block definition for block calls (they share a name)."""
    return node.meta.get("block", node)


def _assign_names(order):
    names, owner = {}, {}
    for node in order:
        explicit = node.name
        if explicit is None:
            continue
        if explicit in owner and owner[explicit] is not _identity(node):
            other = owner[explicit]
            other_op = other.op
            raise InvalidArgumentError(
                f"duplicate layer name {explicit!r}: it names both a {other_op} layer and a "
                f"{node.op} layer; every layer and input of a model needs its own name")
        owner[explicit] = _identity(node)
        names[id(node)] = explicit
    counters, given = {}, {}
    for node in order:
        if id(node) in names:
            continue
        ident = _identity(node)
        if id(ident) in given:
            names[id(node)] = given[id(ident)]
            continue
        k = counters.get(node.op, 0)
        while f"{node.op}_{k}" in owner:
            k += 1
        counters[node.op] = k + 1
        name = f"{node.op}_{k}"
        owner[name] = ident
        given[id(ident)] = names[id(node)] = name
    return names


def _namespace_paths(order, names):
    spaces = [n for n in order if n.op == "namespace"]
    if not spaces:
        return {}
    upstream = {id(ns): {id(n) for n in _topological(ns)} - {id(ns)} for ns in spaces}
    paths = {}
    for node in order:
        inside = [ns for ns in spaces if id(node) in upstream[id(ns)]]
        inside.sort(key=lambda ns: -len(upstream[id(ns)]))
        for outer, inner in zip(inside, inside[1:]):
            if id(inner) not in upstream[id(outer)] and node.parameters:
                raise InvalidArgumentError(
                    f"layer {names[id(node)]!r} is inside namespaces {names[id(outer)]!r} and "
                    f"{names[id(inner)]!r}, which are not nested; its parameters need one home")
        paths[id(node)] = tuple(names[id(ns)] for ns in inside)
    return paths


class Step:
    """One node of a compiled program."""

    __slots__ = ("node", "name", "path", "refs", "sub", "kwargs", "owners")

    def __init__(self, node, name, path, refs, sub):
        self.node, self.name, self.path, self.refs, self.sub = node, name, path, refs, sub
        self.kwargs = dict(node.opts)
        # {id(parameter): path of the layer that owns it} for a param object that an earlier
        # layer also uses (weight tying); empty for the usual one-layer parameters
        self.owners = {}


class Program:
    """A compiled graph: ``steps`` in execution order, ``inputs`` by name, the output slot."""

    def __init__(self, output):
        order = _topological(output)
        names = _assign_names(order)
        spaces = _namespace_paths(order, names)
        slot = {id(node): i for i, node in enumerate(order)}
        self.inputs, self.steps, subs, owner = {}, [], {}, {}
        for node in order:
            name = names[id(node)]
            if node.op == "input":
                self.inputs[name] = node
            refs = tuple(p if isinstance(p, Parameter) else slot[id(p)] for p in node.args)
            sub = None
            if "block" in node.meta:
                blk = node.meta["block"]
                if id(blk) not in subs:
                    subs[id(blk)] = _compile_block(blk, name, len(node.args))
                sub = subs[id(blk)]
            space = () if node.op == "input" else spaces.get(id(node), ())
            step = Step(node, name, space + (name,), refs, sub)
            for ref in refs:
                if isinstance(ref, Parameter):
                    home = owner.setdefault(id(ref), step.path)
                    if home != step.path:
                        step.owners[id(ref)] = home
            self.steps.append(step)
        self.output_slot = len(order) - 1
        self.stochastic = sorted({s.name for s in self.steps if s.node.takes_key}
                                 | {s.name for s in self.steps if s.sub and s.sub.stochastic})

    def run(self, inputs, provider, *, training, key=None, prefix=(), updates=None, record=None,
            hooks=True):
        """Interpret the program. ``inputs``: ``{name: value}``; ``provider(step, path,
        parameter, args)`` returns a parameter's value; state updates go to
        ``updates[path] = value``; ``record(step, path, args, out)`` sees every step; ``hooks``
        is off for runs on shapes alone."""
        values = [None] * len(self.steps)
        for i, step in enumerate(self.steps):
            node = step.node
            if node.op == "input":
                value = inputs.get(step.name, MISSING)
                if record is not None and not prefix:  # a block's inputs are its callers'
                    record(step, step.path, [], value)
                values[i] = value
                continue
            path = prefix + step.path
            args, missing = [], False
            for ref in step.refs:
                if isinstance(ref, Parameter):
                    continue
                value = values[ref]
                missing = missing or (value is MISSING and not node.sees_missing)
                args.append(value)
            if missing:
                values[i] = MISSING
                continue
            if step.sub is not None:
                values[i] = _call(step, path, args, lambda: step.sub.run(
                    {n: v for n, v in zip(step.sub.inputs, args)}, provider, training=training,
                    key=key, prefix=path, updates=updates, record=record, hooks=hooks))
                continue
            if node.parameters:
                it, owners = iter(args), step.owners
                args = [(provider(step, prefix + owners[id(ref)] if owners and id(ref) in owners
                                  else path, ref, args)) if isinstance(ref, Parameter)
                        else next(it) for ref in step.refs]
            kwargs = step.kwargs
            if node.takes_training or node.takes_key:
                kwargs = dict(kwargs)
                if node.takes_training:
                    kwargs["training"] = training
                if node.takes_key:
                    kwargs["key"] = layer_key(key, path) if training and key is not None else None
            out = _call(step, path, args, lambda: node.fn(*args, **kwargs))
            if isinstance(out, StatefulOutput):
                if updates is not None:
                    for name, new in out.state.items():
                        updates[path + (name,)] = stop_gradient(new)
                out = out.output
            if node.hooks and hooks:
                out = _run_hooks(node.hooks, out, training)
            if record is not None:
                record(step, path, args, out)
            values[i] = out
        return values[self.output_slot]

    def parameters(self, prefix=()):
        """``{path: (step, parameter)}`` for every parameter, blocks included; a parameter
        shared by several layers appears once, under the first layer that uses it."""
        out = {}
        for step in self.steps:
            path = prefix + step.path
            if step.sub is not None:
                out.update(step.sub.parameters(path))
            for ref in step.refs:
                if isinstance(ref, Parameter) and id(ref) not in step.owners:
                    out[path + (ref.name,)] = (step, ref)
        return out


def _compile_block(blk, name, n_inputs):
    placeholders = [_input(f"{name}_input_{i}") for i in range(n_inputs)]
    try:
        output = blk.fn(*placeholders)
    except AxonError:
        raise
    except Exception as error:
        raise LayerError(f"block {name!r}: building its graph failed: {error}") from error
    if not isinstance(output, Node):
        raise AxonTypeError(f"block {name!r}: the block function must return a model node, got "
                            f"{type(output).__name__}")
    program = Program(output)
    program.inputs = {p.name: p for p in placeholders}  # positional, used or not
    return program


def _shapes(args):
    shapes = [tuple(a.shape) if hasattr(a, "shape") else type(a).__name__ for a in args]
    return ", ".join(map(str, shapes)) or "no inputs"


def _call(step, path, args, thunk):
    try:
        return thunk()
    except Exception as error:
        if getattr(error, "axon_layer", None) is not None:
            raise
        message = (f"layer {'.'.join(path)!r} (op {step.node.op}) failed on inputs of shape "
                   f"{_shapes(args)}: {error}")
        try:
            wrapped = type(error)(message) if isinstance(error, AxonError) else LayerError(message)
        except TypeError:
            wrapped = LayerError(message)
        wrapped.axon_layer = ".".join(path)
        raise wrapped from error


def _run_hooks(hooks, out, training):
    for hook in hooks:
        if hook.mode != "both" and (hook.mode == "train") != training:
            continue
        if hook.on in ("forward", "both"):
            hook.fn(stop_gradient(out))
        if hook.on in ("backward", "both"):
            out = _backward_hook(hook.fn)(out)
    return out


def _backward_hook(fn):
    @custom_vjp
    def watch(x):
        return x

    def backward(_, g):
        fn(g)
        return (g,)

    watch.defvjp(lambda x: (x, None), backward)
    return watch


def compile_graph(model):
    """A :class:`Program` for ``model``: a node or a pytree of nodes (a container)."""
    from .graph.core import container
    from .graph.node import Layer, Pipeline

    if isinstance(model, (Layer, Pipeline)):
        raise AxonTypeError(f"build: {model!r} is a layer waiting for its input; apply it "
                            f"first, e.g. axon_fn.input('x', shape=(None, 4)) >> layer")
    if not isinstance(model, Node):
        model = container(model)
    return Program(model)

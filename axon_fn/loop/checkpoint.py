"""Loop checkpoints: the whole loop :class:`~axon_fn.loop.State` in one file, without pickle.

A checkpoint holds the step state (model state, optimizer state, PRNG key), the counters,
metrics, history, accumulated metric state, event counts and every handler's data, written
atomically with :func:`~axon_fn.save_tree`. Reading one back gives a State that
``loop.run(data, state=...)`` (or ``loop.from_checkpoint(path)``) continues from, exactly.

A checkpoint directory also has a ``latest`` file naming the newest checkpoint in it, so a
directory can be given wherever a checkpoint file can.

>>> import os, tempfile
>>> import numpy as np
>>> from axon_fn.loop import State
>>> with tempfile.TemporaryDirectory() as d:
...     save_checkpoint(State(step_state={"w": np.ones(2)}, epoch=3), os.path.join(d, "c.npz"))
...     restored = load_checkpoint(d)
>>> restored.epoch, restored.step_state
(3, {'w': array([1., 1.])})
"""

from __future__ import annotations

import dataclasses
import os
import sys

from ..errors import AxonTypeError, InvalidArgumentError
from ..serialization import (atomic_write, is_named_tuple_class, load_tree,
                             named_tuples_by_name, save_tree)

__all__ = ["save_checkpoint", "load_checkpoint"]

_LATEST = "latest"
_MARK = "axon_fn_loop_state"


def _state_type():
    from .core import State  # core imports the handlers, which import this module

    return State


def save_checkpoint(state, path):
    """Write the loop State ``state`` to ``path`` (``.npz``; parent directories are created)
    and record it as the newest checkpoint of its directory.

    Every leaf must be an array, a number, a string, a bool or None (see
    :func:`~axon_fn.save_tree`); an error names the path of one that is not.
    """
    State = _state_type()
    if not isinstance(state, State):
        raise AxonTypeError(f"save_checkpoint: `state` must be a loop State, got "
                            f"{type(state).__name__}")
    fields = {field.name: getattr(state, field.name) for field in dataclasses.fields(State)}
    save_tree({_MARK: 1, **fields}, path)
    name = os.path.basename(os.fspath(path))
    atomic_write(os.path.join(os.path.dirname(os.fspath(path)), _LATEST),
                 lambda file: file.write(name.encode()), "save_checkpoint")


def _named_tuples(extra):
    """axon_fn's NamedTuple classes (model, optimizer and trainer states) and the caller's
    (checked; theirs win a name clash)."""
    found = [value for module in list(sys.modules.values())
             if getattr(module, "__name__", "").startswith("axon_fn")
             for value in vars(module).values()
             if is_named_tuple_class(value) and value.__module__.startswith("axon_fn")]
    return list(named_tuples_by_name([*found, *extra], "load_checkpoint").values())


def _resolve(path):
    path = os.fspath(path)
    if not os.path.isdir(path):
        return path
    pointer = os.path.join(path, _LATEST)
    if not os.path.exists(pointer):
        raise InvalidArgumentError(f"load_checkpoint: the directory {path!r} has no "
                                   f"'{_LATEST}' file; it holds no checkpoint written by "
                                   f"loop.checkpoint (pass a checkpoint file instead)")
    with open(pointer, encoding="utf-8") as file:
        return os.path.join(path, file.read().strip())


def load_checkpoint(path, *, types=()):
    """The loop State saved at ``path`` (a checkpoint file, or a directory: its newest one).

    NamedTuples in the step state come back as their classes: axon_fn's (``TrainState``,
    ``ModelState``, optimizer states) always, your own when listed in ``types``.
    """
    State = _state_type()
    tree = load_tree(_resolve(path), types=_named_tuples(types))
    if not isinstance(tree, dict) or tree.pop(_MARK, None) != 1:
        raise InvalidArgumentError(f"load_checkpoint: {os.fspath(path)!r} is not a loop "
                                   f"checkpoint (it was not written by save_checkpoint)")
    known = {field.name for field in dataclasses.fields(State)}
    unknown = sorted(set(tree) - known)
    if unknown:
        raise InvalidArgumentError(f"load_checkpoint: {os.fspath(path)!r} has fields this "
                                   f"version of the State does not know: {unknown}")
    return State(**tree)


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
from typing import TYPE_CHECKING, Iterable

from .._files import as_path, atomic_write, check_is_file, damaged
from ..errors import AxonTypeError, InvalidArgumentError
from ..serialization import is_named_tuple_class, named_tuples_by_name, read_tree, save_tree
from ..typing import PathLike

__all__ = ["save_checkpoint", "load_checkpoint"]

if TYPE_CHECKING:
    from .core import State

_LATEST = "latest"
_MARK = "axon_fn_loop_state"
_MAX_NAME = 4096
_POINTER_FIX = "pass one of the directory's checkpoint files instead"


def _state_type():
    from .core import State  # core imports the handlers, which import this module

    return State


def save_checkpoint(state: State, path: PathLike) -> None:
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
    """The checkpoint file ``path`` names: itself, or for a directory the file its ``latest``
    pointer names (checked: one readable name of a file in that directory)."""
    path = as_path(path, "load_checkpoint")
    if not os.path.isdir(path):
        return path
    pointer = os.path.join(path, _LATEST)
    if not os.path.exists(pointer):
        raise InvalidArgumentError(f"load_checkpoint: the directory {path!r} has no "
                                   f"'{_LATEST}' file; it holds no checkpoint written by "
                                   f"loop.checkpoint (pass a checkpoint file instead)")
    check_is_file(pointer, "load_checkpoint")
    with open(pointer, "rb") as file:
        raw = file.read(_MAX_NAME + 1)  # a name, never more than a file name's length
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        name = None
    if (not name or len(raw) > _MAX_NAME or name in (".", "..") or "\x00" in name
            or os.path.basename(name) != name or (os.altsep and os.altsep in name)):
        raise damaged("load_checkpoint", pointer,
                      f"it should hold the file name of the newest checkpoint in {path!r}, "
                      f"but holds {raw[:80]!r}", _POINTER_FIX)
    target = os.path.join(path, name)
    if not os.path.isfile(target):
        raise damaged("load_checkpoint", pointer,
                      f"it names {name!r}, which is not a file in {path!r}", _POINTER_FIX)
    return target


def load_checkpoint(path: PathLike, *, types: Iterable[type] = ()) -> State:
    """The loop State saved at ``path`` (a checkpoint file, or a directory: its newest one).

    NamedTuples in the step state come back as their classes: axon_fn's (``TrainState``,
    ``ModelState``, optimizer states) always, your own when listed in ``types``.
    """
    State = _state_type()
    tree = read_tree(_resolve(path), None, _named_tuples(types), "load_checkpoint")
    if not isinstance(tree, dict) or tree.pop(_MARK, None) != 1:
        raise InvalidArgumentError(f"load_checkpoint: {os.fspath(path)!r} is not a loop "
                                   f"checkpoint (it was not written by save_checkpoint)")
    known = {field.name for field in dataclasses.fields(State)}
    unknown = sorted(set(tree) - known)
    if unknown:
        raise InvalidArgumentError(f"load_checkpoint: {os.fspath(path)!r} has fields this "
                                   f"version of the State does not know: {unknown}")
    return State(**tree)


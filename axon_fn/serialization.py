"""Saving and loading model states and training checkpoints, without pickle.

:func:`save` / :func:`load` store a :class:`~axon_fn.ModelState`; :func:`save_tree` /
:func:`load_tree` store any pytree a training checkpoint needs (model state, optimizer state,
step counters, PRNG keys, metrics history). Nothing is pickled, so loading a file never runs
code from it.

On disk (``.npz``, the default) a file is a zip archive laid out as ``np.savez`` lays it out: one
``.npy`` member per array leaf, named by the leaf's ``/``-joined path (``"trainable/dense_0/kernel"``,
``"opt/0/mu/dense_0/bias"``), plus a ``"__axon_fn__"`` member, a ``uint8`` array holding a UTF-8
JSON header: ``{"format": "axon_fn", "version": 1, "kind": "model_state" | "tree", "tree": node}``.
``node`` describes the structure in insertion order: ``dict`` (key/child pairs, keys str or
int), ``list``, ``tuple``, ``namedtuple`` (class name and field/child pairs), ``array`` and
``scalar`` (numpy scalar; member name, dtype and shape), ``registered`` (a container registered
with :func:`axon_fn.tree.register_pytree_node`: its ``module.qualname``, static data and
children, rebuilt by that class when it is registered again before loading) and ``int`` /
``float`` / ``bool`` / ``str`` / ``none`` leaves, whose values live in the header itself. ``np.load(path,
allow_pickle=False)`` reads every file. A path ending in ``.safetensors`` is written with the
``safetensors`` package instead (same tensor names, the header in the metadata under
``"__axon_fn__"``).

Writes are atomic: the file is written under a temporary name in the target's directory,
flushed and fsynced, then renamed onto the target, so a crash never leaves a half-written file
under the real name.

>>> import os, tempfile
>>> import numpy as np
>>> from axon_fn.model_state import ModelState
>>> state = ModelState({"dense_0": {"kernel": np.eye(2, dtype=np.float32)}})
>>> with tempfile.TemporaryDirectory() as d:
...     save(state, os.path.join(d, "model.npz"))
...     sorted(np.load(os.path.join(d, "model.npz"), allow_pickle=False).files)
...     load(os.path.join(d, "model.npz")).trainable["dense_0"]["kernel"]
['__axon_fn__', 'trainable/dense_0/kernel']
array([[1., 0.],
       [0., 1.]], dtype=float32)
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any, Iterable, Optional

import numpy as np

from . import _pytree
from ._core import AbstractArray
from ._dtypes import bfloat16
from ._files import (HEADER_KEY, SafetensorsReader, as_path, atomic_write, is_bfloat16,
                     is_safetensors, open_reader, safetensors_bytes, write_npz)
from .backend import is_gpu_array
from .errors import AxonTypeError, InvalidArgumentError, ShapeError
from .model_state import ModelState
from .typing import PathLike, PyTree

__all__ = ["save", "load", "save_tree", "load_tree"]

FORMAT = "axon_fn"
VERSION = 1
_RESERVED = {HEADER_KEY, "__metadata__"}  # "__metadata__" is safetensors' own header entry
_ARRAY_KINDS = "biufc"  # bool, signed and unsigned ints, floats, complex
_LEAVES = ("leaves must be numpy arrays (numeric or bool dtype), numpy scalars, or Python int, "
           "float, bool, str or None")


# Paths and descriptions -----------------------------------------------------------------------


def _join(path):
    return "/".join(str(p) for p in path)


def _at(path):
    return f"'{_join(path)}'" if path else "the root"


def _kind_of(value):
    """A short description of a value's kind, for error messages: 'a function', 'of type set'."""
    cls = type(value)
    if cls.__name__ in ("function", "builtin_function_or_method", "method"):
        return "a function"
    module = "" if cls.__module__ == "builtins" else cls.__module__ + "."
    return f"of type {module}{cls.__qualname__}"


def _is_namedtuple(value):
    return isinstance(value, tuple) and isinstance(getattr(type(value), "_fields", None), tuple)


# Encoding -------------------------------------------------------------------------------------


class _Encoder:
    """Walks a pytree once, building the JSON structure node and the ``{member: array}`` dict."""

    def __init__(self, where):
        self.where = where
        self.arrays = {}

    def _member(self, path):
        base = _join(path) or "root"
        if "\x00" in base:  # zip member names stop at a NUL
            base = base.replace("\x00", "_")
        try:
            base.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot name a zip member
            base = base.encode("utf-8", "backslashreplace").decode("ascii", "replace")
        name, n = base, 1
        while name in self.arrays or name in _RESERVED:
            name, n = f"{base}#{n}", n + 1
        return name

    def _array(self, value, path, scalar):
        if is_gpu_array(value):
            value = value.get()
        array = np.asarray(value)
        if array.dtype.kind not in _ARRAY_KINDS and not is_bfloat16(array.dtype):
            raise AxonTypeError(f"{self.where}: the array at {_at(path)} has dtype "
                                f"{array.dtype}; only numeric and bool arrays can be saved "
                                f"(nothing is pickled)")
        name = self._member(path)
        self.arrays[name] = array
        return {"type": "scalar" if scalar else "array", "key": name,
                "dtype": "bfloat16" if is_bfloat16(array.dtype) else array.dtype.str,
                "shape": list(array.shape)}

    def _key(self, key, path):
        if type(key) is str or type(key) is int:
            return key
        raise AxonTypeError(f"{self.where}: the dict at {_at(path)} has the key {key!r} "
                            f"({type(key).__name__}); only str and int keys can be saved")

    def encode(self, value, path=()):
        if value is None:
            return {"type": "none"}
        kind = type(value)
        if kind is bool:
            return {"type": "bool", "value": value}
        if kind is int:
            return {"type": "int", "value": value}
        if kind is float:
            stored = value if math.isfinite(value) else repr(value)  # "nan", "inf", "-inf"
            return {"type": "float", "value": stored}
        if kind is str:
            return {"type": "str", "value": value}
        if isinstance(value, np.ma.MaskedArray):
            raise AxonTypeError(f"{self.where}: the array at {_at(path)} is a masked array, whose "
                                f"mask would be lost; save its .data and .mask as two arrays")
        if isinstance(value, np.ndarray) or is_gpu_array(value):
            return self._array(value, path, scalar=False)
        if isinstance(value, np.generic):
            return self._array(value, path, scalar=True)
        if isinstance(value, dict):
            return {"type": "dict", "items": [
                [self._key(k, path), self.encode(v, path + (k,))] for k, v in value.items()]}
        if _is_namedtuple(value):
            return {"type": "namedtuple", "name": kind.__qualname__, "fields": [
                [f, self.encode(v, path + (f,))] for f, v in zip(kind._fields, value)]}
        if isinstance(value, list) or kind is tuple:
            return {"type": "tuple" if isinstance(value, tuple) else "list",
                    "items": [self.encode(v, path + (i,)) for i, v in enumerate(value)]}
        entry = _pytree.registered(kind)
        if entry is not None:  # a container registered with tree.register_pytree_node
            children, aux = entry.flatten_func(value)[:2]
            return {"type": "registered", "name": _pytree.class_name(kind),
                    "aux": self.encode(aux, path + ("<aux>",)),
                    "items": [self.encode(v, path + (i,)) for i, v in enumerate(children)]}
        raise AxonTypeError(f"{self.where}: the leaf at {_at(path)} is {_kind_of(value)}, which "
                            f"cannot be saved; {_LEAVES} (inside dicts, lists, tuples and "
                            f"namedtuples)")


def _header(kind, node):
    """The JSON header text (pure ASCII: other characters are escaped)."""
    return json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, "tree": node},
                      allow_nan=False, separators=(",", ":"))


# Writing --------------------------------------------------------------------------------------


def _save(tree, path, kind, where):
    path = as_path(path, where)
    encoder = _Encoder(where)
    header = _header(kind, encoder.encode(tree))
    if is_safetensors(path):
        data = safetensors_bytes(where, path, header, encoder.arrays)
        atomic_write(path, lambda file: file.write(data), where)
    else:
        atomic_write(path, lambda file: write_npz(file, header, encoder.arrays), where)


# Reading --------------------------------------------------------------------------------------


def _read_header(reader, where):
    raw = reader.header()
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidArgumentError(f"{where}: {reader.path!r} has a '{HEADER_KEY}' entry that is "
                                   f"not valid JSON ({err})") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidArgumentError(f"{where}: {reader.path!r} is not an axon_fn file (its "
                                   f"'{HEADER_KEY}' entry does not say format 'axon_fn')")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise InvalidArgumentError(f"{where}: {reader.path!r} has format version {version!r}; "
                                   f"this axon_fn reads versions 1 to {VERSION} (upgrade "
                                   f"axon_fn to read it)")
    if "tree" not in header:
        raise InvalidArgumentError(f"{where}: {reader.path!r} has a header without a 'tree'")
    return header


class _Decoder:
    """Rebuilds a pytree from the header's structure node, reading arrays from ``reader``."""

    def __init__(self, reader, where):
        self.reader, self.where = reader, where

    def corrupt(self, path, what):
        return InvalidArgumentError(f"{self.where}: {self.reader.path!r} has a damaged header at "
                                    f"{_at(path)}: {what}")

    def field(self, node, name, types, path):
        """``node[name]``, checked to be one of ``types`` (a bool is not an int here)."""
        types = types if isinstance(types, tuple) else (types,)
        value = node.get(name) if isinstance(node, dict) else None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.corrupt(path, f"expected a {name!r} field of type "
                                     f"{'/'.join(t.__name__ for t in types)}, got {node!r}")
        return value

    def pairs(self, node, name, path):
        items = self.field(node, name, list, path)
        for item in items:
            if not (isinstance(item, list) and len(item) == 2
                    and type(item[0]) in (str, int)):
                raise self.corrupt(path, f"malformed {name!r} entry {item!r}")
        return items

    def dtype(self, node, path):
        text = self.field(node, "dtype", str, path)
        if text == "bfloat16":  # stored as its bits (npz) or as a BF16 tensor (safetensors)
            try:
                return bfloat16()
            except AxonTypeError as err:
                raise AxonTypeError(f"{self.where}: the array at {_at(path)} is bfloat16: "
                                    f"{err}") from None
        try:
            return np.dtype(text)
        except (TypeError, ValueError, SyntaxError) as err:
            raise self.corrupt(path, f"unknown dtype {text!r}") from err

    def shape(self, node, path):
        shape = tuple(self.field(node, "shape", list, path))
        if not all(type(n) is int and n >= 0 for n in shape):
            raise self.corrupt(path, f"malformed shape {list(shape)!r}")
        return shape

    def array(self, node, path):
        name = self.field(node, "key", str, path)
        dtype, shape = self.dtype(node, path), self.shape(node, path)
        array = self.reader.get(name)
        if array.dtype == np.uint16 and is_bfloat16(dtype):
            array = array.view(dtype)
        if isinstance(self.reader, SafetensorsReader):
            # safetensors stores little-endian data only; files of axon_fn <= 0.1.0 hold a 0-d
            # array as shape (1,)
            if array.dtype != dtype and array.dtype == dtype.newbyteorder("<"):
                array = array.astype(dtype)
            if array.shape != shape and array.size == math.prod(shape):
                array = array.reshape(shape)
        if array.dtype != dtype or array.shape != shape:
            raise self.corrupt(path, f"the header says {dtype} {shape} but the entry {name!r} "
                                     f"holds {array.dtype} {array.shape}")
        return array[()] if node["type"] == "scalar" else array

    def value(self, node, path):
        kind = self.field(node, "type", str, path)
        if kind == "none":
            return None
        if kind == "bool":
            return self.field(node, "value", bool, path)
        if kind == "int":
            return self.field(node, "value", int, path)
        if kind == "float":
            value = node.get("value")
            if value in ("nan", "inf", "-inf"):
                return float(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.corrupt(path, f"expected a float value, got {value!r}")
            return float(value)
        if kind == "str":
            return self.field(node, "value", str, path)
        if kind in ("array", "scalar"):
            return self.array(node, path)
        raise self.corrupt(path, f"unknown node type {kind!r}")

    def plain(self, node, path=(), types=None):
        """The stored tree as dicts, lists and leaves (no ``like``); a namedtuple whose class
        name is in ``types`` comes back as that class (and, with ``types``, a tuple as a
        tuple)."""
        kind = self.field(node, "type", str, path)
        if kind == "dict":
            return {k: self.plain(v, path + (k,), types)
                    for k, v in self.pairs(node, "items", path)}
        if kind == "namedtuple":
            fields = {k: self.plain(v, path + (k,), types)
                      for k, v in self.pairs(node, "fields", path)}
            cls = (types or {}).get(node.get("name"))
            if cls is not None and list(fields) == list(cls._fields):
                return cls(**fields)
            return fields
        if kind in ("list", "tuple"):
            items = [self.plain(v, path + (i,), types)
                     for i, v in enumerate(self.field(node, "items", list, path))]
            return tuple(items) if kind == "tuple" and types is not None else items
        if kind == "registered":
            return self.registered(node, path, types)
        return self.value(node, path)

    def registered(self, node, path, types):
        """A container registered with ``tree.register_pytree_node``, rebuilt by its class."""
        name = self.field(node, "name", str, path)
        cls = _pytree.registered_named(name)
        if cls is None:
            raise AxonTypeError(f"{self.where}: {self.reader.path!r} holds a {name} at "
                                f"{_at(path)}, a container registered with "
                                f"axon_fn.tree.register_pytree_node when it was saved; import "
                                f"and register that class before loading")
        children = [self.plain(v, path + (i,), types)
                    for i, v in enumerate(self.field(node, "items", list, path))]
        aux = self.plain(self.field(node, "aux", dict, path), path + ("<aux>",), types or {})
        return _pytree.registered(cls).unflatten_func(aux, tuple(children))

    # Restoring a template's structure -----------------------------------------------------

    def _describe(self, node, path):
        kind = self.field(node, "type", str, path)
        if kind == "dict":
            return f"a dict with keys {[k for k, _ in self.pairs(node, 'items', path)]}"
        if kind == "namedtuple":
            return f"a {node.get('name')} namedtuple"
        if kind in ("list", "tuple"):
            return f"a {kind} of length {len(self.field(node, 'items', list, path))}"
        if kind == "registered":
            return f"a {node.get('name')} with {len(self.field(node, 'items', list, path))} children"
        if kind in ("array", "scalar"):
            what = "numpy scalar" if kind == "scalar" else "array"
            return f"a {self.dtype(node, path)} {what} of shape {self.shape(node, path)}"
        if kind == "none":
            return "None"
        return f"a Python {kind}"

    def mismatch(self, path, expected, node, error=ShapeError):
        return error(f"{self.where}: the file and `like` differ at {_at(path)}: expected "
                     f"{expected} (from `like`), got {self._describe(node, path)} (in the file)")

    def like(self, template, node, path=()):
        kind = self.field(node, "type", str, path)
        if template is None:
            if kind != "none":
                raise self.mismatch(path, "None", node)
            return None
        if isinstance(template, dict):
            if kind not in ("dict", "namedtuple"):
                raise self.mismatch(path, f"a dict with keys {list(template)}", node)
            stored = dict((k, v) for k, v in self.pairs(
                node, "items" if kind == "dict" else "fields", path))
            if set(stored) != set(template) or len(stored) != len(template):
                raise self.mismatch(path, f"a dict with keys {list(template)}", node)
            items = [(k, self.like(t, stored[k], path + (k,))) for k, t in template.items()]
            if type(template) is dict:
                return dict(items)
            out = copy.copy(template)  # keeps a subclass's extras (e.g. a default_factory)
            out.clear()
            out.update(items)
            return out
        if _is_namedtuple(template):
            cls = type(template)
            expected = f"a {cls.__qualname__} namedtuple with fields {list(cls._fields)}"
            if kind == "namedtuple":
                fields = self.pairs(node, "fields", path)
                if node.get("name") != cls.__qualname__ or [f for f, _ in fields] != list(
                        cls._fields):
                    raise self.mismatch(path, expected, node)
            elif kind == "dict":
                fields = self.pairs(node, "items", path)
                if sorted(map(str, (f for f, _ in fields))) != sorted(cls._fields):
                    raise self.mismatch(path, expected, node)
                by_name = dict(fields)
                fields = [(f, by_name[f]) for f in cls._fields]
            else:
                raise self.mismatch(path, expected, node)
            return cls._make(self.like(t, child, path + (f,))
                             for t, (f, child) in zip(template, fields))
        entry = _pytree.registered(type(template))
        if entry is not None:
            children, aux = entry.flatten_func(template)[:2]
            name = _pytree.class_name(type(template))
            stored = self.field(node, "items", list, path) if kind == "registered" else []
            if kind != "registered" or node.get("name") != name or len(stored) != len(children):
                raise self.mismatch(path, f"a {name} with {len(children)} children", node)
            return entry.unflatten_func(aux, tuple(
                self.like(t, c, path + (i,)) for i, (t, c) in enumerate(zip(children, stored))))
        if isinstance(template, (list, tuple)):
            noun = "tuple" if isinstance(template, tuple) else "list"
            expected = f"a {noun} of length {len(template)}"
            if kind not in ("list", "tuple"):
                raise self.mismatch(path, expected, node)
            children = self.field(node, "items", list, path)
            if len(children) != len(template):
                raise self.mismatch(path, expected, node)
            values = [self.like(t, c, path + (i,))
                      for i, (t, c) in enumerate(zip(template, children))]
            return type(template)(values)
        return self.like_leaf(template, node, kind, path)

    def like_leaf(self, template, node, kind, path):
        if isinstance(template, (np.ndarray, np.generic, AbstractArray)) or is_gpu_array(
                template):
            scalar = isinstance(template, np.generic)
            dtype, shape = np.dtype(template.dtype), tuple(np.shape(template))
            what = "numpy scalar" if scalar else "array"
            expected = f"a {dtype} {what} of shape {shape}"
            if kind not in ("array", "scalar"):
                raise self.mismatch(path, expected, node, AxonTypeError)
            got_shape = self.shape(node, path)
            if got_shape != shape:
                raise self.mismatch(path, expected, node, ShapeError)
            if self.dtype(node, path) != dtype:
                raise self.mismatch(path, expected, node, AxonTypeError)
            array = self.array(dict(node, type="array"), path)
            if scalar:
                return array[()]
            if is_gpu_array(template):
                from .backend import device_put

                return device_put(array, f"cuda:{template.device.id}")
            return array
        kind_of_template = {bool: "bool", int: "int", float: "float", str: "str"}.get(
            type(template))
        if kind_of_template is None:
            raise AxonTypeError(f"{self.where}: `like` has {_kind_of(template)} at {_at(path)}; "
                                f"{_LEAVES}")
        if kind != kind_of_template:
            raise self.mismatch(path, f"a Python {kind_of_template}", node, AxonTypeError)
        return self.value(node, path)


def is_named_tuple_class(value: Any) -> bool:
    """True for a NamedTuple class (what ``load_tree``'s ``types`` lists)."""
    return isinstance(value, type) and issubclass(value, tuple) and hasattr(value, "_fields")


def named_tuples_by_name(types: Iterable[type], where: str) -> dict:
    """``{class name: class}`` for the NamedTuple classes ``types`` (later ones win a clash)."""
    found = {}
    for cls in types:
        if not is_named_tuple_class(cls):
            raise AxonTypeError(f"{where}: `types` must list NamedTuple classes, got {cls!r}")
        found[cls.__qualname__] = cls
    return found


# Public API -----------------------------------------------------------------------------------


def save(state: ModelState, path: PathLike) -> None:
    """Write the :class:`~axon_fn.ModelState` ``state`` to ``path`` (``.npz``, or
    ``.safetensors`` with the safetensors package), atomically and without pickle.

    Arrays are stored bit for bit under ``"trainable/<layer>/<param>"``-style names; which part
    (trainable, state, frozen) each belongs to, the nesting and the key order are kept in the
    file's JSON header, so :func:`load` returns an identical state. Parent directories are
    created.

    >>> import os, tempfile
    >>> from axon_fn.model_state import freeze
    >>> state = freeze(ModelState({"a": {"w": np.ones(2, np.float16)}, "b": {"w": np.zeros(1)}}),
    ...                ["b"])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(state, os.path.join(d, "ckpt", "model.npz"))
    ...     loaded = load(os.path.join(d, "ckpt", "model.npz"))
    >>> loaded
    ModelState(trainable={a.w: (2,)}, state={}, frozen={b.w: (1,)})
    >>> loaded.trainable["a"]["w"].dtype
    dtype('float16')
    """
    if not isinstance(state, ModelState):
        raise AxonTypeError(f"save: `state` must be an axon_fn.ModelState, got "
                            f"{type(state).__name__}; use save_tree for other pytrees")
    for part, tree in zip(ModelState._fields, state):
        if not isinstance(tree, dict):
            raise AxonTypeError(f"save: `state.{part}` must be a dict of layers, got "
                                f"{type(tree).__name__}")
    _save(state, path, "model_state", "save")


def load(path: PathLike) -> ModelState:
    """Read a :class:`~axon_fn.ModelState` written by :func:`save`.

    Raises :class:`~axon_fn.InvalidArgumentError` when ``path`` is not an axon_fn file or holds
    another pytree (read those with :func:`load_tree`).

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(ModelState({"d": {"b": np.arange(3, dtype=np.int32)}}), os.path.join(d, "m.npz"))
    ...     load(os.path.join(d, "m.npz")).trainable
    {'d': {'b': array([0, 1, 2], dtype=int32)}}
    """
    reader = open_reader(path, "load")
    try:
        header = _read_header(reader, "load")
        decoder = _Decoder(reader, "load")
        node = header["tree"]
        if not (isinstance(node, dict) and node.get("type") == "namedtuple"
                and node.get("name") == "ModelState"):
            raise InvalidArgumentError(f"load: {reader.path!r} holds a pytree that is not a "
                                       f"ModelState (written by save_tree); read it with "
                                       f"load_tree")
        fields = decoder.pairs(node, "fields", ())
        if [name for name, _ in fields] != list(ModelState._fields):
            raise decoder.corrupt((), f"expected the ModelState fields {list(ModelState._fields)}")
        parts = [decoder.plain(child, (name,)) for name, child in fields]
        for name, part in zip(ModelState._fields, parts):
            if not isinstance(part, dict):
                raise decoder.corrupt((name,), f"expected a dict, got {type(part).__name__}")
        return ModelState(*parts)
    finally:
        reader.close()


def save_tree(tree: PyTree, path: PathLike) -> None:
    """Write the pytree ``tree`` (a training checkpoint) to ``path`` (``.npz``, or
    ``.safetensors`` with the safetensors package), atomically and without pickle.

    Containers: dicts (str or int keys), lists, tuples and namedtuples (a ModelState, optimizer
    states). Leaves: numpy arrays of a numeric or bool dtype and numpy scalars (stored bit for
    bit), and Python int, float, bool, str and None (stored in the JSON header). Anything else
    raises :class:`~axon_fn.AxonTypeError` naming its path. Parent directories are created.

    >>> import os, tempfile
    >>> ckpt = {"step": 10, "key": np.array([0, 3], np.uint32), "history": [0.5, float("nan")]}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_tree(ckpt, os.path.join(d, "ckpt.npz"))
    ...     load_tree(os.path.join(d, "ckpt.npz"))
    {'step': 10, 'key': array([0, 3], dtype=uint32), 'history': [0.5, nan]}
    """
    _save(tree, path, "tree", "save_tree")


def load_tree(path: PathLike, like: Optional[PyTree] = None, *,
              types: Optional[Iterable[type]] = None) -> PyTree:
    """Read a pytree written by :func:`save_tree` (or :func:`save`).

    Without ``like``, containers come back as plain dicts and lists (a namedtuple as the dict of
    its fields, a tuple as a list), except that a namedtuple whose class name is a key of
    ``types`` (an iterable of NamedTuple classes) has that class name comes back as that class;
    when ``types`` is given, tuples also come back as tuples. With ``like`` (a template, e.g. a freshly initialized model
    and optimizer state), the result has exactly the template's structure (its namedtuple types,
    ModelState, tuples and key order) and every leaf is checked against the template's: the
    same path, the same kind, and for arrays the same shape and dtype (an
    :class:`~axon_fn.AbstractArray` leaf, as :func:`~axon_fn.eval_shape` gives, stands for an
    array of its shape and dtype). A difference raises
    :class:`~axon_fn.ShapeError` (structure, shape) or :class:`~axon_fn.AxonTypeError` (dtype,
    kind) naming the path, what ``like`` expects and what the file holds.

    >>> import os, tempfile
    >>> from axon_fn.optim import adam
    >>> params = {"w": np.ones(2, np.float32)}
    >>> opt_state = adam(1e-3).init(params)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_tree({"params": params, "opt": opt_state}, os.path.join(d, "c.npz"))
    ...     plain = load_tree(os.path.join(d, "c.npz"))
    ...     restored = load_tree(os.path.join(d, "c.npz"), like={"params": params, "opt": opt_state})
    >>> sorted(plain["opt"][0])
    ['count', 'mu', 'nu']
    >>> type(restored["opt"][0]).__name__
    'ScaleByAdamState'
    """
    return read_tree(path, like, types, "load_tree")


def read_tree(path: PathLike, like: Optional[PyTree], types: Optional[Iterable[type]],
              where: str) -> PyTree:
    """:func:`load_tree` whose errors name ``where`` (``load_checkpoint`` reads through it)."""
    reader = open_reader(path, where)
    try:
        header = _read_header(reader, where)
        decoder = _Decoder(reader, where)
        if like is None:
            named = None if types is None else named_tuples_by_name(types, where)
            return decoder.plain(header["tree"], types=named)
        return decoder.like(like, header["tree"])
    except RecursionError as err:  # a header nested deeper than Python's stack
        raise InvalidArgumentError(f"{where}: {reader.path!r} is damaged: its header is nested "
                                   f"too deeply to read") from err
    finally:
        reader.close()

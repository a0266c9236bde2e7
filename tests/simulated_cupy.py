"""A numpy-backed stand-in for CuPy, so the GPU code path runs and is checked on any machine.

axon_fn never imports cupy by name at dispatch: an array whose type lives in a module called
``cupy`` takes the GPU path, which calls each primitive's implementation with the ``cupy`` module.
:func:`installed` puts this simulation in ``sys.modules`` under that name. Its arrays keep
CuPy's rules where they matter for a library:

* no implicit conversion: ``np.asarray(device_array)`` raises ``TypeError`` as CuPy does;
* no mixing: a numpy array (even 0-d) or a list given to a device function raises ``TypeError``;
  numpy and Python scalars are accepted, as CuPy accepts them;
* computations return device arrays, 0-d ones for reductions, never numpy scalars;
* every host transfer is counted in :data:`transfers`: ``"to_device"`` for ``asarray`` of host
  data or a host index array, ``"to_host"`` for ``.get()``, ``asnumpy`` and the synchronising
  reads ``item()``, ``tolist()``, ``int()``, ``float()``, ``bool()`` and ``operator.index``.

It runs no kernels of its own but for ``ElementwiseKernel`` (its body compiled as C, run on the
host), so it checks where values live, which transfers a step makes and what jit's fused kernels
compute, not CUDA numerics, CUDA's compiler or speed: those need a real device
(``tests/test_gpu.py``).
"""

from __future__ import annotations

import collections
import contextlib
import math
import sys
import types

import numpy as np

transfers = collections.Counter()

_HOST_INPUTS = ("asarray", "array", "asanyarray", "ascontiguousarray")


class ndarray:  # noqa: N801 (CuPy's name)
    """A device array: a numpy array that only crosses to the host through counted calls."""

    __slots__ = ("_host",)
    __hash__ = None

    def __init__(self, value):
        self._host = value

    # metadata reads stay on the device in CuPy too
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    strides = property(lambda self: self._host.strides)
    itemsize = property(lambda self: self._host.itemsize)
    nbytes = property(lambda self: self._host.nbytes)
    flags = property(lambda self: self._host.flags)
    T = property(lambda self: ndarray(self._host.T))
    device = property(lambda self: cuda.Device(0))

    def __len__(self):
        return len(self._host)

    def __iter__(self):
        return (ndarray(row) for row in self._host)

    def __repr__(self):
        return f"simulated_cupy.{self._host!r}"

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        out = kwargs.get("out")
        kwargs = {k: _to_host_args(v, name) for k, v in kwargs.items()}
        result = getattr(ufunc, method)(*_to_host_args(inputs, name), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _to_device(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _call(func, func.__name__, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__: numpy must not see the host buffer
            raise AttributeError(name)
        attr = getattr(self._host, name)
        if not callable(attr):
            return _to_device(attr)
        return lambda *args, **kwargs: _call(attr, name, args, kwargs)

    def __getitem__(self, key):
        return _to_device(self._host[_index(key)])

    def __setitem__(self, key, value):
        self._host[_index(key)] = _to_host_args(value, "__setitem__")

    def get(self, stream=None, order="C", out=None):
        transfers["to_host"] += 1
        return np.array(self._host, order=order)

    def _read(self, convert):
        transfers["to_host"] += 1
        return convert(self._host)

    def item(self):
        return self._read(lambda a: a.item())

    def tolist(self):
        return self._read(lambda a: a.tolist())

    def __int__(self):
        return self._read(int)

    def __float__(self):
        return self._read(float)

    def __bool__(self):
        return self._read(bool)

    def __index__(self):
        return self._read(lambda a: a.__index__())


ndarray.__module__ = "cupy"


def _install_operators():
    """Arithmetic goes through numpy's ufuncs, hence through ``__array_ufunc__``."""
    binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
              "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power,
              "matmul": np.matmul, "and": np.bitwise_and, "or": np.bitwise_or,
              "xor": np.bitwise_xor, "lshift": np.left_shift, "rshift": np.right_shift}

    def forward(uf, **out):
        def op(self, other):
            if _defers(other):
                return NotImplemented
            return uf(self, other, **({"out": (self,)} if out else {}))
        return op

    for name, uf in binary.items():
        setattr(ndarray, f"__{name}__", forward(uf))
        setattr(ndarray, f"__r{name}__", lambda self, other, uf=uf: uf(other, self))
        setattr(ndarray, f"__i{name}__", forward(uf, out=True))
    compare = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
               "eq": np.equal, "ne": np.not_equal}
    for name, uf in compare.items():
        setattr(ndarray, f"__{name}__", forward(uf))
    unary = {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}
    for name, uf in unary.items():
        setattr(ndarray, f"__{name}__", lambda self, uf=uf: uf(self))


def _defers(other):
    """CuPy leaves an operator to the other operand when that opts out of ufuncs (NEP 13), as
    axon_fn's traced and staged values do."""
    return getattr(type(other), "__array_ufunc__", False) is None


_install_operators()


def _to_host_args(value, where):
    """Unwrap device arrays inside ``value``; host arrays and lists are refused, as in CuPy."""
    if type(value) is ndarray:
        return value._host
    if isinstance(value, np.ndarray):
        raise TypeError(f"simulated cupy.{where}: Unsupported type {type(value)} "
                        "(a numpy array given to a device function)")
    if isinstance(value, tuple):
        return tuple(_to_host_args(v, where) for v in value)
    if isinstance(value, list):
        return [_to_host_args(v, where) for v in value]
    return value


def _index(key):
    """Index keys: device arrays unwrap; a host index array is copied to the device first."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if type(key) is ndarray:
        return key._host
    if isinstance(key, (np.ndarray, list)):
        transfers["to_device"] += 1
    return key


def _to_device(value):
    """Results become device arrays; numpy scalars become 0-d device arrays (CuPy has none)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return ndarray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_to_device(v) for v in value)
    if isinstance(value, list):
        return [_to_device(v) for v in value]
    return value


def _call(fn, name, args, kwargs):
    return _to_device(fn(*_to_host_args(args, name),
                         **{k: _to_host_args(v, name) for k, v in kwargs.items()}))


def _host_input(fn_name):
    numpy_fn = getattr(np, fn_name)

    def accept(obj, *args, **kwargs):
        if type(obj) is ndarray:
            obj = obj._host
        elif isinstance(obj, (np.ndarray, np.generic, list, tuple, int, float, bool, complex)):
            transfers["to_device"] += 1
        return ndarray(np.asarray(numpy_fn(obj, *args, **kwargs)))

    accept.__name__ = fn_name
    return accept


class _Ufunc:
    """``cupy.add`` and friends: callable, with ``.at``/``.reduce``/``.accumulate``/``.outer``."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__

    def __call__(self, *args, **kwargs):
        return _to_device(self._uf(*_check_device_args(args, self.__name__), **kwargs))

    def __getattr__(self, method):
        if method not in ("at", "reduce", "accumulate", "outer", "reduceat"):
            return getattr(self._uf, method)

        def run(*args, **kwargs):
            out = getattr(self._uf, method)(*_to_host_args(args, f"{self.__name__}.{method}"),
                                            **kwargs)
            return _to_device(out)

        return run


def _check_device_args(args, where):
    for a in args:
        if isinstance(a, (np.ndarray, list)):
            raise TypeError(f"simulated cupy.{where}: Unsupported type {type(a)}")
    return args


def _function(name):
    value = getattr(np, name)
    if isinstance(value, np.ufunc):
        return _Ufunc(value)
    if isinstance(value, type) or not callable(value):
        return value  # dtypes (cupy.float32 is numpy's) and constants
    return lambda *args, **kwargs: _call(value, name, args, kwargs)


def _module_getattr(name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name in _HOST_INPUTS:
        fn = _host_input(name)
    else:
        try:
            fn = _function(name)
        except AttributeError:
            raise AttributeError(f"simulated cupy has no attribute {name!r}") from None
    setattr(cupy, name, fn)
    return fn


def asnumpy(a, stream=None, order="C", out=None):
    if type(a) is ndarray:
        return a.get(order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return cupy if any(type(a) is ndarray for a in args) else np


class _Device:
    def __init__(self, index=0):
        self.id = 0 if index is None else int(index)
        if self.id != 0:
            raise RuntimeError(f"simulated cupy has one device, not cuda:{self.id}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


_C_TYPES = {"float32": "float", "float64": "double", "bool": "unsigned char",
            "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
            "int64": "int64_t"}


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` on the host: its C++ body, compiled as C by the compiler jit's
    native backend uses, runs once per element of the broadcast of its arguments (inputs
    first, then outputs, as in CuPy); compiled on the first call, as CuPy compiles."""

    def __init__(self, in_params, out_params, operation, name="kernel", preamble="",
                 **kwargs):
        self.ins, self.outs = _params(in_params), _params(out_params)
        self.operation, self.name, self.preamble = operation, name, preamble
        self._lib = None

    def _compile(self):
        from axon_fn._compile import toolchain

        pointers = [f"const {_C_TYPES[t]} *p_{n}" for t, n in self.ins] + [
            f"{_C_TYPES[t]} *p_{n}" for t, n in self.outs]
        signature = f"void {self.name}(int64_t size, {', '.join(pointers)})"
        source = "\n".join([
            "#include <stdint.h>", self.preamble, signature, "{",
            "    for (int64_t element = 0; element < size; element++) {",
            *(f"        const {_C_TYPES[t]} {n} = p_{n}[element];" for t, n in self.ins),
            *(f"        {_C_TYPES[t]} {n};" for t, n in self.outs),
            "        {", self.operation, "        }",
            *(f"        p_{n}[element] = {n};" for t, n in self.outs),
            "    }", "}"])
        self._ffi, self._lib = toolchain.build(source, [signature + ";"])[:2]

    def __call__(self, *args):
        if len(args) != len(self.ins) + len(self.outs):
            raise TypeError(f"{self.name}: give every input and output array (the simulation "
                            "allocates none)")
        if self._lib is None:
            self._compile()
        host = [_to_host_args(a, self.name) for a in args]
        for a, (t, n) in zip(host, self.ins + self.outs):
            if np.asarray(a).dtype != np.dtype(t):  # stricter than CuPy, to catch our mistakes
                raise TypeError(f"{self.name}: {n} is {t}, given {np.asarray(a).dtype}")
        shape = np.broadcast_shapes(*(np.shape(a) for a in host))
        arrays = [np.ascontiguousarray(np.broadcast_to(a, shape)) for a in host[:len(self.ins)]]
        results = [np.empty(shape, np.dtype(t)) for t, _ in self.outs]
        getattr(self._lib, self.name)(int(np.prod(shape)), *(
            self._ffi.cast(f"{_C_TYPES[a.dtype.name]} *", self._ffi.from_buffer(a))
            for a in arrays + results))
        for target, result in zip(host[len(self.ins):], results):
            target[...] = result
        return args[len(self.ins):][0] if len(self.outs) == 1 else args[len(self.ins):]


def _compiler_found():
    from axon_fn._compile import toolchain

    try:
        toolchain.compiler()
    except toolchain.Unavailable:
        return False
    return True


def _params(text):
    """``"float32 x, bool y"`` -> ``[("float32", "x"), ("bool", "y")]``."""
    return [tuple(p.split()) for p in text.split(",") if p.strip()]


cupy = types.ModuleType("cupy", "A numpy-backed simulation of CuPy (tests/simulated_cupy.py).")
cupy.__version__ = "simulated"
cupy.ndarray = ndarray
cupy.asnumpy = asnumpy
cupy.get_array_module = get_array_module
if _compiler_found():  # else jit keeps CuPy programs on their replay, as for a CuPy without it
    cupy.ElementwiseKernel = ElementwiseKernel
cupy.__getattr__ = _module_getattr
cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    Stream=types.SimpleNamespace(null=types.SimpleNamespace(synchronize=lambda: None)),
)
cupy.cuda = cuda
cupy.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    as_strided=lambda x, shape=None, strides=None, **kwargs: ndarray(
        np.lib.stride_tricks.as_strided(x._host, shape, strides, **kwargs)),
))

_erf = np.vectorize(math.erf, otypes=[np.float64])
cupyx = types.ModuleType("cupyx")
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
cupyx.scipy.special.erf = lambda x: ndarray(_erf(x._host).astype(
    x.dtype if x.dtype.kind == "f" else np.float64))

_MODULES = {"cupy": cupy, "cupyx": cupyx, "cupyx.scipy": cupyx.scipy,
            "cupyx.scipy.special": cupyx.scipy.special}


@contextlib.contextmanager
def installed():
    """Make ``import cupy`` give this simulation inside the block (a real CuPy is set aside).

    axon_fn caches each primitive's GPU implementation, which binds the module it found; the
    caches are cleared on the way in and out so neither CuPy sees the other's arrays.
    """
    from axon_fn._core import PRIMITIVES

    saved = {name: sys.modules.get(name) for name in _MODULES}

    def clear_caches():
        for prim in PRIMITIVES.values():
            prim._gpu = None

    clear_caches()
    sys.modules.update(_MODULES)
    transfers.clear()
    try:
        yield cupy
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        clear_caches()

"""Files under the readers and writers of :mod:`axon_fn.serialization`: atomic writes that clean
up after an interrupted one, the ``.npz`` and ``.safetensors`` writers, and archive readers that turn any damage into an
:class:`~axon_fn.InvalidArgumentError` naming the path, never into a huge allocation.

A reader trusts nothing in the file: before an array is allocated, the size its ``.npy`` header
declares is checked against what the archive can hold (a stored member's bytes, a compressed
member's bytes times deflate's largest ratio), and every member is read to its end so that its
CRC is checked.

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     atomic_write(os.path.join(d, "a.txt"), lambda f: f.write(b"hi"), "example")
...     sorted(os.listdir(d))
['a.txt']
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import struct
import sys
import threading
import time
import zipfile
import zlib
from typing import IO, Any, Callable

import numpy as np

from ._dtypes import bfloat16
from .errors import AxonTypeError, InvalidArgumentError

HEADER_KEY = "__axon_fn__"

# deflate cannot expand data more than ~1032 times; bzip2 and lzma are allowed more headroom
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1100}
_OTHER_RATIO = 100_000
_SAFETENSORS_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                       "uint64", "float16", "float32", "float64"}
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
           zlib.error, struct.error, NotImplementedError, OverflowError)


def as_path(path: Any, where: str) -> str:
    """``path`` as a str, checked to be a str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)):
        raise AxonTypeError(f"{where}: `path` must be a str or os.PathLike, got "
                            f"{type(path).__name__} {path!r}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path


def damaged(where: str, path: str, what: str,
            fix: str = "restore it from a copy, or write it again") -> InvalidArgumentError:
    """The error for a damaged file: ``where: 'path' is damaged: what; ... (fix)``."""
    return InvalidArgumentError(f"{where}: {path!r} is damaged: {what}; the file cannot be read "
                                f"({fix})")


def check_is_file(path: str, where: str) -> None:
    """A directory where a file is expected is an error naming it (a missing file stays a
    FileNotFoundError)."""
    if os.path.isdir(path):
        raise InvalidArgumentError(f"{where}: {path!r} is a directory, not a file written by "
                                   f"axon_fn; pass the file's path")


# Atomic writes ---------------------------------------------------------------------------------

# ".{target}.{pid}.{12 hex}.tmp"; temporaries of axon_fn 0.1.0 have no pid
_TEMP = re.compile(r"(?:(\d+)\.)?[0-9a-f]{12}\.tmp")
_STALE_AFTER_S = 24 * 3600  # a temporary this old is stale whoever wrote it
_writing: set = set()  # temporaries this process is writing now (other threads' saves)
_writing_lock = threading.Lock()


def _process_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _is_stale(directory: str, name: str, prefix: str) -> bool:
    match = _TEMP.fullmatch(name[len(prefix):])
    if match is None:
        return False
    full = os.path.join(directory, name)
    try:
        age = time.time() - os.lstat(full).st_mtime
    except OSError:
        return False
    if age > _STALE_AFTER_S:
        return True
    if match.group(1) is None:
        return age > 3600
    pid = int(match.group(1))
    if pid == os.getpid():
        with _writing_lock:
            return full not in _writing
    return not _process_alive(pid)


def remove_stale_temporaries(path: str) -> list:
    """Remove the temporaries that interrupted :func:`atomic_write` calls to ``path`` left
    behind (their writer is gone); returns the removed paths."""
    directory, base = os.path.split(os.path.abspath(path))
    prefix = f".{base}."
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for name in names:
        if _is_stale(directory, name, prefix):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
            except OSError:  # another save removed it first, or it is not ours to remove
                pass
    return removed


def atomic_write(path: str, write: Callable[[IO[bytes]], Any], where: str) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync it, rename it onto
    ``path``; on any failure the temporary file is removed and ``path`` is left untouched.
    Temporaries that an interrupted earlier write to ``path`` left behind are removed first."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InvalidArgumentError(f"{where}: {path!r} is a directory; pass a file path")
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}."
                                       f"{secrets.token_hex(6)}.tmp")
        with _writing_lock:  # before it exists: another thread's cleanup must never see it
            _writing.add(temp)
        try:
            fd = os.open(temp, flags, 0o666)  # the umask applies, as for an ordinary file
        except BaseException as err:
            with _writing_lock:
                _writing.discard(temp)
            if isinstance(err, FileExistsError):
                continue
            raise
        break
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    finally:
        with _writing_lock:
            _writing.discard(temp)
    try:  # make the rename itself durable (POSIX); not possible everywhere
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def is_safetensors(path: str) -> bool:
    """Whether ``path`` names a ``.safetensors`` file (else it is an ``.npz`` archive)."""
    return path.lower().endswith(".safetensors")


# Writers -------------------------------------------------------------------------------------


def write_npz(file: IO[bytes], header: str, arrays: dict) -> None:
    """Write the zip archive ``np.savez`` would write (stored, zip64), header first."""
    members = {HEADER_KEY: np.frombuffer(header.encode("utf-8"), dtype=np.uint8)}
    members.update(arrays)
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in members.items():
            if is_bfloat16(array.dtype):  # .npy has no bfloat16: its bits, read back by name
                array = array.view(np.uint16)
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def is_bfloat16(dtype) -> bool:
    """Whether ``dtype`` is ``ml_dtypes.bfloat16`` (by name: without ml_dtypes loaded no
    array can have it, and importing ml_dtypes costs most of a second)."""
    return np.dtype(dtype).name == "bfloat16"


def _safetensors_with_bf16(tensors: dict, metadata: dict) -> bytes:
    """A ``.safetensors`` file written here (the format is a little-endian u64 header size,
    a JSON header of dtypes, shapes and byte offsets padded to 8 bytes, then the data), for
    bfloat16 tensors, which older ``safetensors.numpy`` versions cannot write."""
    codes = {"bool": "BOOL", "bfloat16": "BF16", "complex64": "C64"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, array in tensors.items():
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        code = codes.get(array.dtype.name) or f"{array.dtype.kind.upper()}{array.itemsize * 8}"
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def safetensors_bytes(where: str, path: str, header: str, arrays: dict) -> bytes:
    """The ``.safetensors`` file holding ``arrays``, with ``header`` in its metadata
    (bfloat16 arrays as ``BF16`` tensors)."""
    st_numpy, _ = safetensors_modules(where, path)
    supported = set(_SAFETENSORS_DTYPES) | {"bfloat16"}
    if "C64" in getattr(st_numpy, "_TYPES", {}):
        supported.add("complex64")
    tensors = {}
    for name, array in arrays.items():
        if array.dtype.name not in supported:
            raise AxonTypeError(f"{where}: the array at '{name}' has dtype {array.dtype}, which "
                                f"safetensors cannot store; use a '.npz' path instead")
        # np.ascontiguousarray would turn a 0-d array into shape (1,)
        tensors[name] = array if array.flags.c_contiguous else np.ascontiguousarray(array)
    if any(is_bfloat16(a.dtype) for a in tensors.values()):
        return _safetensors_with_bf16(tensors, {HEADER_KEY: header})
    return st_numpy.save(tensors, metadata={HEADER_KEY: header})


# Readers -------------------------------------------------------------------------------------


def safetensors_modules(where: str, path: str):
    """``(safetensors.numpy, safe_open)``, or an ImportError saying how to get them."""
    try:
        import safetensors.numpy
        from safetensors import safe_open
    except ImportError as err:
        raise ImportError(f"{where}: {path!r} ends with '.safetensors', which needs the "
                          f"safetensors package: pip install safetensors, or use a '.npz' path "
                          f"instead") from err
    return safetensors.numpy, safe_open


class NpzReader:
    """Reads the members of an ``.npz`` archive, checking each against the archive's size."""

    def __init__(self, path: str, where: str):
        self.path, self.where = path, where
        check_is_file(path, where)
        try:
            self.size = os.path.getsize(path)
            self.zip = zipfile.ZipFile(path)
        except (FileNotFoundError, PermissionError):
            raise
        except _DAMAGE as err:
            raise InvalidArgumentError(f"{where}: {path!r} is not an axon_fn file (not an .npz "
                                       f"archive, or a damaged one: {err})") from err
        self.names = set(self.zip.namelist())

    def header(self) -> bytes:
        if HEADER_KEY + ".npy" not in self.names:
            raise InvalidArgumentError(f"{self.where}: {self.path!r} is not an axon_fn file (it "
                                       f"has no '{HEADER_KEY}' entry; was it written by "
                                       f"axon_fn.save or save_tree?)")
        raw = self.get(HEADER_KEY)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise InvalidArgumentError(f"{self.where}: {self.path!r} has a malformed "
                                       f"'{HEADER_KEY}' entry (expected a 1-d uint8 array, got "
                                       f"{raw.dtype} of shape {raw.shape})")
        return raw.tobytes()

    def _declared(self, member, name: str):
        """The dtype, shape and byte count the member's ``.npy`` header declares."""
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if dtype.hasobject:
            raise InvalidArgumentError(f"{self.where}: the entry {name!r} of {self.path!r} holds "
                                       f"Python objects, which cannot be read without pickle")
        return dtype, shape, math.prod(shape) * dtype.itemsize

    def get(self, name: str) -> np.ndarray:
        if name + ".npy" not in self.names:
            raise InvalidArgumentError(f"{self.where}: {self.path!r} lacks the array entry "
                                       f"{name!r} that its header lists; the file is damaged")
        info = self.zip.getinfo(name + ".npy")
        try:
            ratio = _MAX_RATIO.get(info.compress_type, _OTHER_RATIO)
            room = min(info.file_size, info.compress_size * ratio, self.size * ratio)
            with self.zip.open(info) as member:
                dtype, shape, nbytes = self._declared(member, name)
                if nbytes > room - member.tell():
                    raise damaged(self.where, self.path,
                                  f"the entry {name!r} declares a {dtype} array of shape {shape} "
                                  f"({nbytes} bytes) but the archive holds at most "
                                  f"{max(room - member.tell(), 0)} bytes for it")
                member.seek(0)
                array = np.lib.format.read_array(member, allow_pickle=False)
                if member.read(1):  # reading to the end also checks the member's CRC
                    raise ValueError("trailing data after the array")
        except InvalidArgumentError:
            raise
        except _DAMAGE as err:
            raise damaged(self.where, self.path, f"its entry {name!r} cannot be read "
                                                 f"({type(err).__name__}: {err})") from err
        return array

    def close(self) -> None:
        self.zip.close()


class SafetensorsReader:
    """Reads the tensors of a ``.safetensors`` file (the package checks every offset against
    the file's size)."""

    def __init__(self, path: str, where: str):
        self.path, self.where = path, where
        _, safe_open = safetensors_modules(where, path)
        check_is_file(path, where)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{where}: no such file: {path!r}")
        try:
            self.file = safe_open(path, framework="np")
            self.file.__enter__()
            self.names = set(self.file.keys())
        except Exception as err:  # safetensors raises its own error types for a bad header
            raise InvalidArgumentError(f"{where}: {path!r} is not a readable safetensors file, "
                                       f"or a damaged one ({err})") from err

    def _dtype(self, name: str) -> str:
        return self.file.get_slice(name).get_dtype()

    def _bf16(self, name: str) -> np.ndarray:
        """A BF16 tensor read from its bytes (``safetensors.numpy`` has no bfloat16); the
        offsets were checked by ``safe_open``."""
        dtype = bfloat16()
        with open(self.path, "rb") as file:
            (size,) = struct.unpack("<Q", file.read(8))
            entry = json.loads(file.read(size))[name]
            start, stop = entry["data_offsets"]
            file.seek(8 + size + start)
            data = file.read(stop - start)
        return np.frombuffer(data, dtype=dtype).reshape(entry["shape"])

    def header(self) -> bytes:
        try:
            metadata = self.file.metadata() or {}
        except Exception as err:
            raise damaged(self.where, self.path, f"its metadata cannot be read ({err})") from err
        if HEADER_KEY not in metadata:
            raise InvalidArgumentError(f"{self.where}: {self.path!r} is not an axon_fn file (its "
                                       f"safetensors metadata has no '{HEADER_KEY}' entry; was it "
                                       f"written by axon_fn.save or save_tree?)")
        return metadata[HEADER_KEY].encode("utf-8")

    def get(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise InvalidArgumentError(f"{self.where}: {self.path!r} lacks the tensor {name!r} "
                                       f"that its header lists; the file is damaged")
        try:
            array = self._bf16(name) if self._dtype(name) == "BF16" else \
                self.file.get_tensor(name)
        except Exception as err:
            raise damaged(self.where, self.path, f"its tensor {name!r} cannot be read "
                                                 f"({err})") from err
        return np.array(array, copy=True)  # own, writable memory, not a view of the file

    def close(self) -> None:
        self.file.__exit__(None, None, None)


def open_reader(path: Any, where: str):
    """The reader for ``path``: safetensors for a ``.safetensors`` name, else npz."""
    path = as_path(path, where)
    return (SafetensorsReader if is_safetensors(path) else NpzReader)(path, where)

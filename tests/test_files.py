"""Damaged files become axon_fn errors naming the path (never a huge allocation), and
interrupted saves leave no temporary file behind for good."""

import os
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from axon_fn import InvalidArgumentError
from axon_fn.loop import Loop, State, load_checkpoint, save_checkpoint
from axon_fn.serialization import load, load_tree, save, save_tree

PAYLOAD = np.arange(1000, dtype=np.float64)


def _saved(tmp_path, name="c.npz"):
    path = tmp_path / name
    save_tree({"w": PAYLOAD, "step": 3}, path)
    return path


def _rewrite_member(path, name, data):
    """The archive at ``path`` with member ``name`` replaced by the raw bytes ``data``."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for member, raw in members.items():
            zf.writestr(member, raw)


def _npy_header(shape, descr="<f8"):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                                "shape": shape})
    return buf.getvalue()


def test_bad_crc_names_the_path_and_entry(tmp_path):
    path = _saved(tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.find(PAYLOAD[500:502].tobytes())
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidArgumentError, match=r"load_tree: '.*c\.npz' is damaged: its "
                                                   r"entry 'w' .*CRC"):
        load_tree(path)


@pytest.mark.parametrize("shape", [(10**12,), (10**8,), (2**62, 4)])
def test_a_header_declaring_a_huge_array_allocates_nothing(tmp_path, shape):
    path = _saved(tmp_path)
    _rewrite_member(path, "w.npy", _npy_header(shape) + PAYLOAD[:4].tobytes())
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgumentError, match=r"'.*c\.npz' is damaged: the entry 'w' "
                                                       r"declares a float64 array of shape"):
            load_tree(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_an_array_entry_holding_python_objects_is_refused(tmp_path):
    path = _saved(tmp_path)
    _rewrite_member(path, "w.npy", _npy_header((2,), descr="|O") + b"\x80\x04N.")
    with pytest.raises(InvalidArgumentError, match=r"entry 'w' of '.*' holds Python objects"):
        load_tree(path)


def test_truncated_files_and_members(tmp_path):
    path = _saved(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InvalidArgumentError, match=r"load: '.*c\.npz' is not an axon_fn file.*"
                                                   r"damaged"):
        load(path)
    # an intact archive whose member holds fewer bytes than its .npy header declares
    path = _saved(tmp_path, "d.npz")
    _rewrite_member(path, "w.npy", _npy_header((1000,)) + PAYLOAD[:10].tobytes())
    with pytest.raises(InvalidArgumentError, match=r"'.*d\.npz' is damaged: the entry 'w' "
                                                   r"declares .*8000 bytes.* at most 80 bytes"):
        load_tree(path)
    path.write_bytes(b"")
    with pytest.raises(InvalidArgumentError, match=r"'.*d\.npz' is not an axon_fn file"):
        load_tree(path)


def test_a_damaged_header_entry_and_dtype(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as zf:
        header = zf.read("__axon_fn__.npy")
    header = header.replace(b'"<f8"', b'"<q9"')
    _rewrite_member(path, "__axon_fn__.npy", header)
    with pytest.raises(InvalidArgumentError, match=r"damaged header at 'w': unknown dtype"):
        load_tree(path)


def test_a_directory_where_a_file_was_expected(tmp_path):
    (tmp_path / "model.npz").mkdir()
    (tmp_path / "model.safetensors").mkdir()
    for reader in (load, load_tree):
        with pytest.raises(InvalidArgumentError, match=r"'.*model\.npz' is a directory"):
            reader(tmp_path / "model.npz")
    pytest.importorskip("safetensors")
    with pytest.raises(InvalidArgumentError, match=r"'.*model\.safetensors' is a directory"):
        load_tree(tmp_path / "model.safetensors")


def test_a_corrupt_safetensors_file(tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "m.safetensors"
    save_tree({"w": PAYLOAD}, path)
    raw = bytearray(path.read_bytes())
    raw[:8] = (2**40).to_bytes(8, "little")  # a header length far beyond the file
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidArgumentError, match=r"'.*m\.safetensors' is not a readable "
                                                   r"safetensors file"):
        load_tree(path)
    path.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(InvalidArgumentError, match=r"m\.safetensors"):
        load_tree(path)


@pytest.mark.parametrize("content, what", [
    (b"\xff\xfe\x00garbage", "it should hold the file name"),
    (b"", "it should hold the file name"),
    (b"../../elsewhere.npz", "it should hold the file name"),
    (b"x" * 100_000, "it should hold the file name"),
    (b"missing.npz", "it names 'missing.npz', which is not a file"),
    (b"sub", "it names 'sub', which is not a file"),
])
def test_a_damaged_latest_pointer(tmp_path, content, what):
    save_checkpoint(State(step_state={"w": np.ones(2)}, epoch=1), tmp_path / "c.npz")
    (tmp_path / "sub").mkdir()
    (tmp_path / "latest").write_bytes(content)
    with pytest.raises(InvalidArgumentError, match=rf"load_checkpoint: '.*latest' is damaged: "
                                                   rf"{what}"):
        load_checkpoint(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"latest' is damaged"):
        Loop(lambda batch, s: s).from_checkpoint(tmp_path)


def test_a_corrupt_checkpoint_file_names_its_path(tmp_path):
    save_checkpoint(State(step_state={"w": PAYLOAD}, epoch=1), tmp_path / "c.npz")
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    raw[raw.find(PAYLOAD[500:502].tobytes())] ^= 0xFF
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    with pytest.raises(InvalidArgumentError, match=r"'.*c\.npz' is damaged"):
        load_checkpoint(tmp_path)
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"'.*latest' is a directory"):
        load_checkpoint(tmp_path)


# Interrupted saves ----------------------------------------------------------------------------

_INTERRUPTED_SAVE = """
import os, sys
import numpy as np
import axon_fn

def crash(*args):  # the process dies after writing, before the rename
    os._exit(3)

os.replace = crash
axon_fn.save_tree({"w": np.ones(3)}, sys.argv[1])
"""


def _temporaries(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def test_the_next_save_removes_what_an_interrupted_one_left(tmp_path):
    path = tmp_path / "m.npz"
    done = subprocess.run([sys.executable, "-c", _INTERRUPTED_SAVE, str(path)], check=False)
    assert done.returncode == 3
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".m.npz.")
    save_tree({"w": np.zeros(3)}, path)
    assert _temporaries(tmp_path) == []
    np.testing.assert_array_equal(load_tree(path)["w"], np.zeros(3))


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    path = tmp_path / "m.npz"
    alive = tmp_path / f".m.npz.{os.getppid()}.0123456789ab.tmp"  # a live writer's
    own_stale = tmp_path / f".m.npz.{os.getpid()}.0123456789ab.tmp"  # this process, not writing
    other_target = tmp_path / f".n.npz.{os.getpid()}.0123456789ab.tmp"
    unrelated = tmp_path / ".m.npz.notes.tmp"
    for p in (alive, own_stale, other_target, unrelated):
        p.write_bytes(b"partial")
    save(ax_state(), path)
    assert not own_stale.exists()
    assert alive.exists() and other_target.exists() and unrelated.exists()
    old = os.path.getmtime(alive) - 2 * 86400  # a day-old temporary is stale whoever wrote it
    os.utime(alive, (old, old))
    save(ax_state(), path)
    assert not alive.exists()


def ax_state():
    from axon_fn import ModelState

    return ModelState({"d": {"w": np.ones(2, np.float32)}})


def test_concurrent_saves_to_one_path_never_remove_each_others_temporaries(tmp_path):
    import threading

    path = tmp_path / "m.npz"
    errors = []

    def save_many(i):
        try:
            for _ in range(10):
                save_tree({"w": np.full(1000, float(i))}, path)
        except Exception as err:  # a cleanup that removed a live temporary fails its rename
            errors.append(err)

    threads = [threading.Thread(target=save_many, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and _temporaries(tmp_path) == []
    assert load_tree(path)["w"].shape == (1000,)

"""axon_fn.serialization: ModelState and checkpoint round trips (bit-identical arrays, dtypes,
nesting, order), ``like`` restoration and its mismatch errors, atomic writes, no pickle, bad
inputs and the optional safetensors format."""

import collections
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonError, AxonTypeError, InvalidArgumentError, ModelState, ShapeError
from axon_fn.serialization import load, load_tree, save, save_tree

Point = collections.namedtuple("Point", ["x", "y"])


def make_model():
    return ax.input("x", shape=(None, 3)) >> ax.dense(4) >> ax.batch_norm() >> ax.dense(2)


def make_state(model):
    state = ax.init(model, key=0)
    # Non-trivial batch-norm statistics, so "state" holds more than zeros and ones.
    state = state.replace(state={"batch_norm_0": {
        "mean": np.array([0.1, -0.2, 0.3, 0.05], np.float32),
        "var": np.array([1.5, 0.5, 2.0, 0.25], np.float32)}})
    return ax.freeze(state, ["dense_1"])


def flat(tree, prefix=()):
    """[(path, leaf)] in insertion order, descending into dicts, lists and tuples."""
    if isinstance(tree, dict):
        return [x for k, v in tree.items() for x in flat(v, prefix + (k,))]
    if isinstance(tree, (list, tuple)):
        return [x for i, v in enumerate(tree) for x in flat(v, prefix + (i,))]
    return [(prefix, tree)]


def assert_identical(got, expected):
    """Same container types, keys, order, leaf types, dtypes and bits."""
    assert type(got) is type(expected), (type(got), type(expected))
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for k in expected:
            assert_identical(got[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_identical(g, e)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert got.dtype == expected.dtype and np.shape(got) == np.shape(expected)
        assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == expected


# ModelState: save / load ----------------------------------------------------------------------


def test_model_state_round_trip_predicts_identically_and_keeps_frozen(tmp_path):
    model = make_model()
    state = make_state(model)
    assert list(state.frozen) == ["dense_1"]
    path = tmp_path / "model.npz"
    save(state, path)
    loaded = load(path)
    assert type(loaded) is ModelState
    assert_identical(tuple(loaded), tuple(state))
    assert list(loaded.trainable) == ["dense_0", "batch_norm_0"]
    assert list(loaded.frozen) == ["dense_1"] and loaded.state["batch_norm_0"]["var"][2] == 2.0

    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = ax.predict(model, state, x)
    got = ax.predict(model, loaded, x)
    assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    # Frozen parameters stay out of training: the optimizer state covers only trainable ones.
    opt = ax.optim.adam(1e-3).init(loaded.trainable)
    assert "dense_1" not in opt[0].mu

    # The file is an ordinary npz: readable without pickle, with the documented keys.
    with np.load(path, allow_pickle=False) as z:
        assert z.files[0] == "__axon_fn__"
        assert set(z.files) == {"__axon_fn__", "trainable/dense_0/kernel", "trainable/dense_0/bias",
                                "trainable/batch_norm_0/gamma", "trainable/batch_norm_0/beta",
                                "state/batch_norm_0/mean", "state/batch_norm_0/var",
                                "frozen/dense_1/kernel", "frozen/dense_1/bias"}
        np.testing.assert_array_equal(z["frozen/dense_1/kernel"], state.frozen["dense_1"]["kernel"])
        header = json.loads(z["__axon_fn__"].tobytes().decode("utf-8"))
    assert header["format"] == "axon_fn" and header["version"] == 1
    assert header["kind"] == "model_state"
    assert [f for f, _ in header["tree"]["fields"]] == ["trainable", "state", "frozen"]


def test_model_state_namespaces_dtypes_and_empty_parts(tmp_path):
    inp = ax.input("x", shape=(None, 3))
    encoder = ax.namespace("encoder", inp >> ax.dense(4) >> ax.batch_norm())
    model = encoder >> ax.dense(2)
    state = ax.init(model, key=1)
    assert list(state.trainable["encoder"]) == ["dense_0", "batch_norm_0"]  # a nested level
    state = state.replace(trainable={
        **state.trainable,
        "extra": {"f64": np.array([1 / 3, -0.0, np.inf, np.nan]),
                  "f16": np.array([[65504.0, 6e-8]], np.float16),
                  "i32": np.array([-(2**31), 2**31 - 1], np.int32),
                  "scalar": np.array(7, np.uint8),
                  "empty": np.zeros((0, 3), np.float32),
                  "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}})
    path = str(tmp_path / "nested" / "dir" / "ns.npz")  # a str path; parents are created
    save(state, path)
    loaded = load(path)
    assert_identical(tuple(loaded), tuple(state))
    assert loaded.frozen == {} and list(loaded.state["encoder"]) == ["batch_norm_0"]
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(ax.predict(model, loaded.drop("extra"), x),
                                  ax.predict(model, state.drop("extra"), x))

    # Everything frozen: an empty trainable part round-trips too.
    all_frozen = ax.freeze(state)
    frozen_path = pathlib.Path(path).with_name("frozen.npz")
    save(all_frozen, frozen_path)
    loaded = load(frozen_path)
    assert loaded.trainable == {} and list(loaded.frozen) == list(all_frozen.frozen)
    assert_identical(tuple(loaded), tuple(all_frozen))


def test_save_rejects_non_model_state(tmp_path):
    with pytest.raises(AxonTypeError, match=r"save: `state` must be an axon_fn.ModelState.*dict"):
        save({"dense_0": {"kernel": np.ones(2)}}, tmp_path / "m.npz")
    with pytest.raises(AxonTypeError, match=r"save: `state.state` must be a dict.*list"):
        save(ModelState({}, []), tmp_path / "m.npz")
    with pytest.raises(AxonTypeError, match=r"save: `path` must be a str or os.PathLike"):
        save(ModelState(), 3)
    assert not (tmp_path / "m.npz").exists()


def test_load_rejects_files_that_are_not_axon_fn(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(InvalidArgumentError, match=r"load: .*notes.npz.* is not an axon_fn file"):
        load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    with pytest.raises(InvalidArgumentError, match=r"not an axon_fn file .*no '__axon_fn__'"):
        load(plain)
    with pytest.raises(InvalidArgumentError, match=r"load_tree: .*not an axon_fn file"):
        load_tree(plain)
    tree_file = tmp_path / "tree.npz"
    save_tree({"a": 1}, tree_file)
    with pytest.raises(InvalidArgumentError, match=r"load: .* not a ModelState .*load_tree"):
        load(tree_file)
    save_tree({"run": ModelState({"a": {"w": np.ones(1)}})}, tree_file)
    with pytest.raises(InvalidArgumentError, match=r"not a ModelState"):
        load(tree_file)
    save_tree(ModelState({"a": {"w": np.ones(1)}}), tree_file)  # a ModelState root: fine
    np.testing.assert_array_equal(load(tree_file).trainable["a"]["w"], [1.0])
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_load_rejects_a_damaged_file(tmp_path):
    path = tmp_path / "damaged.npz"
    header = json.dumps({"format": "axon_fn", "version": 1, "kind": "tree", "tree": {
        "type": "dict", "items": [["w", {"type": "array", "key": "w", "dtype": "<f4",
                                          "shape": [2]}]]}}).encode()
    np.savez(path, __axon_fn__=np.frombuffer(header, np.uint8))
    with pytest.raises(InvalidArgumentError, match=r"lacks the array entry 'w'.*damaged"):
        load_tree(path)
    np.savez(path, __axon_fn__=np.frombuffer(header, np.uint8), w=np.zeros(3, np.float32))
    with pytest.raises(InvalidArgumentError, match=r"damaged header at 'w': the header says "
                                                   r"float32 \(2,\) but .* float32 \(3,\)"):
        load_tree(path)
    np.savez(path, __axon_fn__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(InvalidArgumentError, match=r"not valid JSON"):
        load(path)


def test_load_rejects_a_newer_format_version(tmp_path):
    path = tmp_path / "future.npz"
    header = json.dumps({"format": "axon_fn", "version": 99, "kind": "tree",
                         "tree": {"type": "none"}}).encode()
    np.savez(path, __axon_fn__=np.frombuffer(header, np.uint8))
    with pytest.raises(InvalidArgumentError, match=r"format version 99"):
        load_tree(path)


# General pytrees: save_tree / load_tree -------------------------------------------------------


def make_checkpoint():
    model = make_model()
    state = make_state(model)
    adam = ax.optim.adam(1e-3)
    opt_state = adam.init(state.trainable)
    # One real update, so mu / nu / count hold non-zero values.
    grads = ax.tree.ones_like(state.trainable)
    _, opt_state = adam.update(grads, opt_state, state.trainable)
    chained = ax.optim.chain(ax.optim.clip_by_global_norm(1.0), ax.optim.adam(1e-2))
    return {
        "model": state,
        "opt": opt_state,
        "chain": chained.init(state.trainable),
        "step": 1,
        "rng": ax.random.key(3),
        "metrics": {"loss": [0.5, 0.25], "epoch": 2, "name": "run", "best": None},
        "misc": (np.float32(0.125), np.int64(-3), np.bool_(True), True, 3.0, -0.0, float("inf"),
                 10**30, "ünïcode", Point(np.array([1, 2], np.int8), [])),
        7: {"int key": np.array(True)},
    }


def test_save_tree_load_tree_with_like_restores_everything(tmp_path):
    ckpt = make_checkpoint()
    assert type(ckpt["opt"][0]).__name__ == "ScaleByAdamState" and int(ckpt["opt"][0].count) == 1
    path = tmp_path / "ckpt.npz"
    save_tree(ckpt, path)
    restored = load_tree(path, like=make_checkpoint())
    assert_identical(restored, ckpt)
    assert type(restored["model"]) is ModelState
    assert type(restored["opt"]) is tuple and type(restored["opt"][0]) is type(ckpt["opt"][0])
    assert type(restored["chain"][1][0]).__name__ == "ScaleByAdamState"
    assert restored["rng"].dtype == np.uint32 and list(restored["rng"]) == [0, 3]
    assert type(restored["misc"][0]) is np.float32 and type(restored["misc"][3]) is bool
    assert type(restored["misc"][9]) is Point

    # The restored optimizer state keeps working: one more step matches the original's.
    adam = ax.optim.adam(1e-3)
    grads = ax.tree.ones_like(ckpt["model"].trainable)
    u1, s1 = adam.update(grads, ckpt["opt"], ckpt["model"].trainable)
    u2, s2 = adam.update(grads, restored["opt"], restored["model"].trainable)
    assert_identical(u2, u1)
    assert_identical(s2, s1)


def test_load_tree_without_like_gives_plain_containers(tmp_path):
    ckpt = make_checkpoint()
    path = tmp_path / "ckpt.npz"
    save_tree(ckpt, path)
    plain = load_tree(path)
    assert list(plain) == ["model", "opt", "chain", "step", "rng", "metrics", "misc", 7]
    assert plain["metrics"] == {"loss": [0.5, 0.25], "epoch": 2, "name": "run", "best": None}
    assert list(plain["model"]) == ["trainable", "state", "frozen"]
    assert_identical(plain["model"]["frozen"], ckpt["model"].frozen)
    assert isinstance(plain["opt"], list) and plain["opt"][1] == {}  # EmptyState -> {}
    assert list(plain["opt"][0]) == ["count", "mu", "nu"]
    assert_identical(plain["opt"][0]["nu"], ckpt["opt"][0].nu)
    assert plain["chain"][0] == {} and list(plain["chain"][1][0]) == ["count", "mu", "nu"]
    assert plain["step"] == 1 and type(plain["step"]) is int
    assert_identical(plain["rng"], ax.random.key(3))
    misc = plain["misc"]
    assert isinstance(misc, list) and type(misc[0]) is np.float32 and misc[0] == 0.125
    assert type(misc[1]) is np.int64 and type(misc[2]) is np.bool_
    assert misc[3:9] == [True, 3.0, -0.0, float("inf"), 10**30, "ünïcode"]
    assert str(misc[5]) == "-0.0"
    assert_identical(misc[9], {"x": np.array([1, 2], np.int8), "y": []})
    assert_identical(plain[7], {"int key": np.array(True)})

    # A ModelState file reads back as a plain tree too, and as a ModelState with `like`.
    model_file = tmp_path / "model.npz"
    save(ckpt["model"], model_file)
    assert list(load_tree(model_file)) == ["trainable", "state", "frozen"]
    assert_identical(tuple(load_tree(model_file, like=ckpt["model"])), tuple(ckpt["model"]))


def test_byte_order_and_odd_dtypes_survive(tmp_path):
    tree = {"be": np.arange(4, dtype=">f4"), "c": np.array([1 + 2j], np.complex128),
            "u64": np.array([2**64 - 1], np.uint64), "b": np.array([[True, False]])}
    save_tree(tree, tmp_path / "t.npz")
    assert_identical(load_tree(tmp_path / "t.npz"), tree)
    assert_identical(load_tree(tmp_path / "t.npz", like=tree), tree)


def test_scalars_and_root_leaves(tmp_path):
    for value in [np.arange(4, dtype=np.uint32), np.float16(1.5), None, "text", float("nan"), {}, []]:
        save_tree(value, tmp_path / "v.npz")
        assert_identical(load_tree(tmp_path / "v.npz"), value)
    save_tree((), tmp_path / "v.npz")
    assert load_tree(tmp_path / "v.npz") == [] and load_tree(tmp_path / "v.npz", like=()) == ()
    # Paths that collide as strings still get their own entries.
    tree = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "__axon_fn__": np.full(1, 2.0)}
    save_tree(tree, tmp_path / "c.npz")
    assert_identical(load_tree(tmp_path / "c.npz"), tree)
    assert_identical(load_tree(tmp_path / "c.npz", like=tree), tree)


def test_like_mismatch_errors_name_the_path(tmp_path):
    ckpt = make_checkpoint()
    path = tmp_path / "ckpt.npz"
    save_tree(ckpt, path)

    bigger = ax.init(ax.input("x", shape=(None, 3)) >> ax.dense(5) >> ax.batch_norm()
                     >> ax.dense(2), key=0)
    like = dict(make_checkpoint(), model=ax.freeze(bigger, ["dense_1"]))
    with pytest.raises(ShapeError, match=r"load_tree: .* at 'model/trainable/dense_0/kernel': "
                                         r"expected a float32 array of shape \(3, 5\).*got a "
                                         r"float32 array of shape \(3, 4\)"):
        load_tree(path, like=like)

    like = make_checkpoint()
    like["rng"] = like["rng"].astype(np.int64)
    with pytest.raises(AxonTypeError, match=r"at 'rng': expected a int64 array of shape \(2,\).*"
                                            r"got a uint32 array"):
        load_tree(path, like=like)

    like = make_checkpoint()
    like["metrics"]["loss"] = [0.5]
    with pytest.raises(ShapeError, match=r"at 'metrics/loss': expected a list of length 1.*"
                                         r"got a list of length 2"):
        load_tree(path, like=like)

    like = make_checkpoint()
    like["opt"] = ax.optim.sgd(0.1, momentum=0.9).init(like["model"].trainable)
    with pytest.raises(ShapeError, match=r"at 'opt/0': expected a TraceState namedtuple.*got a "
                                         r"ScaleByAdamState namedtuple"):
        load_tree(path, like=like)

    like = make_checkpoint()
    del like["step"]
    with pytest.raises(ShapeError, match=r"at the root: expected a dict with keys"):
        load_tree(path, like=like)

    like = make_checkpoint()
    like["step"] = 1.0
    with pytest.raises(AxonTypeError, match=r"at 'step': expected a Python float.*got a Python "
                                            r"int"):
        load_tree(path, like=like)

    # Only a ModelState's layout decides; a structurally different template fails, not loads.
    with pytest.raises(AxonError):
        load_tree(path, like={"model": ckpt["model"]})


# Atomic writes --------------------------------------------------------------------------------


@pytest.mark.parametrize("saver, value", [
    (save, ModelState({"d": {"w": np.arange(6.0)}, "e": {"w": np.zeros(3)}})),
    (save_tree, {"a": np.arange(6.0), "b": [np.zeros(3), np.ones(2)]}),
])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, saver, value):
    path = tmp_path / "ckpt.npz"
    saver(value, path)
    before = path.read_bytes()

    real_write_array = np.lib.format.write_array
    calls = []

    def crash_midway(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 3:  # header and first array written, then the "crash"
            fp.write(b"partial")
            raise OSError("disk on fire")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crash_midway)
    changed = ax.tree.tree_map(lambda x: x + 1, value)
    with pytest.raises(OSError, match="disk on fire"):
        saver(changed, path)
    monkeypatch.undo()
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert_identical(tuple(load(path)) if saver is save else load_tree(path, like=value),
                     tuple(value) if saver is save else value)

    # A successful write replaces the file and also leaves nothing else behind.
    saver(changed, path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert path.read_bytes() != before


def test_a_failed_rename_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "t.npz"
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("no rename")))
    with pytest.raises(OSError, match="no rename"):
        save_tree({"a": np.ones(1)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path / "sub") == [] and not path.exists()
    with pytest.raises(InvalidArgumentError, match=r"save_tree: .* is a directory"):
        save_tree({"a": 1}, tmp_path / "sub")


# No pickle, bad inputs ------------------------------------------------------------------------


def test_files_load_without_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_tree(make_checkpoint(), path)
    with zipfile.ZipFile(path) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    assert all(a.dtype != object for a in arrays.values())
    np.testing.assert_array_equal(arrays["rng"], [0, 3])
    np.testing.assert_array_equal(arrays["opt/0/count"], 1)
    np.testing.assert_array_equal(arrays["model/frozen/dense_1/bias"],
                                  make_checkpoint()["model"].frozen["dense_1"]["bias"])


def test_unsupported_values_raise_naming_the_path(tmp_path):
    path = tmp_path / "bad.npz"
    with pytest.raises(AxonTypeError, match=r"save_tree: the array at 'a/0' has dtype object"):
        save_tree({"a": [np.array([1, "x"], dtype=object)]}, path)
    with pytest.raises(AxonTypeError, match=r"save_tree: the leaf at 'hooks/fn' is a function"):
        save_tree({"hooks": {"fn": lambda x: x}}, path)
    with pytest.raises(AxonTypeError, match=r"the leaf at 'x' is of type set, which "):
        save_tree({"x": {1, 2}}, path)
    with pytest.raises(AxonTypeError, match=r"the array at 'u' has dtype <U1"):
        save_tree({"u": np.array(["a"])}, path)
    with pytest.raises(AxonTypeError, match=r"the dict at 'd' has the key \(1, 2\)"):
        save_tree({"d": {(1, 2): 0}}, path)
    with pytest.raises(AxonTypeError, match=r"the array at 'm' is a masked array"):
        save_tree({"m": np.ma.masked_array([1.0, 2.0], mask=[0, 1])}, path)
    with pytest.raises(AxonTypeError, match=r"save: the leaf at 'trainable/l/w' is of type "
                                            r"axon_fn._core.AbstractArray"):
        save(ModelState({"l": {"w": ax.AbstractArray((2,), "float32")}}), path)
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_like_accepts_abstract_arrays(tmp_path):
    model = make_model()
    state = make_state(model)
    save(state, tmp_path / "m.npz")
    abstract = ax.tree.tree_map(lambda a: ax.AbstractArray(a.shape, a.dtype), state)
    restored = load_tree(tmp_path / "m.npz", like=abstract)
    assert_identical(tuple(restored), tuple(state))


# safetensors ----------------------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    model = make_model()
    state = make_state(model)
    path = tmp_path / "model.safetensors"
    save(state, path)
    loaded = load(path)
    assert_identical(tuple(loaded), tuple(state))
    x = np.ones((3, 3), np.float32)
    np.testing.assert_array_equal(ax.predict(model, loaded, x), ax.predict(model, state, x))
    loaded.trainable["dense_0"]["bias"][0] = 1.0  # writable memory, not a view of the file

    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        assert "trainable/dense_0/kernel" in f.keys()
        assert json.loads(f.metadata()["__axon_fn__"])["kind"] == "model_state"

    big_endian = {"be": np.arange(3, dtype=">i4"), "s": np.float16(2.5)}
    save_tree(big_endian, tmp_path / "be.safetensors")
    assert_identical(load_tree(tmp_path / "be.safetensors"), big_endian)

    ckpt = make_checkpoint()
    save_tree(ckpt, tmp_path / "ckpt.safetensors")
    assert_identical(load_tree(tmp_path / "ckpt.safetensors", like=make_checkpoint()), ckpt)
    with pytest.raises(AxonTypeError, match=r"'c' has dtype complex128, which safetensors"):
        save_tree({"c": np.ones(2, np.complex128)}, tmp_path / "c.safetensors")
    bare = tmp_path / "bare.safetensors"
    from safetensors.numpy import save_file

    save_file({"a": np.ones(2)}, str(bare))
    with pytest.raises(InvalidArgumentError, match=r"is not an axon_fn file"):
        load(bare)


def test_safetensors_zero_d_arrays_keep_their_shape(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    path = tmp_path / "scalars.safetensors"
    tree = {"count": np.array(7, np.int32), "s": np.float32(0.5), "v": np.ones(2, np.float32)}
    save_tree(tree, path)
    with safe_open(str(path), framework="np") as f:
        shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    assert shapes == {"count": (), "s": (), "v": (2,)}
    assert_identical(load_tree(path), tree)


def test_safetensors_missing_package_message(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name.split(".")[0] == "safetensors":
            raise ModuleNotFoundError("No module named 'safetensors'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    with pytest.raises(ImportError, match=r"save: .*pip install safetensors.*'\.npz'"):
        save(ModelState({"a": {"w": np.ones(1)}}), tmp_path / "m.safetensors")
    with pytest.raises(ImportError, match=r"load_tree: .*pip install safetensors"):
        load_tree(tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []


def test_load_tree_restores_listed_namedtuples(tmp_path):
    from axon_fn.optim import adam

    opt_state = adam(1e-3).init({"w": np.ones(2, np.float32)})
    save_tree({"opt": opt_state, "pair": (1, 2)}, tmp_path / "t.npz")
    restored = load_tree(tmp_path / "t.npz", types=[type(opt_state[0])])
    assert type(restored["opt"][0]).__name__ == "ScaleByAdamState"
    assert restored["pair"] == (1, 2) and isinstance(restored["opt"], tuple)
    with pytest.raises(AxonTypeError, match="`types` must list NamedTuple classes"):
        load_tree(tmp_path / "t.npz", types=[dict])

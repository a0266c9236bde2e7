"""Backend dispatch: device_put / to_numpy, backend_info, and never mixing numpy with cupy."""

import numpy as np
import pytest

import axon_fn
from axon_fn import BackendMismatchError, ops
from axon_fn import _native


def test_backend_info_reports_the_native_state():
    info = axon_fn.backend_info()
    assert info["native"] is _native.available()
    assert isinstance(info["native_detail"], str) and info["native_detail"]
    assert info["numpy"] == np.__version__
    assert isinstance(info["blas"], str)
    assert info["gpu_count"] >= 0


def test_device_put_cpu_does_not_copy_numpy_leaves():
    tree = {"w": np.ones((2, 2), np.float32), "b": [np.zeros(2)], "none": None}
    moved = axon_fn.device_put(tree, "cpu")
    assert moved["w"] is tree["w"] and moved["b"][0] is tree["b"][0]
    assert moved["none"] is None


def test_to_numpy_strips_tracers_and_keeps_structure():
    out = axon_fn.to_numpy({"a": (np.float32(1.0), np.arange(3))})
    assert out["a"][0] == 1.0 and out["a"][1].tolist() == [0, 1, 2]


def test_device_put_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        axon_fn.device_put({"w": np.ones(2)}, "tpu")


class FakeCupyArray:
    """Looks like a cupy array to the dispatcher (its type lives in a 'cupy' module)."""

    __module__ = "cupy._core.core"
    shape = (3,)
    dtype = np.dtype("float32")
    ndim = 1


def test_mixing_numpy_and_cupy_is_an_error_not_a_copy():
    with pytest.raises(BackendMismatchError, match="add: argument 0 is a numpy array of shape"):
        ops.add(np.ones(3), FakeCupyArray())


def test_allocator_tuning_is_reported_and_can_be_declined():
    import subprocess
    import sys

    code = "import axon_fn; print(axon_fn.backend_info()['allocator'])"
    tuned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert tuned in ("tuned", "not glibc")
    env = {**__import__("os").environ, "AXON_FN_ALLOCATOR": "default"}
    declined = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env=env).stdout.strip()
    assert declined == "default"

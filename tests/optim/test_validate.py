"""optimizer.update and apply_updates check their trees, naming the path and the argument."""

import os
import tempfile

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, ShapeError, optim

ALIASES = ["sgd", "adam", "adamw", "rmsprop", "lion", "adagrad", "lamb", "radam", "yogi",
           "adafactor", "nadam", "amsgrad", "adamax", "adabelief", "noisy_sgd", "fromage"]


def params():
    return {"w": np.ones(4, np.float32), "b": np.zeros(2, np.float32)}


@pytest.mark.parametrize("name", ALIASES)
def test_a_gradient_of_another_shape_is_refused_not_broadcast(name):
    opt = getattr(optim, name)(0.1)
    p = params()
    grads = {"w": np.ones((4, 4), np.float32), "b": np.ones(2, np.float32)}
    with pytest.raises(ShapeError, match=rf"optim.{name}: `updates` leaf 'w' has shape \(4, 4\) "
                                         rf"but `params` leaf 'w' has shape \(4,\)"):
        opt.update(grads, opt.init(p), p)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "adagrad", "lion", "sgd"])
def test_without_params_the_state_is_compared_with_the_gradients(name):
    opt = getattr(optim, name)(0.1, **({"momentum": 0.9} if name == "sgd" else {}))
    state = opt.init(params())
    grads = {"w": np.ones((4, 4), np.float32), "b": np.ones(2, np.float32)}
    with pytest.raises(ShapeError, match=r"`state` leaf '0/\w+/w' has shape \(4,\), but for "
                                         r"these `updates` it must have shape \(4, 4\)"):
        opt.update(grads, state)


def test_a_misnamed_gradient_names_the_first_differing_path():
    opt = optim.adam(0.1)
    p = params()
    with pytest.raises(ShapeError, match=r"optim.adam: `updates` and `params` differ in "
                                         r"structure at the root: `updates` has a dict with "
                                         r"keys \['b', 'v'\] while `params` has a dict with keys "
                                         r"\['b', 'w'\]"):
        opt.update({"v": np.ones(4, np.float32), "b": np.ones(2, np.float32)}, opt.init(p), p)


def test_another_optimizers_state_is_named_as_such():
    p = params()
    with pytest.raises(InvalidArgumentError, match=r"optim.adam: `state` was made by a "
                                                   r"different optimizer: it holds TraceState, "
                                                   r"EmptyState, while this optimizer's init "
                                                   r"makes ScaleByAdamState, EmptyState"):
        optim.adam(0.1).update(p, optim.sgd(0.1, momentum=0.9).init(p), p)


def test_another_optimizers_state_from_a_checkpoint_is_named_too():
    model = ax.input("x", shape=(None, 2)) >> ax.dense(1)
    batch = (np.ones((4, 2), np.float32), np.ones((4, 1), np.float32))
    with tempfile.TemporaryDirectory() as directory:
        ax.loop.trainer(model, "mean_squared_error", "sgd", learning_rate=0.1).checkpoint(
            directory).run([batch], epochs=1)
        resumed = ax.loop.trainer(model, "mean_squared_error", "adam",
                                  learning_rate=0.1).from_checkpoint(directory)
        assert os.listdir(directory)
        with pytest.raises(InvalidArgumentError, match="made by a different optimizer"):
            resumed.run([batch], epochs=2)


def test_string_gradients_are_an_axon_type_error():
    opt = optim.sgd(0.1)
    with pytest.raises(AxonTypeError, match=r"optim.sgd: `updates` leaf 'w' has dtype <U1"):
        opt.update({"w": np.array(["a", "b"])}, opt.init({"w": np.ones(2)}))


def test_apply_updates_names_the_leaf_and_keeps_the_right_values():
    p = params()
    with pytest.raises(ShapeError, match=r"apply_updates: `updates` leaf 'w' has shape \(4, 4\) "
                                         r"but `params` leaf 'w' has shape \(4,\)"):
        optim.apply_updates(p, {"w": np.ones((4, 4), np.float32), "b": np.ones(2, np.float32)})
    with pytest.raises(ShapeError, match=r"apply_updates: `params` and `updates` differ in "
                                         r"structure at the root"):
        optim.apply_updates(p, {"w": np.ones(4, np.float32)})
    out = optim.apply_updates(p, {"w": np.full(4, 0.5, np.float32), "b": None})
    np.testing.assert_array_equal(out["w"], np.full(4, 1.5, np.float32))
    np.testing.assert_array_equal(out["b"], p["b"])


def test_checks_run_once_when_a_step_is_compiled():
    opt = optim.adam(0.1)
    p = params()

    @ax.jit
    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s

    s = opt.init(p)
    g = {"w": np.ones(4, np.float32), "b": np.ones(2, np.float32)}
    for _ in range(3):
        p, s = step(p, s, g)
    assert step.cache_size() == 1
    # Adam's first steps move each weight by about the learning rate
    np.testing.assert_allclose(p["w"], np.full(4, 1 - 0.3, np.float32), rtol=1e-4)
    with pytest.raises(ShapeError, match="`updates` leaf 'w' has shape \\(4, 4\\)"):
        step(p, s, {"w": np.ones((4, 4), np.float32), "b": np.ones(2, np.float32)})


def test_a_loop_passing_its_state_back_is_still_told_about_a_wrong_gradient():
    opt = optim.adam(0.1)
    p = params()
    s = opt.init(p)
    good = {"w": np.ones(4, np.float32), "b": np.ones(2, np.float32)}
    for _ in range(2):
        u, s = opt.update(good, s, p)  # the second call takes the identity fast path
        p = optim.apply_updates(p, u)
    with pytest.raises(ShapeError, match=r"optim.adam: `updates` and `params` differ in "
                                         r"structure"):
        opt.update({"w": np.ones(4, np.float32)}, s, p)
    u, s = opt.update(good, s, p)
    wide = {"w": np.ones((4, 4), np.float32), "b": np.ones(2, np.float32)}
    with pytest.raises(ShapeError, match=r"leaf 'w' has shape \(4, 4\)"):
        u, s = opt.update(wide, s, p)
        optim.apply_updates(p, u)

"""Bad settings and inputs are refused where they are given, naming the function and argument:
hyperparameters, schedules, counts, ids, step functions, devices, and jit's program bound."""

import math
import sys

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import AxonTypeError, InvalidArgumentError, optim
from axon_fn.loop.core import Loop

NAN = float("nan")


@pytest.mark.parametrize("make, message", [
    (lambda: optim.adam(NAN), r"optim.adam: `learning_rate` must be a finite number >= 0"),
    (lambda: optim.sgd(-0.1), r"optim.sgd: `learning_rate` must be a finite number >= 0"),
    (lambda: optim.adam(0.1, eps=-1e-8), r"`eps` must be a number >= 0, got -1e-08"),
    (lambda: optim.rmsprop(0.1, eps=NAN), r"`eps` must be a number >= 0, got nan"),
    (lambda: optim.adamw(0.1, weight_decay=-0.01), r"optim.adamw: `weight_decay` must be a "
                                                   r"number >= 0"),
    (lambda: optim.lion(0.1, weight_decay=NAN), r"optim.lion: `weight_decay` must be"),
    (lambda: optim.clip_by_global_norm(NAN), r"optim.clip_by_global_norm: `max_norm` must be"),
    (lambda: optim.clip(-1.0), r"optim.clip: `max_delta` must be"),
    (lambda: optim.adam(0.1, b1=NAN), r"`b1` is a decay rate and must lie in \[0, 1\)"),
    (lambda: optim.sgd(0.1, momentum=1.5), r"`momentum` is a decay rate"),
    (lambda: optim.exponential_decay(0.1, 10, NAN), r"optim.exponential_decay: `decay_rate` "
                                                    r"must be a real number >= 0"),
    (lambda: optim.exponential_decay(0.1, 10, -0.5), r"`decay_rate` must be a real number >= 0"),
    (lambda: optim.cosine_decay_schedule(0.1, 10, alpha=NAN), r"`alpha` must be a real number "
                                                              r"\(not NaN\)"),
])
def test_bad_hyperparameters_are_refused_naming_the_argument(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_fromage_keeps_its_internal_negative_decay():
    # fromage shrinks weights by 1/sqrt(1 + lr^2): a negative decay inside, not the user's
    opt = optim.fromage(0.1)
    p = {"w": np.ones(2)}
    updates, _ = opt.update({"w": np.zeros(2)}, opt.init(p), p)
    np.testing.assert_allclose(updates["w"], (1 / math.sqrt(1.01) - 1) * np.ones(2))


def test_join_schedules_needs_one_boundary_between_each_pair():
    one, two = optim.constant_schedule(1.0), optim.constant_schedule(2.0)
    with pytest.raises(InvalidArgumentError, match=r"join_schedules: 2 schedules need 1 "
                                                   r"boundaries .* got 2"):
        optim.join_schedules([one, two], [1, 2])
    with pytest.raises(InvalidArgumentError, match="got 0"):
        optim.join_schedules([one, two], [])
    joined = optim.join_schedules([one, two], [3])
    assert [joined(t) for t in (0, 2, 3, 5)] == [1.0, 1.0, 2.0, 2.0]


def test_strings_given_to_schedules_are_axon_type_errors():
    with pytest.raises(AxonTypeError, match=r"optim.linear_schedule: `init_value` must be a "
                                            r"real number, got '0.1'"):
        optim.linear_schedule("0.1", 0.0, 10)
    schedule = optim.polynomial_schedule(1.0, 0.0, 1, 10)
    with pytest.raises(AxonTypeError, match=r"optim.polynomial_schedule: a schedule's `count`"):
        schedule("3")
    assert schedule(5) == 0.5 and schedule(np.int32(5)) == 0.5


def test_top_k_needs_an_integer_k():
    y_pred = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    with pytest.raises(InvalidArgumentError, match=r"top_k_categorical_accuracy: `k` must be "
                                                   r"an int of at least 1, got 1.5"):
        ax.metrics.top_k_categorical_accuracy(np.array([2, 2]), y_pred, k=1.5, sparse=True)
    assert ax.metrics.top_k_categorical_accuracy(np.array([2, 2]), y_pred, k=2,
                                                 sparse=True) == 0.5


def test_split_needs_an_integer_count():
    x = ax.input("x", shape=(None, 4))
    with pytest.raises(InvalidArgumentError, match=r"split: `sections` must be a positive int "
                                                   r"\(the number of equal parts\).* got 2.0"):
        ax.split(x, 2.0)
    a, b = ax.split(x, 2)
    assert ax.get_output_shape(b) == (1, 2)


def test_a_loop_refuses_a_step_that_is_not_callable_when_built():
    with pytest.raises(AxonTypeError, match=r"Loop: `step_fn` must be a function, got int 3"):
        Loop(3)
    with pytest.raises(AxonTypeError, match=r"Loop: `init_fn` must be a function"):
        Loop(lambda b, s: s, "zero")
    assert Loop(lambda b, s: s + b, lambda _: 0).run([1, 2], epochs=1).step_state == 3


def test_embedding_refuses_negative_ids_as_it_refuses_ids_past_the_table():
    model = ax.input("ids", shape=(None,), dtype="int32") >> ax.embedding(5, 2)
    state = ax.init(model)
    table = state["embedding_0"]["kernel"]
    for bad in (-1, 5):
        with pytest.raises(InvalidArgumentError, match=rf"embedding: id {bad} is out of range "
                                                       rf"for a table of 5 rows"):
            ax.predict(model, state, np.array([0, bad], np.int32))
    np.testing.assert_array_equal(ax.predict(model, state, np.array([4, 0], np.int32)),
                                  table[[4, 0]])
    compiled = ax.jit(ax.build(model)[1])
    np.testing.assert_array_equal(compiled(state, np.array([1, 2], np.int32)), table[[1, 2]])
    with pytest.raises(IndexError):  # a replay reads no values, but still never wraps around
        compiled(state, np.array([-1, 2], np.int32))


def test_cuda_without_cupy_says_to_install_the_gpu_extra(monkeypatch):
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    model = ax.input("x", shape=(None, 2)) >> ax.dense(1)
    with pytest.raises(InvalidArgumentError, match=r"pip install 'axon_fn\[gpu\]'"):
        ax.loop.trainer(model, "mean_squared_error", "sgd", learning_rate=0.1, device="cuda")


def test_jit_keeps_a_bounded_number_of_programs_dropping_the_least_recently_used():
    calls = []

    def double(x):
        calls.append(x.shape)
        return x * 2

    f = ax.jit(double, max_programs=2)
    f(np.ones(1))
    f(np.ones(2))
    f(np.ones(1))           # 1 is now the most recently used
    f(np.ones(3))           # drops 2
    assert f.cache_size() == 2 and len(calls) == 3
    f(np.ones(1))           # still there: a replay
    assert len(calls) == 3
    np.testing.assert_array_equal(f(np.ones(2)), np.full(2, 2.0))  # recorded again
    assert len(calls) == 4 and f.cache_size() == 2
    g = ax.jit(lambda x: x + 1)
    for n in range(1, 40):
        g(np.ones(n))
    assert g.cache_size() == 32  # the default bound
    assert ax.jit(lambda x: x, max_programs=None)(np.ones(1))[0] == 1.0
    with pytest.raises(InvalidArgumentError, match=r"jit: `max_programs` must be a positive"):
        ax.jit(lambda x: x, max_programs=0)

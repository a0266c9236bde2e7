"""Graph utilities and display."""

import dataclasses

import numpy as np
import pytest

import axon_fn as ax
from axon_fn import InvalidArgumentError

rng = np.random.default_rng(2)


def model():
    x = ax.input("x", shape=(None, 4))
    return x >> ax.dense(8) >> ax.relu() >> ax.dense(3, name="head")


def test_inputs_output_shape_op_counts_and_parameters():
    a, b = ax.input("a", shape=(None, 4)), ax.input("b", shape=(None, 2))
    m = ax.concatenate(a >> ax.dense(2), b)
    assert ax.get_inputs(m) == {"a": (None, 4), "b": (None, 2)}
    assert ax.get_output_shape(m, {"a": np.ones((5, 4)), "b": np.ones((5, 2))}) == (5, 4)
    assert ax.get_op_counts(model()) == {"input": 1, "dense": 2, "relu": 1}
    params = ax.get_parameters(model())
    assert list(params) == ["dense_0", "head"]
    assert params["head"]["kernel"].resolve_shape([(None, 8)]) == (8, 3)
    assert ax.get_output_shape(ax.split(ax.input("x", shape=(None, 6)), 3)[2]) == (1, 2)


def test_map_nodes_swaps_an_op_and_keeps_parameters():
    m = model()
    swapped = ax.map_nodes(m, lambda n: dataclasses.replace(n, op="tanh", fn=ax.activations.tanh)
                           if n.op == "relu" else n)
    assert ax.get_op_counts(swapped) == {"input": 1, "dense": 2, "tanh": 1}
    state = ax.init(m, key=0)
    x = rng.standard_normal((2, 4))
    d, h = state["dense_0"], state["head"]
    np.testing.assert_allclose(ax.predict(swapped, state, x),
                               np.tanh(x @ d["kernel"] + d["bias"]) @ h["kernel"] + h["bias"],
                               rtol=1e-5)
    assert ax.get_op_counts(m)["relu"] == 1  # the original is untouched


def test_rewrite_nodes_adds_a_lora_branch():
    def lora(node):
        if node.op != "dense":
            return None

        def rewrite(inputs, out):
            units = out.parameters[1].shape[0]
            down = inputs[0] >> ax.dense(2, use_bias=False)
            up = down >> ax.dense(units, use_bias=False,
                                  kernel_initializer=ax.initializers.zeros())
            return ax.add(out, up)
        return rewrite

    m = model()
    adapted = ax.rewrite_nodes(m, lora)
    assert ax.get_op_counts(adapted) == {"input": 1, "dense": 6, "add": 2, "relu": 1}
    base = ax.init(m, key=0)
    state = ax.init(adapted, key=0, initial=base)
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(ax.predict(adapted, state, x), ax.predict(m, base, x), rtol=1e-6)
    frozen = ax.freeze(state, ["dense_0", "head"])
    assert sorted(frozen.trainable) == ["dense_1", "dense_2", "dense_3", "dense_4"]


def test_pop_node():
    popped, rest = ax.pop_node(model())
    assert popped.name == "head" and rest.op == "relu"
    with pytest.raises(InvalidArgumentError, match="has 2 inputs"):
        ax.pop_node(ax.add(ax.input("a"), ax.input("b")))


def test_summary_table_and_totals():
    lines = []
    ax.summary(model(), np.ones((2, 4)), print_fn=lines.append)
    rows = [line.split() for line in lines]
    assert rows[0] == ["layer", "op", "inputs", "output", "params", "bytes"]
    assert rows[1] == ["x", "input", "-", "(2,", "4)", "0", "0"]
    assert rows[2][:2] == ["dense_0", "dense"] and rows[2][-2:] == ["40", "160"]
    assert rows[-1] == ["total", str(40 + 27), str(4 * 67)]


def test_dot_and_mermaid_exports_list_every_node_and_edge():
    dot = ax.to_dot(model())
    assert dot.count("->") == 3 and 'label="head\\ndense"' in dot
    mermaid = ax.to_mermaid(model())
    assert mermaid.splitlines()[0] == "graph TD" and mermaid.count("-->") == 3
    assert 'n2["relu_0 (relu)"]' in mermaid

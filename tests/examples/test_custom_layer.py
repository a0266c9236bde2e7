"""examples/custom_layer.py: an RBF layer written with axon_fn.layer and axon_fn.param."""

from __future__ import annotations

import numpy as np

import axon_fn

from ._load import load_example


def test_rbf_layer_passes_check_grads_and_learns_the_rings():
    result = load_example("custom_layer").main(quick=True)
    assert result["gradients_ok"] is True
    assert result["test_accuracy"] >= 0.9                        # chance is 1/3
    assert result["final_loss"] < 0.5 * result["first_epoch_loss"]


def test_rbf_layer_matches_its_formula():
    example = load_example("custom_layer")
    x = axon_fn.input("x", shape=(None, 3))
    layer = example.rbf(x, 5, name="rbf")
    state = axon_fn.init(layer, key=0)
    assert {k: v.shape for k, v in state["rbf"].items()} == {"centers": (5, 3), "log_gamma": (5,)}
    points = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    centers, gamma = state["rbf"]["centers"], np.exp(state["rbf"]["log_gamma"])
    expected = np.exp(-gamma * ((points[:, None, :] - centers) ** 2).sum(-1))
    assert np.allclose(axon_fn.predict(layer, state, points), expected, atol=1e-5)

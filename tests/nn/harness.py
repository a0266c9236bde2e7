"""Shared helpers for the graph-constructor tests: run a one-layer model and check its
gradients with respect to every trainable parameter and the input."""

import numpy as np

import axon_fn as ax
from axon_fn.testing import check_grads


def one_layer(layer, shape, dtype=None):
    """``input('x', shape=(None, *shape[1:])) >> layer``."""
    return ax.input("x", shape=(None, *shape[1:]), dtype=dtype) >> layer


def run(model, x, *, mode="inference", key=None, state=None):
    """(output, float64 state) of ``model`` on ``x``."""
    state = ax.init(model, x, key=0).astype(np.float64) if state is None else state
    out = ax.predict(model, state, x, mode=mode, key=key)
    return (out[0] if mode == "train" else out), state


def check_model_grads(model, x, *, mode="inference", key=None, wrt_input=True, **kwargs):
    """check_grads of the model output with respect to its trainable parameters (and ``x``)."""
    state = ax.init(model, x, key=0).astype(np.float64)

    def forward(trainable, inputs):
        out = ax.predict(model, state.replace(trainable=trainable), inputs, mode=mode, key=key)
        return out[0] if mode == "train" else out

    if wrt_input:
        check_grads(forward, state.trainable, x, **kwargs)
    else:
        check_grads(lambda trainable: forward(trainable, x), state.trainable, **kwargs)
    return state

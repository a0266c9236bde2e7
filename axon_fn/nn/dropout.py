"""Graph constructors for the dropout layers: active in train mode (they draw from the key
given to ``predict_fn``), the identity in inference mode.

>>> import numpy as np, axon_fn
>>> model = axon_fn.input("x", shape=(None, 4)) >> dropout(0.5)
>>> axon_fn.predict(model, axon_fn.init(model), np.ones((1, 4)))
array([[1., 1., 1., 1.]])
"""

from __future__ import annotations

from .. import layers
from ..graph.core import make_node
from ..graph.node import Node, constructor
from ..layers.dropout import check_rate

__all__ = ["dropout", "alpha_dropout", "feature_alpha_dropout", "spatial_dropout"]


def _dropout_layer(op, fn, channel_wise):
    def forward(x, *, training, key, **opts):
        if not training:
            return x
        return fn(x, key, training=True, **opts)

    if channel_wise:
        @constructor(op)
        def make(x: Node, rate: float = 0.5, *, channel_index: int = -1,
                 name: str | None = None) -> Node:
            return make_node(op, [x], forward, name=name, training=True, key=True,
                             opts={"rate": check_rate(op, rate), "channel_index": channel_index})
    else:
        @constructor(op)
        def make(x: Node, rate: float = 0.5, *, name: str | None = None) -> Node:
            return make_node(op, [x], forward, name=name, training=True, key=True,
                             opts={"rate": check_rate(op, rate)})

    make.__name__ = make.__qualname__ = op
    what = "whole channels (spatial positions share the mask)" if channel_wise else "elements"
    make.__doc__ = (f"Layer version of :func:`axon_fn.layers.{op}`: drops {what} with "
                    f"probability ``rate`` in train mode.\n\n"
                    f"    >>> import axon_fn\n"
                    f"    >>> (axon_fn.input('x', shape=(None, 4, 3)) >> axon_fn.{op}(0.2)).op\n"
                    f"    '{op}'\n    ")
    return make


dropout = _dropout_layer("dropout", layers.dropout, False)
alpha_dropout = _dropout_layer("alpha_dropout", layers.alpha_dropout, False)
feature_alpha_dropout = _dropout_layer("feature_alpha_dropout", layers.feature_alpha_dropout,
                                       True)
spatial_dropout = _dropout_layer("spatial_dropout", layers.spatial_dropout, True)

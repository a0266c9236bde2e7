"""Functional layers: pure functions of inputs and parameters, as in Elixir Axon's
``Axon.Layers``. Channels-last by default; dropout takes an explicit PRNG key.

>>> import numpy as np
>>> from axon_fn import layers
>>> layers.dense(np.ones((1, 2)), np.ones((2, 3)), np.zeros(3))
array([[2., 2., 2.]])
"""

from .attention import (
    causal_mask, dot_product_attention, multi_head_attention, position_embedding,
    sinusoidal_position_encoding,
)
from .conv import conv, conv_transpose, depthwise_conv, separable_conv2d, separable_conv3d
from .dropout import alpha_dropout, dropout, feature_alpha_dropout, spatial_dropout
from .linear import bias, bilinear, dense, embedding
from .normalization import batch_norm, group_norm, instance_norm, layer_norm, rms_norm
from .pooling import (
    adaptive_avg_pool, adaptive_lp_pool, adaptive_max_pool, avg_pool, global_avg_pool,
    global_lp_pool, global_max_pool, lp_pool, max_pool,
)
from .recurrent import bidirectional, conv_lstm, conv_lstm_cell, gru, gru_cell, lstm, lstm_cell, unroll
from .shape import flatten, resize

__all__ = [
    # linear
    "bias", "bilinear", "dense", "embedding",
    # convolution
    "conv", "conv_transpose", "depthwise_conv", "separable_conv2d", "separable_conv3d",
    # pooling
    "adaptive_avg_pool", "adaptive_lp_pool", "adaptive_max_pool", "avg_pool", "global_avg_pool",
    "global_lp_pool", "global_max_pool", "lp_pool", "max_pool",
    # normalization
    "batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm",
    # dropout
    "alpha_dropout", "dropout", "feature_alpha_dropout", "spatial_dropout",
    # shape
    "flatten", "resize",
    # recurrent
    "bidirectional", "conv_lstm", "conv_lstm_cell", "gru", "gru_cell", "lstm", "lstm_cell",
    "unroll",
    # attention
    "causal_mask", "dot_product_attention", "multi_head_attention", "position_embedding",
    "sinusoidal_position_encoding",
]

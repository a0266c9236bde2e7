"""Graph constructors: each returns a node when given its input(s) (``dense(x, 10)``) and a
layer waiting for its input otherwise (``dense(10)``, used with ``>>``). All are re-exported
flat from :mod:`axon_fn`.

>>> import axon_fn
>>> model = axon_fn.input("x", shape=(None, 4)) >> dense(8) >> relu() >> dense(2)
>>> model.op
'dense'
"""

from .attention import (
    multi_head_attention, sinusoidal_position_encoding, learned_position_embedding,
    transformer_encoder_block, transformer_decoder_block,
)
from .combine import (
    add, subtract, multiply, concatenate, split, cond,
)
from .conv import (
    conv, conv_transpose, depthwise_conv, separable_conv2d, separable_conv3d,
)
from .dropout import (
    dropout, alpha_dropout, feature_alpha_dropout, spatial_dropout,
)
from .linear import (
    dense, bilinear, embedding, bias,
)
from .normalization import (
    batch_norm, layer_norm, group_norm, instance_norm, rms_norm,
)
from .pooling import (
    max_pool, avg_pool, lp_pool, adaptive_avg_pool, adaptive_max_pool, adaptive_lp_pool,
    global_avg_pool, global_max_pool, global_lp_pool,
)
from .recurrent import (
    lstm, gru, conv_lstm,
)
from .shape import (
    flatten, reshape, transpose, pad, resize,
)

# Last: importing the submodule `linear` would otherwise shadow the `linear` activation.
from .activation import (
    activation, celu, elu, exp, gelu, hard_sigmoid, hard_silu, hard_tanh, leaky_relu, linear,
    log_sumexp, log_sigmoid, log_softmax, mish, relu, relu6, sigmoid, silu, selu, softmax,
    softplus, softsign, tanh,
)

__all__ = [
    # activation
    "activation", "celu", "elu", "exp", "gelu", "hard_sigmoid", "hard_silu", "hard_tanh",
    "leaky_relu", "linear", "log_sumexp", "log_sigmoid", "log_softmax", "mish", "relu",
    "relu6", "sigmoid", "silu", "selu", "softmax", "softplus", "softsign", "tanh",
    # attention
    "multi_head_attention", "sinusoidal_position_encoding", "learned_position_embedding",
    "transformer_encoder_block", "transformer_decoder_block",
    # combine
    "add", "subtract", "multiply", "concatenate", "split", "cond",
    # conv
    "conv", "conv_transpose", "depthwise_conv", "separable_conv2d", "separable_conv3d",
    # dropout
    "dropout", "alpha_dropout", "feature_alpha_dropout", "spatial_dropout",
    # linear
    "dense", "bilinear", "embedding", "bias",
    # normalization
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm",
    # pooling
    "max_pool", "avg_pool", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool",
    "adaptive_lp_pool", "global_avg_pool", "global_max_pool", "global_lp_pool",
    # recurrent
    "lstm", "gru", "conv_lstm",
    # shape
    "flatten", "reshape", "transpose", "pad", "resize",
]

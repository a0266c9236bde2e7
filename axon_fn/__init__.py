"""axon_fn: a functional, immutable neural-network library in the style of Elixir's Axon.

>>> import numpy as np
>>> import axon_fn
>>> from axon_fn import ops
>>> axon_fn.grad(lambda w: ops.sum(ops.tanh(w)))(np.zeros(2))
array([1., 1.])
"""

from . import ops  # noqa: I001 - ops first: it installs the array methods of traced values
from . import activations, autodiff, initializers, layers, losses, metrics, optim, random, testing, tree
from ._core import AbstractArray
from ._native import available as native_available
from .autodiff import custom_vjp, grad, stop_gradient, value_and_grad, vjp
from .backend import backend_info, device_put, to_numpy
from .errors import (
    AxonError,
    AxonTypeError,
    BackendMismatchError,
    InvalidArgumentError,
    LayerError,
    NativeUnavailableWarning,
    ShapeError,
    StagingError,
    TracerError,
)
from .eval_shape import eval_shape
from .staging import jit
from . import graph, nn
from .graph import (
    Layer, Node, Parameter, Pipeline, StatefulOutput, block, constant, container, input, layer,
    namespace, nx, optional, or_else, param,
)
from .model_state import ModelState, freeze, unfreeze
from .build import build, get_output_shape, init, predict
from .display import summary, to_dot, to_mermaid
from .serialization import load, load_tree, save, save_tree
from . import loop
from .graph_tools import (
    attach_hook, freeze_statistics, get_inputs, get_op_counts, get_parameters, map_nodes,
    pop_node, rewrite_nodes,
)
from .nn import *  # noqa: F403 - the graph constructors, flat as in Elixir Axon
from . import quantization  # int8 weight-only quantization (registers quantized_dense)
from .quantization import quantize
from . import mixed_precision  # precision policies (graph rewrites) and bfloat16
from .mixed_precision import apply_policy, create_policy
from .nn import __all__ as _constructors
from . import _allocator, _native_ops

_native_ops.install()
_allocator.tune()

__version__ = "0.1.0"

__all__ = [
    # models
    "Layer", "ModelState", "Node", "Parameter", "Pipeline", "StatefulOutput", "attach_hook",
    "block", "build", "constant", "container", "freeze", "freeze_statistics", "get_inputs",
    "get_op_counts",
    "get_output_shape", "get_parameters", "graph", "init", "input", "layer", "map_nodes",
    "namespace", "nn", "nx", "optional", "or_else", "param", "pop_node", "predict",
    "rewrite_nodes", "summary", "to_dot", "to_mermaid", "unfreeze",
    # int8 weight-only quantization
    "quantization", "quantize",
    # mixed precision
    "apply_policy", "create_policy", "mixed_precision",
    # training and saving
    "load", "load_tree", "loop", "save", "save_tree",
    # core
    "AbstractArray",
    "LayerError",
    "AxonError",
    "AxonTypeError",
    "BackendMismatchError",
    "InvalidArgumentError",
    "NativeUnavailableWarning",
    "ShapeError",
    "StagingError",
    "TracerError",
    "activations",
    "autodiff",
    "backend_info",
    "custom_vjp",
    "device_put",
    "eval_shape",
    "grad",
    "initializers",
    "jit",
    "layers",
    "losses",
    "metrics",
    "native_available",
    "ops",
    "optim",
    "random",
    "stop_gradient",
    "testing",
    "to_numpy",
    "tree",
    "value_and_grad",
    "vjp",
]
__all__ += _constructors  # the layer constructors (axon_fn.nn), flat as in Elixir Axon

"""Model graphs: immutable nodes, parameters, layers waiting for input, and pipelines.

>>> import axon_fn
>>> isinstance(axon_fn.input("x") >> axon_fn.relu(), Node)
True
"""

from .core import block, constant, container, input, layer, namespace, nx, optional, or_else, param
from .node import Layer, Node, Parameter, Pipeline, StatefulOutput

__all__ = ["Layer", "Node", "Parameter", "Pipeline", "StatefulOutput", "block", "constant",
           "container", "input", "layer", "namespace", "nx", "optional", "or_else", "param"]

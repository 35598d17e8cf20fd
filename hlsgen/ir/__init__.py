"""The intermediate representation: typed nodes, exact specs, integer weights."""

from .graph import Graph
from .nodes import GRU, LSTM, NODE_TYPES, Activation, Add, Conv, Dense, Input, IRError, Node, Pool, Reshape
from .tensors import StepFunction, TensorSpec, Weight

__all__ = [
    "Graph",
    "Node",
    "NODE_TYPES",
    "IRError",
    "Input",
    "Dense",
    "Conv",
    "Pool",
    "Reshape",
    "Add",
    "Activation",
    "LSTM",
    "GRU",
    "TensorSpec",
    "Weight",
    "StepFunction",
]

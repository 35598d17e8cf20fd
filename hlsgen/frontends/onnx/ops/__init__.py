"""The ONNX operators, one module per family; importing this package registers every handler
(:func:`..registry.handles`) and constant fold (:func:`..registry.folds`)."""

from .. import recurrent  # noqa: F401  (LSTM, GRU)
from . import add, constants, elementwise, layout, linear, pool  # noqa: F401

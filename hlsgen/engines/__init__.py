"""Hardware engines: map IR graphs onto parameterized hardware (PEs, memories, schedule).

This is the one place engines are registered (see :mod:`.registry`); the order is the order
in which they are asked whether they map a graph.
"""

from __future__ import annotations

from .cnn.engine import StreamingCnnEngine
from .lstm.engine import SparseLstmEngine
from .registry import Engine, Option, all_options, engine_for, engines, get, register

register(SparseLstmEngine())
register(StreamingCnnEngine())

__all__ = ["Engine", "Option", "register", "engines", "engine_for", "get", "all_options"]

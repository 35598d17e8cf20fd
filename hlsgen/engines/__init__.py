"""Hardware engines: map IR graphs onto parameterized hardware (PEs, memories, schedule)."""

from __future__ import annotations


def engine_for(graph) -> str | None:
    """The engine a graph maps to: ``sparse_lstm`` for Input -> LSTM -> ..., else None."""
    nodes = graph.nodes
    if len(nodes) >= 2 and nodes[1].op == "LSTM":
        return "sparse_lstm"
    return None

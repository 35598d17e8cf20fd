"""Hardware engines: map IR graphs onto parameterized hardware (PEs, memories, schedule)."""

from __future__ import annotations

CNN_OPS = {"Conv", "Dense", "Pool", "Activation", "Reshape", "Add"}


def engine_for(graph) -> str | None:
    """The engine a graph maps to: ``sparse_lstm`` for Input -> LSTM -> ...; ``streaming_cnn``
    for feed-forward models (Conv / Dense / Pool / Activation / Flatten / Add: CNNs, residual
    CNNs and MLPs);
    else None."""
    nodes = graph.nodes
    if len(nodes) >= 2 and nodes[1].op == "LSTM":
        return "sparse_lstm"
    ops = {n.op for n in nodes[1:]}
    if ops & {"Conv", "Pool", "Dense"} and not ops - CNN_OPS:
        return "streaming_cnn"
    return None

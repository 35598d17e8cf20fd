"""What every frontend does to build its graph: append nodes in order under unique names."""

from __future__ import annotations

import numpy as np

from ..errors import HlsgenError
from ..ir import Graph, IRError, Weight
from ..ir.nodes import reason


class GraphBuilder:
    """Mixin: ``self.file`` names the model in errors; ``add`` appends a node (its spec inferred
    from its inputs), turning an IR error into one line naming the node; ``config_weight``
    quantizes a float weight to the config's precision (``self.cfg``, ``self.approximations``)."""

    file: str
    graph: Graph | None = None

    def add(self, node):
        try:
            if self.graph is None:
                self.graph = Graph([node])
            else:
                self.graph.append(node)
        except (IRError, OverflowError) as e:
            raise HlsgenError(reason(e), file=self.file, layer=node.name, layer_type=node.op) from None
        return node

    def unique(self, base: str) -> str:
        names = {n.name for n in self.graph} if self.graph is not None else set()
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        return name

    def config_weight(self, name: str, layer_type: str, what: str, arr) -> Weight | None:
        """A float weight of a plain layer at the config's precision, noted as an approximation
        when that moves it; None when the config gives no precision (the caller says what to do)."""
        ptype = self.cfg.precision(name, layer_type, "bias" if what == "bias" else "weight")
        if ptype is None:
            return None
        raw = ptype.quantize(arr)
        if not np.array_equal(ptype.to_float(raw), np.asarray(arr, dtype=np.float64)):
            self.approximations.append(f"{name}.{what}: float weights quantized to {ptype}")
        return Weight(raw, ptype, quantizer=str(ptype))

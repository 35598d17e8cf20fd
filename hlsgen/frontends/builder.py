"""What every frontend does to build its graph: append nodes in order under unique names."""

from __future__ import annotations

from ..errors import HlsgenError
from ..ir import Graph, IRError
from ..ir.nodes import reason


class GraphBuilder:
    """Mixin: ``self.file`` names the model in errors; ``add`` appends a node (its spec inferred
    from its inputs), turning an IR error into one line naming the node."""

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

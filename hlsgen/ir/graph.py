"""The IR graph: nodes in topological order, exact specs, lossless JSON."""

from __future__ import annotations

import json
from pathlib import Path

from .nodes import Input, IRError, Node
from .tensors import TensorSpec

FORMAT = "hlsgen-ir"
VERSION = 1


class Graph:
    """A DAG of IR nodes with one input and one output.

    ``meta`` holds provenance (source file, frontend, notes); it does not change
    the meaning of the graph.
    """

    def __init__(self, nodes: list[Node], output: str | None = None, meta: dict | None = None):
        self.nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self.meta = dict(meta or {})
        for n in nodes:
            self.add(n)
        self.output = output or (self.nodes[-1].name if self.nodes else None)
        self.infer()

    def add(self, node: Node) -> Node:
        if node.name in self._by_name:
            raise IRError(f"duplicate node name '{node.name}'")
        for i in node.inputs:
            if i not in self._by_name:
                raise IRError(f"{node.op} '{node.name}': input '{i}' is not defined before it")
        self.nodes.append(node)
        self._by_name[node.name] = node
        return node

    def append(self, node: Node) -> Node:
        """Add a node and infer its spec from its inputs' (a frontend building the graph in order)."""
        self.add(node)
        node.spec = node.infer([self._by_name[i].spec for i in node.inputs])
        return node

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.nodes)

    @property
    def input(self) -> Input:
        ins = [n for n in self.nodes if isinstance(n, Input)]
        if len(ins) != 1:
            raise IRError(f"graph must have exactly one Input, has {len(ins)}")
        return ins[0]

    def infer(self) -> None:
        """(Re)compute every node's exact output spec."""
        for n in self.nodes:
            n.spec = n.infer([self._by_name[i].spec for i in n.inputs])
        if self.output is not None and self.output not in self._by_name:
            raise IRError(f"output '{self.output}' is not a node")

    @property
    def output_spec(self) -> TensorSpec:
        return self._by_name[self.output].spec

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "meta": self.meta,
            "output": self.output,
            "nodes": [n.to_json() for n in self.nodes],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)

    def save(self, path) -> None:
        Path(path).write_text(self.dumps() + "\n")

    @classmethod
    def from_json(cls, d: dict) -> Graph:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise IRError("not an hlsgen IR file")
        if d.get("version") != VERSION:
            raise IRError(f"IR version {d.get('version')} is not supported (expected {VERSION})")
        nodes = [Node.from_json(nd) for nd in d["nodes"]]
        return cls(nodes, d.get("output"), d.get("meta"))

    @classmethod
    def load(cls, path) -> Graph:
        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise IRError(f"not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_json(d)

    # ------------------------------------------------------------ report
    def table(self) -> list[dict]:
        rows = []
        for n in self.nodes:
            s = n.spec
            rows.append(
                {
                    "name": n.name,
                    "op": n.op + (f"/{n.function}" if n.op == "Activation" else ""),
                    "shape": "x".join(str(v) for v in s.shape),
                    "type": str(s.type),
                    "weights": n.describe(),
                }
            )
        return rows

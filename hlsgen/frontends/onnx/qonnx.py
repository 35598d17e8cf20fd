"""QONNX's custom operators written out as standard ONNX operators, so ONNX Runtime can run a
QONNX file as QONNX's own executor does: every node in float32, one after the other.

``Quant``, ``BipolarQuant`` and ``Trunc`` (QONNX's definitions, see :mod:`.numerics`) become
chains of ``Div``, ``Add``, ``Max``, ``Min``, rounding (``Round``, ``Floor``, ``Ceil``, or
``Sign``/``Abs`` for the symmetric modes), ``Sub`` and ``Mul``: each step is one IEEE float32
operation, as in the definition.  ``verify`` compares with this graph run without graph
optimizations (which could fuse float operations and round differently).
"""

from __future__ import annotations

import numpy as np

from ...errors import HlsgenError
from .loader import QONNX_DOMAINS, node_label
from .numerics import qonnx_range


class _Builder:
    def __init__(self, node, consts: dict, file: str):
        self.node, self.consts, self.file = node, consts, file
        self.nodes: list = []
        self.inits: list = []
        self.k = 0

    def name(self) -> str:
        self.k += 1
        return f"{self.node.name}__std{self.k}"

    def const(self, value) -> str:
        from onnx import numpy_helper

        n = self.name()
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), n))
        return n

    def op(self, op_type: str, *inputs: str, out: str | None = None) -> str:
        from onnx import helper

        out = out or self.name()
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=self.name()))
        return out

    def constant_int(self, k: int, what: str) -> int:
        n = self.node
        name = n.input[k] if len(n.input) > k else ""
        if name not in self.consts:
            raise HlsgenError(
                f"{what} must be a constant to run the QONNX operator in ONNX Runtime",
                file=self.file,
                layer=node_label(n),
                layer_type=n.op_type,
            )
        return int(np.asarray(self.consts[name]).reshape(-1)[0])

    def rounded(self, v: str, mode: str) -> str:
        mode = mode.upper()
        if mode in ("ROUND", "HALF_EVEN"):
            return self.op("Round", v)
        if mode in ("FLOOR", "CEIL"):
            return self.op(mode.capitalize(), v)
        sign, mag = self.op("Sign", v), self.op("Abs", v)
        if mode == "DOWN":
            r = self.op("Floor", mag)
        elif mode == "UP":
            r = self.op("Ceil", mag)
        elif mode == "HALF_UP":
            r = self.op("Floor", self.op("Add", mag, self.const(0.5)))
        elif mode == "HALF_DOWN":
            r = self.op("Ceil", self.op("Sub", mag, self.const(0.5)))
        else:
            raise HlsgenError(
                f"rounding_mode '{mode}' is not known",
                file=self.file,
                layer=node_label(self.node),
                layer_type=self.node.op_type,
            )
        return self.op("Mul", sign, r)

    def bipolar(self, v: str) -> str:
        """+1 where v >= 0, -1 elsewhere."""
        return self.op("Where", self.op("Less", v, self.const(0.0)), self.const(-1.0), self.const(1.0))


def _attrs(node) -> dict:
    return {a.name: (a.s.decode() if a.type == a.STRING else a.i) for a in node.attribute}


def _expand(node, consts: dict, file: str) -> _Builder:
    b = _Builder(node, consts, file)
    a = _attrs(node)
    x, out = node.input[0], node.output[0]
    if node.op_type == "BipolarQuant":
        b.op("Mul", b.bipolar(x), node.input[1], out=out)
        return b
    scale, zp = node.input[1], node.input[2]
    y = b.op("Add", b.op("Div", x, scale), zp)
    if node.op_type == "Quant":
        bits = b.constant_int(3, "the bit width")
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        if bits == 1 and signed:
            r = b.bipolar(y)
        else:
            lo, hi = qonnx_range(bits, signed, narrow)
            r = b.rounded(b.op("Min", b.op("Max", y, b.const(lo)), b.const(hi)), a.get("rounding_mode", "ROUND"))
    elif node.op_type == "Trunc":
        shift = b.constant_int(3, "the input bit width") - b.constant_int(4, "the output bit width")
        r = b.rounded(b.op("Div", b.op("Round", y), b.const(2.0**shift)), a.get("rounding_mode", "FLOOR"))
    else:
        raise HlsgenError(
            f"QONNX operator {node.op_type} is not supported",
            file=file,
            layer=node_label(node),
            layer_type=node.op_type,
        )
    b.op("Mul", b.op("Sub", r, zp), scale, out=out)
    return b


def as_standard_onnx(model, file: str = ""):
    """A copy of ``model`` in which every QONNX operator is a chain of standard ONNX operators."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    default = next((o for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    if default is None:
        m.opset_import.append(helper.make_opsetid("", 13))
    elif default.version < 11:  # Round needs opset 11: upgrade first (QONNX nodes pass through)
        from onnx import version_converter

        m = version_converter.convert_version(m, 11)
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    nodes = []
    for n in g.node:
        if n.domain in QONNX_DOMAINS:
            b = _expand(n, consts, file)
            nodes += b.nodes
            g.initializer.extend(b.inits)
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    opsets = [o for o in m.opset_import if o.domain not in QONNX_DOMAINS]
    del m.opset_import[:]
    m.opset_import.extend(opsets)
    return m

"""Add of two tensors (residual connections)."""

from __future__ import annotations

import numpy as np

from ....ir import Add
from ..loader import node_label
from ..registry import F32_EXACT, handles
from ..values import Const, _is_po2
from .elementwise import _per_channel_ok


@handles("Add")
def _add(cv, node):
    a, b = (cv.vals.get(i) for i in node.input[:2])
    if isinstance(a, Const) or isinstance(b, Const):
        if isinstance(a, Const):
            from onnx import helper

            node = helper.make_node("Add", [node.input[1], node.input[0]], list(node.output), name=node.name)
        return _elementwise_const_add(cv, node)
    a, b = cv.batch0(a), cv.batch0(b)
    if a.shape != b.shape or not np.array_equal(a.index, b.index):
        cv.fail(f"Add of tensors with shapes {a.shape} and {b.shape} (or layouts) that differ")
    for v in (a, b):
        if v.kind == "chain" and any(
            n.op_type == "DequantizeLinear" and not _is_po2(cv.const(n.input[1]).value) for n in v.chain
        ):
            cv.fail(
                f"Add of a tensor with a float scale (from '{v.origin}'): ONNX Runtime adds rounded float32 "
                "values, which hlsgen reproduces for power-of-two scales only"
            )
    xa, xb = cv.settle(a, exact=True), cv.settle(b, exact=True)
    if xa.scale != 1.0 or xb.scale != 1.0:
        cv.fail("Add of tensors with float scales is not exact in float32")
    out = cv.add(Add(cv.unique(node_label(node)), [xa.node, xb.node]))
    s = cv.spec(out.name)
    if max(abs(s.lo), abs(s.hi)) >= F32_EXACT:
        cv.fail("float32 arithmetic of this Add is not exact (the sum needs more than 24 bits)")
    return xa.derive(node=out.name, origin=node_label(node))


def _elementwise_const_add(cv, node):
    v = cv.act(node.input[0])
    c = cv.const(node.input[1])
    if not _per_channel_ok(c, v):
        cv.fail(f"constant '{node.input[1]}' of shape {c.value.shape} is not per-tensor or per-channel")
    return cv.chain_of(v, node)

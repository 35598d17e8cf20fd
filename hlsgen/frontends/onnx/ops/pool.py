"""MaxPool, AveragePool and their global forms."""

from __future__ import annotations

import numpy as np

from ....ir import Pool
from ..loader import node_label
from ..registry import F32_EXACT, handles
from ..values import _is_po2, canonical_index


@handles("MaxPool", "GlobalMaxPool", "AveragePool", "GlobalAveragePool")
def _pool(cv, node):
    v = cv.batch0(cv.act(node.input[0]))
    if len(node.output) > 1 and node.output[1]:
        cv.fail("MaxPool's Indices output is not supported")
    a = cv.attrs(node)
    if not np.array_equal(v.index, canonical_index(v.shape)) or len(v.shape) not in (2, 3):
        cv.fail("pooling needs a channels-first 1-D or 2-D tensor")
    is_max = "Max" in node.op_type
    glob = node.op_type.startswith("Global")
    if not is_max and v.kind == "chain":
        for n in v.chain:
            if n.op_type == "DequantizeLinear" and not _is_po2(cv.const(n.input[1]).value):
                cv.fail(
                    "average of a tensor with a float scale: ONNX Runtime sums dequantized float32 values "
                    "whose rounding depends on every term; hlsgen reproduces it for power-of-two scales only"
                )
    if v.kind == "chain" and is_max and all(_monotone(cv, n) for n in v.chain):
        src = v  # max commutes with non-decreasing element-wise functions
    else:
        src = cv.settle(v, exact=not is_max)
    if glob:
        p = Pool(
            cv.unique(node_label(node)),
            [src.node if src.kind != "chain" else src.base.node],
            mode="max" if is_max else "avg",
            global_=True,
        )
    else:
        k = tuple(a["kernel_shape"])
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1])):
            cv.fail("pooling with padding, ceil_mode or dilation is not supported")
        auto = a.get("auto_pad", b"NOTSET")
        if (auto.decode() if isinstance(auto, bytes) else auto) not in ("NOTSET", "VALID"):
            cv.fail("pooling with auto_pad SAME is not supported")
        strides = tuple(a.get("strides", [1] * len(k)))
        p = Pool(
            cv.unique(node_label(node)),
            [src.node if src.kind != "chain" else src.base.node],
            mode="max" if is_max else "avg",
            pool_size=k,
            strides=strides,
        )
    out = cv.add(p)
    sp = cv.spec(out.name)
    oshape = (v.shape[0],) if glob else (v.shape[0],) + tuple(sp.shape[:-1])
    if glob:
        oshape = oshape + (1,) * (len(v.shape) - 1)
    idx = canonical_index(oshape).reshape(sp.shape) if glob else canonical_index(oshape)
    if not is_max:
        s = cv.spec(out.name)
        if max(abs(s.lo), abs(s.hi)) >= F32_EXACT:
            cv.fail("float32 arithmetic of this average is not exact (sum needs more than 24 bits)")
    if src.kind == "chain":
        base = src.base.derive(node=out.name, shape=oshape, index=idx)
        return src.derive(base=base, shape=oshape, index=idx, origin=node_label(node))
    return src.derive(node=out.name, shape=oshape, index=idx, origin=node_label(node))


def _monotone(cv, n) -> bool:
    """Element-wise node that is non-decreasing in its input (max-pool commutes with it)."""
    if n.op_type in ("Relu", "Clip", "Sigmoid", "Tanh", "Cast"):
        return True
    if n.op_type in ("QuantizeLinear", "DequantizeLinear", "Quant", "Trunc", "BipolarQuant"):
        return bool(np.all(np.asarray(cv.vals[n.input[1]].value) > 0))  # a positive scale
    return False

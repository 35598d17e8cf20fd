"""Operators evaluated on constants (weights, scales): DequantizeLinear, element-wise ops, layout."""

from __future__ import annotations

import numpy as np

from ..numerics import FLOAT, NodeRunner
from ..registry import folds, handles
from ..values import Const


@folds("DequantizeLinear")
def _fold_dq(cv, node):
    if cv.attrs(node).get("block_size", 0):
        cv.fail("blocked quantization (block_size) is not supported")
    q = cv.vals[node.input[0]]
    consts = {i: cv.vals[i].value for i in node.input[1:] if i}
    r = NodeRunner(node, consts, cv.types, cv.opset)
    axis = cv.attrs(node).get("axis", 1)
    val = r(np.asarray(q.value))
    s = consts[node.input[1]]
    zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros_like(s, dtype=np.int64)
    return Const(
        val,
        FLOAT,
        dq=(
            np.asarray(q.value).astype(np.int64),
            np.asarray(s, np.float32),
            np.asarray(zp).astype(np.int64),
            axis,
            q.elem,
        ),
    )


@folds(
    "Quant",
    "BipolarQuant",
    "Trunc",
    "QuantizeLinear",
    "Cast",
    "Relu",
    "Clip",
    "Mul",
    "Div",
    "Sub",
    "Add",
    "Sigmoid",
    "Tanh",
    "Gather",
    "Expand",
    "ConstantOfShape",
)
def _fold_eval(cv, node):
    x = cv.vals[node.input[0]]
    if not isinstance(x, Const):
        cv.fail("the data input of a constant expression must be a constant")
    consts = {i: cv.vals[i].value for i in node.input[1:] if i}
    r = NodeRunner(node, consts, cv.types, cv.opset)
    r.in_elem = x.elem if x.elem in (21, 22) else None
    y = r(np.asarray(x.value))
    dq = _quant_integers(cv, node, y) if node.op_type == "Quant" else None
    return Const(y, cv.out_elem(node, x.elem), dq=dq)


def _quant_integers(cv, node, y):
    """The integers q - zp of a QONNX Quant'd constant (weights), with its scale per tensor or
    per one axis, in the form of a DequantizeLinear'd constant (elem FLOAT marks the source)."""
    s = np.asarray(cv.vals[node.input[1]].value, dtype=np.float32)
    zp = np.asarray(cv.vals[node.input[2]].value, dtype=np.float64)
    if np.any(zp != np.round(zp)) or np.any(s <= 0):
        return None
    shape = (1,) * (y.ndim - s.ndim) + s.shape
    axes = [k for k, d in enumerate(shape) if d > 1]
    if len(axes) > 1:
        return None
    raw = np.rint(y.astype(np.float64) / s.reshape(shape).astype(np.float64)).astype(np.int64)
    axis = axes[0] if axes else 0
    return raw, s.reshape(-1), np.zeros(1, np.int64), axis, FLOAT


@folds("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def _fold_layout(cv, node):
    x = cv.vals[node.input[0]]
    a = cv.attrs(node)
    v = np.asarray(x.value)
    op = node.op_type
    if op == "Transpose":
        v = np.transpose(v, a.get("perm"))
    elif op == "Reshape":
        shape = [int(s) for s in cv.const(node.input[1]).value]
        shape = [v.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        v = v.reshape(shape)
    elif op == "Flatten":
        ax = a.get("axis", 1)
        v = v.reshape(int(np.prod(v.shape[:ax])), -1)
    elif op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes") or ([int(s) for s in cv.const(node.input[1]).value] if len(node.input) > 1 else None)
        v = np.squeeze(v, tuple(axes) if axes else None) if op == "Squeeze" else np.expand_dims(v, tuple(axes))
    dq = None
    if x.dq is not None and x.dq[1].size == 1:  # per-tensor: the integers follow the values
        q = x.dq[0]
        dq = (np.transpose(q, a.get("perm")) if op == "Transpose" else q.reshape(v.shape), *x.dq[1:])
    return Const(v, x.elem, dq=dq)


@folds("Concat")
def _fold_concat(cv, node):
    """Weights assembled from parts (Brevitas's QuantLSTM exports its gate matrices this way)."""
    parts = [cv.vals[i] for i in node.input]
    axis = cv.attrs(node).get("axis", 0)
    v = np.concatenate([np.asarray(p.value) for p in parts], axis=axis)
    dq = None
    d0 = parts[0].dq
    same = all(
        p.dq is not None
        and p.dq[1].size == 1
        and np.array_equal(p.dq[1], d0[1])
        and np.array_equal(p.dq[2], d0[2])
        and p.dq[4] == d0[4]
        for p in parts
    )
    if same:  # one per-tensor scale: the integers concatenate too
        dq = (np.concatenate([p.dq[0] for p in parts], axis=axis), *d0[1:])
    return Const(v, parts[0].elem, dq=dq)


@handles("Shape")
def _shape(cv, node):
    """The shape of an activation is known (fixed shapes): a constant, as exporters use it to
    build zero initial states (Shape -> Gather -> Concat -> Expand)."""
    v = cv.act(node.input[0])
    if not cv.batch_size:
        cv.fail("Shape of a tensor with a dynamic batch; export with a fixed batch")
    full = list(v.shape)
    full.insert(v.batch, cv.batch_size)
    a = cv.attrs(node)
    start, end = a.get("start", 0), a.get("end", len(full))
    return Const(np.asarray(full[start:end] if end else full[start:], dtype=np.int64), 7)


@handles("Gather", "Expand", "ConstantOfShape")
def _constants_only(cv, node):
    cv.fail(f"{node.op_type} is supported on constants (shapes, weights) only, not on activations")

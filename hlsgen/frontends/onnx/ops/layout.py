"""Layout operators: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity, Dropout."""

from __future__ import annotations

import math

import numpy as np

from ....ir import Reshape
from ..loader import node_label
from ..registry import handles
from ..values import _ir_shape


@handles("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def _layout(cv, node):
    v = cv.act(node.input[0])
    a = cv.attrs(node)
    op = node.op_type
    if cv.per_channel(v) and op not in ("Identity", "Dropout"):
        v = cv.table(v)  # per-channel constants refer to the layout before the change
    if op in ("Identity", "Dropout"):
        if len(node.output) > 1 and node.output[1]:
            cv.fail("Dropout's mask output is not supported")
        return v
    b = v.batch
    rank = len(v.shape) + 1

    def nb(ax):  # full-tensor axis -> axis of v.shape
        return ax if ax < b else ax - 1

    if op == "Transpose":
        perm = list(a.get("perm", range(rank)[::-1]))
        nbatch = perm.index(b)
        p = [nb(q) for q in perm if q != b]
        new = tuple(v.shape[q] for q in p)
        # the ONNX flat index (batch left out) of every element after the transpose
        old = np.arange(math.prod(v.shape)).reshape(v.shape)
        moved = np.transpose(old, p).reshape(-1)  # new flat position -> old flat index
        inv = np.empty_like(moved)
        inv[moved] = np.arange(moved.size)
        out = v.derive(shape=new, index=inv[v.index], origin=node_label(node), batch=nbatch)
        if v.kind == "chain":
            out.base = v.base.derive(shape=new, index=inv[v.base.index], batch=nbatch)
        return out
    if op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(q) for q in cv.const(node.input[1]).value]
        full = list(v.shape)
        full.insert(b, 1)
        if op == "Squeeze":
            axes = sorted(q % rank for q in (axes if axes else [i for i, d in enumerate(full) if d == 1 and i != b]))
            if b in axes or any(full[q] != 1 for q in axes):
                cv.fail(
                    "Squeeze of the batch dimension (a batch-1 export that drops it, as Brevitas's QuantLSTM "
                    "export does) or of an axis longer than 1 is not supported"
                )
            new = tuple(d for i, d in enumerate(v.shape) if nb_keep(i, b, axes))
            nbatch = b - sum(q < b for q in axes)
        else:
            out_rank = rank + len(axes)
            axes = sorted(q % out_rank for q in axes)
            rest = iter(range(rank))
            nfull = [None if q in axes else next(rest) for q in range(out_rank)]
            nbatch = nfull.index(b)
            new = tuple(1 if q is None else v.shape[nb(q)] for q in nfull if q != b)
        # size-1 axes do not change flat indices: only the shape and the batch position move
        out = v.derive(shape=new, origin=node_label(node), batch=nbatch)
        if v.kind == "chain":
            out.base = v.base.derive(shape=new, batch=nbatch)
        return out
    v = cv.batch0(v)
    full = (1,) + v.shape
    if op == "Flatten":
        ax = a.get("axis", 1)
        if ax == 0 and cv.batch_size == 1:
            ax = 1  # keras2onnx's Flatten(axis=0) on a batch fixed at 1: the same tensor
        if ax != 1:
            cv.fail(
                f"Flatten with axis={ax} is not supported (axis 1 keeps the batch; axis 0 only with a batch fixed at 1)"
            )
        new = (math.prod(v.shape),)
    else:  # Reshape
        shape = [int(q) for q in cv.const(node.input[1], "shape").value]
        shape = [full[i] if q == 0 else q for i, q in enumerate(shape)]
        if shape.count(-1) == 1:
            known = math.prod(q for q in shape if q != -1)
            shape[shape.index(-1)] = math.prod(full) // max(known, 1)
        if not shape or shape[0] != 1 or math.prod(shape) != math.prod(full):
            cv.fail(f"Reshape to {shape} changes the batch dimension")
        new = tuple(shape[1:])
    if not new:
        cv.fail("a tensor without dimensions besides the batch is not supported")
    if v.kind in ("acc", "float_input"):
        cv.settle(v)
    # the IR holds the same elements in its own order: reshape that order and keep, for every
    # element, its ONNX flat index (an ONNX reshape keeps flat indices)
    ir_shape = (math.prod(new),) if len(new) == 1 else _ir_shape(new)
    carrier = v.base if v.kind == "chain" else v
    node_name = carrier.node
    if tuple(cv.spec(node_name).shape) != ir_shape:
        node_name = cv.add(Reshape(cv.unique(node_label(node)), [node_name], shape=ir_shape)).name
    idx = v.index.reshape(ir_shape)
    if v.kind == "chain":
        base = v.base.derive(node=node_name, shape=new, index=v.base.index.reshape(ir_shape), batch=0)
        return v.derive(shape=new, index=idx, base=base, origin=node_label(node))
    return v.derive(node=node_name, shape=new, index=idx, origin=node_label(node))


def nb_keep(i, b, axes) -> bool:
    """Axis i of a shape without the batch (at b) survives a Squeeze of full-tensor axes."""
    full_axis = i if i < b else i + 1
    return full_axis not in axes


@handles("Concat")
def _concat(cv, node):
    cv.fail("Concat of activations is not supported (hlsgen streams one tensor; Concat of constants is folded)")

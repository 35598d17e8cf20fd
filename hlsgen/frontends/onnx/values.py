"""How the ONNX converter carries tensors: constants (:class:`Const`) and activations
(:class:`Val`: which IR node holds an ONNX tensor, in which layout and number format)."""

from __future__ import annotations

import math

import numpy as np

from .numerics import FLOAT


def _is_po2(v) -> bool:
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size == 0 or np.any(v <= 0) or not np.all(np.isfinite(v)):
        return False
    m, _ = np.frexp(v)
    return bool(np.all(m == 0.5)) and bool(np.all(v == v[0]))


def canonical_index(shape: tuple) -> np.ndarray:
    """IR-shaped array of ONNX flat indices for a channels-first tensor (batch removed)."""
    a = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    return np.moveaxis(a, 0, -1) if len(shape) > 1 else a


class Const:
    """A constant tensor; ``dq`` = (q, scale, zero_point, axis, elem) when it is DequantizeLinear of integers."""

    def __init__(self, value, elem=FLOAT, dq=None):
        self.value = np.asarray(value)
        self.elem = elem
        self.dq = dq


class Val:
    """How the IR carries one ONNX activation tensor (see the module docstring)."""

    def __init__(self, kind, node, shape, index, origin, **kw):
        self.kind = kind
        self.node = node  # IR node name
        self.shape = tuple(int(s) for s in shape)  # ONNX shape without batch
        self.index = index  # IR-shaped: ONNX flat index of every IR element
        self.origin = origin  # ONNX node that produced it (for messages)
        self.elem = kw.get("elem", FLOAT)
        self.unit = kw.get("unit", 1.0)  # int: IR value = (q - zp) * unit
        self.zp = kw.get("zp", 0)
        self.scale = kw.get("scale", 1.0)  # exact: ONNX value = IR value * scale
        self.base = kw.get("base")  # chain: the Val the chain starts from
        self.chain = list(kw.get("chain", []))  # chain: ONNX NodeProtos
        self.kernel = kw.get("kernel", "")  # acc: ONNX Runtime kernel
        self.facts = kw.get("facts")  # acc: (s_x, s_w per channel) for the Q that closes it
        self.ops = list(kw.get("ops", []))  # acc of float-scale QONNX: element-wise ops pending (exact.py)
        self.batch = kw.get("batch", 0)  # axis of the batch in the ONNX tensor (shape leaves it out)

    def derive(self, **kw):
        d = dict(self.__dict__)
        d.update(kw)
        kind, node, shape, index, origin = (d.pop(k) for k in ("kind", "node", "shape", "index", "origin"))
        return Val(kind, node, shape, index, origin, **d)


def _to_array(init):
    from onnx import numpy_helper

    if init.data_type in (21, 22):  # int4/uint4: numpy_helper unpacks them into int8/uint8
        return numpy_helper.to_array(init).astype(np.int64)
    return numpy_helper.to_array(init)


def _ir_shape(shape):
    shape = tuple(shape)
    return shape[1:] + shape[:1] if len(shape) > 1 else shape

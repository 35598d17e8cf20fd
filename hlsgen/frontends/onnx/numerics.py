"""The arithmetic ONNX Runtime performs, evaluated so that tables can be read off it.

* :class:`NodeRunner` runs one element-wise ONNX node (QuantizeLinear, Sigmoid,
  BatchNormalization, ...) in ONNX Runtime itself on chosen inputs, so an exact table
  of a chain of such nodes is whatever ONNX Runtime computes (DESIGN.md: tables are
  built the way the source framework evaluates the function).
* QONNX's ``Quant``, ``BipolarQuant`` and ``Trunc`` are not ONNX Runtime operators;
  they are evaluated here as the QONNX specification defines them, in the input's
  float32.
* :func:`requant` is the requantization of ONNX Runtime's integer kernels (QLinearConv,
  QLinearMatMul, QGemm): ``rne(clamp(float32(acc) * M)) + zp`` with the multiplier
  ``M = float32(float32(s_x * s_w) / s_y)``.  ``tests/test_onnx_frontend.py`` checks
  it against ONNX Runtime over whole accumulator ranges.
"""

from __future__ import annotations

import numpy as np

ONNX_INT_TYPES = {
    # elem_type: (numpy dtype, signed, bits)
    2: (np.uint8, False, 8),
    3: (np.int8, True, 8),
    4: (np.uint16, False, 16),
    5: (np.int16, True, 16),
    6: (np.int32, True, 32),
    21: (np.uint8, False, 4),  # UINT4 (values held in uint8 by numpy)
    22: (np.int8, True, 4),  # INT4
}
FLOAT = 1


def int_range(elem_type: int, narrow: bool = False) -> tuple[int, int]:
    _, signed, bits = ONNX_INT_TYPES[elem_type]
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def multiplier(sx, sw, sy) -> np.ndarray:
    """float32 multiplier of ONNX Runtime's integer kernels, per output channel."""
    f = np.float32
    return (f(sx) * np.asarray(sw, dtype=np.float32)).astype(np.float32) / f(sy)


def requant(acc: np.ndarray, mult: np.ndarray, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """Integer accumulators -> quantized integers, as ONNX Runtime's MLAS requantizes."""
    v = acc.astype(np.float32) * mult.astype(np.float32)
    v = np.minimum(np.maximum(v, np.float32(qmin - zp)), np.float32(qmax - zp))
    return np.rint(v).astype(np.int64) + zp


# ------------------------------------------------------------------ QONNX custom ops
def qonnx_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """The integers a QONNX ``Quant`` of ``bits`` bits clips to."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def _rounding(mode: str):
    mode = mode.upper()
    table = {
        "ROUND": np.round,
        "HALF_EVEN": np.round,
        "CEIL": np.ceil,
        "FLOOR": np.floor,
        "DOWN": np.fix,
        "UP": lambda x: np.sign(x) * np.ceil(np.abs(x)),
        "HALF_UP": lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5),
        "HALF_DOWN": lambda x: np.sign(x) * np.ceil(np.abs(x) - 0.5),
    }
    if mode not in table:
        raise ValueError(f"rounding_mode '{mode}' is not known")
    return table[mode]


def qonnx_quant(x, scale, zeropt, bitwidth, signed=1, narrow=0, rounding_mode="ROUND"):
    """QONNX ``Quant``: scale * (round(clip(x / scale + zeropt)) - zeropt)."""
    bw = int(np.asarray(bitwidth).reshape(-1)[0])
    y = x / scale + zeropt
    if bw == 1 and signed:
        y = np.where(y >= 0, np.ones_like(y), -np.ones_like(y))
    else:
        lo, hi = qonnx_range(bw, bool(signed), bool(narrow))
        y = np.where(y > hi, np.asarray(hi, dtype=y.dtype), y)
        y = np.where(y < lo, np.asarray(lo, dtype=y.dtype), y)
        y = _rounding(rounding_mode)(y)
    return ((y - zeropt) * scale).astype(x.dtype)


def qonnx_bipolar(x, scale):
    """QONNX ``BipolarQuant``: +scale where x >= 0, -scale elsewhere."""
    return (np.where(x >= 0, 1.0, -1.0) * scale).astype(x.dtype)


def qonnx_trunc(x, scale, zeropt, in_bits, out_bits, rounding_mode="FLOOR"):
    """QONNX ``Trunc``: drop (in_bits - out_bits) low bits of the integer x / scale + zeropt."""
    y = np.round(x / scale + zeropt)
    shift = int(np.asarray(in_bits).reshape(-1)[0]) - int(np.asarray(out_bits).reshape(-1)[0])
    y = _rounding(rounding_mode)(y / (2.0**shift))
    return ((y - zeropt) * scale).astype(x.dtype)


#: numpy types of ONNX's integer element types (uint8, int8, uint16, int16, int32)
INT_TYPES = {2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32}


# ------------------------------------------------------------------ ONNX Runtime, one node at a time
class NodeRunner:
    """Evaluate one ONNX node on a data tensor, with its other inputs fixed."""

    def __init__(self, node, consts: dict, types: dict, opset: int):
        self.node = node
        self.consts = consts
        self.types = types
        self.opset = opset
        self._sessions = {}

    #: ONNX element type of the data input when numpy cannot say it (int4, uint4)
    in_elem: int | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = self.node
        if n.domain and n.domain not in ("ai.onnx",):
            return self._qonnx(x)
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            return self._qdq(x)
        key = (x.dtype.str, x.ndim)
        if key not in self._sessions:
            self._sessions[key] = self._session(x)
        sess, in_name = self._sessions[key]
        return sess.run(None, {in_name: x})[0]

    def _qdq(self, x):
        """QuantizeLinear / DequantizeLinear as ONNX Runtime's CPU kernels compute them."""
        n = self.node
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        scale = np.asarray(self.consts[n.input[1]], dtype=np.float32)
        zp_name = n.input[2] if len(n.input) > 2 else ""
        zp = np.asarray(self.consts[zp_name]).astype(np.int64) if zp_name else np.zeros((), np.int64)
        if scale.ndim == 1 and x.ndim > 1:
            shape = [1] * x.ndim
            shape[axis % x.ndim] = scale.size
            scale, zp = scale.reshape(shape), (zp.reshape(shape) if zp.ndim == 1 else zp)
        if n.op_type == "DequantizeLinear":
            return (x.astype(np.int64) - zp).astype(np.float32) * scale
        elem = self.types.get(zp_name, 2) if zp_name else 2
        qmin, qmax = int_range(elem)
        q = np.clip(np.rint(x.astype(np.float32) / scale).astype(np.int64) + zp, qmin, qmax)
        # in the zero point's type, as ONNX says (int4/uint4 stay int64: numpy has no such type)
        return q.astype(INT_TYPES.get(elem, np.int64))

    def _qonnx(self, x):
        n = self.node
        a = {at.name: (at.s.decode() if at.type == at.STRING else at.i) for at in n.attribute}
        c = [self.consts[i] if i else None for i in n.input[1:]]
        c = [np.asarray(v, dtype=x.dtype) if v is not None and v.dtype.kind == "f" else v for v in c]
        if n.op_type == "Quant":
            return qonnx_quant(
                x, c[0], c[1], c[2], a.get("signed", 1), a.get("narrow", 0), a.get("rounding_mode", "ROUND")
            )
        if n.op_type == "BipolarQuant":
            return qonnx_bipolar(x, c[0])
        if n.op_type == "Trunc":
            return qonnx_trunc(x, c[0], c[1], c[2], c[3], a.get("rounding_mode", "FLOOR"))
        raise ValueError(f"QONNX operator {n.op_type} is not supported")

    def out_elem(self, elem: int) -> int:
        n = self.node
        if n.op_type == "QuantizeLinear":
            zp = n.input[2] if len(n.input) > 2 else ""
            return self.types.get(zp, 2) if zp else 2
        if n.op_type == "DequantizeLinear":
            return FLOAT
        if n.op_type == "Cast":
            return next(a.i for a in n.attribute if a.name == "to")
        return elem

    def _session(self, x):
        import onnx
        import onnxruntime as ort
        from onnx import helper

        n = self.node
        data = n.input[0]
        inits = [make_initializer(i, self.consts[i], self.types.get(i)) for i in n.input[1:] if i]
        elem = self.in_elem or helper.np_dtype_to_tensor_dtype(x.dtype)
        g = helper.make_graph(
            [n],
            "probe",
            [helper.make_tensor_value_info(data, elem, [None] + list(x.shape[1:]))],
            [helper.make_tensor_value_info(n.output[0], self.out_elem(elem), [None] + list(x.shape[1:]))],
            inits,
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]), data


def make_initializer(name: str, arr: np.ndarray, elem: int | None):
    """A TensorProto of ``arr`` with ONNX element type ``elem`` (int4/uint4 included)."""
    from onnx import helper, numpy_helper

    arr = np.asarray(arr)
    if elem in (21, 22):
        return helper.make_tensor(name, elem, arr.shape, arr.astype(np.int64).ravel().tolist())
    return numpy_helper.from_array(arr, name)

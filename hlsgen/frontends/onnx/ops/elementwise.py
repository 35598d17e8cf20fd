"""Element-wise operators on activations: Q/DQ, Relu, Clip, Sigmoid, Tanh, ..., BatchNormalization, Mul/Div/Sub by constants."""

from __future__ import annotations

import numpy as np

from ....fixed import FixedType
from ....ir import Activation
from ...probe import ProbeError, tabulate
from ..loader import node_label
from ..numerics import FLOAT, ONNX_INT_TYPES, int_range, multiplier, qonnx_range, requant
from ..registry import F32_EXACT, handles
from ..values import Const, Val, _is_po2


@handles(
    "DequantizeLinear",
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "Cast",
    "LeakyRelu",
    "HardSigmoid",
    "Quant",
    "BipolarQuant",
    "Trunc",
)
def _elementwise(cv, node):
    v = cv.vals.get(node.input[0])
    if isinstance(v, Val) and v.kind == "float_input" and node.op_type in ("Quant", "BipolarQuant"):
        return cv.quantize_graph_input(node, v)
    v = cv.act(node.input[0])
    for i in node.input[1:]:
        if i:
            cv.const(i)
    if cv.attrs(node).get("block_size", 0):
        cv.fail("blocked quantization (block_size) is not supported")
    if node.op_type == "DequantizeLinear":
        if v.kind != "int" and not (v.kind == "chain" and v.elem != FLOAT):
            cv.fail("DequantizeLinear reads a tensor that is not an integer tensor")
    if v.kind == "acc" and v.kernel == "exact" and node.op_type in ("Quant", "BipolarQuant"):
        return exact_requant(cv, node, v)
    if node.op_type == "Relu" and v.kind == "acc" and _relu_absorbed(cv, node, v):
        return v
    if node.op_type == "Relu" and v.kind == "exact":
        out = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="relu"))
        return v.derive(node=out.name, origin=node_label(node))
    return cv.chain_of(v, node)


def _relu_absorbed(cv, node, v: Val) -> bool:
    """Conv/Gemm -> Relu -> QuantizeLinear whose zero point is its type's minimum: ONNX Runtime
    drops the Relu and fuses the rest into one integer kernel, whose clamp at the minimum is the
    Relu (a negative accumulator requantizes to the zero point, as Relu's 0 does)."""
    from ..registry import ORT_INT_KERNELS

    cons = cv.consumers.get(node.output[0], [])
    if v.kernel not in ORT_INT_KERNELS or len(cons) != 1 or cons[0].op_type != "QuantizeLinear":
        return False
    q = cons[0]
    zp_name = q.input[2] if len(q.input) > 2 else ""
    elem = cv.types.get(zp_name, 2) if zp_name else 2
    if elem not in ONNX_INT_TYPES:
        return False
    zp = np.asarray(cv.const(zp_name).value).astype(np.int64).reshape(-1) if zp_name else np.zeros(1, np.int64)
    return bool(np.all(zp == int_range(elem)[0]))


@handles("QuantizeLinear")
def _quantize(cv, node):
    v = cv.vals.get(node.input[0])
    if isinstance(v, Val) and v.kind == "float_input":
        return cv.quantize_graph_input(node, v)
    v = cv.act(node.input[0])
    a = cv.attrs(node)
    if a.get("block_size", 0):
        cv.fail("blocked quantization (block_size) is not supported")
    s = np.asarray(cv.const(node.input[1], "scale").value, dtype=np.float32)
    zp_name = node.input[2] if len(node.input) > 2 else ""
    elem = cv.types.get(zp_name, 2) if zp_name else 2
    if elem not in ONNX_INT_TYPES or elem == 6:
        cv.fail(f"QuantizeLinear to element type {elem} is not supported (int8, uint8, int16, uint16, int4, uint4)")
    zp = np.asarray(cv.const(zp_name).value).astype(np.int64) if zp_name else np.zeros((), np.int64)
    if zp.size > 1 and np.any(zp != zp.reshape(-1)[0]):
        cv.fail("per-axis zero points that differ are not supported")
    zp = int(zp.reshape(-1)[0])
    if v.kind == "acc" and v.kernel == "exact":
        if s.size != 1 or s.reshape(-1)[0] <= 0:
            cv.fail("the output scale of a float-scale layer must be one positive value")
        qmin, qmax = int_range(elem)
        q = {"op": "Quant", "scale": float(s.reshape(-1)[0]), "zero_point": zp, "bits": 8, "signed": qmin < 0}
        q.update(rounding="ROUND", qmin=qmin, qmax=qmax)  # QuantizeLinear: half to even, saturate
        out = _exact_table(cv, node, v, q)
        return v.derive(kind="int", node=out, unit=1.0, zp=zp, elem=elem, ops=[], facts=None, kernel="")
    if v.kind == "acc":
        return cv_requant(cv, node, v, s, zp, elem)
    v = cv.exact_dq(v) or v
    if v.kind == "exact" and s.size == 1 and zp == 0 and _is_po2(s) and _is_po2(v.scale):
        # a plain fixed-point requantization: round half to even, saturate.  The float32
        # division value / s is exact; the IR value times scale / s lands on the type's grid.
        qmin, qmax = int_range(elem)
        sv = float(s.reshape(-1)[0])
        ft = int(np.log2(v.scale / sv))
        bits = int(qmax).bit_length() + (1 if qmin < 0 else 0)
        t = FixedType(bits, bits - ft, qmin < 0, "RND_CONV", "SAT")
        sp = cv.spec(v.node)
        if sp.type.frac == ft and t.min_raw <= sp.lo and sp.hi <= t.max_raw:
            name = v.node  # neither rounds nor saturates: nothing to compute
        else:
            name = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="requant", type=t)).name
        return v.derive(kind="int", node=name, unit=sv / v.scale, zp=0, elem=elem, origin=node_label(node))
    return cv.table(cv.chain_of(v, node))


def cv_requant(cv, node, v: Val, s, zp, elem):
    """QuantizeLinear of an integer kernel's accumulator: ONNX Runtime's float32 requantization, tabulated."""
    if s.size != 1:
        cv.fail("the output scale of an integer kernel must be per-tensor")
    sx, sw = v.facts
    mult = multiplier(sx, sw, s.reshape(-1)[0])
    qmin, qmax = int_range(elem)
    spec = cv.spec(v.node)
    cmap = cv.channel_map(v)
    if cmap is None:
        cv.fail("the integer kernel's output layout mixes channels")
    m = mult[cmap] if mult.size > 1 else np.full(len(cmap), mult.reshape(-1)[0], dtype=np.float32)
    sv = float(s.reshape(-1)[0])
    unit_out = sv if _is_po2(sv) else 1.0
    per_channel = bool(np.any(m != m[0]))
    mm = m if per_channel else m[:1]
    sp = cv.spec(v.node)
    if (
        not per_channel
        and zp == 0
        and _is_po2(mm[0])
        and max(abs(sp.lo), abs(sp.hi)) * sp.type.to_float(1) / v.unit < F32_EXACT
    ):
        # a power-of-two multiplier on an accumulator float32 holds exactly: a plain fixed-point
        # requantization (round half to even, saturate) instead of a table
        ft = int(np.log2(float(mm[0]) / v.unit))
        bits = int(qmax).bit_length() + (1 if qmin < 0 else 0)
        t = FixedType(bits, bits - ft, qmin < 0, "RND_CONV", "SAT")
        out = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="requant", type=t))
        return v.derive(kind="int", node=out.name, unit=v.unit / float(mm[0]), zp=0, elem=elem, origin=node_label(node))

    def fn(x):
        acc = np.rint(x / v.unit).astype(np.int64)
        q = requant(acc, mm[None, :].astype(np.float32), zp, qmin, qmax)
        return (q - zp).astype(np.float64) * unit_out

    try:
        step = tabulate(fn, spec, channels=len(mm), source=f"{v.kernel} requantization", float_dtype=np.float64)
    except ProbeError as e:
        cv.fail(str(e))
    out = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="step", step=step))
    return v.derive(kind="int", node=out.name, unit=unit_out, zp=zp, elem=elem, origin=node_label(node))


def exact_requant(cv, node, v: Val):
    """The QONNX Quant closing a float-scale layer (see :func:`_exact_table`)."""
    a = cv.attrs(node)
    s = np.asarray(cv.const(node.input[1], "scale").value, dtype=np.float32).reshape(-1)
    if s.size != 1 or s[0] <= 0:
        cv.fail("the output quantizer of a float-scale layer must have one positive scale")
    q = {"op": node.op_type, "scale": float(s[0]), "zero_point": 0, "bits": 1, "signed": True}
    if node.op_type == "Quant":
        zp = float(np.asarray(cv.const(node.input[2]).value).reshape(-1)[0])
        bits = int(np.asarray(cv.const(node.input[3]).value).reshape(-1)[0])
        if zp != round(zp):
            cv.fail("a zero point that is not an integer is not supported")
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        q.update(
            zero_point=int(zp),
            bits=bits,
            signed=signed,
            rounding=str(a.get("rounding_mode", "ROUND")),
        )
        q["qmin"], q["qmax"] = qonnx_range(bits, signed, narrow)
    out = _exact_table(cv, node, v, q)
    return v.derive(kind="exact", node=out, scale=float(s[0]), ops=[], facts=None, kernel="", origin=node_label(node))


def _exact_table(cv, node, v: Val, q: dict) -> str:
    """The quantizer closing a float-scale layer (QONNX Quant, or QuantizeLinear where ONNX
    Runtime computes the layer in float32): its integers q - zp as an exact function of the
    accumulator (scales, bias, element-wise ops and rounding in rational arithmetic, exact.py),
    tabulated.  Returns the new IR node's name."""
    from ..exact import evaluate, quant_int

    sx, sw = v.facts
    cmap = cv.channel_map(v)
    if cmap is None:
        cv.fail("the float-scale layer's output layout mixes channels")

    def ir(c):  # a constant per IR channel (float32 constants, or float64 folded batch-norm)
        c = np.asarray(c).reshape(-1)
        return c[cmap] if c.size > 1 else np.repeat(c, len(cmap))

    ops = [(n, ir(c) if n in ("add", "mul") else c) for n, c in v.ops]
    swc = ir(sw)
    consts = [swc] + [c for n, c in ops if n in ("add", "mul")]
    if not any(np.any(c != c[0]) for c in consts):  # one table for all channels
        swc = swc[:1]
        ops = [(n, c[:1] if n in ("add", "mul") else c) for n, c in ops]
    spec = cv.spec(v.node)
    frac = spec.type.frac

    def fn(x):
        acc = np.rint(np.ldexp(x, frac)).astype(np.int64)
        return quant_int(evaluate(acc, frac, sx, swc, ops), q).astype(np.float64)

    try:
        step = tabulate(fn, spec, channels=len(swc), source="exact float-scale requantization", float_dtype=np.float64)
    except ProbeError as e:
        cv.fail(str(e))
    return cv.add(Activation(cv.unique(node_label(node)), [v.node], function="step", step=step)).name


@handles("BatchNormalization")
def _batchnorm(cv, node):
    if len(node.output) > 1 and any(node.output[1:]):
        cv.fail("BatchNormalization in training mode (extra outputs) is not supported")
    return _elementwise_const(cv, node)


@handles("Mul", "Div", "Sub")
def _elementwise_const(cv, node):
    a, b = (
        (cv.vals.get(i) for i in node.input[:2])
        if node.op_type != "BatchNormalization"
        else (cv.vals.get(node.input[0]), None)
    )
    if node.op_type != "BatchNormalization" and (isinstance(a, Val) == isinstance(b, Val)):
        cv.fail(f"{node.op_type} of two activation tensors is not supported (only by a constant)")
    if isinstance(b, Val) and node.op_type != "Mul":
        cv.fail(f"{node.op_type} with the activation as the second operand is not supported")
    if isinstance(b, Val):  # constant * x: swap into x * constant
        from onnx import helper

        node = helper.make_node("Mul", [node.input[1], node.input[0]], list(node.output), name=node.name)
    v = cv.act(node.input[0])
    for i in node.input[1:]:
        c = cv.const(i)
        if node.op_type == "BatchNormalization" and c.value.size not in (1, v.shape[0]):
            cv.fail(f"BatchNormalization parameter '{i}' does not have one value per channel")
        if node.op_type != "BatchNormalization" and not _per_channel_ok(c, v):
            cv.fail(f"constant '{i}' of shape {c.value.shape} is not per-tensor or per-channel")
    return cv.chain_of(v, node)


def _per_channel_ok(c: Const, v: Val) -> bool:
    """A constant that broadcasts per tensor or per channel (ONNX axis 1) over v."""
    if c.value.size == 1:
        return True
    shape = tuple(c.value.shape)
    if len(shape) > len(v.shape) + 1:
        return False
    padded = (1,) * (len(v.shape) - len(shape)) + shape[-len(v.shape) :] if len(shape) <= len(v.shape) else shape[1:]
    return padded[0] == v.shape[0] and all(d == 1 for d in padded[1:])


# ---------------------------------------------------------------- linear

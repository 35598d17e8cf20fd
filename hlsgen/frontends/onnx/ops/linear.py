"""Conv, Gemm and MatMul (and their Integer / QLinear forms): integer accumulators, requantization."""

from __future__ import annotations

import numpy as np

from ....fixed import FixedType
from ....ir import Conv, Dense, Weight
from ....ir.nodes import _pad_amounts
from ..loader import NODE_KEY, node_label
from ..numerics import FLOAT
from ..registry import F32_EXACT, ORT_INT_KERNELS, handles
from ..values import Const, Val, _is_po2, canonical_index
from .elementwise import cv_requant


def _weight_from_dq(cv, c: Const, what):
    """Integer weights (q - zp) and per-output-channel scales of a DequantizeLinear'd constant."""
    if c.dq is None:
        cv.fail(f"{what} must be DequantizeLinear of integer weights for ONNX Runtime's integer kernel")
    q, s, zp, axis, _ = c.dq
    return q - (zp if zp.size == 1 else zp.reshape([-1 if k == axis % q.ndim else 1 for k in range(q.ndim)])), s, axis


def _conv_geometry(cv, node, in_shape, kshape):
    a = cv.attrs(node)
    rank = len(kshape)
    if any(d != 1 for d in a.get("dilations", [1] * rank)):
        cv.fail("dilation is not supported")
    strides = tuple(a.get("strides", [1] * rank))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    spatial = in_shape[1:]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, k, s in zip(spatial, kshape, strides, strict=False):
            b, e = _pad_amounts(n, k, s, "same")
            pads.append((e, b) if auto == "SAME_LOWER" else (b, e))
    elif auto == "VALID":
        pads = [(0, 0)] * rank
    else:
        p = list(a.get("pads", [0] * (2 * rank)))
        pads = list(zip(p[:rank], p[rank:], strict=False))
    if all(b == 0 and e == 0 for b, e in pads):
        return strides, "valid", ()
    if min(min(p) for p in pads) < 0:
        cv.fail(f"negative padding {pads} is not supported")
    same = [_pad_amounts(n, k, s, "same") for n, k, s in zip(spatial, kshape, strides, strict=False)]
    if [tuple(p) for p in pads] == same:
        return strides, "same", ()
    return strides, "explicit", tuple(int(v) for p in pads for v in p)


@handles("Conv", "ConvInteger", "QLinearConv")
def _conv(cv, node):
    op = node.op_type
    xin = 0
    win = 1 if op == "Conv" else (1 if op == "ConvInteger" else 3)
    x = cv.input_relayout(cv.batch0(cv.act(node.input[xin])))
    wc = cv.const(node.input[win], "weight")
    a = cv.attrs(node)
    if len(x.shape) not in (2, 3):
        cv.fail(f"Conv input of shape {x.shape} is not 1-D or 2-D with channels")
    if x.kind != "float_input" and not np.array_equal(x.index, canonical_index(x.shape)):
        cv.fail("the input of this Conv was transposed or reshaped; Conv needs channels-first data")
    group = a.get("group", 1)
    cin = x.shape[0]
    kshape = tuple(wc.value.shape[2:])
    strides, padding, pads = _conv_geometry(cv, node, x.shape, kshape)
    wmode, facts, xv, bias_raw, unit = _linear_inputs(cv, node, x, wc, op, axis_out=0)
    # W: [M, C/group, *k] -> IR [*k, C, M] or depthwise [*k, C, mult]
    wq = wmode  # integer or float array in ONNX layout
    M = wq.shape[0]
    if group == 1:
        k_ir = np.moveaxis(wq, (0, 1), (-1, -2))
        depthwise = False
    elif group == cin and wq.shape[1] == 1:
        mult = M // cin
        k_ir = np.moveaxis(wq.reshape((cin, mult) + kshape), (0, 1), (-2, -1))
        depthwise = True
    else:
        cv.fail(f"group={group} is not supported (1, or the number of input channels for a depthwise convolution)")
    wunit = _weight_unit(facts)
    w, b = _ir_weights(cv, k_ir, bias_raw, xv, wunit)
    unit *= wunit
    out = cv.add(
        Conv(
            cv.unique(node_label(node)),
            [xv.node],
            kernel=w,
            bias=b,
            strides=strides,
            padding=padding,
            pads=pads,
            depthwise=depthwise,
        )
    )
    oshape = (M,) + tuple(cv.spec(out.name).shape[:-1])
    return _linear_output(cv, node, out, oshape, facts, unit)


@handles("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")
def _dense(cv, node):
    op = node.op_type
    a = cv.attrs(node)
    x = cv.batch0(cv.act(node.input[0]))
    win = {"Gemm": 1, "MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3}[op]
    wc = cv.const(node.input[win], "weight")
    if op == "Gemm":
        if a.get("transA", 0):
            cv.fail("Gemm with transA=1 is not supported")
        if a.get("alpha", 1.0) != 1.0 or (len(node.input) > 2 and node.input[2] and a.get("beta", 1.0) != 1.0):
            cv.fail("Gemm with alpha or beta other than 1 is not supported")
    if len(x.shape) != 1 or wc.value.ndim != 2:
        cv.fail(f"{op} of a tensor of shape {x.shape} is not supported (flatten to [N, features] first)")
    trans = bool(a.get("transB", 0)) if op == "Gemm" else False
    wmode, facts, xv, bias_raw, unit = _linear_inputs(cv, node, x, wc, op, axis_out=0 if trans else 1)
    wq = wmode.T if trans else wmode  # [K, M]
    if wq.shape[0] != x.shape[0]:
        cv.fail(f"weight of shape {wc.value.shape} does not match {x.shape[0]} input features")
    k_ir = wq[x.index.reshape(-1)]  # rows in the IR's feature order
    if bias_raw is not None:
        bias_raw = np.asarray(bias_raw)
        if bias_raw.ndim == 2 and bias_raw.shape[0] != 1:
            cv.fail(f"a bias of shape {bias_raw.shape} differs per batch row")
        bias_raw = np.broadcast_to(bias_raw.reshape(-1), (wq.shape[1],)).copy()
    wunit = _weight_unit(facts)
    w, b = _ir_weights(cv, k_ir, bias_raw, xv, wunit)
    unit *= wunit
    out = cv.add(Dense(cv.unique(node_label(node)), [xv.node], kernel=w, bias=b))
    return _linear_output(cv, node, out, (wq.shape[1],), facts, unit)


def _linear_inputs(cv, node, x: Val, wc: Const, op, axis_out):
    """(weights in ONNX layout, (s_x, s_w) or None, input Val, bias, input unit).

    Integer path (ONNX Runtime integer kernels, explicit or fused): weights are integers,
    the input is an integer tensor, the bias int32; ``facts`` carries the scales.
    Float path: weights are floats and everything must be exact in float32.
    """
    kernel = ""
    if op in ("Conv", "Gemm", "MatMul"):
        kernel = _kernel(cv, node)
        if kernel not in ORT_INT_KERNELS:
            # not fused: ONNX Runtime computes in float32 (any float kernel: the exactness
            # check below holds for every summation order), unless it chose another integer kernel
            mine = cv.kernels.get(node.output[0], "")
            if any(k.startswith(("QLinear", "QGemm", "DynamicQuantize")) or "Integer" in k for k in (kernel, mine)):
                cv.fail(f"ONNX Runtime runs this node as {kernel or mine}, whose arithmetic hlsgen does not reproduce")
            kernel = ""
    if op in ("QLinearConv", "QLinearMatMul"):
        xs = float(np.asarray(cv.const(node.input[1]).value).reshape(-1)[0])
        xzp = int(np.asarray(cv.const(node.input[2]).value).reshape(-1)[0])
        if x.kind != "int" or x.zp != xzp:
            x = _as_int(cv, x, xzp)
        wq = np.asarray(wc.value).astype(np.int64)
        wzp = np.asarray(cv.const(node.input[5]).value).astype(np.int64)
        ws = np.asarray(cv.const(node.input[4]).value, dtype=np.float32).reshape(-1)
        wq = wq - (wzp.reshape([-1] + [1] * (wq.ndim - 1)) if wzp.size > 1 else wzp.reshape(()))
        bias = None
        if op == "QLinearConv" and len(node.input) > 8 and node.input[8]:
            bias = np.asarray(cv.const(node.input[8]).value).astype(np.int64)
        return wq, (xs, ws), x, bias, x.unit
    if op in ("ConvInteger", "MatMulInteger"):
        xzp = (
            int(np.asarray(cv.const(node.input[2]).value).reshape(-1)[0])
            if len(node.input) > 2 and node.input[2]
            else 0
        )
        if x.kind != "int" or x.zp != xzp:
            x = _as_int(cv, x, xzp)
        wq = np.asarray(wc.value).astype(np.int64)
        if len(node.input) > 3 and node.input[3]:
            wzp = np.asarray(cv.const(node.input[3]).value).astype(np.int64)
            shape = [1] * wq.ndim
            shape[0 if op == "ConvInteger" else 1] = -1
            wq = wq - (wzp.reshape(shape) if wzp.size > 1 else wzp.reshape(()))
        return wq, None, x, None, x.unit
    if kernel in ORT_INT_KERNELS:
        # DQ -> op -> Q that ONNX Runtime runs as one integer kernel
        x = cv.int_before_dq(x)
        if x.kind != "chain" or len(x.chain) != 1 or x.chain[0].op_type != "DequantizeLinear" or x.base.kind != "int":
            cv.fail(
                f"ONNX Runtime runs this node as {kernel}, but its input is not DequantizeLinear of an integer tensor"
            )
        xs_, xzp_ = cv.qparams(x.chain[0])
        xs, xzp = float(xs_[0]), int(xzp_[0])
        xb = x.base
        if xb.zp != xzp:
            cv.fail("the input's DequantizeLinear zero point differs from its QuantizeLinear's")
        wq, ws, waxis = _weight_from_dq(cv, wc, "the weight")
        ws = ws.reshape(-1)
        if ws.size > 1 and waxis % wq.ndim != axis_out:
            cv.fail(f"per-axis weight scales on axis {waxis} are not per output channel")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bc = cv.const(node.input[2], "bias")
            if bc.dq is None or bc.dq[4] != 6:
                cv.fail(f"ONNX Runtime runs this node as {kernel}: its bias must be DequantizeLinear of int32")
            bias = bc.dq[0] - bc.dq[2].reshape(bc.dq[0].shape if bc.dq[2].size > 1 else ())
        return wq, (xs, ws), xb, bias, xb.unit
    if cv.qonnx and wc.dq is not None and wc.dq[4] == FLOAT:
        xe = cv.settle(x, exact=True)
        if not (_is_po2(xe.scale) and _is_po2(wc.dq[1])):
            return _float_scale_inputs(cv, node, xe, wc, op, axis_out, float(xe.scale))
    if not cv.qonnx and wc.dq is not None:
        # QDQ / QCDQ that ONNX Runtime leaves in float32 (int8 activations with a Clip, ...):
        # with float scales float32 is not exact; the quantized semantics are computed exactly
        xi = cv.int_before_dq(x)
        if xi.kind == "chain" and len(xi.chain) == 1 and xi.chain[0].op_type == "DequantizeLinear":
            xs_, xzp_ = cv.qparams(xi.chain[0])
            if (
                xi.base.kind == "int"
                and xs_.size == 1
                and xzp_.size == 1
                and xi.base.zp == int(xzp_[0])
                and not (_is_po2(xs_) and _is_po2(wc.dq[1]))
            ):
                return _float_scale_inputs(cv, node, xi.base, wc, op, axis_out, float(xs_[0]) / xi.base.unit)
    # float path: exact float32 only
    xv = cv.settle(x, exact=True)
    bias = None
    if len(node.input) > 2 and node.input[2] and op != "MatMul":
        bias = np.asarray(cv.const(node.input[2], "bias").value, dtype=np.float64)
    return np.asarray(wc.value, dtype=np.float64), None, xv, bias, 1.0


def _float_scale_inputs(cv, node, xe: Val, wc: Const, op, axis_out, sx: float):
    """Float scales (QONNX, or QDQ that ONNX Runtime computes in float32): integer weights
    q - zp, the input's IR integers (worth ``sx`` each, at their fractional bits), an exact
    integer accumulator; facts = (sx, weight scales, float bias) for :mod:`..exact`."""
    wq, ws, waxis = _weight_from_dq(cv, wc, "the weight")
    ws = ws.reshape(-1)
    if ws.size > 1 and waxis % wq.ndim != axis_out:
        cv.fail(f"per-axis weight scales on axis {waxis} are not per output channel")
    bias = None
    if len(node.input) > 2 and node.input[2] and op != "MatMul":
        bias = np.asarray(cv.const(node.input[2], "bias").value, dtype=np.float32).reshape(-1)
    cv.float_scales.append(node_label(node))
    return wq, (sx, ws, bias), xe, None, xe.unit


def _as_int(cv, x: Val, zp):
    if x.kind == "int" and x.zp == zp:
        return x
    if x.kind == "chain" and x.elem != FLOAT:
        x = cv.table(x)
        if x.zp == zp:
            return x
    cv.fail("the input must be an integer tensor with the zero point this node declares")


def _kernel(cv, node) -> str:
    """The ONNX Runtime kernel that computes this node's (requantized) output: found by the
    tensor it writes, or, where ONNX Runtime renamed the tensors (int8 Q/DQ made uint8), by
    the name of the node it replaced.  "" when the node runs unfused in float32."""
    k = cv.kernels.get(_q_output(cv, node), "")
    if k in ORT_INT_KERNELS:
        return k
    by_name = cv.kernels.get(NODE_KEY + node.name, "")
    return by_name if by_name in ORT_INT_KERNELS else k


def _q_output(cv, node) -> str:
    """Name of the tensor ONNX Runtime's fused kernel writes (the QuantizeLinear after the node)."""
    out = node.output[0]
    cons = cv.consumers.get(out, [])
    if len(cons) == 1 and cons[0].op_type == "QuantizeLinear":
        return cons[0].output[0]
    return out


def _weight_unit(facts) -> float:
    """The weight scale when it is one power of two (then the IR weights carry it), else 1."""
    if facts is None:
        return 1.0
    ws = np.asarray(facts[1], dtype=np.float64).reshape(-1)
    return float(ws[0]) if np.all(ws == ws[0]) and _is_po2(ws[0]) else 1.0


def _ir_weights(cv, k_ir, bias_raw, xv, wunit=1.0):
    if np.issubdtype(np.asarray(k_ir).dtype, np.integer):
        k = np.asarray(k_ir, dtype=np.int64)
        lo, hi = int(min(k.min(), 0)), int(max(k.max(), 0))
        w = Weight(k, FixedType.for_range(lo, hi, -int(np.log2(wunit))))
        w.kind = w.detect_kind()
        b = None
        if bias_raw is not None:
            # the accumulator is (sum + bias) * unit on the IR side
            bv = np.asarray(bias_raw, dtype=np.float64) * xv.unit * wunit
            b = Weight.from_values(bv, kind="fixed")
        return w, b
    try:
        w = Weight.from_values(np.asarray(k_ir, dtype=np.float32).astype(np.float64))
        b = (
            None
            if bias_raw is None
            else Weight.from_values(np.asarray(bias_raw, dtype=np.float32).astype(np.float64), kind="fixed")
        )
    except ValueError:
        cv.fail("float weights are not on a power-of-two grid, so float32 arithmetic would not be exact")
    # every product and partial sum must be exact in float32: the L1 bound in grid units < 2**24
    sp = cv.spec(xv.node)
    xmax = max(abs(sp.lo), abs(sp.hi))
    flat = w.raw.reshape(-1, w.raw.shape[-1]).astype(object)
    l1 = np.abs(flat).sum(axis=0) * xmax
    f = sp.type.frac + w.type.frac
    if b is not None:
        fb = b.type.frac
        ff = max(f, fb)
        l1 = l1 * (1 << (ff - f)) + np.abs(b.raw.astype(object)) * (1 << (ff - fb))
    if max(l1) >= F32_EXACT:
        cv.fail(
            f"float32 arithmetic of this node is not exact (its sums need {int(max(l1)).bit_length()} significant bits); "
            "quantize it so that ONNX Runtime runs an integer kernel (QDQ with int8/uint8), or use fewer bits"
        )
    if xv.scale != 1.0:
        cv.fail("the input's scale is not folded; dequantize with the quantizer's own scale")
    return w, b


def _linear_output(cv, node, out, oshape, facts, unit):
    idx = canonical_index(oshape)
    name = node_label(node)
    if facts is not None and len(facts) == 3:  # float-scale QONNX: exact arithmetic follows
        ops = [("add", facts[2])] if facts[2] is not None else []
        return Val("acc", out.name, oshape, idx, name, facts=facts[:2], kernel="exact", unit=unit, ops=ops)
    if facts is not None:
        kernel = _kernel(cv, node) or node.op_type
        acc = Val("acc", out.name, oshape, idx, name, facts=facts, kernel=kernel, unit=unit)
        if node.op_type in ("QLinearConv", "QLinearMatMul"):  # the requantization is part of the node
            s = np.asarray(cv.const(node.input[6], "y_scale").value, dtype=np.float32)
            zp = np.asarray(cv.const(node.input[7], "y_zero_point").value).astype(np.int64).reshape(-1)
            return cv_requant(cv, node, acc, s, int(zp[0]), cv.types.get(node.input[7], 2))
        return acc
    if node.op_type in ("ConvInteger", "MatMulInteger"):
        return Val("int", out.name, oshape, idx, name, elem=6, zp=0, unit=unit)
    return Val("exact", out.name, oshape, idx, name, scale=1.0)


# ---------------------------------------------------------------- pools, add, layout

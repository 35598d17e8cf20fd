"""ONNX test models: float ONNX versions of the zoo models (built from their weights), quantized
with onnxruntime.quantization (static, QDQ), and small onnx.helper graphs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def make_model(nodes, inputs, outputs, inits, opset=OPSET, domains=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 8
    return m


def init(name, arr, dtype=None):
    a = np.asarray(arr, dtype=dtype) if dtype is not None else np.asarray(arr)
    return numpy_helper.from_array(a, name)


def float_from_zoo(name: str):
    """A float ONNX model (NCHW) with the weights of a zoo model; ReLU where the zoo quantizes."""
    from hlsgen import convert

    g = convert(name, hardware=False).graph
    nodes, inits = [], []
    shape = tuple(g.input.shape)
    if len(shape) == 3:
        onnx_in = [shape[2], shape[0], shape[1]]
    else:
        onnx_in = [shape[0]]
    cur = "x"
    layout = None  # IR spatial shape of the current tensor (for flatten order)
    for n in g.nodes[1:]:
        out = n.name
        if n.op == "Conv":
            k = n.kernel.values  # [kh, kw, C, M] or depthwise [kh, kw, C, mult]
            if n.depthwise:
                w = np.transpose(k, (2, 3, 0, 1)).reshape(-1, 1, k.shape[0], k.shape[1])
                grp = k.shape[2]
            else:
                w = np.transpose(k, (3, 2, 0, 1))
                grp = 1
            inits.append(init(out + "_w", w.astype(np.float32)))
            ins = [cur, out + "_w"]
            if n.bias is not None:
                inits.append(init(out + "_b", n.bias.values.astype(np.float32)))
                ins.append(out + "_b")
            pads = [0, 0, 0, 0]
            if n.padding == "same":
                kh, kw = k.shape[:2]
                pads = [(kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2]
            nodes.append(helper.make_node("Conv", ins, [out], name=out, strides=list(n.strides), pads=pads, group=grp))
            layout = n.spec.shape
        elif n.op == "Activation":
            nodes.append(helper.make_node("Relu", [cur], [out], name=out))
        elif n.op == "Pool":
            if n.global_:
                op = "GlobalMaxPool" if n.mode == "max" else "GlobalAveragePool"
                nodes.append(helper.make_node(op, [cur], [out], name=out))
            else:
                op = "MaxPool" if n.mode == "max" else "AveragePool"
                nodes.append(
                    helper.make_node(
                        op, [cur], [out], name=out, kernel_shape=list(n.pool_size), strides=list(n.strides)
                    )
                )
            layout = n.spec.shape
        elif n.op == "Reshape":
            nodes.append(helper.make_node("Flatten", [cur], [out], name=out, axis=1))
        elif n.op == "Dense":
            w = n.kernel.values
            if layout is not None and len(layout) == 3:
                # Keras flattens HWC, ONNX flattens CHW: reorder the weight rows
                h, wd, c = layout
                perm = np.arange(h * wd * c).reshape(h, wd, c).transpose(2, 0, 1).reshape(-1)
                w = w[perm]
                layout = None
            inits.append(init(out + "_w", w.astype(np.float32)))
            inits.append(
                init(out + "_b", (n.bias.values if n.bias is not None else np.zeros(w.shape[1])).astype(np.float32))
            )
            nodes.append(helper.make_node("Gemm", [cur, out + "_w", out + "_b"], [out], name=out))
        else:
            raise AssertionError(n.op)
        cur = out
    out_shape = [None, g.output_spec.shape[-1]]
    m = make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] + onnx_in)],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, out_shape)],
        inits,
        opset=13,
    )
    onnx.checker.check_model(m)
    return m


def digits_nchw(shape):
    from hlsgen.zoo.build import digits

    xtr, xte, ytr, yte = digits()
    return xtr.reshape((-1,) + tuple(shape)).astype(np.float32), xte.reshape((-1,) + tuple(shape)).astype(np.float32)


def quantize_qdq(model, calib: np.ndarray, path, per_channel=False, act="QUInt8", weight="QInt8"):
    """Static QDQ quantization with onnxruntime.quantization, calibrated on ``calib``."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "float.onnx"
        onnx.save(model, src)
        quantize_static(
            str(src),
            str(path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=getattr(QuantType, act),
            weight_type=getattr(QuantType, weight),
        )
    return path


def po2_scales(model):
    """The QDQ model with every scale rounded up to a power of two (integers requantized to match).

    Weights and biases are re-quantized from their dequantized values; a bias keeps the
    scale s_x * s_w the integer kernels need.  The result is a fixed-point model.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    new_scale = {}

    def up(s):
        s = np.asarray(s, dtype=np.float64)
        return np.exp2(np.ceil(np.log2(s))).astype(np.float32)

    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[1] not in new_scale:
            new_scale[n.input[1]] = up(numpy_helper.to_array(inits[n.input[1]]))
    consumers = {}
    for n in g.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    for n in g.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            continue
        q = numpy_helper.to_array(inits[n.input[0]]).astype(np.int64)
        s_old = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        zp = numpy_helper.to_array(inits[n.input[2]]).astype(np.int64) if len(n.input) > 2 and n.input[2] else 0
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if np.asarray(s_old).size > 1:
            shape[axis] = -1
        val = (q - np.reshape(zp, shape if np.size(zp) > 1 else ())) * np.reshape(
            s_old, shape if s_old.size > 1 else ()
        )
        if inits[n.input[0]].data_type == TensorProto.INT32:  # bias: scale = s_x * s_w of its kernel
            user = consumers[n.output[0]][0]
            dq_x = next(p for p in g.node if p.output[0] == user.input[0])
            dq_w = next(p for p in g.node if p.output[0] == user.input[1])
            s_new = (new_scale[dq_x.input[1]].astype(np.float64) * new_scale[dq_w.input[1]].astype(np.float64)).astype(
                np.float32
            )
            new_scale[n.input[1]] = s_new
            qn = np.rint(val / np.reshape(s_new, shape if s_new.size > 1 else ())).astype(np.int32)
        else:
            s_new = new_scale[n.input[1]]
            dt = numpy_helper.to_array(inits[n.input[0]]).dtype
            info = np.iinfo(dt)
            qn = np.clip(
                np.rint(val / np.reshape(s_new, shape if s_new.size > 1 else ()))
                + np.reshape(zp, shape if np.size(zp) > 1 else ()),
                info.min,
                info.max,
            ).astype(dt)
        inits[n.input[0]].CopyFrom(numpy_helper.from_array(qn, n.input[0]))
    for name, s in new_scale.items():
        inits[name].CopyFrom(
            numpy_helper.from_array(
                np.asarray(s, dtype=np.float32).reshape(numpy_helper.to_array(inits[name]).shape), name
            )
        )
    return m


def lstm_from_zoo(name: str = "lstm_sparse", op: str = "LSTM"):
    """An ONNX LSTM version of a zoo LSTM (its weights as int8 DequantizeLinear, power-of-two
    scales): x [time, batch, features] -> QDQ -> LSTM -> Y_h -> Squeeze -> QDQ -> Gemm."""
    from hlsgen import convert

    g = convert(name, hardware=False).graph
    lstm, fc = g.nodes[1], g.nodes[2]
    T, F = g.input.shape
    U = lstm.units
    order = [0, 3, 1, 2]  # ONNX block b holds the IR (Keras) gate order[b]: i, o, f, c

    def onnx_rows(m):  # [*, 4U] in IR order -> [4U, *] in ONNX order
        return np.concatenate([m[:, k * U : (k + 1) * U].T for k in order], axis=0)

    def int8(w):  # raw integers and their power-of-two scale
        assert w.type.width <= 8
        return w.raw.astype(np.int8), np.float32(2.0**-w.type.frac)

    kq, ks = int8(lstm.kernel)
    rq, rs = int8(lstm.recurrent)
    inits = [
        init("kq", onnx_rows(kq.astype(np.int64)).astype(np.int8)[None]),
        init("ks", ks),
        init("rq", onnx_rows(rq.astype(np.int64)).astype(np.int8)[None]),
        init("rs", rs),
        init("z8", np.int8(0)),
        init(
            "B",
            np.concatenate([onnx_rows(lstm.bias.values[None, :].astype(np.float32))[:, 0], np.zeros(4 * U)]).astype(
                np.float32
            )[None],
        ),
        init("sx", np.float32(1 / 16)),
        init("zx", np.uint8(0)),
        init("sh", np.float32(1 / 128)),
        init("ax0", np.array([0], np.int64)),
        init("fcw", fc.kernel.values.astype(np.float32)),
        init("fcb", fc.bias.values.astype(np.float32)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xf"]),
        helper.make_node("DequantizeLinear", ["kq", "ks", "z8"], ["W"]),
        helper.make_node("DequantizeLinear", ["rq", "rs", "z8"], ["R"]),
        helper.make_node(op, ["xf", "W", "R", "B"], ["", "h"], name="lstm", hidden_size=U),
        helper.make_node("Squeeze", ["h", "ax0"], ["h2"]),
        helper.make_node("QuantizeLinear", ["h2", "sh", "z8"], ["hq"]),
        helper.make_node("DequantizeLinear", ["hq", "sh", "z8"], ["hf"]),
        helper.make_node("Gemm", ["hf", "fcw", "fcb"], ["y"], name="fc"),
    ]
    m = make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, None, F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, fc.kernel.raw.shape[1]])],
        inits,
        opset=13,
    )
    onnx.checker.check_model(m)
    return m, (T, F)

"""The ONNX view of a converted graph: inputs as ONNX Runtime takes them, outputs as it returns them.

A graph converted from ONNX keeps, in ``graph.meta["onnx"]``, how the model's float input is
quantized (the first QuantizeLinear or Quant, evaluated the way ONNX Runtime / QONNX do),
the layout change from ONNX's channels-first to the IR's channels-last, and how the IR's
raw output maps back onto the ONNX output tensor (values and element order).
"""

from __future__ import annotations

import numpy as np

from .numerics import ONNX_INT_TYPES, qonnx_quant


def _info(graph) -> dict:
    info = graph.meta.get("onnx")
    if not info:
        raise ValueError("this graph was not converted from ONNX")
    return info


def quantize_input(graph, x) -> np.ndarray:
    """Raw IR input integers for an ONNX-layout input batch (float, or the model's integers)."""
    info = _info(graph)["input"]
    shape = tuple(info["shape"])
    b = info.get("batch_axis", 0)
    x = np.moveaxis(np.asarray(x), b, 0) if np.ndim(x) > b else np.asarray(x)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        full = list(shape)
        full.insert(b, "N")
        raise ValueError(f"input shape {tuple(np.asarray(x).shape)} does not match the ONNX input {tuple(full)}")
    q = info.get("quantize")
    if q is None:  # integer input: the IR holds q - zero_point
        raw = x.astype(np.int64) - int(info.get("zero_point", 0))
    else:
        xf = x.astype(np.float32)
        s = np.float32(q["scale"])
        if q["op"] == "QuantizeLinear":
            v = np.rint(xf / s)
            v = np.clip(v, q["qmin"] - q["zero_point"], q["qmax"] - q["zero_point"])
            raw = v.astype(np.int64)
        elif q["op"] == "BipolarQuant":  # +1 where x >= 0, else -1
            raw = np.where(xf >= 0, 1, -1).astype(np.int64)
        else:  # QONNX Quant: its output is (q - zp) * scale; the IR holds q - zp
            y = qonnx_quant(xf, s, np.float32(q["zero_point"]), q["bits"], q["signed"], q["narrow"], q["rounding"])
            raw = np.rint(y / s).astype(np.int64)
    # the IR's element order (channels last for images; sequences as they are)
    n = raw.shape[0]
    return raw.reshape(n, -1)[:, np.asarray(info["index"], dtype=np.int64)].reshape((n,) + graph.input.shape)


def output_to_onnx(graph, raw) -> np.ndarray:
    """ONNX Runtime's output (values, element type, layout) from the IR's raw output integers."""
    info = _info(graph)["output"]
    raw = np.asarray(raw, dtype=np.int64)
    n = raw.shape[0]
    flat = raw.reshape(n, -1)
    out = np.empty_like(flat)
    out[:, np.asarray(info["index"], dtype=np.int64)] = flat
    out = out.reshape((n,) + tuple(info["shape"]))
    t = graph.output_spec.type
    if info["kind"] == "affine":  # float-scale last layer: exact values on the host (exact.py)
        from .exact import evaluate

        sw = np.asarray(info["sw"], dtype=np.float64)
        ops = [(name, np.asarray(a, dtype=np.float64) if name in ("add", "mul") else a) for name, a in info["ops"]]
        v = evaluate(out.reshape(n, -1), info["frac"], info["sx"], sw, ops)
        y = v.to_float().astype(np.float32).reshape(out.shape)
        return np.moveaxis(y, 0, info.get("batch_axis", 0))
    if info["kind"] in ("int", "dequantized"):
        # IR value = (q - zp) * unit: q - zp = raw * 2**-frac / unit
        d = np.rint(np.ldexp(out.astype(np.float64), -t.frac) / info["unit"]).astype(np.int64)
        if info["kind"] == "dequantized":  # DequantizeLinear as ONNX Runtime computes it
            y = d.astype(np.float32) * np.float32(info["scale"])
        else:
            y = (d + info["zero_point"]).astype(ONNX_INT_TYPES[info["elem"]][0])
    else:
        y = (np.ldexp(out.astype(np.float64), -t.frac) * info["scale"]).astype(np.float32)
    return np.moveaxis(y, 0, info.get("batch_axis", 0))


def onnx_random_inputs(graph, rng, n: int) -> np.ndarray:
    """Random ONNX-layout inputs spanning the input quantizer's range (a little beyond, to saturate)."""
    info = _info(graph)["input"]
    shape = [n] + list(info["shape"])
    shape.insert(info.get("batch_axis", 0), shape.pop(0))
    shape = tuple(shape)
    q = info.get("quantize")
    if q is None:
        lo, hi = (
            graph.input.type.min_raw + info.get("zero_point", 0),
            graph.input.type.max_raw + info.get("zero_point", 0),
        )
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(ONNX_INT_TYPES[info["elem"]][0])
    s, zp = q["scale"], q["zero_point"]
    lo, hi = (q["qmin"] - zp - 2) * s, (q["qmax"] - zp + 2) * s
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def runtime_model(source: str, graph=None):
    """The model ONNX Runtime should run to compare with ``graph``, and the session options.

    QONNX operators become standard operators, run without graph optimizations (QONNX's
    executor evaluates node by node in float32); a softmax that StripSoftmax removed is cut
    off (its input becomes the output).  Anything else runs as the user's ONNX Runtime runs it.
    """
    import onnxruntime as ort
    from onnx import helper

    from .loader import load_onnx, uses_qonnx

    model = load_onnx(source, upgrade=False)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if uses_qonnx(model):
        from .qonnx import as_standard_onnx

        model = as_standard_onnx(model, str(source))
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    cut = (graph.meta.get("onnx", {}) if graph is not None else {}).get("stripped_softmax")
    if cut:
        out = model.graph.output[0]
        del model.graph.output[:]
        model.graph.output.append(helper.make_tensor_value_info(cut, out.type.tensor_type.elem_type, None))
    return model, so


def run_onnxruntime(source: str, x, graph=None) -> np.ndarray:
    """The model's output in ONNX Runtime (CPU) for an ONNX-layout batch.

    A batch dimension fixed in the file (1 in most exports) is honoured: the batch runs in
    slices of that size.
    """
    import onnxruntime as ort

    model, so = runtime_model(source, graph)
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    info = graph.meta.get("onnx", {}) if graph is not None else {}
    b_in = info.get("input", {}).get("batch_axis", 0)
    b_out = info.get("output", {}).get("batch_axis", 0)
    x = np.asarray(x)
    if inp.type == "tensor(float)":
        x = x.astype(np.float32)
    fixed = inp.shape[b_in] if len(inp.shape) > b_in else None
    step = fixed if isinstance(fixed, int) and fixed > 0 else 1024
    n = x.shape[b_in]
    if n == step or (n < step and fixed != step):  # one run, as the file takes it
        return sess.run(None, {inp.name: x})[0]
    outs = []
    for k in range(0, n, step):
        part = np.take(x, np.arange(k, min(k + step, n)), axis=b_in)
        short = step - part.shape[b_in]
        if fixed == step and short:  # the last slice padded to the fixed batch
            pad = [(0, 0)] * part.ndim
            pad[b_in] = (0, short)
            part = np.pad(part, pad)
        y = sess.run(None, {inp.name: part})[0]
        outs.append(np.take(y, np.arange(min(step, n - k)), axis=b_out))
    return np.concatenate(outs, axis=b_out)

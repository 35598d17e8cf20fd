"""ONNX frontend: the reference equals ONNX Runtime on every input, value for value.

* ONNX Runtime's requantization (QLinearConv, QLinearMatMul, fused QDQ Conv/Gemm) against
  :func:`hlsgen.frontends.onnx.numerics.requant` over whole accumulator ranges;
* the zoo's digits models as ONNX (built from their weights) quantized by
  ``onnxruntime.quantization`` (static QDQ: float scales, per-channel, power-of-two);
* small ``onnx.helper`` graphs for every operator, including QONNX ``Quant``,
  ``BipolarQuant`` and ``Trunc`` (checked with ``onnx.reference`` plus the QONNX definitions);
* bad input: one line naming the node, exit status 2.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper

from hlsgen import convert
from hlsgen.frontends.onnx.io import run_onnxruntime
from hlsgen.frontends.onnx.loader import ort_kernels
from hlsgen.frontends.onnx.numerics import int_range, multiplier, requant
from tests.onnx_models import digits_nchw, float_from_zoo, init, make_model, po2_scales, quantize_qdq

RNG = np.random.default_rng(20261128)


def save(model, tmp_path, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, p)
    return str(p)


def check_exact(path, x, **kw):
    """Reference == ONNX Runtime, same element type and layout; returns the project."""
    proj = convert(path, hardware=kw.pop("hardware", False), **kw)
    y = proj.predict(x)
    yr = run_onnxruntime(path, x)
    assert y.dtype == yr.dtype and y.shape == yr.shape, (y.dtype, yr.dtype, y.shape, yr.shape)
    bad = np.count_nonzero(y != yr)
    assert bad == 0, f"{bad} of {y.size} values differ from ONNX Runtime"
    return proj


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


# ---------------------------------------------------------------- requantization vs ONNX Runtime
def _sweep_inputs(lo, hi, k):
    """int8 rows a with a0 + 127 * (a1 + ... + ak) = every value in [lo, hi]."""
    acc = np.arange(lo, hi + 1, dtype=np.int64)
    t = np.clip(np.rint(acc / 127), -128 * k, 127 * k).astype(np.int64)
    a0 = acc - 127 * t
    assert np.all((a0 >= -128) & (a0 <= 127))
    rest = np.zeros((len(acc), k), dtype=np.int64)
    left = t.copy()
    for j in range(k):
        rest[:, j] = np.clip(left, -128, 127)
        left -= rest[:, j]
    assert np.all(left == 0)
    return np.concatenate([a0[:, None], rest], axis=1).astype(np.int8), acc


@pytest.mark.parametrize("kind", ["QLinearMatMul", "QLinearConv", "QDQ-Gemm", "QDQ-Conv"])
@pytest.mark.parametrize("seed", range(3))
def test_requantization_equals_onnxruntime_over_the_accumulator_range(kind, seed):
    """Every accumulator value in +-65k: ONNX Runtime's integer kernel == numerics.requant."""
    rng = np.random.default_rng(seed)
    k = 4
    x, acc = _sweep_inputs(-128 - 127 * 128 * k, 127 + 127 * 127 * k, k)
    C = 3
    w = np.array([1] + [127] * k, dtype=np.int8)
    W = np.tile(w[:, None], (1, C))  # [K, C], same pattern in every column
    sx = np.float32(rng.uniform(0.002, 0.05))
    sw = rng.uniform(0.001, 0.02, size=C).astype(np.float32)
    # output scale such that acc * M spans the output range (and saturates at the ends)
    sy = np.float32(sx * sw[0] / rng.uniform(0.001, 0.006))
    # ONNX Runtime fuses a QDQ Conv only with uint8 activations in and out
    u8_in = kind == "QDQ-Conv"
    out_elem = TP.UINT8 if u8_in else TP.INT8  # fused only when input and output types agree
    qmin, qmax = int_range(out_elem)
    zy = int(rng.integers(qmin, qmax))
    zy_np = np.array(zy, dtype=np.int8 if out_elem == TP.INT8 else np.uint8)
    bias = rng.integers(-5000, 5000, size=C).astype(np.int32)
    K = k + 1
    if kind in ("QLinearMatMul", "QDQ-Gemm"):
        sw = np.full(C, sw[0], dtype=np.float32) if kind == "QLinearMatMul" else sw
        bias = np.zeros(C, np.int32) if kind == "QLinearMatMul" else bias
    in_elem = TP.UINT8 if u8_in else TP.INT8
    if u8_in:
        x = (x.astype(np.int64) + 128).astype(np.uint8)
    inits = [
        init("sx", sx),
        init("zx", np.uint8(128) if u8_in else np.int8(0)),
        init("sy", sy),
        init("zy", zy_np),
    ]
    if kind == "QLinearMatMul":
        inits += [init("W", W), init("sw", sw[0]), init("zw", np.int8(0))]
        nodes = [helper.make_node("QLinearMatMul", ["x", "sx", "zx", "W", "sw", "zw", "sy", "zy"], ["y"])]
        xin, xs, yshape = x, [None, K], [None, C]
    elif kind == "QLinearConv":
        inits += [init("W", W.T.reshape(C, K, 1, 1)), init("sw", sw), init("zw", np.zeros(C, np.int8)), init("B", bias)]
        nodes = [helper.make_node("QLinearConv", ["x", "sx", "zx", "W", "sw", "zw", "sy", "zy", "B"], ["y"])]
        xin, xs, yshape = x.reshape(-1, K, 1, 1), [None, K, 1, 1], [None, C, 1, 1]
    else:
        conv = kind == "QDQ-Conv"
        Wt = W.T.reshape(C, K, 1, 1) if conv else W.T  # Gemm with transB
        inits += [
            init("W", Wt),
            init("sw", sw),
            init("zw", np.zeros(C, np.int8)),
            init("B", bias),
            init("sb", (sx * sw).astype(np.float32)),
            init("zb", np.zeros(C, np.int32)),
        ]
        axis = 0
        nodes = [
            helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["xf"]),
            helper.make_node("DequantizeLinear", ["W", "sw", "zw"], ["wf"], axis=axis),
            helper.make_node("DequantizeLinear", ["B", "sb", "zb"], ["bf"], axis=0),
            helper.make_node("Conv" if conv else "Gemm", ["xf", "wf", "bf"], ["yf"], **({} if conv else {"transB": 1})),
            helper.make_node("QuantizeLinear", ["yf", "sy", "zy"], ["y"]),
        ]
        xin = x.reshape(-1, K, 1, 1) if conv else x
        xs = [None, K, 1, 1] if conv else [None, K]
        yshape = [None, C, 1, 1] if conv else [None, C]
    m = make_model(nodes, [vi("x", in_elem, xs)], [vi("y", out_elem, yshape)], inits, opset=13)
    if kind.startswith("QDQ"):
        kernels = set(ort_kernels(m, "probe").values())
        assert kernels & {"QLinearConv", "QGemm"}, kernels  # ONNX Runtime fused it
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    y = ort.InferenceSession(m.SerializeToString(), so).run(None, {"x": xin})[0].reshape(len(acc), C)
    full = acc[:, None] + (bias[None, :] if kind in ("QLinearConv", "QDQ-Conv", "QDQ-Gemm") else 0)
    want = requant(full, multiplier(sx, sw, sy)[None, :], zy, qmin, qmax)
    assert np.array_equal(y.astype(np.int64), want), int(np.count_nonzero(y != want))


# ---------------------------------------------------------------- the zoo as ONNX, quantized by ONNX Runtime
ZOO_QDQ = [
    ("mlp_tiny", "float"),
    ("mlp_tiny", "po2-per-channel"),
    ("cnn_small", "float"),
    ("cnn_small", "float-per-channel"),
    ("cnn_small", "po2"),
    ("cnn_dw", "po2"),
]


def zoo_qdq(name, variant, path):
    m = float_from_zoo(name)
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][1:]
    xtr, xte = digits_nchw(shape)
    quantize_qdq(m, xtr[:200], path, per_channel="per-channel" in variant)
    if variant.startswith("po2"):
        onnx.save(po2_scales(onnx.load(path)), path)
    return str(path), xte


@pytest.mark.parametrize("name,variant", ZOO_QDQ)
def test_zoo_qdq_equals_onnxruntime_on_every_heldout_image(name, variant, tmp_path):
    from hlsgen.zoo.build import digits

    path, xte = zoo_qdq(name, variant, tmp_path / f"{name}.onnx")
    proj = check_exact(path, xte)
    # and on inputs far outside the calibration range (saturation on every layer)
    check_exact(path, (RNG.uniform(-4, 36, size=(256,) + xte.shape[1:])).astype(np.float32))
    acc = float(np.mean(proj.predict(xte).argmax(1) == digits()[3]))
    assert acc > 0.9, acc
    assert proj.engine == "streaming_cnn"


@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("name,variant", [("cnn_small", "float"), ("mlp_tiny", "po2-per-channel")])
def test_zoo_qdq_through_the_cnn_engine(name, variant, tmp_path):
    """C simulation (ap, ac) and RTL (bubbles, back-pressure) equal the reference on all 450 digits."""
    from hlsgen.backends.hls import csim
    from hlsgen.engines.cnn.flow import rtl_check

    path, xte = zoo_qdq(name, variant, tmp_path / f"{name}.onnx")
    proj = convert(path, tmp_path / "out")
    x = proj.quantize_input(xte)
    expected = proj.predict_int(x).reshape(len(x), -1)
    hw = proj.hardware
    for flavour in ("ap", "ac"):
        y = csim({"top": hw["hls_top"]}, tmp_path / "out" / "hls", x, tmp_path / "csim", flavour)
        assert np.array_equal(y, expected)
    res = rtl_check(
        proj.graph, proj.plan, hw, tmp_path / "out" / "rtl", x, tmp_path / "work", p_bubble=0.2, p_stall=0.3
    )
    assert res["ok"], {k: res[k] for k in ("mismatches", "bad_tlast")}
    # and the hardware's words, read back in ONNX layout, are ONNX Runtime's outputs
    from hlsgen.frontends.onnx import output_to_onnx

    assert np.array_equal(output_to_onnx(proj.graph, expected), run_onnxruntime(path, xte))

"""IR validation, lossless JSON, and the integer reference against naive float loops.

The naive implementations here share no code with hlsgen.reference: plain Python
loops over float64 values (exact, since every value here is a small dyadic number).
"""

from __future__ import annotations

import numpy as np
import pytest

from hlsgen.fixed import FixedType
from hlsgen.ir import LSTM, Activation, Add, Conv, Dense, Graph, Input, IRError, Pool, Reshape, StepFunction, Weight
from hlsgen.reference.execute import predict, predict_int, trace

RNG = np.random.default_rng(7)


def rand_weight(shape, bits=6, frac=4, density=0.7):
    raw = RNG.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape)
    raw = raw * (RNG.random(shape) < density)
    return Weight(raw, FixedType(bits, bits - frac))


def relu_step(t_in: FixedType, levels=8, frac=2):
    """A monotone step function: a hand-made quantized relu-like table."""
    breaks = np.sort(RNG.choice(np.arange(t_in.min_raw + 1, t_in.max_raw), size=levels - 1, replace=False))
    values = np.arange(levels)
    return StepFunction(t_in, FixedType(8, 8 - frac, False), breaks[None], values[None], "test")


# ---------------------------------------------------------------- naive formulations
def naive_conv2d(x, k, b, stride, padding, depthwise):
    n, h, w, c = x.shape
    kh, kw = k.shape[:2]
    if padding == "same":
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
        ph = max((oh - 1) * stride[0] + kh - h, 0)
        pw = max((ow - 1) * stride[1] + kw - w, 0)
        top, left = ph // 2, pw // 2
    else:
        oh, ow = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
        top = left = 0
    cout = k.shape[2] * k.shape[3] if depthwise else k.shape[3]
    out = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            for di in range(kh):
                for dj in range(kw):
                    r, s = i * stride[0] + di - top, j * stride[1] + dj - left
                    if not (0 <= r < h and 0 <= s < w):
                        continue
                    if depthwise:
                        for ci in range(c):
                            for m in range(k.shape[3]):
                                out[:, i, j, ci * k.shape[3] + m] += x[:, r, s, ci] * k[di, dj, ci, m]
                    else:
                        out[:, i, j, :] += x[:, r, s, :] @ k[di, dj]
    return out + (b if b is not None else 0)


def naive_pool(x, size, mode):
    n, h, w, c = x.shape
    oh, ow = (h - size) // size + 1, (w - size) // size + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            win = x[:, i * size : (i + 1) * size, j * size : (j + 1) * size, :]
            out[:, i, j] = win.max(axis=(1, 2)) if mode == "max" else win.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [(1, 1), (2, 1), (2, 2)])
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_matches_naive(padding, stride, depthwise):
    tin = FixedType(6, 2, True)
    k = rand_weight((3, 2, 3, 2 if depthwise else 4))
    b = rand_weight((6 if depthwise else 4,), bits=8, frac=3, density=1.0)
    g = Graph(
        [
            Input("x", [], shape=(7, 6, 3), type=tin),
            Conv("c", ["x"], kernel=k, bias=b, strides=stride, padding=padding, depthwise=depthwise),
        ]
    )
    xr = RNG.integers(tin.min_raw, tin.max_raw + 1, size=(5, 7, 6, 3))
    want = naive_conv2d(tin.to_float(xr), k.values, b.values, stride, padding, depthwise)
    assert np.array_equal(predict(g, tin.to_float(xr)), want)


def test_conv1d_dense_pool_add_reshape_match_naive():
    tin = FixedType(5, 1, True)
    k1 = rand_weight((3, 2, 4))
    kd = rand_weight((4, 4))
    g = Graph(
        [
            Input("x", [], shape=(9, 2), type=tin),
            Conv("c1", ["x"], kernel=k1, strides=(1,), padding="valid"),
            Dense("d", ["c1"], kernel=kd),  # acts on the last axis
            Add("a", ["c1", "d"]),
            Reshape("r", ["a"], shape=(7, 2, 2)),
            Pool("p", ["r"], mode="max", pool_size=(2, 2), strides=(2, 2)),
            Pool("ga", ["p"], mode="avg", global_=False, pool_size=(1, 1), strides=(1, 1)),
            Reshape("f", ["ga"], shape=(6,)),
        ]
    )
    xr = RNG.integers(tin.min_raw, tin.max_raw + 1, size=(4, 9, 2))
    x = tin.to_float(xr)
    c1 = np.stack([sum(x[:, t + d, :] @ k1.values[d] for d in range(3)) for t in range(7)], axis=1)
    a = c1 + c1 @ kd.values
    p = naive_pool(a.reshape(4, 7, 2, 2), 2, "max")
    assert np.array_equal(predict(g, x), p.reshape(4, 6))


def test_average_pool_exact_and_non_power_of_two_refused():
    tin = FixedType(6, 3, True)
    g = Graph(
        [
            Input("x", [], shape=(4, 4, 2), type=tin),
            Pool("p", ["x"], mode="avg", pool_size=(2, 2), strides=(2, 2)),
            Pool("g", ["p"], mode="avg", global_=True),
        ]
    )
    xr = RNG.integers(tin.min_raw, tin.max_raw + 1, size=(3, 4, 4, 2))
    x = tin.to_float(xr)
    assert np.array_equal(predict(g, x), naive_pool(x, 2, "avg").mean(axis=(1, 2)))
    with pytest.raises(IRError, match="power-of-two"):
        Graph([Input("x", [], shape=(3, 3, 1), type=tin), Pool("g", ["x"], mode="avg", global_=True)])


def test_requant_and_step_activations():
    tin = FixedType(10, 4, True)
    step = relu_step(tin)
    tq = FixedType(5, 2, True, "RND_CONV", "SAT")
    g = Graph(
        [
            Input("x", [], shape=(6,), type=tin),
            Activation("q", ["x"], function="requant", type=tq),
            Activation("s", ["x"], function="step", step=step),
            Activation("r", ["x"], function="relu"),
        ],
        output="q",
    )
    xr = RNG.integers(tin.min_raw, tin.max_raw + 1, size=(50, 6))
    tr = trace(g, xr)
    assert np.array_equal(tr["q"], tq.quantize(tin.to_float(xr)))  # float path of the same type
    want = np.array([[np.sum(step.breaks[0] <= v) for v in row] for row in xr])
    assert np.array_equal(tr["s"], want)
    assert np.array_equal(tr["r"], np.maximum(xr, 0))


def naive_lstm(x, node: LSTM):
    """Float64 loops of the LSTM contract, with tables applied by linear search."""

    def table(fn, v_real):
        raw = v_real * 2.0**fn.in_type.frac
        assert np.all(raw == np.round(raw))
        k = np.array([[np.sum(fn.breaks[0] <= r) for r in row] for row in raw])
        return fn.values[0][k] * 2.0**-fn.out_type.frac

    u = node.units
    st = node.state_type
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    for t in range(x.shape[1]):
        hq = st.to_float(st.quantize(h))
        cq = st.to_float(st.quantize(c))
        z = x[:, t] @ node.kernel.values + hq @ node.recurrent.values + node.bias.values
        i, f, g, o = (z[:, k * u : (k + 1) * u] for k in range(4))
        i, f, o = table(node.gate_fn, i), table(node.gate_fn, f), table(node.gate_fn, o)
        g = table(node.cand_fn, g)
        c = f * cq + i * g
        h = o * table(node.cell_fn, c)
    return h


def _table(t: FixedType, f, out: FixedType, scale: int):
    v = np.arange(t.min_raw, t.max_raw + 1)
    y = np.round(f(t.to_float(v)) * scale).astype(np.int64)
    ch = np.nonzero(np.diff(y))[0] + 1
    return StepFunction(t, out, v[ch][None], np.concatenate([y[:1], y[ch]])[None])


def make_lstm_graph():
    """An LSTM with hand-made sigmoid/tanh tables on the exact types the IR derives."""
    from hlsgen.ir.nodes import lstm_c_spec, lstm_z_spec
    from hlsgen.ir.tensors import TensorSpec

    tin = FixedType(5, 1, False)
    u, feat = 5, 3
    k, r, b = rand_weight((feat, 4 * u)), rand_weight((u, 4 * u)), rand_weight((4 * u,), bits=6, frac=3)
    st = FixedType(8, 2, True, "RND_CONV", "SAT")
    z = lstm_z_spec("l", k, r, b, st, TensorSpec.of_type((4, feat), tin), 4)
    gate = _table(z.type, lambda v: 1 / (1 + np.exp(-v)), FixedType(6, 1, False), 16)
    cand = _table(z.type, np.tanh, FixedType(6, 2, True), 16)
    c = lstm_c_spec(gate, cand, st, u)
    cell = _table(c.type, np.tanh, FixedType(6, 2, True), 16)
    node = LSTM(
        "l", ["x"], units=u, kernel=k, recurrent=r, bias=b, state_type=st, gate_fn=gate, cand_fn=cand, cell_fn=cell
    )
    return tin, node


def test_lstm_matches_naive_and_roundtrips():
    tin, node = make_lstm_graph()
    g = Graph([Input("x", [], shape=(4, 3), type=tin), node])
    xr = RNG.integers(tin.min_raw, tin.max_raw + 1, size=(20, 4, 3))
    x = tin.to_float(xr)
    assert np.array_equal(predict(g, x), naive_lstm(x, node))
    g2 = Graph.from_json(g.to_json())
    assert g2.dumps() == g.dumps()
    assert np.array_equal(predict_int(g2, xr), predict_int(g, xr))


def test_json_roundtrip_is_lossless(tmp_path):
    tin = FixedType(6, 2, True, "RND_CONV", "SAT_SYM")
    k = rand_weight((3, 3, 2, 4), density=0.3)
    g = Graph(
        [
            Input("x", [], shape=(6, 6, 2), type=tin),
            Conv("c", ["x"], kernel=k, strides=(1, 1), padding="same"),
            Activation("s", ["c"], function="requant", type=FixedType(6, 3, False, "RND", "SAT"), relu=True),
            Pool("p", ["s"], mode="max", pool_size=(2, 2), strides=(2, 2)),
            Reshape("f", ["p"], shape=(36,)),
            Dense("d", ["f"], kernel=rand_weight((36, 5), density=0.1), bias=rand_weight((5,))),
        ],
        meta={"source": "test"},
    )
    g.save(tmp_path / "m.json")
    g2 = Graph.load(tmp_path / "m.json")
    assert g2.dumps() == g.dumps()
    assert g2["c"].kernel.density == pytest.approx(k.density)
    assert np.array_equal(g2["c"].kernel.mask, k.mask)
    xr = RNG.integers(tin.min_raw, tin.max_raw + 1, size=(8, 6, 6, 2))
    assert np.array_equal(predict_int(g2, xr), predict_int(g, xr))


def test_sparsity_properties():
    w = Weight(np.array([[1, 0, 0], [0, 0, 2]]), FixedType(4, 2))
    assert w.nnz == 2 and w.density == pytest.approx(2 / 6)
    assert w.density_per_axis(0).tolist() == pytest.approx([1 / 3, 1 / 3])
    assert w.density_per_axis(1).tolist() == pytest.approx([0.5, 0, 0.5])
    assert Weight(np.array([1, -1, 1]), FixedType(2, 2)).detect_kind() == "binary"
    assert Weight(np.array([1, 0, -1]), FixedType(2, 2)).detect_kind() == "ternary"
    assert Weight(np.array([4, -2, 1, 0]), FixedType(4, 4)).detect_kind() == "po2"
    assert Weight(np.array([3, 1]), FixedType(4, 4)).detect_kind() == "fixed"


def test_validation_errors():
    t = FixedType(6, 2)
    with pytest.raises(IRError, match="missing attribute"):
        Dense("d", ["x"])
    with pytest.raises(IRError, match="unknown attribute"):
        Dense("d", ["x"], kernel=rand_weight((2, 2)), bogus=1)
    with pytest.raises(IRError, match="bias shape"):
        Dense("d", ["x"], kernel=rand_weight((2, 3)), bias=rand_weight((2,)))
    with pytest.raises(IRError, match="padding"):
        Conv("c", ["x"], kernel=rand_weight((3, 3, 1, 1)), strides=(1, 1), padding="causal")
    with pytest.raises(IRError, match="expects 4"):
        Graph([Input("x", [], shape=(3,), type=t), Dense("d", ["x"], kernel=rand_weight((4, 2)))])
    with pytest.raises(IRError, match="not defined"):
        Graph([Input("x", [], shape=(3,), type=t), Dense("d", ["y"], kernel=rand_weight((3, 2)))])
    with pytest.raises(IRError, match="larger than the input"):
        Graph(
            [
                Input("x", [], shape=(2, 2, 1), type=t),
                Conv("c", ["x"], kernel=rand_weight((3, 3, 1, 1)), strides=(1, 1)),
            ]
        )
    with pytest.raises(ValueError, match="sorted"):
        StepFunction(t, t, np.array([[3, 1]]), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="do not fit"):
        Weight(np.array([100]), FixedType(4, 4))
    with pytest.raises(IRError, match="not an hlsgen IR"):
        Graph.from_json({"nodes": []})


def test_predict_rejects_wrong_shapes_and_values():
    t = FixedType(6, 2)
    g = Graph([Input("x", [], shape=(3,), type=t), Dense("d", ["x"], kernel=rand_weight((3, 2)))])
    with pytest.raises(ValueError, match="does not match the model input"):
        predict(g, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="outside"):
        predict_int(g, np.full((1, 3), 1000))
    with pytest.raises(ValueError, match="raw integers"):
        predict_int(g, np.zeros((1, 3)))

"""QKeras models through the LSTM engine: C simulation and RTL equal QKeras's own forward pass."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qkeras")

import qkeras as qk  # noqa: E402
import tensorflow as tf  # noqa: E402

import hlsgen  # noqa: E402
from hlsgen.backends.csim import csim  # noqa: E402
from hlsgen.backends.lstm_hls import write_hls  # noqa: E402
from hlsgen.backends.lstm_verilog import write_rtl  # noqa: E402
from hlsgen.engines.lstm import plan_lstm  # noqa: E402
from hlsgen.engines.lstm.flow import rtl_check  # noqa: E402
from hlsgen.engines.lstm.synthetic import random_inputs  # noqa: E402

L = tf.keras.layers

CASES = [
    # steps, features, units, weight bits, state quantizer, tanh, recurrent activation, bias, head, P, B
    (3, 4, 6, 5, "quantized_bits(8,1)", "quantized_tanh(6)", "hard_sigmoid", True, "dense+relu", 3, 2),
    (5, 2, 8, 8, "quantized_bits(10,2)", "quantized_tanh(8)", "quantized_sigmoid(8)", False, "dense", 4, 4),
    (2, 6, 3, 3, "quantized_bits(6,1)", "quantized_tanh(6)", "quantized_sigmoid(6)", True, None, 1, 4),
    (4, 3, 5, 6, "quantized_bits(8,2)", "quantized_tanh(6)", "quantized_sigmoid(6)", True, "sequences", 2, 4),
]


def build(steps, feats, units, wb, state, act, rec, bias, head, seed):
    tf.keras.utils.set_random_seed(seed)
    wq = qk.quantized_bits(wb, 0, alpha=1)
    ls = [
        L.InputLayer((steps, feats)),
        qk.QActivation("quantized_bits(5,1,keep_negative=False)"),
        qk.QLSTM(
            units,
            kernel_quantizer=wq,
            recurrent_quantizer=wq,
            bias_quantizer="quantized_bits(6,1,alpha=1)",
            state_quantizer=state,
            activation=act,
            recurrent_activation=rec,
            use_bias=bias,
            return_sequences=head == "sequences",  # the hidden state of every step is the output
        ),
    ]
    if head in ("dense", "dense+relu"):
        ls.append(
            qk.QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,2,alpha=1)")
        )
    if head == "dense+relu":
        ls.append(qk.QActivation("quantized_relu(6,2)"))
    model = tf.keras.Sequential(ls)
    # prune like a sparse model: half of the gate weights
    cell = model.layers[1].cell
    rng = np.random.default_rng(seed)
    for v in (cell.kernel, cell.recurrent_kernel):
        v.assign(v.numpy() * (rng.random(v.shape) < 0.5))
    return model


@pytest.mark.keras
@pytest.mark.gxx
@pytest.mark.parametrize("k", range(len(CASES)))
def test_qkeras_lstm_through_the_engine(k, tmp_path):
    steps, feats, units, wb, state, act, rec, bias, head, pe, b = CASES[k]
    model = build(steps, feats, units, wb, state, act, rec, bias, head, seed=100 + k)
    proj = hlsgen.convert(model)
    g = proj.graph
    plan = plan_lstm(g, pe=pe, index_bits=b)
    x = random_inputs(g, 96, seed=k)
    # QKeras's own forward pass on the same (already quantized) inputs, as raw integers
    yk = model.predict(g.input.type.to_float(x), verbose=0).reshape(len(x), -1)
    assert g.output_spec.type.width <= 24  # float32 holds every output exactly
    ref = proj.predict_int(x).reshape(len(x), -1)
    assert np.array_equal(g.output_spec.type.to_float(ref), yk)
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in ("ap", "ac"):
        assert np.array_equal(csim(hls, tmp_path / "hls", x, tmp_path / "w", flavour), ref), flavour
    if k in (0, 3):  # also in RTL, with bubbles and back-pressure
        rtl = write_rtl(plan, tmp_path / "rtl")
        res = rtl_check(g, plan, rtl, tmp_path / "rtl", x, tmp_path / "sim", seed=k)
        assert res["ok"], {key: v for key, v in res.items() if key not in ("mac", "ew", "head")}


GRU_CASES = [
    # steps, features, units, weight bits, state quantizer, tanh, recurrent activation, bias, head, P, E
    (3, 4, 6, 5, "quantized_bits(8,1)", "quantized_tanh(6)", "hard_sigmoid", True, "dense+relu", 3, None),
    (4, 3, 5, 6, "quantized_bits(10,2)", "quantized_tanh(8)", "quantized_sigmoid(6)", True, "sequences", 4, 2),
    (2, 5, 4, 4, "quantized_bits(6,1)", "quantized_tanh(6)", "quantized_sigmoid(8)", False, "dense", 2, None),
]


def build_gru(steps, feats, units, wb, state, act, rec, bias, head, seed, reset_after=True):
    from hlsgen.frontends.keras.loader import qkeras_compat

    qkeras_compat()  # QGRU on TF 2.15 needs the shims the loader installs
    tf.keras.utils.set_random_seed(seed)
    wq = qk.quantized_bits(wb, 0, alpha=1)
    ls = [
        L.InputLayer((steps, feats)),
        qk.QActivation("quantized_bits(5,1,keep_negative=False)"),
        qk.QGRU(
            units,
            kernel_quantizer=wq,
            recurrent_quantizer=wq,
            bias_quantizer="quantized_bits(6,1,alpha=1)",
            state_quantizer=state,
            activation=act,
            recurrent_activation=rec,
            use_bias=bias,
            reset_after=reset_after,
            return_sequences=head == "sequences",
            name="gru",
        ),
    ]
    if head in ("dense", "dense+relu"):
        ls.append(
            qk.QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,2,alpha=1)")
        )
    if head == "dense+relu":
        ls.append(qk.QActivation("quantized_relu(6,2)"))
    model = tf.keras.Sequential(ls)
    cell = model.layers[1].cell
    rng = np.random.default_rng(seed)
    for v in [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if bias else []):
        if v is cell.bias:  # Keras initializes the biases to zero: give them values to carry
            v.assign(rng.uniform(-0.5, 0.5, size=v.shape))
        else:
            v.assign(v.numpy() * (rng.random(v.shape) < 0.5))
    return model


@pytest.mark.keras
@pytest.mark.gxx
@pytest.mark.rtl
@pytest.mark.parametrize("k,reset_after", [(0, True), (1, True), (2, True), (0, False), (1, False)])
def test_qkeras_gru_through_the_engine(k, reset_after, tmp_path):
    """QGRU on the PE array, reset_after=True (rows [z; r; h_x; h_h]) and False (two passes per
    step: the gates, then the candidate from r * h_q); C simulation (ap, ac) and (two of the
    cases) RTL with bubbles and back-pressure equal QKeras's own forward pass.  The two-pass GRU
    runs in RTL in the stacked test below, after a QActivation."""
    steps, feats, units, wb, state, act, rec, bias, head, pe, e = GRU_CASES[k]
    model = build_gru(steps, feats, units, wb, state, act, rec, bias, head, seed=200 + k, reset_after=reset_after)
    proj = hlsgen.convert(model)
    g = proj.graph
    assert g.nodes[1].op == "GRU" and g.nodes[1].reset_after == reset_after
    plan = plan_lstm(g, pe=pe, ew_lanes=e)
    assert plan.kind == "gru"
    assert [p.gru_pass for p in plan.layers] == ([0] if reset_after else [1, 2])
    x = random_inputs(g, 64, seed=k)
    yk = model.predict(g.input.type.to_float(x), verbose=0).reshape(len(x), -1)
    assert g.output_spec.type.width <= 24  # float32 holds every output exactly
    ref = proj.predict_int(x).reshape(len(x), -1)
    assert np.array_equal(g.output_spec.type.to_float(ref), yk)
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in ("ap", "ac"):
        assert np.array_equal(csim(hls, tmp_path / "hls", x, tmp_path / "w", flavour), ref), flavour
    if k < 2 and reset_after:  # also in RTL, with bubbles and back-pressure (reset_after=False: below)
        rtl = write_rtl(plan, tmp_path / "rtl")
        res = rtl_check(g, plan, rtl, tmp_path / "rtl", x[:24], tmp_path / "sim", seed=k)
        assert res["ok"], {key: v for key, v in res.items() if key not in ("mac", "ew", "head")}


@pytest.mark.keras
@pytest.mark.gxx
@pytest.mark.rtl
def _stacked(between: str | None = None, reset_after: bool = True):
    from hlsgen.frontends.keras.loader import qkeras_compat

    qkeras_compat()
    tf.keras.utils.set_random_seed(300)
    wq = qk.quantized_bits(6, 0, alpha=1)
    common = dict(
        kernel_quantizer=wq,
        recurrent_quantizer=wq,
        bias_quantizer="quantized_bits(6,1,alpha=1)",
        state_quantizer="quantized_bits(8,1)",
        activation="quantized_tanh(6)",
        recurrent_activation="quantized_sigmoid(6)",
    )
    ls = [
        L.InputLayer((3, 4)),
        qk.QActivation("quantized_bits(5,1,keep_negative=False)"),
        qk.QLSTM(6, return_sequences=True, name="first", **common),
    ]
    if between:
        ls.append(qk.QActivation(between, name="between"))
    ls += [
        qk.QGRU(5, reset_after=reset_after, name="second", **common),
        qk.QDense(3, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,2,alpha=1)"),
    ]
    model = tf.keras.Sequential(ls)
    rng = np.random.default_rng(300)
    for name in ("first", "second"):
        cell = model.get_layer(name).cell
        for v in (cell.kernel, cell.recurrent_kernel):
            v.assign(v.numpy() * (rng.random(v.shape) < 0.5))
        cell.bias.assign(rng.uniform(-0.5, 0.5, size=cell.bias.shape))
    return model


@pytest.mark.keras
@pytest.mark.gxx
@pytest.mark.rtl
@pytest.mark.parametrize("between,reset_after", [(None, True), ("quantized_bits(8,1)", False)])
def test_qkeras_stacked_lstm_gru_on_one_array(between, reset_after, tmp_path):
    """QLSTM(return_sequences) [-> QActivation] -> QGRU -> QDense on one PE array (the GRU with
    reset_after=False: its two passes): C simulation (ap, ac) and RTL with bubbles and
    back-pressure equal QKeras's own forward pass, every layer's MAC and element-wise phases as
    the cycle model says.  The QActivation arrives as a step function on the first layer's
    exact output; on the values that output can take it is a requantization, which the engine
    applies.  One that is not (a hard sigmoid) is refused by name."""
    model = _stacked(between, reset_after=reset_after)
    proj = hlsgen.convert(model)
    g = proj.graph
    plan = plan_lstm(g, pe=4)
    assert [(p.kind, p.gru_pass) for p in plan.layers] == [("lstm", 0)] + (
        [("gru", 0)] if reset_after else [("gru", 1), ("gru", 2)]
    )
    if between:
        assert g["between"].function == "step" and plan.between[0] is not None and plan.between[1] is not None
    x = random_inputs(g, 48, seed=5)
    yk = model.predict(g.input.type.to_float(x), verbose=0).reshape(len(x), -1)
    assert g.output_spec.type.width <= 24
    ref = proj.predict_int(x).reshape(len(x), -1)
    assert np.array_equal(g.output_spec.type.to_float(ref), yk)
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in ("ap", "ac"):
        assert np.array_equal(csim(hls, tmp_path / "hls", x, tmp_path / "w", flavour), ref), flavour
    rtl = write_rtl(plan, tmp_path / "rtl")
    res = rtl_check(g, plan, rtl, tmp_path / "rtl", x[:16], tmp_path / "sim", seed=3)
    assert res["ok"] and res["steps"] == 16 * 3, {k: v for k, v in res.items() if k not in ("mac", "ew", "head")}
    if not reset_after:
        return
    stepped = hlsgen.convert(_stacked("quantized_sigmoid(6)")).graph
    with pytest.raises(hlsgen.HlsgenError, match="layer 'between'.*between two recurrent layers is not a requant"):
        plan_lstm(stepped)


@pytest.mark.keras
def test_prune_qgru_balances_each_pass():
    """`hlsgen prune` on a QGRU with reset_after=False balances the gates pass and the candidate
    pass on their own: the mask keeps as many weights in every PE of each pass, and the plan of
    the pruned model has each pass's busiest PE at most at that count."""
    from hlsgen.compress.keras_prune import prune_keras_model

    model = build_gru(3, 4, 8, 8, "quantized_bits(8,1)", "quantized_tanh(6)", "hard_sigmoid", True, "dense", 7, False)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (64, 3, 4)).astype(np.float32), rng.integers(0, 4, 64)
    res = prune_keras_model(model, 4, 0.25, "lba", 0, x, y, x, y)
    assert [(n, b["imbalance"]) for n, b in res["masks"]] == [("gru", 1.0)]
    plan = plan_lstm(hlsgen.convert(model).graph, pe=4)
    assert [p.gru_pass for p in plan.layers] == [1, 2]
    kept = {1: round(0.25 * 12 * 16 / 4), 2: round(0.25 * 12 * 8 / 4)}  # per PE, per pass
    for lp in plan.layers:
        assert lp.busiest_entries <= kept[lp.gru_pass] + lp.fillers, lp.gru_pass

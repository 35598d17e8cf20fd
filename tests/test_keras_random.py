"""Randomized QKeras models against hlsgen's reference (hypothesis): equal bit for bit."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlsgen import HlsgenError, convert

from .keras_helpers import assert_exact

pytestmark = pytest.mark.keras
tf = pytest.importorskip("tensorflow")
qk = pytest.importorskip("qkeras")
L = tf.keras.layers

#: `make regress` multiplies the number of random models (HLSGEN_HYPOTHESIS_SCALE=10)
SCALE = int(os.environ.get("HLSGEN_HYPOTHESIS_SCALE", "1"))
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@st.composite
def weight_quantizer(draw):
    """A readable spec; :func:`wq_object` builds the quantizer."""
    kind = draw(st.sampled_from(["bits", "bits", "bits", "po2_alpha", "binary", "ternary", "po2"]))
    if kind == "bits":
        return ("bits", draw(st.integers(2, 10)), draw(st.integers(0, 2)), draw(st.sampled_from([None, 1])))
    if kind == "po2_alpha":
        return ("bits", draw(st.integers(3, 8)), 0, "auto_po2")
    if kind == "po2":
        return ("po2", draw(st.integers(3, 6)), draw(st.integers(1, 2)))
    return (kind,)


def wq_object(spec):
    kind = spec[0]
    if kind == "bits":
        return qk.quantized_bits(spec[1], spec[2], alpha=spec[3])
    if kind == "po2":
        return qk.quantized_po2(spec[1], spec[2])
    return qk.binary(alpha=1) if kind == "binary" else qk.ternary(alpha=1)


@st.composite
def act_quantizer(draw):
    kind = draw(st.sampled_from(["relu", "bits", "tanh", "sigmoid", "relu_ulimit"]))
    b = draw(st.integers(2, 8))
    if kind == "relu":
        return f"quantized_relu({b},{draw(st.integers(0, 3))})"
    if kind == "relu_ulimit":
        return f"quantized_relu({b},{draw(st.integers(0, 3))},negative_slope=0.25)"
    if kind == "bits":
        return f"quantized_bits({b},{draw(st.integers(0, 3))},keep_negative={draw(st.booleans())})"
    if kind == "tanh":
        return f"quantized_tanh({b})"
    return f"quantized_sigmoid({b})"


@st.composite
def input_quantizer(draw):
    b = draw(st.integers(2, 8))
    i = draw(st.integers(0, 3))
    if draw(st.booleans()):
        return f"quantized_bits({b},{i},keep_negative=False)"
    return f"quantized_bits({max(b, 2)},{i})"


def _sparsify(model, rng, density):
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            ws[0] = ws[0] * (rng.random(ws[0].shape) < density)
            # non-zero biases so that their quantizers matter
            if len(ws) > 1:
                ws[1] = rng.normal(0, 0.5, ws[1].shape).astype(ws[1].dtype)
            layer.set_weights(ws)


@settings(max_examples=60 * SCALE, **SETTINGS)
@given(
    n_in=st.integers(1, 24),
    layers=st.lists(st.tuples(st.integers(1, 16), weight_quantizer(), act_quantizer()), min_size=1, max_size=3),
    inq=input_quantizer(),
    bias_bits=st.integers(2, 10),
    density=st.sampled_from([1.0, 0.5, 0.1]),
    seed=st.integers(0, 2**16),
)
def test_random_dense(n_in, layers, inq, bias_bits, density, seed):
    tf.keras.utils.set_random_seed(seed)
    ls = [L.InputLayer((n_in,)), qk.QActivation(inq)]
    for units, wq, aq in layers:
        ls.append(
            qk.QDense(units, kernel_quantizer=wq_object(wq), bias_quantizer=qk.quantized_bits(bias_bits, 2, alpha=1))
        )
        ls.append(qk.QActivation(aq))
    model = tf.keras.Sequential(ls)
    _sparsify(model, np.random.default_rng(seed), density)
    assert_exact(model, n=64, label="random QDense", seed=seed)


@settings(max_examples=40 * SCALE, **SETTINGS)
@given(
    h=st.integers(3, 8),
    w=st.integers(3, 8),
    c=st.integers(1, 3),
    filters=st.integers(1, 5),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same"]),
    depthwise=st.booleans(),
    bn=st.booleans(),
    pool=st.sampled_from([None, "max", "avg", "gmax", "gavg"]),
    wq=weight_quantizer(),
    aq=act_quantizer(),
    inq=input_quantizer(),
    seed=st.integers(0, 2**16),
)
def test_random_conv(h, w, c, filters, k, stride, padding, depthwise, bn, pool, wq, aq, inq, seed):
    tf.keras.utils.set_random_seed(seed)
    k = min(k, h, w)
    bq = "quantized_bits(8,2,alpha=1)"
    ls = [L.InputLayer((h, w, c)), qk.QActivation(inq)]
    if depthwise:
        ls.append(
            qk.QDepthwiseConv2D(
                k, strides=stride, padding=padding, depthwise_quantizer=wq_object(wq), bias_quantizer=bq
            )
        )
    else:
        ls.append(
            qk.QConv2D(filters, k, strides=stride, padding=padding, kernel_quantizer=wq_object(wq), bias_quantizer=bq)
        )
    if bn:
        ls.append(L.BatchNormalization())
    ls.append(qk.QActivation(aq))
    if pool in ("max", "avg"):
        ls.append((L.MaxPooling2D if pool == "max" else L.AveragePooling2D)(1 if min(h, w) < 4 else 2))
    elif pool == "gmax":
        ls.append(L.GlobalMaxPooling2D())
    elif pool == "gavg":
        ls.append(L.GlobalAveragePooling2D())
    ls += [L.Flatten(), qk.QDense(3, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer=bq)]
    try:
        model = tf.keras.Sequential(ls)
    except ValueError:
        return  # the shapes do not fit (Keras says so); nothing to compare
    rng = np.random.default_rng(seed)
    _sparsify(model, rng, 0.7)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights(
                [rng.normal(1, 0.7, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), rng.uniform(0.2, 2, n)]
            )
    if pool == "gavg":
        oh, ow = model.layers[-3].input_shape[1:3]
        if (oh * ow) & (oh * ow - 1):
            # a mean over a non-power-of-two area is not a fixed-point value: refused, clearly
            with pytest.raises(HlsgenError, match="power-of-two pool area"):
                convert(model)
            return
    assert_exact(model, n=48, label="random QConv2D", seed=seed)


@settings(max_examples=25 * SCALE, **SETTINGS)
@given(
    steps=st.integers(1, 6),
    features=st.integers(1, 6),
    units=st.integers(1, 8),
    wbits=st.integers(3, 8),
    state=st.tuples(st.integers(6, 10), st.integers(1, 2)),
    act=st.sampled_from(["quantized_tanh(6)", "quantized_tanh(8)"]),
    rec=st.sampled_from(["hard_sigmoid", "quantized_sigmoid(6)", "quantized_sigmoid(8)"]),
    ret_seq=st.booleans(),
    density=st.sampled_from([1.0, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_random_lstm(steps, features, units, wbits, state, act, rec, ret_seq, density, seed):
    tf.keras.utils.set_random_seed(seed)
    wq = qk.quantized_bits(wbits, 0, alpha=1)
    ls = [
        L.InputLayer((steps, features)),
        qk.QActivation("quantized_bits(5,1,keep_negative=False)"),
        qk.QLSTM(
            units,
            kernel_quantizer=wq,
            recurrent_quantizer=wq,
            bias_quantizer="quantized_bits(6,1,alpha=1)",
            state_quantizer=f"quantized_bits({state[0]},{state[1]})",
            activation=act,
            recurrent_activation=rec,
            return_sequences=ret_seq,
        ),
    ]
    model = tf.keras.Sequential(ls)
    _sparsify(model, np.random.default_rng(seed), density)
    assert_exact(model, n=48, label="random QLSTM", seed=seed)


@settings(max_examples=25 * SCALE, **SETTINGS)
@given(
    steps=st.integers(1, 6),
    features=st.integers(1, 6),
    units=st.integers(1, 8),
    wbits=st.integers(3, 8),
    state=st.tuples(st.integers(6, 10), st.integers(1, 2)),
    act=st.sampled_from(["quantized_tanh(6)", "quantized_tanh(8)"]),
    rec=st.sampled_from(["hard_sigmoid", "quantized_sigmoid(6)", "quantized_sigmoid(8)"]),
    reset_after=st.booleans(),
    ret_seq=st.booleans(),
    density=st.sampled_from([1.0, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_random_gru(steps, features, units, wbits, state, act, rec, reset_after, ret_seq, density, seed):
    tf.keras.utils.set_random_seed(seed)
    wq = qk.quantized_bits(wbits, 0, alpha=1)
    ls = [
        L.InputLayer((steps, features)),
        qk.QActivation("quantized_bits(5,1,keep_negative=False)"),
        qk.QGRU(
            units,
            kernel_quantizer=wq,
            recurrent_quantizer=wq,
            bias_quantizer="quantized_bits(6,1,alpha=1)",
            state_quantizer=f"quantized_bits({state[0]},{state[1]})",
            activation=act,
            recurrent_activation=rec,
            reset_after=reset_after,
            return_sequences=ret_seq,
        ),
    ]
    model = tf.keras.Sequential(ls)
    rng = np.random.default_rng(seed)
    _sparsify(model, rng, density)
    gru = model.layers[-1]
    ws = gru.get_weights()
    ws[-1] = rng.normal(0, 0.5, ws[-1].shape)  # non-zero biases, both halves when reset_after
    gru.set_weights(ws)
    assert_exact(model, n=48, label="random QGRU", seed=seed)

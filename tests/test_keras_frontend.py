"""QKeras / Keras frontend: every supported quantizer exact, refusals named, pruning, config."""

from __future__ import annotations

import numpy as np
import pytest

from hlsgen import HlsgenError, convert

from .keras_helpers import assert_exact, grid_inputs

pytestmark = pytest.mark.keras
tf = pytest.importorskip("tensorflow")
qk = pytest.importorskip("qkeras")
L = tf.keras.layers


def dense_model(kq, act=None, n_in=12, units=6, seed=0, inq="quantized_bits(6,2)"):
    tf.keras.utils.set_random_seed(seed)
    ls = [
        L.InputLayer((n_in,)),
        qk.QActivation(inq),
        qk.QDense(units, kernel_quantizer=kq, bias_quantizer=qk.quantized_bits(8, 3, alpha=1)),
    ]
    if act is not None:
        ls.append(qk.QActivation(act))
    m = tf.keras.Sequential(ls)
    ws = m.layers[1].get_weights()
    ws[1] = np.random.default_rng(seed).normal(0, 0.5, ws[1].shape)
    m.layers[1].set_weights(ws)
    return m


@pytest.mark.parametrize(
    "kq, kind",
    [
        (qk.quantized_bits(6, 0, alpha=None), "fixed"),
        (qk.quantized_bits(6, 0, alpha=1), "fixed"),
        (qk.quantized_bits(8, 2, symmetric=1, alpha=1), "fixed"),
        (qk.quantized_bits(4, 0, alpha="auto_po2"), "fixed"),  # per-channel power-of-two scales
        (qk.binary(alpha=1), "binary"),
        (qk.ternary(alpha=1), "ternary"),
        (qk.quantized_po2(4, 1), "po2"),
    ],
    ids=["bits", "bits_alpha1", "bits_symmetric", "auto_po2", "binary", "ternary", "po2"],
)
def test_weight_quantizers_exact(kq, kind):
    proj, _ = assert_exact(dense_model(kq), n=128, label="weight quantizer")
    w = proj.graph.nodes[1].kernel
    assert w.kind == kind or (kind == "fixed" and w.kind in ("fixed", "po2"))


@pytest.mark.parametrize(
    "act",
    [
        "quantized_relu(4,1)",
        "quantized_relu(6,2,negative_slope=0.25)",
        "quantized_bits(5,2)",
        "quantized_bits(6,1,keep_negative=False)",
        "quantized_tanh(6)",
        "quantized_sigmoid(6)",
        "hard_sigmoid",
        "binary_tanh",
        "binary_sigmoid",
        "quantized_relu(4,1,use_sigmoid=1)",
        "ternary()",
        "binary()",
    ],
)
def test_activation_quantizers_exact(act):
    assert_exact(dense_model(qk.quantized_bits(6, 0, alpha=1), act), n=256, label="activation quantizer")


def test_activation_inside_layer_and_plain_relu():
    tf.keras.utils.set_random_seed(3)
    m = tf.keras.Sequential(
        [
            L.InputLayer((10,)),
            qk.QActivation("quantized_bits(6,2)"),
            qk.QDense(
                8,
                kernel_quantizer="quantized_bits(6,0,alpha=1)",
                bias_quantizer="quantized_bits(6,2,alpha=1)",
                activation="quantized_relu(4,2)",
            ),
            qk.QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", activation="relu", use_bias=False),
        ]
    )
    proj, _ = assert_exact(m, n=200, label="layer activation")
    assert [n.op for n in proj.graph][-1] == "Activation"


def test_residual_add_and_batchnorm_functional():
    tf.keras.utils.set_random_seed(4)
    x = L.Input((6, 6, 2))
    q = qk.QActivation("quantized_bits(5,1)")(x)
    a = qk.QConv2D(
        2,
        3,
        padding="same",
        kernel_quantizer="quantized_bits(5,0,alpha=1)",
        bias_quantizer="quantized_bits(5,1,alpha=1)",
    )(q)
    a = qk.QBatchNormalization()(a)
    a = qk.QActivation("quantized_relu(5,1)")(a)
    s = L.Add()([a, q])
    s = qk.QActivation("quantized_bits(6,2)")(s)
    y = qk.QDense(3, kernel_quantizer="quantized_bits(5,0,alpha=1)", use_bias=False)(L.Flatten()(s))
    m = tf.keras.Model(x, y)
    bn = [lyr for lyr in m.layers if "batch" in lyr.name][0]
    bn.set_weights([np.array([1.5, -0.8]), np.array([0.1, -0.2]), np.array([0.05, 0.3]), np.array([0.7, 1.9])])
    proj, _ = assert_exact(m, n=100, label="residual + batch-norm")
    ops = [n.op for n in proj.graph]
    assert "Add" in ops


def test_alpha_auto_refused_with_the_option_named():
    with pytest.raises(HlsgenError) as e:
        convert(dense_model(qk.quantized_bits(4, 0, alpha="auto")))
    msg = str(e.value)
    assert "q_dense" in msg and "alpha='auto_po2'" in msg and "\n" not in msg


def test_alpha_auto_accepted_as_stated_approximation():
    m = dense_model(qk.quantized_bits(4, 0, alpha="auto"))
    cfg = {
        "Model": {"Approximate": True},
        "LayerType": {"QDense": {"Precision": {"weight": "ap_fixed<8,1,AP_RND_CONV>"}}},
    }
    proj = convert(m, None, cfg)
    rep = proj.report()
    assert rep["exact"] is False
    assert any("float scale" in a for a in rep["approximations"])
    err = rep["measured_error"]
    x = grid_inputs(proj.graph, 256)
    assert err["max_abs"] > 0 and err["max_abs"] < 0.5 * err["max_abs_output"] + 1
    # the stated error is the real one on its own inputs: recompute independently
    y = proj.predict(x)
    assert np.all(np.isfinite(y))


def test_plain_keras_needs_precision_and_reports_error():
    tf.keras.utils.set_random_seed(5)
    # named layers: Keras's automatic names depend on what earlier tests built
    m = tf.keras.Sequential(
        [
            L.InputLayer((8,)),
            L.Dense(6, activation="relu", name="dense"),
            L.Dense(3, activation="sigmoid", name="dense_1"),
        ]
    )
    with pytest.raises(HlsgenError, match="kernel is not quantized"):
        convert(m)
    cfg = {
        "Model": {"Precision": "ap_fixed<16,6,AP_RND_CONV,AP_SAT>", "InputPrecision": "ap_fixed<10,3>"},
        "LayerName": {"dense_1": {"Precision": {"result": "ap_fixed<12,4,AP_RND_CONV,AP_SAT>"}}},
    }
    proj = convert(m, None, cfg)
    rep = proj.report()
    assert rep["exact"] is False and rep["measured_error"]["max_abs"] < 0.01
    types = {r["name"]: r["type"] for r in rep["layers"]}
    assert types["dense_1_result"] == "ap_fixed<12,4,AP_RND_CONV,AP_SAT>"  # per-name beats the model default
    assert types["dense_result"] == "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"


def test_softmax_refused_or_stripped():
    tf.keras.utils.set_random_seed(6)
    m = tf.keras.Sequential(
        [
            L.InputLayer((4,)),
            qk.QActivation("quantized_bits(4,1)"),
            qk.QDense(3, kernel_quantizer="quantized_bits(4,0,alpha=1)", use_bias=False),
            L.Activation("softmax"),
        ]
    )
    with pytest.raises(HlsgenError, match="StripSoftmax"):
        convert(m)
    proj = convert(m, None, {"Model": {"StripSoftmax": True}})
    x = grid_inputs(proj.graph, 64)
    logits = tf.keras.Model(m.input, m.layers[-2].output)(x.astype(np.float32)).numpy()
    assert np.array_equal(proj.predict(x), logits)


def qlstm(**kw):
    args = dict(
        kernel_quantizer="quantized_bits(6,0,alpha=1)",
        recurrent_quantizer="quantized_bits(6,0,alpha=1)",
        bias_quantizer="quantized_bits(6,1,alpha=1)",
        state_quantizer="quantized_bits(8,1)",
        activation="quantized_tanh(6)",
        recurrent_activation="quantized_sigmoid(6)",
    )
    args.update(kw)
    return tf.keras.Sequential([L.InputLayer((4, 3)), qk.QActivation("quantized_bits(5,1)"), qk.QLSTM(5, **args)])


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"state_quantizer": None}, ["state_quantizer", "quantized_bits"]),
        ({"go_backwards": True}, ["go_backwards"]),
        ({"recurrent_activation": "sigmoid"}, ["recurrent_activation", "quantized"]),
        ({"activation": "tanh"}, ["activation"]),
    ],
)
def test_qlstm_refusals_name_layer_and_option(kw, words):
    with pytest.raises(HlsgenError) as e:
        convert(qlstm(**kw))
    msg = str(e.value)
    assert "qlstm" in msg and "\n" not in msg
    for w in words:
        assert w in msg


def test_qlstm_return_sequences_exact():
    assert_exact(qlstm(return_sequences=True), n=100, label="QLSTM return_sequences")


def test_unsupported_layer_named():
    m = tf.keras.Sequential([L.InputLayer((4, 4, 1)), L.UpSampling2D()])
    with pytest.raises(HlsgenError, match=r"up_sampling2d.*UpSampling2D is not supported"):
        convert(m)


def test_conv_options_refused():
    m = tf.keras.Sequential(
        [
            L.InputLayer((8, 8, 1)),
            qk.QActivation("quantized_bits(4,1)"),
            qk.QConv2D(2, 3, dilation_rate=2, kernel_quantizer="quantized_bits(4,0,alpha=1)"),
        ]
    )
    with pytest.raises(HlsgenError, match="dilation_rate"):
        convert(m)


def test_tfmot_pruned_model_file_keeps_sparsity(tmp_path):
    import tensorflow_model_optimization as tfmot

    tf.keras.utils.set_random_seed(8)
    base = tf.keras.Sequential(
        [
            L.InputLayer((16,)),
            qk.QActivation("quantized_bits(5,1)"),
            qk.QDense(8, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,2,alpha=1)"),
        ]
    )
    sched = tfmot.sparsity.keras.ConstantSparsity(0.75, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=sched)
    pruned.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    pruned.fit(x, np.zeros((64, 8)), epochs=1, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    path = tmp_path / "pruned.h5"
    pruned.save(path)  # still wrapped: the frontend strips the wrappers itself
    proj = convert(str(path))
    dense = [n for n in proj.graph if n.op == "Dense"][0]
    assert dense.kernel.density == pytest.approx(0.25, abs=0.02)
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    xq = grid_inputs(proj.graph, 64)
    assert np.array_equal(proj.predict(xq), stripped(xq.astype(np.float32)).numpy())


def test_keras_v3_file_format(tmp_path):
    m = dense_model(qk.quantized_bits(6, 0, alpha=1), "quantized_relu(4,1)")
    path = tmp_path / "m.keras"
    m.save(path)
    proj = convert(str(path))
    x = grid_inputs(proj.graph, 64)
    assert np.array_equal(proj.predict(x), m(x.astype(np.float32)).numpy())


def test_lstm_engine_refusal_keeps_the_ir_or_errors_when_asked(tmp_path):
    """return_sequences=True into more layers: the IR and reference are written with a note;
    asking for the engine with options gives the one-line error naming the layer and the option."""
    f = tmp_path / "seq.h5"
    m = qlstm(return_sequences=True)
    m.add(L.Flatten())
    m.add(qk.QDense(3, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,1,alpha=1)"))
    m.save(f)
    proj = convert(str(f), tmp_path / "a")
    assert (tmp_path / "a" / "model.json").exists() and not (tmp_path / "a" / "rtl").exists()
    assert any("no hardware" in n and "return_sequences" in n for n in proj.graph.meta["notes"])
    with pytest.raises(HlsgenError, match=r"seq\.h5: layer '.*' \(LSTM\): return_sequences=True"):
        convert(str(f), tmp_path / "b", engine={"pe": 4})
    assert not (tmp_path / "b").exists()

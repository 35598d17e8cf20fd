"""Keras files as users have them (issue 15): `verify` with a stripped softmax, quantizer objects
in QActivation on the float64 path, inputs off the input grid; JSON + weights pairs as hls4ml's
examples ship them; files saved by Keras 3."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hlsgen import convert
from hlsgen.verify import verify_against_source

from .keras_helpers import grid_inputs
from .test_cli import main_run

pytestmark = pytest.mark.keras
tf = pytest.importorskip("tensorflow")
qk = pytest.importorskip("qkeras")
L = tf.keras.layers

STRIP = {"Model": {"StripSoftmax": True}}


def _classifier(separate: bool):
    tf.keras.utils.set_random_seed(3)
    layers = [
        L.InputLayer((8,)),
        qk.QActivation("quantized_bits(6,2)"),
        qk.QDense(12, kernel_quantizer="quantized_bits(5,0,alpha=1)", bias_quantizer="quantized_bits(5,0,alpha=1)"),
        qk.QActivation("quantized_relu(6,2)"),
    ]
    head = dict(kernel_quantizer="quantized_bits(5,0,alpha=1)", bias_quantizer="quantized_bits(5,0,alpha=1)")
    if separate:
        layers += [qk.QDense(5, **head), L.Activation("softmax")]
    else:
        layers += [qk.QDense(5, activation="softmax", **head)]
    return tf.keras.Sequential(layers)


def _saved_and_converted(model, tmp_path, config_text: str):
    """The model saved as .h5 and converted (no hardware) with this config: (file, project, run)."""
    src = tmp_path / "model.h5"
    model.save(src)
    cfg = tmp_path / "c.yml"
    cfg.write_text(config_text)
    out = tmp_path / "out"
    r = main_run("convert", src, "-o", out, "--config", cfg, "--no-hw")
    assert r.returncode == 0, r.stderr
    return src, out, r


@pytest.mark.parametrize("separate", [True, False], ids=["Activation_layer", "Dense_activation"])
def test_verify_compares_logits_when_the_softmax_was_stripped(separate, tmp_path):
    """Before: the logits were compared with the framework's softmax outputs (DIFFERENT, exit 1)."""
    m = _classifier(separate)
    src, out, _ = _saved_and_converted(m, tmp_path, "Model:\n  StripSoftmax: true\n")
    r = main_run("verify", out)
    assert r.returncode == 0 and "0 mismatches -> EQUAL" in r.stdout, r.stdout + r.stderr
    res = json.loads((out / "verify.json").read_text())
    assert res["checks"][0]["vectors"] > 0
    # the comparison can fail: the logits are not the softmax outputs the model file computes
    proj = convert(str(src), None, STRIP, hardware=False)
    x = grid_inputs(proj.graph, 32)
    assert not np.array_equal(proj.predict(x), m.predict(x.astype(np.float32), verbose=0))


def test_float64_path_with_quantizer_objects_in_qactivation(tmp_path):
    """A layer needing more than 24 bits sends verify to the float64 path; QActivation holding a
    quantizer object (as hls4ml's QKeras examples do) crashed it ("could not be deserialized")."""
    tf.keras.utils.set_random_seed(4)
    wide = dict(kernel_quantizer=qk.quantized_bits(16, 2, alpha=1), bias_quantizer=qk.quantized_bits(16, 2, alpha=1))
    m = tf.keras.Sequential(
        [
            L.InputLayer((16,)),
            qk.QActivation(qk.quantized_bits(12, 4)),
            qk.QDense(8, **wide),
            qk.QActivation(qk.quantized_relu(10, 3)),
            qk.QDense(4, **wide),
        ]
    )
    src = tmp_path / "wide.h5"
    m.save(src)
    proj = convert(str(src), tmp_path / "out", hardware=False)
    r = verify_against_source(proj)
    assert "float64" in r["checks"][0]["framework_precision"]
    assert r["equal"] and r["checks"][0]["mismatches"] == 0


def test_off_grid_inputs_are_counted_and_explained(tmp_path):
    """Before: off-grid inputs were rounded silently and verify said EQUAL without a word."""
    m = _classifier(True)
    src = tmp_path / "clf.h5"
    m.save(src)
    out = tmp_path / "out"
    proj = convert(str(src), out, STRIP, hardware=False)
    t = proj.graph.input.type
    rng = np.random.default_rng(5)
    x_on = grid_inputs(proj.graph, 20)
    x_off = x_on[:12] + rng.uniform(0.1, 0.9, x_on[:12].shape) * 2.0**-t.frac
    np.save(tmp_path / "x.npy", np.concatenate([x_on, x_off]))
    r = main_run("verify", out, "--inputs", tmp_path / "x.npy")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "12 of 32 inputs are off the input grid" in r.stdout, r.stdout
    res = json.loads((out / "verify.json").read_text())
    assert res["off_grid"]["vectors"] == 12
    # the count of differing outputs is the framework's own answer on the raw inputs
    fw = m.layers[-2].output
    logits = tf.keras.Model(m.inputs, fw).predict(x_off.astype(np.float32), verbose=0)
    want = int(np.count_nonzero(np.any(logits != proj.predict(x_off), axis=1)))
    assert res["off_grid"]["outputs_differ_on_raw_inputs"] == want
    # on-grid inputs only: no note
    np.save(tmp_path / "x2.npy", x_on)
    r = main_run("verify", out, "--inputs", tmp_path / "x2.npy")
    assert r.returncode == 0 and "off the input grid" not in r.stdout


# ---------------------------------------------------------------- JSON + weights (hls4ml's example layout)
def _json_pair(tmp_path, stem="qmodel", weights_name=None, seed=7):
    tf.keras.utils.set_random_seed(seed)
    m = tf.keras.Sequential(
        [
            L.InputLayer((10,)),
            qk.QActivation(qk.quantized_bits(8, 2), name="q_activation"),
            qk.QDense(
                6,
                kernel_quantizer=qk.quantized_bits(6, 0, alpha=1),
                bias_quantizer=qk.quantized_bits(6, 0),
                name="q_dense",  # explicit: configs name it, and Keras's counter depends on test order
            ),
            qk.QActivation(qk.quantized_relu(6, 2), name="q_activation_1"),
            qk.QDense(
                3,
                kernel_quantizer=qk.quantized_bits(6, 0, alpha=1),
                bias_quantizer=qk.quantized_bits(6, 0),
                name="q_dense_1",
            ),
        ]
    )
    (tmp_path / f"{stem}.json").write_text(m.to_json())
    w = tmp_path / (weights_name or f"{stem}_weights.h5")
    m.save_weights(str(w))
    return m, tmp_path / f"{stem}.json", w


def test_json_and_weights_convert_and_verify(tmp_path):
    """`hlsgen convert X.json` finds X_weights.h5 beside it; --weights names another file."""
    m, js, w = _json_pair(tmp_path)
    out = tmp_path / "out"
    r = main_run("convert", js, "-o", out, "--no-hw")
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "model.json").read_text())["meta"]
    assert meta["weights"] == str(w.resolve())
    r = main_run("verify", out)
    assert r.returncode == 0 and "0 mismatches -> EQUAL" in r.stdout, r.stdout + r.stderr
    # the weights were really read: the reference equals the model's own outputs
    proj = convert(str(js), None, hardware=False)
    x = grid_inputs(proj.graph, 64)
    assert np.array_equal(proj.predict(x), m.predict(x.astype(np.float32), verbose=0).astype(np.float64))
    other = tmp_path / "elsewhere.h5"
    w.rename(other)
    r = main_run("convert", js, "-o", tmp_path / "o2", "--no-hw", "--weights", other)
    assert r.returncode == 0, r.stderr
    # a replaced weights file is noticed by verify
    _json_pair(tmp_path / "o2", weights_name="w.h5", seed=8)
    (tmp_path / "o2" / "w.h5").replace(other)
    r = main_run("verify", tmp_path / "o2")
    assert r.returncode == 2 and "weights file changed" in r.stderr, r.stderr


def test_json_and_weights_refusals(tmp_path):
    from .test_cli import assert_one_line_error

    _, js, w = _json_pair(tmp_path)
    w.unlink()
    assert_one_line_error(main_run("convert", js, "-o", tmp_path / "o", "--no-hw"), str(js), "--weights")
    # weights only, given as the model
    _, _, w2 = _json_pair(tmp_path, "other")
    assert_one_line_error(main_run("convert", w2, "-o", tmp_path / "o", "--no-hw"), str(w2), "weights only")
    # weights of another model
    tf.keras.utils.set_random_seed(1)
    small = tf.keras.Sequential([L.InputLayer((10,)), L.Dense(2, name="small_fc")])  # named: no global counter
    small.save_weights(str(tmp_path / "small.h5"))
    r = main_run("convert", js, "-o", tmp_path / "o", "--no-hw", "--weights", tmp_path / "small.h5")
    assert_one_line_error(r, "small.h5", "do not fit")
    # --weights beside a model file that holds its own
    r = main_run("convert", w2, "-o", tmp_path / "o", "--weights", w2)
    assert_one_line_error(r, "--weights")
    assert not (tmp_path / "o").exists()


def test_keras3_files_are_named_as_such(tmp_path):
    """Keras 3 files failed with "TypeError ... batch_shape"; now one line says what they are."""
    import zipfile

    import h5py

    from .test_cli import assert_one_line_error

    m, _, _ = _json_pair(tmp_path)
    k2 = tmp_path / "k2.keras"
    m.save(k2)
    k3 = tmp_path / "k3.keras"
    with zipfile.ZipFile(k2) as zin, zipfile.ZipFile(k3, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "metadata.json":
                meta = json.loads(data)
                assert meta["keras_version"].startswith("2.")
                data = json.dumps({**meta, "keras_version": "3.15.0"}).encode()
            zout.writestr(item, data)
    assert main_run("convert", k2, "-o", tmp_path / "ok", "--no-hw").returncode == 0
    # a Keras 3 file goes to the Keras 3 frontend, which names QKeras before loading anything
    assert_one_line_error(main_run("convert", k3, "-o", tmp_path / "o"), str(k3), "Keras 3.15.0", "QKeras", "HGQ2")
    h3 = tmp_path / "k3.h5"
    m.save(h3)
    with h5py.File(h3, "r+") as f:
        f.attrs["keras_version"] = "3.15.0"
    assert_one_line_error(main_run("convert", h3, "-o", tmp_path / "o"), str(h3), "Keras 3.15.0")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- plain Keras layers with config precisions
def _dense_bn_dense():
    tf.keras.utils.set_random_seed(0)
    q = dict(kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(6,0)")
    m = tf.keras.Sequential(
        [
            L.InputLayer((6,)),
            qk.QActivation("quantized_bits(6,2)"),
            qk.QDense(8, **q),
            L.BatchNormalization(name="bn"),
            qk.QDense(3, **q),
        ]
    )
    rng = np.random.default_rng(0)
    m.get_layer("bn").set_weights(
        [rng.uniform(0.5, 2, 8), rng.uniform(-1, 1, 8), rng.uniform(-1, 1, 8), rng.uniform(0.5, 2, 8)]
    )
    return m


def test_plain_batchnorm_takes_the_configured_result_precision():
    """Before: refused under every config ("not on a fixed-point grid")."""
    from hlsgen import HlsgenError
    from hlsgen.fixed import FixedType

    m = _dense_bn_dense()
    with pytest.raises(HlsgenError, match="result precision"):
        convert(m, None, hardware=False)
    rt = FixedType.parse("ap_fixed<12,4,AP_RND_CONV,AP_SAT>")
    proj = convert(m, None, {"LayerName": {"bn": {"Precision": {"result": str(rt)}}}}, hardware=False)
    assert any("bn" in a and str(rt) in a for a in proj.graph.meta["approximations"])
    # independent: Keras up to the batch-norm, its output quantized to rt, then Keras's last layer
    x = grid_inputs(proj.graph, 200)
    y_bn = tf.keras.Model(m.inputs, m.get_layer("bn").output)(x.astype(np.float32)).numpy()
    q = rt.to_float(rt.quantize(y_bn.astype(np.float64))).astype(np.float32)
    want = m.layers[-1](tf.constant(q)).numpy().astype(np.float64)
    assert np.array_equal(proj.predict(x), want)


def test_wrapping_result_precision_is_flagged(tmp_path):
    """hls4ml's default ap_fixed<16,6> wraps: convert and verify name the layer and count the values."""
    tf.keras.utils.set_random_seed(2)
    m = tf.keras.Sequential([L.InputLayer((16,)), L.Dense(16, name="fc1"), L.Dense(4, name="fc2")])
    m.get_layer("fc1").set_weights([np.full((16, 16), 0.5, np.float32), np.zeros(16, np.float32)])
    src, out, r = _saved_and_converted(
        m, tmp_path, "Model:\n  Precision: ap_fixed<16,6>\n  InputPrecision: ap_fixed<16,6>\n"
    )
    cfg = tmp_path / "c.yml"
    assert "warning: 'fc" in r.stdout and "wrap around" in r.stdout, r.stdout
    # inputs of 8: fc1 sums 16 x 0.5 x 8 = 64, past ap_fixed<16,6>'s 32
    x = np.concatenate([np.full((3, 16), 8.0), np.full((5, 16), 0.25)])
    np.save(tmp_path / "x.npy", x)
    main_run("verify", out, "--inputs", tmp_path / "x.npy")
    res = json.loads((out / "verify.json").read_text())
    assert res["overflow"]["fc1_result"]["values"] == 3 * 16 and res["overflow"]["fc1_result"]["mode"] == "WRAP"
    assert "fc1_result" in "".join(res["notes"])
    # and the wrap is real: Keras says +64, ap_fixed<16,6> holds -32..32 and wraps 64 to 0
    proj = convert(str(src), None, str(cfg), hardware=False)
    assert (proj.trace(x[:3])["fc1_result"] == 0).all()


# ---------------------------------------------------------------- hls4ml configuration files
def test_hls4ml_yaml_names_the_model_and_its_precisions(tmp_path):
    """`hlsgen convert hls4ml.yml`: KerasJson + KerasH5 beside it, HLSConfig precisions used (the
    input layer's too), every other key named as not used."""
    m, js, w = _json_pair(tmp_path)
    inp = m.get_config()["layers"][0]["config"]["name"]  # the InputLayer's name
    (tmp_path / "hls4ml.yml").write_text(
        f"""KerasJson: {js.name}
KerasH5: {w.name}
OutputDir: my-hls-test
ProjectName: myproject
Part: xcku115-flvb2104-2-i
ClockPeriod: 5
IOType: io_parallel
HLSConfig:
  Model:
    Precision: ap_fixed<16,6>
    ReuseFactor: 4
    Strategy: Resource
  LayerName:
    {inp}:
      Precision:
        result: ap_fixed<10,3>
    q_dense:
      Precision: {{weight: auto, accum: ap_fixed<32,16>}}
      ReuseFactor: 2
"""
    )
    out = tmp_path / "out"
    r = main_run("convert", tmp_path / "hls4ml.yml", "-o", out)
    assert r.returncode == 0, r.stderr
    ignored = next(line for line in r.stdout.splitlines() if "hls4ml keys not used" in line)
    for key in ("OutputDir", "Part", "Strategy", "accum"):
        assert key in ignored, (key, ignored)
    assert "ReuseFactor" not in ignored
    # ReuseFactor R: the folding with the fewest lanes whose cycles per item are at most R
    plan = json.loads((out / "engine.json").read_text())["plan"]
    reuse = {"q_dense": 2, "q_dense_1": 4}
    assert {u["layer"] for u in plan["mvus"]} == set(reuse)
    for u in plan["mvus"]:
        r_ = reuse[u["layer"]]
        meets = [
            (p * s_, p, s_)
            for p in range(1, u["m"] + 1)
            for s_ in range(1, u["n"] + 1)
            if u["m"] % p == 0 and u["n"] % s_ == 0 and (u["m"] // p) * (u["n"] // s_) <= r_
        ]
        assert u["tiles"] <= r_ and u["pe"] * u["simd"] == min(meets)[0], (u, meets)
        assert f"{u['layer']}: ReuseFactor {r_} -> PE {u['pe']} x SIMD {u['simd']}" in r.stdout
    g = json.loads((out / "model.json").read_text())
    assert g["meta"]["source"] == str(js.resolve()) and g["meta"]["weights"] == str(w.resolve())
    assert g["nodes"][0]["attrs"]["type"].startswith("ap_fixed<10,3")
    r = main_run("verify", out)
    assert r.returncode == 0 and "0 mismatches -> EQUAL" in r.stdout, r.stdout + r.stderr


def test_hls4ml_yaml_with_a_keras_model_and_an_onnx_model(tmp_path):
    from .onnx_models import float_from_zoo, quantize_qdq

    m = _dense_bn_dense()
    m.save(tmp_path / "full.h5")
    (tmp_path / "k.yaml").write_text(
        "KerasModel: full.h5\nHLSConfig:\n  LayerType:\n    BatchNormalization:\n      Precision: ap_fixed<12,4,AP_RND_CONV,AP_SAT>\n"
    )
    r = main_run("convert", tmp_path / "k.yaml", "-o", tmp_path / "o1", "--no-hw")
    assert r.returncode == 0, r.stderr
    assert "APPROXIMATE" in r.stdout  # the float batch-norm quantized as the config says
    fm = float_from_zoo("mlp_tiny")
    xtr = np.random.default_rng(0).uniform(0, 1, (64, 64)).astype(np.float32)
    quantize_qdq(fm, xtr, tmp_path / "m.onnx")
    (tmp_path / "o.yml").write_text("OnnxModel: m.onnx\nIOType: io_stream\n")
    r = main_run("convert", tmp_path / "o.yml", "-o", tmp_path / "o2", "--no-hw")
    assert r.returncode == 0 and "IOType" in r.stdout, r.stdout + r.stderr
    assert main_run("verify", tmp_path / "o2").returncode == 0


def test_yaml_that_is_not_an_hls4ml_configuration(tmp_path):
    from .test_cli import assert_one_line_error

    (tmp_path / "c.yml").write_text("Model:\n  Precision: ap_fixed<8,3>\n")
    assert_one_line_error(main_run("convert", tmp_path / "c.yml", "-o", tmp_path / "o"), "c.yml", "hls4ml")


def test_reuse_factor_is_checked_and_named_where_it_has_no_meaning():
    from hlsgen.errors import HlsgenError

    for bad in (0, "4", 2.5, True):
        with pytest.raises(HlsgenError, match="LayerName.fc1.ReuseFactor must be a whole number"):
            convert("mlp_tiny", None, {"LayerName": {"fc1": {"ReuseFactor": bad}}}, hardware=False)
    proj = convert("lstm_sparse", None, {"Model": {"ReuseFactor": 4}})
    assert any("ReuseFactor has no meaning for the sparse LSTM engine" in n for n in proj.graph.meta["notes"])
    # on the CNN engine a ReuseFactor of 1 is hls4ml's fully parallel layer
    proj = convert("mlp_tiny", None, {"Model": {"ReuseFactor": 1}})
    assert all(u["tiles"] == 1 for u in proj.plan.summary()["mvus"])

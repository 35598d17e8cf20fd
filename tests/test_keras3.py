"""Keras 3 / HGQ2 models, read by Keras 3 in the second environment (`make venv-keras3`).

The files in tests/data/keras3 were made by make_models.py (HGQ2 0.2, Keras 3.15, JAX) and
trained briefly on digits, so their bit widths are HGQ2's learned, per-element ones.  The
reference is compared with HGQ2's own forward pass on the JAX backend, while hlsgen reads
the functions through Keras's numpy backend: the two paths share nothing but the model.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hlsgen import convert
from hlsgen.verify import verify_against_source, verify_hardware

from .test_cli import main_run

DATA = Path(__file__).parent / "data" / "keras3"
STRIP = {"Model": {"StripSoftmax": True}}


def wide_inputs(proj, n=512, seed=0):
    """Random values over the whole input grid (wrapping and saturating quantizers included)."""
    t = proj.graph.input.type
    rng = np.random.default_rng(seed)
    return t.to_float(rng.integers(t.min_raw, t.max_raw, size=(n,) + tuple(proj.graph.input.shape), endpoint=True))


@pytest.mark.parametrize("name", ["mlp.keras", "mlp.h5"])
def test_hgq2_mlp_equals_hgq2(name):
    proj = convert(str(DATA / name), hardware=False)
    g = proj.graph
    assert g.meta["frontend"] == "keras3" and g.meta["exact"]
    # HGQ2's per-feature input bits stay a per-channel table; its zero-bit weights are zeros
    iq = g["h1_iq"]
    assert iq.step is not None and iq.step.channels == 64
    assert any("per-feature input quantizer" in n for n in g.meta["notes"])
    assert np.count_nonzero(g["h1"].kernel.raw == 0) > 0
    from hlsgen.verify import default_inputs

    digits, what = default_inputs(proj)
    assert what == "held-out digits"
    # held-out digits and random values over the whole input range, in one pass of HGQ2
    r = verify_against_source(proj, np.concatenate([digits, wide_inputs(proj)]))
    c = r["checks"][0]
    assert c["mismatches"] == 0 and c["vectors"] == 450 + 512 and r["equal"], r


def test_hgq2_cnn_equals_hgq2_in_reference_and_csim(tmp_path, rtl=False):
    proj = convert(str(DATA / "cnn.keras"), tmp_path / "cnn", STRIP)
    g = proj.graph
    assert g.meta["stripped_softmax"] == "out" and proj.engine == "streaming_cnn"
    # per-tensor input bits become the input type; the conv's output quantizer and the pool's
    # per-channel input quantizer are one table
    assert "conv" not in {n.name for n in g if n.op == "Activation"} and g.input.type.frac > 0
    r = verify_against_source(proj, wide_inputs(proj))
    assert r["checks"][0]["mismatches"] == 0, r
    x = wide_inputs(proj, 24, seed=1)
    checks = verify_hardware(proj, x, "random", csim=True, rtl=rtl, rtl_count=6)
    assert len(checks) == 2 + rtl and all(c["mismatches"] == 0 for c in checks), checks
    if rtl:
        assert checks[-1]["cycles_equal_model"]


@pytest.mark.slow  # a minute and a half; the CNN engine's own tests cover its RTL in make test
def test_hgq2_cnn_in_rtl(tmp_path):
    test_hgq2_cnn_equals_hgq2_in_reference_and_csim(tmp_path, rtl=True)


def test_hgq2_batchnorm_and_function_table_equal_hgq2():
    """QBatchNormalization and QUnaryFunctionLUT(tanh), each with its own quantizers, called whole
    on probe values: per-channel tables equal to HGQ2 over the whole input range."""
    proj = convert(str(DATA / "mlp_bn.keras"), hardware=False)
    # h1's accumulator -> bn (iq, affine) -> lut (iq, tanh, oq) -> logits.iq: one table per channel
    assert [n.op for n in proj.graph] == ["Input", "Dense", "Activation", "Dense"]
    assert proj.graph["logits_iq"].step.channels == 16
    r = verify_against_source(proj, wide_inputs(proj, 1024))
    assert r["checks"][0]["mismatches"] == 0 and r["equal"], r


def test_plain_keras3_layers_take_the_config_precision():
    cfg = {"LayerName": {"dense": {"Precision": {"weight": "ap_fixed<8,2>", "bias": "ap_fixed<8,2>"}}}}
    proj = convert(str(DATA / "plain.keras"), None, cfg, hardware=False)
    assert not proj.graph.meta["exact"]
    err = proj.graph.meta["measured_error"]
    assert err["vectors"] == 256 and err["max_abs"] > 0  # glorot weights are off an 8-bit grid


def _module_injection(tmp_path):
    src = tmp_path / "evil.keras"
    with zipfile.ZipFile(DATA / "plain.keras") as zin, zipfile.ZipFile(src, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"][-1]["module"] = "os"
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return src


@pytest.mark.parametrize(
    "name, words",
    [
        ("cnn_default.keras", ["'pool'", "different bit widths at different positions", "heterogeneous_axis=(-1,)"]),
        ("plain.keras", ["'dense'", "not quantized", "Precision"]),
        ("lambda.keras", ["'double'", "Lambda"]),
        ("cnn.keras", ["'out'", "softmax", "StripSoftmax"]),
        ("evil", ["module 'os'", "Keras and HGQ2"]),
        ("mlp_bn_wrap.keras", ["'logits'", "WRAP quantizer bn.iq", "overflow_mode='SAT'"]),
    ],
)
def test_keras3_refusals_are_one_line(tmp_path, name, words):
    src = _module_injection(tmp_path) if name == "evil" else DATA / name
    r = main_run("convert", src, "-o", tmp_path / "out")
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0], r.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "out").exists()


def test_without_the_keras3_environment_the_message_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HLSGEN_KERAS3_PYTHON", str(tmp_path / "missing" / "python"))
    src = tmp_path / "m.keras"
    shutil.copy(DATA / "mlp.keras", src)
    r = main_run("convert", src, "-o", tmp_path / "out")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "Keras 3.15.1" in line and "make venv-keras3" in line and str(src) in line

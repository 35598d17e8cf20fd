"""Brevitas 0.13 exports (torch 2.13, made once by tests/data/brevitas/make_exports.py and
committed): float scales everywhere, QONNX and QCDQ, batch fixed at 1.  hlsgen computes their
quantized semantics exactly; PyTorch's outputs (saved beside the files) differ only in the
float32 rounding of the last layer's affine, so every quantized activation agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hlsgen import convert
from hlsgen.verify import verify_against_source, verify_hardware

DATA = Path(__file__).parent / "data" / "brevitas"
FILES = [f"{m}_{k}.onnx" for m in ("mlp", "cnn") for k in ("qonnx", "qcdq", "qcdq_dynamo")]


def _torch(name):
    d = np.load(DATA / f"{name.split('_')[0]}_torch.npz")
    return d["x"], d["y"]


@pytest.mark.parametrize("name", FILES)
def test_brevitas_export_against_pytorch(name):
    proj = convert(str(DATA / name), hardware=False)
    x, y_torch = _torch(name)
    y = proj.predict(x)
    assert y.shape == y_torch.shape and y.dtype == np.float32
    # float32 rounding of the last (unquantized) layer only: one quantization step of any hidden
    # activation would move an output by about 1e-3
    assert np.abs(y - y_torch).max() <= 1e-6 * np.abs(y_torch).max(), np.abs(y - y_torch).max()
    assert not proj.graph.meta["exact"] and proj.engine == "streaming_cnn"
    r = verify_against_source(proj, x)  # the file's own float32 execution, batch of 1
    assert r["checks"][0]["vectors"] == len(x) and r["checks"][0]["max_abs_difference"] < 1e-6


@pytest.mark.slow  # about 3 minutes; the float-scale CNN test in test_onnx_frontend.py covers it in `make test`
@pytest.mark.gxx
@pytest.mark.rtl
def test_brevitas_cnn_through_the_engine(tmp_path):
    proj = convert(str(DATA / "cnn_qcdq.onnx"), tmp_path / "cnn")
    x, _ = _torch("cnn_qcdq")
    checks = verify_hardware(proj, x[:64], "Brevitas inputs", csim=True, rtl=True, rtl_count=8)
    assert len(checks) == 3 and all(c["mismatches"] == 0 for c in checks), checks
    assert checks[-1]["cycles_equal_model"]


def test_dynamo_qcdq_through_the_command_line(tmp_path):
    """The dynamo exporter's weight QuantizeLinear -> Clip on int8 constants: the folded
    quantizer keeps the zero point's type (it was int64, and the Clip refused it)."""
    import json

    from .test_cli import main_run

    out = tmp_path / "o"
    r = main_run("convert", DATA / "mlp_qcdq_dynamo.onnx", "-o", out, "--no-hw")
    assert r.returncode == 0, r.stderr
    main_run("verify", out)  # approximate (float scales): the figures are what matter
    check = json.loads((out / "verify.json").read_text())["checks"][0]
    assert check["inputs"] == "held-out digits" and check["max_abs_difference"] < 1e-6, check

"""The LSTM engine through the command line: convert, verify --csim --rtl, synth, prune, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hlsgen.cli import main

from .test_cli import main_run

HLSGEN = [sys.executable, "-m", "hlsgen.cli"]


def run(*args, cwd=None):
    return subprocess.run([*HLSGEN, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def one_line_error(r, *words):
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.keras
def test_convert_verify_synth_bundle(tmp_path):
    out = tmp_path / "p"
    r = run("convert", "lstm_sparse", "-o", out, "--pe", "4")
    assert r.returncode == 0, r.stderr
    assert "4 PEs" in r.stdout
    for f in (
        "rtl/lstm_sparse_lstm_top.v",
        "rtl/hg_lstm_pe.v",
        "rtl/lstm_w_pe3.mem",
        "rtl/lstm_w_pe3.mif",
        "rtl/filelist.f",
        "hls/lstm_sparse_lstm_hls.cpp",
        "hls/lstm_sparse_lstm_hls_tb.cpp",
        "vivado/create_project.tcl",
        "vitis_hls/run_hls.tcl",
        "quartus/lstm_sparse_lstm_top.qpf",
        "quartus/lstm_sparse_lstm_top.qsf",
        "lstm_sparse_lstm_top.core",
        "engine.json",
        "README.md",
    ):
        assert (out / f).is_file(), f
    ej = json.loads((out / "engine.json").read_text())
    assert ej["options"] == {"pe": 4}
    # the performance figures (issue 12): whole-step efficiency below the MAC phase's, at most 1
    perf = ej["performance"]
    assert 0 < perf["mac_per_cycle_per_pe"] < perf["mac_phase_per_cycle_per_pe"] <= 1
    assert perf["cycles_per_step"] > 64 and perf["latency_cycles"] > 8 * perf["cycles_per_step"] / 2
    assert perf["us_per_step"] == round(perf["cycles_per_step"] / perf["clock_mhz"], 4)
    assert "AXI4-Stream" in (out / "README.md").read_text()
    r = run("verify", out, "--csim", "--rtl", "--rtl-count", "12")
    assert r.returncode == 0, r.stdout + r.stderr
    v = json.loads((out / "verify.json").read_text())
    names = [c["name"] for c in v["checks"]]
    assert len(names) == 4 and v["equal"]
    rtl = v["checks"][-1]
    assert rtl["vectors"] == 12 and rtl["mismatches"] == 0 and rtl["cycles_equal_model"]
    assert v["checks"][1]["vectors"] == 450  # C simulation on every held-out sequence
    r = run("synth", out, "--target", "xilinx")
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads((out / "synth.json").read_text())
    x = s["resources"]["xilinx"]
    e = ej["plan"]["ew_lanes"]  # chosen from the MAC phase (1 at P=4: 64 cycles against 523)
    assert x["DSP"] == 4 + 1 + 3 * e  # one per PE lane, the head, and three per element-wise lane
    assert x["LUT"] > 0 and x["FF"] > 0 and x["latches"] == 0
    assert "MAC/cycle/PE" in r.stdout and "latency" in r.stdout


def test_engine_option_errors_name_layer_and_option(tmp_path):
    for opt, val, words in (
        ("--pe", "0", ["layer 'lstm'", "pe=0"]),
        ("--pe", "999", ["layer 'lstm'", "pe=999", "more PEs"]),
        ("--index-bits", "0", ["layer 'lstm'", "index_bits=0"]),
        ("--afifo-depth", "3", ["layer 'lstm'", "afifo_depth=3"]),
        ("--ew-lanes", "3", ["layer 'lstm'", "ew_lanes=3", "power of two"]),
    ):
        r = main_run("convert", "lstm_sparse", "-o", tmp_path / "x", opt, val)
        one_line_error(r, "lstm_sparse.h5", *words)
        assert not (tmp_path / "x").exists()


def test_padding_reported_and_no_hw(tmp_path, capsys):
    assert main(["convert", "lstm_sparse", "-o", str(tmp_path / "a"), "--pe", "3"]) == 0
    assert "padding rows" in capsys.readouterr().out
    assert main(["convert", "lstm_sparse", "-o", str(tmp_path / "b"), "--no-hw"]) == 0
    assert not (tmp_path / "b" / "rtl").exists() and (tmp_path / "b" / "model.json").exists()


def test_models_no_engine_maps_still_convert(tmp_path, capsys):
    """A GRU behind a Dense layer maps to no engine (the recurrent engine takes the recurrent layer
    first): the IR and reference are written and say so; engine options on it are an error; a
    GRU the recurrent engine cannot build (every step's state into a Dense) says why; LSTM options on an MLP
    (the streaming engine) are refused."""
    import qkeras as qk
    import tensorflow as tf

    from hlsgen.frontends.keras.loader import qkeras_compat

    qkeras_compat()  # QGRU on TF 2.15 needs the shims the loader installs
    wq = qk.quantized_bits(4, 0, alpha=1)

    def gru(reset_after, seq=False):
        return qk.QGRU(
            4,
            kernel_quantizer=wq,
            recurrent_quantizer=wq,
            bias_quantizer="quantized_bits(6,1,alpha=1)",
            state_quantizer="quantized_bits(8,2)",
            activation="quantized_tanh(6)",
            recurrent_activation="hard_sigmoid",
            reset_after=reset_after,
            return_sequences=seq,
            name="gru",
        )

    seq = tf.keras.Sequential(
        [
            tf.keras.layers.InputLayer((4, 3)),
            qk.QActivation("quantized_bits(5,1,keep_negative=False)"),
            gru(False, seq=True),
            qk.QDense(3, kernel_quantizer=wq, bias_quantizer=wq),
        ]
    )
    seq.save(tmp_path / "gru_seq.h5")
    assert main(["convert", str(tmp_path / "gru_seq.h5"), "-o", str(tmp_path / "b")]) == 0
    assert "no hardware: layer 'gru' (GRU): return_sequences=True followed by more layers" in capsys.readouterr().out
    model = tf.keras.Sequential(
        [
            tf.keras.layers.InputLayer((4, 3)),
            qk.QDense(3, kernel_quantizer=wq, bias_quantizer=wq),
            qk.QActivation("quantized_relu(4,2)"),
            gru(True),
        ]
    )
    path = tmp_path / "gru.h5"
    model.save(path)
    assert main(["convert", str(path), "-o", str(tmp_path / "m")]) == 0
    assert "no hardware engine" in capsys.readouterr().out
    # a check that cannot run is not a success: synth and verify --csim say why, exit 2
    assert main(["synth", str(tmp_path / "m")]) == 2
    assert "no hardware in this project" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "m"), "--csim"]) == 2
    one_line_error(run("convert", path, "-o", tmp_path / "n", "--lanes", "4"), "gru.h5", "no hardware engine")
    r = run("convert", "mlp_tiny", "-o", tmp_path / "p", "--pe", "4")
    one_line_error(r, "mlp_tiny.h5", "do not apply to the streaming CNN engine")


def test_info_reports_load_balance(capsys):
    assert main(["info", "lstm_sparse", "--pe", "8"]) == 0
    out = capsys.readouterr().out
    assert "load balance 'lstm' over 8 PEs" in out and "imbalance" in out


@pytest.mark.keras
def test_prune_lba_balances_and_reports(tmp_path):
    out = tmp_path / "lba.h5"
    r = run("prune", "lstm_sparse", "-o", out, "--pe", "8", "--density", "0.1", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert "accuracy:" in r.stdout and "before" in r.stdout and "after 1 epochs" in r.stdout
    assert "weights kept per PE (mask): 230..230, imbalance 1.000" in r.stdout
    import numpy as np

    import hlsgen

    g = hlsgen.convert(str(out)).graph
    m = np.vstack([g.nodes[1].kernel.raw, g.nodes[1].recurrent.raw])
    counts = [np.count_nonzero(m[:, p::8]) for p in range(8)]
    assert max(counts) <= 230 and abs(np.count_nonzero(m) / m.size - 0.1) < 0.01


def test_prune_bad_input(tmp_path):
    # in this process (the command line itself is tested above): six TensorFlow start-ups saved
    one_line_error(main_run("prune", "mlp_tiny", "-o", tmp_path / "x.h5"), "mlp_tiny", "no LSTM or GRU layer")
    one_line_error(main_run("prune", "lstm_sparse", "-o", tmp_path / "x.h5", "--density", "0"), "--density 0")
    one_line_error(main_run("prune", "lstm_sparse", "-o", tmp_path / "x.h5", "--pe", "999"), "layer 'lstm'", "--pe 999")
    bad = tmp_path / "d.npz"
    bad.write_text("not npz")
    one_line_error(main_run("prune", "lstm_sparse", "-o", tmp_path / "x.h5", "--data", bad), str(bad), "npz")
    one_line_error(main_run("prune", "lstm_sparse", "-o", tmp_path), str(tmp_path), "is a directory")
    one_line_error(main_run("prune", "lstm_sparse", "-o", tmp_path / "pruned"), "pruned", "ending in .h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]  # nothing written


def test_yosys_latch_check_can_fail(tmp_path):
    from hlsgen.errors import HlsgenError
    from hlsgen.synth import run_yosys

    (tmp_path / "latchy.v").write_text(
        "module latchy(input wire en, input wire d, output reg q);\n" "  always @(*) if (en) q = d;\nendmodule\n"
    )
    with pytest.raises(HlsgenError, match="latch"):
        run_yosys(tmp_path, "latchy", ["latchy.v"], "xilinx")


def test_generated_rtl_is_lint_clean_for_odd_shapes(tmp_path):
    """verilator -Wall on tops with padding rows, 1 PE, tiny heads, and every head activation."""
    from hlsgen.backends.lstm_verilog import write_rtl
    from hlsgen.engines.lstm import plan_lstm
    from hlsgen.engines.lstm.synthetic import random_lstm
    from hlsgen.simulate import lint

    cases = [
        (dict(units=5, head=3, head_act="step"), 3),
        (dict(units=2, features=1, steps=1, head=0), 1),
        (dict(units=8, head=10, head_act="requant"), 16),
        (dict(units=4, head=2, head_act="relu"), 2),
    ]
    for k, (kw, pe) in enumerate(cases):
        g = random_lstm(k, **kw)
        plan = plan_lstm(g, pe=pe, index_bits=2)
        d = Path(tmp_path / f"r{k}")
        rtl = write_rtl(plan, d)
        assert lint(d, rtl["sources"], rtl["top"]) == "", (kw, pe)


def test_icarus_reads_generated_rtl_unchanged(tmp_path):
    """iverilog -g2005 -Wall elaborates the generated tops (zoo models and odd shapes, both engines)."""
    import os
    import shutil

    from hlsgen.backends.lstm_verilog import write_rtl
    from hlsgen.engines.lstm import plan_lstm
    from hlsgen.engines.lstm.synthetic import random_lstm

    iverilog = shutil.which("iverilog")
    if not iverilog:
        if os.environ.get("HLSGEN_REQUIRE_ICARUS"):
            pytest.fail("iverilog not installed (.ci/run installs Debian's iverilog)")
        pytest.skip("iverilog not installed (apt install iverilog); CI installs it and requires this test")
    import hlsgen
    from hlsgen.backends.cnn_verilog import write_rtl as write_cnn_rtl
    from hlsgen.engines.cnn import plan_cnn
    from hlsgen.engines.cnn.synthetic import random_cnn

    designs = [(hlsgen.convert("lstm_sparse").graph, 8)]
    designs += [(random_lstm(3, units=5, features=1, head=3, head_act="step"), 3)]
    # the CNN engine: XNOR and shift datapaths, depthwise lanes, pools, FIFOs
    designs += [(hlsgen.convert(m).graph, None) for m in ("cnn_binary", "cnn_dw")] + [(random_cnn(1003), None)]
    for k, (g, pe) in enumerate(designs):
        d = tmp_path / f"r{k}"
        rtl = write_rtl(plan_lstm(g, pe=pe), d) if pe else write_cnn_rtl(plan_cnn(g), d)
        r = subprocess.run(
            [iverilog, "-g2005", "-Wall", "-s", rtl["top"], "-o", str(d / "a.out"), *rtl["sources"]],
            cwd=d,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr

"""Benchmark of the sparse LSTM engine (figures printed, not asserted).

    make bench            (or: python bench/lstm_engine.py [--quick])

1. MAC efficiency at 10% density for P in {4, 8, 16, 32}: load-balance-aware vs plain
   magnitude pruning, from the exact cycle model (checked against the RTL by the tests).
2. Yosys resources per P (7-series and Cyclone V) for the zoo model's size.
3. Wall time: hlsgen convert + C simulation vs hls4ml convert + compile + predict, for an
   LSTM of the same size, on the 450 held-out digits sequences.
4. ESE's shape (``--ese``, issue 12): LSTM(1024) on 153 features, 11% density, load-balance-aware
   pruning, P in {32, 128, 1024}: cycles per step (MAC phase and whole step), useful
   MAC/cycle/PE over the whole step, us per step and dense-equivalent GOP/s at 200 MHz beside
   ESE's published figures, the time of each tool step, and Yosys per P within a time limit;
   whether the planner chose the overlap (its estimated gain), and the figure the other way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def table(rows, cols):
    from hlsgen.table import format_table

    print(format_table(rows, cols))


def efficiency(units, features, steps, n_seq, pes, index_bits):
    from hlsgen.engines.lstm import mac_cycles, plan_lstm
    from hlsgen.engines.lstm.flow import cycle_report
    from hlsgen.engines.lstm.synthetic import random_inputs, random_lstm

    rows = []
    for pe in pes:
        for method in ("lba", "magnitude"):
            g = random_lstm(
                1, features=features, units=units, steps=steps, density=0.1, pe=pe if method == "lba" else None
            )
            for b in index_bits:
                plan = plan_lstm(g, pe=pe, index_bits=b)
                dense_c, _ = mac_cycles(plan, np.ones(plan.ncol, dtype=bool))
                x = random_inputs(g, n_seq, seed=2)
                cyc = cycle_report(g, plan, x)
                s = plan.summary()
                rows.append(
                    {
                        "P": pe,
                        "pruning": method,
                        "index_bits": b,
                        "nnz/P": round(plan.nnz / pe, 1),
                        "max nnz/PE": s["nnz_per_pe"]["max"],
                        "fillers": plan.fillers,
                        "MAC cycles (dense act.)": dense_c,
                        "nnz/P / cycle": round(plan.nnz / pe / dense_c, 3),
                        "MAC/cycle/PE (real act.)": round(cyc["mac_per_cycle_per_pe"], 3),
                    }
                )
                print(".", end="", flush=True)
    print()
    return rows


def resources(pes):
    import hlsgen
    from hlsgen.backends.lstm_verilog import write_rtl
    from hlsgen.engines.lstm import plan_lstm
    from hlsgen.synth import run_yosys

    proj = hlsgen.convert("lstm_sparse")
    rows = []
    for pe in pes:
        plan = plan_lstm(proj.graph, pe=pe)
        with tempfile.TemporaryDirectory() as d:
            rtl = write_rtl(plan, d)
            for target in ("xilinx", "intel"):
                t0 = time.time()
                r = run_yosys(d, rtl["top"], rtl["sources"], target)
                rows.append(
                    {
                        "P": pe,
                        "target": target,
                        **{k: r[k] for k in ("LUT", "FF", "DSP", "BRAM", "LUTRAM")},
                        "yosys s": round(time.time() - t0, 1),
                    }
                )
                print(".", end="", flush=True)
    print()
    return rows


def wall_time():
    import hlsgen
    from hlsgen.backends.csim import csim
    from hlsgen.zoo.build import digits

    _, xte, _, _ = digits()
    out = {}
    # both tools need TensorFlow: import it before either clock starts
    from hlsgen import zoo
    from hlsgen.frontends.keras.loader import load_model_file

    load_model_file(str(zoo.path("lstm_sparse")))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        proj = hlsgen.convert("lstm_sparse", Path(d) / "p")
        t1 = time.time()
        x = proj.quantize_input(xte)
        y = csim({"top": proj.hardware["hls_top"]}, Path(d) / "p" / "hls", x, Path(d) / "w", "ap")
        t2 = time.time()
        out["hlsgen"] = {
            "convert s": round(t1 - t0, 1),
            "C sim s": round(t2 - t1, 1),
            "total s": round(t2 - t0, 1),
            "outputs != source": int(np.count_nonzero(y != proj.predict_int(x))),
        }
    try:
        import hls4ml
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover
        out["hls4ml"] = {"error": str(e)}
        return out
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.layers.InputLayer((8, 8)), tf.keras.layers.LSTM(64), tf.keras.layers.Dense(10)]
    )
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado")
        hm = hls4ml.converters.convert_from_keras_model(
            model, hls_config=cfg, output_dir=str(Path(d) / "hls4ml"), backend="Vivado"
        )
        t1 = time.time()
        hm.compile()
        t2 = time.time()
        yh = hm.predict(np.ascontiguousarray(xte.astype(np.float32)))
        t3 = time.time()
        yk = model.predict(xte, verbose=0)
        out["hls4ml"] = {
            "convert s": round(t1 - t0, 1),
            "C sim s": round(t3 - t1, 1),
            "total s": round(t3 - t0, 1),
            "outputs != source": int(np.count_nonzero(np.asarray(yh).reshape(yk.shape) != yk)),
        }
    return out


#: ESE (Han et al., FPGA 2017): 282 GOP/s, dense-equivalent, at 200 MHz on its 1,024-cell speech
#: LSTM.  One step of an LSTM(1024) on 153 features holds 4 x 1024 x (153 + 1024) weights;
#: dense-equivalent operations are 2 per weight.
ESE_GOPS = 282.0


def ese_scale(
    pes,
    yosys_timeout: float,
    clock_mhz: float = 200.0,
    sequences: int = 4,
    cell: str = "lstm",
    yosys_pes=(),
    reset_after: bool = True,
):
    from hlsgen.backends.lstm_verilog import write_rtl
    from hlsgen.engines.lstm import plan_lstm
    from hlsgen.engines.lstm.flow import cycle_report
    from hlsgen.engines.lstm.synthetic import random_inputs, random_lstm
    from hlsgen.errors import HlsgenError
    from hlsgen.synth import run_yosys

    units, features, density = 1024, 153, 0.11
    dense_ops = 2 * (3 if cell == "gru" else 4) * units * (features + units)
    rows, res = [], []
    for pe in pes:
        t0 = time.time()
        g = random_lstm(
            1, features=features, units=units, steps=4, density=density, pe=pe, cell=cell, reset_after=reset_after
        )
        t1 = time.time()
        plan = plan_lstm(g, pe=pe)
        t2 = time.time()
        cyc = cycle_report(g, plan, random_inputs(g, sequences, seed=2))
        t3 = time.time()
        steps = cyc["model"]["step"]
        step = float(steps.mean())
        us = step / clock_mhz
        # the overlap's other setting (chosen by its estimated gain): what it would give
        alt = plan_lstm(g, pe=pe, overlap=not plan.overlap)
        alt_steps = cycle_report(g, alt, random_inputs(g, sequences, seed=2))["model"]["step"]
        rows.append(
            {
                "P": pe,
                "nnz/P": round(plan.nnz / pe),
                "index bits": plan.index_bits,
                "K": plan.scan_width,
                "E": plan.ew_lanes,
                "MAC phase cycles": round(cyc["mac_cycles_per_step_mean"]),
                "step cycles": round(step),
                "useful MAC/cycle/PE": round(float(cyc["model"]["useful"].sum() / (steps.sum() * pe)), 3),
                "overlap": "yes" if plan.overlap else "no",
                "the other way": round(float(cyc["model"]["useful"].sum() / (alt_steps.sum() * pe)), 3),
                "us/step": round(us, 2),
                "GOP/s (dense eq.)": round(dense_ops / (us * 1e-6) / 1e9, 1),
                "ESE GOP/s": ESE_GOPS,
                "generate s": round(t1 - t0, 1),
                "plan s": round(t2 - t1, 1),
                "cycle model s": round(t3 - t2, 1),
            }
        )
        print(".", end="", flush=True)
        if yosys_timeout > 0 and pe in yosys_pes:
            with tempfile.TemporaryDirectory() as d:
                t4 = time.time()
                rtl = write_rtl(plan, d)
                t5 = time.time()
                try:
                    r = run_yosys(d, rtl["top"], rtl["sources"], "xilinx", timeout=yosys_timeout)
                    figures = {k: r[k] for k in ("LUT", "FF", "DSP", "BRAM", "LUTRAM")}
                except HlsgenError as e:
                    figures = {"LUT": str(e).split(":")[-1].strip()}
                res.append(
                    {"P": pe, "write RTL s": round(t5 - t4, 1), **figures, "yosys s": round(time.time() - t5, 1)}
                )
    print()
    return rows, res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller model and fewer sequences")
    ap.add_argument("--skip-yosys", action="store_true")
    ap.add_argument("--skip-hls4ml", action="store_true")
    ap.add_argument("--ese", action="store_true", help="only section 4: ESE's LSTM(1024) shape")
    ap.add_argument("--ese-yosys", type=float, default=0, metavar="S", help="Yosys per P at ESE size, S seconds each")
    ap.add_argument("--ese-yosys-pes", default="32,128", metavar="P,P", help="the P that --ese-yosys synthesizes")
    a = ap.parse_args(argv)
    if a.ese:
        print("4. ESE's shape: LSTM(1024), 153 features, 11% density (load-balance-aware), 4 random sequences")
        print("   of 4 steps with 30% zero activations, exact cycle model, 200 MHz")
        yp = {int(v) for v in a.ese_yosys_pes.split(",") if v}
        rows, res = ese_scale((32, 128, 1024), a.ese_yosys, yosys_pes=yp)
        table(rows, list(rows[0]))
        if res:
            print("Yosys synth_xilinx at ESE size (--ese-yosys limit per P):")
            table(res, ["P", "write RTL s", "LUT", "FF", "DSP", "BRAM", "LUTRAM", "yosys s"])
        print("\n5. The same shape as a GRU (reset_after=True, rows [z; r; h_x; h_h] on the same array);")
        print("   dense-equivalent operations 2 x 3U(F + U); ESE's figure is for its LSTM")
        rows, _ = ese_scale((32, 128, 1024), 0, cell="gru")
        table(rows, list(rows[0]))
        print("\n6. The same GRU with reset_after=False (ONNX's default): two passes per step, the gates z, r")
        print("   over [x; h_q], then the candidate over [x; r * h_q], each with its MAC and element-wise phase")
        rows, _ = ese_scale((32, 128, 1024), 0, cell="gru", reset_after=False)
        table(rows, list(rows[0]))
        return 0
    units, feats, n = (64, 16, 4) if a.quick else (256, 64, 8)
    print(f"1. MAC efficiency, 10% density, LSTM({units}) on {feats} features, {n} random sequences of 4 steps")
    table(
        efficiency(units, feats, 4, n, (4, 8, 16, 32), (4, 8)),
        [
            "P",
            "pruning",
            "index_bits",
            "nnz/P",
            "max nnz/PE",
            "fillers",
            "MAC cycles (dense act.)",
            "nnz/P / cycle",
            "MAC/cycle/PE (real act.)",
        ],
    )
    if not a.skip_yosys:
        print("\n2. Yosys resources per P, zoo lstm_sparse (LSTM(64) + Dense(10))")
        table(resources((4, 8, 16, 32)), ["P", "target", "LUT", "FF", "DSP", "BRAM", "LUTRAM", "yosys s"])
    if not a.skip_hls4ml:
        print("\n3. Wall time on the 450 held-out digits: convert + C simulation")
        w = wall_time()
        rows = [{"tool": k, **v} for k, v in w.items()]
        cols = ["tool", "convert s", "C sim s", "total s", "outputs != source"]
        table([{c: r.get(c, "-") for c in cols} for r in rows], cols)
        print("hlsgen: sparse LSTM(64) 10%, ap_fixed, outputs compared with QKeras's own (= reference).")
        print("hls4ml: dense Keras LSTM(64) of the same shape, default ap_fixed<16,6>, compared with Keras.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

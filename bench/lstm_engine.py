"""Benchmark of the sparse LSTM engine (figures printed, not asserted).

    make bench            (or: python bench/lstm_engine.py [--quick])

1. MAC efficiency at 10% density for P in {4, 8, 16, 32}: load-balance-aware vs plain
   magnitude pruning, from the exact cycle model (checked against the RTL by the tests).
2. Yosys resources per P (7-series and Cyclone V) for the zoo model's size.
3. Wall time: hlsgen convert + C simulation vs hls4ml convert + compile + predict, for an
   LSTM of the same size, on the 450 held-out digits sequences.
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


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller model and fewer sequences")
    ap.add_argument("--skip-yosys", action="store_true")
    ap.add_argument("--skip-hls4ml", action="store_true")
    a = ap.parse_args(argv)
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

"""Benchmark of the streaming CNN engine on the zoo CNNs (prints figures; not a test).

    python bench/cnn_engine.py [--models cnn_small,...] [--skip-yosys] [--skip-hls4ml]
                               [--scale cnv_w2a2,cnv_w1a1,mnist_cnn | --skip-scale]
                               [--frames N] [--yosys-timeout S]

Per model:
1. Held-out accuracy (hlsgen's integer reference = QKeras), folding, DSP lanes, cycles per frame
   from the exact cycle model against the bottleneck bound MACs / lanes, frames/s at 200 MHz.
2. Resources from Yosys (7-series synth_xilinx, Cyclone V synth_intel_alm).
3. Against hls4ml on the same QKeras model: wall time of convert + C simulation of the 450
   held-out images, and how many outputs of each tool differ from QKeras's own forward pass.
4. Scale: FINN's CNV (w2a2, w1a1; the zoo's random-weight models) and a model shaped like
   hls4ml's example ``qkeras_mnist_cnn`` (random weights) at a stated frame rate: the time of
   every step (convert and its planning, C simulation, Verilator build + RTL run on a few
   frames, Yosys 7-series up to a time limit), cycles per frame against the bottleneck bound,
   lanes and resources; CNV-w1a1 once more at the frame rate of FINN's published CNV
   (BNN-PYNQ), whose Vivado figures are printed beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ZOO_CNNS = ["cnn_small", "cnn_binary", "cnn_ternary", "cnn_po2", "cnn_dw"]


def engine_figures(name: str, yosys: bool) -> dict:
    import hlsgen
    from hlsgen import zoo
    from hlsgen.engines.cnn.cycles import bound

    with tempfile.TemporaryDirectory() as d:
        proj = hlsgen.convert(name, Path(d) / "p")
        plan = proj.plan
        b = max(bound(plan).values())
        period = plan.timing["period"]
        row = {
            "model": name,
            "accuracy": zoo.info(name)["quantized_accuracy"],
            "folding": " ".join(
                f"{r['layer']}:{r['pe']}x{r['simd']}{'' if r['datapath'] == 'mul' else '/' + r['datapath']}"
                for r in plan.summary()["mvus"]
            ),
            "cycles/frame": period,
            "bound": int(round(b)),
            "ratio": round(period / b, 3),
            "frames/s": int(200e6 / period),
            "DSP lanes": plan.summary()["dsp_lanes"],
            "MACs skipped": sum(r["macs_skipped"] for r in plan.summary()["mvus"]),
        }
        if yosys:
            from hlsgen.synth import run_yosys

            hw = proj.hardware
            for t, tag in (("xilinx", "7s"), ("intel", "CV")):
                r = run_yosys(Path(d) / "p" / "rtl", hw["top"], hw["sources"], t)
                row[f"{tag} LUT"] = r["LUT"]
                row[f"{tag} FF"] = r["FF"]
                row[f"{tag} DSP"] = r["DSP"]
                row[f"{tag} BRAM"] = r["BRAM"]
    return row


def versus_hls4ml(name: str, with_hls4ml: bool) -> dict:
    import hlsgen
    from hlsgen import zoo
    from hlsgen.backends.csim import csim
    from hlsgen.frontends.keras.loader import load_model_file
    from hlsgen.zoo.build import digits

    _, xte, _, _ = digits()
    x = xte[..., None]
    model = load_model_file(str(zoo.path(name)))  # imports TensorFlow before either clock starts
    y_keras = model.predict(x, verbose=0).astype(np.float64)
    out = {"model": name}
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        proj = hlsgen.convert(name, Path(d) / "p")
        xr = proj.quantize_input(x)
        y = csim({"top": proj.hardware["hls_top"]}, Path(d) / "p" / "hls", xr, Path(d) / "w", "ap")
        t1 = time.time()
        y = proj.output_type.to_float(y).reshape(y_keras.shape)
        out["hlsgen s"] = round(t1 - t0, 1)
        out["hlsgen != QKeras"] = int(np.count_nonzero(y != y_keras))
    if not with_hls4ml:
        return out
    import hls4ml

    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        try:
            cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vivado")
            hm = hls4ml.converters.convert_from_keras_model(
                model, hls_config=cfg, output_dir=str(Path(d) / "h"), backend="Vivado", io_type="io_stream"
            )
            hm.compile()
            yh = np.asarray(hm.predict(np.ascontiguousarray(x.astype(np.float32)))).reshape(y_keras.shape)
            t1 = time.time()
            out["hls4ml s"] = round(t1 - t0, 1)
            out["hls4ml != QKeras"] = int(np.count_nonzero(yh.astype(np.float64) != y_keras))
        except Exception as e:  # report, do not hide: hls4ml cannot build every model
            out["hls4ml s"] = "failed"
            out["hls4ml != QKeras"] = f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"
    if isinstance(out.get("hls4ml s"), float):
        out["time ratio"] = round(out["hlsgen s"] / out["hls4ml s"], 2)
    return out


SCALE = {  # row: (model, frames/s asked at 200 MHz, lane budget)
    "cnv_w2a2": ("cnv_w2a2", 5000, 4096),
    "cnv_w1a1": ("cnv_w1a1", 5000, 4096),
    # FINN's CNV as published in BNN-PYNQ (the FINN paper's folding, bnn/src/network/cnv-pynq/hw/
    # config.h): its slowest layers take 32,768 cycles a frame, i.e. 6,103.5 frames/s at 200 MHz
    "cnv_w1a1@finn": ("cnv_w1a1", 6104, 8192),
    "mnist_cnn": ("mnist_cnn", 100_000, 1024),
}

# BNN-PYNQ's CNV (W1A1) on the Pynq-Z1 (xc7z020), Vivado 2016.1 utilization report in
# bnn/src/network/cnv-pynq/README.md; the whole overlay, its AXI/DMA shell and run-time weight
# loading included.  Cycles per frame from the folding in its config.h (fc layers 6 and 7:
# 256 x 512 / 4 and 512 x 512 / 8 lanes; conv0: 900 windows x 36 tiles = 32,400).
FINN_CNV = {"cycles/frame": 32768, "LUT": 30605, "FF": 34645, "BRAM36": 104, "BRAM18": 72, "DSP": 26}


def mnist_cnn(path: Path) -> Path:
    """hls4ml's example ``qkeras_mnist_cnn`` in shape (28 x 28 x 1; conv 16 3x3 ReLU, 6-bit
    quantized ReLU, pool, conv 16, pool, dense 10; 6-bit weights), with random weights and an
    8-bit input quantizer (the example has none; hlsgen needs the input grid)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense

    L = tf.keras.layers
    q = "quantized_bits(6,0,alpha=1)"
    model = tf.keras.Sequential(
        [
            L.InputLayer((28, 28, 1)),
            QActivation("quantized_bits(8,0,keep_negative=False)", name="input_q"),
            QConv2D(16, 3, kernel_quantizer=q, bias_quantizer=q, activation="relu", name="q_conv2d"),
            QActivation("quantized_relu(6,0)", name="q_activation"),
            L.MaxPooling2D(2, name="max_pooling2d"),
            QConv2D(16, 3, kernel_quantizer=q, bias_quantizer=q, activation="relu", name="q_conv2d_1"),
            QActivation("quantized_relu(6,0)", name="q_activation_1"),
            L.MaxPooling2D(2, name="max_pooling2d_1"),
            L.Flatten(name="flatten"),
            QDense(10, kernel_quantizer=q, bias_quantizer=q, name="q_dense"),
        ],
        name="mnist_cnn",
    )
    rng = np.random.default_rng(1)
    for w in model.weights:
        w.assign((rng.standard_normal(w.shape) * 0.3).astype(np.float32))
    model.save(path, include_optimizer=False)
    return path


def scale_figures(name: str, frames: int, yosys_timeout: float | None) -> dict:
    import hlsgen
    from hlsgen import zoo
    from hlsgen.backends.csim import csim
    from hlsgen.engines.cnn.cycles import bound
    from hlsgen.engines.cnn.engine import plan_cnn
    from hlsgen.engines.cnn.flow import rtl_check
    from hlsgen.engines.lstm.synthetic import random_inputs
    from hlsgen.errors import HlsgenError

    model, fps, lanes = SCALE[name]
    row = {"model": name}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        f = mnist_cnn(d / "m.h5") if model == "mnist_cnn" else zoo.write(model, d / f"{model}.h5")
        options = {"target_fps": fps, "lanes": lanes}
        t0 = time.time()
        proj = hlsgen.convert(str(f), d / "p", engine=options)
        row["convert s"] = round(time.time() - t0, 1)
        t0 = time.time()
        plan = plan_cnn(proj.graph, **options)  # the planning part of convert, again on its own
        row["plan s"] = round(time.time() - t0, 1)
        b = max(bound(plan).values())
        period = plan.timing["period"]
        row.update(
            {
                "fps asked": fps,
                "cycles/frame": period,
                "bound": int(round(b)),
                "ratio": round(period / b, 3),
                "frames/s": int(200e6 / period),
                "lanes": sum(s.p.lanes for s in plan.mvus),
                "DSP lanes": plan.summary()["dsp_lanes"],
            }
        )
        x = random_inputs(proj.graph, frames, 1, zero_fraction=0.3)
        hw = proj.hardware
        t0 = time.time()
        csim({"top": hw["hls_top"]}, d / "p" / "hls", x, d / "w", "ap")
        row[f"C sim {frames} fr. s"] = round(time.time() - t0, 1)
        t0 = time.time()
        res = rtl_check(proj.graph, plan, hw, d / "p" / "rtl", x, d / "rtl", probe=min(2, frames))
        row[f"RTL {frames} fr. s"] = round(time.time() - t0, 1)
        row["RTL equal"] = res["mismatches"] == 0 and res["cycles_equal"]
        if yosys_timeout:
            from hlsgen.synth import run_yosys

            t0 = time.time()
            try:
                r = run_yosys(d / "p" / "rtl", hw["top"], hw["sources"], "xilinx", timeout=yosys_timeout)
                row.update({f"7s {k}": r[k] for k in ("LUT", "FF", "DSP")})
                row["7s RAMB36/18"] = f"{r['cells'].get('RAMB36E1', 0)}/{r['cells'].get('RAMB18E1', 0)}"
            except HlsgenError as e:
                row["7s LUT"] = str(e).split(":")[-1].strip()[:40]
            row["Yosys s"] = round(time.time() - t0, 1)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(ZOO_CNNS))
    ap.add_argument("--skip-yosys", action="store_true")
    ap.add_argument("--skip-hls4ml", action="store_true")
    ap.add_argument("--scale", default=",".join(SCALE), help="scale models (FINN's CNV, hls4ml's MNIST CNN)")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--frames", type=int, default=2, help="frames in C simulation and RTL at scale")
    ap.add_argument("--yosys-timeout", type=float, default=3600, help="seconds for Yosys at scale (0: skip)")
    ap.add_argument("--only-scale", action="store_true")
    a = ap.parse_args(argv)
    from hlsgen.table import format_table

    if not a.skip_scale:
        rows = [scale_figures(n, a.frames, a.yosys_timeout or None) for n in a.scale.split(",")]
        print(f"At scale (random weights; RTL on {a.frames} frames with back-pressure; 200 MHz stated):")
        cols = list(dict.fromkeys(k for r in rows for k in r))
        print(format_table([{c: r.get(c, "") for c in cols} for r in rows], cols))
        f = FINN_CNV
        print(
            f"FINN's CNV (BNN-PYNQ cnv-pynq, W1A1, Vivado 2016.1 on xc7z020, whole overlay): "
            f"{f['cycles/frame']:,} cycles/frame, {f['LUT']:,} LUT / {f['FF']:,} FF / "
            f"RAMB36/18 {f['BRAM36']}/{f['BRAM18']} / {f['DSP']} DSP"
        )
        print()
        if a.only_scale:
            return

    names = a.models.split(",")
    rows = [engine_figures(n, not a.skip_yosys) for n in names]
    cols = list(rows[0].keys())
    print("Streaming CNN engine on the zoo (cycles from the exact cycle model, 200 MHz stated):")
    print(format_table(rows, cols))
    print()
    cmp_rows = [versus_hls4ml(n, not a.skip_hls4ml) for n in names]
    print("hlsgen vs hls4ml 1.3 (Vivado backend, io_stream, per-layer config from the QKeras model):")
    print("wall time of convert + C simulation of the 450 held-out images; outputs compared with QKeras.")
    cols = ["model", "hlsgen s", "hls4ml s", "time ratio", "hlsgen != QKeras", "hls4ml != QKeras"]
    print(format_table(cmp_rows, cols))


if __name__ == "__main__":
    main()

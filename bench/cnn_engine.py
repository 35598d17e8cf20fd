"""Benchmark of the streaming CNN engine on the zoo CNNs (prints figures; not a test).

    python bench/cnn_engine.py [--models cnn_small,...] [--skip-yosys] [--skip-hls4ml]

Per model:
1. Held-out accuracy (hlsgen's integer reference = QKeras), folding, DSP lanes, cycles per frame
   from the exact cycle model against the bottleneck bound MACs / lanes, frames/s at 200 MHz.
2. Resources from Yosys (7-series synth_xilinx, Cyclone V synth_intel_alm).
3. Against hls4ml on the same QKeras model: wall time of convert + C simulation of the 450
   held-out images, and how many outputs of each tool differ from QKeras's own forward pass.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(ZOO_CNNS))
    ap.add_argument("--skip-yosys", action="store_true")
    ap.add_argument("--skip-hls4ml", action="store_true")
    a = ap.parse_args(argv)
    from hlsgen.table import format_table

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

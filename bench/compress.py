"""Benchmark of `hlsgen compress` (figures printed, not asserted).

    make bench-compress      (or: python bench/compress.py [--quick] [--models mlp,cnn,lstm])

Trains, with fixed seeds, three float models on scikit-learn's digits at a size where
compression means something (an MLP 64-256-128-10, a CNN with 16 and 32 3x3 filters, an
LSTM of 128 units over the 8 rows), then runs each compression method alone and the methods
combined, and prints per run: the compression ratio against float32 (plain and Huffman
coded), the held-out accuracy before and after, whether the written model converts to an
exact hlsgen design, the time, and for a quantized result the engine's figures: cycles per
frame (CNN engine, which maps the MLP too) or per step (LSTM engine, 8 PEs), multiplier
lanes, weight memory bits, layers on the codebook datapath; ``--synth`` adds Yosys's LUT,
FF, DSP and BRAM (7-series).  ``--out DIR`` keeps the models and compress.json files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (label, --steps, options) per run; densities are for the largest layer (sqrt rule below it)
RUNS = {
    "mlp": [
        ("prune", "prune", {"density": 0.08}),
        ("quantize fixed:6", "quantize", {"scheme": "fixed:6"}),
        ("quantize po2:4 (INQ)", "quantize", {"scheme": "po2:4"}),
        ("cluster 4 bit", "cluster", {"cluster_bits": 4}),
        ("lowrank 0.9", "lowrank", {"energy": 0.9}),
        (
            "combined + distill",
            "prune,quantize,cluster,distill",
            {"density": 0.04, "scheme": "fixed:5", "cluster_bits": 3},
        ),
        (
            "budget cycles=512,dsp=24 (search)",
            "prune,quantize,cluster,distill",
            {"budget": "cycles=512,dsp=24", "scheme": "fixed:5", "cluster_bits": 3},
        ),
    ],
    "cnn": [
        ("prune", "prune", {"density": 0.1}),
        ("quantize fixed:6", "quantize", {"scheme": "fixed:6"}),
        ("quantize ternary", "quantize", {"scheme": "ternary"}),
        ("cluster 4 bit", "cluster", {"cluster_bits": 4}),
        ("lowrank 0.9", "lowrank", {"energy": 0.9}),
        ("combined + distill", "prune,quantize,cluster,distill", {"density": 0.06, "scheme": "fixed:6"}),
        (
            "combined, 5-bit",
            "prune,quantize,cluster,distill",
            {"density": 0.05, "scheme": "fixed:5", "cluster_bits": 3},
        ),
        (
            "budget dsp=16 (search)",
            "prune,quantize,cluster,distill",
            {"budget": "dsp=16", "scheme": "fixed:6", "cluster_bits": 4},
        ),
    ],
    "lstm": [
        ("prune (LBA, 8 PEs)", "prune", {"density": 0.1, "pe": 8}),
        ("quantize fixed:8", "quantize", {"scheme": "fixed:8"}),
        ("cluster 4 bit", "cluster", {"cluster_bits": 4}),
        ("combined + distill", "prune,quantize,cluster,distill", {"density": 0.1, "pe": 8, "scheme": "fixed:8"}),
        (
            "combined, 6-bit",
            "prune,quantize,cluster,distill",
            {"density": 0.08, "pe": 8, "scheme": "fixed:6", "cluster_bits": 3},
        ),
        (
            "budget cycles=1200,bram=4 (search)",
            "prune,quantize,cluster,distill",
            {"budget": "cycles=1200,bram=4", "pe": 8, "scheme": "fixed:8", "cluster_bits": 4},
        ),
    ],
}


def build(kind: str, out: Path) -> Path:
    """Train the float model ``kind`` on digits (seeded) and save it."""
    import tensorflow as tf

    from hlsgen.data import digits

    tf.keras.utils.set_random_seed(1)
    xtr, xte, ytr, yte = digits()
    L = tf.keras.layers
    if kind == "mlp":
        xtr = xtr.reshape(-1, 64)
        layers = [L.InputLayer((64,)), L.Dense(256, activation="relu"), L.Dense(128, activation="relu"), L.Dense(10)]
        epochs = 40
    elif kind == "cnn":
        xtr = xtr[..., None]
        layers = [
            L.InputLayer((8, 8, 1)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(64, activation="relu"),
            L.Dense(10),
        ]
        epochs = 30
    else:
        layers = [L.InputLayer((8, 8)), L.LSTM(128), L.Dense(10)]
        epochs = 40
    model = tf.keras.Sequential(layers, name=f"{kind}_float")
    model.compile(
        optimizer=tf.keras.optimizers.Adam(2e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    path = out / f"{kind}_float.h5"
    model.save(path, include_optimizer=False)
    return path


def hardware(path: Path, out: Path, synth: bool, engine: dict | None = None) -> dict:
    """Engine figures of a compressed (quantized) model: cycles, multiplier lanes, weight
    memory bits, layers on the codebook datapath; Yosys 7-series resources with ``synth``.
    ``engine``: the engine's options (a budget's folding)."""
    import json

    import hlsgen
    from hlsgen.engines.cnn.plan import CnnPlan, dsp_lanes

    proj = hlsgen.convert(str(path), out if synth else None, engine=engine or None)
    plan = proj.plan
    if isinstance(plan, CnnPlan):
        rows = plan.summary()["mvus"]
        hw = {
            "cycles": f"{plan.timing['period']}/frame",
            "mult lanes": dsp_lanes(plan),
            "weight mem (bits)": sum(r["weight_words"] * r["weight_bits"] for r in rows),
            "codebook": sum(r["datapath"] == "book" for r in rows),
        }
    else:
        perf = proj.engine_spec.describe(plan)["performance"]
        hw = {
            "cycles": f"{perf['cycles_per_step']:.0f}/step",
            "mult lanes": plan.pe,
            "weight mem (bits)": plan.pe * plan.depth * (plan.code_width + plan.index_bits),
            "codebook": int(plan.codebook is not None),
        }
    if synth:
        from hlsgen.cli import main as cli

        cli(["synth", str(out), "--target", "xilinx"])
        res = json.loads((out / "synth.json").read_text())["resources"]["xilinx"]
        hw.update({k: res.get(k) for k in ("LUT", "FF", "DSP", "BRAM")})
    return hw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 fine-tuning epochs per step (a smoke run)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--models", default="mlp,cnn,lstm")
    ap.add_argument("--out", help="keep the models and reports here")
    ap.add_argument("--synth", action="store_true", help="Yosys (7-series) on every quantized result")
    ap.add_argument("--only", help="runs whose label contains this text")
    args = ap.parse_args(argv)

    from hlsgen.compress.budget import Budget
    from hlsgen.compress.pipeline import Options, compress
    from hlsgen.compress.quantize import Scheme
    from hlsgen.frontends.keras.loader import quiet_tensorflow
    from hlsgen.project import design_figures
    from hlsgen.table import format_table

    quiet_tensorflow()
    epochs = 3 if args.quick else args.epochs
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for kind in args.models.split(","):
            t0 = time.time()
            src = build(kind, out)
            print(f"{kind}: trained in {time.time() - t0:.0f} s", flush=True)
            for label, steps, kw in RUNS[kind]:
                if args.only and args.only not in label:
                    continue
                kw = dict(kw)
                scheme = Scheme.parse(kw.pop("scheme", "fixed:8"))
                budget = Budget.parse([kw.pop("budget")] if "budget" in kw else [])
                opts = Options(steps=tuple(steps.split(",")), scheme=scheme, epochs=epochs, budget=budget, **kw)
                stem = f"{kind}_{len(rows)}_{steps.replace(',', '_')}_{scheme.kind}"
                t = time.time()
                r = compress(
                    src, out / f"{stem}.h5", None, opts, out / f"{stem}.json", out / f"{stem}.png",
                    planner=design_figures,
                )  # fmt: skip
                hw = r["hlsgen"]
                rows.append(
                    {
                        "model": kind,
                        "run": label,
                        "params": r["float32_bits"] // 32,
                        "ratio": f"{r['compression_ratio']:.1f}x",
                        "huffman": f"{r['compression_ratio_huffman']:.1f}x",
                        "acc before": f"{100 * r['accuracy_before']:.2f}",
                        "acc after": f"{100 * r['accuracy_after']:.2f}",
                        "loss (pt)": f"{100 * (r['accuracy_before'] - r['accuracy_after']):+.2f}",
                        "hlsgen": (
                            f"exact, {hw['class_mismatches_against_keras']} diff"
                            if hw.get("converts")
                            else "float (no hw)"
                            if "float model" in hw.get("why", "")
                            else f"refused: {hw.get('why', '')[:40]}"
                        ),
                        "time (s)": f"{time.time() - t:.0f}",
                    }
                )
                engine = None
                if budget:
                    name = "sparse_lstm" if kind == "lstm" else "streaming_cnn"
                    engine = {**budget.engine_options(name), **({"pe": kw["pe"]} if "pe" in kw else {})}
                    dens = ", ".join(f"{v:g}" for v in r["search"][-1]["densities"].values())
                    rows[-1]["run"] += f" -> densities {dens}, {len(r['search'])} points planned"
                if hw.get("converts"):
                    rows[-1].update(hardware(out / f"{stem}.h5", out / f"{stem}_hw", args.synth, engine))
                print(format_table(rows[-1:], list(rows[-1])), flush=True)  # as it goes
        print()
        print(f"fine-tuning: {epochs} epochs per step; accuracy on the 450 held-out digits")
        cols = list(dict.fromkeys(k for r in rows for k in r))
        print(format_table([{k: r.get(k, "") for k in cols} for r in rows], cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())

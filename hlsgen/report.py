"""`hlsgen synth`: lint, Yosys resources for 7-series and Cyclone V, and the engine summary."""

from __future__ import annotations

import json

from .bundle import CLOCK_MHZ
from .errors import HlsgenError
from .project import Project


def format_table(rows, cols) -> str:
    """Rows of dicts as aligned text columns (missing keys print empty)."""
    w = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(w[c]) for c in cols)]
    lines += ["  ".join(str(r.get(c, "")).ljust(w[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def synth_summary(proj: Project, targets: str = "both") -> int:
    from .engines.lstm.flow import cycle_report
    from .simulate import lint
    from .synth import run_yosys
    from .verify import default_inputs

    out, engine = proj.output_dir, proj.hardware
    if engine is None:
        print("no hardware in this project: the model has no engine yet (nothing to synthesize)")
        return 0
    rtl = out / "rtl"
    warnings = lint(rtl, engine["sources"], engine["top"])
    if warnings:
        raise HlsgenError(f"verilator --lint-only -Wall reports: {warnings.strip().splitlines()[0]}", file=str(rtl))
    print(f"lint: verilator --lint-only -Wall: clean ({len(engine['sources'])} files)")
    res = {}
    for t in ("xilinx", "intel") if targets == "both" else (targets,):
        res[t] = run_yosys(rtl, engine["top"], engine["sources"], t)
    rows = [
        {"target": {"xilinx": "7-series (synth_xilinx)", "intel": "Cyclone V (synth_intel_alm)"}[t], **r}
        for t, r in res.items()
    ]
    print("resources (Yosys; no latches):")
    print(format_table(rows, ["target", "LUT", "FF", "DSP", "BRAM", "LUTRAM", "CARRY"]))
    plan = proj.plan
    if engine.get("engine") == "streaming_cnn":
        return _cnn_summary(proj, res)
    x, what = default_inputs(proj)
    cyc = cycle_report(proj.graph, plan, proj.quantize_input(x))
    vfile = out / "verify.json"
    verified = None
    if vfile.is_file():
        v = json.loads(vfile.read_text())
        verified = [c for c in v.get("checks", []) if "cycles" in c]
    s = plan.summary()
    step = cyc["cycles_per_step_mean"]
    lat = cyc["sequence_latency"]
    summary = {
        "pe": plan.pe,
        "index_bits": plan.index_bits,
        "nnz": plan.nnz,
        "density": s["density"],
        "nnz_per_pe": s["nnz_per_pe"],
        "fillers": plan.fillers,
        "cycles_per_step": round(step, 2),
        "mac_cycles_per_step": round(cyc["mac_cycles_per_step_mean"], 2),
        "bound_nnz_over_p": round(cyc["bound_nnz_per_pe"], 2),
        "mac_per_cycle_per_pe": round(cyc["mac_per_cycle_per_pe"], 4),
        "nnz_per_cycle_per_pe": round(cyc["nnz_per_cycle_per_pe"], 4),
        "sequence_latency_cycles": lat,
        "clock_mhz": CLOCK_MHZ,
        "latency_us": round(lat / CLOCK_MHZ, 3),
        "inputs": what,
        "resources": res,
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"engine: {plan.pe} PEs, {plan.index_bits}-bit indices, {plan.nnz} non-zeros ({s['density']:.1%}), "
        f"per PE {s['nnz_per_pe']['min']}..{s['nnz_per_pe']['max']}, {plan.fillers} fillers"
    )
    print(
        f"cycles per step: {step:.1f} mean over {what} (MAC phase {cyc['mac_cycles_per_step_mean']:.1f}, "
        f"bound nnz/P = {cyc['bound_nnz_per_pe']:.1f}; element-wise {plan.units + plan.ew_latency})"
    )
    print(
        f"MAC/cycle/PE: {cyc['mac_per_cycle_per_pe']:.3f} on {what} (non-zero weight x non-zero activation); "
        f"{cyc['nnz_per_cycle_per_pe']:.3f} with every activation non-zero (nnz/P = {plan.nnz / plan.pe:.0f} "
        f"in {cyc['dense_mac_cycles']} cycles; 1.0 is the limit)"
    )
    print(
        f"latency: {lat} cycles per sequence = {lat / CLOCK_MHZ:.2f} us at {CLOCK_MHZ:.0f} MHz (clock stated, not timed)"
    )
    if verified:
        c = verified[0]
        print(
            f"verified: RTL {c['vectors']} sequences, {c['mismatches']} mismatches, cycles "
            f"{'equal to' if c['cycles_equal_model'] else 'DIFFERENT from'} the model"
        )
    print(f"wrote {out / 'synth.json'}")
    return 0


def _cnn_summary(proj: Project, res: dict) -> int:
    """Per-layer folding, skipped MACs, cycles per frame against the MACs/(PE*SIMD) bound."""
    from .engines.cnn.cycles import bound

    out, plan = proj.output_dir, proj.plan
    t = plan.timing
    b = bound(plan)
    worst = max(b.values()) if b else 0.0
    rows = []
    for r in plan.summary()["mvus"]:
        rows.append(
            {
                "layer": r["layer"],
                "PE": r["pe"],
                "SIMD": r["simd"],
                "datapath": r["datapath"],
                "tiles": f"{r['tiles']}/{r['tiles_dense']}",
                "MACs/frame": r["macs"],
                "skipped": r["macs_skipped"],
                "bound": f"{b[r['layer']]:.0f}",
            }
        )
    print("layers (matrix-vector units):")
    print(format_table(rows, ["layer", "PE", "SIMD", "datapath", "tiles", "MACs/frame", "skipped", "bound"]))
    fps = CLOCK_MHZ * 1e6 / t["period"]
    summary = {
        "engine": "streaming_cnn",
        "layers": rows,
        "cycles_per_frame": t["period"],
        "bottleneck_bound": worst,
        "ratio_to_bound": round(t["period"] / worst, 4) if worst else None,
        "latency_cycles": t["latency"],
        "clock_mhz": CLOCK_MHZ,
        "frames_per_second": round(fps, 1),
        "dsp_lanes": plan.summary()["dsp_lanes"],
        "resources": res,
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"cycles per frame: {t['period']} (bottleneck bound MACs/(PE*SIMD) = {worst:.0f}, "
        f"ratio {t['period'] / worst:.3f}); latency {t['latency']} cycles"
    )
    print(
        f"throughput: {fps:,.0f} frames/s at {CLOCK_MHZ:.0f} MHz (clock stated, not timed); "
        f"{summary['dsp_lanes']} fixed-point multiplier lanes"
    )
    print(f"wrote {out / 'synth.json'}")
    return 0

"""The streaming CNN engine's registration: options, plan (stages, then FIFO sizing), figures."""

from __future__ import annotations

from ..registry import CODEBOOK, Engine, Option
from .cycles import bound, restore_sizing, size_fifos, sizing_state
from .flow import rtl_check
from .plan import MAX_MUL_A, MAX_MUL_B, CnnPlan, conv_matrix, fold_options, plan_stages, tile_counts

#: PE x SIMD lanes allowed in all when --lanes is not given
DEFAULT_LANES = 64
FEED_FORWARD = {"Conv", "Dense", "Pool", "Activation", "Reshape", "Add"}


def plan_cnn(
    graph,
    fold: dict | None = None,
    target_fps: float | None = None,
    dsp: int | None = None,
    lanes: int = DEFAULT_LANES,
    clock_mhz: float = 200.0,
    codebook_bits: int = 8,
) -> CnnPlan:
    """Stages and folding (:func:`plan_stages`), then FIFO depths from the cycle model."""
    plan = plan_stages(graph, fold, target_fps, dsp, lanes, clock_mhz, codebook_bits)
    # window generators that share their trailing padding's cycles with the next row's and
    # frame's (hw/hg_window.v MR, MC): the sharing costs logic (the load side's row and column,
    # masks), so it stays only if the modelled frame period is shorter with it; both ways are
    # sized from the same unsized plan (sizing drops FIFOs)
    shared = [(s, s.p.mr, s.p.mc) for s in plan.stages if s.kind == "window" and (s.p.mr or s.p.mc)]
    unsized = sizing_state(plan) if shared else None
    plan.timing = size_fifos(plan)
    if shared:
        with_sharing = sizing_state(plan), plan.timing
        restore_sizing(plan, unsized)
        for s, _, _ in shared:
            s.p.mr = s.p.mc = 0
        plain = size_fifos(plan)
        if plain["period"] > with_sharing[1]["period"]:
            restore_sizing(plan, with_sharing[0])
            for s, mr, mc in shared:
                s.p.mr, s.p.mc = mr, mc
            plan.timing = with_sharing[1]
            plan.notes.append(
                f"{', '.join(sorted({s.layers[0] for s, _, _ in shared}))}: the window generator shares the "
                f"trailing padding's cycles with the next row's and frame's "
                f"({plain['period']} -> {plan.timing['period']} cycles a frame)"
            )
        else:
            plan.timing = plain
    # an activation that stands alone (after a pool or an Add) takes its latency + 1 cycles an
    # item in hw/hg_proc.v, which more lanes do not shorten: say where it sets the pace
    mvu_max = max((s.p.tiles * s.items_in for s in plan.mvus), default=0)
    by_name = {s.name: s for s in plan.stages}
    for s in plan.stages:
        if s.kind == "act" and s.p.cost * s.items_in > mvu_max:
            src = by_name[s.srcs[0][0]]
            while src.kind == "fifo":
                src = by_name[src.srcs[0][0]]
            hint = ""
            if src.kind == "reduce" and src.p.mode == "max":
                hint = "; a monotone activation placed before the max pool would run in the layer's lanes"
            plan.notes.append(
                f"{s.layers[0]}: this activation stands alone and takes {s.p.cost} cycles an item "
                f"({s.p.cost * s.items_in} a frame; the slowest matrix-vector unit {mvu_max}){hint}"
            )
    for s in plan.mvus:
        q = s.p
        ww = q.book_width if q.datapath == "book" else q.code_width
        if q.datapath in ("mul", "book") and (q.x_width > MAX_MUL_A or ww > MAX_MUL_B):
            plan.notes.append(f"{s.layers[0]}: {q.x_width}x{ww}-bit products need more than one DSP per lane")
        if q.datapath == "book":
            plan.notes.append(
                f"{s.layers[0]}: {len(q.codebook) - 1} shared weights: {q.code_width}-bit codebook indices "
                f"stored instead of {q.book_width}-bit weights, looked up before the multiplier"
            )
    return plan


class StreamingCnnEngine(Engine):
    name = "streaming_cnn"
    title = "streaming CNN engine"
    options = (
        Option("fold", dict, "CNN engine: a layer's folding"),
        Option("target_fps", float, "CNN engine: frames per second to reach (at --clock)"),
        Option("dsp", int, "CNN engine: multiplier lanes allowed for fixed-point layers"),
        Option("lanes", int, "CNN engine: PE x SIMD lanes allowed in all (default 64)"),
        Option("clock_mhz", float, "CNN engine: clock in MHz for --fps (default 200)", positive=True),
        CODEBOOK,
    )
    backends = ("cnn_verilog", "cnn_hls")
    readme_template = "cnn_bundle_readme.md.j2"

    def maps(self, graph) -> bool:
        ops = {n.op for n in graph.nodes[1:]}
        return bool(ops & {"Conv", "Pool", "Dense"}) and not ops - FEED_FORWARD

    def plan(self, graph, options: dict) -> CnnPlan:
        return plan_cnn(graph, **options)

    def options_from_config(self, graph, cfg, options: dict) -> tuple[dict, list[str]]:
        """hls4ml's ReuseFactor R of a Dense/Conv layer -> the folding with the fewest lanes
        whose cycles per output item (zero tiles skipped) are at most R: hls4ml's rate, or
        better.  A folding given with --fold wins."""
        given = dict(options.get("fold") or {})
        fold, notes = {}, []
        for node in graph:
            if node.op not in ("Dense", "Conv"):
                continue
            r = cfg.reuse_factor(node.name, node.op)
            if r is None or node.name in given:
                continue
            w = conv_matrix(node)
            cand = []
            for lanes_n, pe, simd in fold_options(w, node):
                cycles = int(tile_counts(w, pe, simd).sum())
                cand.append((cycles <= r, -lanes_n if cycles <= r else -cycles, simd, pe, cycles))
            ok, _, simd, pe, cycles = max(cand)
            fold[node.name] = (pe, simd)
            notes.append(
                f"{node.name}: ReuseFactor {r} -> PE {pe} x SIMD {simd} ({cycles} cycles per item"
                + ("" if ok else f"; no folding reaches {r}, this is the fastest")
                + ")"
            )
        if not fold:
            return {}, notes
        out = {"fold": {**fold, **given}}
        total = sum(pe * simd for pe, simd in out["fold"].values())
        if "lanes" not in options and total > DEFAULT_LANES:
            out["lanes"] = total
            notes.append(f"lane budget raised to the {total} lanes the ReuseFactors ask for (--lanes to cap it)")
        return out, notes

    def describe(self, plan: CnnPlan) -> dict:
        return {"timing": {k: plan.timing[k] for k in ("latency", "period")}}

    def report_data(self, graph, plan: CnnPlan, x_raw) -> list[dict]:
        b = bound(plan)
        fifos = [s for s in plan.stages if s.kind == "fifo"]
        peaks = plan.timing.get("fifo_peaks", {})
        out = [
            {
                "kind": "bar",
                "title": f"MACs/(PE x SIMD) per layer against the engine's {plan.timing['period']} cycles per frame",
                "xlabel": "layer",
                "ylabel": "cycles per frame",
                "labels": list(b),
                "values": [float(v) for v in b.values()],
                "ref": float(plan.timing["period"]),
            }
        ]
        if fifos:
            out.append(
                {
                    "kind": "bar",
                    "title": "FIFO depths (peak occupancy + 1 in the cycle model)",
                    "xlabel": "FIFO",
                    "ylabel": "items",
                    "labels": [s.name for s in fifos],
                    "values": [int(s.p.depth) for s in fifos],
                    "values2": [int(peaks.get(s.name, 0)) for s in fifos],
                    "label2": "peak occupancy",
                }
            )
        return out

    def convert_lines(self, plan: CnnPlan) -> list[str]:
        t = plan.timing
        b = bound(plan)
        worst = max(b.values()) if b else 0
        lines = [
            f"  {self.name} engine: {len(plan.mvus)} MVUs, {plan.summary()['dsp_lanes']} multiplier lanes; "
            f"{t['period']} cycles per frame (bottleneck bound {worst:.0f}), latency {t['latency']} cycles; "
            "rtl/ hls/ vivado/ vitis_hls/ quartus/ and a FuseSoC core"
        ]
        for r in plan.summary()["mvus"]:
            lines.append(
                f"    {r['layer']}: PE {r['pe']} x SIMD {r['simd']}, {r['datapath']} datapath, "
                f"{r['tiles']}/{r['tiles_dense']} tiles, {r['macs_skipped']} of {r['macs']} MACs skipped per frame; "
                f"weights {r['weight_words']} x {r['weight_bits']} bits"
            )
        for r in plan.summary()["line_buffers"]:
            lines.append(f"    {r['layer']}: line buffer {r['words']} x {r['bits']} bits (RAM)")
        return lines + [f"  note: {n}" for n in plan.notes]

    def rtl_check(self, graph, plan, hardware, rtl_dir, x_raw, work_dir, seed: int = 1) -> dict:
        res = rtl_check(graph, plan, hardware, rtl_dir, x_raw, work_dir, seed=seed)
        return {
            "vectors": int(len(x_raw)),
            "values": int(res["words"]),
            "mismatches": int(res["mismatches"]) + int(res["bad_tlast"]),
            "cycles": {
                "frames_timed": len(res["last_out"]),
                "last_word_cycles_measured": res["last_out"],
                "last_word_cycles_model": res["model_last_out"],
                "period_model": plan.timing["period"],
                "latency_model": plan.timing["latency"],
            },
            "cycles_equal_model": bool(res["cycles_equal"]),
        }

    def verify_lines(self, check: dict) -> list[str]:
        cyc = check["cycles"]
        ok = "equal to" if check["cycles_equal_model"] else "DIFFERENT from"
        return [
            f"  cycles: last word of the first {cyc['frames_timed']} frames at {cyc['last_word_cycles_measured']}, "
            f"{ok} the cycle model {cyc['last_word_cycles_model']}"
        ]

    def synth_summary(self, graph, plan: CnnPlan, resources, x_raw, what, verified, clock_mhz: float):
        """Per-layer folding, skipped MACs, cycles per frame against the MACs/(PE*SIMD) bound."""
        from ...table import format_table

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
        fps = clock_mhz * 1e6 / t["period"]
        summary = {
            "engine": self.name,
            "layers": rows,
            "cycles_per_frame": t["period"],
            "bottleneck_bound": worst,
            "ratio_to_bound": round(t["period"] / worst, 4) if worst else None,
            "latency_cycles": t["latency"],
            "clock_mhz": clock_mhz,
            "frames_per_second": round(fps, 1),
            "dsp_lanes": plan.summary()["dsp_lanes"],
            "resources": resources,
        }
        lines = [
            "layers (matrix-vector units):",
            format_table(rows, ["layer", "PE", "SIMD", "datapath", "tiles", "MACs/frame", "skipped", "bound"]),
            f"cycles per frame: {t['period']} (bottleneck bound MACs/(PE*SIMD) = {worst:.0f}, "
            f"ratio {t['period'] / worst:.3f}); latency {t['latency']} cycles",
            f"throughput: {fps:,.0f} frames/s at {clock_mhz:.0f} MHz (clock stated, not timed); "
            f"{summary['dsp_lanes']} fixed-point multiplier lanes",
        ]
        return summary, lines

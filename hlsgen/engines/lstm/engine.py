"""The sparse LSTM engine's registration: options, plan, figures, RTL check, summaries."""

from __future__ import annotations

import numpy as np

from ...compress.prune import imbalance, pe_map
from ..registry import CODEBOOK, Engine, Option
from .flow import cycle_report, rtl_check
from .plan import PASS_NAMES, LstmPlan, plan_lstm


class SparseLstmEngine(Engine):
    name = "sparse_lstm"
    title = "sparse LSTM engine"
    options = (
        Option("pe", int, "LSTM engine: processing elements (default 8)"),
        Option("index_bits", int, "LSTM engine: relative row index bits (default: chosen from the gaps)"),
        Option("afifo_depth", int, "LSTM engine: activation FIFO depth per PE (default 16)"),
        Option("jq_depth", int, "LSTM engine: job queue depth per PE (default 4)", cli=False),
        Option("ew_lanes", int, "LSTM engine: element-wise lanes, a power of two (default: from the MAC phase)"),
        Option(
            "scan_width", int, "LSTM engine: columns scanned per cycle, a power of two (default: from the MAC phase)"
        ),
        Option(
            "acc_ram",
            bool,
            "LSTM engine: accumulators in RAM (default: whenever P divides the units and E divides P)",
            cli=False,
        ),
        Option(
            "overlap",
            bool,
            "LSTM engine: scan the next step's input during the element-wise phase (default: with RAM accumulators)",
            cli=False,
        ),
        Option("pad", bool, "LSTM engine: pad the gate rows when P does not divide them", cli=False),
        CODEBOOK,
    )
    backends = ("lstm_verilog", "lstm_hls")
    readme_template = "bundle_readme.md.j2"

    def maps(self, graph) -> bool:
        nodes = graph.nodes
        return len(nodes) >= 2 and nodes[1].op in ("LSTM", "GRU")

    def plan(self, graph, options: dict) -> LstmPlan:
        return plan_lstm(graph, **options)

    def describe(self, plan: LstmPlan) -> dict:
        """``performance``: the cycle model on random sequences with 30% zero activations."""
        graph = plan.graph
        if graph is None:
            return {"ew_latency": plan.ew_latency}
        from .synthetic import random_inputs

        n = 16
        cyc = cycle_report(graph, plan, random_inputs(graph, n, seed=0))
        steps = cyc["model"]["step"]
        return {
            "ew_latency": plan.ew_latency,
            "performance": {
                "cycles_per_step": round(float(steps.mean()), 2),
                # useful MACs (non-zero weight x non-zero activation) over whole steps, all phases
                "mac_per_cycle_per_pe": round(float(cyc["model"]["useful"].sum() / (steps.sum() * plan.pe)), 4),
                "mac_phase_per_cycle_per_pe": round(cyc["mac_per_cycle_per_pe"], 4),
                "latency_cycles": int(cyc["sequence_latency"]),
                "inputs": f"{n} random sequences, 30% zero activations (cycle model)",
            },
        }

    def convert_lines(self, plan: LstmPlan) -> list[str]:
        s = plan.summary()
        lines = [
            f"  {self.name} engine: {s['pe']} PEs, {s['index_bits']}-bit indices, {s['scan_width']} column"
            f"{'s' if s['scan_width'] > 1 else ''} scanned per cycle, {s['nnz']} non-zeros "
            f"(per PE {s['nnz_per_pe']['min']}..{s['nnz_per_pe']['max']}), {s['fillers']} fillers; "
            "rtl/ hls/ vivado/ vitis_hls/ quartus/ and a FuseSoC core"
        ]
        return lines + [f"  note: {n}" for n in s["notes"]]

    def info_lines(self, graph, pe: int | None = None) -> list[str]:
        lines = []
        for cell in (n for n in graph.nodes if n.op in ("LSTM", "GRU")):  # every stacked layer
            m = np.vstack([cell.kernel.raw, cell.recurrent.raw])
            for p in (pe,) if pe else (4, 8, 16):
                if p <= m.shape[1]:
                    # as the PE array holds the rows (a GRU with reset_after=False: per pass)
                    where = pe_map(
                        cell.op.lower(), cell.kernel.raw.shape[0], cell.units, p, cell.op != "GRU" or cell.reset_after
                    )
                    b = imbalance(m, p, *where)
                    lines.append(
                        f"load balance '{cell.name}' over {p} PEs: non-zeros per PE {b['min']}..{b['max']} "
                        f"(mean {b['mean']}), imbalance {b['imbalance']:.3f} (cycles vs a perfect balance)"
                    )
        return lines

    def rtl_check(self, graph, plan, hardware, rtl_dir, x_raw, work_dir, seed: int = 1) -> dict:
        res = rtl_check(graph, plan, hardware, rtl_dir, x_raw, work_dir, seed=seed)
        cyc = cycle_report(graph, plan, x_raw, res["cycle_model"])
        return {
            "vectors": int(len(x_raw)),
            "values": int(res["words"]),
            "mismatches": int(res["mismatches"]) + int(res["bad_tlast"]),
            "cycles": {
                "steps_checked": res["steps"],
                "mac_phases_equal_model": res["mac_model_equal"],
                "elementwise_phases_equal_model": res["ew_model_equal"],
                "head_phases_equal_model": res["head_model_equal"],
                "latency_measured": res["latency"],
                "latency_model": res["latency_model"],
                "cycles_per_step_mean": cyc["cycles_per_step_mean"],
                "mac_cycles_per_step_mean": cyc["mac_cycles_per_step_mean"],
                "mac_per_cycle_per_pe": cyc["mac_per_cycle_per_pe"],
                "nnz_per_cycle_per_pe": cyc["nnz_per_cycle_per_pe"],
                "bound_nnz_per_pe": cyc["bound_nnz_per_pe"],
                "sequence_latency": cyc["sequence_latency"],
            },
            "cycles_equal_model": bool(
                res["mac_model_equal"] and res["ew_model_equal"] and res["head_model_equal"] and res["latency_equal"]
            ),
        }

    def report_data(self, graph, plan: LstmPlan, x_raw) -> list[dict]:
        cyc = cycle_report(graph, plan, x_raw)
        step = cyc["model"]["step"]
        return [
            {
                "kind": "bar",
                "title": "non-zeros per PE (load balance)",
                "xlabel": "PE",
                "ylabel": "non-zero weights",
                "labels": [str(p) for p in range(plan.pe)],
                "values": list(plan.nnz_per_pe),
                "ref": plan.nnz / plan.pe,
            },
            *(
                {
                    "kind": "image",
                    "title": f"sparsity of {_layer_name(lp)}'s stacked matrix [kernel; recurrent] (white: non-zero)",
                    "xlabel": "gate row",
                    "ylabel": "column (input features, then hidden units)",
                    "matrix": (lp.matrix != 0).astype(int).tolist(),
                }
                for lp in plan.layers
            ),
            {
                "kind": "line",
                "title": "cycles per time step (cycle model, mean over the inputs)",
                "xlabel": "time step",
                "ylabel": "cycles",
                "x": list(range(1, step.shape[1] + 1)),
                "y": [float(v) for v in step.mean(axis=0)],
            },
        ]

    def verify_lines(self, check: dict) -> list[str]:
        cyc = check["cycles"]
        ok = "equal to" if check["cycles_equal_model"] else "DIFFERENT from"
        return [
            f"  cycles: {cyc['steps_checked']} steps, every phase {ok} the cycle model; "
            f"latency {cyc['latency_measured']} (model {cyc['latency_model']})"
        ]

    def synth_summary(self, graph, plan: LstmPlan, resources, x_raw, what, verified, clock_mhz: float):
        cyc = cycle_report(graph, plan, x_raw)
        s = plan.summary()
        step = cyc["cycles_per_step_mean"]
        lat = cyc["sequence_latency"]
        summary = {
            "pe": plan.pe,
            "index_bits": plan.index_bits,
            "nnz": plan.nnz,
            "density": s["density"],
            "nnz_per_pe": s["nnz_per_pe"],
            "fillers": s["fillers"],
            "cycles_per_step": round(step, 2),
            "mac_cycles_per_step": round(cyc["mac_cycles_per_step_mean"], 2),
            "bound_nnz_over_p": round(cyc["bound_nnz_per_pe"], 2),
            "mac_per_cycle_per_pe": round(cyc["mac_per_cycle_per_pe"], 4),
            "nnz_per_cycle_per_pe": round(cyc["nnz_per_cycle_per_pe"], 4),
            "sequence_latency_cycles": lat,
            "clock_mhz": clock_mhz,
            "latency_us": round(lat / clock_mhz, 3),
            "inputs": what,
            "resources": resources,
        }
        lines = [
            f"engine: {plan.pe} PEs, {plan.index_bits}-bit indices, {plan.nnz} non-zeros ({s['density']:.1%}), "
            f"per PE {s['nnz_per_pe']['min']}..{s['nnz_per_pe']['max']}, {s['fillers']} fillers",
            f"cycles per step: {step:.1f} mean over {what} (MAC phase {cyc['mac_cycles_per_step_mean']:.1f}"
            + (" past the pre-scan overlapped with the element-wise phase" if plan.overlap else "")
            + ", "
            f"bound nnz/P = {cyc['bound_nnz_per_pe']:.1f}; element-wise "
            + " + ".join(
                f"{p.ew_groups + p.ew_latency} ({p.ew_lanes} lane{'s' if p.ew_lanes > 1 else ''})" for p in plan.layers
            )
            + (f", {len(plan.layers)} layers" if len(plan.layers) > 1 else "")
            + ")",
            f"MAC/cycle/PE: {cyc['mac_per_cycle_per_pe']:.3f} on {what} (non-zero weight x non-zero activation); "
            f"{cyc['nnz_per_cycle_per_pe']:.3f} with every activation non-zero (nnz/P = {plan.nnz / plan.pe:.0f} "
            f"in {cyc['dense_mac_cycles']} cycles; 1.0 is the limit)",
            f"latency: {lat} cycles per sequence = {lat / clock_mhz:.2f} us at {clock_mhz:.0f} MHz "
            "(clock stated, not timed)",
        ]
        if verified:
            c = verified[0]
            lines.append(
                f"verified: RTL {c['vectors']} sequences, {c['mismatches']} mismatches, cycles "
                f"{'equal to' if c['cycles_equal_model'] else 'DIFFERENT from'} the model"
            )
        return summary, lines


def _layer_name(lp: LstmPlan) -> str:
    name = f"'{lp.cell_node.name}'" if lp.cell_node is not None else "the layer"
    return f"{name} ({PASS_NAMES[lp.gru_pass]} pass)" if lp.gru_pass else name

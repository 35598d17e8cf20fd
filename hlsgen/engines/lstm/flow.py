"""Build and check the sparse LSTM engine: RTL against the reference and the cycle model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ir import Graph
from ...reference.execute import gru_steps, lstm_steps, predict_int
from .cycles import ew_cycles, head_cycles, sequence_cycles, sequence_latency
from .cycles import mac_cycles as mac_cycles_of
from .plan import LstmPlan


def steps_of(graph: Graph, plan: LstmPlan):
    """Per step, per recurrent layer of ``plan``, the activations ``(x_t, hq)`` the layer scans:
    its input at step t (the model's input, or the layer before's output after any
    requantization) and its quantized previous state, from the reference."""
    from ...reference.execute import trace

    # a GRU's candidate pass (reset_after=False) scans r * h_q in place of h_q
    cells = [(p.cell_node or graph.nodes[1], p.gru_pass) for p in plan.layers]

    def gen(x_raw):
        vals = trace(graph, x_raw) if len(cells) > 1 else {}
        runs = []
        for c, gp in cells:
            if gp == 2:
                continue  # the gates pass's run gives both
            src = c.inputs[0]
            xin = x_raw if src == graph.nodes[0].name else vals[src]
            run = gru_steps if c.op == "GRU" else lstm_steps
            runs.append((gp, run(c, graph[src].spec, np.asarray(xin, dtype=np.int64))))
        for per_step in zip(*(r for _, r in runs), strict=True):
            acts = []
            for (gp, _), st in zip(runs, per_step, strict=True):
                acts.append((st[0], st[1]))
                if gp == 1:  # the candidate pass scans x_t and r * h_q
                    acts.append((st[0], st[3]))
            yield acts

    return gen


def cycle_report(graph: Graph, plan: LstmPlan, x_raw: np.ndarray, cy: dict | None = None) -> dict:
    """Model cycles for a batch, with the MAC-efficiency figures the summary prints
    (``cy``: the :func:`sequence_cycles` result for the same inputs, if already computed)."""
    if cy is None:
        cy = sequence_cycles(plan, x_raw, steps_of(graph, plan))
    mac_cycles = cy["mac"]
    dense = sum(mac_cycles_of(p, np.ones(p.ncol, dtype=bool))[0] for p in plan.layers)
    return {
        "model": cy,
        "cycles_per_step_mean": float(cy["step"].mean()),
        "mac_cycles_per_step_mean": float(mac_cycles.mean()),
        "bound_nnz_per_pe": plan.nnz / plan.pe,
        "bound_balanced": max(plan.nnz_per_pe),
        # MACs actually needed (non-zero weight x non-zero activation) per cycle and PE of the
        # MAC phases, whole (a pre-scan's share hidden in the element-wise phase counted)
        "mac_per_cycle_per_pe": float(cy["useful"].sum() / (cy["mac_plain"].sum() * plan.pe)),
        # every activation non-zero: nnz / P against the MAC phase (1.0 is the limit)
        "dense_mac_cycles": dense,
        "nnz_per_cycle_per_pe": float(plan.nnz / plan.pe / dense),
        "sequence_latency": first_latency(plan, cy),
        "head_cycles": head_cycles(plan),
    }


def first_latency(plan: LstmPlan, cy: dict) -> int:
    """:func:`sequence_latency` of the first sequence of a :func:`sequence_cycles` result."""

    def gated(t, g):
        return mac_cycles_of(plan, cy["nonzero0"][0, t], cy["tables"][0], g)[0]

    return sequence_latency(plan, cy["mac_plain"][0].tolist(), gated)


def rtl_check(
    graph: Graph,
    plan: LstmPlan,
    rtl: dict,
    rtl_dir,
    x_raw: np.ndarray,
    work_dir,
    seed: int = 1,
    p_bubble: float = 0.25,
    p_stall: float = 0.25,
) -> dict:
    """Simulate the RTL on raw inputs [N, T, F]; compare outputs with the reference and every
    MAC, element-wise and head phase, and the first sequence's latency, with the cycle model.

    ``rtl``: ``top``, ``sources`` and ``obw`` (output word bits), as :func:`write_rtl` returns
    them and ``engine.json`` records them.  The model's cycles come back as ``cycle_model``.
    """
    from ...simulate import run_rtl

    x_raw = np.asarray(x_raw, dtype=np.int64)
    expected = predict_int(graph, x_raw).reshape(x_raw.shape[0], -1)
    cy = sequence_cycles(plan, x_raw, steps_of(graph, plan))
    # bubbles and stalls slow a run down a few times at most: far beyond that, it hangs
    bound = int(20 * (cy["compute"].sum() + plan.out_count * len(x_raw)) + 20000)
    res = run_rtl(
        rtl_dir,
        rtl["top"],
        rtl["sources"],
        x_raw.reshape(x_raw.shape[0], -1),
        expected,
        rtl["obw"],
        Path(work_dir),
        seed=seed,
        p_bubble=p_bubble,
        p_stall=p_stall,
        extra={"timeout_cycles": bound, "memories": list(rtl.get("memories", []))},
    )
    # sequence by sequence, step by step, layer by layer; a phase that resumed a pre-scan has run
    # gated for as long as the RTL's element-wise phase and hand-off took (back-pressure included)
    mac_model = cy["mac_plain"].reshape(-1).tolist()
    nl = len(plan.layers)
    misplaced = 0  # resumed phases where no pre-scan may happen
    for k, g in res.get("resumed", []):
        seq, t, layer = k // (nl * plan.steps), k // nl % plan.steps, k % nl
        if not plan.overlap or layer or not t or k >= len(mac_model):
            misplaced += 1
            continue
        mac_model[k] = mac_cycles_of(plan, cy["nonzero0"][seq, t], cy["tables"][0], g)[0] - g
    res["mac_model_equal"] = not misplaced and [int(v) for v in res["mac"]] == mac_model
    res["resumed_steps"] = len(res.get("resumed", []))
    ew_model = [ew_cycles(p) for p in plan.layers] * (len(mac_model) // len(plan.layers))
    res["ew_model_equal"] = [int(v) for v in res["ew"]] == ew_model
    hc = [int(s.cycles) + 1 for s in plan.head]
    res["head_model_equal"] = all(int(v) == sum(hc) for v in res["head"]) and len(res["head"]) == (
        x_raw.shape[0] if plan.head else 0
    )
    res["latency_model"] = first_latency(plan, cy) if len(x_raw) else None
    res["latency_equal"] = res["latency"] is None or int(res["latency"]) == res["latency_model"]
    res["cycle_model"] = cy
    res["steps"] = int(cy["mac"].size)
    res["sequences"] = int(x_raw.shape[0])
    res["ok"] = (
        res["mismatches"] == 0
        and res["bad_tlast"] == 0
        and res["mac_model_equal"]
        and res["ew_model_equal"]
        and res["head_model_equal"]
        and res["latency_equal"]
    )
    return res

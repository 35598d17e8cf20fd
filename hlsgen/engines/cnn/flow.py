"""Check the streaming CNN engine: RTL against the reference and the cycle model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ir import Graph
from ...reference.execute import predict_int
from ..arith import axis_bits
from .cycles import simulate
from .plan import CnnPlan


def rtl_check(
    graph: Graph,
    plan: CnnPlan,
    rtl: dict,
    rtl_dir,
    x_raw: np.ndarray,
    work_dir,
    seed: int = 1,
    p_bubble: float = 0.25,
    p_stall: float = 0.25,
    probe: int = 3,
) -> dict:
    """Simulate the RTL on raw input frames; compare every output word with the reference, and
    the cycle of each of the first ``probe`` frames' last word (no stalls) with the model.

    ``rtl``: ``top``, ``sources`` and ``obw``, as :func:`write_rtl` returns them and
    ``engine.json`` records them.
    """
    from ...simulate import run_rtl

    x_raw = np.asarray(x_raw, dtype=np.int64)
    n = x_raw.shape[0]
    expected = predict_int(graph, x_raw).reshape(n, -1)
    probe = min(probe, n)
    res = run_rtl(
        rtl_dir,
        rtl["top"],
        rtl["sources"],
        x_raw.reshape(n, -1),
        expected,
        rtl["obw"],
        Path(work_dir),
        seed=seed,
        p_bubble=p_bubble,
        p_stall=p_stall,
        test_module="cnn_tb",
        extra={
            "probe": probe,
            "ibw": axis_bits(plan.in_width),
            # bubbles and stalls slow a run down a few times at most: far beyond that, it hangs
            "timeout_cycles": int(20 * (plan.timing["latency"] + plan.timing["period"] * n) + 20000),
            "memories": list(rtl.get("memories", [])),
        },
    )
    # the planner's own run of the cycle model (FIFO sizing) already holds the first frames
    timed = plan.timing.get("last_out", [])
    model_out = timed[:probe] if probe <= len(timed) else simulate(plan, probe)["last_out"]
    res["model_last_out"] = model_out
    res["cycles_equal"] = [int(v) for v in res["last_out"]] == list(model_out)
    res["frames"] = n
    res["ok"] = res["mismatches"] == 0 and res["bad_tlast"] == 0 and res["cycles_equal"]
    return res

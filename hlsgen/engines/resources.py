"""Hardware figures of a plan without synthesis: cycles, multipliers, 18 Kb block RAMs.

* cycles per frame (CNN engine) or per time step (LSTM engine): the engines' exact cycle
  models;
* multipliers: CNN, the lanes of fixed-point layers (shift and XNOR datapaths have none);
  LSTM, one per PE, three per element-wise lane, one per Dense of the head;
* 18 Kb block RAMs (a 36 Kb one counts two) of the memories (CNN: weights, line buffers,
  FIFOs; LSTM: every memory image), by :func:`bram18`, the rule Yosys 0.70's
  ``synth_xilinx`` follows for a registered-read memory (``bench/bram_rule.py`` checks it on
  a grid of shapes).

``hlsgen compress --budget`` bounds these.  LUTs have no model here: Yosys gives them.
"""

from __future__ import annotations

#: Xilinx 18 Kb block RAM aspect ratios (depth, width); 512 x 36 is the simple dual-port one
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: Yosys 0.70 ``synth_xilinx`` leaves a memory in LUTs when it is this shallow or smaller ...
LUT_MAX_DEPTH = 128
#: ... or holds fewer bits than this (half a block)
BRAM_MIN_BITS = 9216


def bram18(depth: int, width: int) -> int:
    """18 Kb block RAMs that a ``depth`` x ``width`` memory takes: none when it is shallow or
    small (LUTs), else the cheapest tiling by one of the block's aspect ratios (a 36 Kb
    block's tilings cost the same in 18 Kb halves).  ``bench/bram_rule.py`` checks this
    against Yosys on a grid of shapes."""
    if depth <= LUT_MAX_DEPTH or depth * width < BRAM_MIN_BITS or width <= 0:
        return 0
    return min(-(-depth // d) * -(-width // w) for d, w in BRAM18_SHAPES)


def memories(plan) -> list[tuple[str, int, int]]:
    """``(what, depth, width)`` of a plan's memories that may become block RAM."""
    from .cnn.plan import CnnPlan

    out = []
    if isinstance(plan, CnnPlan):
        for s in plan.stages:
            if s.kind == "mvu":
                q = s.p
                out.append((f"{s.layers[0]} weights", q.tiles, 1 + q.lanes * q.code_width))
            elif s.kind == "window" and s.p.kh > 1 and s.p.pw > 1:
                out.append((f"{s.layers[0]} line buffer", s.p.pw, (s.p.kh - 1) * s.in_elems * s.in_width))
            elif s.kind == "fifo":
                out.append((f"{s.name}", s.p.depth, s.in_elems * s.in_width))
        return out
    from .lstm.plan import memory_images

    # every memory the LSTM engine's RTL reads: per PE entries and column pointers, the bias,
    # the activation tables, the head's weights
    return [(stem, len(words), width) for stem, (words, width) in memory_images(plan).items()]


def figures(plan, describe=None) -> dict:
    """``cycles``, ``dsp``, ``bram`` (and how they were counted) of a plan."""
    from .cnn.plan import CnnPlan, dsp_lanes

    mems = memories(plan)
    bram = sum(bram18(d, w) for _, d, w in mems)
    if isinstance(plan, CnnPlan):
        return {
            "engine": "streaming_cnn",
            "cycles": int(plan.timing["period"]),
            "per": "frame",
            "dsp": int(dsp_lanes(plan)),
            "bram": int(bram),
        }
    perf = (describe(plan) if describe else {}).get("performance", {})
    return {
        "engine": "sparse_lstm",
        "cycles": float(perf.get("cycles_per_step", 0.0)),
        "per": "step",
        # a multiplier per PE, three per element-wise lane, one per Dense of the head
        "dsp": int(plan.pe + 3 * plan.ew_lanes + sum(st.kind == "dense" for st in plan.head)),
        "bram": int(bram),
    }

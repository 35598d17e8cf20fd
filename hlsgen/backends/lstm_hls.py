"""Render the sparse LSTM engine plan as HLS C++ (Vitis ap_fixed / Intel ac_fixed) and run
its C simulation with g++ against the reference."""

from __future__ import annotations

import numpy as np

from .._version import __version__
from ..engines.arith import TablePlan, lane_type
from ..engines.lstm.plan import LstmPlan
from ..fixed import FixedType
from ..names import comment_text
from .lstm_verilog import top_name
from .render import c_int, render_files


def _t(t: FixedType) -> dict:
    return {"ap": t.c_type("ap"), "ac": t.c_type("ac")}


def _vals(raw) -> str:
    """Raw integers for a C array (the binary point is carried by the type hg_raw<T> reads them as)."""
    return ", ".join(str(int(v)) for v in np.asarray(raw).reshape(-1))


def context(plan: LstmPlan, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    ty = plan.types
    types = [
        ("x_t", _t(ty.x)),
        ("w_t", _t(ty.weight)),
        ("a_t", _t(ty.act)),
        ("acc_t", _t(ty.acc)),
        ("bias_t", _t(ty.bias)),
        ("z_t", _t(ty.z)),
        ("zth_t", _t(ty.z_th)),
        ("gate_t", _t(ty.gate)),
        ("cand_t", _t(ty.cand)),
    ]
    if plan.kind == "gru":
        types += [("pre_t", _t(ty.pre)), ("preth_t", _t(ty.pre_th)), ("onez_t", _t(ty.one_z))]
    else:
        types += [("c_t", _t(ty.c)), ("cth_t", _t(ty.c_th)), ("cella_t", _t(ty.cell_act))]
    types += [("h_t", _t(ty.h)), ("state_t", _t(ty.state))]
    wf = ty.weight.frac
    pes = []
    for p in range(plan.pe):
        e = plan.entries[p]
        ent = np.zeros((plan.depth, 2), dtype=np.int64)
        ent[: len(e)] = e
        # entry values on the common weight grid
        # (shared weights: codebook indices; the codebook holds raw weights, shifted per column)
        wv, starts = [], plan.pointers[p][:, 0]
        for j in range(plan.ncol):
            s, c = plan.pointers[p][j]
            sh = 0 if plan.codebook is not None else wf - (ty.kernel.frac if j < plan.features else ty.recurrent.frac)
            wv.extend(int(v) << sh for v in plan.codes(e[s : s + c, 0]))
        wv += [0] * (plan.depth - len(wv))
        pes.append(
            {
                "w": _vals(wv),
                "rel": ", ".join(str(int(v)) for v in ent[:, 1]),
                "start": ", ".join(str(int(v)) for v in starts),
                "count": ", ".join(str(int(v)) for v in plan.pointers[p][:, 1]),
            }
        )
    if plan.kind == "gru":
        tables = [
            _table("gate", plan.gate, "zth_t", "gate_t", "z_t"),
            _table("cand", plan.cand, "preth_t", "cand_t", "pre_t"),
        ]
    else:
        tables = [
            _table("gate", plan.gate, "zth_t", "gate_t", "z_t"),
            _table("cand", plan.cand, "zth_t", "cand_t", "z_t"),
            _table("cell", plan.cell, "cth_t", "cella_t", "c_t"),
        ]
    head, dense = [], []
    src, src_type = "hout", "h_t"
    for i, s in enumerate(plan.head):
        otn = f"head{i}_t"
        types.append((otn, _t(s.out_type)))
        d = {"name": s.name, "kind": s.kind, "n_in": s.n_in, "n_out": s.n_out, "src": src, "out": f"head{i}"}
        d["out_type"] = otn
        if s.kind == "dense":
            types.append((f"{s.name}_w_t", _t(s.weight_type)))
            types.append((f"{s.name}_b_t", _t(s.bias_type)))
            dense.append(
                {
                    "name": s.name,
                    "n_in": s.n_in,
                    "n_out": s.n_out,
                    "w_type": f"{s.name}_w_t",
                    "w_int": c_int(s.weights),
                    "b_int": c_int(s.bias),
                    "b_type": f"{s.name}_b_t",
                    "w": [_vals(row) for row in s.weights],
                    "b": _vals(s.bias),
                }
            )
        elif s.kind == "step":
            it = f"{s.name}_th_t"
            types.append((it, _t(lane_type(s.table.in_width, s.in_type.frac))))
            vt = f"{s.name}_v_t"
            types.append((vt, _t(s.value_type)))
            tables.append(_table(s.name, s.table, it, vt, src_type))
            d["perch"] = s.table.channels > 1
        elif s.kind == "requant":
            rq = f"{s.name}_q_t"
            types.append((rq, _t(s.requant.dst)))
            d["rq_type"] = rq
            d["relu_expr"] = f"{src}[n] > 0 ? {src}[n] : {src_type}(0)" if s.requant.relu else f"{src}[n]"
        head.append(d)
        src, src_type = d["out"], otn
    types.append(("y_t", _t(plan.out_type)))
    top = top_name(plan).replace("_lstm_top", "_lstm_hls")
    return {
        "top": top,
        "kind": plan.kind,
        "guard": top.upper() + "_H",
        "prefix": top.upper(),
        "version": __version__,
        "source": source,
        "types": types,
        "pe": plan.pe,
        "rows_per_pe": plan.rows_per_pe,
        "ncol": plan.ncol,
        "features": plan.features,
        "units": plan.units,
        "ew_lanes": plan.ew_lanes,
        "ew_groups": plan.ew_groups,
        "steps": plan.steps,
        "depth": plan.depth,
        "pes": pes,
        "w_int": c_int(_on_grid(plan)) if plan.codebook is None else c_int(np.arange(len(plan.codebook))),
        "book": None if plan.codebook is None else _vals(plan.codebook),
        "book_n": 0 if plan.codebook is None else len(plan.codebook),
        "book_int": "" if plan.codebook is None else c_int(_on_grid(plan)),
        "shift_k": ty.weight.frac - ty.kernel.frac,
        "shift_r": ty.weight.frac - ty.recurrent.frac,
        "bias_int": c_int(plan.bias),
        "bias": _vals(plan.bias),
        "tables": tables,
        "dense": dense,
        "head": head,
        "final": src,
        "out_count": plan.out_count,
        "return_sequences": plan.return_sequences,
        "x_frac": ty.x.frac,
        "y_frac": plan.out_type.frac,
        "y_type": out_type,
    }


def _on_grid(plan: LstmPlan) -> np.ndarray:
    """The stacked matrix on the common grid of the kernel and recurrent weights."""
    ty = plan.types
    m = plan.matrix.copy()
    m[: plan.features] <<= ty.weight.frac - ty.kernel.frac
    m[plan.features :] <<= ty.weight.frac - ty.recurrent.frac
    return m


def _table(name, t: TablePlan, th_type, v_type, x_type):
    return {
        "name": name,
        "th_int": c_int(t.thresholds),
        "v_int": c_int(t.values),
        "levels": t.levels,
        "n": (1 << t.levels) - 1,
        "ch": t.channels,
        "th_type": th_type,
        "v_type": v_type,
        "x_type": x_type,
        "th": ", ".join("{" + _vals(row) + "}" for row in t.thresholds),
        "v": ", ".join("{" + _vals(row) + "}" for row in t.values),
    }


def write_hls(plan: LstmPlan, out_dir, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    """Render the plan as HLS C++ (header, kernel, C test bench); reads only the plan."""
    ctx = context(plan, comment_text(source), comment_text(x_type), comment_text(out_type))
    files = {
        f"{ctx['top']}.h": "hls/lstm_engine.h.j2",
        f"{ctx['top']}.cpp": "hls/lstm_engine.cpp.j2",
        f"{ctx['top']}_tb.cpp": "hls/lstm_tb.cpp.j2",
    }
    render_files(ctx, out_dir, files)
    return {"top": ctx["top"], "files": list(files), "context": ctx}

"""Render the sparse LSTM engine plan as HLS C++ (Vitis ap_fixed / Intel ac_fixed) and run
its C simulation with g++ against the reference."""

from __future__ import annotations

import numpy as np

from .._version import __version__
from ..engines.arith import TablePlan, signed_bits
from ..engines.lstm.plan import LstmPlan
from ..fixed import FixedType
from ..ir import Graph
from .lstm_verilog import top_name
from .render import c_int, render_files


def _t(t: FixedType) -> dict:
    return {"ap": t.c_type("ap"), "ac": t.c_type("ac")}


def _exact(lo: int, hi: int, frac: int) -> FixedType:
    w = signed_bits(min(lo, 0), max(hi, 0))
    return FixedType(w, w - frac, True)


def _vals(raw, frac: int = 0) -> str:
    """Raw integers for a C array (the frac is carried by the type hg_raw<T> reads them as)."""
    return ", ".join(str(int(v)) for v in np.asarray(raw).reshape(-1))


def context(graph: Graph, plan: LstmPlan) -> dict:
    inp, lstm = graph.nodes[0], graph.nodes[1]
    xt, st = inp.type, lstm.state_type
    sp = lstm.internal_specs(inp.spec)
    zf, cf, hf = sp["z"].type.frac, sp["c"].type.frac, sp["h"].type.frac
    kf, rf = lstm.kernel.type.frac, lstm.recurrent.type.frac
    wf = max(kf, rf)
    m = plan.matrix * 0
    m[: plan.features] = lstm.kernel.raw << (wf - kf)
    m[plan.features :] = lstm.recurrent.raw << (wf - rf)
    w_t = _exact(int(m.min()), int(m.max()), wf)
    af = max(xt.frac, st.frac)
    a_lo = min(inp.spec.lo << (af - xt.frac), st.min_raw << (af - st.frac))
    a_hi = max(inp.spec.hi << (af - xt.frac), st.max_raw << (af - st.frac))
    bias_t = FixedType(plan.bias_width, plan.bias_width - (zf - plan.bias_shift), True)
    types = [
        ("x_t", _t(xt)),
        ("w_t", _t(w_t)),
        ("a_t", _t(_exact(a_lo, a_hi, af))),
        ("acc_t", _t(FixedType(plan.acc_width, plan.acc_width - zf, True))),
        ("bias_t", _t(bias_t)),
        ("z_t", _t(FixedType(plan.z_width, plan.z_width - zf, True))),
        ("zth_t", _t(FixedType(plan.z_width + 1, plan.z_width + 1 - zf, True))),
        ("gate_t", _t(lstm.gate_fn.out_type)),
        ("cand_t", _t(lstm.cand_fn.out_type)),
        ("c_t", _t(FixedType(plan.c_width, plan.c_width - cf, True))),
        ("cth_t", _t(FixedType(plan.c_width + 1, plan.c_width + 1 - cf, True))),
        ("cella_t", _t(lstm.cell_fn.out_type)),
        ("h_t", _t(FixedType(plan.h_width, plan.h_width - hf, True))),
        ("state_t", _t(st)),
    ]
    pes = []
    for p in range(plan.pe):
        e = plan.entries[p]
        ent = np.zeros((plan.depth, 2), dtype=np.int64)
        ent[: len(e)] = e
        # entry values on the common weight grid
        wv, starts = [], plan.pointers[p][:, 0]
        for j in range(plan.ncol):
            s, c = plan.pointers[p][j]
            sh = wf - (kf if j < plan.features else rf)
            wv.extend(int(v) << sh for v in e[s : s + c, 0])
        wv += [0] * (plan.depth - len(wv))
        pes.append(
            {
                "w": _vals(wv, wf),
                "rel": ", ".join(str(int(v)) for v in ent[:, 1]),
                "start": ", ".join(str(int(v)) for v in starts),
                "count": ", ".join(str(int(v)) for v in plan.pointers[p][:, 1]),
            }
        )
    tables = [
        _table("gate", plan.gate, "zth_t", "gate_t", "z_t", zf, lstm.gate_fn.out_type.frac),
        _table("cand", plan.cand, "zth_t", "cand_t", "z_t", zf, lstm.cand_fn.out_type.frac),
        _table("cell", plan.cell, "cth_t", "cella_t", "c_t", cf, lstm.cell_fn.out_type.frac),
    ]
    head, dense = [], []
    src, src_type, src_frac = "hout", "h_t", hf
    for i, (s, node) in enumerate(zip(plan.head, graph.nodes[2:], strict=True)):
        ot = FixedType(s.out_width, s.out_width - node.spec.type.frac, True)
        otn = f"head{i}_t"
        types.append((otn, _t(ot)))
        d = {"name": s.name, "kind": s.kind, "n_in": s.n_in, "n_out": s.n_out, "src": src, "out": f"head{i}"}
        d["out_type"] = otn
        if s.kind == "dense":
            kt, bt = node.kernel.type, (node.bias.type if node.bias is not None else node.spec.type)
            types.append((f"{s.name}_w_t", _t(FixedType(s.weight_width, s.weight_width - kt.frac, True))))
            types.append((f"{s.name}_b_t", _t(FixedType(s.bias_width, s.bias_width - bt.frac, True))))
            dense.append(
                {
                    "name": s.name,
                    "n_in": s.n_in,
                    "n_out": s.n_out,
                    "w_type": f"{s.name}_w_t",
                    "w_int": c_int(s.weights),
                    "b_int": c_int(s.bias),
                    "b_type": f"{s.name}_b_t",
                    "w": [_vals(row, kt.frac) for row in s.weights],
                    "b": _vals(s.bias, bt.frac),
                }
            )
        elif s.kind == "step":
            it = f"{s.name}_th_t"
            tw = s.table.in_width
            types.append((it, _t(FixedType(tw, tw - src_frac, True))))
            vt = f"{s.name}_v_t"
            types.append((vt, _t(node.step.out_type)))
            tables.append(_table(s.name, s.table, it, vt, src_type, src_frac, node.step.out_type.frac))
            d["perch"] = s.table.channels > 1
        elif s.kind == "requant":
            rq = f"{s.name}_q_t"
            types.append((rq, _t(node.type)))
            d["rq_type"] = rq
            d["relu_expr"] = f"{src}[n] > 0 ? {src}[n] : {src_type}(0)" if node.relu else f"{src}[n]"
        head.append(d)
        src, src_type, src_frac = d["out"], otn, node.spec.type.frac
    yt = graph.output_spec.type
    yf = graph.nodes[-1].spec.type.frac
    types.append(("y_t", _t(FixedType(plan.out_width, plan.out_width - yf, True))))
    top = top_name(plan).replace("_lstm_top", "_lstm_hls")
    return {
        "top": top,
        "guard": top.upper() + "_H",
        "prefix": top.upper(),
        "version": __version__,
        "source": graph.meta.get("source", ""),
        "types": types,
        "pe": plan.pe,
        "rows_per_pe": plan.rows_per_pe,
        "ncol": plan.ncol,
        "features": plan.features,
        "units": plan.units,
        "steps": plan.steps,
        "depth": plan.depth,
        "pes": pes,
        "w_int": c_int(m),
        "bias_int": c_int(plan.bias),
        "bias": _vals(plan.bias, zf - plan.bias_shift),
        "tables": tables,
        "dense": dense,
        "head": head,
        "final": src,
        "out_count": plan.out_count,
        "return_sequences": plan.return_sequences,
        "x_frac": xt.frac,
        "y_frac": yf,
        "y_type": str(yt),
    }


def _table(name, t: TablePlan, th_type, v_type, x_type, in_frac, v_frac):
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
        "th": ", ".join("{" + _vals(row, in_frac) + "}" for row in t.thresholds),
        "v": ", ".join("{" + _vals(row, v_frac) + "}" for row in t.values),
    }


def write_hls(graph: Graph, plan: LstmPlan, out_dir) -> dict:
    ctx = context(graph, plan)
    files = {
        f"{ctx['top']}.h": "hls/lstm_engine.h.j2",
        f"{ctx['top']}.cpp": "hls/lstm_engine.cpp.j2",
        f"{ctx['top']}_tb.cpp": "hls/lstm_tb.cpp.j2",
    }
    render_files(ctx, out_dir, files)
    return {"top": ctx["top"], "files": list(files), "context": ctx}

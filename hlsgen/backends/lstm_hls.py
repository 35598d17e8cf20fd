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


def _layer(plan: LstmPlan, i: int, lp: LstmPlan, types: list) -> dict:
    """One recurrent layer's arrays, tables and types (names prefixed ``L<i>_`` past the first)."""
    pre = _prefix(i)
    ty = lp.types
    xl = i - 1  # the layer whose output is this one's input (-1: the model's input)
    if lp.gru_pass == 2:
        xl = i - 2  # the gates pass's
    own = [
        ("w_t", ty.weight),
        ("a_t", ty.act),
        ("acc_t", ty.acc),
        ("bias_t", ty.bias),
        ("z_t", ty.z),
        ("zth_t", ty.z_th),
        ("gate_t", ty.gate),
        ("cand_t", ty.cand),
    ]
    if lp.gru_pass == 1:
        own += [("rh_t", ty.rh)]
    elif lp.kind == "gru":
        own += [("pre_t", ty.pre), ("preth_t", ty.pre_th), ("onez_t", ty.one_z)]
    else:
        own += [("c_t", ty.c), ("cth_t", ty.c_th), ("cella_t", ty.cell_act)]
    if lp.gru_pass != 1:
        own += [("h_t", ty.h), ("state_t", ty.state)]
    rq = plan.between[i - 1] if i > 0 else None
    if rq is not None:
        own.append(("xq_t", rq.dst))
    types += [(pre + n, _t(t)) for n, t in own]
    wf = ty.weight.frac
    pes = []
    for p in range(plan.pe):
        e = lp.entries[p]
        ent = np.zeros((max(1, len(e)), 2), dtype=np.int64)
        ent[: len(e)] = e
        # entry values on the layer's common weight grid
        # (shared weights: codebook indices; the codebook holds raw weights, shifted per column)
        wv, starts = [], lp.pointers[p][:, 0]
        for j in range(lp.ncol):
            st, c = lp.pointers[p][j]
            sh = 0 if plan.codebook is not None else wf - (ty.kernel.frac if j < lp.features else ty.recurrent.frac)
            wv.extend(int(v) << sh for v in plan.codes(e[st : st + c, 0]))
        wv = wv or [0]
        pes.append(
            {
                "w": _vals(wv),
                "rel": ", ".join(str(int(v)) for v in ent[:, 1]),
                "start": ", ".join(str(int(v)) for v in starts),
                "count": ", ".join(str(int(v)) for v in lp.pointers[p][:, 1]),
            }
        )
    p_ = pre
    if lp.gru_pass == 1:
        tables = [_table(p_ + "gate", lp.gate, p_ + "zth_t", p_ + "gate_t", p_ + "z_t")]
    elif lp.gru_pass == 2:
        tables = [_table(p_ + "cand", lp.cand, p_ + "preth_t", p_ + "cand_t", p_ + "pre_t")]
    elif lp.kind == "gru":
        tables = [
            _table(p_ + "gate", lp.gate, p_ + "zth_t", p_ + "gate_t", p_ + "z_t"),
            _table(p_ + "cand", lp.cand, p_ + "preth_t", p_ + "cand_t", p_ + "pre_t"),
        ]
    else:
        tables = [
            _table(p_ + "gate", lp.gate, p_ + "zth_t", p_ + "gate_t", p_ + "z_t"),
            _table(p_ + "cand", lp.cand, p_ + "zth_t", p_ + "cand_t", p_ + "z_t"),
            _table(p_ + "cell", lp.cell, p_ + "cth_t", p_ + "cella_t", p_ + "c_t"),
        ]
    return {
        "i": i,
        "p": pre,
        "kind": lp.kind,
        "ncol": lp.ncol,
        "features": lp.features,
        "units": lp.units,
        "rows_per_pe": -(-lp.nrow // lp.pe),
        "ew_lanes": lp.ew_lanes,
        "ew_groups": lp.ew_groups,
        "depth": max(1, max(len(e) for e in lp.entries)),
        "pes": pes,
        "w_int": c_int(_on_grid(lp)) if plan.codebook is None else c_int(np.arange(len(plan.codebook))),
        "bias_int": c_int(lp.bias),
        "bias": _vals(lp.bias),
        "tables": tables,
        "rq": rq is not None,
        "relu": rq is not None and rq.relu,
        "src": "x" if xl < 0 else f"{_prefix(xl)}hout",
        "src_t": "" if xl < 0 else f"{_prefix(xl)}h_t",
        "gru_pass": lp.gru_pass,
        # the recurrent columns: the state, or (reset_after=False) the gates pass reads the
        # candidate pass's state and the candidate pass reads the gates pass's r * h_q
        "hsrc": {0: f"{pre}hq", 1: f"{_prefix(i + 1)}hq", 2: f"{_prefix(i - 1)}rh"}[lp.gru_pass],
        "zq": f"{_prefix(i - 1)}zq",
    }


def _prefix(i: int) -> str:
    return "" if i == 0 else f"L{i}_"


def context(plan: LstmPlan, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    ty = plan.types
    types = [("x_t", _t(ty.x))]
    layers = [_layer(plan, i, lp, types) for i, lp in enumerate(plan.layers)]
    last = layers[-1]
    tables = [t for L in layers for t in L["tables"]]
    head, dense = [], []
    src, src_type = ("hout" if len(layers) == 1 else f"{last['p']}hout"), f"{last['p']}h_t"
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
        "layers": layers,
        "guard": top.upper() + "_H",
        "prefix": top.upper(),
        "version": __version__,
        "source": source,
        "types": types,
        "pe": plan.pe,
        "rows_per_pe": plan.rows_per_pe,
        "ncol": plan.ncol,
        "features": plan.features,
        "units": plan.layers[-1].units,
        "ew_lanes": plan.ew_lanes,
        "ew_groups": plan.ew_groups,
        "steps": plan.steps,
        "depth": plan.depth,
        "book": None if plan.codebook is None else _vals(plan.codebook),
        "book_n": 0 if plan.codebook is None else len(plan.codebook),
        "book_int": "" if plan.codebook is None else c_int(_on_grid(plan)),
        "shift_k": ty.weight.frac - ty.kernel.frac,
        "shift_r": ty.weight.frac - ty.recurrent.frac,
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

"""Render the sparse LSTM engine plan as Verilog: a Jinja2 top over the hand-written blocks in hw/."""

from __future__ import annotations

import shutil
from pathlib import Path

from .._version import __version__
from ..assets import hw_file
from ..engines.arith import axis_bits, ubits
from ..engines.lstm.plan import LstmPlan, memory_images
from ..names import comment_text, ident
from .render import env, packed_literal, write_memories

HW_FILES = [
    "hg_skid.v",
    "hg_requant.v",
    "hg_step.v",
    "hg_act_lane.v",
    "hg_seq_in.v",
    "hg_lstm_ctrl.v",
    "hg_lstm_pe.v",
    "hg_lstm_ew.v",
    "hg_gru_ew.v",
    "hg_dense_seq.v",
    "hg_vec_act.v",
    "hg_vec_out.v",
]


def top_name(plan: LstmPlan) -> str:
    return f"{ident(plan.name)}_lstm_top"


def context(plan: LstmPlan, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    P, U = plan.pe, plan.units
    pes = []
    for p in range(P):
        rows = len(range(p, plan.nrow, P)) or 1
        pes.append({"i": p, "rows": plan.rows_per_pe, "rw": ubits(max(plan.rows_per_pe - 1, 1)), "real": rows})
    rows = []
    for r in range(plan.nrow):
        k, u = divmod(r, U)
        rows.append({"index": r, "pe": r % P, "local": r // P})
    lt = max(plan.gate.latency, plan.cand.latency)
    head = []
    src, src_w = "hout_flat", plan.h_width
    for i, s in enumerate(plan.head):
        d = {
            "name": s.name,
            "kind": s.kind,
            "n_in": s.n_in,
            "n_out": s.n_out,
            "in_width": src_w,
            "out_width": s.out_width,
            "src": src,
            "wire": f"head{i}_flat",
            "niw": ubits(max(s.n_in if s.kind == "dense" else s.n_out, 2) - 1),
            "now": ubits(max(s.n_out, 2) - 1),
            "adw": ubits(max(s.n_in * s.n_out, 2) - 1),
        }
        if s.kind == "dense":
            d.update(
                weight_width=s.weight_width, bias_width=s.bias_width, prod_shift=s.prod_shift, bias_shift=s.bias_shift
            )
        else:
            mode = {"step": 0, "relu": 1, "linear": 2, "requant": 3}[s.kind]
            rq = s.requant.hw() if s.requant else {"shift": 0, "osigned": 1, "rnd": 0, "ovf": 1, "relu": 0}
            d.update(
                mode=mode,
                rq=rq,
                levels=s.table.levels if s.table else 1,
                chw=max(1, ubits(s.table.channels - 1)) if s.table else 1,
                perch=int(bool(s.table and s.table.channels > 1)),
            )
        head.append(d)
        src, src_w = d["wire"], s.out_width
    zsw = max(plan.acc_width, plan.bias_width + plan.bias_shift, plan.z_width) + 2
    cxw = max(
        plan.gate_width + plan.state_width + 1 + plan.c_shift_fc, plan.gate_width + plan.cand_width + plan.c_shift_ig
    )
    cxw = max(cxw, plan.c_width) + 2
    ew = plan.ew_schedule
    gru = plan.kind == "gru"
    return {
        "kind": plan.kind,
        "gate_frac": plan.types.gate.frac,
        "pre_width": plan.pre_width,
        "h_shift_z": plan.h_shift_z,
        "h_shift_c": plan.h_shift_c,
        "ew": ew,
        "ew_cyc": plan.ew_groups + ew.h_write,
        "ew_lanes": plan.ew_lanes,
        "ew_bits": plan.ew_lanes.bit_length() - 1,
        "ew_groups": plan.ew_groups,
        "grw": ubits(max(plan.ew_groups - 1, 1)),
        "top": top_name(plan),
        "version": __version__,
        "source": source,
        "layers": f"input -> {plan.kind.upper()}({U})" + "".join(f" -> {s.name}" for s in plan.head),
        "steps": plan.steps,
        "features": plan.features,
        "units": U,
        "ncol": plan.ncol,
        "pe": P,
        "index_bits": plan.index_bits,
        "x_type": x_type,
        "out_type": out_type,
        "xw": plan.x_width,
        "x_signed": plan.x_signed,
        "sw": plan.state_width,
        "s_signed": plan.state_signed,
        "aw": plan.act_width,
        "ww": plan.weight_width,
        **_codebook(plan),
        "accw": plan.acc_width,
        "zw": plan.z_width,
        "zsw": zsw,
        "bw": plan.bias_width,
        "bias_shift": plan.bias_shift,
        "gw": plan.gate_width,
        "ggw": plan.cand_width,
        "cw": plan.c_width,
        "cxw": cxw,
        "aow": 0 if gru else plan.cell.out_width,
        "hw": plan.h_width,
        "lt": lt,
        "lt2": 0 if gru else plan.cell.latency,
        "lew": plan.ew_latency,
        "gate_levels": plan.gate.levels,
        "cand_levels": plan.cand.levels,
        "cell_levels": 0 if gru else plan.cell.levels,
        "c_shift_fc": plan.c_shift_fc,
        "c_shift_ig": plan.c_shift_ig,
        "rq_c": None if gru else plan.state_requant_c.hw(),
        "rq_h": plan.state_requant_h.hw(),
        "scan_width": plan.scan_width,
        "nblk": plan.blocks,
        "blw": ubits(plan.blocks),
        "kw": max(1, plan.scan_width.bit_length() - 1),
        "colw": ubits(plan.scan_width * plan.blocks),
        "pcw": ubits(max(plan.blocks - 1, 1)),
        "uw": ubits(max(U - 1, 1)),
        "fw": ubits(max(plan.features - 1, 1)),
        "xiw": ubits(2 * plan.features - 1),
        "ekw": ubits(plan.ew_groups + plan.ew_latency),
        "tcw": ubits(max(plan.steps - 1, 1)),
        "riw": ubits(plan.nrow - 1),
        "depth": plan.depth,
        "adw": plan.addr_bits,
        "cntw": plan.count_bits,
        "shift_x": plan.shift_x,
        "shift_h": plan.shift_h,
        "afw": plan.afifo_depth.bit_length() - 1,
        "jqw": plan.jq_depth.bit_length() - 1,
        "pes": pes,
        "rows": rows,
        "head": head,
        "hsw": ubits(max(len(plan.head), 2) - 1),
        "ow": plan.out_width,
        "out_count": plan.out_count,
        "out_words": U if plan.return_sequences else plan.out_count,
        "return_sequences": plan.return_sequences,
        "oiw": ubits(max((U if plan.return_sequences else plan.out_count) - 1, 1)),
        "ibw": axis_bits(plan.x_width),
        "obw": axis_bits(plan.out_width),
    }


def write_rtl(plan: LstmPlan, out_dir, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    """Write the top, the hw/ blocks, .mem and .mif images into ``out_dir``; return file lists."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = context(plan, comment_text(source), comment_text(x_type), comment_text(out_type))
    top_file = out / f"{ctx['top']}.v"
    top_file.write_text(env().get_template("verilog/lstm_top.v.j2").render(**ctx))
    sources = []
    for f in HW_FILES:
        shutil.copyfile(hw_file(f), out / f)
        sources.append(f)
    sources.append(top_file.name)
    images = {stem: (_pad_pow2(stem, words, plan), width) for stem, (words, width) in memory_images(plan).items()}
    mems = write_memories(out, images)
    return {"top": ctx["top"], "sources": sources, "memories": mems, "obw": ctx["obw"], "context": ctx}


def _pad_pow2(stem, words, plan):
    """Tables are addressed {channel, position}: both files hold 2**(CHW + LEVELS) words."""
    tables = {f"lstm_{t.name}": t for t in plan.tables}
    tables.update({s.name: s.table for s in plan.head if s.table is not None})
    base = stem[:-2]
    if stem[-2:] in ("_t", "_v") and base in tables:
        t = tables[base]
        n = (1 << max(1, ubits(t.channels - 1))) << t.levels
        words = list(words) + [words[-1]] * (n - len(words))
    return words


def _codebook(plan) -> dict:
    """hg_lstm_pe's CW, BOOK, KN, KV: the shared weights packed entry by entry, else a dummy."""
    ww = plan.weight_width
    if plan.codebook is None:
        return {"code_w": ww, "book": 0, "book_n": 1, "book_v": packed_literal([0], ww)}
    book = plan.codebook.tolist()
    return {"code_w": plan.code_width, "book": 1, "book_n": len(book), "book_v": packed_literal(book, ww)}

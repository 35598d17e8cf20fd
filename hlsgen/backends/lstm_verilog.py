"""Render the sparse LSTM engine plan as Verilog: a Jinja2 top over the hand-written blocks in hw/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .._version import __version__
from ..assets import hw_file
from ..engines.arith import axis_bits, ubits
from ..engines.lstm.plan import LstmPlan, layer_prefix, memory_images
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
    "hg_ew_io.v",
    "hg_ew_row.v",
    "hg_lstm_ew.v",
    "hg_gru_ew.v",
    "hg_dense_seq.v",
    "hg_vec_act.v",
    "hg_vec_out.v",
]


def top_name(plan: LstmPlan) -> str:
    return f"{ident(plan.name)}_lstm_top"


def _ext(name: str, w: int, signed: bool, aw: int) -> str:
    """Verilog for the raw value ``name`` (w bits) as an aw-bit signed word (its low bits when
    the value's range fits fewer)."""
    if aw <= w:
        return f"{name}[{aw - 1}:0]"
    top = f"{name}[{w - 1}]" if signed else "1'b0"
    return f"{{{{{aw - w}{{{top}}}}}, {name}}}"


def _vec(vals, bits: int) -> str:
    """A packed parameter vector, element l at bits l*bits."""
    return "{" + ", ".join(f"{bits}'d{int(v)}" for v in reversed(vals)) + "}"


def ew_params(
    lp: LstmPlan,
    i: int,
    acc_width: int,
    k: int,
    ekw: int,
    gates: LstmPlan | None = None,
    reads: int = 1,
    out: bool = False,
) -> list[tuple[str, object]]:
    """The parameters of layer ``lp``'s element-wise unit (hg_lstm_ew or hg_gru_ew); ``gates``:
    a GRU candidate pass's gates pass (layer i - 1), whose unit this is too; ``reads``: the
    exact hidden state's reads by address; ``out``: the output streamer reads it too (hg_ew_io)."""
    ew = lp.ew_schedule
    pre = layer_prefix(i)
    gp = layer_prefix(i - 1) if gates is not None else pre  # the gate table's and first bias's layer
    gl = gates if gates is not None else lp
    zsw = max(acc_width, lp.bias_width + lp.bias_shift, lp.z_width) + 2
    common = [
        ("U", lp.units),
        ("E", lp.ew_lanes),
        ("K", k),
        ("NR", reads),
        ("OUT", int(out)),
        ("EB", lp.ew_lanes.bit_length() - 1),
        ("NG", lp.ew_groups),
        ("GRW", ubits(max(lp.ew_groups - 1, 1))),
        ("UW", ubits(max(lp.units - 1, 1))),
        ("RIW", ubits(lp.nrow - 1)),
        ("EKW", ekw),
        ("ACCW", acc_width),
        ("BW", lp.bias_width),
        ("BS", lp.bias_shift),
        ("ZSW", zsw),
        ("ZW", lp.z_width),
        ("GW", lp.gate_width),
        ("GGW", lp.cand_width),
        ("GLV", gl.gate.levels),
        ("CLV", lp.cand.levels),
    ]
    rq_h = lp.state_requant_h.hw()
    if lp.kind == "gru":
        # reset_after=False (``gates``): both passes on this unit; the scanner reads signed words
        # of QW bits, the state or (the candidate pass) r * h_q
        own = [("RA", 0), ("RHW", lp.rh_width)] if gates else []
        own += [
            ("QW", lp.read_width),
            ("GF", lp.types.gate.frac),
            ("PW", lp.pre_width),
            ("SW", lp.state_width),
            ("SSIGN", int(lp.state_signed)),
            ("SHZ", lp.h_shift_z),
            ("SHC", lp.h_shift_c),
            ("HW", lp.h_width),
            ("C_R", gates.ew_schedule.h_write if gates else ew.c_read),
            ("H_R", ew.c_write),
            ("H_W", ew.h_write),
        ]
    else:
        rq_c = lp.state_requant_c.hw()
        cxw = max(lp.gate_width + lp.state_width + 1 + lp.c_shift_fc, lp.gate_width + lp.cand_width + lp.c_shift_ig)
        own = [
            ("SW", lp.state_width),
            ("SSIGN", int(lp.state_signed)),
            ("CW", lp.c_width),
            ("CXW", max(cxw, lp.c_width) + 2),
            ("SFC", lp.c_shift_fc),
            ("SIG", lp.c_shift_ig),
            ("ALV", lp.cell.levels),
            ("AOW", lp.cell.out_width),
            ("LT2", lp.cell.latency),
            ("HW", lp.h_width),
            ("C_R", ew.c_read),
            ("C_W", ew.c_write),
            ("H_W", ew.h_write),
            ("RQC_SHIFT", rq_c["shift"]),
            ("RQC_RND", rq_c["rnd"]),
            ("RQC_OVF", rq_c["ovf"]),
            ("ATFILE", f'"{pre}cell_t.mem"'),
            ("AVFILE", f'"{pre}cell_v.mem"'),
        ]
    files = [
        ("RQH_SHIFT", rq_h["shift"]),
        ("RQH_RND", rq_h["rnd"]),
        ("RQH_OVF", rq_h["ovf"]),
        ("BFILE", f'"{gp}bias.mem"'),
        ("GTFILE", f'"{gp}gate_t.mem"'),
        ("GVFILE", f'"{gp}gate_v.mem"'),
        ("CTFILE", f'"{pre}cand_t.mem"'),
        ("CVFILE", f'"{pre}cand_v.mem"'),
    ]
    if gates is not None:
        files.append(("BFILE2", f'"{pre}bias.mem"'))
    ram = []
    if lp.acc_ram:  # the PEs' RAM reads (hg_lstm_pe ARAM): P / E PEs per lane, local row k / (P / E)
        nj = lp.pe // lp.ew_lanes
        ram = [("ZIN", 1), ("NJ", nj), ("JW", ubits(max(nj - 1, 1))), ("ZRW", _zrw(lp))]
    return common + ram + own + files


def _zrw(lp: LstmPlan) -> int:
    """Bits of the element-wise unit's local row (acc_ram): the layer's rows per PE."""
    return ubits(max(-(-lp.nrow // lp.pe) - 1, 1))


def _layers(plan: LstmPlan, ekw: int) -> list[dict]:
    """Per recurrent layer: its element-wise unit, its rows in the PEs, its scanner reads."""
    P, aw, out = plan.pe, plan.act_width, []
    for i, lp in enumerate(plan.layers):
        gates = plan.layers[i - 1] if lp.gru_pass == 2 else None
        # the exact hidden state: the next layer's scanner reads it K words at a time, the head
        # one word per cycle, the output streamer (a last layer without a head) one word per cycle
        last = i == len(plan.layers) - 1
        nr = 1 if last else plan.scan_width
        out_ = last and not plan.head
        params = ew_params(lp, i, plan.acc_width, plan.scan_width, ekw, gates, nr, out_) if lp.gru_pass != 1 else []
        # a GRU with reset_after=False: its candidate pass (2) holds the element-wise unit, which
        # serves the gates pass (1) too; the scanner reads its QW-bit signed words in both passes
        sw, ssign = lp.read_width, lp.state_signed or bool(lp.gru_pass)
        d = {
            "i": i,
            "suffix": "" if i == 0 else str(i),
            "name": comment_text(lp.cell_node.name if lp.cell_node is not None else lp.name),
            "kind": lp.kind,
            "gru_pass": lp.gru_pass,
            "u": lp.units,
            "hw": lp.h_width,
            "sw": sw,
            "uw": ubits(max(lp.units - 1, 1)),
            "fw": ubits(max(lp.features - 1, 1)),
            "nb": lp.blocks,
            "params": ",\n        ".join(f".{k}({v})" for k, v in params),
            # flip-flop accumulators: where each gate row lives (the RAM mode reads them by port)
            "rows": [] if plan.acc_ram else [{"index": r, "pe": r % P, "local": r // P} for r in range(lp.nrow)],
            "hext": _ext(f"hr{i}", sw, ssign, aw),
            "up": lp.units // P,  # acc_ram: a gate's local rows per PE
            "nr": nr,
            "out": out_,
            "zrw": _zrw(lp),
        }
        if i == 0:
            d["xext"] = _ext("xr0", plan.x_width, plan.x_signed, aw)
        elif lp.gru_pass == 2:
            pass  # the gates pass's input
        else:
            prev = plan.layers[i - 1]
            rq = plan.between[i - 1]
            d["phw"] = prev.h_width
            d["rq"] = rq.hw() if rq is not None else None
            if rq is not None:
                d["xw"] = rq.out_width
                d["xext"] = _ext(f"xq{i}", rq.out_width, rq.out_signed, aw)
            else:
                d["xext"] = _ext(f"xh{i}", prev.h_width, True, aw)
        out.append(d)
    return out


def context(plan: LstmPlan, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    P, last = plan.pe, plan.layers[-1]
    U = last.units  # the units the output and the head see
    pes = []
    for p in range(P):
        rows = max(len(range(p, lp.nrow, P)) for lp in plan.layers) or 1
        pes.append({"i": p, "rows": plan.rows_per_pe, "rw": ubits(max(plan.rows_per_pe - 1, 1)), "real": rows})
    ekw = max(ubits(lp.ew_groups + lp.ew_latency) for lp in plan.layers)
    bases = np.cumsum([0] + [lp.blocks for lp in plan.layers])
    head = []
    src, src_w = None, last.h_width  # the first stage reads the last layer's exact hidden state
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
    ew = plan.ew_schedule
    nl = len(plan.layers)
    return {
        "layers": _layers(plan, ekw),
        "xrel": plan.input_layers - 1,
        "overlap": plan.overlap,
        "bx0": plan.input_blocks,
        "lyw": ubits(max(nl - 1, 1)),
        "fv": _vec([lp.features for lp in plan.layers], 16),
        "ncolv": _vec([lp.ncol for lp in plan.layers], 16),
        "nbv": _vec([lp.blocks for lp in plan.layers], 16),
        "basev": _vec(bases[:-1], 16),
        "ewv": _vec([lp.ew_groups + lp.ew_latency for lp in plan.layers], 16),
        "sxv": _vec([lp.shift_x for lp in plan.layers], 8),
        "shv": _vec([lp.shift_h for lp in plan.layers], 8),
        "smx": max(max(lp.shift_x, lp.shift_h) for lp in plan.layers),
        "fw_max": max(ubits(max(lp.features - 1, 1)) for lp in plan.layers),
        "uw_max": max(ubits(max(lp.units - 1, 1)) for lp in plan.layers),
        "hw": last.h_width,
        "kind": plan.kind,
        "ew_cyc": plan.ew_groups + ew.h_write,
        "ew_lanes": plan.ew_lanes,
        "ew_groups": plan.ew_groups,
        "top": top_name(plan),
        "version": __version__,
        "source": source,
        "layer_chain": "input"
        + "".join(f" -> {lp.kind.upper()}({lp.units})" for lp in plan.layers)
        + "".join(f" -> {s.name}" for s in plan.head),
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
        "aw": plan.act_width,
        "ww": plan.weight_width,
        **_codebook(plan),
        "accw": plan.acc_width,
        "lew": plan.ew_latency,
        "scan_width": plan.scan_width,
        "nblk": plan.total_blocks,
        "blw": ubits(plan.total_blocks),
        "kw": max(1, plan.scan_width.bit_length() - 1),
        "colw": max(ubits(plan.scan_width * max(lp.blocks for lp in plan.layers)), ubits(plan.total_blocks)),
        "pcw": ubits(max(plan.total_blocks - 1, 1)),
        "uw": ubits(max(U - 1, 1)),
        "fw": ubits(max(plan.features - 1, 1)),
        "xiw": ubits(2 * plan.features - 1),
        "ekw": ekw,
        "tcw": ubits(max(plan.steps - 1, 1)),
        "depth": plan.depth,
        "adw": plan.addr_bits,
        "cntw": plan.count_bits,
        "shift_x": plan.shift_x,
        "shift_h": plan.shift_h,
        "afw": plan.afifo_depth.bit_length() - 1,
        "jqw": plan.jq_depth.bit_length() - 1,
        "pes": pes,
        "acc_ram": plan.acc_ram,
        "rw": ubits(max(plan.rows_per_pe - 1, 1)),
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
    tables = {f"{layer_prefix(i)}{t.name}": t for i, lp in enumerate(plan.layers) for t in lp.tables}
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

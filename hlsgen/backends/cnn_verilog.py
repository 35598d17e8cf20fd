"""Render the streaming CNN engine plan as Verilog: a Jinja2 top over the blocks in hw/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .._version import __version__
from ..assets import hw_file
from ..engines.arith import axis_bits, ubits
from ..engines.cnn.plan import Act, CnnPlan, Stage
from ..names import comment_text, ident
from .render import env, pack_words, packed_literal, write_memories

CNN_HW_FILES = [
    "hg_requant.v",
    "hg_step.v",
    "hg_act_lane.v",
    "hg_gather.v",
    "hg_window.v",
    "hg_mvu.v",
    "hg_proc.v",
    "hg_pool_reduce.v",
    "hg_gpool.v",
    "hg_p2s.v",
    "hg_fifo.v",
    "hg_dup.v",
    "hg_add.v",
]


def top_name(plan: CnnPlan) -> str:
    return f"{ident(plan.name)}_cnn_top"


def _lane(act: Act | None, xw: int, ow: int, file_stem: str, chw: int) -> str:
    """hg_act_lane parameters for an activation (None: pass the value through)."""
    if act is None or act.mode == "linear":
        d = {"XW": xw, "OW": ow, "TOW": ow, "MODE": 3}
    elif act.mode == "relu":
        d = {"XW": xw, "OW": ow, "TOW": ow, "MODE": 2}
    elif act.mode == "requant":
        rq = act.requant.hw()
        d = {
            "XW": xw,
            "OW": ow,
            "TOW": act.requant.out_width,
            "MODE": 1,
            "SHIFT": rq["shift"],
            "RND": rq["rnd"],
            "OVF": rq["ovf"],
            "OSIGNED": rq["osigned"],
            "RELU": rq["relu"],
        }
    else:
        t = act.table
        assert t.in_width == xw + 1, (t.in_width, xw)
        d = {
            "XW": xw,
            "OW": ow,
            "TOW": t.out_width,
            "MODE": 0,
            "LEVELS": t.levels,
            "CHW": chw,
            "TFILE": f'"{file_stem}_t.mem"',
            "VFILE": f'"{file_stem}_v.mem"',
        }
    return ", ".join(f".{k}({v})" for k, v in d.items())


def _table_words(act: Act, channels: list[int], chw: int):
    """Threshold and value words of a lane's table: {channel, position}, padded to 2**(chw+levels)."""
    t = act.table
    n = 1 << t.levels
    th, vv = [], []
    for ch in channels:
        row = t.thresholds[ch if t.channels > 1 else 0]
        th += [int(v) for v in row] + [0]
        vv += [int(v) for v in t.values[ch if t.channels > 1 else 0]]
    total = (1 << chw) * n
    th += [th[-1]] * (total - len(th))
    vv += [vv[-1]] * (total - len(vv))
    return (th, t.in_width), (vv, t.out_width)


def _what(s: Stage) -> str:
    """A one-line comment on a stage (layer names from the model are escaped)."""
    return comment_text(_describe(s))


def _describe(s: Stage) -> str:
    q = s.p
    if s.kind == "mvu":
        return (
            f"{'/'.join(s.layers)}: {q.n} x {q.m}, PE {q.pe} x SIMD {q.simd}"
            f"{' (depthwise: lane p takes channel p)' if q.diag else ''}, "
            f"{q.datapath} datapath, {q.tiles} of {q.nf * q.sf} tiles stored"
        )
    if s.kind == "fifo":
        return f"FIFO of {q.depth} items"
    if s.kind == "dup":
        return f"fork of {s.layers[0]}'s stream"
    if s.kind == "add":
        return f"{s.layers[0]}: element-wise sum of two streams"
    if s.kind == "window":
        return f"{s.layers[0]} windows {q.kh}x{q.kw} stride {q.sh}x{q.sw} over {q.h}x{q.w}x{q.c}"
    return f"{s.kind} for {s.layers[0]}"


def context(plan: CnnPlan, source: str = "", x_type: str = "", out_type: str = "") -> tuple[dict, dict]:
    """The template context and the memory images {stem: (words, width)}."""
    mems: dict = {}
    stages = []
    # the wires each output port drives: its consumer's input port
    outs = {s.name: [None] * (2 if s.kind == "dup" else 1) for s in plan.stages}
    for s in plan.stages:
        for port, (prod, pport) in enumerate(s.srcs):
            outs[prod][pport] = f"{s.name}_i{port}"
    outs["s_out"] = []
    for s in plan.stages:
        d = {
            "name": s.name,
            "kind": s.kind,
            "what": _what(s),
            "in_bits": s.in_elems * s.in_width,
            "out_bits": s.out_elems * s.out_width,
            "ew": s.in_width,
            "oew": s.out_width,
            "port_bits": [s.in_elems * s.in_width] if s.kind != "add" else [s.p.c * s.p.wa, s.p.c * s.p.wb],
            "outs": outs[s.name],
        }
        if s.kind == "add":
            d.update(c=s.p.c, wa=s.p.wa, wb=s.p.wb, sa=s.p.sa, sb=s.p.sb)
        q = s.p
        if s.kind == "fifo":
            d.update(depth=q.depth, aw=ubits(max(q.depth - 1, 1)), nw=ubits(q.depth))
        elif s.kind in ("gather", "gpool", "p2s"):
            d.update(n=q.n, kw=ubits(max(q.n - 1, 1)), ew=s.in_elems * s.in_width)
            if s.kind == "gpool":
                d.update(c=s.in_elems, ew=s.in_width, mode=0 if q.mode == "max" else 1)
            if s.kind == "p2s":
                d.update(n=s.in_elems, kw=ubits(max(s.in_elems - 1, 1)), ew=s.in_width)
                d.update(n_items=s.items_in, iw=ubits(max(s.items_in - 1, 1)))
        elif s.kind == "window":
            d.update(
                {k: getattr(q, k) for k in ("h", "w", "c", "kh", "kw", "pt", "pl", "ph", "pw", "r0", "c0", "mr", "mc")}
            )
            d["rw"] = ubits(max(q.ph - 1, 1))
            d["cwb"] = ubits(max(q.pw - 1, 1))
            for k, v in q.walk_flags().items():
                d[k] = f"{len(v)}'b" + "".join(str(b) for b in reversed(v))
            d["re"], d["ce"] = q.pt + q.h, q.pl + q.w
        elif s.kind == "reduce":
            d.update(
                k=q.k,
                c=q.c,
                mode=0 if q.mode == "max" else 1,
                cost=q.cost,
                cnw=ubits(max(q.cost - 1, 1)),
            )
        elif s.kind == "act":
            act = q.act
            lanes = []
            for c in range(q.c):
                stem = f"{s.name}_l{c}"
                lanes.append({"i": c, "params": _lane(act, s.in_width, s.out_width, stem, 1)})
                if act.mode == "step":
                    (tw, twd), (vw, vwd) = _table_words(act, [c], 1)
                    mems[f"{stem}_t"] = (tw, twd)
                    mems[f"{stem}_v"] = (vw, vwd)
            d.update(lanes=lanes, cost=q.cost, cnw=ubits(max(q.cost - 1, 1)))
        elif s.kind == "mvu":
            act = q.act
            pe, nf = q.pe, q.nf
            nfw = ubits(max(nf - 1, 1))
            perch = act is not None and act.mode == "step" and act.table.channels > 1
            lanes = []
            for p in range(pe):
                stem = f"{s.name}_l{p}"
                chw = nfw if perch else 1
                lanes.append(
                    {
                        "i": p,
                        "params": _lane(act, q.val_width, s.out_width, stem, chw),
                        "ch": f"{s.name}_lch" if perch else "1'b0",
                    }
                )
                if act is not None and act.mode == "step":
                    chans = [g * pe + p for g in range(nf)] if perch else [0]
                    (tw, twd), (vw, vwd) = _table_words(act, chans, chw)
                    mems[f"{stem}_t"] = (tw, twd)
                    mems[f"{stem}_v"] = (vw, vwd)
            sfw = ubits(max(q.sf - 1, 1))
            cw = q.code_width
            ncodes = pe if q.diag else pe * q.simd
            # lane (p, s) at bits (p*SIMD + s)*CW; a diagonal (depthwise) tile keeps (p, p) only
            flat = (
                np.diagonal(q.entries.codes, axis1=1, axis2=2)
                if q.diag
                else q.entries.codes.reshape(len(q.entries), -1)
            )
            words = pack_words(flat & ((1 << cw) - 1), cw, q.entries.last)
            mw = 1 + ncodes * cw
            mems[f"{s.name}_w"] = (words, mw)
            mems[f"{s.name}_s"] = (q.entries.sf.tolist(), sfw)
            bw = q.bias_width
            bwords = []
            for g in range(1 << nfw):
                v = 0
                for p in range(pe):
                    b = int(q.bias[g * pe + p]) if g < nf else 0
                    v |= (b & ((1 << bw) - 1)) << (p * bw)
                bwords.append(v)
            mems[f"{s.name}_b"] = (bwords, pe * bw)
            d.update(
                n=q.n,
                m=q.m,
                pe=pe,
                simd=q.simd,
                nf=nf,
                sf=q.sf,
                cw=cw,
                dp={"mul": 0, "shift": 1, "xnor": 2, "book": 3}[q.datapath],
                **_codebook(q),
                ea=q.x_exp,
                aw=q.acc_width,
                vw=q.val_width,
                bw=bw,
                sa=q.sa,
                sb=q.sb,
                t=q.tiles,
                tw=ubits(max(q.tiles - 1, 1)),
                sfw=sfw,
                nfw=nfw,
                lat=q.lat,
                nb=q.nb,
                diag=int(q.diag),
                biw=ubits(max(q.nb - 1, 1)),
                lanes=lanes,
            )
        stages.append(d)
    layers = comment_text(
        " -> ".join(f"{s.layers[0]}" for s in plan.stages[1:-1] if s.kind not in ("window", "fifo", "dup"))
    )
    ctx = {
        "top": top_name(plan),
        "version": __version__,
        "source": source,
        "layers": f"input -> {layers}",
        "x_type": x_type,
        "out_type": out_type,
        "in_words": plan.stages[0].items_in,
        "out_words": plan.out_count,
        "ibw": axis_bits(plan.in_width),
        "obw": axis_bits(plan.out_width),
        "stages": stages,
    }
    return ctx, mems


def write_rtl(plan: CnnPlan, out_dir, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    """Write the top, the hw/ blocks, .mem and .mif images into ``out_dir``; return file lists."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx, images = context(plan, comment_text(source), comment_text(x_type), comment_text(out_type))
    top_file = out / f"{ctx['top']}.v"
    top_file.write_text(env().get_template("verilog/cnn_top.v.j2").render(**ctx))
    sources = []
    for f in CNN_HW_FILES:
        shutil.copyfile(hw_file(f), out / f)
        sources.append(f)
    sources.append(top_file.name)
    mems = write_memories(out, images)
    return {"top": ctx["top"], "sources": sources, "memories": mems, "obw": ctx["obw"], "context": ctx}


def _codebook(q) -> dict:
    """hg_mvu's KN, KW, KV: the shared weights packed entry by entry (DP 3), else a dummy."""
    if q.codebook is None:
        return {"book_n": 1, "book_w": 1, "book_v": "1'h0"}
    book = q.codebook.tolist()
    return {"book_n": len(book), "book_w": q.book_width, "book_v": packed_literal(book, q.book_width)}

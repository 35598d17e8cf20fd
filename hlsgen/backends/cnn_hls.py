"""Render the streaming CNN engine plan as HLS C++ (Vitis ap_int/ap_fixed, Intel ac_int/ac_fixed).

The C++ has the RTL's interface (raw integers in and out) and walks the same plan: the
matrix-vector units read the stored PE x SIMD tiles (zero tiles skipped), with the same
datapath (multiplier or shift codes), accumulator widths and activation lanes.
"""

from __future__ import annotations

from .._version import __version__
from ..engines.cnn.plan import Act, CnnPlan
from ..names import comment_text
from .cnn_verilog import _what, top_name
from .render import c_int, render_files


def _act(act: Act | None) -> dict | None:
    if act is None:
        return None
    d = {"mode": act.mode, "xw": act.in_width, "ch": 1, "n": 1}
    if act.mode == "requant":
        rq = act.requant
        d["relu"] = rq.relu
        d["rqw"] = rq.out_width
        d["rq_signed"] = rq.out_signed
        d["dst_t_ap"], d["dst_t_ac"] = rq.dst.c_type("ap"), rq.dst.c_type("ac")
        d["src_t_ap"], d["src_t_ac"] = rq.src.c_type("ap"), rq.src.c_type("ac")
    elif act.mode == "step":
        t = act.table
        d["ch"] = t.channels
        d["n"] = (1 << t.levels) - 1
        d["th"] = ", ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in t.thresholds)
        d["tv"] = ", ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in t.values)
    return d


def context(plan: CnnPlan, source: str = "") -> dict:
    stages = []
    arr = {"s_in": "t0"}  # the array holding each stage's output (a stage that only moves data: its input's)
    by_stage = {s.name: s for s in plan.stages}
    k = 0
    cur = "t0"
    for s in plan.stages:
        q = s.p
        if s.srcs:
            src_arr = [arr[p] for p, _ in s.srcs]
            if s.kind in ("window", "fifo", "dup", "gather", "p2s"):
                arr[s.name] = src_arr[0]
                cur = src_arr[0]
                continue
        else:
            continue
        prod = by_stage[s.srcs[0][0]]
        pending_window = prod if prod.kind == "window" else None
        k += 1
        dst = f"t{k}"
        arr[s.name] = dst
        d = {"name": s.name, "what": _what(s), "src": src_arr[0], "dst": dst, "ew": s.in_width, "oew": s.out_width}
        if s.kind == "add":
            d.update(
                kind="add",
                src_b=src_arr[1],
                c=q.c,
                n_items=s.items_in,
                out_len=s.items_in * q.c,
                sa=q.sa,
                sb=q.sb,
                act=None,
            )
        elif s.kind == "mvu":
            w = pending_window.p if pending_window is not None else None
            if w is None:
                geo = {
                    "h": 1,
                    "w": s.items_in,
                    "c": q.n,
                    "kh": 1,
                    "kw": 1,
                    "sh": 1,
                    "sw": 1,
                    "pt": 0,
                    "pl": 0,
                    "oh": 1,
                    "ow": s.items_in,
                }
            else:
                geo = {key: getattr(w, key) for key in ("h", "w", "c", "kh", "kw", "sh", "sw", "pt", "pl", "oh", "ow")}
            codes = q.entries.codes
            d.update(geo)
            d.update(
                kind="conv",
                n=q.n,
                m=q.m,
                pe=q.pe,
                simd=q.simd,
                nf=q.nf,
                t=q.tiles,
                aw=q.acc_width,
                vw=q.val_width,
                cw=q.code_width,
                dp={"mul": 0, "shift": 1, "xnor": 2, "book": 3}[q.datapath],
                book_n=0 if q.codebook is None else len(q.codebook),
                book_w=q.book_width,
                book="" if q.codebook is None else ", ".join(str(int(v)) for v in q.codebook),
                ea=q.x_exp,
                sa=q.sa,
                sb=q.sb,
                sf_list=", ".join(map(str, q.entries.sf.tolist())),
                last_list=", ".join("true" if last else "false" for last in q.entries.last.tolist()),
                codes=", ".join(
                    "{" + ", ".join("{" + ", ".join(map(str, row)) + "}" for row in c) + "}" for c in codes.tolist()
                ),
                code_int=c_int(codes.reshape(-1)),
                bias=", ".join(str(int(v)) for v in q.bias),
                bias_int=c_int(q.bias),
                act=_act(q.act),
                out_len=s.items_out * q.m,
            )
        elif s.kind == "reduce":
            w = pending_window.p
            d.update(
                kind="pool",
                mode=q.mode,
                c=q.c,
                **{key: getattr(w, key) for key in ("h", "w", "kh", "kw", "sh", "sw", "oh", "ow")},
                out_len=s.items_out * q.c,
                act=None,
            )
        elif s.kind == "gpool":
            d.update(kind="gpool", mode=q.mode, c=s.in_elems, n=q.n, act=None)
        elif s.kind == "act":
            d.update(
                kind="act",
                c=q.c,
                n_items=s.items_in,
                out_len=s.items_in * q.c,
                act=_act(q.act),
            )
        stages.append(d)
    first = {"kind": "input", "ew": plan.in_width, "oew": plan.in_width, "name": "in", "dst": "t0", "act": None}
    first["out_len"] = plan.stages[0].items_in
    streams = _streams([first] + stages, cur)
    top = top_name(plan).replace("_cnn_top", "_cnn_hls")
    return {
        "top": top,
        "guard": top.upper() + "_H",
        "version": __version__,
        "source": source,
        "nx": plan.stages[0].items_in,
        "ny": plan.out_count,
        "xw": plan.in_width,
        "yw": plan.out_width,
        "stages": [first] + stages,
        "streams": streams,
        "final_in": next(st["name"] for st in streams if st["reader"] == "out"),
    }


def _streams(stages: list[dict], final: str) -> list[dict]:
    """One stream per (array, reader): each stage writes its output to every stage that reads it
    (``outs``) and reads ``in_a`` (and ``in_b``); the last array is read by the output loop.  A
    stream out of a stage with several readers may wait a whole frame for its slowest reader:
    its depth is the array's length."""
    producer = {d["dst"]: d for d in stages}
    readers: dict[str, list] = {}
    for d in stages[1:]:
        for role in ("a", "b"):
            arr = d["src"] if role == "a" else d.get("src_b")
            if arr is not None:
                readers.setdefault(arr, []).append((d, role))
    readers.setdefault(final, []).append((None, "out"))
    streams = []
    for d in stages:
        d.update(outs=[], in_a=None, in_a_w=0, in_b=None, in_b_w=0)
    for arr, rs in readers.items():
        src = producer[arr]
        for j, (d, role) in enumerate(rs):
            name = f"{arr}_s{j}"
            src["outs"].append(name)
            length = src.get("out_len") or src.get("c") or 0
            streams.append(
                {
                    "name": name,
                    "w": src["oew"],
                    "reader": "out" if d is None else d["name"],
                    "depth": length if len(rs) > 1 else 0,
                }
            )
            if d is not None:
                d["in_" + role] = name
                d["in_" + role + "_w"] = src["oew"]
    return streams


def write_hls(plan: CnnPlan, out_dir, source: str = "", x_type: str = "", out_type: str = "") -> dict:
    """Render the plan as HLS C++ (header, kernel, C test bench); reads only the plan."""
    ctx = context(plan, comment_text(source))
    files = {
        f"{ctx['top']}.h": "hls/cnn_engine.h.j2",
        f"{ctx['top']}.cpp": "hls/cnn_engine.cpp.j2",
        f"{ctx['top']}_tb.cpp": "hls/cnn_tb.cpp.j2",
    }
    render_files(ctx, out_dir, files)
    return {"top": ctx["top"], "files": list(files), "context": ctx}

"""Each hand-written hw/ block on its own, under cocotb + Verilator (tests/hw_blocks_tb.py).

Every block of ``hlsgen/hw/`` is instantiated in one generated wrapper, its ports renamed
``<prefix><port>`` (clock and reset shared), built once per session; each test below runs the
simulator with one cocotb test against one block:

* ``hg_requant`` and ``hg_act_lane`` against :mod:`hlsgen.fixed` for every rounding and overflow
  mode, random widths and shifts, every input code;
* the stream blocks (``hg_fifo``, ``hg_skid``, ``hg_dup``, ``hg_add``, ``hg_gather``, ``hg_p2s``,
  ``hg_gpool``, ``hg_window``, ``hg_proc``) with cocotbext-axi drivers, random bubbles and
  back-pressure and a stream-contract monitor on every port, against loop models;
* ``hg_step`` and ``hg_pool_reduce`` against their definitions; ``hg_dense_seq`` and
  ``hg_vec_act`` with their start-to-done cycle counts;
* ``hg_mvu`` and ``hg_lstm_pe`` with the memories the planners encode for random layers, against
  the IR reference and exact sums over the stacked matrix.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from hlsgen.assets import hw_file
from hlsgen.fixed import OVERFLOW_MODES, ROUNDING_MODES

pytestmark = pytest.mark.rtl
HERE = Path(__file__).resolve().parent
HW = [
    "hg_requant.v",
    "hg_step.v",
    "hg_act_lane.v",
    "hg_fifo.v",
    "hg_skid.v",
    "hg_dup.v",
    "hg_add.v",
    "hg_gather.v",
    "hg_p2s.v",
    "hg_gpool.v",
    "hg_window.v",
    "hg_pool_reduce.v",
    "hg_proc.v",
    "hg_dense_seq.v",
    "hg_vec_act.v",
    "hg_mvu.v",
    "hg_lstm_pe.v",
    "hg_seq_in.v",
    "hg_vec_out.v",
    "hg_lstm_ctrl.v",
    "hg_lstm_ew.v",
    "hg_gru_ew.v",
    "hg_ew_io.v",
    "hg_ew_row.v",
]


def _pack(vals, w: int) -> int:
    return sum((int(x) & ((1 << w) - 1)) << (i * w) for i, x in enumerate(vals))


class Wrapper:
    """Collects block instances into one top module ``blocks``: ports, instances, jobs."""

    def __init__(self, work: Path):
        self.work = work
        self.ports: list[str] = []
        self.body: list[str] = []
        self.jobs: dict[str, dict] = {}

    def port(self, direction: str, width: int, name: str):
        self.ports.append(f"    {direction} wire [{width - 1}:0] {name}")

    def inst(self, module: str, prefix: str, params: dict, ports: list[tuple[str, int, str]]):
        """``ports``: (direction, width, name) of the block; each becomes the wrapper port prefix+name."""
        for d, w, n in ports:
            self.port(d, w, prefix + n)
        conns = ", ".join(f".{n}({prefix}{n})" for _, _, n in ports)
        clk = {"hg_requant": "", "hg_pool_reduce": "", "hg_step": ".clk(clk), "}.get(module, ".clk(clk), .rst(rst), ")
        pv = ", ".join(f".{k}({v})" for k, v in params.items())
        self.body.append(f"    {module} #({pv}) u_{prefix}({clk}{conns});")

    def write(self) -> Path:
        f = self.work / "blocks.v"
        ports = ",\n".join(["    input wire clk", "    input wire rst"] + self.ports)
        f.write_text(
            "`default_nettype none\nmodule blocks (\n" + ports + "\n);\n" + "\n".join(self.body) + "\nendmodule\n"
        )
        return f


def _stream(w, module, prefix, params, ins, outs, job):
    """A stream block: ins/outs are (port prefix, width[, last])."""
    ports = []
    for p, width in ins:
        ports += [("input", width, f"{p}_data"), ("input", 1, f"{p}_valid"), ("output", 1, f"{p}_ready")]
    for o in outs:
        p, width = o[0], o[1]
        ports += [("output", width, f"{p}_data"), ("output", 1, f"{p}_valid"), ("input", 1, f"{p}_ready")]
        if len(o) > 2:
            ports.append(("output", 1, f"{p}_last"))
    w.inst(module, prefix, params, ports)
    w.jobs[prefix] = {"prefix": prefix, "seed": 11, "items": 300, "runs": [[0.0, 0.0], [0.4, 0.5], [0.1, 0.8]], **job}


def _requant(w, rng):
    iw = 9
    cfgs = []
    for rnd in range(len(ROUNDING_MODES)):
        for ovf in range(len(OVERFLOW_MODES)):
            for _ in range(2):
                cfgs.append(
                    {
                        "rnd": rnd,
                        "ovf": ovf,
                        "shift": rng.choice([-2, 0, 1, 2, rng.randrange(3, iw)]),
                        "ow": rng.randrange(2, iw + 2),
                        "osigned": rng.randrange(2),
                        "in_frac": rng.randrange(0, iw),
                    }
                )
    w.port("input", iw, "rq_x")
    for k, c in enumerate(cfgs):
        w.port("output", c["ow"], f"rq_y{k}")
        w.body.append(
            f"    hg_requant #(.IW({iw}), .SHIFT({c['shift']}), .OW({c['ow']}), .OSIGNED({c['osigned']}), "
            f".RND({c['rnd']}), .OVF({c['ovf']})) u_rq{k} (.x(rq_x), .y(rq_y{k}));"
        )
    w.jobs["rq_"] = {"prefix": "rq_", "iw": iw, "configs": cfgs}


def _lanes(w, rng):
    xw = 8
    # relu and linear lanes are given TOW wide enough for their input (as the planners do)
    lanes = [{"mode": 2, "tow": 8, "ow": 9}, {"mode": 3, "tow": 8, "ow": 10}, {"mode": 3, "tow": 8, "ow": 8}]
    for rnd in range(len(ROUNDING_MODES)):
        for ovf in range(len(OVERFLOW_MODES)):
            tow = rng.randrange(2, 9)
            lanes.append(
                {
                    "mode": 1,
                    "tow": tow,
                    "ow": tow + rng.randrange(0, 3),
                    "shift": rng.choice([-1, 0, 2, 3]),
                    "frac": rng.randrange(0, 6),
                    "rnd": rnd,
                    "ovf": ovf,
                    "osigned": rng.randrange(2),
                    "relu": rng.randrange(2),
                }
            )
    w.port("input", xw, "lane_x")
    for k, c in enumerate(lanes):
        c["xw"] = xw
        w.port("output", c["ow"], f"lane_y{k}")
        w.body.append(
            f"    hg_act_lane #(.XW({xw}), .OW({c['ow']}), .TOW({c['tow']}), .MODE({c['mode']}), "
            f".SHIFT({c.get('shift', 0)}), .RND({c.get('rnd', 0)}), .OVF({c.get('ovf', 1)}), "
            f".OSIGNED({c.get('osigned', 1)}), .RELU({c.get('relu', 0)})) "
            f"u_lane{k} (.clk(clk), .x(lane_x), .ch(1'b0), .y(lane_y{k}));"
        )
    w.jobs["lane_"] = {"prefix": "lane_", "xw": xw, "lanes": lanes}


def _proc(w, prefix, cost, regs):
    for d, width, n in (("input", 8, "s_data"), ("output", 9, "m_data")):
        w.port(d, width, prefix + n)
    for d, n in (("input", "s_valid"), ("output", "s_ready"), ("output", "m_valid"), ("input", "m_ready")):
        w.port(d, 1, prefix + n)
    w.body.append(f"    wire [7:0] {prefix}work;")
    src = f"{prefix}work"
    for k in range(regs):
        w.body.append(f"    reg [7:0] {prefix}r{k};")
        w.body.append(f"    always @(posedge clk) {prefix}r{k} <= {src};")
        src = f"{prefix}r{k}"
    w.body.append(
        f"    hg_proc #(.IW(8), .OW(9), .COST({cost}), .CNW({max(1, (cost - 1).bit_length())})) u_{prefix}proc "
        f"(.clk(clk), .rst(rst), .s_data({prefix}s_data), .s_valid({prefix}s_valid), .s_ready({prefix}s_ready), "
        f".m_data({prefix}m_data), .m_valid({prefix}m_valid), .m_ready({prefix}m_ready), .work({prefix}work), "
        f".result({{1'b0, {src}}} + 9'd1));"
    )
    runs = [[0.0, 0.0], [0.4, 0.5]]
    # at full rate one item per COST cycles (the first run): the testbench holds it to that
    w.jobs[prefix] = {"prefix": prefix, "seed": 8, "items": 200, "runs": runs, "in_widths": [8], "ow": 9}
    w.jobs[prefix]["cycles_per_item"] = cost


def _window(w, prefix, h, wd, c, ew, kh, kw, sh, sw, pt, pl, pb, pr):
    from hlsgen.engines.cnn.plan import _window as plan_window

    ph, pw = h + pt + pb, wd + pl + pr
    oh, ow = (ph - kh) // sh + 1, (pw - kw) // sw + 1
    # where windows end, worked out here (the reference's), and the planner's must agree
    rowe = [int(r >= kh - 1 and (r - kh + 1) % sh == 0 and (r - kh + 1) // sh < oh) for r in range(ph)]
    cole = [int(q >= kw - 1 and (q - kw + 1) % sw == 0 and (q - kw + 1) // sw < ow) for q in range(pw)]
    q = plan_window("w", "l", h, wd, c, ew, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow).p
    assert (list(q.rowe), list(q.cole)) == (rowe, cole)

    def bits(v):
        return f"{len(v)}'b" + "".join(str(b) for b in reversed(v))

    params = {"C": c, "EW": ew, "KH": kh, "KW": kw, "PH": ph, "PW": pw, "RW": max(1, (ph - 1).bit_length())}
    params.update(CWB=max(1, (pw - 1).bit_length()))
    # the leading padding rows / columns where no window ends are not walked (masked instead);
    # the trailing ones share their cycles with the next frame's / row's first (MR, MC)
    params.update(R0=q.r0, C0=q.c0, MR=q.mr, MC=q.mc, RE=pt + h, CE=pl + wd)
    params.update({k.upper(): bits(v) for k, v in q.walk_flags().items()})
    job = {"h": h, "w": wd, "c": c, "ew": ew, "kh": kh, "kw": kw, "pt": pt, "pl": pl, "ph": ph, "pw": pw}
    job.update(rowe=rowe, cole=cole, in_widths=[c * ew])
    _stream(w, "hg_window", prefix, params, [("s", c * ew)], [("m", kh * kw * c * ew)], job)
    w.jobs[prefix]["items"] = h * wd * 12


def _step(w, rng):
    from hlsgen.backends.render import mem_lines

    xw, ow, levels, chw = 7, 5, 3, 1
    n = (1 << levels) - 1
    t = [sorted(rng.randrange(-(1 << (xw - 1)), (1 << (xw - 1)) + 1) for _ in range(n)) for _ in range(1 << chw)]
    v = [[rng.randrange(-(1 << (ow - 1)), 1 << (ow - 1)) for _ in range(n + 1)] for _ in range(1 << chw)]
    (w.work / "step_t.mem").write_text(mem_lines([x for row in t for x in row + [0]], xw + 1))
    (w.work / "step_v.mem").write_text(mem_lines([x for row in v for x in row], ow))
    params = {"XW": xw, "OW": ow, "LEVELS": levels, "CHW": chw, "TFILE": '"step_t.mem"', "VFILE": '"step_v.mem"'}
    w.inst("hg_step", "step_", params, [("input", xw, "x"), ("input", chw, "ch"), ("output", ow, "y")])
    w.jobs["step_"] = {
        "prefix": "step_",
        "seed": 4,
        "items": 2000,
        "xw": xw,
        "ow": ow,
        "levels": levels,
        "t": t,
        "v": v,
    }


def _seq(w, rng):
    """hg_dense_seq and three hg_vec_act (per-channel table, relu, requantize) on one input."""
    from hlsgen.backends.render import mem_lines

    n, iw, no, ww, bw, ps, bs, ow = 6, 7, 3, 5, 6, 1, 2, 16
    levels, chw = 2, 3
    wt = [[rng.randrange(-16, 16) for _ in range(n)] for _ in range(no)]
    b = [rng.randrange(-32, 32) for _ in range(no)]
    (w.work / "seq_w.mem").write_text(mem_lines([x for row in wt for x in row], ww))
    (w.work / "seq_b.mem").write_text(mem_lines(b, bw))
    nt = (1 << levels) - 1
    t = [sorted(rng.randrange(-64, 65) for _ in range(nt)) for _ in range(1 << chw)]
    v = [[rng.randrange(-8, 8) for _ in range(nt + 1)] for _ in range(1 << chw)]
    (w.work / "seq_t.mem").write_text(mem_lines([x for row in t for x in row + [0]], iw + 1))
    (w.work / "seq_v.mem").write_text(mem_lines([x for row in v for x in row], 4))
    rq = {"mode": 1, "xw": iw, "tow": 5, "ow": 5, "shift": 2, "frac": 4, "rnd": 6, "ovf": 1, "osigned": 1, "relu": 1}
    w.port("input", 1, "seq_start")
    w.port("input", n * iw, "seq_in_flat")
    outs = {
        "dense": {"cycles": n * no + 2, "n": no, "ow": ow, "w": wt, "b": b, "ps": ps, "bs": bs},
        "table": {"cycles": n + levels + 2, "n": n, "ow": 4, "t": t, "v": v},
        "relu": {"cycles": n + 2, "n": n, "ow": iw},
        "rq": {"cycles": n + 2, "n": n, "ow": 5, "lane": rq},
    }
    for name, o in outs.items():
        w.port("output", 1, f"seq_{name}_done")
        w.port("output", o["n"] * o["ow"], f"seq_{name}_out")
    # each block reads its input one value per cycle (in_idx -> in_word): here from the flat vector
    for tag in ("d", "t", "r", "q"):
        w.body.append(f"    wire [2:0] seq_i_{tag};")
        w.body.append(f"    wire [{iw - 1}:0] seq_x_{tag} = seq_in_flat[seq_i_{tag}*{iw} +: {iw}];")
    io = ".clk(clk), .rst(rst), .start(seq_start), .in_idx(seq_i_{0}), .in_word(seq_x_{0})"
    w.body.append(
        f"    hg_dense_seq #(.NI({n}), .NO({no}), .IW({iw}), .WW({ww}), .BW({bw}), .OW({ow}), .PS({ps}), .BS({bs}), "
        f'.NIW(3), .NOW(2), .ADW(5), .WFILE("seq_w.mem"), .BFILE("seq_b.mem")) u_seq_d ({io.format("d")}, '
        ".done(seq_dense_done), .out_flat(seq_dense_out));"
    )
    w.body.append(
        f"    hg_vec_act #(.N({n}), .NW(3), .IW({iw}), .OW(4), .MODE(0), .LEVELS({levels}), .CHW({chw}), .PERCH(1), "
        f'.TFILE("seq_t.mem"), .VFILE("seq_v.mem")) u_seq_t ({io.format("t")}, .done(seq_table_done), .out_flat(seq_table_out));'
    )
    w.body.append(
        f"    hg_vec_act #(.N({n}), .NW(3), .IW({iw}), .OW({iw}), .MODE(1)) u_seq_r ({io.format('r')}, "
        ".done(seq_relu_done), .out_flat(seq_relu_out));"
    )
    w.body.append(
        f"    hg_vec_act #(.N({n}), .NW(3), .IW({iw}), .OW(5), .MODE(3), .SHIFT(2), .RND(6), .OVF(1), .OSIGNED(1), "
        f".RELU(1)) u_seq_q ({io.format('q')}, .done(seq_rq_done), .out_flat(seq_rq_out));"
    )
    w.jobs["seq_"] = {"prefix": "seq_", "seed": 12, "rounds": 20, "n": n, "iw": iw, "wait": n * no + 6, "outs": outs}


MVU_CASES = {
    # kind, bits, density, n_in, n_out, (pe, simd), activation
    "mvu0_": ("fixed", 6, 0.4, 12, 8, (4, 3), "requant"),
    "mvu1_": ("po2", 0, 1.0, 8, 6, (2, 4), None),
    "mvu2_": ("ternary", 0, 1.0, 12, 5, (1, 6), "relu"),
    "mvu3_": ("shared", 8, 0.6, 12, 8, (1, 2), "relu"),  # codebook datapath (DP 3)
}


def _mvu(w, prefix):
    """hg_mvu with the tiles, datapath and memories a plan gives a random Dense layer, its
    activation lanes as the engine wires them; expected outputs from the IR reference."""
    from hlsgen.backends.cnn_verilog import context
    from hlsgen.backends.render import write_memories
    from hlsgen.engines.cnn import plan_cnn
    from hlsgen.engines.cnn.synthetic import _activation, _weights
    from hlsgen.fixed import FixedType
    from hlsgen.ir import Dense, Graph, Input, Weight
    from hlsgen.reference.execute import predict_int

    kind, bits, density, n_in, n_out, fold, act = MVU_CASES[prefix]
    rng = np.random.default_rng(sorted(MVU_CASES).index(prefix))
    layer = f"{prefix}fc"
    g = Graph([Input("input", [], shape=(n_in,), type=FixedType(5, 2, True))])
    bias = Weight(rng.integers(-8, 8, size=n_out), FixedType(5, 3))
    g.add(Dense(layer, ["input"], kernel=_weights(rng, (n_in, n_out), kind, bits, density), bias=bias))
    g.output = layer
    g.infer()
    if act:
        g.add(_activation(rng, f"{prefix}act", layer, g[layer].spec, act))
        g.output = f"{prefix}act"
        g.infer()
    plan = plan_cnn(g, fold={layer: fold})
    ctx, images = context(plan)
    (s,) = (st for st in ctx["stages"] if st["kind"] == "mvu")
    assert (s["dp"] == 3) == (kind == "shared")  # shared weights: the codebook datapath
    write_memories(w.work, {k: v for k, v in images.items() if k.startswith(s["name"])})
    for d, width, n in (("input", s["n"] * s["ew"], "s_data"), ("output", s["m"] * s["oew"], "m_data")):
        w.port(d, width, prefix + n)
    for d, n in (("input", "s_valid"), ("output", "s_ready"), ("output", "m_valid"), ("input", "m_ready")):
        w.port(d, 1, prefix + n)
    p = prefix
    w.body.append(f"    wire [{s['pe'] * s['vw'] - 1}:0] {p}lx;")
    w.body.append(f"    wire [{s['nfw'] - 1}:0] {p}lch;")
    w.body.append(f"    wire [{s['pe'] * s['oew'] - 1}:0] {p}ly;")
    for ln in s["lanes"]:
        i = ln["i"]
        ch = ln["ch"].replace(f"{s['name']}_lch", f"{p}lch")
        w.body.append(
            f"    hg_act_lane #({ln['params']}) u_{p}lane{i} (.clk(clk), .x({p}lx[{i * s['vw'] + s['vw'] - 1}:{i * s['vw']}]), "
            f".ch({ch}), .y({p}ly[{i * s['oew'] + s['oew'] - 1}:{i * s['oew']}]));"
        )
    prm = ["N", "M", "PE", "SIMD", "NF", "SF"]
    pv = ", ".join(f".{k}({s[k.lower()]})" for k in prm)
    pv += f", .XW({s['ew']}), .CW({s['cw']}), .DP({s['dp']}), .AW({s['aw']}), .VW({s['vw']}), .BW({s['bw']})"
    pv += f", .SA({s['sa']}), .SB({s['sb']}), .OW({s['oew']}), .T({s['t']}), .TW({s['tw']}), .SFW({s['sfw']})"
    pv += f", .NFW({s['nfw']}), .LAT({s['lat']}), .NB({s['nb']}), .BIW({s['biw']}), .DIAG({s['diag']}), .EA({s['ea']})"
    pv += f', .WFILE("{s["name"]}_w.mem"), .BFILE("{s["name"]}_b.mem"), .SFILE("{s["name"]}_s.mem")'
    pv += f", .KN({s['book_n']}), .KW({s['book_w']}), .KV({s['book_v']})"
    w.body.append(
        f"    hg_mvu #({pv}) u_{p}mvu (.clk(clk), .rst(rst), .s_data({p}s_data), .s_valid({p}s_valid), "
        f".s_ready({p}s_ready), .m_data({p}m_data), .m_valid({p}m_valid), .m_ready({p}m_ready), "
        f".lane_x({p}lx), .lane_ch({p}lch), .lane_y({p}ly));"
    )
    t = g.input.type
    x = rng.integers(t.min_raw, t.max_raw, size=(150, n_in), endpoint=True)
    y = predict_int(g, x).reshape(len(x), -1)
    w.jobs[prefix] = {
        "prefix": prefix,
        "seed": 6,
        "items": len(x),
        "runs": [[0.0, 0.0], [0.4, 0.5]],
        "in_widths": [n_in * s["ew"]],
        "inputs": [[_pack(r, s["ew"]) for r in x]],
        "expected": [[_pack(r, s["oew"]) for r in y]],
    }


def _pe(w, prefix, index_bits, scan_width, ram=False, db=False):
    """One hg_lstm_pe with the compressed columns the planner encodes for a random sparse LSTM
    (2-bit indices force filler entries), fed blocks of ``scan_width`` columns, against exact
    sums over the stacked matrix; ``ram``: the accumulators in RAM, read through the four ports;
    ``db``: in two banks, a round's clear switching the bank written."""
    from hlsgen.backends.lstm_verilog import context
    from hlsgen.backends.render import write_memories
    from hlsgen.engines.lstm import memory_images, plan_lstm
    from hlsgen.engines.lstm.synthetic import random_lstm

    g = random_lstm(21, features=5, units=6, density=0.3, pe=3)
    plan = plan_lstm(g, pe=3, index_bits=index_bits, afifo_depth=4, jq_depth=2, scan_width=scan_width)
    ctx = context(plan)
    p = max(range(plan.pe), key=lambda k: len(plan.entries[k]))  # the busiest PE
    imgs = memory_images(plan)
    write_memories(w.work, {f"{prefix}{k}": v for k, v in imgs.items() if k.endswith(f"_pe{p}")})
    q = ctx["pes"][p]
    params = {
        "WW": ctx["ww"],
        "B": index_bits,
        "AW": ctx["aw"],
        "ACCW": ctx["accw"],
        "R": q["rows"],
        "RW": q["rw"],
        "DEPTH": ctx["depth"],
        "ADW": ctx["adw"],
        "CNTW": ctx["cntw"],
        "K": ctx["scan_width"],
        "KW": ctx["kw"],
        "NB": ctx["nblk"],
        "BLW": ctx["blw"],
        "PCW": ctx["pcw"],
        "SX": ctx["shift_x"],
        "SH": ctx["shift_h"],
        "AFW": ctx["afw"],
        "JQW": ctx["jqw"],
        "ARAM": int(ram),
        "DB": int(db),
        "WFILE": f'"{prefix}lstm_w_pe{p}.mem"',
        "PFILE": f'"{prefix}lstm_ptr_pe{p}.mem"',
    }
    kb = ctx["scan_width"]
    ports = [
        ("input", 1, "clear"),
        ("input", 1, "wbank"),
        ("input", 1, "rbank"),
        ("input", 1, "layer"),  # one layer: unused
        ("input", 1, "push"),
        ("input", kb * ctx["aw"], "push_a"),
        ("input", kb, "push_sel"),
    ]
    ports += [
        ("input", kb, "push_mask"),
        ("input", ctx["blw"], "push_blk"),
        ("output", 1, "space"),
        ("output", 1, "idle"),
    ]
    ports += [("output", (1 if ram else q["rows"]) * ctx["accw"], "acc_flat")]
    ports += [("input", 4 * q["rw"], "rd_addr"), ("output", 4 * ctx["accw"], "rd_data")]
    w.inst("hg_lstm_pe", prefix, params, ports)
    rng = np.random.default_rng(4)
    lim = 1 << (ctx["aw"] - 1)
    rounds = []
    for _ in range(12):
        a = rng.integers(-lim, lim, size=plan.ncol) * (rng.random(plan.ncol) < 0.7)
        pushes = []  # blocks with a non-zero activation: (values, recurrent bits, non-zero bits, block)
        for b in range(plan.blocks):
            cols = range(b * kb, min((b + 1) * kb, plan.ncol))
            vals = [int(a[j]) for j in cols] + [0] * (kb - len(cols))
            sel = sum(1 << i for i, j in enumerate(cols) if j >= plan.features)
            mask = sum(1 << i for i, v in enumerate(vals) if v)
            if mask:
                pushes.append([vals, sel, mask, b])
        acc = []
        for k in range(q["rows"]):
            r = p + k * plan.pe
            tot = 0
            if r < plan.nrow:
                for j in range(plan.ncol):
                    sh = ctx["shift_x"] if j < plan.features else ctx["shift_h"]
                    tot += (int(a[j]) * int(plan.matrix[j, r])) << sh
            acc.append(tot)
        rounds.append({"pushes": pushes, "acc": acc})
    w.jobs[prefix] = {"prefix": prefix, "seed": 3, "aw": ctx["aw"], "accw": ctx["accw"], "rows": q["rows"], "k": kb}
    w.jobs[prefix].update(ram=ram, rw=q["rw"], db=db)
    w.jobs[prefix].update(rounds=rounds, p_gap=0.3)


def _lstm_ctrl(w, rng):
    """hg_lstm_ctrl with its input and hidden-state reads served by small ROMs."""
    from hlsgen.backends.render import mem_lines

    f, u, t, xw, sw, aw, npe = 4, 3, 3, 5, 6, 7, 2
    x = [rng.choice([0, rng.randrange(-16, 16)]) for _ in range(f)]
    h = [rng.choice([0, rng.randrange(-32, 32)]) for _ in range(u)]
    (w.work / "ct_x.mem").write_text(mem_lines(x, xw))
    (w.work / "ct_h.mem").write_text(mem_lines(h, sw))
    ew_cyc = u + 6
    k, nb = 2, 4  # two columns per block: blocks {0,1} {2,3} {4,5} {6,-}
    params = {"F": f, "NCOL": f + u, "COLW": 4, "K": k, "NB": nb, "BLW": 3, "FW": 2, "UW": 2, "T": t, "TCW": 2}
    params.update(EKW=4, EW_CYC=ew_cyc)
    params.update(NPE=npe, NHEAD=0, HSW=1, RETSEQ=0, XW=xw, XSIGN=1, SW=sw, SSIGN=1, AW=aw)
    ports = [("input", 1, "avail"), ("output", 1, "release_slot"), ("input", 1, "head_step_done")]
    ports += [("input", 1, "head_last_done"), ("output", 1, "out_load"), ("output", 1, "out_last")]
    ports += [
        ("input", 1, "out_busy"),
        ("output", 1, "start_step"),
        ("output", 1, "push"),
        ("output", k * aw, "col_val"),
    ]
    ports += [("output", k, "is_rec"), ("output", k, "col_nz"), ("output", 3, "blk"), ("input", npe, "pe_space")]
    ports += [("input", npe, "pe_idle")]
    ports += [("output", 1, "ew_run"), ("output", 4, "ew_k"), ("output", 1, "first_step"), ("output", 1, "head_start")]
    ports += [("output", 1, "hs"), ("output", 1, "layer")]
    for d, width, n in ports:
        w.port(d, width, "ct_" + n)
    w.body.append(f"    reg [{xw - 1}:0] ct_xmem [0:{f - 1}];")
    w.body.append(f"    reg [{sw - 1}:0] ct_hmem [0:{u - 1}];")
    w.body.append('    initial begin $readmemh("ct_x.mem", ct_xmem); $readmemh("ct_h.mem", ct_hmem); end')
    w.body.append("    wire [3:0] ct_x_idx, ct_h_idx;")
    rd = lambda mem, idx: "{" + ", ".join(f"{mem}[{idx}[{2 * i + 1}:{2 * i}]]" for i in reversed(range(k))) + "}"  # noqa: E731
    conns = ", ".join(f".{n}(ct_{n})" for _, _, n in ports)
    pv = ", ".join(f".{key}({v})" for key, v in params.items())
    w.body.append(
        f"    hg_lstm_ctrl #({pv}) u_ct (.clk(clk), .rst(rst), {conns}, .x_idx(ct_x_idx), "
        f".x_raw({rd('ct_xmem', 'ct_x_idx')}), .h_idx(ct_h_idx), .h_raw({rd('ct_hmem', 'ct_h_idx')}));"
    )
    w.jobs["ct_"] = {"prefix": "ct_", "seed": 13, "cycles": 400, "aw": aw, "npe": npe, "f": f, "t": t, "x": x, "h": h}
    w.jobs["ct_"]["k"] = k
    w.jobs["ct_"]["ew_cyc"] = ew_cyc


def _ew(w, cell: str = "lstm", reset_after: bool = True):
    """hg_lstm_ew (or hg_gru_ew) with a random model's plan (tables, bias, widths, schedule),
    driven with the reference's own pre-activations step by step.  A GRU with reset_after=False
    runs two passes per step on the unit (RA = 0): the gates pass's rows, then the candidate
    pass's, whose r * h_q the scanner reads in between."""
    from hlsgen.backends.lstm_verilog import context, ew_params
    from hlsgen.backends.render import write_memories
    from hlsgen.engines.lstm import memory_images, plan_lstm
    from hlsgen.engines.lstm.synthetic import random_inputs, random_lstm
    from hlsgen.reference.execute import gru_steps, lstm_steps

    gru = cell == "gru"
    pre = ("gew_" if reset_after else "gew0_") if gru else "ew_"
    g = random_lstm(33, features=4, units=5, steps=4, density=0.6, pe=2, cell=cell, reset_after=reset_after)
    plan = plan_lstm(g, pe=2, ew_lanes=2)  # two lanes over five units: the last group half full
    ctx = context(plan)
    imgs = memory_images(plan)
    keep = ("bias", "gate_t", "gate_v", "cand_t", "cand_v", "cell_t", "cell_v")
    keep = [f"{lp}{k}" for lp in ("lstm_", "lstm1_") for k in keep]
    write_memories(w.work, {f"{pre}{k}": v for k, v in imgs.items() if k in keep})
    u = plan.units
    # the element-wise unit's parameters as the top passes them; K = 2 reads of the quantized
    # hidden state; the memory images under this test's prefix
    layers = plan.layers
    if reset_after:
        params = dict(ew_params(plan, 0, plan.acc_width, 2, ctx["ekw"], reads=2, out=True))
    else:
        params = dict(ew_params(layers[1], 1, plan.acc_width, 2, ctx["ekw"], gates=layers[0], reads=2, out=True))
    for key, v in params.items():
        if isinstance(v, str):
            params[key] = v.replace('"lstm', f'"{pre}lstm')
    qw = params.get("QW", ctx["sw"])
    ports = [("input", 1, "run"), ("input", ctx["ekw"], "k"), ("input", 1, "first")]
    ports += [("input", 1, "pass")] if gru else []
    ports += [
        ("input", 4 * u * ctx["accw"], "z_flat"),
        ("input", 2 * ctx["uw"], "h_addr"),
        ("output", 2 * qw, "h_q"),
        ("input", 2 * ctx["uw"], "r_addr"),
        ("output", 2 * ctx["hw"], "r_h"),
    ]
    ports += [("input", 1, "o_swap"), ("input", ctx["uw"], "o_idx"), ("output", ctx["hw"], "o_word")]
    for d, width, n in ports:
        w.port(d, width, pre + n)
    conns = ", ".join(f".{n}({pre}{n})" for _, _, n in ports)
    pv = ", ".join(f".{k}({v})" for k, v in params.items())
    w.body.append(f"    hg_{cell}_ew #({pv}) u_{pre}ew (.clk(clk), {conns});")
    node = g.nodes[1]
    st = node.state_type
    h_t = node.internal_specs(g.input.spec)["h"].type
    x = random_inputs(g, 3, 5)
    bias_z = plan.bias.astype(np.int64) << plan.bias_shift
    f = plan.features

    def rows(lp, xt, cols):  # a pass's rows on its accumulator grid, as the PEs leave them
        z = (xt @ lp.matrix[:f]) * (1 << lp.shift_x) + (cols @ lp.matrix[f:]) * (1 << lp.shift_h)
        return z[0].tolist()

    steps = []
    for seq in range(len(x)):
        xs = x[seq : seq + 1]
        for t, st_ in enumerate((gru_steps if gru else lstm_steps)(node, g.input.spec, xs)):
            rh = None
            if gru and reset_after:  # the rows [z; r; h_x; h_h]
                xt, hq, h = st_[:3]
                phases = [{"pass": 0, "acc": rows(plan, xt, hq), "cyc": ctx["ew_cyc"]}]
            elif gru:  # the gates pass's rows [z; r], then the candidate pass's [pre_h]
                xt, hq, h, rh = st_
                phases = [
                    {"pass": p, "acc": rows(lp, xt, c), "cyc": lp.ew_groups + lp.ew_latency}
                    for p, lp, c in ((0, layers[0], hq), (1, layers[1], rh))
                ]
                rh = [int(v) for v in rh[0]]
            else:
                z, h = st_[3], st_[5]
                phases = [{"pass": 0, "acc": (z[0] - bias_z).tolist(), "cyc": ctx["ew_cyc"]}]
            hq_next = st.requantize(h[0], h_t)
            steps.append(
                {"first": t == 0, "phases": phases, "rh": rh, "h": [int(v) for v in h[0]],
                 "hq_next": [int(v) for v in hq_next]}
            )  # fmt: skip
    w.jobs[pre] = {"prefix": pre, "u": u, "accw": ctx["accw"], "hw": ctx["hw"], "sw": qw, "uw": ctx["uw"]}
    w.jobs[pre].update(steps=steps, has_pass=gru)


def _build_wrapper(work: Path) -> Wrapper:
    rng = random.Random(7)
    w = Wrapper(work)
    _requant(w, rng)
    _lanes(w, rng)
    _stream(w, "hg_fifo", "fifo_", {"W": 8, "D": 3, "AW": 2, "NW": 2}, [("s", 8)], [("m", 8)], {"in_widths": [8]})
    _stream(w, "hg_fifo", "fifo1_", {"W": 5, "D": 1, "AW": 1, "NW": 1}, [("s", 5)], [("m", 5)], {"in_widths": [5]})
    _stream(w, "hg_skid", "skid_", {"W": 12}, [("s", 12)], [("m", 12)], {"in_widths": [12]})
    _stream(w, "hg_dup", "dup_", {"W": 6}, [("s", 6)], [("m0", 6), ("m1", 6)], {"in_widths": [6]})
    _stream(
        w,
        "hg_gather",
        "gather_",
        {"N": 3, "W": 5, "KW": 2},
        [("s", 5)],
        [("m", 15)],
        {"in_widths": [5], "n": 3, "w": 5},
    )
    p2s = {"N": 4, "EW": 6, "DW": 8, "KW": 2, "ITEMS": 3, "IW": 2}
    job = {"in_widths": [24], "n": 4, "ew": 6, "dw": 8, "items_per_frame": 3}
    _stream(w, "hg_p2s", "p2s_", p2s, [("s", 24)], [("m", 8, "last")], job)
    for prefix, mode, c, oew in (("gsum_", 1, 3, 9), ("gmax_", 0, 2, 8)):
        params = {"N": 5, "C": c, "EW": 6, "OEW": oew, "MODE": mode, "KW": 3}
        job = {"in_widths": [6 * c], "n": 5, "c": c, "ew": 6, "oew": oew, "mode": mode}
        _stream(w, "hg_gpool", prefix, params, [("s", 6 * c)], [("m", c * oew)], job)
    add = {"C": 3, "AW": 5, "BW": 4, "OEW": 7, "SA": 1, "SB": 0}
    job = {"in_widths": [15, 12], "c": 3, "aw": 5, "bw": 4, "oew": 7, "sa": 1, "sb": 0}
    _stream(w, "hg_add", "add_", add, [("a", 15), ("b", 12)], [("m", 21)], job)
    _window(w, "win1_", 5, 4, 2, 4, 3, 2, 2, 1, 1, 0, 1, 1)
    _window(w, "win2_", 4, 6, 1, 3, 2, 3, 1, 2, 0, 1, 0, 1)
    _window(w, "win3_", 1, 7, 2, 3, 1, 3, 1, 2, 0, 1, 0, 1)  # one row: no line buffer
    _window(w, "win4_", 5, 1, 1, 5, 2, 1, 1, 1, 1, 0, 0, 0)  # one column: the line buffer is a register
    # trailing padding merged with the next frame's / row's first rows and columns (MR, MC > 0)
    _window(w, "win5_", 4, 5, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1)  # 'same' 3 x 3
    _window(w, "win6_", 5, 6, 1, 4, 5, 5, 1, 1, 2, 2, 2, 2)  # 'same' 5 x 5: two rows and columns merged
    _window(w, "win7_", 6, 5, 1, 4, 3, 3, 2, 2, 0, 1, 1, 1)  # 'same' 3 x 3, stride 2
    # hg_proc around a stage whose result is work + 1: computed at once (COST 3 and 1), and
    # through COST - 1 registers as the activation lanes compute it (a new item may enter
    # `work` while the last one's result is still in the registers)
    for prefix, cost, regs in (("proc_", 3, 0), ("proc1_", 1, 0), ("procp_", 3, 2)):
        _proc(w, prefix, cost, regs)
    _step(w, rng)
    for prefix, mode, oew in (("prs_", 1, 7), ("prm_", 0, 5)):
        params = {"K": 4, "C": 3, "EW": 5, "OEW": oew, "MODE": mode}
        w.inst("hg_pool_reduce", prefix, params, [("input", 60, "win"), ("output", 3 * oew, "y")])
        w.jobs[prefix] = {"prefix": prefix, "seed": 2, "items": 3000, "k": 4, "c": 3, "ew": 5, "oew": oew, "mode": mode}
    _seq(w, rng)
    for prefix in MVU_CASES:
        _mvu(w, prefix)
    _pe(w, "pef_", 2, 1)
    _pe(w, "pe_", 8, 4, ram=True)
    _pe(w, "pedb_", 8, 2, ram=True, db=True)
    vo = {"N": 5, "OW": 6, "OBW": 8, "OIW": 3}
    ports = [("input", 1, "load"), ("input", 30, "vec"), ("input", 1, "last"), ("output", 1, "busy")]
    ports += [("output", 8, "m_axis_tdata"), ("output", 1, "m_axis_tvalid"), ("input", 1, "m_axis_tready")]
    w.inst(
        "hg_vec_out",
        "vo_",
        vo,
        ports + [("output", 1, "m_axis_tlast"), ("input", 6, "rd_word"), ("output", 3, "rd_idx")],
    )
    w.jobs["vo_"] = {"prefix": "vo_", "seed": 14, "vectors": 60, "n": 5, "ow": 6, "obw": 8}
    # IDX = 1: no snapshot, word i read by index (here from vec, which the test holds while busy)
    for d, width, n in ports + [("output", 1, "m_axis_tlast")]:
        w.port(d, width, "vo1_" + n)
    w.body.append("    wire [2:0] vo1_rd_idx;")
    conns = ", ".join(f".{n}(vo1_{n})" for _, _, n in ports + [(0, 0, "m_axis_tlast")] if n != "vec")
    w.body.append(
        "    hg_vec_out #(.N(5), .OW(6), .OBW(8), .OIW(3), .IDX(1)) u_vo1_(.clk(clk), .rst(rst), "
        f".vec(30'd0), .rd_idx(vo1_rd_idx), .rd_word(vo1_vec[vo1_rd_idx*6 +: 6]), {conns});"
    )
    w.jobs["vo1_"] = {**w.jobs["vo_"], "prefix": "vo1_", "seed": 17}
    si = {"F": 5, "XW": 6, "IBW": 8, "FW": 3, "XIW": 4, "K": 2}
    ports = [("input", 8, "s_axis_tdata"), ("input", 1, "s_axis_tvalid"), ("output", 1, "s_axis_tready")]
    ports += [("input", 1, "release_slot"), ("output", 1, "avail"), ("input", 6, "rd_idx"), ("output", 12, "rd_data")]
    w.inst("hg_seq_in", "si_", si, ports)
    w.jobs["si_"] = {"prefix": "si_", "seed": 15, "steps": 30, "f": 5, "xw": 6}
    _lstm_ctrl(w, rng)
    for prefix, (u, e, k, nr, out, zin, nj) in {"eio_": (7, 4, 2, 2, 1, 1, 3), "eio1_": (5, 1, 3, 1, 0, 0, 1)}.items():
        ng, qw, hw, uw = -(-u // e), 5, 6, max(1, (u - 1).bit_length())
        jw, zrw, grw = max(1, (nj - 1).bit_length()), 3, max(1, (ng - 1).bit_length())
        params = {"U": u, "E": e, "EB": e.bit_length() - 1, "NG": ng, "GRW": grw, "K": k, "NR": nr, "OUT": out}
        params.update(UW=uw, QW=qw, HW=hw, ZIN=zin, NJ=nj, JW=jw, ZRW=zrw)
        ports = [("input", 1, "run"), ("input", k * uw, "h_addr"), ("input", e * k * qw, "lane_q")]
        ports += [("output", k * qw, "h_q"), ("input", e, "h_we"), ("input", e * grw, "h_wrow")]
        ports += [("input", e * hw, "h_wd"), ("input", nr * uw, "r_addr"), ("output", nr * hw, "r_h")]
        ports += [("input", 1, "o_swap"), ("input", uw, "o_idx"), ("output", hw, "o_word")]
        ports += [("output", jw, "ej"), ("output", zrw, "z_row")]
        for d, width, n in ports:
            w.port(d, width, prefix + n)
        conns = ", ".join(f".{n}({prefix}{n})" for _, _, n in ports)
        pv = ", ".join(f".{key}({v})" for key, v in params.items())
        w.body.append(f"    hg_ew_io #({pv}) u_{prefix}(.clk(clk), {conns});")
        w.jobs[prefix] = {"prefix": prefix, "seed": 16, "u": u, "e": e, "k": k, "ng": ng, "qw": qw, "hw": hw}
        w.jobs[prefix].update(uw=uw, zin=zin, nj=nj, zrw=zrw, nr=nr, out=out, grw=grw)
    _ew(w, "lstm")
    _ew(w, "gru")
    _ew(w, "gru", reset_after=False)
    return w


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """Build the wrapper of every block once; returns a function that runs one cocotb test."""
    from cocotb_tools.runner import get_results

    from hlsgen.simulate import verilator_runner

    work = tmp_path_factory.mktemp("hw_blocks")
    w = _build_wrapper(work)
    top = w.write()
    if str(HERE) not in sys.path:  # the simulator's Python imports hw_blocks_tb from here
        sys.path.insert(0, str(HERE))
    runner = verilator_runner()
    runner.build(
        sources=[hw_file(f) for f in HW] + [top],
        hdl_toplevel="blocks",
        build_dir=work / "build",
        build_args=["-Wall", "-Wno-fatal"],
        log_file=work / "build.log",
    )

    def run(test: str, prefix: str):
        job_file = work / f"{prefix}job.json"
        job_file.write_text(json.dumps(w.jobs[prefix]))
        log = work / f"{prefix}{test}.log"
        try:
            results = runner.test(
                hdl_toplevel="blocks",
                test_module="hw_blocks_tb",
                testcase=test,
                build_dir=work / "build",
                test_dir=work,
                extra_env={"HLSGEN_BLOCK": str(job_file)},
                log_file=log,
                results_xml=str(work / f"{prefix}{test}.xml"),
            )
        except SystemExit:  # the runner exits when a cocotb test fails: show why
            pytest.fail(log.read_text()[-3000:])
        tests, fails = get_results(results)
        assert tests == 1 and fails == 0, log.read_text()[-3000:]

    return run


@pytest.mark.parametrize(
    "test,prefix",
    [
        ("requant_all", "rq_"),
        ("act_lanes", "lane_"),
        ("stream_pass", "fifo_"),
        ("stream_pass", "fifo1_"),
        ("stream_pass", "skid_"),
        ("stream_dup", "dup_"),
        ("stream_gather", "gather_"),
        ("stream_p2s", "p2s_"),
        ("stream_gpool", "gsum_"),
        ("stream_gpool", "gmax_"),
        ("stream_add", "add_"),
        ("stream_window", "win1_"),
        ("stream_window", "win2_"),
        ("stream_window", "win3_"),
        ("stream_window", "win4_"),
        ("stream_window", "win5_"),
        ("stream_window", "win6_"),
        ("stream_window", "win7_"),
        ("stream_proc", "proc_"),
        ("stream_proc", "proc1_"),
        ("stream_proc", "procp_"),
        ("step_table", "step_"),
        ("pool_reduce_all", "prs_"),
        ("pool_reduce_all", "prm_"),
        ("seq_blocks", "seq_"),
        ("stream_given", "mvu0_"),
        ("stream_given", "mvu1_"),
        ("stream_given", "mvu2_"),
        ("stream_given", "mvu3_"),
        ("pe_accumulate", "pef_"),
        ("pe_accumulate", "pe_"),
        ("pe_accumulate", "pedb_"),
        ("vec_out_frames", "vo_"),
        ("vec_out_frames", "vo1_"),
        ("seq_in_steps", "si_"),
        ("ctrl_schedule", "ct_"),
        ("ew_steps", "ew_"),
        ("ew_steps", "gew_"),
        ("ew_steps", "gew0_"),
        ("ew_io_all", "eio_"),
        ("ew_io_all", "eio1_"),
    ],
    ids=lambda v: v.rstrip("_"),
)
def test_block(blocks, test, prefix):
    blocks(test, prefix)


def test_every_block_is_tested():
    """A new hw/ block must join the wrapper (and so get a test of its own)."""
    shipped = {p.name for p in hw_file("hg_mvu.v").parent.glob("hg_*.v")}
    assert shipped == set(HW), sorted(shipped ^ set(HW))


def test_verilator_runtime_objects_are_compiled_once(tmp_path, monkeypatch):
    """hlsgen/sim/objcache.py: a runtime source of Verilator's include/ is compiled once, then
    copied; a design's own source (and a changed command line) always reaches the compiler."""
    from hlsgen.sim import objcache

    log = tmp_path / "calls"
    cxx = tmp_path / "fakecxx"
    cxx.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'while [ "$1" != "-o" ]; do shift; done\n'
        'echo "obj $*" > "$2"; echo "dep" > "${2%.o}.d"\n'
    )
    cxx.chmod(0o755)
    inc = tmp_path / "include"
    (inc / "vltstd").mkdir(parents=True)
    (inc / "verilated.cpp").write_text("int x;\n")
    design = tmp_path / "Vtop.cpp"
    design.write_text("int y;\n")
    monkeypatch.setenv("HLSGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    def calls():
        return len(log.read_text().splitlines()) if log.exists() else 0

    runtime = [str(cxx), "-Os", "-c", "-o", "verilated.o", str(inc / "verilated.cpp")]
    for want in (1, 1):  # the second build copies the object
        Path("verilated.o").unlink(missing_ok=True)
        assert objcache.main(runtime) == 0 and calls() == want
        assert Path("verilated.o").read_text().startswith("obj -o verilated.o") and Path("verilated.d").is_file()
    assert objcache.main([*runtime[:1], "-O2", *runtime[2:]]) == 0 and calls() == 2  # other flags
    (inc / "verilated.h").write_text("// a new header\n")
    assert objcache.main(runtime) == 0 and calls() == 3  # the headers changed
    for n in (4, 5):  # the design's own sources are never cached
        assert objcache.main([str(cxx), "-c", "-o", "Vtop.o", str(design)]) == 0 and calls() == n

"""cocotb tests of single hw/ blocks (run by tests/test_hw_blocks.py, one build per block).

* ``requant_all``: a wrapper holds many ``hg_requant`` instances (every rounding and overflow
  mode, several widths and shifts); every input code goes in, every output is compared with
  :meth:`hlsgen.fixed.FixedType.requantize`.
* ``stream_*``: the stream blocks between cocotbext-axi sources and sinks with random
  bubbles and back-pressure, and a protocol monitor on every port (payload and valid hold
  while valid and not ready); nothing lost, nothing repeated, nothing reordered.

The job comes as JSON in $HLSGEN_BLOCK.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, Timer, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from hlsgen.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType


def _job() -> dict:
    return json.load(open(os.environ["HLSGEN_BLOCK"]))


class Block:
    """One block of the test wrapper: its ports are the wrapper's ports named ``<prefix><port>``
    (the clock and reset are shared)."""

    def __init__(self, dut, prefix: str):
        self._dut, self._prefix = dut, prefix

    def __getattr__(self, name):
        if name in ("clk", "rst") or name.startswith("_"):
            return getattr(self._dut, name)
        return getattr(self._dut, self._prefix + name)


def _bus(dut, port: str) -> PortBus:
    """The stream port ``port`` of a block as a cocotbext-axi bus."""
    if isinstance(dut, Block):
        return PortBus.from_prefix(dut._dut, dut._prefix + port)
    return PortBus.from_prefix(dut, port)


def _dut(dut):
    return Block(dut, _job().get("prefix", ""))


class PortBus(AxiStreamBus):
    """hlsgen's internal stream ports (``<p>_data``, ``<p>_valid``, ``<p>_ready``) as an AXI4-Stream bus."""

    _signals = {"tdata": "data"}
    _optional_signals = {"tvalid": "valid", "tready": "ready", "tlast": "last"}


def _pause(rng: random.Random, p: float):
    while True:
        yield int(rng.random() < p)


async def _monitor(dut, clk, prefix: str, errors: list):
    """Stream contract on one port: once valid rises, valid and payload hold until the transfer."""
    valid, ready, data = (getattr(dut, f"{prefix}_{s}") for s in ("valid", "ready", "data"))
    held = None
    while True:
        await RisingEdge(clk)
        v, r = int(valid.value), int(ready.value)
        d = int(data.value) if v else None
        if held is not None and (not v or d != held):
            errors.append(f"{prefix}: valid/payload changed before the transfer")
        held = d if (v and not r) else None


def _words(frame) -> list[int]:
    return [int(v) for v in frame.tdata]


@cocotb.test()
async def requant_all(dut):
    dut = _dut(dut)
    job = _job()
    xw = job["iw"]
    for x in range(1 << xw):
        dut.x.value = x
        await Timer(1, unit="ns")
        xs = x - (1 << xw) if x >= 1 << (xw - 1) else x
        for k, c in enumerate(job["configs"]):
            src = FixedType(xw, xw - c["in_frac"], True)
            dst = FixedType(
                c["ow"],
                c["ow"] - (c["in_frac"] - c["shift"]),
                bool(c["osigned"]),
                ROUNDING_MODES[c["rnd"]],
                OVERFLOW_MODES[c["ovf"]],
            )
            want = int(dst.requantize(xs, src)) & ((1 << c["ow"]) - 1)
            got = int(getattr(dut, f"y{k}").value)
            assert got == want, f"config {c}: x={xs} gives {got}, want {want}"


async def _stream_test(dut, ins: list[str], outs: list[str], model, frame_words=None, fixed=False):
    """Drive ``ins`` with random words and bubbles, take ``outs`` with random back-pressure, check
    the protocol on every port and that each output port carries ``model(inputs)`` exactly."""
    job = _job()
    rng = random.Random(job["seed"])
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    errors: list = []
    for p in ins + outs:
        cocotb.start_soon(_monitor(dut, clk, p, errors))
    srcs = [AxiStreamSource(_bus(dut, p), clk, dut.rst, byte_lanes=1) for p in ins]
    sinks = [AxiStreamSink(_bus(dut, p), clk, dut.rst, byte_lanes=1) for p in outs]
    dut.rst.value = 1
    await ClockCycles(clk, 3)
    dut.rst.value = 0
    for p_bubble, p_stall in job["runs"]:  # e.g. full rate, then random bubbles and stalls
        for s in srcs:
            s.set_pause_generator(_pause(rng, p_bubble))
        for s in sinks:
            s.set_pause_generator(_pause(rng, p_stall))
        n, width = job["items"], job["in_widths"]
        data = job["inputs"] if fixed else [[rng.randrange(1 << w) for _ in range(n)] for w in width]
        t0 = get_sim_time("ns")
        for s, d in zip(srcs, data, strict=True):
            await s.send(AxiStreamFrame(d))
        want = model(data, job)
        got = [[] for _ in outs]
        for k, s in enumerate(sinks):
            while len(got[k]) < len(want[k]):
                # a block that deadlocks fails here instead of running for ever
                frame = _words(await with_timeout(s.recv(compact=False), 1, "ms"))
                if frame_words is not None:  # tlast must close every frame, and only there
                    assert len(frame) == frame_words(job), f"{outs[k]}: a frame of {len(frame)} words"
                got[k] += frame
        cpi = job.get("cycles_per_item")
        if cpi is not None and p_bubble == p_stall == 0:  # the block's rate, never stalled
            cycles = (get_sim_time("ns") - t0) // 10
            assert cycles <= n * cpi + 10, f"{n} items took {cycles} cycles at full rate, want {cpi} an item"
        await ClockCycles(clk, 20)  # nothing more may come out
        for k, s in enumerate(sinks):
            assert s.empty(), f"{outs[k]}: more items than were sent"
            bad = [i for i, (a, b) in enumerate(zip(got[k], want[k], strict=True)) if a != b]
            assert not bad, f"{outs[k]} (bubbles {p_bubble}, stalls {p_stall}): item {bad[0]} differs"
    assert not errors, errors[:3]


@cocotb.test()
async def stream_pass(dut):
    """hg_fifo / hg_skid: the items come out unchanged and in order."""
    dut = _dut(dut)
    await _stream_test(dut, ["s"], ["m"], lambda d, job: [d[0]])


@cocotb.test()
async def stream_dup(dut):
    """hg_dup: each branch gets every item, whatever the other branch's back-pressure."""
    dut = _dut(dut)
    await _stream_test(dut, ["s"], ["m0", "m1"], lambda d, job: [d[0], d[0]])


@cocotb.test()
async def stream_add(dut):
    """hg_add: lane by lane (a << SA) + (b << SB), signed, as the reference adds a residual."""
    dut = _dut(dut)

    def model(d, job):
        c, aw, bw, ow, sa, sb = (job[k] for k in ("c", "aw", "bw", "oew", "sa", "sb"))

        def lanes(v, w):
            out = []
            for i in range(c):
                x = (v >> (i * w)) & ((1 << w) - 1)
                out.append(x - (1 << w) if x >> (w - 1) else x)
            return out

        res = []
        for a, b in zip(d[0], d[1], strict=True):
            word = 0
            for i, (x, y) in enumerate(zip(lanes(a, aw), lanes(b, bw), strict=True)):
                word |= (((x << sa) + (y << sb)) & ((1 << ow) - 1)) << (i * ow)
            res.append(word)
        return [res]

    await _stream_test(dut, ["a", "b"], ["m"], model)


def _signed(v: int, w: int) -> int:
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


def _split(v: int, n: int, w: int) -> list[int]:
    return [_signed(v >> (i * w), w) for i in range(n)]


def _pack(vals, w: int) -> int:
    return sum((int(x) & ((1 << w) - 1)) << (i * w) for i, x in enumerate(vals))


@cocotb.test()
async def stream_gather(dut):
    """hg_gather: N items in, one vector of N items out (item k at bits [k*W +: W])."""
    dut = _dut(dut)
    await _stream_test(
        dut,
        ["s"],
        ["m"],
        lambda d, job: [[_pack(d[0][i : i + job["n"]], job["w"]) for i in range(0, len(d[0]), job["n"])]],
    )


@cocotb.test()
async def stream_p2s(dut):
    """hg_p2s: one vector of N signed elements in, N sign-extended words out; tlast on a frame's last word."""
    dut = _dut(dut)

    def model(d, job):
        n, ew, dw = job["n"], job["ew"], job["dw"]
        return [[_signed(e, ew) & ((1 << dw) - 1) for v in d[0] for e in _split(v, n, ew)]]

    await _stream_test(dut, ["s"], ["m"], model, frame_words=lambda job: job["n"] * job["items_per_frame"])


@cocotb.test()
async def stream_gpool(dut):
    """hg_gpool: N pixels of C signed elements in, their max (MODE 0) or sum (MODE 1) per channel out."""
    dut = _dut(dut)

    def model(d, job):
        n, c, ew, oew = job["n"], job["c"], job["ew"], job["oew"]
        out = []
        for i in range(0, len(d[0]), n):
            px = [_split(v, c, ew) for v in d[0][i : i + n]]
            red = [max(p[ch] for p in px) if job["mode"] == 0 else sum(p[ch] for p in px) for ch in range(c)]
            out.append(_pack(red, oew))
        return [out]

    await _stream_test(dut, ["s"], ["m"], model)


@cocotb.test()
async def stream_window(dut):
    """hg_window: frames of H x W pixels in raster order; out, every window of the zero-padded
    image that ends where ROWE and COLE say, element (ky, kx, ch) at ((ky*KW + kx)*C + ch)*EW."""
    dut = _dut(dut)

    def model(d, job):
        h, w, c, ew, kh, kw = (job[k] for k in ("h", "w", "c", "ew", "kh", "kw"))
        pt, pl, ph, pw = (job[k] for k in ("pt", "pl", "ph", "pw"))
        out = []
        for f in range(0, len(d[0]), h * w):
            img = [[0] * pw for _ in range(ph)]
            for k, v in enumerate(d[0][f : f + h * w]):
                img[pt + k // w][pl + k % w] = v
            for r in range(ph):
                for q in range(pw):
                    if job["rowe"][r] and job["cole"][q]:
                        px = [img[r - kh + 1 + y][q - kw + 1 + x] for y in range(kh) for x in range(kw)]
                        out.append(sum(p << (i * c * ew) for i, p in enumerate(px)))
        return [out]

    await _stream_test(dut, ["s"], ["m"], model)


@cocotb.test()
async def step_table(dut):
    """hg_step: y = V[ch][count(T[ch] <= x)], LEVELS + 1 cycles after x and ch."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    xw, ow, lat = job["xw"], job["ow"], job["levels"] + 1
    want, sent = [], []
    for _ in range(job["items"]):
        x = rng.randrange(-(1 << (xw - 1)), 1 << (xw - 1))
        ch = rng.randrange(len(job["t"]))
        dut.x.value = x & ((1 << xw) - 1)
        dut.ch.value = ch
        sent.append((x, ch))
        want.append(job["v"][ch][sum(1 for t in job["t"][ch] if t <= x)] & ((1 << ow) - 1))
        await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        if len(sent) >= lat:  # the input sampled lat edges ago (this edge counted) is out now
            k = len(sent) - lat
            assert int(dut.y.value) == want[k], f"x={sent[k][0]} ch={sent[k][1]}: {int(dut.y.value)}, want {want[k]}"


@cocotb.test()
async def pool_reduce_all(dut):
    """hg_pool_reduce: per channel, the max (MODE 0) or the exact sum (MODE 1) of K signed elements."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    k, c, ew, oew = job["k"], job["c"], job["ew"], job["oew"]
    for _ in range(job["items"]):
        v = rng.randrange(1 << (k * c * ew))
        els = _split(v, k * c, ew)
        red = [
            max(els[i * c + ch] for i in range(k)) if job["mode"] == 0 else sum(els[i * c + ch] for i in range(k))
            for ch in range(c)
        ]
        dut.win.value = v
        await Timer(1, unit="ns")
        assert int(dut.y.value) == _pack(red, oew), (els, red)


@cocotb.test()
async def stream_proc(dut):
    """hg_proc (wrapped so that result = work + 1): every item once, in order, through the stage."""
    dut = _dut(dut)
    await _stream_test(dut, ["s"], ["m"], lambda d, job: [[(x + 1) & ((1 << job["ow"]) - 1) for x in d[0]]])


def _lane_ref(c: dict, x: int) -> int:
    """What a lane of mode 1 (requantize), 2 (relu) or 3 (linear) gives for signed x."""
    xw, tow, ow = c["xw"], c["tow"], c["ow"]
    if c["mode"] == 1:
        src = FixedType(xw, xw - c["frac"], True)
        dst = FixedType(
            tow, tow - (c["frac"] - c["shift"]), bool(c["osigned"]), ROUNDING_MODES[c["rnd"]], OVERFLOW_MODES[c["ovf"]]
        )
        f = int(dst.requantize(max(x, 0) if c["relu"] else x, src))
    else:
        f = max(x, 0) if c["mode"] == 2 else _signed(x, tow)
    return f & ((1 << ow) - 1)


@cocotb.test()
async def act_lanes(dut):
    """hg_act_lane in modes 1-3, every input code, one cycle of latency (mode 0 is hg_step's test)."""
    dut = _dut(dut)
    job = _job()
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    xw = job["xw"]
    prev = None
    for x in list(range(1 << xw)) + [0]:
        dut.x.value = x
        await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        xs = _signed(x, xw)
        for k, c in enumerate(job["lanes"]):
            want = _lane_ref(c, xs)
            got = int(getattr(dut, f"y{k}").value)
            assert got == want, f"lane {c}: x={xs} gives {got}, want {want}"
        prev = xs
    assert prev is not None


@cocotb.test()
async def seq_blocks(dut):
    """hg_dense_seq and hg_vec_act (table per channel, relu, requantize) on one input vector:
    each ``done`` exactly as many cycles after ``start`` as the cycle model says, outputs exact."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    n, iw = job["n"], job["iw"]
    dut.start.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    outs = {k: v for k, v in job["outs"].items()}
    for _ in range(job["rounds"]):
        x = [rng.randrange(-(1 << (iw - 1)), 1 << (iw - 1)) for _ in range(n)]
        dut.in_flat.value = _pack(x, iw)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        seen = {}
        for cyc in range(1, job["wait"] + 1):
            await RisingEdge(dut.clk)
            await Timer(1, unit="ns")
            for name in outs:
                if int(getattr(dut, f"{name}_done").value):
                    assert name not in seen, f"{name}: done twice"
                    seen[name] = cyc
        for name, o in outs.items():
            # start high in cycle 0; done high in cycle o["cycles"] (seen just after that many - 1 edges)
            done_cycle = seen.get(name, -1) + 1
            assert done_cycle == o["cycles"], f"{name}: done in cycle {done_cycle}, model {o['cycles']}"
            got = _split(int(getattr(dut, f"{name}_out").value), o["n"], o["ow"])
            want = [_signed(v, o["ow"]) for v in _seq_ref(name, o, x, job)]
            assert got == want, f"{name}: {got} != {want}"


def _seq_ref(name, o, x, job):
    if name == "dense":
        return [
            (sum(w * v for w, v in zip(o["w"][j], x, strict=True)) << o["ps"]) + (o["b"][j] << o["bs"])
            for j in range(o["n"])
        ]
    if name == "table":
        return [o["v"][i][sum(1 for t in o["t"][i] if t <= v)] for i, v in enumerate(x)]
    if name == "relu":
        return [max(v, 0) for v in x]
    return [_lane_ref(o["lane"], v) for v in x]


@cocotb.test()
async def stream_given(dut):
    """A block between given input words and expected output words (computed by the test's
    independent reference), with random bubbles and back-pressure."""
    dut = _dut(dut)
    await _stream_test(dut, ["s"], ["m"], lambda d, job: job["expected"], fixed=True)


@cocotb.test()
async def pe_accumulate(dut):
    """hg_lstm_pe: per round, clear, push (K activations, recurrent bits, non-zero bits, block)
    for the blocks with a non-zero activation in order with random gaps (respecting ``space``),
    wait for ``idle``; every local row's accumulator (on acc_flat, or read through the four RAM
    ports) equals the exact sum of a * w << shift over its non-zero weights.  Two banks (DB):
    each clear switches the bank written; halfway through a round's pushes, and after it, the
    other bank still holds the round before's sums (what the element-wise unit reads while the
    next step's pre-scan writes)."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    aw, accw, rows = job["aw"], job["accw"], job["rows"]
    dut.push.value = 0
    dut.clear.value = 0
    dut.layer.value = 0
    dut.wbank.value = 0
    dut.rbank.value = 0
    dut.rst.value = 1
    await ClockCycles(clk, 3)
    dut.rst.value = 0

    async def read_all():  # four rows per cycle through the read ports (asynchronous reads)
        got = []
        for base in range(0, rows, 4):
            addr = [min(base + i, rows - 1) for i in range(4)]
            dut.rd_addr.value = _pack(addr, job["rw"])
            await Timer(1, unit="ns")
            got += _split(int(dut.rd_data.value), 4, accw)[: rows - base]
        return got

    bank, prev = 0, None
    for rnd in job["rounds"]:
        dut.clear.value = 1
        await RisingEdge(clk)
        dut.clear.value = 0
        if job["db"]:
            bank ^= 1
            dut.wbank.value = bank
            dut.rbank.value = bank ^ 1
        for n, (vals, sel, mask, blk) in enumerate(rnd["pushes"]):
            if prev is not None and n == len(rnd["pushes"]) // 2:
                assert await read_all() == prev, "the other bank changed while this one was written"
            while rng.random() < job["p_gap"]:
                await RisingEdge(clk)
            await Timer(1, unit="ns")
            while not int(dut.space.value):
                await RisingEdge(clk)
                await Timer(1, unit="ns")
            dut.push.value, dut.push_a.value = 1, _pack(vals, aw)
            dut.push_sel.value, dut.push_mask.value, dut.push_blk.value = sel, mask, blk
            await RisingEdge(clk)
            dut.push.value = 0
        await ClockCycles(clk, 3)
        await Timer(1, unit="ns")
        for _ in range(10000):
            if int(dut.idle.value):
                break
            await RisingEdge(clk)
            await Timer(1, unit="ns")
        if job["ram"]:
            dut.rbank.value = bank
            got = await read_all()
        else:
            got = _split(int(dut.acc_flat.value), rows, accw)
        want = [_signed(v, accw) for v in rnd["acc"]]
        assert got == want, f"accumulators {got} != {want}"
        if job["db"]:
            if prev is not None:
                dut.rbank.value = bank ^ 1
                assert await read_all() == prev, "the round before's bank"
            prev = want


@cocotb.test()
async def vec_out_frames(dut):
    """hg_vec_out: vectors loaded whenever it is free leave as N sign-extended words each, in
    order, under back-pressure; tlast closes exactly the vectors loaded with last."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    n, ow, obw = job["n"], job["ow"], job["obw"]
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut._dut, dut._prefix + "m_axis"), clk, dut.rst, byte_lanes=1)
    sink.set_pause_generator(_pause(rng, 0.4))
    dut.load.value = 0
    dut.rst.value = 1
    await ClockCycles(clk, 3)
    dut.rst.value = 0
    want_frames, frame = [], []
    for _ in range(job["vectors"]):
        vals = [rng.randrange(-(1 << (ow - 1)), 1 << (ow - 1)) for _ in range(n)]
        last = rng.random() < 0.4
        await Timer(1, unit="ns")
        while int(dut.busy.value):
            await RisingEdge(clk)
            await Timer(1, unit="ns")
        dut.vec.value, dut.last.value, dut.load.value = _pack(vals, ow), int(last), 1
        await RisingEdge(clk)
        dut.load.value = 0
        frame += [v & ((1 << obw) - 1) for v in vals]
        if last:
            want_frames.append(frame)
            frame = []
    for want in want_frames:
        got = _words(await sink.recv(compact=False))
        assert got == want, f"{got} != {want}"


@cocotb.test()
async def seq_in_steps(dut):
    """hg_seq_in: words arriving with bubbles fill two slots of F; each step read back through
    rd_idx equals the next F words, and a slot is available again only after release."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    f, xw = job["f"], job["xw"]
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut._dut, dut._prefix + "s_axis"), clk, dut.rst, byte_lanes=1)
    src.set_pause_generator(_pause(rng, 0.3))
    dut.release_slot.value = 0
    dut.rd_idx.value = 0
    dut.rst.value = 1
    await ClockCycles(clk, 3)
    dut.rst.value = 0
    words = [rng.randrange(1 << xw) for _ in range(f * job["steps"])]
    await src.send(AxiStreamFrame(words))
    for step in range(job["steps"]):
        await Timer(1, unit="ns")
        while not int(dut.avail.value):
            await RisingEdge(clk)
            await Timer(1, unit="ns")
        for _ in range(rng.randrange(0, 4)):  # the step may take a while
            await RisingEdge(clk)
        got = []
        for j in reversed(range(f)):  # any order: the slot is random access; two reads at once
            dut.rd_idx.value = j | (f - 1 - j) << 3
            await Timer(1, unit="ns")
            v = int(dut.rd_data.value)
            got.append(v & ((1 << xw) - 1))
            assert v >> xw == words[step * f + f - 1 - j], f"step {step}: second read of {f - 1 - j}"
        assert got[::-1] == words[step * f : (step + 1) * f], f"step {step}"
        dut.release_slot.value = 1
        await RisingEdge(clk)
        dut.release_slot.value = 0


@cocotb.test()
async def ctrl_schedule(dut):
    """hg_lstm_ctrl with PEs that refuse pushes at random: per step, exactly the non-zero
    columns are pushed, in order, with their values (the hidden state reads as zero on a
    sequence's first step); the slot is released once per step; every element-wise phase lasts
    EW_CYC cycles; after every T steps one vector is handed to the output, marked last."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    aw, npe, f, t_steps = job["aw"], job["npe"], job["f"], job["t"]
    dut.avail.value = 0
    dut.pe_space.value = 0
    dut.pe_idle.value = (1 << npe) - 1
    dut.head_step_done.value = 0
    dut.head_last_done.value = 0
    dut.out_busy.value = 0
    dut.rst.value = 1
    await ClockCycles(clk, 3)
    dut.rst.value = 0
    dut.avail.value = 1
    steps, cur, ew_runs, run, loads = [], [], [], 0, []
    for _ in range(job["cycles"]):
        await FallingEdge(clk)
        dut.pe_space.value = (1 << npe) - 1 if rng.random() < 0.6 else 0
        await ReadOnly()
        if int(dut.push.value):
            blk, nz = int(dut.blk.value), int(dut.col_nz.value)
            vals = _split(int(dut.col_val.value), job["k"], aw)
            assert nz, "a block without a non-zero activation was pushed"
            cur += [(blk * job["k"] + i, vals[i]) for i in range(job["k"]) if nz >> i & 1]
        if int(dut.release_slot.value):
            steps.append(cur)
            cur = []
        if int(dut.ew_run.value):
            run += 1
        elif run:
            ew_runs.append(run)
            run = 0
        if int(dut.out_load.value):
            loads.append((len(steps), int(dut.out_last.value)))
    assert len(steps) >= 2 * t_steps, f"only {len(steps)} steps in {job['cycles']} cycles"
    for k, got in enumerate(steps):
        first = k % t_steps == 0
        vals = job["x"] + ([0] * len(job["h"]) if first else job["h"])
        want = [(j, v) for j, v in enumerate(vals) if v != 0]
        assert got == want, f"step {k}: pushes {got} != {want}"
    assert ew_runs and all(r == job["ew_cyc"] for r in ew_runs), ew_runs
    assert [n for n, _ in loads] == [t_steps * (i + 1) for i in range(len(loads))] and all(
        last for _, last in loads
    ), loads
    assert f == len(job["x"])


@cocotb.test()
async def ew_steps(dut):
    """hg_lstm_ew or hg_gru_ew over whole sequences: per step, the gate accumulators (the reference's
    pre-activations less the bias) go in, the phase runs its ceil(U/E) + H_W cycles, and the exact
    hidden state and the quantized state the scanner reads equal the reference's.  A GRU with
    reset_after=False takes two phases per step (``pass`` 0 then 1); between them the scanner
    reads the exact r * h_q."""
    dut = _dut(dut)
    job = _job()
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    u, accw, hw, sw = job["u"], job["accw"], job["hw"], job["sw"]
    dut.run.value = 0
    dut.k.value = 0
    dut.h_addr.value = 0
    uw = job["uw"]
    pass_ = getattr(dut, "pass") if job["has_pass"] else None
    mask = (1 << sw) - 1

    async def reads(want, what, s):
        for j in range(u):  # two reads at once: j and u - 1 - j
            dut.h_addr.value = j | (u - 1 - j) << uw
            await Timer(1, unit="ns")
            got = [int(dut.h_q.value) & mask, int(dut.h_q.value) >> sw]
            exp = [want[i] & mask for i in (j, u - 1 - j)]
            assert got == exp, f"step {s}: {what}[{j}, {u - 1 - j}] {got} != {exp}"

    for s, step in enumerate(job["steps"]):
        for ph in step["phases"]:
            await FallingEdge(clk)
            dut.z_flat.value = _pack(ph["acc"], accw)
            dut.first.value = int(step["first"])
            if pass_ is not None:
                pass_.value = ph["pass"]
            for k in range(ph["cyc"]):
                dut.run.value, dut.k.value = 1, k
                await FallingEdge(clk)
            dut.run.value = 0
            if step["rh"] is not None and ph["pass"] == 0:
                pass_.value = 1  # the candidate pass's scanner reads r * h_q
                await reads(step["rh"], "r * h_q", s)
        await FallingEdge(clk)  # the output hand-off: the bank just written goes to the streamer
        dut.o_swap.value = 1
        await FallingEdge(clk)
        dut.o_swap.value = 0
        for j in range(u):
            dut.o_idx.value = j
            await Timer(1, unit="ns")
            got = _signed(int(dut.o_word.value), hw)
            assert got == step["h"][j], f"step {s}: the output bank's unit {j}: {got} != {step['h'][j]}"
        for j in range(u):  # the exact state read by address, two at once: j and u - 1 - j
            dut.r_addr.value = j | (u - 1 - j) << uw
            await Timer(1, unit="ns")
            got = _split(int(dut.r_h.value), 2, hw)
            assert got == [step["h"][j], step["h"][u - 1 - j]], f"step {s}: r_h at {j} {got}"
        if pass_ is not None:
            pass_.value = 0
        await reads(step["hq_next"], "state", s)


@cocotb.test()
async def ew_io_all(dut):
    """hg_ew_io: read r returns lane (a mod E)'s word r; the exact hidden state, written a word
    per lane per cycle at random, reads back at NR random addresses (unit u: lane u mod E, row
    u / E) and, with OUT, through the output bank last handed over by o_swap (o_idx -> o_word;
    the writes since then go to the other bank; without OUT o_word is zero); with ZIN, while
    run the counters step k mod NJ and k / NJ from 0 and return to 0 when run falls."""
    dut = _dut(dut)
    job = _job()
    rng = random.Random(job["seed"])
    u, e, k, ng, qw, hw, uw = (job[x] for x in ("u", "e", "k", "ng", "qw", "hw", "uw"))
    nr, grw = job["nr"], job["grw"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    mem = [[None] * ng for _ in range(e)]
    obank = [[[None] * ng for _ in range(e)] for _ in range(2)]  # OUT: the two output banks
    wb = 0  # the model's name for the bank being written (the hardware's bit may start either way)
    swaps = 0
    dut.run.value = 0
    for _ in range(200):
        await FallingEdge(dut.clk)
        we = [rng.random() < 0.5 for _ in range(e)]
        rows = [rng.randrange(ng) for _ in range(e)]
        words = [rng.randrange(1 << hw) for _ in range(e)]
        dut.h_we.value = sum(int(b) << ln for ln, b in enumerate(we))
        dut.h_wrow.value = sum(r << (ln * grw) for ln, r in enumerate(rows))
        dut.h_wd.value = sum(v << (ln * hw) for ln, v in enumerate(words))
        swap = rng.random() < 0.2
        dut.o_swap.value = int(swap)
        await RisingEdge(dut.clk)
        for ln in range(e):
            if we[ln] and ln < u:
                mem[ln][rows[ln]] = words[ln]
                obank[wb][ln][rows[ln]] = words[ln]
        if swap:  # the streamer reads the bank just written; the writes go to the other one
            wb = 1 - wb
            swaps += 1
        dut.o_swap.value = 0
        await Timer(1, unit="ns")
        dut.h_we.value = 0
        q = [[rng.randrange(1 << qw) for _ in range(k)] for _ in range(e)]
        addr = [rng.randrange(u) for _ in range(k)]
        dut.lane_q.value = sum(q[ln][r] << ((ln * k + r) * qw) for ln in range(e) for r in range(k))
        dut.h_addr.value = sum(a << (r * uw) for r, a in enumerate(addr))
        raddr = [rng.randrange(u) for _ in range(nr)]
        dut.r_addr.value = sum(a << (r * uw) for r, a in enumerate(raddr))
        await Timer(1, unit="ns")
        got = int(dut.h_q.value)
        assert [(got >> (r * qw)) & ((1 << qw) - 1) for r in range(k)] == [q[a % e][r] for r, a in enumerate(addr)]
        got = [(int(dut.r_h.value) >> (i * hw)) & ((1 << hw) - 1) for i in range(nr)]
        want = [mem[a % e][a // e] for a in raddr]
        assert all(w_ is None or g_ == w_ for g_, w_ in zip(got, want, strict=True)), (raddr, got, want)
        oi = rng.randrange(u)
        dut.o_idx.value = oi
        await Timer(1, unit="ns")
        want = obank[1 - wb][oi % e][oi // e] if job["out"] else 0
        assert want is None or int(dut.o_word.value) == want, (oi, int(dut.o_word.value), want)
    assert all(v is not None for ln in range(min(e, u)) for v in mem[ln]), "every row written at least once"
    assert swaps > 10 or not job["out"]
    for run_len in (1, 7, 12):
        await FallingEdge(dut.clk)
        dut.run.value = 0
        await FallingEdge(dut.clk)
        for c in range(run_len):
            dut.run.value = 1
            want = (c % job["nj"], c // job["nj"]) if job["zin"] else (0, 0)
            assert (int(dut.ej.value), int(dut.z_row.value)) == want, (run_len, c)
            await FallingEdge(dut.clk)

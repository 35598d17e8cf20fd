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
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from hlsgen.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType


def _job() -> dict:
    return json.load(open(os.environ["HLSGEN_BLOCK"]))


class PortBus(AxiStreamBus):
    """hlsgen's internal stream ports (``<p>_data``, ``<p>_valid``, ``<p>_ready``) as an AXI4-Stream bus."""

    _signals = {"tdata": "data"}
    _optional_signals = {"tvalid": "valid", "tready": "ready"}


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


async def _stream_test(dut, ins: list[str], outs: list[str], model):
    """Drive ``ins`` with random words and bubbles, take ``outs`` with random back-pressure, check
    the protocol on every port and that each output port carries ``model(inputs)`` exactly."""
    job = _job()
    rng = random.Random(job["seed"])
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    errors: list = []
    for p in ins + outs:
        cocotb.start_soon(_monitor(dut, clk, p, errors))
    srcs = [AxiStreamSource(PortBus.from_prefix(dut, p), clk, dut.rst, byte_lanes=1) for p in ins]
    sinks = [AxiStreamSink(PortBus.from_prefix(dut, p), clk, dut.rst, byte_lanes=1) for p in outs]
    dut.rst.value = 1
    await ClockCycles(clk, 3)
    dut.rst.value = 0
    for p_bubble, p_stall in job["runs"]:  # e.g. full rate, then random bubbles and stalls
        for s in srcs:
            s.set_pause_generator(_pause(rng, p_bubble))
        for s in sinks:
            s.set_pause_generator(_pause(rng, p_stall))
        n, width = job["items"], job["in_widths"]
        data = [[rng.randrange(1 << w) for _ in range(n)] for w in width]
        for s, d in zip(srcs, data, strict=True):
            await s.send(AxiStreamFrame(d))
        want = model(data, job)
        got = [[] for _ in outs]
        for k, s in enumerate(sinks):
            while len(got[k]) < len(want[k]):
                got[k] += _words(await s.recv(compact=False))
        await ClockCycles(clk, 20)  # nothing more may come out
        for k, s in enumerate(sinks):
            assert s.empty(), f"{outs[k]}: more items than were sent"
            bad = [i for i, (a, b) in enumerate(zip(got[k], want[k], strict=True)) if a != b]
            assert not bad, f"{outs[k]} (bubbles {p_bubble}, stalls {p_stall}): item {bad[0]} differs"
    assert not errors, errors[:3]


@cocotb.test()
async def stream_pass(dut):
    """hg_fifo / hg_skid: the items come out unchanged and in order."""
    await _stream_test(dut, ["s"], ["m"], lambda d, job: [d[0]])


@cocotb.test()
async def stream_dup(dut):
    """hg_dup: each branch gets every item, whatever the other branch's back-pressure."""
    await _stream_test(dut, ["s"], ["m0", "m1"], lambda d, job: [d[0], d[0]])


@cocotb.test()
async def stream_add(dut):
    """hg_add: lane by lane (a << SA) + (b << SB), signed, as the reference adds a residual."""

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

"""cocotb side of bench/tb_drivers.py: the same stream through a FIFO, driven by hlsgen's own
AXI4-Stream source/sink (hlsgen/sim/axis.py) or by cocotbext-axi's."""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from hlsgen.sim.axis import sink, source


def _pause(rng, p):
    while True:
        yield int(rng.random() < p)


@cocotb.test()
async def drivers(dut):
    job = json.load(open(os.environ["HLSGEN_BENCH"]))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    rng = random.Random(1)
    words = [rng.randrange(1 << 16) for _ in range(job["n"])]
    res = {}
    for p in (0.0, 0.3):
        t0 = time.perf_counter()
        log = {"group": len(words)}
        cocotb.start_soon(source(dut, dut.clk, words, p, random.Random(2), 10, log))
        got = await sink(dut, dut.clk, len(words), p, random.Random(3), 10, log)
        assert [d for d, _ in got] == words
        res[f"hlsgen axis.py p={p}"] = time.perf_counter() - t0
        await ClockCycles(dut.clk, 5)
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    snk = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for p in (0.0, 0.3):
        src.set_pause_generator(_pause(random.Random(2), p))
        snk.set_pause_generator(_pause(random.Random(3), p))
        t0 = time.perf_counter()
        await src.send(
            AxiStreamFrame(
                [w.to_bytes(2, "little") for w in words][0] * 0 + b"".join(w.to_bytes(2, "little") for w in words)
            )
        )
        f = await snk.recv()
        assert len(f.tdata) == 2 * len(words)
        res[f"cocotbext-axi p={p}"] = time.perf_counter() - t0
    json.dump(res, open(os.environ["HLSGEN_BENCH_OUT"], "w"))

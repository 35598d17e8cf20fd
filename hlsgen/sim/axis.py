"""AXI4-Stream source and sink for cocotb with random bubbles and back-pressure.

Both sample and drive at the falling clock edge: the DUT's tready/tvalid/tdata are
registered, so what is seen there holds at the next rising edge, where the transfer
happens.  Long waits are spent on value-change triggers, not per cycle.
"""

from __future__ import annotations

import json
import os
import random

from cocotb.triggers import FallingEdge, RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time


async def source(dut, clk, words, p_bubble: float, rng: random.Random, period_ns: int, log: dict):
    """Send ``words`` (ints) on s_axis_*; tlast on the last word of each group in log['group']."""
    group = log.get("group", len(words))
    i, holding = 0, False
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0
    while i < len(words):
        await FallingEdge(clk)
        if not holding and p_bubble and rng.random() < p_bubble:
            dut.s_axis_tvalid.value = 0
            continue
        dut.s_axis_tdata.value = words[i]
        dut.s_axis_tlast.value = int((i + 1) % group == 0)
        dut.s_axis_tvalid.value = 1
        holding = True
        if int(dut.s_axis_tready.value):
            if i == 0:
                log["first_in"] = get_sim_time("ns") + period_ns // 2
            i += 1
            holding = False
        else:
            await RisingEdge(dut.s_axis_tready)
    await FallingEdge(clk)
    dut.s_axis_tvalid.value = 0


async def sink(dut, clk, n_words, p_stall: float, rng: random.Random, period_ns: int, log: dict):
    """Collect ``n_words`` (data, last) from m_axis_*, stalling tready at random."""
    out = []
    dut.m_axis_tready.value = 0
    while len(out) < n_words:
        await FallingEdge(clk)
        if not int(dut.m_axis_tvalid.value):
            dut.m_axis_tready.value = int(not p_stall or rng.random() >= p_stall)
            await RisingEdge(dut.m_axis_tvalid)
            continue
        r = not p_stall or rng.random() >= p_stall
        dut.m_axis_tready.value = int(r)
        if r:
            out.append((int(dut.m_axis_tdata.value), int(dut.m_axis_tlast.value)))
            log["last_out"] = get_sim_time("ns") + period_ns // 2
            if out[-1][1] and "tlast_times" in log:
                log["tlast_times"].append(log["last_out"])
    await FallingEdge(clk)
    dut.m_axis_tready.value = 0
    return out


async def state_log(sig, period_ns: int, events: list):
    """Record (cycle, value) at every change of an internal state register."""
    while True:
        await sig.value_change
        events.append((get_sim_time("ns") // period_ns, int(sig.value)))


async def bounded(job: dict, period_ns: int, coro):
    """Wait for ``coro`` (the outputs), at most job["timeout_cycles"] clock cycles: a design that
    hangs (a memory file missing, say) ends the run with a result that says so."""
    limit = job.get("timeout_cycles")
    if not limit:
        return await coro
    try:
        return await with_timeout(coro, limit * period_ns, "ns")
    except SimTimeoutError:
        json.dump({"timeout": limit}, open(os.environ["HLSGEN_TB_OUT"], "w"))
        raise

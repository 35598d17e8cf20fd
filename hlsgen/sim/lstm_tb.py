"""cocotb test of a generated sparse LSTM engine against the hlsgen reference.

The job (inputs, expected outputs, stall probabilities, seed) comes as JSON in
$HLSGEN_TB; the results (mismatches, cycles per step and phase) go to $HLSGEN_TB_OUT.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from .axis import bounded, sink, source, state_log

PERIOD = 10


S_IDLE, S_MAC, S_EW, S_HEAD, S_OUT, S_RES = range(6)  # S_RES: a MAC phase resumed after a pre-scan


def phases(events):
    """Durations of consecutive states: [(state, cycles)]."""
    return [(s, events[k + 1][0] - c) for k, (c, s) in enumerate(events[:-1])]


@cocotb.test()
async def lstm_engine(dut):
    with open(os.environ["HLSGEN_TB"]) as f:
        job = json.load(f)
    rng = random.Random(job["seed"])
    words = job["inputs"]  # flat list, sequence-major
    n_out = job["n_out"] * job["sequences"]
    obw = job["obw"]
    cocotb.start_soon(Clock(dut.clk, PERIOD, unit="ns").start())
    dut.rst.value = 1
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    events: list = []
    cocotb.start_soon(state_log(dut.u_ctrl.state, PERIOD, events))
    group, per = job["words_per_sequence"], job["n_out"]
    out = []
    latency = None
    if job["sequences"] and job.get("probe", True):
        # the first sequence alone, without stalls: its latency is checked against the model
        log = {"group": group}
        cocotb.start_soon(source(dut, dut.clk, words[:group], 0.0, rng, PERIOD, log))
        out += await bounded(job, PERIOD, sink(dut, dut.clk, per, 0.0, rng, PERIOD, log))
        latency = int((log["last_out"] - log["first_in"]) // PERIOD + 1)
        words, n_rest = words[group:], n_out - per
    else:
        n_rest = n_out
    log = {"group": group}
    cocotb.start_soon(source(dut, dut.clk, words, job["p_bubble"], rng, PERIOD, log))
    out += await bounded(
        job, PERIOD, sink(dut, dut.clk, n_rest, job["p_stall"], random.Random(job["seed"] + 1), PERIOD, log)
    )
    got = [d - (1 << obw) if d >> (obw - 1) else d for d, _ in out]
    lasts = [last for _, last in out]
    exp = job["expected"]
    mism = [k for k in range(n_out) if got[k] != exp[k]]
    bad_last = [k for k in range(n_out) if lasts[k] != int((k + 1) % job["n_out"] == 0)]
    ph = phases(events)
    macs, resumed = [], []
    for k, (s, c) in enumerate(ph):
        if s in (S_MAC, S_RES):
            if s == S_RES:
                # the pre-scan began with the element-wise phase before (and ran through a hand-off)
                before = [c2 for s2, c2 in ph[max(0, k - 2) : k] if s2 in (S_EW, S_OUT)]
                resumed.append([len(macs), int(sum(before)) - 1])
            macs.append(c)
    res = {
        "words": n_out,
        "mismatches": len(mism),
        "first_mismatches": [(k, got[k], exp[k]) for k in mism[:5]],
        "bad_tlast": len(bad_last),
        "mac": macs,
        "resumed": resumed,  # [index into mac, cycles the pre-scan ran gated]
        "ew": [c for s, c in ph if s == S_EW],
        "head": [c for s, c in ph if s == S_HEAD],
        "latency": latency,
    }
    json.dump(res, open(os.environ["HLSGEN_TB_OUT"], "w"))
    assert not mism, f"{len(mism)} of {n_out} output words differ, first {res['first_mismatches']}"
    assert not bad_last, f"tlast wrong on {len(bad_last)} words"

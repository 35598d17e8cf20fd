"""cocotb test of a generated streaming CNN engine against the hlsgen reference.

The job (frames of input words, expected output words, stall probabilities, seed, how many
frames to time) comes as JSON in $HLSGEN_TB; results go to $HLSGEN_TB_OUT.  The first
``probe`` frames run with the input always valid and the output always ready: the cycle of
each frame's last output word, counted from the first input word, is recorded (the cycle
model must predict it exactly).  The other frames run with random bubbles and back-pressure.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from .axis import bounded, sink, source

PERIOD = 10


@cocotb.test()
async def cnn_engine(dut):
    with open(os.environ["HLSGEN_TB"]) as f:
        job = json.load(f)
    rng = random.Random(job["seed"])
    ibw = job["ibw"]
    words = [w & ((1 << ibw) - 1) for w in job["inputs"]]
    group, per, frames = job["words_per_sequence"], job["n_out"], job["sequences"]
    obw = job["obw"]
    cocotb.start_soon(Clock(dut.clk, PERIOD, unit="ns").start())
    dut.rst.value = 1
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    probe = min(job.get("probe", 1), frames)
    out = []
    times = []
    if probe:
        log = {"group": group, "tlast_times": []}
        cocotb.start_soon(source(dut, dut.clk, words[: probe * group], 0.0, rng, PERIOD, log))
        out += await bounded(job, PERIOD, sink(dut, dut.clk, probe * per, 0.0, rng, PERIOD, log))
        times = [int((t - log["first_in"]) // PERIOD) for t in log["tlast_times"]]
    rest = frames - probe
    if rest:
        log = {"group": group}
        cocotb.start_soon(source(dut, dut.clk, words[probe * group :], job["p_bubble"], rng, PERIOD, log))
        out += await bounded(
            job, PERIOD, sink(dut, dut.clk, rest * per, job["p_stall"], random.Random(job["seed"] + 1), PERIOD, log)
        )
    n_out = frames * per
    got = [d - (1 << obw) if d >> (obw - 1) else d for d, _ in out]
    lasts = [last for _, last in out]
    exp = job["expected"]
    mism = [k for k in range(n_out) if got[k] != exp[k]]
    bad_last = [k for k in range(n_out) if lasts[k] != int((k + 1) % per == 0)]
    res = {
        "words": n_out,
        "mismatches": len(mism),
        "first_mismatches": [(k, got[k], exp[k]) for k in mism[:5]],
        "bad_tlast": len(bad_last),
        "last_out": times,
    }
    json.dump(res, open(os.environ["HLSGEN_TB_OUT"], "w"))
    assert not mism, f"{len(mism)} of {n_out} output words differ, first {res['first_mismatches']}"
    assert not bad_last, f"tlast wrong on {len(bad_last)} words"

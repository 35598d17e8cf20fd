"""Exact cycle model of the sparse LSTM engine.

The model replays the control of the RTL (``hw/hg_lstm_pe.v``, ``templates/verilog/lstm_top.v.j2``)
register by register, without the arithmetic: which activations are non-zero decides the
schedule, and the schedule decides the cycles.  The RTL simulation checks these numbers.

Per time step (input available, no back-pressure):

    cycles = 1 (start: clear accumulators) + MAC phase + ceil(U / E) + element-wise latency

(E element-wise lanes).

The MAC phase is bounded below by max over PEs of the entries it must process (nnz / P when
the load is balanced), and by the scanner's one column per cycle.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .plan import LstmPlan


def mac_cycles(plan: LstmPlan, nonzero: np.ndarray) -> tuple[int, int]:
    """Cycles of the MAC phase for one step, and the entries processed (fillers included).

    ``nonzero``: bool [NCOL], which activations (x_t then h_q) are non-zero.
    """
    P, ncol = plan.pe, plan.ncol
    counts = [p[:, 1].tolist() for p in plan.pointers]
    nz = [bool(v) for v in np.asarray(nonzero).tolist()]
    afd, jqd = plan.afifo_depth, plan.jq_depth
    afifo = [deque() for _ in range(P)]
    pv = [False] * P
    pcount = [0] * P
    jq = [deque() for _ in range(P)]
    active = [False] * P
    rem = [0] * P
    v1 = [False] * P
    v2 = [False] * P
    j = 0
    cycle = 0
    work = 0
    while True:
        cycle += 1
        idle = all(
            not afifo[p] and not pv[p] and not jq[p] and not active[p] and not v1[p] and not v2[p] for p in range(P)
        )
        if j == ncol and idle:
            return cycle, work
        # scanner
        push = False
        if j < ncol:
            if not nz[j]:
                j += 1
            elif all(len(afifo[p]) < afd for p in range(P)):
                push = True
        col = j
        if push:
            j += 1
        for p in range(P):
            pop_a = bool(afifo[p]) and (len(jq[p]) + pv[p] < jqd)
            jpush = pv[p] and pcount[p] != 0
            use_head = not active[p] and bool(jq[p])
            issue = active[p] or use_head
            if issue:
                r = (rem[p] if active[p] else jq[p][0]) - 1
                work += 1
            if use_head:
                jq[p].popleft()
            if jpush:
                jq[p].append(pcount[p])
            if issue:
                active[p], rem[p] = r != 0, r
            popped = afifo[p].popleft() if pop_a else None
            if push:
                afifo[p].append(col)
            pv[p] = pop_a
            if pop_a:
                pcount[p] = counts[p][popped]
            v2[p] = v1[p]
            v1[p] = issue


def step_cycles(plan: LstmPlan, mac: int) -> int:
    """Cycles of one time step given its MAC phase (plus the output hand-off cycle when every
    step's hidden state is streamed, and the output is not back-pressured)."""
    return 1 + mac + plan.ew_groups + plan.ew_latency + int(plan.return_sequences)


def head_cycles(plan: LstmPlan) -> int:
    """Cycles of the layers after the LSTM (each stage: one start cycle + its run)."""
    return sum(1 + s.cycles for s in plan.head)


def sequence_cycles(plan: LstmPlan, x_raw: np.ndarray, steps_of) -> dict:
    """Cycle counts for a batch of raw input sequences [N, T, F].

    ``steps_of(x_raw)`` yields per step the activations ``(x_t, hq)`` as
    :func:`hlsgen.reference.execute.lstm_steps` does.  Returns per-sequence arrays:
    ``mac`` [N, T], ``step`` [N, T], ``work`` [N, T] (entries processed, fillers included),
    ``useful`` [N] (MACs of a non-zero weight and a non-zero activation),
    ``compute`` [N] (all steps plus the head, input always available).
    """
    n, t = x_raw.shape[0], plan.steps
    mac = np.zeros((n, t), dtype=np.int64)
    work = np.zeros((n, t), dtype=np.int64)
    useful = np.zeros(n, dtype=np.int64)
    nz_per_col = (plan.matrix != 0).sum(axis=1)
    for k, (xt, hq) in enumerate(steps_of(x_raw)):
        nzs = np.concatenate([xt != 0, hq != 0], axis=1)
        useful += nzs.astype(np.int64) @ nz_per_col
        # identical activation patterns share the schedule
        cache: dict[bytes, tuple[int, int]] = {}
        for i in range(n):
            key = np.packbits(nzs[i]).tobytes()
            if key not in cache:
                cache[key] = mac_cycles(plan, nzs[i])
            mac[i, k], work[i, k] = cache[key]
    step = step_cycles(plan, mac)
    return {"mac": mac, "work": work, "useful": useful, "step": step, "compute": step.sum(axis=1) + head_cycles(plan)}


def sequence_latency(plan: LstmPlan, mac: list[int]) -> int:
    """Cycles from the first input word accepted to the last output word sent, for one
    sequence alone, input at full rate and no back-pressure (as the testbench measures it).

    Input x_t needs its buffer slot, freed when step t-2's MAC phase ends; step t starts
    when x_t is loaded and the engine is idle.  With ``return_sequences`` every step ends
    with an output hand-off cycle, which waits until the previous step's U words are sent.
    Edges are counted from the first word's.
    """
    f, u, lew = plan.features, plan.units, plan.ew_latency
    ready = 0  # edge at which the last word of x_{t-1} was written
    released = []  # edge at which step t's MAC phase ended (its slot freed)
    free_at = 0  # edge after which the engine is idle again
    out_done = None  # edge at which the streamer finished the previous step's words
    for t, m in enumerate(mac):
        free = released[t - 2] if t >= 2 else 0
        ready = max(ready, free) + f
        start = max(ready, free_at) + 1
        released.append(start + m)
        end = start + m + plan.ew_groups + lew
        if plan.return_sequences:
            handoff = max(end, out_done if out_done is not None else 0) + 1
            out_done = handoff + u
            free_at = handoff
        else:
            free_at = end
    if plan.return_sequences:
        return out_done + 1 + 1
    return free_at + head_cycles(plan) + 2 + plan.out_count + 1

"""Exact cycle model of the sparse LSTM engine.

The model replays the control of the RTL (``hw/hg_lstm_pe.v``, ``templates/verilog/lstm_top.v.j2``)
register by register, without the arithmetic: which activations are non-zero decides the
schedule, and the schedule decides the cycles.  The RTL simulation checks these numbers.

Per time step (input available, no back-pressure):

    cycles = 1 (start: clear accumulators) + MAC phase + ceil(U / E) + element-wise latency

(E element-wise lanes), summed over the layers when recurrent layers are stacked.

Overlap (``plan.overlap``, accumulators in RAM with two banks): while the last layer's
element-wise phase of step t runs, the first layer of step t+1 already scans its input-only
blocks (columns of x_{t+1}, which does not depend on h_t) into the other bank, if x_{t+1} is in
the input buffer when that phase begins (its first cycle is the pre-scan's start).  Its
remaining blocks wait for the gate to open (the element-wise phase and any output hand-off
over); the MAC phase then resumes without a start cycle, and its visible part is the whole
schedule minus the gated cycles (:func:`mac_cycles` with ``gate``).

The MAC phase is bounded below by max over PEs of the entries it must process (nnz / P when
the load is balanced), by the scanner's one block of K columns per cycle, and per PE by one
cycle per column handed on (a non-zero activation with entries in the PE) plus one per block
with none.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .plan import LstmPlan


def block_tables(plan: LstmPlan) -> tuple[list, list]:
    """Per PE, what the schedule reads of its pointers: the entry count of every column (padded
    to whole blocks), and per block the bit mask of its columns with entries in the PE."""
    k, nb = plan.scan_width, plan.blocks
    weights = 1 << np.arange(k, dtype=np.int64)
    counts = np.zeros((plan.pe, nb * k), dtype=np.int64)
    counts[:, : plan.ncol] = np.stack([p[:, 1] for p in plan.pointers])
    cnz = (counts.reshape(plan.pe, nb, k) != 0) @ weights
    return counts.tolist(), cnz.tolist()


def mac_cycles(
    plan: LstmPlan, nonzero: np.ndarray, tables: tuple | None = None, gate: int | None = None
) -> tuple[int, int]:
    """Cycles of the MAC phase for one step, and the entries processed (fillers included).

    ``nonzero``: bool [NCOL], which activations (x_t then h_q) are non-zero; ``tables``: the
    plan's :func:`block_tables`, when the caller already has them.  ``gate``: a pre-scan (the
    overlap): for the first ``gate`` cycles only the blocks of input columns alone may be
    scanned; the cycles returned then count from the pre-scan's first.
    """
    P, k, nb = plan.pe, plan.scan_width, plan.blocks
    bx = plan.input_blocks if gate else nb  # blocks the pre-scan may take
    nz = np.zeros(nb * k, dtype=bool)
    nz[: plan.ncol] = np.asarray(nonzero, dtype=bool)
    bmask = (nz.reshape(nb, k) @ (1 << np.arange(k, dtype=np.int64))).tolist()  # per block: non-zero activations
    counts, cnz = tables if tables is not None else block_tables(plan)
    afd, jqd = plan.afifo_depth, plan.jq_depth
    afifo = [deque() for _ in range(P)]
    pv = [False] * P
    pblk = [0] * P
    pm = [0] * P
    jq = [deque() for _ in range(P)]
    active = [False] * P
    rem = [0] * P
    v1 = [False] * P
    v2 = [False] * P
    b = 0
    cycle = 0
    work = 0
    while True:
        cycle += 1
        idle = all(
            not afifo[p] and not pv[p] and not jq[p] and not active[p] and not v1[p] and not v2[p] for p in range(P)
        )
        if b == nb and idle:
            return cycle, work
        # scanner: a block without a non-zero activation is skipped, any other broadcast
        push = False
        if b < nb and (b < bx or cycle > gate):
            if not bmask[b]:
                b += 1
            elif all(len(afifo[p]) < afd for p in range(P)):
                push = True
        blk = b
        if push:
            b += 1
        for p in range(P):
            # expander: one column (non-zero activation, entries here) per cycle to the job queue
            eff = pm[p] & cnz[p][pblk[p]] if pv[p] else 0
            jpush = eff != 0 and len(jq[p]) < jqd
            rest = eff & (eff - 1)
            free = not pv[p] or eff == 0 or (jpush and rest == 0)
            pop_a = bool(afifo[p]) and free
            # sequencer: one entry per cycle
            use_head = not active[p] and bool(jq[p])
            issue = active[p] or use_head
            if issue:
                r = (rem[p] if active[p] else jq[p][0]) - 1
                work += 1
            if use_head:
                jq[p].popleft()
            if jpush:
                low = (eff & -eff).bit_length() - 1
                jq[p].append(counts[p][pblk[p] * k + low])
            if issue:
                active[p], rem[p] = r != 0, r
            if pop_a:
                pblk[p], pm[p] = afifo[p].popleft()
                pv[p] = True
            elif free:
                pv[p] = False
            elif jpush:
                pm[p] = rest
            if push:
                afifo[p].append((blk, bmask[blk]))
            v2[p] = v1[p]
            v1[p] = issue


def ew_cycles(layer: LstmPlan) -> int:
    """Cycles of a layer's element-wise phase: ceil(U / E) + its latency."""
    return layer.ew_groups + layer.ew_latency


def step_cycles(plan: LstmPlan, mac_layers, resumed=None) -> np.ndarray:
    """Cycles of time steps given their MAC phases (``mac_layers[..., l]``: layer l's): per layer
    1 + MAC phase + element-wise phase, plus the output hand-off cycle when every step's hidden
    state is streamed (and the output is not back-pressured).  ``resumed`` (bool, the shape of
    ``mac_layers[..., 0]``): steps whose first MAC phase resumed a pre-scan (its visible part
    given), which have no start cycle."""
    ew = np.array([1 + ew_cycles(p) for p in plan.layers])
    step = (np.asarray(mac_layers) + ew).sum(axis=-1) + int(plan.return_sequences)
    return step if resumed is None else step - np.asarray(resumed, dtype=np.int64)


def head_cycles(plan: LstmPlan) -> int:
    """Cycles of the layers after the recurrent ones (each stage: one start cycle + its run)."""
    return sum(1 + s.cycles for s in plan.head)


def sequence_cycles(plan: LstmPlan, x_raw: np.ndarray, steps_of) -> dict:
    """Cycle counts for a batch of raw input sequences [N, T, F], input always available.

    ``steps_of(x_raw)`` yields per step, per layer, the activations ``(x_t, hq)``: the layer's
    input and quantized previous state (:func:`hlsgen.engines.lstm.flow.steps_of`).  Returns
    per-sequence arrays: ``mac`` [N, T] (the step's MAC phases, all layers), ``mac_layers``
    [N, T, L] (with ``plan.overlap``, layer 0's at steps t >= 1 is the part after the pre-scan's
    gate, ``plan.prescan_gate``), ``mac_plain`` [N, T, L] (the same without pre-scans),
    ``tables`` (every layer's :func:`block_tables`), ``resumed`` [N, T] (bool: the step
    resumed a pre-scan), ``nonzero0`` [N, T, NCOL] (layer 0's non-zero activations, for
    :func:`mac_cycles` under other gates), ``step`` [N, T], ``work``
    [N, T] (entries processed, fillers included), ``useful`` [N] (MACs of a non-zero weight and a
    non-zero activation), ``compute`` [N] (all steps plus the head).
    """
    layers = plan.layers
    n, t, nl = x_raw.shape[0], plan.steps, len(layers)
    mac = np.zeros((n, t, nl), dtype=np.int64)
    plain = np.zeros((n, t, nl), dtype=np.int64)
    work = np.zeros((n, t), dtype=np.int64)
    useful = np.zeros(n, dtype=np.int64)
    nonzero0 = np.zeros((n, t, layers[0].ncol), dtype=bool)
    resumed = np.zeros((n, t), dtype=bool)
    if plan.overlap:
        resumed[:, 1:] = True
    gate = plan.prescan_gate
    nz_per_col = [(p.matrix != 0).sum(axis=1) for p in layers]
    tables = [block_tables(p) for p in layers]
    for k, per_layer in enumerate(steps_of(x_raw)):
        for li, (xt, hq) in enumerate(per_layer):
            nzs = np.concatenate([xt != 0, hq != 0], axis=1)
            useful += nzs.astype(np.int64) @ nz_per_col[li]
            if li == 0:
                nonzero0[:, k] = nzs
            # identical activation patterns share the schedule
            cache: dict[bytes, tuple[int, int, int]] = {}  # (MAC phase, entries, without a pre-scan)
            g = gate if li == 0 and k > 0 and plan.overlap else None
            for i in range(n):
                key = np.packbits(nzs[i]).tobytes()
                if key not in cache:
                    c, w = mac_cycles(layers[li], nzs[i], tables[li])
                    cache[key] = (
                        (c, w, c) if g is None else (mac_cycles(layers[li], nzs[i], tables[li], g)[0] - g, w, c)
                    )
                mac[i, k, li], w, plain[i, k, li] = cache[key]
                work[i, k] += w
    step = step_cycles(plan, mac, resumed)
    return {
        "mac": mac.sum(axis=2),
        "mac_layers": mac,
        "mac_plain": plain,
        "tables": tables,
        "resumed": resumed,
        "nonzero0": nonzero0,
        "work": work,
        "useful": useful,
        "step": step,
        "compute": step.sum(axis=1) + head_cycles(plan),
    }


def sequence_latency(plan: LstmPlan, mac: list, gated=None) -> int:
    """Cycles from the first input word accepted to the last output word sent, for one
    sequence alone, input at full rate and no back-pressure (as the testbench measures it).

    ``mac``: per step, the MAC phase of every layer without a pre-scan (a number for one
    layer).  ``gated(t, g)``: with ``plan.overlap``, the cycles of step t's first MAC phase
    after a pre-scan gated for g cycles (the whole schedule, gate included).  Input x_t needs
    its buffer slot, freed when step t-2's first MAC phase ends (the second's when a GRU's
    candidate pass reads the input too); step t starts when x_t is loaded and the engine is
    idle, or resumes a pre-scan that began with the last layer's element-wise phase of step t-1
    when x_t was loaded by then; each further layer costs 1 + its MAC phase + its element-wise
    phase.  With ``return_sequences`` every step ends with an output hand-off cycle, which waits
    until the previous step's U words are sent.  Edges are counted from the first word's.
    """
    f, u = plan.features, plan.layers[-1].units
    ew = [ew_cycles(p) for p in plan.layers]
    xr = plan.input_layers - 1  # the last layer that reads x_t: its MAC phase releases the slot
    ready = 0  # edge at which the last word of x_{t-1} was written
    released = []  # edge at which step t's first MAC phase ended (its slot freed)
    free_at = 0  # edge after which the engine is idle again
    out_done = None  # edge at which the streamer finished the previous step's words
    resume = None  # (the first cycle after the gate, the gate) when step t resumes a pre-scan
    for t, ms in enumerate(mac):
        ms = list(ms) if isinstance(ms, (list, tuple)) else [ms]
        free = released[t - 2] if t >= 2 else 0
        ready = max(ready, free) + f
        if resume is not None:
            start, g = resume[0] - 1, resume[1]
            ms[0] = gated(t, g) - g
        else:
            start = max(ready, free_at) + 1
        released.append(start + sum(m + e + 1 for m, e in zip(ms[:xr], ew[:xr], strict=True)) + ms[xr])
        end = start + ms[0] + ew[0] + sum(1 + m + e for m, e in zip(ms[1:], ew[1:], strict=True))
        if plan.return_sequences:
            handoff = max(end, out_done if out_done is not None else 0) + 1
            out_done = handoff + u
            free_at = handoff
        else:
            free_at = end
        resume = None
        if plan.overlap and t + 1 < len(mac):
            e0 = end - ew[-1] + 1  # the last element-wise phase's first cycle
            if max(ready, released[t - 1] if t >= 1 else 0) + f < e0:  # x_{t+1} loaded by then
                resume = (free_at + 1, free_at - e0)
    if plan.return_sequences:
        return out_done + 1 + 1
    return free_at + head_cycles(plan) + 2 + plan.out_count + 1

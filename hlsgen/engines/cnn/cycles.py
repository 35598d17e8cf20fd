"""Exact cycle model of the streaming CNN engine: the control of every hw/ stage, replayed
register by register (data is not modelled, only when items move).

Each class mirrors one Verilog block: ``s_ready``/``m_valid`` are its combinational outputs
from the current registers, ``tick`` computes the registers after the next clock edge.  The
RTL simulation checks the cycle of every frame's last output word against this model.

The run is event by event, not clock by clock: with its inputs held, each block says for how
many clock edges its outputs stay as they are (``span``: a block that is waiting stays so for
ever; a matrix-vector unit walking its tiles, a counter or a FIFO filling at one item per
clock until a known edge) and moves over the quiet edges in one step (``skip``).  All
blocks then jump to the first edge at which any output may change.  Between events nothing
any block sees changes, so the result is the clocked run's, edge for edge
(``simulate(..., clocked=True)`` runs it clock by clock; a test holds the two equal).
"""

from __future__ import annotations

from .plan import CnnPlan, Stage


class Deadlock(RuntimeError):
    """The modelled engine stops moving (a FIFO too small on a branch that must wait)."""


NEVER = 1 << 62  # a span: the block's outputs never change while its inputs are held


class _Block:
    """``span(t, s_valid, m_ready)``: h >= 1 such that the next h - 1 edges with these inputs
    (``s_valid``: an item is taken; ``m_ready``: the consumer is ready) leave the outputs
    unchanged and only move counters, which ``skip(j)`` applies at once."""

    def span(self, t, s_valid, m_ready) -> int:
        return 1

    def skip(self, j: int, s_valid, m_ready):
        pass


class _Gather(_Block):  # hw/hg_gather.v, hw/hg_gpool.v
    def __init__(self, n):
        self.n, self.k, self.cfull, self.mv = n, 0, False, False

    def s_ready(self, m_ready):
        return not self.cfull

    def span(self, t, s_valid, m_ready):
        if self.cfull:
            return 1 if (not self.mv) or m_ready else NEVER
        if self.mv and m_ready:
            return 1
        return self.n - self.k if s_valid else NEVER  # collecting: k counts up to the last

    def skip(self, j, s_valid, m_ready):
        if s_valid and not self.cfull:
            self.k += j

    def tick(self, t, s_valid, m_ready):
        free = (not self.mv) or m_ready
        if self.cfull:
            if free:
                self.mv, self.cfull = True, False
            return
        take = s_valid
        lastk = self.k == self.n - 1
        if take:
            self.k = 0 if lastk else self.k + 1
        if take and lastk and free:
            self.mv = True
        else:
            if take and lastk:
                self.cfull = True
            if m_ready:
                self.mv = False


class _Window(_Block):  # hw/hg_window.v
    def __init__(self, p):
        self.p = p
        self.r, self.c = p.r0, p.c0  # the leading padding rows / columns are not walked
        self.r1, self.c1 = p.r0 + p.mr, p.c0 + p.mc  # where later frames / rows start
        self.tc = p.pw - p.mc  # from this column the load side is the next walked row's
        self.mv = False
        self.decided = self.ahead = False  # this frame's loads ahead: decided, and on
        f = {k: [bool(v) for v in vs] for k, vs in p.walk_flags().items()}  # where the load side is
        self.lrowi, self.lnrowi, self.lcoli, self.lf, self.lnf, self.rowe, self.cole = (
            f[k] for k in ("lrowi", "lnrowi", "lcoli", "lf", "lnf", "rowe", "cole")
        )

    def _flags(self, m_ready):
        trail = self.c >= self.tc
        fut = (self.lnf if trail else self.lf)[self.r]
        lin = (self.lnrowi if trail else self.lrowi)[self.r] and self.lcoli[self.c]
        und = fut and lin and not self.decided  # the first pixel loaded ahead: decided by its arrival
        off = fut and self.decided and not self.ahead
        inside = lin and not off
        emit = self.rowe[self.r] and self.cole[self.c]
        room = (not emit) or (not self.mv) or m_ready
        return inside, emit, room, und

    def s_ready(self, m_ready):
        inside, _, room, _ = self._flags(m_ready)
        return inside and room

    def span(self, t, s_valid, m_ready):
        inside, _, room, und = self._flags(m_ready)
        go = room and ((not inside) or s_valid or und)
        return NEVER if not go and not (self.mv and m_ready) else 1

    def tick(self, t, s_valid, m_ready):
        inside, emit, room, und = self._flags(m_ready)
        go = room and ((not inside) or s_valid or und)
        if go:
            ahead_now = self.ahead if self.decided else bool(und and s_valid)
            if und:
                self.decided, self.ahead = True, bool(s_valid)
            if self.c == self.p.pw - 1:
                if self.r == self.p.ph - 1:  # the next frame: loaded ahead, or from the start
                    self.r, self.c = (self.r1, self.c1) if ahead_now else (self.p.r0, self.p.c0)
                    self.decided = False
                else:
                    self.r, self.c = self.r + 1, self.c1
            else:
                self.c += 1
        if go and emit:
            self.mv = True
        elif m_ready:
            self.mv = False


class _Mvu(_Block):  # hw/hg_mvu.v
    def __init__(self, q):
        self.T, self.lat, self.nb = q.tiles, q.lat, q.nb
        self.xfull = self.iss = False
        self.a = 0
        self.np = self.cp = 0
        self.inuse = [False] * self.nb
        self.ofull = [False] * self.nb
        self.rd = 0
        self.mv = False
        self.pending = []  # (cycle in which the item's last group leaves the lanes, parity)

    def _start(self):
        return self.xfull and not self.inuse[self.np] and ((not self.iss) or self.a == self.T - 1)

    def s_ready(self, m_ready):
        return (not self.xfull) or self._start()  # an item enters as the held one starts

    def span(self, t, s_valid, m_ready):
        if s_valid:
            return 1
        if self._start():
            return 1  # a vector starts
        if self.ofull[self.rd] and ((not self.mv) or m_ready):
            return 1  # a result leaves
        if self.mv and m_ready:
            return 1
        h = NEVER
        if self.iss:  # walking the tiles; the edge at the last one is an event, and the one
            # before if a held item will start there (s_ready rises)
            h = self.T - self.a - (1 if self.xfull and not self.inuse[self.np] else 0)
        if self.pending:
            h = min(h, self.pending[0][0] - t + 1)  # a result reaches its buffer
        return h

    def skip(self, j, s_valid, m_ready):
        if self.iss:
            self.a += j

    def tick(self, t, s_valid, m_ready):
        at_end = self.a == self.T - 1
        start = self._start()
        send = self.ofull[self.rd] and ((not self.mv) or m_ready)
        if self.iss and at_end:
            self.pending.append((t + 4 + self.lat, self.cp))
        np_old = self.np
        if start:
            self.xfull = False
            self.iss = True
            self.a = 0
            self.cp = self.np
            self.np = (self.np + 1) % self.nb
        elif self.iss:
            if at_end:
                self.iss = False
            else:
                self.a += 1
        if s_valid:  # taken (s_ready): after the start, which empties the register
            self.xfull = True
        while self.pending and self.pending[0][0] == t:
            self.ofull[self.pending.pop(0)[1]] = True
        if send:
            self.mv = True
            self.ofull[self.rd] = False
            self.inuse[self.rd] = False
            self.rd = (self.rd + 1) % self.nb
        elif m_ready:
            self.mv = False
        if start:
            self.inuse[np_old] = True


class _Proc(_Block):  # hw/hg_proc.v
    def __init__(self, cost):
        self.cost = cost
        self.xfull = self.busy = self.mv = False
        self.cnt = 0

    def _put(self, m_ready):  # the result leaves for the output register
        return self.busy and self.cnt == self.cost - 1 and ((not self.mv) or m_ready)

    def _start(self, m_ready):  # the held item moves to work
        return self.xfull and ((not self.busy) or self._put(m_ready))

    def s_ready(self, m_ready):  # an item enters as the held one starts
        return (not self.xfull) or self._start(m_ready)

    def span(self, t, s_valid, m_ready):
        if s_valid or (self.mv and m_ready) or (self.xfull and not self.busy):
            return 1
        if self.busy and self.cnt < self.cost - 1:
            return self.cost - self.cnt  # counting; the edge at the last cycle is an event
        if self.busy and not self.mv:
            return 1  # done and the output is free: the result moves
        return NEVER  # idle, or done and waiting for the consumer

    def skip(self, j, s_valid, m_ready):
        if self.busy and self.cnt < self.cost - 1:
            self.cnt += j

    def tick(self, t, s_valid, m_ready):
        fin = self.busy and self.cnt == self.cost - 1
        put = self._put(m_ready)
        start = self._start(m_ready)
        if put:
            self.mv, self.busy = True, False
        elif m_ready:
            self.mv = False
        if start:  # after the put: a new item keeps the stage busy
            self.xfull, self.busy, self.cnt = False, True, 0
        elif self.busy and not fin:
            self.cnt += 1
        if s_valid:  # taken (s_ready): after the start, which empties the register
            self.xfull = True


class _P2s(_Block):  # hw/hg_p2s.v
    def __init__(self, n):
        self.n, self.k, self.xfull, self.mv = n, 0, False, False

    def _done(self, m_ready):  # no part pending after this cycle
        return (not self.mv) or (m_ready and self.k == self.n - 1)

    def s_ready(self, m_ready):  # an item enters as the held one moves on
        return (not self.xfull) or self._done(m_ready)

    def span(self, t, s_valid, m_ready):
        if s_valid:
            return 1  # an item is taken
        if not self.mv:
            return 1 if self.xfull else NEVER
        if not m_ready:
            return NEVER
        # sending the parts; the last one is an event, and with an item held the one before
        # (s_ready rises with the last part)
        return max(1, self.n - self.k - (1 if self.xfull else 0))

    def skip(self, j, s_valid, m_ready):
        if self.mv and m_ready:
            self.k += j

    def tick(self, t, s_valid, m_ready):
        lastk = self.k == self.n - 1
        done = self._done(m_ready)
        take = s_valid  # taken (s_ready): after the move, which empties the register
        if self.mv and m_ready and not lastk:
            self.k += 1
        if done:
            if self.xfull:
                self.xfull, self.mv, self.k = False, True, 0
            else:
                self.mv = False
        if take:
            self.xfull = True


class _Fifo(_Block):  # hw/hg_fifo.v
    def __init__(self, depth):
        self.d, self.n, self.peak = depth, 0, 0
        self.mv = False  # not empty

    def s_ready(self, m_ready):
        return self.n != self.d

    def span(self, t, s_valid, m_ready):
        dn = int(s_valid) - int(self.n > 0 and m_ready)
        if dn == 0:
            return NEVER
        if dn > 0:
            return 1 if self.n == 0 else self.d - self.n  # filling: full is an event
        return 1 if self.n == self.d else self.n  # draining: empty is an event

    def skip(self, j, s_valid, m_ready):
        self.n += j * (int(s_valid) - int(self.n > 0 and m_ready))
        self.peak = max(self.peak, self.n)
        self.mv = self.n > 0

    def tick(self, t, s_valid, m_ready):
        pop = self.n > 0 and m_ready
        self.n += int(s_valid) - int(pop)
        self.peak = max(self.peak, self.n)
        self.mv = self.n > 0


class _Dup:  # hw/hg_dup.v: one stream to two, each branch takes the item when it can
    def __init__(self):
        self.v = [False, False]

    def span_ports(self, t, takes, m_readys):
        new = [True, True] if takes[0] else [v and not r for v, r in zip(self.v, m_readys, strict=True)]
        return NEVER if new == self.v else 1

    def skip_ports(self, j, takes, m_readys):
        pass

    def mvs(self):
        return list(self.v)

    def s_ready_port(self, port, in_valids, m_readys):
        return all((not v) or r for v, r in zip(self.v, m_readys, strict=True))

    def tick_ports(self, t, takes, m_readys):
        if takes[0]:
            self.v = [True, True]
        else:
            self.v = [v and not r for v, r in zip(self.v, m_readys, strict=True)]


class _Add:  # hw/hg_add.v: joins two streams item by item
    def __init__(self):
        self.mv = False

    def span_ports(self, t, takes, m_readys):
        new = True if takes[0] and takes[1] else (False if m_readys[0] else self.mv)
        return NEVER if new == self.mv else 1

    def skip_ports(self, j, takes, m_readys):
        pass

    def s_ready_port(self, port, in_valids, m_readys):
        return in_valids[1 - port] and ((not self.mv) or m_readys[0])

    def tick_ports(self, t, takes, m_readys):
        if takes[0] and takes[1]:
            self.mv = True
        elif m_readys[0]:
            self.mv = False


def _model(s: Stage):
    if s.kind == "dup":
        return _Dup()
    if s.kind == "add":
        return _Add()
    if s.kind == "fifo":
        return _Fifo(s.p.depth)
    if s.kind in ("gather", "gpool"):
        return _Gather(s.p.n)
    if s.kind == "window":
        return _Window(s.p)
    if s.kind == "mvu":
        return _Mvu(s.p)
    if s.kind in ("reduce", "act"):
        return _Proc(s.p.cost)
    if s.kind == "p2s":
        return _P2s(s.p.n)
    raise AssertionError(s.kind)


def simulate(plan: CnnPlan, frames: int, lead: int = 1, max_cycles: int | None = None, clocked: bool = False) -> dict:
    """Run ``frames`` frames with the input always valid and the output always ready.

    ``lead``: clock edges out of reset before the first input word can arrive (the engine
    already runs: a window generator walks its top padding); the test bench gives one.
    Returns ``last_out``: the cycle (counted from the first input word's transfer) in which
    each frame's last output word is transferred, and ``period``: the steady-state cycles
    per frame (difference of the last two frames; the first frame's latency when frames = 1).
    ``clocked``: one clock edge per step (the reference the event-by-event run is held to).
    """
    st = [_model(s) for s in plan.stages]
    idx = {s.name: i for i, s in enumerate(plan.stages)}
    n = len(st)
    multi = [hasattr(m, "tick_ports") for m in st]  # dup (two outputs), add (two inputs)
    ins = [[(idx[a], pa) for a, pa in s.srcs] for s in plan.stages]
    consumer = [[None] * (2 if s.kind == "dup" else 1) for s in plan.stages]  # (stage, port) per output
    for j, srcs in enumerate(ins):
        for port, (i, pi) in enumerate(srcs):
            consumer[i][pi] = (j, port)
    # one-in one-out stages carry scalar signals; dup and add lists (one entry per port)
    src1 = [ins[j][0] if ins[j] and not multi[j] else None for j in range(n)]
    cons1 = [consumer[j][0] if not multi[j] else None for j in range(n)]
    order = list(range(n - 1, -1, -1))
    out_dup = [m.mvs if isinstance(m, _Dup) else None for m in st]  # the one block with two outputs

    def valid_of(vout, i, pi):
        v = vout[i]
        return v[pi] if isinstance(v, list) else v

    def ready_of(ready, c):
        if c is None:
            return True
        r = ready[c[0]]
        return r[c[1]] if isinstance(r, list) else r

    words_in = plan.stages[0].items_in * frames
    words_out = plan.out_count
    sent = got = 0
    last_out = []
    t = -lead
    limit = max_cycles or 50_000_000
    # the longest any stage works on one item without a transfer anywhere: more is a deadlock
    quiet_max = 1000 + 2 * max(
        [getattr(s.p, "tiles", 0) + 20 for s in plan.stages] + [getattr(s.p, "cost", 0) for s in plan.stages]
    )
    last_move = t
    ready = [None] * n
    m_ready = [None] * n
    takes = [None] * n
    while len(last_out) < frames:
        if t - last_move > quiet_max:
            raise Deadlock(f"cycle model: nothing moved for {t - last_move} cycles (deadlock)")
        if t > limit:
            raise Deadlock(f"cycle model: {frames} frames not done in {limit} cycles")
        # valid from the registers; ready flows backwards (it may depend on the consumer's)
        vout = [out_dup[j]() if out_dup[j] else st[j].mv for j in range(n)]
        src_valid = t >= 0 and sent < words_in
        for j in order:
            m = st[j]
            if multi[j]:
                iv = [valid_of(vout, i, pi) for i, pi in ins[j]]
                mr = [ready_of(ready, c) for c in consumer[j]]
                r = [m.s_ready_port(k, iv, mr) for k in range(len(iv))]
                ready[j], m_ready[j] = r, mr
                takes[j] = [v and q for v, q in zip(iv, r, strict=True)]
            else:
                mr = ready_of(ready, cons1[j])
                r = m.s_ready(mr)
                ready[j], m_ready[j] = r, mr
                sv = valid_of(vout, *src1[j]) if src1[j] is not None else src_valid
                takes[j] = sv and r
        src_take = takes[0]
        out_valid = vout[-1]
        # how many edges every signal above stays as it is (1: the next edge may change one)
        dt = 1
        if not clocked:
            dt = NEVER
            for j in order:
                m = st[j]
                h = m.span_ports(t, takes[j], m_ready[j]) if multi[j] else m.span(t, takes[j], m_ready[j])
                if h < dt:
                    dt = h
                    if h == 1:
                        break
            if t < 0:
                dt = min(dt, -t)  # the first input word arrives at cycle 0
            if src_take:
                dt = min(dt, words_in - sent)
            if out_valid:
                dt = min(dt, words_out - got % words_out)
            if dt >= NEVER:
                raise Deadlock("cycle model: every stage waits on another (deadlock)")
            if dt > 1:
                for j in range(n):
                    if multi[j]:
                        st[j].skip_ports(dt - 1, takes[j], m_ready[j])
                    else:
                        st[j].skip(dt - 1, takes[j], m_ready[j])
                t += dt - 1
        if src_take:
            sent += dt
        if out_valid:
            got += dt
            if got % words_out == 0:
                last_out.append(t)
        for j in range(n):
            m = st[j]
            if multi[j]:
                if any(takes[j]):
                    last_move = t
                m.tick_ports(t, takes[j], m_ready[j])
            else:
                if takes[j]:
                    last_move = t
                m.tick(t, takes[j], m_ready[j])
        t += 1
    period = last_out[-1] - last_out[-2] if frames > 1 else last_out[0] + 1
    peaks = {s.name: m.peak for s, m in zip(plan.stages, st, strict=False) if s.kind == "fifo"}
    return {"last_out": last_out, "latency": last_out[0] + 1, "period": period, "fifo_peaks": peaks}


def size_fifos(plan: CnnPlan, frames: int = 4) -> dict:
    """Give every FIFO the depth it needs: run the model with room for a whole frame in each,
    record the peak occupancy, and keep peak + 1 (with that, the run is cycle for cycle the
    same, so the stages overlap as much as unbounded FIFOs would let them)."""
    fifos = [s for s in plan.stages if s.kind == "fifo"]
    for s in fifos:
        s.p.depth = s.items_in + 2
    res = simulate(plan, frames)
    for s in fifos:
        s.p.depth = res["fifo_peaks"][s.name] + 1
    # a FIFO that never holds more than one item may not be needed at all: drop it where the
    # model shows the frame period and latency do not suffer (wide items cost flip-flops).
    # All such FIFOs are tried together first (one run); one by one only if that costs cycles.
    small = [s for s in fifos if s.p.depth <= 2]
    if small:
        r = _without(plan, small, frames, res)
        if r is not None:
            return r
        for s in small:
            r = _without(plan, [s], frames, res)
            if r is not None:
                res = r
    return res


def _without(plan: CnnPlan, drop: list, frames: int, res: dict) -> dict | None:
    """Remove the FIFOs ``drop`` if the modelled period and latency stay within ``res``:
    returns the new timing, or None (and the plan as it was)."""
    src_of = {s.name: s.srcs[0] for s in drop}

    def upstream(src):  # through a chain of dropped FIFOs to a kept stage
        while src[0] in src_of:
            src = src_of[src[0]]
        return src

    saved = sizing_state(plan)
    plan.stages = [x for x in plan.stages if x.name not in src_of]
    for x in plan.stages:
        x.srcs[:] = [upstream(src) for src in x.srcs]
    try:
        r = simulate(plan, frames)
    except Deadlock:
        r = None
    if r is not None and r["period"] <= res["period"] and r["latency"] <= res["latency"]:
        return r
    restore_sizing(plan, saved)
    return None


def sizing_state(plan: CnnPlan) -> tuple:
    """What FIFO sizing changes in a plan (the stages kept, their inputs, the FIFOs' depths),
    for :func:`restore_sizing`."""
    return list(plan.stages), [(s, list(s.srcs), s.p.depth if s.kind == "fifo" else None) for s in plan.stages]


def restore_sizing(plan: CnnPlan, state: tuple):
    stages, rows = state
    plan.stages = list(stages)
    for s, srcs, depth in rows:
        s.srcs[:] = srcs
        if depth is not None:
            s.p.depth = depth


def bound(plan: CnnPlan) -> dict:
    """Per MVU layer: MACs / lanes per frame (lanes = PE x SIMD; PE for a depthwise layer
    folded over its channels), the bound the engine's cycles per frame are set against."""
    out = {}
    for s in plan.mvus:
        q = s.p
        out[s.layers[0]] = q.macs * s.items_in / q.lanes
    return out

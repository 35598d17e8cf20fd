"""Exact cycle model of the streaming CNN engine: the control of every hw/ stage, replayed
register by register (data is not modelled, only when items move).

Each class mirrors one Verilog block: ``s_ready``/``m_valid`` are its combinational outputs
from the current registers, ``tick`` computes the registers after the next clock edge.  The
RTL simulation checks the cycle of every frame's last output word against this model.
"""

from __future__ import annotations

from .plan import CnnPlan, Stage


class Deadlock(RuntimeError):
    """The modelled engine stops moving (a FIFO too small on a branch that must wait)."""


class _Gather:  # hw/hg_gather.v, hw/hg_gpool.v
    def __init__(self, n):
        self.n, self.k, self.cfull, self.mv = n, 0, False, False

    def s_ready(self, m_ready):
        return not self.cfull

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


class _Window:  # hw/hg_window.v
    def __init__(self, p):
        self.p = p
        self.r = self.c = 0
        self.mv = False

    def _flags(self, m_ready):
        p = self.p
        inside = p.pt <= self.r < p.pt + p.h and p.pl <= self.c < p.pl + p.w
        emit = bool(p.rowe[self.r] and p.cole[self.c])
        room = (not emit) or (not self.mv) or m_ready
        return inside, emit, room

    def s_ready(self, m_ready):
        inside, _, room = self._flags(m_ready)
        return inside and room

    def tick(self, t, s_valid, m_ready):
        inside, emit, room = self._flags(m_ready)
        go = room and ((not inside) or s_valid)
        if go:
            if self.c == self.p.pw - 1:
                self.c = 0
                self.r = 0 if self.r == self.p.ph - 1 else self.r + 1
            else:
                self.c += 1
        if go and emit:
            self.mv = True
        elif m_ready:
            self.mv = False


class _Mvu:  # hw/hg_mvu.v
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

    def s_ready(self, m_ready):
        return not self.xfull

    def tick(self, t, s_valid, m_ready):
        at_end = self.a == self.T - 1
        start = self.xfull and not self.inuse[self.np] and ((not self.iss) or at_end)
        send = self.ofull[self.rd] and ((not self.mv) or m_ready)
        if self.iss and at_end:
            self.pending.append((t + 4 + self.lat, self.cp))
        if s_valid and not self.xfull:
            self.xfull = True
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


class _Proc:  # hw/hg_proc.v
    def __init__(self, cost):
        self.cost = cost
        self.xfull = self.busy = self.mv = False
        self.cnt = 0

    def s_ready(self, m_ready):
        return not self.xfull

    def tick(self, t, s_valid, m_ready):
        fin = self.busy and self.cnt == self.cost - 1
        put = fin and ((not self.mv) or m_ready)
        take = s_valid and not self.xfull
        if self.xfull and not self.busy:
            self.xfull, self.busy, self.cnt = False, True, 0
        elif self.busy and not fin:
            self.cnt += 1
        if take:
            self.xfull = True
        if put:
            self.mv, self.busy = True, False
        elif m_ready:
            self.mv = False


class _P2s:  # hw/hg_p2s.v
    def __init__(self, n):
        self.n, self.k, self.xfull, self.mv = n, 0, False, False

    def s_ready(self, m_ready):
        return not self.xfull

    def tick(self, t, s_valid, m_ready):
        lastk = self.k == self.n - 1
        done = (not self.mv) or (m_ready and lastk)
        take = s_valid and not self.xfull
        if self.mv and m_ready and not lastk:
            self.k += 1
        if done:
            if self.xfull:
                self.xfull, self.mv, self.k = False, True, 0
            else:
                self.mv = False
        if take:
            self.xfull = True


class _Fifo:  # hw/hg_fifo.v
    def __init__(self, depth):
        self.d, self.n, self.peak = depth, 0, 0

    @property
    def mv(self):
        return self.n > 0

    def s_ready(self, m_ready):
        return self.n != self.d

    def tick(self, t, s_valid, m_ready):
        pop = self.n > 0 and m_ready
        self.n += int(s_valid) - int(pop)
        self.peak = max(self.peak, self.n)


class _Dup:  # hw/hg_dup.v: one stream to two, each branch takes the item when it can
    def __init__(self):
        self.v = [False, False]

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

    def mvs(self):
        return [self.mv]

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


def simulate(plan: CnnPlan, frames: int, lead: int = 1, max_cycles: int | None = None) -> dict:
    """Run ``frames`` frames with the input always valid and the output always ready.

    ``lead``: clock edges out of reset before the first input word can arrive (the engine
    already runs: a window generator walks its top padding); the test bench gives one.
    Returns ``last_out``: the cycle (counted from the first input word's transfer) in which
    each frame's last output word is transferred, and ``period``: the steady-state cycles
    per frame (difference of the last two frames; the first frame's latency when frames = 1).
    """
    st = [_model(s) for s in plan.stages]
    idx = {s.name: i for i, s in enumerate(plan.stages)}
    n = len(st)
    ins = [[(idx[a], pa) for a, pa in s.srcs] for s in plan.stages]
    nouts = [2 if s.kind == "dup" else 1 for s in plan.stages]
    consumer = [[None] * k for k in nouts]  # (stage, its input port) of every output port
    for j, srcs in enumerate(ins):
        for port, (i, pi) in enumerate(srcs):
            consumer[i][pi] = (j, port)

    def mvs(m):
        return m.mvs() if hasattr(m, "mvs") else [m.mv]

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
    while len(last_out) < frames:
        if t > limit or t - last_move > quiet_max:
            raise Deadlock(f"cycle model: nothing moved for {t - last_move} cycles (deadlock)")
        # valid from the registers; ready flows backwards (it may depend on the consumer's)
        vout = [mvs(m) for m in st]
        src_valid = t >= 0 and sent < words_in
        in_valid = [[vout[i][pi] for i, pi in ins[j]] or [src_valid] for j in range(n)]
        ready = [None] * n
        m_ready = [None] * n
        for j in range(n - 1, -1, -1):
            m_ready[j] = [True if c is None else ready[c[0]][c[1]] for c in consumer[j]]
            m = st[j]
            if hasattr(m, "s_ready_port"):
                ready[j] = [m.s_ready_port(k, in_valid[j], m_ready[j]) for k in range(len(in_valid[j]))]
            else:
                ready[j] = [m.s_ready(m_ready[j][0])]
        if src_valid and ready[0][0]:
            sent += 1
        if vout[-1][0]:
            got += 1
            if got % words_out == 0:
                last_out.append(t)
        for j, m in enumerate(st):
            takes = [v and r for v, r in zip(in_valid[j], ready[j], strict=True)]
            if any(takes):
                last_move = t
            if hasattr(m, "tick_ports"):
                m.tick_ports(t, takes, m_ready[j])
            else:
                m.tick(t, takes[0], m_ready[j][0])
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
    # model shows the frame period and latency do not suffer (wide items cost flip-flops)
    for s in fifos:
        if s.p.depth > 2:
            continue
        user = next(x for x in plan.stages if (s.name, 0) in x.srcs)
        port = user.srcs.index((s.name, 0))
        kept = plan.stages
        plan.stages = [x for x in plan.stages if x is not s]
        user.srcs[port] = s.srcs[0]
        try:
            r = simulate(plan, frames)
        except Deadlock:
            r = None
        if r is not None and r["period"] <= res["period"] and r["latency"] <= res["latency"]:
            res = r
        else:
            plan.stages = kept
            user.srcs[port] = (s.name, 0)
    return res


def bound(plan: CnnPlan) -> dict:
    """Per MVU layer: MACs / lanes per frame (lanes = PE x SIMD; PE for a depthwise layer
    folded over its channels), the bound the engine's cycles per frame are set against."""
    out = {}
    for s in plan.mvus:
        q = s.p
        out[s.layers[0]] = q.macs * s.items_in / q.lanes
    return out

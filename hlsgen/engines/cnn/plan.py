"""The streaming CNN engine: one hardware stage per layer, streams between them.

A frame enters as H*W*C words (raster order, channels last) on AXI4-Stream, is packed into
pixels (``gather``) and flows through the stages below; the result leaves as words again
(``p2s``).  Inside, a stream item is a vector of elements (a pixel of C channels, a window, a
flattened tensor), each element a signed raw integer on its node's grid.

* ``window`` - sliding-window generator over a line buffer (a shift register of
  (KH-1) padded rows + KW pixels): stride, zero padding; emits the window [ky][kx][c].
* ``mvu`` - matrix-vector unit for Conv / depthwise Conv / Dense: PE output lanes x SIMD
  input lanes, the matrix cut into PE x SIMD tiles; tiles that are all zero are not stored
  and cost no cycle (zero-weight skipping at the granularity the folding allows).  The
  datapath follows the weights: multipliers for fixed point, sign/shift for binary, ternary
  and power-of-two weights (no multiplier).  Bias and the following activation (thresholds,
  requantization, ReLU) are applied per PE lane.
* ``reduce`` - max / sum over a pooling window; ``gpool`` - global max / sum over a frame.
* ``act`` - an element-wise activation on its own (all channels in parallel).
* ``gather`` - collects items into one vector (input words into pixels, Flatten).
* ``p2s`` - the output vector as words.

Every stage keeps the valid/ready protocol and tolerates back-pressure; :mod:`.cycles`
replays their control cycle by cycle (the RTL is checked against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import HlsgenError
from ...ir import Graph
from ...ir.nodes import _mac_bounds
from ...names import ident
from ..arith import Requant, TablePlan, book_codes, lane_type, plan_table, shared_codebook, signed_bits, ubits

MAX_MUL_A, MAX_MUL_B = 25, 18  # one DSP48 lane: 25 x 18 signed
MAX_WIDTH = 62


def _fail(node, msg):
    return HlsgenError(msg, layer=node.name, layer_type=node.op)


@dataclass
class Act:
    """A per-element activation applied in a lane: step table, requant, relu or linear."""

    mode: str  # step | requant | relu | linear
    in_width: int
    out_width: int
    table: TablePlan | None = None
    requant: Requant | None = None
    node: str = ""

    @property
    def latency(self) -> int:
        return self.table.latency if self.mode == "step" else 1


# ------------------------------------------------------------------ per-stage parameters
@dataclass
class GatherParams:
    """``gather``: N items into one vector (words into a pixel, pixels into a flat tensor)."""

    n: int


@dataclass
class P2sParams:
    """``p2s``: a vector of N elements out as N words."""

    n: int


@dataclass
class FifoParams:
    """``fifo``: depth in items (set from the cycle model after planning)."""

    depth: int


@dataclass
class DupParams:
    """``dup``: a stream forked in two (no parameters)."""


@dataclass
class AddParams:
    """``add``: C lanes of (a << sa) + (b << sb); a and b are wa and wb bits wide."""

    c: int
    wa: int
    wb: int
    sa: int
    sb: int


@dataclass
class GpoolParams:
    """``gpool``: global max or sum over n pixels."""

    mode: str
    n: int


@dataclass
class ReduceParams:
    """``reduce``: max or sum over the k pixels of a pooling window, c channels, cost cycles."""

    mode: str
    k: int
    c: int
    cost: int


@dataclass
class ActParams:
    """``act``: an activation on c lanes, cost cycles per pixel."""

    act: Act
    c: int
    cost: int


@dataclass
class WindowParams:
    """``window``: sliding windows over a zero-padded h x w x c image (padded ph x pw; pads
    pt, pl before), kernel kh x kw, stride sh x sw, output oh x ow; rowe / cole: a window
    ends in this padded row / column; r0 / c0: the leading padded rows / columns the generator
    does not walk (padding where no window ends, :func:`lead_skip`); mr / mc: the trailing
    padded rows / columns whose load side is the next frame's / row's first (:func:`trail_merge`),
    so that after the first frame / row the generator walks rows r0 + mr.. and columns c0 + mc..."""

    h: int
    w: int
    c: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    ph: int
    pw: int
    oh: int
    ow: int
    rowe: list
    cole: list
    r0: int = 0
    c0: int = 0
    mr: int = 0
    mc: int = 0

    def walk_flags(self) -> dict:
        """The window generator's bit vectors (hw/hg_window.v): ``rowe`` / ``cole``: a window
        ends here; ``rowi`` / ``coli``: an image row / column (not padding); the load side:
        ``lrowi`` / ``lnrowi`` [ph]: in walked row r / in the last mc columns (the walked row
        after r), it is in an image row; ``lcoli`` [pw]: at column c, in an image column;
        ``lf`` / ``lnf`` [ph]: ... in the next frame."""
        ph, pw, mr = self.ph, self.pw, self.mr
        rowi = [int(self.pt <= r < self.pt + self.h) for r in range(ph)]
        coli = [int(self.pl <= c < self.pl + self.w) for c in range(pw)]
        lrow = [r if r < ph - mr else self.r0 + r - (ph - mr) for r in range(ph)]
        nxt = [r + 1 if r < ph - 1 else self.r0 + mr for r in range(ph)]
        lcol = [c if c < pw - self.mc else self.c0 + c - (pw - self.mc) for c in range(pw)]
        return {
            "rowe": list(self.rowe),
            "cole": list(self.cole),
            "rowi": rowi,
            "coli": coli,
            "lrowi": [rowi[lrow[r]] for r in range(ph)],
            "lnrowi": [rowi[lrow[nxt[r]]] for r in range(ph)],
            "lcoli": [coli[c] for c in lcol],
            "lf": [int(r >= ph - mr) for r in range(ph)],
            "lnf": [int(self.mc > 0 and (r == ph - 1 or r + 1 >= ph - mr)) for r in range(ph)],
        }


def window_ends(n_padded: int, k: int, stride: int, n_out: int) -> list[int]:
    """Per padded row (or column): 1 where a window ends."""
    return [int(r >= k - 1 and (r - k + 1) % stride == 0 and (r - k + 1) // stride < n_out) for r in range(n_padded)]


def lead_skip(ends: list, pad: int) -> int:
    """The leading padded rows (or columns) that are padding and end no window: the window
    generator does not walk them (their pixels are zeros it masks into the windows instead)."""
    n = 0
    while n < pad and not ends[n]:
        n += 1
    return n


def trail_merge(ends: list, skip: int, pad: int, n_img: int) -> int:
    """The trailing padded rows (or columns) whose cycles the generator shares with the next
    frame's (or row's) first walked ones: as many as there are trailing padding rows and
    image rows from ``skip`` before the first window end.  In those the window side emits
    (no pixel arrives) while the load side takes the image rows (no window ends)."""
    lead = 0
    while skip + lead < min(pad + n_img, len(ends)) and not ends[skip + lead]:
        lead += 1
    # the load side stays within the next frame: at least one walked row loads its own
    return max(0, min(len(ends) - pad - n_img, lead, (len(ends) - skip - 1) // 2))


def walk(rowe: list, cole: list, pt: int, pl: int, h: int, w: int) -> tuple[int, int, int, int]:
    """(r0, c0, mr, mc) of a window generator (:class:`WindowParams`): it walks
    (ph - r0 - mr) x (pw - c0 - mc) positions a frame."""
    r0, c0 = lead_skip(rowe, pt), lead_skip(cole, pl)
    return r0, c0, trail_merge(rowe, r0, pt, h), trail_merge(cole, c0, pl, w)


@dataclass
class Tiles:
    """The stored PE x SIMD tiles of a matrix-vector unit in the order they are read: per
    output group, its non-zero tiles by input fold (one zero tile when the group has none).
    ``sf`` [T]: input fold index; ``last`` [T]: 1 on a group's last tile; ``codes``
    [T, PE, SIMD]: the lanes' weight codes."""

    sf: np.ndarray
    last: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.sf)


@dataclass
class MvuParams:
    """``mvu``: an [n, m] matrix folded PE (outputs) x SIMD (inputs) into nf x sf tiles, of
    which only ``entries`` (sf index, last-of-group flag, codes [PE, SIMD]) are stored."""

    n: int
    m: int
    pe: int
    simd: int
    nf: int
    sf: int
    datapath: str  # mul | shift | xnor | book
    x_exp: int  # xnor: inputs are +-2^x_exp
    code_width: int  # bits of a stored weight code (book: of a codebook index)
    x_width: int
    acc_width: int
    val_width: int
    bias: np.ndarray
    bias_width: int
    sa: int  # product shift onto the value grid
    sb: int  # bias shift onto the value grid
    entries: Tiles
    tiles: int
    act: Act | None
    lat: int  # the activation lanes' latency
    nb: int  # output buffers
    macs: int
    macs_skipped: int
    diag: bool
    lanes: int
    depthwise: bool
    # book: the layer's shared weights, zero first (the codes index them), each book_width bits
    codebook: np.ndarray | None = None
    book_width: int = 0


StageParams = (
    GatherParams
    | P2sParams
    | FifoParams
    | DupParams
    | AddParams
    | GpoolParams
    | ReduceParams
    | ActParams
    | WindowParams
    | MvuParams
)


@dataclass
class Stage:
    name: str
    kind: str  # gather | window | mvu | reduce | gpool | act | dup | add | fifo | p2s
    layers: list  # IR node names this stage realises
    in_elems: int
    in_width: int
    out_elems: int
    out_width: int
    items_in: int  # per frame
    items_out: int
    p: StageParams | None = None  # kind-specific parameters (typed per kind)
    srcs: list = field(default_factory=list)  # [(producer stage, its output port)] per input port


@dataclass
class CnnPlan:
    name: str
    stages: list
    in_shape: tuple
    in_width: int
    out_count: int
    out_width: int
    clock_mhz: float = 200.0
    notes: list = field(default_factory=list)
    timing: dict = field(default_factory=dict)  # the cycle model's run when FIFOs were sized

    @property
    def mvus(self):
        return [s for s in self.stages if s.kind == "mvu"]

    def summary(self) -> dict:
        rows = []
        for s in self.mvus:
            q = s.p
            rows.append(
                {
                    "stage": s.name,
                    "layer": s.layers[0],
                    "n": q.n,
                    "m": q.m,
                    "pe": q.pe,
                    "simd": q.simd,
                    "datapath": q.datapath,
                    "tiles": q.tiles,
                    "tiles_dense": q.nf * q.sf,
                    "items": s.items_in,
                    "macs": q.macs * s.items_in,
                    "macs_skipped": q.macs_skipped * s.items_in,
                    # {last, codes} per stored tile (hw/hg_mvu.v WFILE)
                    "weight_words": q.tiles,
                    "weight_bits": 1 + q.lanes * q.code_width,
                }
            )
        buffers = [  # hw/hg_window.v: a word per padded column, the KH-1 rows above
            {"stage": s.name, "layer": s.layers[0], "words": s.p.pw, "bits": (s.p.kh - 1) * s.in_elems * s.in_width}
            for s in self.stages
            if s.kind == "window" and s.p.kh > 1 and s.p.pw > 1
        ]
        return {"mvus": rows, "line_buffers": buffers, "dsp_lanes": dsp_lanes(self), "notes": list(self.notes)}


def dsp_lanes(plan: CnnPlan) -> int:
    """Multiplier lanes (fixed-point layers, shared or not; shift and XNOR datapaths have none)."""
    return sum(s.p.lanes for s in plan.mvus if s.p.datapath in ("mul", "book"))


def diagonal(node) -> bool:
    """A depthwise convolution with one output per channel: folded PE = SIMD over channels,
    lane p multiplying only channel p of its chunk (hw/hg_mvu.v, DIAG)."""
    return node.op == "Conv" and node.depthwise and node.kernel.raw.shape[-1] == 1


# ------------------------------------------------------------------ helpers
def _width(spec) -> int:
    return signed_bits(min(spec.lo, 0), max(spec.hi, 0))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _act_for(node, src_spec, src_width: int, name: str) -> Act:
    """The lane activation realising Activation ``node`` on values of ``src_spec``."""
    out_w = _width(node.spec)
    fn = node.function
    if fn == "linear":
        return Act("linear", src_width, out_w, node=node.name)
    if fn == "relu":
        return Act("relu", src_width, out_w, node=node.name)
    if fn == "requant":
        rq = Requant(lane_type(src_width, src_spec.type.frac), node.type, bool(node.relu))
        return Act("requant", src_width, out_w, requant=rq, node=node.name)
    tab = plan_table(name, node.step, min(src_spec.lo, 0), max(src_spec.hi, 0))
    return Act("step", src_width, out_w, table=tab, node=node.name)


# ------------------------------------------------------------------ the matrix-vector unit
def conv_matrix(node) -> np.ndarray:
    """The layer as a matrix [N, M]: rows in window order (ky, kx, c), columns = outputs."""
    k = node.kernel.raw
    if node.op == "Dense":
        return k
    if not node.depthwise:
        return k.reshape(-1, k.shape[-1])
    kk = k.reshape(-1, k.shape[-2], k.shape[-1])  # [K, C, mult]
    nk, c, mult = kk.shape
    w = np.zeros((nk * c, c * mult), dtype=np.int64)
    for ch in range(c):
        w[np.arange(nk) * c + ch, ch * mult : (ch + 1) * mult] = kk[:, ch, :]
    return w


def tile_counts(w: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """Non-zero PE x SIMD tiles per output group (at least one stored per group)."""
    n, m = w.shape
    t = (w.reshape(n // simd, simd, m // pe, pe) != 0).any(axis=(1, 3))  # [SF, NF]
    return np.maximum(t.sum(axis=0), 1)


def lane_codes(rel: np.ndarray, datapath: str, codebook: np.ndarray | None = None) -> np.ndarray:
    """The weight code of every matrix entry: the weight (mul); sign bit (xnor, 1 for -1);
    exponent << 2 | negative << 1 | non-zero (shift, exponents relative to the smallest);
    the index of the weight in ``codebook`` (book)."""
    if datapath == "book":
        return book_codes(codebook, rel)
    if datapath == "xnor":
        return (rel < 0).astype(np.int64)
    if datapath == "shift":
        mag = np.abs(rel)
        e = np.zeros_like(rel)
        nz = rel != 0
        e[nz] = np.log2(mag[nz]).round().astype(np.int64)
        return (e << 2) | ((rel < 0).astype(np.int64) << 1) | nz.astype(np.int64)
    return rel.astype(np.int64)


def stored_tiles(rel: np.ndarray, pe: int, simd: int, datapath: str, codebook=None) -> Tiles:
    """Cut the [n, m] matrix into PE x SIMD tiles and keep the non-zero ones (see :class:`Tiles`)."""
    n, m = rel.shape
    sf, nf = n // simd, m // pe
    blocks = lane_codes(rel, datapath, codebook).reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1)  # [nf, sf, PE, SIMD]
    nzt = (rel.reshape(sf, simd, nf, pe) != 0).any(axis=(1, 3)).T  # [nf, sf]
    empty = ~nzt.any(axis=1)
    keep = nzt.copy()
    keep[empty, 0] = True  # a group with no non-zero tile still stores one (zero) tile
    g_idx, s_idx = np.nonzero(keep)  # row-major: by group, then input fold
    last = np.zeros(len(g_idx), dtype=np.int64)
    if len(g_idx):
        last[np.r_[np.flatnonzero(np.diff(g_idx)), len(g_idx) - 1]] = 1
    return Tiles(s_idx.astype(np.int64), last, blocks[g_idx, s_idx])


def _datapath(node, w: np.ndarray):
    """'mul' with weights as they are, or 'shift' with codes when every weight is 0 or +-2^k."""
    nz = np.abs(w[w != 0])
    kind = node.kernel.kind
    if kind != "fixed" and nz.size and np.all((nz & (nz - 1)) == 0):
        e = np.log2(nz).astype(np.int64)
        return "shift", int(e.min()), int(e.max())
    return "mul", 0, 0


def bipolar(step) -> int | None:
    """e when every value of a step function is +-2^e (binary activations), else None."""
    if step is None:
        return None
    v = np.unique(step.values)
    if v.size == 2 and v[0] == -v[1] and v[1] > 0 and not v[1] & (v[1] - 1):
        return int(v[1]).bit_length() - 1
    return None


def plan_mvu(
    name, node, x_spec, x_width, pe, simd, act: Act | None, items: int, x_bip: int | None = None, book_bits: int = 8
) -> Stage:
    """The matrix-vector unit of a Conv / Dense layer.  ``x_bip``: the input's values are all
    +-2^x_bip (binary activations, no zero padding): binary weights then use XNOR-popcount.
    A fixed-point layer with at most 2^book_bits - 1 distinct weights stores codebook indices."""
    w = conv_matrix(node)
    n, m = w.shape
    diag = diagonal(node) and simd > 1
    if diag and pe != simd:
        raise _fail(node, f"a depthwise layer folds PE = SIMD over its channels; got PE={pe}, SIMD={simd}")
    if m % pe:
        raise _fail(node, f"PE={pe} does not divide the {m} output channels; use one of {_divisors(m)}")
    if n % simd:
        raise _fail(node, f"SIMD={simd} does not divide the {n} inputs; use one of {_divisors(n)}")
    datapath, emin, emax = _datapath(node, w)
    nf, sf = m // pe, n // simd
    if datapath == "shift" and emin == emax and x_bip is not None and np.all(w != 0) and not diag:
        datapath = "xnor"  # +-1 weights times +-2^e inputs: 2 * popcount(xnor) - SIMD, shifted
    if datapath == "xnor":
        rel = np.sign(w)
        code_w = 1
    elif datapath == "shift":
        rel = np.where(w != 0, np.sign(w) * (np.abs(w) >> emin), 0)
        # code {exponent, negative, non-zero}; ternary weights (one magnitude) need no exponent
        code_w = 2 + (ubits(emax - emin) if emax > emin else 0)
    else:
        rel = w
        code_w = signed_bits(min(int(w.min()), 0), max(int(w.max()), 0))
        if code_w > MAX_MUL_A + MAX_WIDTH:
            raise _fail(node, f"weights of {code_w} bits are too wide")
    codebook, book_w = None, 0
    if datapath == "mul":
        codebook = shared_codebook(w, code_w, int(tile_counts(w, pe, simd).sum()), book_bits)
        if codebook is not None:
            datapath, book_w, code_w = "book", code_w, ubits(len(codebook) - 1)
    lo, hi = _mac_bounds(rel, min(x_spec.lo, 0), max(x_spec.hi, 0))
    acc_w = signed_bits(min(int(lo.min()), 0), max(int(hi.max()), 0))
    spec = node.spec
    vf = spec.type.frac
    xf, wf = x_spec.type.frac, node.kernel.type.frac
    sa = emin + vf - xf - wf
    bias = np.zeros(m, dtype=np.int64)
    sb = 0
    if node.bias is not None:
        bias = node.bias.raw.astype(np.int64)
        sb = vf - node.bias.type.frac
    bias_w = signed_bits(min(int(bias.min()), 0), max(int(bias.max()), 0))
    val_w = _width(spec)
    if max(acc_w + sa, bias_w + sb, val_w) > MAX_WIDTH:
        raise _fail(node, f"accumulator of {max(acc_w + sa, bias_w + sb)} bits is too wide (max {MAX_WIDTH})")
    entries = stored_tiles(rel, pe, simd, datapath, codebook)
    if diag and np.any(entries.codes[:, ~np.eye(pe, dtype=bool)] != 0):
        raise AssertionError(f"{node.name}: a depthwise tile is not diagonal")
    tiles = len(entries)
    lat = act.latency if act else 1
    depthwise = bool(node.op == "Conv" and node.depthwise)
    macs = int(np.prod(node.kernel.raw.shape)) if depthwise else n * m  # MACs of the layer per item
    out_w = act.out_width if act else val_w
    # output buffers: enough that a vector's results leave before its buffer is needed again
    nb = max(2, -(-(tiles + 6 + lat) // tiles))
    p = MvuParams(
        n=n,
        m=m,
        pe=pe,
        simd=simd,
        nf=nf,
        sf=sf,
        datapath=datapath,
        x_exp=x_bip if datapath == "xnor" else 0,
        code_width=code_w,
        x_width=x_width,
        acc_width=acc_w,
        val_width=val_w,
        bias=bias,
        bias_width=bias_w,
        sa=sa,
        sb=sb,
        entries=entries,
        tiles=tiles,
        act=act,
        lat=lat,
        nb=nb,
        macs=macs,
        # MAC slots not spent per item: the layer's MACs less the lanes of the stored tiles
        macs_skipped=max(0, macs - tiles * (pe if diag else pe * simd)),
        diag=diag,
        lanes=pe if diag else pe * simd,
        depthwise=depthwise,
        codebook=codebook,
        book_width=book_w,
    )
    return Stage(name, "mvu", [node.name] + ([act.node] if act else []), n, x_width, m, out_w, items, items, p)


# ------------------------------------------------------------------ folding
def fold_options(w: np.ndarray, node):
    """(lanes, PE, SIMD) of every folding of a layer."""
    n, m = w.shape
    if diagonal(node):
        return sorted([(1, 1, 1)] + [(p, p, p) for p in _divisors(m) if p > 1])
    depthwise = node.op == "Conv" and node.depthwise
    opts = []
    for pe in _divisors(m):
        for simd in [1] if depthwise else _divisors(n):
            opts.append((pe * simd, pe, simd))
    return sorted(opts)


def choose_folding(
    layers, fold: dict, target_fps: float | None, dsp: int | None, lanes: int, clock_mhz: float, notes=None
):
    """Per MVU layer (PE, SIMD), chosen like FINN's folding but exactly: the smallest
    bottleneck (cycles per frame) that the budget allows, with the fewest lanes.

    ``layers``: [(node, items, floor)] (``floor``: cycles per frame of the layer's window
    generator, which more lanes cannot beat); ``fold``: user choices {layer: (pe, simd)}.
    Budget: ``dsp`` multiplier lanes for fixed-point layers (None: no limit) and ``lanes`` in
    all.  With ``target_fps`` at ``clock_mhz``, the cheapest folding that meets it.
    """
    table = []
    for node, items, floor in layers:
        w = conv_matrix(node)
        mul = _datapath(node, w)[0] == "mul"
        if node.name in fold:
            opts = [fold[node.name]]
        else:
            opts = [(pe, simd) for _, pe, simd in fold_options(w, node)]
        cand = []
        for pe, simd in opts:
            if w.shape[1] % pe or w.shape[0] % simd:
                cand.append((0, pe, simd, pe * simd))  # refused later, naming the layer
                continue
            t = int(tile_counts(w, pe, simd).sum())
            lanes_n = pe if diagonal(node) and simd > 1 else pe * simd
            cand.append((max(items * t, floor), pe, simd, lanes_n))
        table.append((node.name, mul, cand))

    def pick(limit):
        out, used, used_mul = {}, 0, 0
        for name, mul, cand in table:
            ok = [c for c in cand if c[0] <= limit]
            if not ok:
                return None
            best = min(ok, key=lambda c: (c[3], -c[2]))  # fewest lanes; then wider SIMD
            out[name] = best
            used += best[3]
            used_mul += best[3] if mul else 0
        if used > lanes or (dsp is not None and used_mul > dsp):
            return None
        return out

    if not table:
        return {}
    levels = sorted({c[0] for _, _, cand in table for c in cand})
    choice = None
    notes = notes if notes is not None else []
    if target_fps:
        goal = clock_mhz * 1e6 / target_fps
        ok = [v for v in levels if v <= goal]
        choice = pick(ok[-1]) if ok else None
        if choice is None:
            notes.append(
                f"--fps {target_fps:g} at {clock_mhz:g} MHz (at most {goal:.1f} cycles per frame) cannot be met "
                f"within the budget (--lanes {lanes}, --dsp {dsp}); the folding below is the fastest that fits"
            )
    if choice is None:
        lo, hi = 0, len(levels) - 1
        if pick(levels[hi]) is None:
            # even the slowest folding exceeds the budget: everything at its minimum, and say so
            least = {name: min(cand, key=lambda c: c[3]) for name, _, cand in table}
            used = sum(c[3] for c in least.values())
            used_mul = sum(least[name][3] for name, mul, _ in table if mul)
            over = []
            if used > lanes:
                over.append(f"--lanes {lanes} (the narrowest folding uses {used} lanes, one layer at a time at least)")
            if dsp is not None and used_mul > dsp:
                muls = ", ".join(name for name, mul, _ in table if mul)
                over.append(f"--dsp {dsp} (the fixed-point layers {muls} need at least {used_mul} multiplier lanes)")
            notes.append("budget not met: " + "; ".join(over) + "; every layer is at its narrowest folding")
            return {name: (c[1], c[2]) for name, c in least.items()}
        while lo < hi:
            mid = (lo + hi) // 2
            if pick(levels[mid]) is not None:
                hi = mid
            else:
                lo = mid + 1
        choice = pick(levels[lo])
    return {name: (c[1], c[2]) for name, c in choice.items()}


# ------------------------------------------------------------------ planning
def _spatial(shape):
    """(H, W, C) of a tensor shape (1-D signals are one row)."""
    if len(shape) == 3:
        return shape
    if len(shape) == 2:
        return (1, shape[0], shape[1])
    return None


def plan_stages(
    graph: Graph,
    fold: dict | None = None,
    target_fps: float | None = None,
    dsp: int | None = None,
    lanes: int = 64,
    clock_mhz: float = 200.0,
    codebook_bits: int = 8,
) -> CnnPlan:
    """Map a feed-forward graph (Conv/Dense/Pool/Activation/Flatten, residual Add) to stages.

    ``fold``: ``{layer: (pe, simd)}`` fixes a layer's folding; the others are chosen by
    :func:`choose_folding` for ``target_fps`` (at ``clock_mhz``) within ``dsp`` multiplier
    lanes (fixed-point layers) and ``lanes`` lanes in all.
    """
    fold = dict(fold or {})
    nodes = graph.nodes
    inp = nodes[0]
    byname = {n.name: n for n in nodes}
    for k, v in fold.items():
        if k not in byname:
            raise HlsgenError(f"--fold names layer '{k}', which the model does not have", layer=k)
        if byname[k].op not in ("Conv", "Dense"):
            raise _fail(byname[k], "--fold applies to Conv and Dense layers only")
        if len(v) != 2 or min(v) < 1:
            raise _fail(byname[k], f"--fold {k}={v}: give PE,SIMD as two positive integers")
    if dsp is not None and dsp < 0:
        raise HlsgenError(f"--dsp {dsp}: give a budget of 0 or more multiplier lanes")
    if lanes < 1:
        raise HlsgenError(f"--lanes {lanes}: give at least 1")
    if target_fps is not None and target_fps <= 0:
        raise HlsgenError(f"--fps {target_fps}: give a positive frame rate")
    users = {n.name: [m for m in nodes if n.name in m.inputs] for n in nodes}
    for n in nodes[1:]:
        if n.op not in ("Conv", "Dense", "Pool", "Activation", "Reshape", "Add"):
            raise _fail(
                n,
                f"the streaming CNN engine does not build {n.op} (Conv, Dense, Pool, Activation, Flatten, Add)",
            )
    if graph.output != nodes[-1].name or users[nodes[-1].name]:
        raise _fail(nodes[-1], "the engine streams the last layer's output only")
    geo = _spatial(inp.spec.shape)
    if geo is None:
        if len(inp.spec.shape) != 1:
            raise _fail(inp, f"input shape {inp.spec.shape} cannot be streamed (1-D vector, [L, C] or [H, W, C])")
        geo = (1, 1, inp.spec.shape[0])

    def geo_of(shape):
        return _spatial(shape) or (1, 1, shape[0])

    # first pass: the MVU layers, their item counts and the window floor (cycles/frame)
    layers = []
    for n in nodes[1:]:
        if n.op in ("Conv", "Dense"):
            h, wd, _ = geo_of(byname[n.inputs[0]].spec.shape)
            if n.op == "Conv":
                oh, ow, _ = geo_of(n.spec.shape)
                pairs = n.pad_pairs((h, wd) if n.rank == 2 else (wd,))
                ph = h + sum(pairs[0]) if n.rank == 2 else 1
                pw = wd + sum(pairs[-1])
                kshape = n.kernel.raw.shape[: n.rank]
                kh, kw = kshape if n.rank == 2 else (1, kshape[0])
                sh, sw = n.strides if n.rank == 2 else (1, n.strides[0])
                pt = pairs[0][0] if n.rank == 2 else 0
                hh = h if n.rank == 2 else 1
                r0, c0, mr, mc = walk(
                    window_ends(ph, kh, sh, oh), window_ends(pw, kw, sw, ow), pt, pairs[-1][0], hh, wd
                )
                layers.append((n, oh * ow, (ph - r0 - mr) * (pw - c0 - mc)))  # the positions walked
            else:
                layers.append((n, h * wd, 0))
        elif n.op == "Reshape":
            if len(n.spec.shape) != 1 and math.prod(n.spec.shape[:-1]) != 1:
                raise _fail(n, f"Reshape to {n.spec.shape} cannot be streamed (Flatten to a vector only)")
    budget_notes: list = []
    folding = choose_folding(layers, fold, target_fps, dsp, lanes, clock_mhz, budget_notes)

    stages: list[Stage] = []
    streams: dict = {}  # IR node -> {"srcs": [(stage, port)] still to hand out, "w", "spec", "bip"}

    def emit(node_name, src, w, spec, bip):
        """The stream of an IR node leaves ``src``; a node with k > 1 users gets a chain of
        k - 1 two-way forks (fork i feeds user i and the next fork; the last, two users)."""
        srcs = []
        for i in range(len(users[node_name]) - 1):
            h, wd, c = geo_of(spec.shape)
            items = h * wd
            name = f"{src[0]}_fork" if i == 0 else f"{srcs[0][0]}{i}"
            dup = Stage(name, "dup", [node_name], c, w, c, w, items, items, DupParams(), [src])
            stages.append(dup)
            srcs.append((dup.name, 0))
            src = (dup.name, 1)
        srcs.append(src)
        streams[node_name] = {"srcs": srcs, "w": w, "spec": spec, "bip": bip}

    def take(node_name):
        st = streams[node_name]
        return st["srcs"].pop(0), st["w"], st["spec"], st["bip"]

    h, wd, c = geo
    x_w = _width(inp.spec)
    stages.append(Stage("s_in", "gather", [inp.name], 1, x_w, c, x_w, h * wd * c, h * wd, GatherParams(c)))
    emit(inp.name, ("s_in", 0), x_w, inp.spec, None)
    fused = set()
    for k, n in enumerate(nodes[1:], 1):
        if n.name in fused:
            continue
        sname = f"s{k}_{ident(n.name)}"
        if n.op == "Add":
            (sa_src, wa, spa, _), (sb_src, wb, spb, _) = take(n.inputs[0]), take(n.inputs[1])
            h, wd, c = geo_of(n.spec.shape)
            f = n.spec.type.frac
            ow_ = _width(n.spec)
            p = AddParams(c, wa, wb, f - spa.type.frac, f - spb.type.frac)
            st = Stage(sname, "add", [n.name], c, max(wa, wb), c, ow_, h * wd, h * wd, p, [sa_src, sb_src])
            stages.append(st)
            emit(n.name, (sname, 0), ow_, n.spec, None)
            continue
        src, x_w, spec, bip = take(n.inputs[0])
        h, wd, c = geo_of(spec.shape)
        if n.op in ("Conv", "Dense"):
            act = None
            us = users[n.name]
            if len(us) == 1 and us[0].op == "Activation":
                act = _act_for(us[0], n.spec, _width(n.spec), f"{sname}_act")
                fused.add(us[0].name)
            items = h * wd
            x_bip = bip
            if n.op == "Conv":
                kshape = n.kernel.raw.shape[: n.rank]
                kh, kw = kshape if n.rank == 2 else (1, kshape[0])
                sh_, sw_ = n.strides if n.rank == 2 else (1, n.strides[0])
                oh, ow, _ = _spatial(n.spec.shape)
                if kh > h or kw > wd:
                    raise _fail(n, f"kernel {kh}x{kw} is larger than its {h}x{wd} input")
                pairs = n.pad_pairs((h, wd) if n.rank == 2 else (wd,))
                pt, pb = pairs[0] if n.rank == 2 else (0, 0)
                pl, pr = pairs[-1]
                if pt or pb or pl or pr:
                    x_bip = None  # padding brings zeros
                if not (kh == kw == 1 and sh_ == sw_ == 1):
                    win = _window(f"{sname}_win", n.name, h, wd, c, x_w, kh, kw, sh_, sw_, pt, pl, pb, pr, oh, ow)
                    win.srcs = [src]
                    stages.append(win)
                    src = (win.name, 0)
                items = oh * ow
            pe, simd = folding[n.name]
            st = plan_mvu(sname, n, spec, x_w, pe, simd, act, items, x_bip, codebook_bits)
            st.srcs = [src]
            stages.append(st)
            out_node = us[0] if act is not None else n
            obip = bipolar(out_node.step) if act is not None and act.mode == "step" else None
            emit(out_node.name, (sname, 0), st.out_width, out_node.spec, obip)
        elif n.op == "Pool":
            ow_ = _width(n.spec)
            if n.global_:
                st = Stage(sname, "gpool", [n.name], c, x_w, c, ow_, h * wd, 1, GpoolParams(n.mode, h * wd), [src])
                stages.append(st)
            else:
                ps = tuple(n.pool_size) if len(n.pool_size) == 2 else (1, n.pool_size[0])
                ss = tuple(n.strides) if len(n.strides) == 2 else (1, n.strides[0])
                oh, ow, _ = _spatial(n.spec.shape)
                if ps[0] > h or ps[1] > wd:
                    raise _fail(n, f"pool window {ps[0]}x{ps[1]} is larger than its {h}x{wd} input")
                win = _window(f"{sname}_win", n.name, h, wd, c, x_w, ps[0], ps[1], ss[0], ss[1], 0, 0, 0, 0, oh, ow)
                win.srcs = [src]
                stages.append(win)
                kk = ps[0] * ps[1]
                p = ReduceParams(n.mode, kk, c, 1)
                stages.append(
                    Stage(sname, "reduce", [n.name], kk * c, x_w, c, ow_, oh * ow, oh * ow, p, [(win.name, 0)])
                )
            emit(n.name, (sname, 0), ow_, n.spec, bip if n.mode == "max" else None)
        elif n.op == "Activation":
            act = _act_for(n, spec, x_w, f"{sname}")
            p = ActParams(act, c, act.latency + 1)
            stages.append(Stage(sname, "act", [n.name], c, x_w, c, act.out_width, h * wd, h * wd, p, [src]))
            emit(n.name, (sname, 0), act.out_width, n.spec, bipolar(n.step) if n.function == "step" else None)
        elif n.op == "Reshape":
            if h * wd > 1:
                p = GatherParams(h * wd)
                stages.append(Stage(sname, "gather", [n.name], c, x_w, c * h * wd, x_w, h * wd, 1, p, [src]))
                src = (sname, 0)
            emit(n.name, src, x_w, n.spec, bip)
    last = nodes[-1]
    src, x_w, spec, _ = take(last.name)
    h, wd, c = geo_of(spec.shape)
    stages.append(Stage("s_out", "p2s", [last.name], c, x_w, 1, x_w, h * wd, h * wd * c, P2sParams(c), [src]))
    # FIFOs on every link but a window generator's output (a window is wide; its consumer
    # takes it at once) and the input's: sized from the cycle model so that the layers
    # overlap, and a branch that waits for the other (a residual) holds what it must
    byname_st = {st.name: st for st in stages}
    linked = []
    for st in stages:
        for port, (prod, pport) in enumerate(st.srcs):
            a = byname_st[prod]
            if a.kind == "window" or a.name == "s_in":
                continue
            q = Stage(
                f"{st.name}_q{port}",
                "fifo",
                [],
                a.out_elems,
                a.out_width,
                a.out_elems,
                a.out_width,
                a.items_out,
                a.items_out,
                FifoParams(2),
                [(prod, pport)],
            )
            linked.append(q)
            st.srcs[port] = (q.name, 0)
        linked.append(st)
    stages = linked
    name = graph.meta.get("name") or Path(str(graph.meta.get("source") or "model")).stem
    # the FIFOs' depths are set after planning, from the cycle model (engine.plan_cnn)
    plan = CnnPlan(ident(name), stages, tuple(geo), _width(inp.spec), h * wd * c, x_w, clock_mhz)
    plan.notes.extend(budget_notes)
    return plan


def _window(name, layer, h, w, c, ew, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow) -> Stage:
    ph, pw = h + pt + pb, w + pl + pr
    rowe, cole = window_ends(ph, kh, sh, oh), window_ends(pw, kw, sw, ow)
    p = WindowParams(
        h=h,
        w=w,
        c=c,
        kh=kh,
        kw=kw,
        sh=sh,
        sw=sw,
        pt=pt,
        pl=pl,
        ph=ph,
        pw=pw,
        oh=oh,
        ow=ow,
        rowe=rowe,
        cole=cole,
    )
    p.r0, p.c0, p.mr, p.mc = walk(rowe, cole, pt, pl, h, w)
    return Stage(name, "window", [layer], c, ew, kh * kw * c, ew, h * w, oh * ow, p)

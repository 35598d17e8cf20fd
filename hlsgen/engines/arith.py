"""Hardware arithmetic both engines share: field widths, stream word widths, step tables.

A step table realises an exact step function (an activation, a quantizer, a batch norm folded
into thresholds) as a pipelined binary search over thresholds (``hw/hg_step.v``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType
from ..ir.tensors import StepFunction


def axis_bits(width: int) -> int:
    """AXI4-Stream tdata width of a field: ``width`` rounded up to whole bytes."""
    return 8 * -(-width // 8)


def signed_bits(lo: int, hi: int) -> int:
    """Width of the smallest two's complement field that holds lo..hi."""
    lo, hi = int(lo), int(hi)
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


def ubits(n: int) -> int:
    """Bits of an unsigned counter that holds 0..n (at least 1)."""
    return max(1, int(n).bit_length())


@dataclass
class TablePlan:
    """A step function realised by a pipelined binary search over thresholds."""

    name: str
    in_width: int  # signed width of the input
    out_width: int  # width of the output field (signed when out_signed)
    out_signed: bool
    levels: int  # binary-search stages: 2**levels - 1 thresholds per channel
    thresholds: np.ndarray  # [C, 2**levels - 1], clipped into [in_lo, in_hi + 1]
    values: np.ndarray  # [C, 2**levels]

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]

    @property
    def latency(self) -> int:
        return self.levels + 1


def plan_table(name: str, fn: StepFunction, in_lo: int, in_hi: int, levels: int | None = None) -> TablePlan:
    """Thresholds of ``fn`` restricted to inputs in [in_lo, in_hi] (exact on that range)."""
    in_w = signed_bits(in_lo, in_hi)
    # Thresholds outside the input range are equivalent to in_lo (always passed) or
    # in_hi + 1 (never passed); drop duplicates that can never matter.
    rows_t, rows_v = [], []
    for c in range(fn.channels):
        b = np.clip(fn.breaks[c], in_lo, in_hi + 1)
        v = fn.values[c]
        # value at x = v[count(b <= x)]; remove thresholds equal to in_lo by folding them into the base
        k0 = int(np.count_nonzero(b <= in_lo))
        keep_b = b[k0:]
        keep_v = v[k0:]
        keep_v = keep_v[: np.count_nonzero(keep_b <= in_hi) + 1]
        keep_b = keep_b[: keep_v.size - 1]
        rows_t.append(keep_b)
        rows_v.append(keep_v)
    need = max(len(t) for t in rows_t)
    lv = max(0, int(need).bit_length()) if need else 0
    while (1 << lv) - 1 < need:
        lv += 1
    lv = max(lv, 1, levels or 0)
    n = (1 << lv) - 1
    T = np.full((fn.channels, n), in_hi + 1, dtype=np.int64)
    V = np.zeros((fn.channels, n + 1), dtype=np.int64)
    for c, (t, v) in enumerate(zip(rows_t, rows_v, strict=True)):
        T[c, : len(t)] = t
        V[c, : len(v)] = v
        V[c, len(v) :] = v[-1]
    ot = fn.out_type
    # outputs are carried signed (an unsigned type gains a zero sign bit)
    return TablePlan(name, in_w + 1, ot.width + (0 if ot.signed else 1), True, lv, T, V)


@dataclass(frozen=True)
class Requant:
    """Requantization of a signed fixed-point lane value, as ``hw/hg_requant.v`` does it:
    ``y = overflow(round(x * 2^-shift))`` in ``dst``'s rounding and overflow modes, after an
    optional ReLU.  ``src`` is the value's type as the lane carries it (signed)."""

    src: FixedType
    dst: FixedType
    relu: bool = False

    @property
    def shift(self) -> int:
        return self.src.frac - self.dst.frac

    @property
    def in_width(self) -> int:
        return self.src.width

    @property
    def out_width(self) -> int:
        return self.dst.width

    @property
    def out_signed(self) -> bool:
        return self.dst.signed

    @property
    def rounding(self) -> str:
        return self.dst.rounding

    @property
    def overflow(self) -> str:
        return self.dst.overflow

    def hw(self) -> dict:
        """hg_requant's parameters: SHIFT, OSIGNED, RND, OVF (and RELU where a lane has one)."""
        return {
            "shift": self.shift,
            "osigned": int(self.dst.signed),
            "rnd": ROUNDING_MODES.index(self.dst.rounding),
            "ovf": OVERFLOW_MODES.index(self.dst.overflow),
            "relu": int(self.relu),
        }


#: widest input range :func:`step_as_requant` compares point by point
MAX_STEP_DOMAIN = 1 << 22


def step_as_requant(fn: StepFunction, lo: int, hi: int) -> tuple[FixedType, bool] | None:
    """The requantization equal to the step function ``fn`` on every raw input in [lo, hi], as
    ``(dst, relu)``: a ReLU (or not), then the rounding and overflow of ``dst`` (a type of
    ``fn``'s output width and fraction, in any rounding and overflow mode), or None.

    A QKeras QActivation (quantized_bits, quantized_relu) arrives as a step function tabulated
    from QKeras itself; where it is in fact a requantization, an engine that applies
    requantizations can take it.  The check is exhaustive over the range, so the result is
    exact; ranges wider than :data:`MAX_STEP_DOMAIN` are not tried."""
    if hi < lo or hi - lo >= MAX_STEP_DOMAIN:
        return None
    if fn.channels > 1 and not (np.all(fn.breaks == fn.breaks[0]) and np.all(fn.values == fn.values[0])):
        return None
    src, ot = fn.in_type, fn.out_type
    x = np.arange(lo, hi + 1, dtype=np.int64)
    want = fn(x) if fn.channels == 1 else fn(x[:, None].repeat(fn.channels, axis=1))[:, 0]
    if src.frac < ot.frac:
        return None  # the output grid is finer than the input's: not a requantization
    for relu in (False, True):
        xin = np.maximum(x, 0) if relu else x
        for ovf in OVERFLOW_MODES:
            for rnd in ("RND_CONV", "RND", "TRN", "RND_ZERO", "RND_INF", "RND_MIN_INF", "TRN_ZERO"):
                dst = FixedType(ot.width, ot.integer, ot.signed, rnd, ovf)
                if np.array_equal(dst.requantize(xin, src), want):
                    return dst, relu
    return None


def lane_type(width: int, frac: int) -> FixedType:
    """The signed type of a ``width``-bit lane holding values with ``frac`` fraction bits."""
    return FixedType(width, width - frac, True)


def exact_type(lo: int, hi: int, frac: int) -> FixedType:
    """The narrowest signed type holding raw values lo..hi (and 0) with ``frac`` fraction bits."""
    return lane_type(signed_bits(min(lo, 0), max(hi, 0)), frac)


def shared_codebook(w: np.ndarray, width: int, words: int, max_bits: int, zero: bool = False):
    """The codebook of weights that are shared (k-means, Deep Compression): zero first when a
    weight is zero (or ``zero``: the LSTM's fillers), then the distinct values, sorted (so
    an all-zero word of codes means zero weights).

    Returned when an index takes at most ``max_bits`` and fewer bits than a ``width``-bit
    weight, and the bits it saves in a memory of ``words`` weights (a lane's, a PE's) exceed
    that memory's copy of the codebook; else None (the weights are stored as they are).
    """
    values = np.unique(w[w != 0])
    book = np.concatenate([[0] if zero or (w == 0).any() else [], values]).astype(np.int64)
    bits = ubits(len(book) - 1)
    if max_bits <= 0 or len(values) == 0 or bits > max_bits or bits >= width:
        return None
    if words * (width - bits) <= len(book) * width:
        return None
    return book


def book_codes(book: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The index in ``book`` of every weight of ``w`` (each one is in it)."""
    order = np.argsort(book, kind="stable")
    return order[np.searchsorted(book[order], w)].astype(np.int64)

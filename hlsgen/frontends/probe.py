"""Exact tables of element-wise functions, read off the source framework itself.

DESIGN.md asks that a non-linear function be an exact function of its quantized
input, evaluated the way the source framework evaluates it.  Instead of
re-implementing every quantizer's formula, :func:`tabulate` calls the framework's
own function (a QKeras quantizer, a Keras activation, a batch-norm followed by a
quantizer, ...) on every representable input -- or, for wide inputs, bisects the
input range for the points where the output changes -- and records the result as
a :class:`~hlsgen.ir.StepFunction`.  Frontends pass a numpy-in/numpy-out callable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..fixed import FixedType
from ..ir.tensors import StepFunction, TensorSpec, dyadic_frac

#: evaluate every input value when (domain size x channels) is at most this
BRUTE_FORCE_LIMIT = 1 << 22
#: refuse tables with more pieces than this per channel
MAX_PIECES = 1 << 17
#: widest output grid accepted: a wider one is a float result (float32 carries 24 bits)
MAX_OUT_WIDTH = 24
#: random points per channel used to confirm a bisected table
VERIFY_POINTS = 1 << 14


class ProbeError(ValueError):
    """The function cannot be represented exactly; the message says why."""


def tabulate(
    fn: Callable[[np.ndarray], np.ndarray],
    spec: TensorSpec,
    channels: int = 1,
    source: str = "",
    max_frac: int = 40,
    float_dtype=np.float32,
) -> StepFunction:
    """Table of ``fn`` over every raw input of ``spec`` (per channel when channels > 1).

    ``fn`` receives float values shaped [N, channels] (in ``float_dtype``) and returns
    values of the same shape.  Its outputs must lie on a power-of-two grid.
    """
    lo, hi, frac = int(spec.lo), int(spec.hi), spec.type.frac
    n = hi - lo + 1

    def evaluate(raw: np.ndarray) -> np.ndarray:
        # raw: int64 [M, channels] -> float64 outputs
        x = np.ldexp(raw.astype(np.float64), -frac).astype(float_dtype)
        y = np.asarray(fn(x), dtype=np.float64)
        if y.shape != raw.shape:
            raise ProbeError(f"function returned shape {y.shape} for input {raw.shape}")
        return y

    if n * channels <= BRUTE_FORCE_LIMIT:
        raw = np.arange(lo, hi + 1, dtype=np.int64)
        ys = []
        for start in range(0, n, max(1, (1 << 20) // channels)):
            chunk = raw[start : start + max(1, (1 << 20) // channels)]
            ys.append(evaluate(np.repeat(chunk[:, None], channels, axis=1)))
        y = np.concatenate(ys, axis=0)  # [n, C]
        breaks, values = [], []
        for c in range(channels):
            col = y[:, c]
            change = np.nonzero(col[1:] != col[:-1])[0] + 1
            breaks.append(raw[change])
            values.append(np.concatenate([col[:1], col[change]]))
        exhaustive = True
    else:
        breaks, values = _bisect(evaluate, lo, hi, channels)
        exhaustive = False

    pieces = max(len(b) for b in breaks) + 1
    if pieces > MAX_PIECES:
        raise ProbeError(
            f"the function has {pieces} distinct pieces; a table this large is not sensible "
            "(quantize its output to fewer bits)"
        )
    allv = np.concatenate(values)
    if not np.all(np.isfinite(allv)):
        raise ProbeError("the function returns NaN or infinity on some representable input")
    ofrac = dyadic_frac(allv, max_frac)
    if ofrac is None:
        raise ProbeError("its output is not on a fixed-point grid (a float result: add a quantizer)")
    raws = [np.ldexp(v, ofrac).astype(np.int64) for v in values]
    olo = int(min(r.min() for r in raws))
    ohi = int(max(r.max() for r in raws))
    out_type = FixedType.for_range(min(olo, 0), max(ohi, 0), ofrac)
    if out_type.width > MAX_OUT_WIDTH:
        raise ProbeError(
            f"its output is not on a fixed-point grid (it would need {out_type.width} bits: a float "
            "result; add a quantizer)"
        )
    B = np.full((channels, pieces - 1), spec.type.max_raw + 1 if hi < spec.type.max_raw + 1 else hi + 1, dtype=np.int64)
    V = np.zeros((channels, pieces), dtype=np.int64)
    for c in range(channels):
        k = len(breaks[c])
        B[c, :k] = breaks[c]
        V[c, : k + 1] = raws[c]
        V[c, k + 1 :] = raws[c][-1]
    in_type = spec.type
    step = StepFunction(in_type, out_type, B, V, source)
    if not exhaustive:
        _verify(step, evaluate, lo, hi, channels, ofrac)
    return step


def _bisect(evaluate, lo, hi, channels):
    """Breakpoints of a monotone piecewise-constant function by interval halving."""
    ends = evaluate(np.array([[lo] * channels, [hi] * channels], dtype=np.int64))
    breaks = [[] for _ in range(channels)]
    # active intervals per channel: (a, b, f(a), f(b)) with f(a) != f(b)
    act = [[(lo, hi, ends[0, c], ends[1, c])] if ends[0, c] != ends[1, c] else [] for c in range(channels)]
    for _ in range(200):
        if not any(act):
            break
        width = max(len(a) for a in act)
        mids = np.full((width, channels), lo, dtype=np.int64)
        for c in range(channels):
            for k, (a, b, _, _) in enumerate(act[c]):
                mids[k, c] = (a + b) // 2
        fm = evaluate(mids)
        new = [[] for _ in range(channels)]
        for c in range(channels):
            for k, (a, b, fa, fb) in enumerate(act[c]):
                if b - a == 1:
                    breaks[c].append((b, fb))
                    continue
                m, f = int(mids[k, c]), fm[k, c]
                if fa != f:
                    new[c].append((a, m, fa, f))
                if f != fb:
                    new[c].append((m, b, f, fb))
                if len(new[c]) > MAX_PIECES:
                    raise ProbeError("the function has too many pieces to tabulate")
        act = new
    out_b, out_v = [], []
    for c in range(channels):
        bs = sorted(breaks[c])
        out_b.append(np.array([b for b, _ in bs], dtype=np.int64))
        out_v.append(np.array([ends[0, c]] + [v for _, v in bs], dtype=np.float64))
    return out_b, out_v


def _verify(step: StepFunction, evaluate, lo, hi, channels, ofrac):
    """Check a bisected table on random inputs and next to every breakpoint."""
    rng = np.random.default_rng(0)
    pts = [rng.integers(lo, hi, size=VERIFY_POINTS, endpoint=True)]
    b = step.breaks[step.breaks <= hi]
    pts += [b, np.maximum(b - 1, lo)]
    raw = np.unique(np.concatenate(pts))
    y = evaluate(np.repeat(raw[:, None], channels, axis=1))
    want = np.ldexp(y, ofrac)
    got = np.stack(
        [step.values[c][np.searchsorted(step.breaks[c], raw, side="right")] for c in range(channels)], axis=1
    )
    if not np.array_equal(want, got.astype(np.float64)):
        raise ProbeError(
            "the function is not monotone over its (wide) input range, so it cannot be "
            "tabulated by bisection; narrow its input type"
        )

"""QONNX with float scales (Brevitas's default export), computed exactly.

A QONNX ``Quant`` with a float scale ``s`` means ``(q - zp) * s``: the IR holds the integers
``q - zp`` and the tensor's ``scale`` says what they are worth.  A Conv / MatMul / Gemm of such
tensors is an exact integer accumulator ``acc``, worth ``acc * s_x * s_w[c]``; the bias and the
element-wise constants that follow (Add, Sub, Mul, Relu, Clip) and the next ``Quant`` are then
evaluated in exact rational arithmetic, as the QONNX definition states them (FINN's
thresholds come from the same arithmetic).  Every float32 constant is a dyadic rational
``m * 2**e``, so the evaluation is done on Python integers ``N * 2**E``; only the final division
by the output scale makes a fraction, rounded exactly with integer arithmetic.

Runtimes that evaluate the same graph in float32 (QONNX's executor, ONNX Runtime, PyTorch) round
on the way and disagree now and then; the converter measures and reports that disagreement.
"""

from __future__ import annotations

import numpy as np


def dyadic(x) -> tuple[np.ndarray, np.ndarray]:
    """Integer mantissas and exponents: x = m * 2**e exactly (float32 / float64 input)."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    ms, es = [], []
    for v in flat.tolist():
        n, d = float(v).as_integer_ratio()
        ms.append(n)
        es.append(-(d.bit_length() - 1))
    return np.array(ms, dtype=object), np.array(es, dtype=np.int64)


class Dyadic:
    """Values ``N * 2**E`` per element of an [M, C] batch: N Python integers, E one exponent."""

    def __init__(self, n, e: int):
        self.n = n
        self.e = int(e)

    def rescaled(self, e: int) -> Dyadic:
        """The same values at a lower exponent."""
        if e > self.e:
            raise AssertionError("rescaling up would lose bits")
        return Dyadic(self.n * (1 << (self.e - e)), e)

    @staticmethod
    def const(c, channels: int) -> Dyadic:
        """A per-tensor or per-channel constant as a [1, C] Dyadic."""
        m, e = dyadic(c)
        if m.size == 1:
            m, e = np.repeat(m, channels), np.repeat(e, channels)
        lo = int(e.min())
        n = np.array([int(mi) << int(ei - lo) for mi, ei in zip(m, e, strict=True)], dtype=object)
        return Dyadic(n[None, :], lo)

    def add(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(self.rescaled(e).n + other.rescaled(e).n, e)

    def mul(self, other: Dyadic) -> Dyadic:
        return Dyadic(self.n * other.n, self.e + other.e)

    def maximum(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(np.maximum(self.rescaled(e).n, other.rescaled(e).n), e)

    def minimum(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(np.minimum(self.rescaled(e).n, other.rescaled(e).n), e)

    def ratio(self, scale: float) -> tuple[np.ndarray, int]:
        """(P, D): the values divided by ``scale`` (> 0) as integer fractions P / D."""
        (m,), (e,) = dyadic(scale)
        k = self.e - int(e)
        if k >= 0:
            return self.n * (1 << k), int(m)
        return self.n, int(m) << -k

    def to_float(self) -> np.ndarray:
        """Nearest float64 of every value (Python's exact int-to-float division)."""
        f = np.vectorize(lambda v: float(v) if self.e == 0 else _scale(v, self.e), otypes=[np.float64])
        return f(self.n)


def _scale(v: int, e: int) -> float:
    from fractions import Fraction

    return float(Fraction(v) * Fraction(2) ** e)


def round_div(p, d: int, mode: str):
    """round(p / d) for integer arrays p and an integer d > 0, in a QONNX rounding mode."""
    fl = p // d
    r = p - fl * d
    two_r = 2 * r
    pos = (p >= 0).astype(bool)
    gt, eq = (two_r > d).astype(bool), (two_r == d).astype(bool)
    frac = (r > 0).astype(bool)
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        odd = (fl % 2 != 0).astype(bool)
        up = gt | (eq & odd)
    elif mode == "FLOOR":
        up = np.zeros_like(frac)
    elif mode == "CEIL":
        up = frac
    elif mode == "DOWN":
        up = frac & ~pos
    elif mode == "UP":
        up = frac & pos
    elif mode == "HALF_UP":
        up = gt | (eq & pos)
    elif mode == "HALF_DOWN":
        up = gt | (eq & ~pos)
    else:
        raise ValueError(f"rounding_mode '{mode}' is not known")
    return fl + up.astype(np.int64)


def quant_int(v: Dyadic, q: dict):
    """QONNX Quant / BipolarQuant of exact values: the integers q - zp (object array)."""
    if q["op"] == "BipolarQuant":
        return np.where((v.n >= 0).astype(bool), 1, -1).astype(object)
    p, d = v.ratio(q["scale"])
    zp = q["zero_point"]
    if q["bits"] == 1 and q["signed"]:
        return np.where((p + zp * d >= 0).astype(bool), 1, -1).astype(object) - zp
    r = round_div(p + zp * d, d, q["rounding"])
    return np.clip(r, q["qmin"], q["qmax"]) - zp


def evaluate(acc, frac: int, sx: float, sw, ops: list) -> Dyadic:
    """Exact values of the accumulators ``acc`` ([M, C] integers at ``frac`` fractional bits):
    ``acc * 2**-frac * sx * sw[c]``, then the element-wise ``ops`` ((name, [1, C] constants))."""
    channels = acc.shape[1]
    v = Dyadic(np.asarray(acc).astype(object), -frac).mul(Dyadic.const(np.float64(sx), channels))
    v = v.mul(Dyadic.const(sw, channels))
    for name, args in ops:
        if name == "add":
            v = v.add(Dyadic.const(args, channels))
        elif name == "mul":
            v = v.mul(Dyadic.const(args, channels))
        elif name == "relu":
            v = v.maximum(Dyadic.const(np.float64(0), channels))
        elif name == "clip":
            lo, hi = args
            if lo is not None:
                v = v.maximum(Dyadic.const(lo, channels))
            if hi is not None:
                v = v.minimum(Dyadic.const(hi, channels))
        else:
            raise AssertionError(name)
    return v

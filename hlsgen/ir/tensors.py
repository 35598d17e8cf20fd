"""Typed values of the IR: tensor specs, integer weights with sparsity, exact functions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixed import MAX_WIDTH, FixedType


@dataclass(frozen=True)
class TensorSpec:
    """Shape (without batch) and exact fixed-point type of a node's output.

    ``lo``/``hi`` are bounds on the raw integers the tensor can hold; they are at
    least as tight as the type's range and let accumulators be sized from the
    actual weights rather than from the types alone.
    """

    shape: tuple
    type: FixedType
    lo: int
    hi: int

    @classmethod
    def of_type(cls, shape, t: FixedType) -> TensorSpec:
        return cls(tuple(int(s) for s in shape), t, t.min_raw, t.max_raw)

    @classmethod
    def exact(cls, shape, lo: int, hi: int, frac: int) -> TensorSpec:
        """The smallest type holding raw values lo..hi at ``frac`` fractional bits."""
        lo, hi = int(lo), int(hi)
        return cls(tuple(int(s) for s in shape), FixedType.for_range(lo, hi, frac), lo, hi)


@dataclass(eq=False)
class Weight:
    """An integer weight array and its fixed-point type: value = raw * 2**-type.frac.

    ``kind`` names the datapath the values allow: ``fixed`` (multipliers), ``binary``
    (two values of equal magnitude, XNOR-popcount), ``ternary`` ({-a, 0, a}: add/subtract/skip),
    ``po2`` (zero or signed powers of two: shifts).  Sparsity (zeros) is first-class:
    :attr:`mask`, :attr:`density`, :meth:`density_per_axis`.
    """

    raw: np.ndarray
    type: FixedType
    kind: str = "fixed"
    quantizer: str = ""
    extra: dict = field(default_factory=dict)

    KINDS = ("fixed", "binary", "ternary", "po2")

    def __post_init__(self):
        self.raw = np.ascontiguousarray(np.asarray(self.raw, dtype=np.int64))
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown weight kind {self.kind!r}")
        if self.raw.size and not np.all(self.type.contains(self.raw)):
            raise ValueError(f"weight values do not fit {self.type}")

    @classmethod
    def from_values(cls, values, kind: str | None = None, quantizer: str = "", max_frac: int = 48) -> Weight:
        """Exact integer form of float values that lie on a power-of-two grid.

        Raises ``ValueError`` if some value is not a dyadic rational with at most
        ``max_frac`` fractional bits (a float scale, say).
        """
        v = np.asarray(values, dtype=np.float64)
        frac = dyadic_frac(v, max_frac)
        if frac is None:
            raise ValueError("values are not on a power-of-two grid")
        raw = np.ldexp(v, frac).astype(np.int64)
        lo, hi = (int(raw.min()), int(raw.max())) if raw.size else (0, 0)
        t = FixedType.for_range(min(lo, 0), max(hi, 0), frac)
        w = cls(raw, t, "fixed", quantizer)
        w.kind = kind or w.detect_kind()
        return w

    def detect_kind(self) -> str:
        mags = np.unique(np.abs(self.raw[self.raw != 0]))
        if mags.size == 0:
            return "ternary"
        if mags.size == 1:
            return "binary" if np.all(self.raw != 0) else "ternary"
        if np.all((mags & (mags - 1)) == 0):
            return "po2"
        return "fixed"

    @property
    def values(self) -> np.ndarray:
        return self.type.to_float(self.raw)

    @property
    def mask(self) -> np.ndarray:
        return self.raw != 0

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.raw))

    @property
    def density(self) -> float:
        return self.nnz / self.raw.size if self.raw.size else 0.0

    def density_per_axis(self, axis: int) -> np.ndarray:
        """Fraction of non-zeros along every index of ``axis`` (e.g. per output column)."""
        other = tuple(a for a in range(self.raw.ndim) if a != axis % self.raw.ndim)
        return self.mask.mean(axis=other)

    def to_json(self) -> dict:
        return {
            "type": str(self.type),
            "kind": self.kind,
            "quantizer": self.quantizer,
            "shape": list(self.raw.shape),
            "raw": self.raw.ravel().tolist(),
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, d: dict) -> Weight:
        raw = np.array(d["raw"], dtype=np.int64).reshape(d["shape"])
        return cls(raw, FixedType.parse(d["type"]), d["kind"], d.get("quantizer", ""), d.get("extra", {}))


def dyadic_frac(v: np.ndarray, max_frac: int = 48) -> int | None:
    """Smallest F with every ``v * 2**F`` an integer (None if none <= max_frac exists)."""
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        return None
    nz = v[v != 0]
    if nz.size == 0:
        return 0
    # the smallest F for which all scaled values are integral; may be negative
    _, exps = np.frexp(nz)
    mant_bits = 53
    lo = int(-(exps.max()) - 1)
    for f in range(max(lo, -MAX_WIDTH), max_frac + 1):
        s = np.ldexp(nz, f)
        if np.all(s == np.round(s)):
            return f
    del mant_bits
    return None


@dataclass(eq=False)
class StepFunction:
    """An exact function of a quantized input: a piecewise-constant table.

    For channel ``c``, ``y = values[c, k]`` where ``k`` is the number of breakpoints
    ``<= x`` (``breaks[c]`` sorted, raw input integers).  Channels are the last axis
    of the tensor the function is applied to; one row is shared by all channels.
    Unused trailing breakpoints hold ``in_type.max_raw + 1``.  This is how every
    non-linear function is carried (DESIGN.md): y = Q_out(f(x)) for every
    representable x, realised in hardware as thresholds or a ROM.
    """

    in_type: FixedType
    out_type: FixedType
    breaks: np.ndarray  # int64 [C, K]
    values: np.ndarray  # int64 [C, K + 1]
    source: str = ""

    def __post_init__(self):
        self.breaks = np.atleast_2d(np.asarray(self.breaks, dtype=np.int64))
        self.values = np.atleast_2d(np.asarray(self.values, dtype=np.int64))
        if self.values.shape != (self.breaks.shape[0], self.breaks.shape[1] + 1):
            raise ValueError("step function: values must have one more column than breaks")
        if self.breaks.shape[1] and np.any(np.diff(self.breaks, axis=1) < 0):
            raise ValueError("step function: breakpoints must be sorted")
        if not np.all(self.out_type.contains(self.values)):
            raise ValueError(f"step function: values do not fit {self.out_type}")

    @property
    def channels(self) -> int:
        return self.breaks.shape[0]

    @property
    def monotone(self) -> bool:
        d = np.diff(self.values, axis=1)
        return bool(np.all(d >= 0) or np.all(d <= 0))

    def out_bounds(self) -> tuple[int, int]:
        return int(self.values.min()), int(self.values.max())

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.int64)
        if self.channels == 1:
            k = np.searchsorted(self.breaks[0], raw, side="right")
            return self.values[0][k]
        c = raw.shape[-1]
        if c != self.channels:
            raise ValueError(f"step function has {self.channels} channels, tensor has {c}")
        out = np.empty_like(raw)
        for ch in range(c):
            k = np.searchsorted(self.breaks[ch], raw[..., ch], side="right")
            out[..., ch] = self.values[ch][k]
        return out

    def to_json(self) -> dict:
        return {
            "in_type": str(self.in_type),
            "out_type": str(self.out_type),
            "breaks": self.breaks.tolist(),
            "values": self.values.tolist(),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, d: dict) -> StepFunction:
        return cls(
            FixedType.parse(d["in_type"]),
            FixedType.parse(d["out_type"]),
            np.array(d["breaks"], dtype=np.int64).reshape(len(d["breaks"]), -1),
            np.array(d["values"], dtype=np.int64),
            d.get("source", ""),
        )

"""Fixed-point types with exactly the meaning of ``ap_fixed<W, I, Q, O>`` / ``ap_ufixed``.

A value of a :class:`FixedType` is an integer ``raw`` times ``2**-frac`` where
``frac = width - integer``.  ``frac`` may be negative (I > W) or larger than W
(I < 0), exactly as ``ap_fixed`` allows.  All operations work on numpy ``int64``
arrays of raw values; floats appear only in :meth:`FixedType.quantize`, whose
rounding is nevertheless exact (the float is split into an exact integer part
and an exact remainder before any decision is taken).

Rounding modes (applied when fractional bits are dropped) and overflow modes
(applied to the rounded value when it does not fit) follow the Vitis HLS
user guide; ``tests/test_fixed_apfixed.py`` checks them against ``ap_fixed``
compiled with g++.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["FixedType", "ROUNDING_MODES", "OVERFLOW_MODES", "MAX_WIDTH", "shift_raw"]

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

#: Widest type the int64 reference can hold with room for one addition.
MAX_WIDTH = 62

_TYPE_RE = re.compile(
    r"^\s*(?P<kind>ap_fixed|ap_ufixed|fixed|ufixed|ap_int|ap_uint|int|uint)\s*<\s*(?P<args>[^>]*)>\s*$"
)


@dataclass(frozen=True)
class FixedType:
    """A fixed-point type: ``width`` bits, ``integer`` of them left of the binary point.

    Parameters
    ----------
    width : int
        Total number of bits W (1 .. 62).
    integer : int
        Integer bits I, sign bit included when signed (any integer; I > W or I < 0 allowed).
    signed : bool
        Two's complement when True.
    rounding : str
        One of :data:`ROUNDING_MODES`.
    overflow : str
        One of :data:`OVERFLOW_MODES`.
    """

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self):
        if not isinstance(self.width, (int, np.integer)) or not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"fixed-point width must be 1..{MAX_WIDTH}, got {self.width!r}")
        if self.signed and self.width < 1:
            raise ValueError("a signed type needs at least one bit")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {self.rounding!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"unknown overflow mode {self.overflow!r}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "integer", int(self.integer))
        object.__setattr__(self, "signed", bool(self.signed))

    # ----------------------------------------------------------------- basics
    @property
    def frac(self) -> int:
        """Fractional bits F = W - I (the value of raw 1 is 2**-F)."""
        return self.width - self.integer

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac

    def with_modes(self, rounding: str | None = None, overflow: str | None = None) -> FixedType:
        return FixedType(self.width, self.integer, self.signed, rounding or self.rounding, overflow or self.overflow)

    def __str__(self) -> str:
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.integer)]
        if self.rounding != "TRN" or self.overflow != "WRAP":
            args.append("AP_" + self.rounding)
        if self.overflow != "WRAP":
            args.append("AP_" + self.overflow)
        return f"{kind}<{','.join(args)}>"

    def c_type(self, flavour: str = "ap") -> str:
        """The C++ spelling: ``ap`` (Vitis) or ``ac`` (Intel ``ac_fixed``)."""
        if flavour == "ap":
            return str(self)
        if flavour == "ac":
            q = {
                "TRN": "AC_TRN",
                "TRN_ZERO": "AC_TRN_ZERO",
                "RND": "AC_RND",
                "RND_ZERO": "AC_RND_ZERO",
                "RND_INF": "AC_RND_INF",
                "RND_MIN_INF": "AC_RND_MIN_INF",
                "RND_CONV": "AC_RND_CONV",
            }
            o = {"WRAP": "AC_WRAP", "SAT": "AC_SAT", "SAT_ZERO": "AC_SAT_ZERO", "SAT_SYM": "AC_SAT_SYM"}
            s = "true" if self.signed else "false"
            return f"ac_fixed<{self.width},{self.integer},{s},{q[self.rounding]},{o[self.overflow]}>"
        raise ValueError(f"unknown C flavour {flavour!r}")

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """Parse ``ap_fixed<8,3,AP_RND_CONV,AP_SAT>``, ``ap_ufixed<4,0>``, ``ap_int<8>``, ``fixed<8,3>``."""
        m = _TYPE_RE.match(str(text))
        if not m:
            raise ValueError(f"cannot parse fixed-point type {text!r}")
        kind = m.group("kind")
        args = [a.strip() for a in m.group("args").split(",") if a.strip()]
        signed = not kind.startswith(("ap_u", "u"))
        try:
            if kind in ("ap_int", "ap_uint", "int", "uint"):
                if len(args) != 1:
                    raise ValueError
                w = int(args[0])
                return cls(w, w, signed)
            if len(args) < 2 or len(args) > 5:
                raise ValueError
            w, i = int(args[0]), int(args[1])
        except ValueError:
            raise ValueError(f"cannot parse fixed-point type {text!r}") from None
        rounding, overflow = "TRN", "WRAP"
        for a in args[2:4]:
            a = a.upper().removeprefix("AP_").removeprefix("AC_")
            if a in ROUNDING_MODES:
                rounding = a
            elif a in OVERFLOW_MODES:
                overflow = a
            else:
                raise ValueError(f"unknown rounding/overflow mode {a!r} in {text!r}")
        return cls(w, i, signed, rounding, overflow)

    # ------------------------------------------------------------ conversions
    def to_float(self, raw) -> np.ndarray:
        """Exact float64 values of raw integers (exact while W <= 53)."""
        return np.ldexp(np.asarray(raw, dtype=np.float64), -self.frac)

    def contains(self, raw) -> np.ndarray:
        raw = np.asarray(raw)
        return (raw >= self.min_raw) & (raw <= self.max_raw)

    def quantize(self, x) -> np.ndarray:
        """Raw integers of ``(this type)(x)`` for float input, as ``ap_fixed``'s double constructor.

        Rounding is decided exactly on the binary expansion of the float64 input.
        """
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("cannot quantize NaN or infinity")
        with np.errstate(over="ignore", under="ignore"):
            scaled = np.ldexp(x, self.frac)  # exact unless it over- or underflows (handled below)
        huge = np.abs(scaled) >= 2.0**62
        if np.any(huge):
            # Far outside any representable range; such floats are integers.  WRAP keeps
            # their exact low bits (Python ints), saturation only needs the sign.
            scaled = np.where(huge, np.sign(scaled) * 2.0**62, scaled)
        fl = np.floor(scaled)
        rem = scaled - fl  # exact, in [0, 1)
        exact, half, above = rem == 0, rem == 0.5, rem > 0.5
        # Scaling a subnormal down can underflow (not exact); such a value is a non-zero
        # fraction far below one half: floor -1 (remainder above a half) if negative, else 0.
        with np.errstate(over="ignore", under="ignore"):
            lost = (np.ldexp(scaled, -self.frac) != x) & ~huge
        if np.any(lost):
            neg = x < 0
            fl = np.where(lost, np.where(neg, -1.0, 0.0), fl)
            exact = exact & ~lost
            half = half & ~lost
            above = np.where(lost, neg, above)
        q = _round_int(fl.astype(np.int64), exact, half, above, self.rounding)
        if np.any(huge) and self.overflow == "WRAP":
            m = 1 << self.width
            scale = Fraction(2) ** self.frac
            q[huge] = np.array([math.floor(Fraction(v) * scale) % m for v in x[huge].tolist()], dtype=np.int64)
        return self._overflow(q)

    def requantize(self, raw, src: FixedType) -> np.ndarray:
        """Convert raw values of type ``src`` to this type (rounding, then overflow)."""
        raw = np.asarray(raw, dtype=np.int64)
        shift = src.frac - self.frac
        if shift > 0:
            q = _shift_right_round(raw, shift, self.rounding)
        else:
            q = self._shift_left_bounded(raw, -shift)
        return self._overflow(q)

    def overflows(self, raw, src: FixedType) -> np.ndarray:
        """Where :meth:`requantize` of raw values of ``src`` leaves this type's range (after
        rounding), i.e. where the overflow mode (wrap or saturation) changes the value."""
        raw = np.asarray(raw, dtype=np.int64)
        shift = src.frac - self.frac
        if shift > 0:
            q = _shift_right_round(raw, shift, self.rounding)
            return (q > self.max_raw) | (q < self.min_raw)
        s = -shift  # raw << s fits iff raw lies within the bounds shifted right (exact, no int64 overflow)
        if s >= 63:
            return raw != 0
        hi = self.max_raw >> s
        lo = -((-self.min_raw) >> s)
        return (raw > hi) | (raw < lo)

    def _shift_left_bounded(self, raw: np.ndarray, s: int) -> np.ndarray:
        """``raw << s`` where it matters to this type's overflow mode, without int64 overflow.

        WRAP keeps only the low ``width`` bits, so the high bits of raw are dropped first;
        the saturating modes only need the sign and whether the value fits, so raw is
        clipped to a bound past which the result overflows anyway.
        """
        if s == 0:
            return raw
        w = self.width
        if self.overflow == "WRAP":
            keep = w - s
            if keep <= 0:
                return np.zeros_like(raw)
            return np.mod(raw, np.int64(1 << keep)) << np.int64(s)
        if s > w:
            return np.sign(raw).astype(np.int64) << np.int64(w)
        bound = np.int64((1 << w) >> s) + (0 if s == w else 1)
        return np.clip(raw, -bound, bound) << np.int64(s)

    def _overflow(self, q: np.ndarray) -> np.ndarray:
        lo, hi = self.min_raw, self.max_raw
        over = (q > hi) | (q < lo)
        mode = self.overflow
        if mode == "WRAP":
            m = np.int64(1 << self.width)
            r = np.mod(q, m)
            if self.signed:
                r = np.where(r > hi, r - m, r)
            return r.astype(np.int64)
        if mode == "SAT":
            return np.clip(q, lo, hi).astype(np.int64)
        if mode == "SAT_ZERO":
            return np.where(over, 0, q).astype(np.int64)
        if mode == "SAT_SYM":
            # ap_fixed makes a signed SAT_SYM type symmetric: its most negative code is
            # never produced, even when the value is exactly representable.
            return np.clip(q, -hi if self.signed else lo, hi).astype(np.int64)
        raise AssertionError(mode)

    # -------------------------------------------------------- type derivation
    @classmethod
    def for_range(cls, lo: int, hi: int, frac: int, **modes) -> FixedType:
        """Smallest type holding raw integers lo..hi at ``frac`` fractional bits."""
        lo, hi = int(lo), int(hi)
        signed = lo < 0
        if signed:
            w = max(_bits_signed(lo), _bits_signed(hi))
        else:
            w = max(1, int(hi).bit_length())
        if w > MAX_WIDTH:
            raise OverflowError(f"exact value needs {w} bits, more than the {MAX_WIDTH} the reference supports")
        return cls(w, w - frac, signed, **modes)


def _bits_signed(v: int) -> int:
    v = int(v)
    return (v.bit_length() + 1) if v >= 0 else ((-v - 1).bit_length() + 1)


def shift_raw(raw, left: int) -> np.ndarray:
    """Exact multiply of raw values by ``2**left`` (left >= 0)."""
    raw = np.asarray(raw, dtype=np.int64)
    if left < 0:
        raise ValueError("shift_raw only shifts left; use requantize to drop bits")
    return raw << np.int64(left) if left else raw


def _shift_right_round(raw: np.ndarray, s: int, mode: str) -> np.ndarray:
    """Exact ``round(raw / 2**s)`` with an ap_fixed rounding mode (s >= 1)."""
    if s >= 63:
        # |raw| < 2**61 < 2**(s-1): every value is a fraction below one half in magnitude.
        # Its floor is -1 for negatives (remainder above one half), 0 otherwise.
        fl = np.where(raw < 0, -1, 0).astype(np.int64)
        exact = raw == 0
        return _round_int(fl, exact, np.zeros_like(exact), raw < 0, mode)
    fl = raw >> np.int64(s)  # floor
    rem = raw - (fl << np.int64(s))  # 0 <= rem < 2**s
    h = np.int64(1) << np.int64(s - 1)
    return _round_int(fl, rem == 0, rem == h, rem > h, mode)


def _round_int(fl, exact, half, above, mode):
    """Pick floor or floor+1 given where the dropped fraction lies.

    ``fl`` is the floor; ``exact``: no fraction; ``half``: fraction exactly 1/2;
    ``above``: fraction > 1/2.  The value is negative when ``fl < 0``.
    """
    fl = np.asarray(fl, dtype=np.int64)
    frac_nonzero = ~exact
    neg = fl < 0  # value = fl + fraction; negative iff fl < 0 (fraction < 1)
    if mode == "TRN":
        up = np.zeros_like(frac_nonzero)
    elif mode == "TRN_ZERO":
        up = frac_nonzero & neg
    elif mode == "RND":
        up = half | above
    elif mode == "RND_ZERO":
        up = above | (half & neg)
    elif mode == "RND_MIN_INF":
        up = above
    elif mode == "RND_INF":
        up = above | (half & ~neg)
    elif mode == "RND_CONV":
        up = above | (half & ((fl & 1) == 1))
    else:
        raise AssertionError(mode)
    return fl + up.astype(np.int64)

"""hlsgen.fixed against an independent Fraction formulation and against ap_fixed (g++)."""

from __future__ import annotations

import random
import shutil
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlsgen.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType

from .fixed_oracle import apfixed_convert, fraction_convert

types = st.builds(
    FixedType,
    width=st.integers(1, 40),
    integer=st.integers(-8, 48),
    signed=st.booleans(),
    rounding=st.sampled_from(ROUNDING_MODES),
    overflow=st.sampled_from(OVERFLOW_MODES),
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(dst=types, src=types, data=st.data())
def test_requantize_matches_fraction(dst, src, data):
    raws = data.draw(st.lists(st.integers(src.min_raw, src.max_raw), min_size=1, max_size=20))
    got = dst.requantize(np.array(raws, dtype=np.int64), src)
    want = [
        fraction_convert(
            Fraction(r) / Fraction(2) ** src.frac, dst.width, dst.integer, dst.signed, dst.rounding, dst.overflow
        )
        for r in raws
    ]
    assert got.tolist() == want


@settings(max_examples=400, deadline=None, derandomize=True)
@given(dst=types, src=types, data=st.data())
def test_overflows_matches_fraction(dst, src, data):
    """Where requantize's overflow mode acts: the value rounded at dst's precision, with room
    to spare (Fraction oracle), lies outside dst's range."""
    raws = data.draw(st.lists(st.integers(src.min_raw, src.max_raw), min_size=1, max_size=20))
    got = dst.overflows(np.array(raws, dtype=np.int64), src)
    want = []
    for r in raws:
        v = Fraction(r) / Fraction(2) ** src.frac
        q = fraction_convert(v, dst.width + 200, dst.integer + 200, True, dst.rounding, "SAT")
        want.append(not dst.min_raw <= q <= dst.max_raw)
    assert got.tolist() == want


@settings(max_examples=400, deadline=None, derandomize=True)
@given(dst=types, xs=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20))
def test_quantize_float_matches_fraction(dst, xs):
    got = dst.quantize(np.array(xs))
    want = [fraction_convert(Fraction(x), dst.width, dst.integer, dst.signed, dst.rounding, dst.overflow) for x in xs]
    assert got.tolist() == want


def test_quantize_subnormal_and_huge_floats():
    xs = [-5e-324, 5e-324, -1e-310, 1e300, -1e300, 2.0**70 + 2.0**18]
    for rounding in ROUNDING_MODES:
        for overflow in OVERFLOW_MODES:
            for t in (
                FixedType(1, 2, False, rounding, overflow),
                FixedType(8, 3, True, rounding, overflow),
                FixedType(20, -40, True, rounding, overflow),
            ):
                got = t.quantize(np.array(xs)).tolist()
                want = [fraction_convert(Fraction(x), t.width, t.integer, t.signed, rounding, overflow) for x in xs]
                assert got == want, (t, got, want)


def test_halfway_cases_every_mode():
    # -2.5, -1.5, -0.5, 0.5, 1.5, 2.5 at integer resolution, every rounding mode
    src = FixedType(8, 7)  # one fractional bit
    raws = np.array([-5, -3, -1, 1, 3, 5])
    expect = {
        "TRN": [-3, -2, -1, 0, 1, 2],
        "TRN_ZERO": [-2, -1, 0, 0, 1, 2],
        "RND": [-2, -1, 0, 1, 2, 3],
        "RND_ZERO": [-2, -1, 0, 0, 1, 2],
        "RND_INF": [-3, -2, -1, 1, 2, 3],
        "RND_MIN_INF": [-3, -2, -1, 0, 1, 2],
        "RND_CONV": [-2, -2, 0, 0, 2, 2],
    }
    for mode, want in expect.items():
        assert FixedType(8, 8, rounding=mode).requantize(raws, src).tolist() == want, mode


def test_parse_and_str_roundtrip():
    for text in ["ap_fixed<8,3>", "ap_ufixed<4,0,AP_RND_CONV,AP_SAT>", "ap_fixed<16,6,AP_RND,AP_SAT_SYM>"]:
        t = FixedType.parse(text)
        assert FixedType.parse(str(t)) == t
    assert FixedType.parse("ap_int<8>") == FixedType(8, 8, True)
    with pytest.raises(ValueError):
        FixedType.parse("ap_fixed<8>")
    with pytest.raises(ValueError):
        FixedType.parse("ap_fixed<8,3,AP_BOGUS>")


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_requantize_matches_apfixed(tmp_path):
    rng = random.Random(1234)
    cases = []
    for k in range(140):
        src = FixedType(rng.randint(1, 24), rng.randint(-4, 28), rng.random() < 0.7)
        dst = FixedType(
            rng.randint(1, 20),
            rng.randint(-4, 24),
            rng.random() < 0.7,
            ROUNDING_MODES[k % 7],
            OVERFLOW_MODES[(k // 7) % 4],
        )
        raws = sorted({rng.randint(src.min_raw, src.max_raw) for _ in range(40)} | {src.min_raw, src.max_raw, 0})
        cases.append((dst, src, raws))
    want = apfixed_convert(cases, tmp_path)
    for (dst, src, raws), w in zip(cases, want, strict=False):
        got = dst.requantize(np.array(raws, dtype=np.int64), src).tolist()
        assert got == w, f"{src} -> {dst}"

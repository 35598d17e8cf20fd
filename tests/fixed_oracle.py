"""Independent formulations of ap_fixed semantics used as test oracles.

``fraction_convert`` restates the Vitis HLS rules with Python ``Fraction`` arithmetic,
sharing no code with :mod:`hlsgen.fixed`.  ``apfixed_convert`` compiles a C++ program
against the ``ap_fixed`` headers shipped in the hls4ml package and runs it.
"""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction
from pathlib import Path


def fraction_convert(value: Fraction, width, integer, signed, rounding, overflow) -> int:
    """Raw integer of ap_[u]fixed<width,integer,rounding,overflow>(value)."""
    frac = width - integer
    scaled = value * (Fraction(2) ** frac)
    fl = math.floor(scaled)
    r = scaled - fl
    if r == 0:
        q = fl
    else:
        toward_zero = fl if scaled > 0 else fl + 1
        away = fl + 1 if scaled > 0 else fl
        nearest = fl if r < Fraction(1, 2) else fl + 1
        if rounding == "TRN":
            q = fl
        elif rounding == "TRN_ZERO":
            q = toward_zero
        elif r != Fraction(1, 2):
            q = nearest
        elif rounding == "RND":
            q = fl + 1
        elif rounding == "RND_ZERO":
            q = toward_zero
        elif rounding == "RND_MIN_INF":
            q = fl
        elif rounding == "RND_INF":
            q = away
        elif rounding == "RND_CONV":
            q = fl if fl % 2 == 0 else fl + 1
        else:
            raise ValueError(rounding)
    lo = -(2 ** (width - 1)) if signed else 0
    hi = 2 ** (width - 1) - 1 if signed else 2**width - 1
    if overflow == "SAT_SYM" and signed:
        lo = -hi  # ap_fixed never produces the most negative code of a signed SAT_SYM type
    if lo <= q <= hi:
        return q
    if overflow == "WRAP":
        q %= 2**width
        return q - 2**width if signed and q > hi else q
    if overflow == "SAT":
        return hi if q > hi else lo
    if overflow == "SAT_ZERO":
        return 0
    if overflow == "SAT_SYM":
        if q > hi:
            return hi
        return -hi if signed else lo
    raise ValueError(overflow)


def hls4ml_include_dir() -> Path:
    import hls4ml

    return Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"


def apfixed_convert(cases, workdir: Path):
    """Run conversions through ap_fixed compiled by g++.

    ``cases``: list of (dst, src, raws) where dst/src are FixedType-like objects and
    raws a list of Python ints of the source type.  Returns a list of lists of ints.
    """
    lines = ["#include <cstdio>", '#include "ap_fixed.h"', "int main() {"]
    for dst, src, raws in cases:
        st = f"{'ap_fixed' if src.signed else 'ap_ufixed'}<{src.width},{src.integer}>"
        dt = f"{'ap_fixed' if dst.signed else 'ap_ufixed'}<{dst.width},{dst.integer},AP_{dst.rounding},AP_{dst.overflow}>"
        lines.append("  {")
        lines.append(f"    static const long long r[] = {{{', '.join(f'{v}LL' for v in raws)}}};")
        lines.append(f"    for (unsigned i = 0; i < {len(raws)}; ++i) {{")
        lines.append(f"      {st} s; s.range({src.width - 1}, 0) = ap_int<64>(r[i]);")
        lines.append(f"      {dt} d = s;")
        lines.append(f"      ap_int<{dst.width + 1}> o = {'d.range()' if not dst.signed else 'd.range()'};")
        lines.append(f"      long long v = (long long)(ap_{'int' if dst.signed else 'uint'}<{dst.width}>(d.range()));")
        lines.append('      std::printf("%lld\\n", v); (void)o;')
        lines.append("    }")
        lines.append("  }")
    lines.append("  return 0;\n}")
    src_file = workdir / "conv.cpp"
    exe = workdir / "conv"
    src_file.write_text("\n".join(lines))
    subprocess.run(
        ["g++", "-O0", "-std=c++14", "-w", "-DNDEBUG", f"-I{hls4ml_include_dir()}", str(src_file), "-o", str(exe)],
        check=True,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    vals = [int(v) for v in out]
    res, pos = [], 0
    for _, _, raws in cases:
        res.append(vals[pos : pos + len(raws)])
        pos += len(raws)
    return res

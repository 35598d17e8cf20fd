"""The block RAM rule of ``hlsgen compress --budget`` against Yosys.

Synthesises a read-only memory (``$readmemh`` contents, registered read, as the engines'
weight memories are) of every shape of a grid with Yosys ``synth_xilinx`` and prints the 18 Kb
blocks Yosys used (RAMB18E1 + 2 x RAMB36E1) next to :func:`hlsgen.engines.resources.bram18`.
Exit 1 when any shape differs.  About 10 s per shape:

    python bench/bram_rule.py [--depths 64,256,1024] [--widths 9,36,144]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hlsgen.engines.resources import bram18  # noqa: E402
from hlsgen.synth import yosys_cmd  # noqa: E402
from hlsgen.table import format_table  # noqa: E402

ROM = """module rom(input clk, input [{aw}:0] a, output reg [{w1}:0] q);
reg [{w1}:0] m [0:{d1}];
initial $readmemh("{hex}", m);
always @(posedge clk) q <= m[a];
endmodule
"""


def yosys_blocks(depth: int, width: int, tmp: Path) -> int:
    rng = random.Random(depth * 1000 + width)
    hexf = tmp / f"w_{depth}_{width}.hex"
    hexf.write_text("\n".join(format(rng.getrandbits(width), "x") for _ in range(depth)) + "\n")
    src = tmp / f"rom_{depth}_{width}.v"
    aw = max(1, (depth - 1).bit_length())
    src.write_text(ROM.format(aw=aw - 1, w1=width - 1, d1=depth - 1, hex=hexf.name))
    stat = tmp / f"stat_{depth}_{width}.txt"
    script = f"read_verilog {src.name}; synth_xilinx -top rom; tee -q -o {stat.name} stat"
    subprocess.run([*yosys_cmd(), "-q", "-p", script], cwd=tmp, check=True, capture_output=True)
    text = stat.read_text()

    def count(cell):
        m = re.search(rf"(\d+)\s+{cell}\b", text)
        return int(m.group(1)) if m else 0

    return count("RAMB18E1") + 2 * count("RAMB36E1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", default="64,128,256,512,1024,2048")
    ap.add_argument("--widths", default="4,9,18,36,72,144,400")
    args = ap.parse_args(argv)
    rows, bad = [], 0
    with tempfile.TemporaryDirectory() as t:
        for d in (int(v) for v in args.depths.split(",")):
            for w in (int(v) for v in args.widths.split(",")):
                t0 = time.time()
                got, model = yosys_blocks(d, w, Path(t)), bram18(d, w)
                bad += got != model
                rows.append({"depth": d, "width": w, "Yosys BRAM18": got, "rule": model,
                             "": "" if got == model else "DIFFERS", "s": f"{time.time() - t0:.0f}"})  # fmt: skip
                print(format_table(rows[-1:], list(rows[0])).splitlines()[1], flush=True)
    print(format_table(rows, list(rows[0])))
    print(f"{len(rows) - bad} of {len(rows)} shapes as the rule says")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

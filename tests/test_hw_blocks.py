"""Each hand-written hw/ block on its own, under cocotb + Verilator (tests/hw_blocks_tb.py).

``hg_requant`` against :mod:`hlsgen.fixed` for every rounding and overflow mode, random
widths and shifts, every input code; the stream blocks (``hg_fifo``, ``hg_skid``, ``hg_dup``,
``hg_add``) with cocotbext-axi drivers, random bubbles and back-pressure and a protocol
monitor on every port.  The blocks inside whole engines are covered by the engine tests too.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from hlsgen.assets import hw_file
from hlsgen.fixed import OVERFLOW_MODES, ROUNDING_MODES

pytestmark = pytest.mark.rtl
HERE = Path(__file__).resolve().parent


def _run(tmp_path, top: str, sources: list, test: str, job: dict, parameters: dict | None = None):
    from hlsgen.simulate import verilator_runner

    if str(HERE) not in sys.path:  # the simulator's Python imports hw_blocks_tb from here
        sys.path.insert(0, str(HERE))
    runner = verilator_runner()
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))
    runner.build(
        sources=sources,
        hdl_toplevel=top,
        build_dir=tmp_path / "build",
        build_args=["-Wall", "-Wno-fatal"],
        parameters=parameters or {},
        log_file=tmp_path / "build.log",
    )
    try:
        results = runner.test(
            hdl_toplevel=top,
            test_module="hw_blocks_tb",
            testcase=test,
            build_dir=tmp_path / "build",
            test_dir=tmp_path,
            extra_env={"HLSGEN_BLOCK": str(job_file)},
            log_file=tmp_path / "sim.log",
        )
    except SystemExit:  # the runner exits when a cocotb test fails: show why
        pytest.fail((tmp_path / "sim.log").read_text()[-3000:])
    from cocotb_tools.runner import get_results

    tests, fails = get_results(results)
    assert tests == 1 and fails == 0, (tmp_path / "sim.log").read_text()[-3000:]


def _requant_configs(seed: int, iw: int) -> list[dict]:
    """Every rounding x overflow mode, each with random output widths, shifts and signedness."""
    rng = random.Random(seed)
    out = []
    for rnd in range(len(ROUNDING_MODES)):
        for ovf in range(len(OVERFLOW_MODES)):
            for _ in range(2):
                out.append(
                    {
                        "rnd": rnd,
                        "ovf": ovf,
                        "shift": rng.choice([-2, 0, 1, 2, rng.randrange(3, iw)]),
                        "ow": rng.randrange(2, iw + 2),
                        "osigned": rng.randrange(2),
                        "in_frac": rng.randrange(0, iw),
                    }
                )
    return out


def test_hg_requant_every_mode_equals_fixed(tmp_path):
    iw = 9
    cfgs = _requant_configs(7, iw)
    ports = "".join(f"    output wire [{c['ow'] - 1}:0] y{k},\n" for k, c in enumerate(cfgs))
    insts = "".join(
        f"    hg_requant #(.IW({iw}), .SHIFT({c['shift']}), .OW({c['ow']}), .OSIGNED({c['osigned']}), "
        f".RND({c['rnd']}), .OVF({c['ovf']})) u{k} (.x(x), .y(y{k}));\n"
        for k, c in enumerate(cfgs)
    )
    wrapper = tmp_path / "requant_many.v"
    wrapper.write_text(f"module requant_many (\n{ports}    input wire [{iw - 1}:0] x\n);\n{insts}endmodule\n")
    _run(tmp_path, "requant_many", [hw_file("hg_requant.v"), wrapper], "requant_all", {"iw": iw, "configs": cfgs})


STREAM_CASES = [
    ("hg_fifo", "stream_pass", {"W": 8, "D": 3, "AW": 2, "NW": 2}, {"in_widths": [8]}),
    ("hg_fifo", "stream_pass", {"W": 5, "D": 1, "AW": 1, "NW": 1}, {"in_widths": [5]}),
    ("hg_skid", "stream_pass", {"W": 12}, {"in_widths": [12]}),
    ("hg_dup", "stream_dup", {"W": 6}, {"in_widths": [6]}),
    (
        "hg_add",
        "stream_add",
        {"C": 3, "AW": 5, "BW": 4, "OEW": 7, "SA": 1, "SB": 0},
        {"in_widths": [15, 12], "c": 3, "aw": 5, "bw": 4, "oew": 7, "sa": 1, "sb": 0},
    ),
]


@pytest.mark.parametrize("top,test,params,job", STREAM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STREAM_CASES)])
def test_stream_block(tmp_path, top, test, params, job):
    """At full rate, then with 40% bubbles and 50% stalls: equal, in order, protocol kept."""
    job = {**job, "seed": 11, "items": 300, "runs": [[0.0, 0.0], [0.4, 0.5], [0.1, 0.8]]}
    _run(tmp_path, top, [hw_file(f"{top}.v")], test, job, params)

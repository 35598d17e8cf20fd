"""The hand-off bundle of a project with a hardware engine: RTL, HLS, vendor projects, FuseSoC."""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .backends.hls import write_hls
from .backends.verilog import env, write_rtl
from .engines.lstm.plan import LstmPlan
from .ir import Graph

XILINX_PART = "xc7a100tcsg324-1"
INTEL_DEVICE = "5CSEMA5F31C6"
CLOCK_MHZ = 200.0  # the clock the figures are stated at (Yosys gives no timing)
ENGINE_FILE = "engine.json"


def write_bundle(graph: Graph, plan, out_dir, options: dict) -> dict:
    out = Path(out_dir)
    src, xt, yt = graph.meta.get("source", ""), str(graph.input.type), str(graph.output_spec.type)
    if isinstance(plan, LstmPlan):
        kind = "sparse_lstm"
        rtl = write_rtl(plan, out / "rtl", src, xt, yt)
        hls = write_hls(graph, plan, out / "hls")
        readme_tpl = "bundle_readme.md.j2"
    else:
        from .backends.cnn_hls import write_hls as write_cnn_hls
        from .backends.cnn_verilog import write_rtl as write_cnn_rtl

        kind = "streaming_cnn"
        rtl = write_cnn_rtl(plan, out / "rtl", src, xt, yt)
        hls = write_cnn_hls(graph, plan, out / "hls")
        readme_tpl = "cnn_bundle_readme.md.j2"
    ctx = dict(rtl["context"])
    lib = "".join(ch if ch.isalnum() else "_" for ch in plan.name)
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
        source_name=Path(str(graph.meta.get("source", ""))).name,
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
    engine = {
        "engine": kind,
        "options": options,
        "top": rtl["top"],
        "hls_top": hls["top"],
        "sources": rtl["sources"],
        "memories": rtl["memories"],
        "obw": ctx["obw"],
        "clock_mhz": CLOCK_MHZ,
        "plan": plan.summary(),
    }
    if kind == "sparse_lstm":
        engine["ew_latency"] = plan.ew_latency
    else:
        engine["timing"] = {k: plan.timing[k] for k in ("latency", "period")}
    (out / ENGINE_FILE).write_text(json.dumps(engine, indent=1) + "\n")
    return {"readme": e.get_template(readme_tpl).render(**ctx), "engine": engine}

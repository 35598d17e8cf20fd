"""`hlsgen report OUT`: ``OUT/report/index.html`` with PNG figures, self-contained (no network).

The page holds the layer table, the engine's figures (:meth:`Engine.report_data`: load balance,
sparsity, cycles per step for the LSTM engine; cycles per layer against the bound and FIFO depths
for the CNN engine), the resources of ``synth.json`` and the checks of ``verify.json`` when
they exist.  A few lines of inline script count the figures that loaded (``data-figures-loaded``
on ``<body>``), which the browser test reads.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .errors import HlsgenError
from .project import Project

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("img.figure");
  var ok = 0;
  imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) { ok += 1; } });
  document.body.setAttribute("data-figures", String(imgs.length));
  document.body.setAttribute("data-figures-loaded", String(ok));
});
"""

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }
th { background: #eee; }
img.figure { display: block; margin: 1em 0; max-width: 100%; }
.bad { color: #b00; font-weight: bold; }
"""


def _table(rows: list[dict], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plot(fig_data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    kind = fig_data["kind"]
    if kind == "bar":
        xs = np.arange(len(fig_data["values"]))
        if "values2" in fig_data:
            ax.bar(xs - 0.2, fig_data["values"], width=0.4, label=fig_data["ylabel"])
            ax.bar(xs + 0.2, fig_data["values2"], width=0.4, label=fig_data.get("label2", ""))
            ax.legend()
        else:
            ax.bar(xs, fig_data["values"])
        ax.set_xticks(
            xs, fig_data["labels"], rotation=45 if len(xs) > 8 else 0, ha="right" if len(xs) > 8 else "center"
        )
    elif kind == "image":
        ax.imshow(np.asarray(fig_data["matrix"]), aspect="auto", cmap="gray", interpolation="nearest")
    elif kind == "line":
        ax.plot(fig_data["x"], fig_data["y"], marker="o")
    else:
        raise ValueError(f"unknown figure kind {kind!r}")
    if fig_data.get("ref") is not None:
        ax.axhline(fig_data["ref"], color="C3", linestyle="--", linewidth=1)
    ax.set_title(fig_data["title"].replace("$", r"\$"), fontsize=10)  # names are text, not mathtext
    ax.set_xlabel(fig_data["xlabel"])
    ax.set_ylabel(fig_data["ylabel"])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(proj: Project) -> Path:
    """Write ``OUT/report/index.html`` and its figures; returns the page's path."""
    from .engines import get
    from .verify import default_inputs

    out = proj.output_dir
    if out is None:
        raise HlsgenError("the project has no folder to write the report into")
    rep = out / "report"
    rep.mkdir(exist_ok=True)
    g = proj.graph
    parts = [f"<h1>hlsgen report: {html.escape(Path(str(g.meta.get('source', 'model'))).name)}</h1>"]
    exact = "exact" if g.meta.get("exact", True) else "APPROXIMATE"
    parts.append(f"<p>Source: <code>{html.escape(str(g.meta.get('source')))}</code> ({exact})</p>")
    parts.append("<h2>Layers</h2>" + _table(g.table(), ["name", "op", "shape", "type", "weights"]))
    notes = g.meta.get("notes", []) + [f"approximation: {a}" for a in g.meta.get("approximations", [])]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    figures = 0
    if proj.hardware is not None:
        engine = get(proj.hardware["engine"])
        x, what = default_inputs(proj)
        parts.append(f"<h2>{html.escape(engine.title)}</h2><p>Inputs for the cycle model: {html.escape(what)}.</p>")
        for k, fig_data in enumerate(engine.report_data(g, proj.plan, proj.quantize_input(x))):
            name = f"figure{k + 1}.png"
            _plot(fig_data, rep / name)
            figures += 1
            parts.append(f'<img class="figure" src="{name}" alt="{html.escape(fig_data["title"])}">')
    synth = out / "synth.json"
    if synth.is_file():
        res = json.loads(synth.read_text()).get("resources", {})
        rows = [{"target": t, **r} for t, r in res.items()]
        parts.append("<h2>Resources (Yosys)</h2>" + _table(rows, ["target", "LUT", "FF", "DSP", "BRAM", "LUTRAM"]))
    verify = out / "verify.json"
    if verify.is_file():
        v = json.loads(verify.read_text())
        rows = [
            {"check": c["name"], "vectors": c["vectors"], "values": c["values"], "mismatches": c["mismatches"]}
            for c in v.get("checks", [])
        ]
        status = "equal everywhere" if v.get("equal") else '<span class="bad">DIFFERENT</span>'
        parts.append(
            f"<h2>Verification</h2><p>{status}</p>" + _table(rows, ["check", "vectors", "values", "mismatches"])
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>hlsgen report</title>"
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>"
        + "\n".join(parts)
        + f"<p>{figures} figures.</p></body></html>\n"
    )
    index = rep / "index.html"
    index.write_text(page)
    return index

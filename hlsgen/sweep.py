"""`hlsgen sweep`: a grid of engine options, one Dask task per point, cached by content.

Each point converts the model with its options (plan, cycle model, bundle) and records the
engine's figures; ``synth`` adds Yosys resources (7-series), ``rtl`` an RTL check on that many
inputs.  A point's result is cached under ``OUT/cache/<sha256>.json``, the hash covering the
model file, the config file, the options, the flags and hlsgen's version, so a rerun computes
only what is missing and an interrupted sweep resumes.  A failing point is recorded with its
one-line error and does not stop the sweep.  Results: ``sweep.csv``, ``sweep.json`` and
``pareto.png`` (cycles against a resource, the Pareto front marked).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
from pathlib import Path

from .errors import HlsgenError

#: figures every point records (empty where an engine or a flag does not give them)
COLUMNS = [
    "cycles",
    "latency_cycles",
    "mac_per_cycle_per_pe",
    "lanes_used",
    "LUT",
    "FF",
    "DSP",
    "BRAM",
    "rtl_mismatches",
]


def parse_grid(items: list[str], engine) -> dict[str, list]:
    """``["pe=4,8", "index_bits=4,8"]`` -> {"pe": [4, 8], ...}, every key and value checked."""
    known = {}
    for o in engine.options:
        if o.cli and o.kind is not dict:
            known.update({o.name: o, o.flag[2:]: o, o.flag[2:].replace("-", "_"): o})
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = (t.strip() for t in item.partition("="))
        if not sep or not values:
            raise HlsgenError(f"--grid {item!r}: write KEY=V1,V2,... (for example pe=4,8,16)")
        opt = known.get(key)
        if opt is None:
            names = sorted({o.flag[2:] for o in known.values()})
            raise HlsgenError(
                f"--grid key '{key}' is not an option of the {engine.title} (options: {', '.join(names)})"
            )
        vals = []
        for v in values.split(","):
            try:
                num = float(v) if opt.kind is float else int(v)
            except ValueError:
                raise HlsgenError(f"--grid {opt.name}={v!r}: expected {opt.kind.__name__} values") from None
            vals.append(opt.check(num))
        if opt.name in grid:
            raise HlsgenError(f"--grid key '{opt.name}' is given twice")
        grid[opt.name] = vals
    if not grid:
        raise HlsgenError("--grid needs at least one KEY=V1,V2,... (for example pe=4,8,16)")
    return grid


def grid_points(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def _file_hash(path) -> str:
    if path is None:
        return ""
    from .project import file_sha256

    return file_sha256(path)


def point_key(model: str, config, options: dict, synth: bool, rtl: int) -> str:
    from ._version import __version__

    blob = json.dumps(
        {
            "model": _file_hash(model),
            "config": _file_hash(config),
            "options": options,
            "synth": synth,
            "rtl": rtl,
            "version": __version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def run_point(model: str, config, options: dict, synth: bool, rtl: int) -> dict:
    """One point: convert with ``options`` into a scratch folder and read the figures."""
    from .project import convert

    row = {"options": options, "error": None}
    try:
        with tempfile.TemporaryDirectory(prefix="hlsgen-sweep-") as d:
            proj = convert(model, Path(d) / "p", config, engine=options)
            if proj.hardware is None:
                raise HlsgenError("no hardware for this point: " + "; ".join(proj.graph.meta.get("notes", [])[-1:]))
            row.update(_figures(proj))
            if synth:
                from .synth import run_yosys

                hw = proj.hardware
                res = run_yosys(Path(d) / "p" / "rtl", hw["top"], hw["sources"], "xilinx")
                row.update({k: res.get(k) for k in ("LUT", "FF", "DSP", "BRAM")})
            if rtl:
                from .verify import default_inputs, verify_hardware

                x, what = default_inputs(proj)
                (check,) = verify_hardware(proj, x[:rtl], what, csim=False, rtl=True, rtl_count=rtl)
                row["rtl_mismatches"] = check["mismatches"]
    except HlsgenError as e:
        row["error"] = str(e)
    except Exception as e:  # a point never stops the sweep: record what went wrong
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    return row


def _figures(proj) -> dict:
    hw = proj.hardware
    perf, timing, plan = hw.get("performance") or {}, hw.get("timing") or {}, hw.get("plan") or {}
    return {
        "cycles": perf.get("cycles_per_step", timing.get("period")),
        "latency_cycles": perf.get("latency_cycles", timing.get("latency")),
        "mac_per_cycle_per_pe": perf.get("mac_per_cycle_per_pe"),
        "lanes_used": plan.get("dsp_lanes", plan.get("pe")),
    }


def sweep(
    model: str,
    grid: dict[str, list],
    out,
    config=None,
    synth: bool = False,
    rtl: int = 0,
    workers: int | None = None,
    scheduler: str | None = None,
) -> list[dict]:
    """Run every point of ``grid`` (cached ones are read back) and write the results to ``out``."""
    from .project import resolve_model

    model = resolve_model(model)
    out = Path(out)
    cache = out / "cache"
    points = grid_points(grid)
    keys = [point_key(model, config, p, synth, rtl) for p in points]
    rows: dict[str, dict] = {}
    for k in keys:
        f = cache / f"{k}.json"
        if f.is_file():
            rows[k] = json.loads(f.read_text())
    todo = [(k, p) for k, p in zip(keys, points, strict=True) if k not in rows]
    cache.mkdir(parents=True, exist_ok=True)
    if todo:
        for k, row in _run_on_dask(model, config, todo, synth, rtl, workers, scheduler):
            rows[k] = row
            if row["error"] is None or not row["error"].startswith("lost worker"):
                tmp = cache / f".{k}.tmp"
                tmp.write_text(json.dumps(row, indent=1) + "\n")
                tmp.replace(cache / f"{k}.json")  # a finished point survives an interrupted sweep
    results = [dict(rows[k], cached=k not in dict(todo)) for k in keys]
    _write(out, results, list(grid))
    return results


def _run_on_dask(model, config, todo, synth, rtl, workers, scheduler):
    """Yield (key, row) as points finish."""
    args = [(model, config, p, synth, rtl) for _, p in todo]
    for i, result, err in dask_map(run_point, args, workers, scheduler):
        k, p = todo[i]
        yield k, result if err is None else {"options": p, "error": f"lost worker: {err}"}


def dask_map(fn, args: list[tuple], workers: int | None = None, scheduler: str | None = None):
    """Run ``fn(*a)`` for every ``a`` as one Dask task each, on a LocalCluster with ``workers``
    processes (default: the cores) or on the scheduler at ``scheduler``; yields
    ``(index, result, None)`` or ``(index, None, "error text")`` as tasks finish."""
    import logging
    import os

    from dask.distributed import Client, LocalCluster, as_completed

    for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"):
        logging.getLogger(name).setLevel(logging.ERROR)  # callers report failures themselves
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="20s")
    else:
        n = workers or min(len(args), os.cpu_count() or 1)
        cluster = LocalCluster(
            n_workers=max(1, n),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        futures = {client.submit(fn, *a, pure=False): i for i, a in enumerate(args)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                yield i, fut.result(), None
            except Exception as e:  # the task raised, or its worker died
                yield i, None, f"{type(e).__name__}: {e}"
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write(out: Path, results: list[dict], keys: list[str]) -> None:
    import csv

    (out / "sweep.json").write_text(json.dumps(results, indent=1) + "\n")
    with open(out / "sweep.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*keys, *COLUMNS, "cached", "error"])
        for r in results:
            w.writerow(
                [r["options"].get(k) for k in keys]
                + [r.get(c, "") if r.get(c) is not None else "" for c in COLUMNS]
                + [r.get("cached"), r.get("error") or ""]
            )
    _plot(out / "pareto.png", results, keys)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((a <= x and b <= y) and (a < x or b < y) for j, (a, b) in enumerate(points) if j != i):
            front.append(i)
    return front


def _plot(path: Path, results: list[dict], keys: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r.get("error") is None and r.get("cycles") is not None]
    resource = "LUT" if all(r.get("LUT") is not None for r in ok) and ok else "lanes_used"
    pts = [(float(r["cycles"]), float(r[resource] or 0)) for r in ok]
    front = set(pareto(pts))
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=["C3" if i in front else "C0" for i in range(len(pts))])
        for r, (x, y) in zip(ok, pts, strict=True):
            ax.annotate(",".join(f"{k}={r['options'][k]}" for k in keys), (x, y), fontsize=7, alpha=0.8)
        fp = sorted(pts[i] for i in front)
        ax.plot([p[0] for p in fp], [p[1] for p in fp], "C3--", linewidth=1, label="Pareto front")
        ax.legend()
    ax.set_xlabel("cycles (per step / per frame)")
    ax.set_ylabel("LUT (Yosys, 7-series)" if resource == "LUT" else "multiplier lanes / PEs used")
    ax.set_title(f"{len(ok)} of {len(results)} points")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

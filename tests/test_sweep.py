"""`hlsgen sweep`: points on Dask, cached by content, failures recorded, bad grids refused (issue 16)."""

from __future__ import annotations

import csv
import json
import time

import onnx
import pytest

from hlsgen.sweep import pareto

from .test_cli import assert_one_line_error, main_run
from .test_onnx_frontend import m_conv1d_relu_maxpool_gemm


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "cnn.onnx"  # ONNX: the workers need no TensorFlow
    onnx.save(m_conv1d_relu_maxpool_gemm()[0], p)
    return p


def test_sweep_runs_points_caches_and_records_failures(model, tmp_path):
    out = tmp_path / "sw"
    r = main_run("sweep", model, "--grid", "lanes=2,8,64", "dsp=0,64", "-o", out, "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 6 and {r["lanes"] for r in rows} == {"2", "8", "64"}
    ok = [r for r in rows if not r["error"]]
    failed = [r for r in rows if r["error"]]
    assert ok and all(float(r["cycles"]) > 0 for r in ok)
    assert all("dsp" in r["error"] or "lane" in r["error"] for r in failed)  # recorded, the sweep went on
    # more lanes never cost cycles, at the same dsp
    by = {(r["lanes"], r["dsp"]): float(r["cycles"]) for r in ok}
    assert by[("64", "64")] <= by[("8", "64")] <= by[("2", "64")]
    assert (out / "pareto.png").stat().st_size > 1000 and json.loads((out / "sweep.json").read_text())
    t = time.monotonic()
    r = main_run("sweep", model, "--grid", "lanes=2,8,64", "--grid", "dsp=0,64", "-o", out)
    assert r.returncode == 0 and "6 points (6 from the cache)" in r.stdout, r.stdout
    assert time.monotonic() - t < 30


def test_sweep_on_a_running_scheduler(model, tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = main_run(
            "sweep", model, "--grid", "lanes=4,16", "-o", tmp_path / "sw", "--scheduler", cluster.scheduler_address
        )
    assert r.returncode == 0 and "2 points (0 from the cache), 0 failed" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(
    "grid, words",
    [
        ("pe=4,8", ["'pe'", "options"]),
        ("lanes=4,x", ["lanes", "'x'"]),
        ("clock=0", ["--clock", "positive"]),
        ("lanes", ["KEY="]),
    ],
)
def test_bad_grid_is_one_line_and_writes_nothing(model, tmp_path, grid, words):
    out = tmp_path / "sw"
    assert_one_line_error(main_run("sweep", model, "--grid", grid, "-o", out), *words)
    assert not out.exists()


def test_pareto_front():
    pts = [(1, 9), (2, 5), (3, 5), (4, 1), (5, 2), (2, 5)]
    assert pareto(pts) == [0, 1, 3, 5]  # (3,5) and (5,2) are beaten; equal points both stay


def test_dask_map_records_a_failing_task():
    """The runner under `hlsgen sweep` and `make regress`'s campaign: a task that raises is
    reported with its error; the others finish."""
    import math

    from hlsgen.sweep import dask_map

    got = {i: (r, e) for i, r, e in dask_map(math.sqrt, [(4.0,), (-1.0,), (9.0,)], workers=1)}
    assert got[0] == (2.0, None) and got[2] == (3.0, None)
    assert got[1][0] is None and "ValueError" in got[1][1]

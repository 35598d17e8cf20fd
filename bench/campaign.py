"""Randomized regression campaign: random CNN and LSTM engine configurations, each checked in
C simulation (ap_fixed) and in RTL (Verilator, random bubbles and back-pressure) against the
integer reference; counts every compared output word (prints figures; part of make regress).

    python bench/campaign.py [--configs 200] [--frames 512] [--workers N] [--first K] [--json F]
    python bench/campaign.py --scheduler tcp://host:8786   # on a running Dask cluster
    python bench/campaign.py --only 17          # reproduce configuration 17

Each configuration is one Dask task: on a LocalCluster with this machine's cores by default, or
on the scheduler given (its workers need this checkout at the same path and the pinned
environment; dask-jobqueue's SLURMCluster starts such workers on a SLURM cluster).
Configuration i is a random CNN (``random_cnn``, random lane budget) when i is even and a
random LSTM (the LSTM sweep's configuration space) when i is odd; everything follows from i.
A failure does not stop the campaign: it is listed with the command that reproduces it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED0 = 90_000


def one(i: int, frames: int) -> dict:
    """Check configuration i; returns words compared, mismatches and time (never raises)."""
    sys.path.insert(0, str(ROOT))  # the tests' configuration spaces
    from hlsgen.backends.csim import csim
    from hlsgen.engines.lstm.synthetic import random_inputs
    from hlsgen.reference.execute import predict_int

    t0 = time.time()
    out = {"config": i, "kind": "cnn" if i % 2 == 0 else "lstm", "csim_words": 0, "rtl_words": 0}
    try:
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            if out["kind"] == "cnn":
                from hlsgen.backends.cnn_hls import write_hls
                from hlsgen.backends.cnn_verilog import write_rtl
                from hlsgen.engines.cnn import plan_cnn
                from hlsgen.engines.cnn.flow import rtl_check
                from hlsgen.engines.cnn.synthetic import random_cnn

                rng = np.random.default_rng(SEED0 + i)
                g = random_cnn(SEED0 + i, name=f"c{i}")
                plan = plan_cnn(g, lanes=int(rng.choice([1, 2, 4, 8, 16, 64])))
                x = random_inputs(g, frames, SEED0 + i)
                check = {"probe": 3}
            else:
                from hlsgen.backends.lstm_hls import write_hls
                from hlsgen.backends.lstm_verilog import write_rtl
                from hlsgen.engines.lstm.flow import rtl_check
                from hlsgen.engines.lstm.plan import plan_lstm
                from hlsgen.engines.lstm.synthetic import random_lstm
                from tests.test_lstm_engine import sweep_config

                cfg = sweep_config(SEED0 + i)
                seq = cfg["return_sequences"] and not cfg["graph"]["head"]
                g = random_lstm(**cfg["graph"], return_sequences=seq)
                plan = plan_lstm(
                    g,
                    pe=cfg["pe"],
                    index_bits=cfg["index_bits"],
                    ew_lanes=cfg["ew_lanes"],
                    scan_width=cfg["scan_width"],
                    afifo_depth=cfg["afifo_depth"],
                    jq_depth=cfg["jq_depth"],
                )
                x = random_inputs(g, frames, seed=SEED0 + i)
                check = {}
            expected = predict_int(g, x).reshape(frames, -1)
            hls = write_hls(plan, d / "hls")
            y = csim(hls, d / "hls", x, d / "csim", "ap")
            out["csim_mismatches"] = int(np.count_nonzero(y.reshape(expected.shape) != expected))
            out["csim_words"] = int(expected.size)
            rtl = write_rtl(plan, d / "rtl")
            res = rtl_check(g, plan, rtl, d / "rtl", x, d / "sim", seed=i, p_bubble=0.3, p_stall=0.3, **check)
            out["rtl_mismatches"] = int(res["mismatches"])
            out["rtl_words"] = int(expected.size)
            out["ok"] = bool(res["ok"]) and out["csim_mismatches"] == 0
    except Exception as e:  # recorded, not raised: one bad configuration does not stop the rest
        out["ok"] = False
        out["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    out["seconds"] = round(time.time() - t0, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--first", type=int, default=0, help="first configuration index")
    ap.add_argument("--frames", type=int, default=512, help="frames (CNN) or sequences (LSTM) per configuration")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    ap.add_argument("--json", help="write every configuration's result and the summary here")
    ap.add_argument("--only", type=int, help="run this one configuration (reproduce a failure)")
    a = ap.parse_args(argv)
    todo = [a.only] if a.only is not None else list(range(a.first, a.first + a.configs))
    t0 = time.time()
    rows = []
    from hlsgen.sweep import dask_map

    for k, r, err in dask_map(one, [(i, a.frames) for i in todo], a.workers, a.scheduler):
        if err is not None:  # the worker died under it
            r = {"config": todo[k], "kind": "cnn" if todo[k] % 2 == 0 else "lstm", "csim_words": 0, "rtl_words": 0}
            r.update(ok=False, error=f"lost worker: {err}", seconds=0.0)
        rows.append(r)
        status = (
            "ok"
            if r["ok"]
            else "FAILED " + r.get("error", f"csim {r.get('csim_mismatches')}, rtl {r.get('rtl_mismatches')}")
        )
        print(
            f"config {r['config']:4d} {r['kind']:4s} {r['csim_words'] + r['rtl_words']:7d} words {r['seconds']:6.1f} s  {status}",
            flush=True,
        )
    failed = [r for r in rows if not r["ok"]]
    words = sum(r["csim_words"] + r["rtl_words"] for r in rows)
    print(
        f"\ncampaign: {len(rows)} configurations ({sum(r['kind'] == 'cnn' for r in rows)} CNN, "
        f"{sum(r['kind'] == 'lstm' for r in rows)} LSTM), {words:,} output words compared "
        f"({sum(r['csim_words'] for r in rows):,} in C simulation, {sum(r['rtl_words'] for r in rows):,} in RTL), "
        f"{len(failed)} failed, {time.time() - t0:.0f} s with {a.workers} workers"
    )
    for r in failed:
        print(f"  reproduce: python bench/campaign.py --only {r['config']} --frames {a.frames}")
    if a.json:
        import json

        summary = {
            "configurations": len(rows),
            "words": words,
            "failed": [r["config"] for r in failed],
            "seconds": round(time.time() - t0, 1),
            "workers": a.scheduler or a.workers,
        }
        Path(a.json).write_text(
            json.dumps({"summary": summary, "results": sorted(rows, key=lambda r: r["config"])}, indent=1)
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

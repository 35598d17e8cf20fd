"""The command line's promise under random use (hypothesis): every draw of model file, config
and options either exits 0 with a complete project, or exits 2 with exactly one stderr line
that names the file, layer or option; and nothing is written outside ``-o``.

``HLSGEN_HYPOTHESIS_SCALE`` multiplies the number of draws (``make regress`` uses 10).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hlsgen import zoo

from .test_cli import main_run

SCALE = int(os.environ.get("HLSGEN_HYPOTHESIS_SCALE", "1"))

# model files in the work folder (made by _make); the good ones drawn more often
GOOD = ["mlp_tiny.h5", "cnn_small.h5"]
MODELS = GOOD * 3 + ["empty.h5", "junk.h5", "truncated.h5", "folder.h5", "missing.h5", "x.txt"]
CONFIGS = [
    None,
    None,
    None,
    {"Model": {"Precision": "ap_fixed<16,6>"}},
    {"Model": {"Precision": "ap_fixed<8,3,AP_RND,AP_SAT>", "StripSoftmax": True}},
    {"Model": {"Precision": "ap_fixd<8,3>"}},
    {"Model": {"Precision": "ap_fixed<0,3>"}},
    {"Model": {"TablePrecision": "float16"}},
    {"LayerName": {"fc1": {"Precision": "ap_fixed<12,4>"}}},
    {"LayerName": {"fc1": {"Precision": {"weight": "ap_fixed<4,1>", "bias": 7}}}},
    {"LayerType": "Dense"},
    {"Modle": {}},
    "not: [valid",
    [1, 2, 3],
]
VALID = ["1", "2", "4", "8", "16", "64"]  # drawn about twice as often as the bad values
NUMBERS = VALID * 2 + ["0", "-1", "3", "1e30", "nan", "inf", "x", "", "2.5"]
OPTIONS = {
    "--pe": NUMBERS,
    "--index-bits": NUMBERS,
    "--fps": NUMBERS,
    "--clock": NUMBERS,
    "--lanes": NUMBERS,
    "--dsp": NUMBERS,
    "--fold": ["fc1=1,1", "fc1=2,4", "conv1=8,1", "conv1=3,1", "nope=1,1", "fc1=", "=", "fc1=a,b"],
}


def _make(work, name):
    p = work / name
    if name in ("mlp_tiny.h5", "cnn_small.h5"):
        shutil.copyfile(zoo.path(name[:-3]), p)
    elif name == "empty.h5":
        p.write_bytes(b"")
    elif name == "junk.h5":
        p.write_bytes(os.urandom(300))
    elif name == "truncated.h5":
        p.write_bytes(zoo.path("mlp_tiny").read_bytes()[:5000])
    elif name == "folder.h5":
        p.mkdir()
    elif name == "x.txt":
        p.write_text("hello")
    return p


def _config(work, cfg):
    if cfg is None:
        return None
    p = work / "cfg.yml"
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return p


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@settings(
    max_examples=24 * SCALE,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    model=st.sampled_from(MODELS),
    cfg=st.sampled_from(CONFIGS),
    opts=st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.integers(0, 20), max_size=2),
    no_hw=st.booleans(),
)
@pytest.mark.keras
def test_convert_keeps_its_promise(tmp_path_factory, model, cfg, opts, no_hw):
    work = tmp_path_factory.mktemp("fuzz")
    src = _make(work, model)
    conf = _config(work, cfg)
    out = work / "out"
    args = ["convert", src, "-o", out]
    if conf:
        args += ["--config", conf]
    for k, i in opts.items():
        values = OPTIONS[k]
        args += [k, values[i % len(values)]]
    if no_hw:
        args.append("--no-hw")
    before = _tree(work)
    r = main_run(*args)
    after = _tree(work)
    assert r.returncode in (0, 2), (args, r.returncode, r.stderr)
    outside = [p for p in after if p not in before and not p.startswith("out")]
    assert outside == [], (args, outside)
    if r.returncode == 0:
        assert (out / "model.json").is_file() and (out / "report.json").is_file(), args
        json.loads((out / "model.json").read_text())
        hw = json.loads((out / "report.json").read_text())
        if not no_hw and (out / "engine.json").is_file():
            eng = json.loads((out / "engine.json").read_text())
            for f in eng["sources"] + eng["memories"]:
                assert (out / "rtl" / f).is_file(), (args, f)
        assert hw
    else:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("hlsgen: error: "), (args, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (args, r.stderr)
        named = [str(src), model, "config", "cfg.yml", *OPTIONS, "layer", "--no-hw"]
        assert any(w in lines[0] for w in named), (args, lines[0])
        assert not out.exists(), (args, "a failed convert left -o behind")

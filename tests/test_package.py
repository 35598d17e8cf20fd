"""The installed package is self-sufficient: a wheel, installed non-editable into a fresh
environment, renders a zoo model's hardware and C-simulates it (hw/, templates/ and sim/ are
package data read through importlib.resources, not files of the source tree)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.gxx
def test_wheel_installs_and_renders_a_zoo_model(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = dist.glob("hlsgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("hlsgen/hw/hg_mvu.v", "hlsgen/templates/verilog/cnn_top.v.j2", "hlsgen/sim/cnn_tb.py"):
        assert f in names, f
    # a fresh environment: the wheel installed into it; its dependencies (numpy, TensorFlow,
    # hls4ml's headers, ...) seen through a path entry to this environment's site-packages,
    # which does not activate this checkout's editable install
    env_dir = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    code = (
        "import hlsgen, sys; from pathlib import Path; "
        f"assert Path(hlsgen.__file__).is_relative_to({str(site)!r}), hlsgen.__file__; "
        "from hlsgen.cli import main; "
        "sys.exit(main(['convert', 'mlp_tiny', '-o', 'm']) or main(['verify', 'm', '--csim']))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    r = subprocess.run([py, "-c", code], cwd=run_dir, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "HLS C++ (ap_fixed, g++) vs reference" in r.stdout and "DIFFERENT" not in r.stdout, r.stdout
    assert (run_dir / "m" / "rtl" / "hg_mvu.v").is_file()

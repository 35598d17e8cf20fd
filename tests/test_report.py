"""`hlsgen report`: the page and its figures, opened in a real browser (issue 16).

CI installs Debian's Chromium (.ci/run) and then requires the browser test; elsewhere it skips
when no Chromium is installed.  A screenshot is kept in build/artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest

from hlsgen import convert, load
from hlsgen.html_report import write_report

from .test_cli import main_run
from .test_onnx_frontend import m_conv1d_relu_maxpool_gemm

ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "artifacts"


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("HLSGEN_REQUIRE_CHROMIUM"):
            pytest.fail("chromium not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed (apt install chromium); CI installs it and requires this test")
    return exe


def _loaded(exe, page: Path) -> tuple[int, int]:
    """(figures on the page, figures the browser loaded), read off the DOM after load."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([exe, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<body data-figures="(\d+)" data-figures-loaded="(\d+)"', dom)
    assert m, dom[:500]
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    onnx.save(m_conv1d_relu_maxpool_gemm()[0], d / "cnn.onnx")
    cnn = d / "cnn"
    assert main_run("convert", d / "cnn.onnx", "-o", cnn).returncode == 0
    assert main_run("verify", cnn).returncode == 0  # the page shows verify.json
    lstm = d / "lstm"
    convert("lstm_sparse", lstm)
    return {"cnn": cnn, "lstm": lstm}


@pytest.mark.parametrize("name, figures", [("cnn", 1), ("lstm", 3)])
def test_report_page_and_figures(projects, name, figures):
    r = main_run("report", projects[name])
    assert r.returncode == 0, r.stderr
    page = projects[name] / "report" / "index.html"
    text = page.read_text()
    assert len(list(page.parent.glob("figure*.png"))) >= figures
    assert "<h2>Layers</h2>" in text and "http" not in text.replace("http-equiv", "")  # self-contained
    if name == "cnn":
        assert "<h2>Verification</h2>" in text and "equal everywhere" in text


def test_report_opens_in_a_browser(projects):
    exe = _chromium()
    page = projects["lstm"] / "report" / "index.html"
    if not page.is_file():
        write_report(load(projects["lstm"]))
    n, ok = _loaded(exe, page)
    assert n == 3 and ok == 3
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report_lstm_sparse.png"
    subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10000
    # and the check can fail: a missing figure is counted
    (page.parent / "figure2.png").unlink()
    assert _loaded(exe, page) == (3, 2)

"""Progress on long steps: shown on a terminal, silent otherwise (issue 16)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from hlsgen.progress import step


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_and_silent_elsewhere():
    tty = Tty()
    with step("Yosys 7-series", stream=tty, interval=0.05):
        time.sleep(0.3)
    text = tty.getvalue()
    assert text.count("\rYosys 7-series ... ") >= 3 and text.endswith("\r")  # refreshed, then cleared
    assert text.rstrip("\r").endswith(" ")
    quiet = io.StringIO()
    with step("Yosys 7-series", stream=quiet, interval=0.05):
        time.sleep(0.1)
    assert quiet.getvalue() == ""


def test_the_command_shows_progress_on_a_terminal_only(tmp_path):
    """`hlsgen convert` with stderr on a pseudo-terminal shows its steps; with stderr a pipe,
    stderr stays empty."""
    import pty

    import onnx

    from .test_onnx_frontend import m_conv1d_relu_maxpool_gemm

    model = tmp_path / "m.onnx"
    onnx.save(m_conv1d_relu_maxpool_gemm()[0], model)  # an ONNX model: no TensorFlow to import
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "hlsgen.cli", "convert", str(model), "-o"]
    master, slave = pty.openpty()
    r = subprocess.run([*cmd, tmp_path / "a"], stdout=subprocess.PIPE, stderr=slave, env=env, timeout=600)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert r.returncode == 0
    assert b"planning the streaming CNN engine ..." in seen and b"writing " in seen, seen
    r = subprocess.run([*cmd, tmp_path / "b"], capture_output=True, env=env, timeout=600)
    assert r.returncode == 0 and r.stderr == b""

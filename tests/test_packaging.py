"""The core imports without TensorFlow; the package ships its zoo files."""

from __future__ import annotations

import subprocess
import sys

from hlsgen import zoo


def test_core_imports_without_tensorflow():
    code = (
        "import sys, hlsgen, hlsgen.fixed, hlsgen.ir, hlsgen.reference, hlsgen.project, hlsgen.cli\n"
        "bad = [m for m in ('tensorflow', 'keras', 'qkeras', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_zoo_files_ship_with_the_package():
    assert set(zoo.available()) == set(zoo.NAMES)
    for n in zoo.NAMES:
        assert zoo.info(n)["name"] == n

"""The files hlsgen ships inside its package: hand-written RTL blocks, templates, testbenches.

``hw/`` holds the hand-written, parameterized Verilog blocks every design instantiates,
``templates/`` the Jinja2 files that wire them (and the HLS C++, vendor projects and READMEs),
``sim/`` the cocotb testbenches.  They are package data, read through
:mod:`importlib.resources`, so an installed wheel renders and simulates designs exactly as a
source checkout does.  (A zipped install is not supported: Verilator and Jinja2 read real files.)
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import HlsgenError


def _folder(name: str) -> Path:
    p = Path(str(files("hlsgen") / name))
    if not p.is_dir():
        raise HlsgenError(f"hlsgen's {name}/ folder is missing from the installed package (reinstall hlsgen)")
    return p


def hw_dir() -> Path:
    """The hand-written Verilog blocks (``hg_*.v``)."""
    return _folder("hw")


def templates_dir() -> Path:
    """The Jinja2 templates (Verilog tops, HLS C++, vendor projects, READMEs)."""
    return _folder("templates")


def hw_file(name: str) -> Path:
    """One hand-written block, checked to exist."""
    p = hw_dir() / name
    if not p.is_file():
        raise HlsgenError(f"hlsgen's RTL block {name} is missing from the installed package (reinstall hlsgen)")
    return p

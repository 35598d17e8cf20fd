"""C simulation: compile a generated HLS C++ design with g++ (``ap_fixed`` or ``ac_fixed``
headers, as the hls4ml package ships them) and run it on raw inputs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..errors import HlsgenError


def header_dirs() -> dict:
    """Where the ap_types / ac_types headers are (shipped by the hls4ml package)."""
    try:
        import hls4ml  # noqa: F401  (only its files are used)
    except ImportError:
        raise HlsgenError("C simulation needs the ap_types/ac_types headers: pip install hls4ml") from None
    import importlib.util

    base = Path(importlib.util.find_spec("hls4ml").origin).parent / "templates"
    return {"ap": base / "vivado" / "ap_types", "ac": base / "quartus" / "ac_types"}


def csim(hls: dict, hls_dir, x_raw: np.ndarray, work_dir, flavour: str = "ap") -> np.ndarray:
    """Compile the HLS C++ with g++ and run it on raw inputs [N, T, F]; returns raw outputs."""
    gxx = shutil.which("g++")
    if not gxx:
        raise HlsgenError("C simulation needs g++ (apt install g++)")
    hls_dir, work = Path(hls_dir).resolve(), Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    exe = work / f"csim_{flavour}"
    inc = header_dirs()[flavour]
    top = hls["top"]
    cmd = [gxx, "-std=c++14", "-O2", "-DNDEBUG", f"-I{inc}", f"-I{hls_dir}", "-w"]
    if flavour == "ac":
        cmd.append("-DHLSGEN_AC")
    cmd += [str(hls_dir / f"{top}.cpp"), str(hls_dir / f"{top}_tb.cpp"), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise HlsgenError(f"g++ failed on the generated HLS C++ ({flavour}): {r.stderr.strip().splitlines()[:3]}")
    fin, fout = work / "csim_in.txt", work / f"csim_out_{flavour}.txt"
    x = np.asarray(x_raw, dtype=np.int64).reshape(len(x_raw), -1)
    fin.write_text("".join(" ".join(map(str, row)) + "\n" for row in x))
    r = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True)
    if r.returncode:
        raise HlsgenError(f"C simulation failed ({flavour}): {r.stderr.strip()}")
    rows = [list(map(int, line.split())) for line in fout.read_text().splitlines()]
    return np.asarray(rows, dtype=np.int64).reshape(len(x), -1)

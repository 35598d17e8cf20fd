"""Compiler launcher for Verilator's ``OBJCACHE``: Verilator's runtime objects compiled once per machine.

Every simulation build compiles the same four runtime sources (``verilated.cpp``,
``verilated_vpi.cpp``, ``verilated_dpi.cpp``, ``verilated_threads.cpp``) with the same flags,
about 5 s of a 12 s build.  They include nothing but the wheel's own headers, so this launcher
keeps their objects in a cache keyed by the command line, the compiler and the headers' sizes
and times, and copies them on a hit.  Every other compile (the design's own C++, whose headers
change from build to build) runs as given.  It is a plain script (no hlsgen import) so that
make can start it cheaply: ``OBJCACHE='python objcache.py'``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("HLSGEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hlsgen"
    )
    return Path(base) / "verilator-objs"


def _runtime_source(cmd: list[str]) -> Path | None:
    """The one runtime source this command compiles, or None when it compiles anything else."""
    srcs = [Path(a) for a in cmd[1:] if a.endswith(".cpp")]
    if len(srcs) != 1 or "-o" not in cmd or "-c" not in cmd:
        return None
    src = srcs[0]
    if not (src.is_absolute() and src.name.startswith("verilated") and src.parent.name == "include"):
        return None
    return src


def _key(cmd: list[str], src: Path) -> str:
    h = hashlib.sha256("\0".join(cmd).encode())
    cxx = os.path.realpath(shutil.which(cmd[0]) or cmd[0])  # an upgraded compiler is a new key
    h.update(f"{cxx}:{os.stat(cxx).st_mtime_ns if os.path.exists(cxx) else 0}".encode())
    for d in (src.parent, src.parent / "vltstd"):
        for f in sorted(d.glob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def main(cmd: list[str]) -> int:
    src = _runtime_source(cmd)
    if src is None:
        return subprocess.call(cmd)
    out = Path(cmd[cmd.index("-o") + 1])
    dep = out.with_suffix(".d")
    cache = cache_dir()
    key = _key(cmd, src)
    hit_o, hit_d = cache / f"{key}.o", cache / f"{key}.d"
    if hit_o.is_file() and hit_d.is_file():
        shutil.copyfile(hit_o, out)
        shutil.copyfile(hit_d, dep)
        return 0
    rc = subprocess.call(cmd)
    if rc == 0 and out.is_file() and dep.is_file():
        try:  # best effort: an unwritable cache only costs the time
            cache.mkdir(parents=True, exist_ok=True)
            for have, want in ((dep, hit_d), (out, hit_o)):  # the .o last: a hit needs both
                fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
                os.close(fd)
                shutil.copyfile(have, tmp)
                os.replace(tmp, want)
        except OSError:
            pass
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

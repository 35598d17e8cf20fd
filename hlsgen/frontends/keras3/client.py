"""hlsgen's side of the Keras 3 worker: find the second environment, start the worker, ask it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from ...errors import HlsgenError
from . import wire

WORKER = Path(__file__).with_name("worker.py")
#: the environment ``make venv-keras3`` creates, beside hlsgen's own ``.venv``
DEFAULT_VENV = Path(__file__).resolve().parents[3] / ".venv-keras3"
ENV_VAR = "HLSGEN_KERAS3_PYTHON"


def keras_version(path) -> str | None:
    """The Keras version a ``.keras`` / ``.h5`` file was saved by (None when it does not say)."""
    p = Path(path)
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                if "metadata.json" not in z.namelist():
                    return None
                meta = json.loads(z.read("metadata.json").decode("utf-8"))
                v = meta.get("keras_version") if isinstance(meta, dict) else None
                return v if isinstance(v, str) else None
        import h5py

        with h5py.File(p, "r") as f:
            v = f.attrs.get("keras_version")
            v = v.decode() if isinstance(v, bytes) else v
            return v if isinstance(v, str) else None
    except Exception:  # not a zip or HDF5 file: the Keras loader says what it is
        return None


def is_keras3(path) -> bool:
    v = keras_version(path)
    head = (v or "").split(".")[0]
    return head.isdigit() and int(head) >= 3


def keras3_python(file: str | None = None) -> str:
    """The Python of the Keras 3 environment, or a one-line error saying how to make one."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else [DEFAULT_VENV / "bin" / "python"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    where = f"{ENV_VAR}={env} does not exist" if env else f"{DEFAULT_VENV} does not exist"
    raise HlsgenError(
        f"saved by Keras {keras_version(file) if file else '3'}: hlsgen reads Keras 3 / HGQ2 models in a second "
        f"environment and {where}; run `make venv-keras3` in the hlsgen checkout, or set {ENV_VAR} to a Python "
        "with keras>=3 and hgq2",
        file=file,
    )


class Keras3Model:
    """A Keras 3 model loaded in the worker process; use as a context manager."""

    def __init__(self, path, backend: str | None = None):
        """``backend``: Keras's backend for this process (default: $KERAS_BACKEND, else JAX).
        Conversion uses ``numpy``: eager element-wise calls without JAX's per-shape compiles."""
        self.path = str(path)
        python = keras3_python(self.path)
        env = dict(os.environ)
        if backend:
            env["KERAS_BACKEND"] = backend
        env.setdefault("KERAS_BACKEND", "jax")
        env.setdefault("JAX_PLATFORMS", "cpu")
        debug = bool(os.environ.get("HLSGEN_DEBUG"))
        self.proc = subprocess.Popen(
            [python, "-I", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if debug else subprocess.DEVNULL,
            env=env,
        )
        self.info = self.call("load", path=str(Path(self.path).resolve()))[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()

    def call(self, op: str, arrays=(), **kw) -> tuple[dict, list]:
        try:
            wire.send(self.proc.stdin, dict(kw, op=op), arrays)
            h, out = wire.receive(self.proc.stdout)
        except (OSError, ValueError) as e:
            h, out = {}, []
            if not isinstance(e, BrokenPipeError):
                raise HlsgenError(f"the Keras 3 worker sent a broken reply ({e})", file=self.path) from None
        if not h:
            self.proc.wait()
            raise HlsgenError(
                f"the Keras 3 worker stopped (exit {self.proc.returncode}) during '{op}'; "
                "set HLSGEN_DEBUG=1 to see its output",
                file=self.path,
            )
        if not h.get("ok"):
            if os.environ.get("HLSGEN_DEBUG"):
                print(h.get("trace", ""), file=sys.stderr)
            what = (
                f"Keras {keras_version(self.path)} could not load the file"
                if op == "load"
                else f"Keras 3 failed in '{op}'"
            )
            raise HlsgenError(f"{what}: {h.get('error')}", file=self.path)
        return h, out

    # ------------------------------------------------------------ requests
    def weights(self, layer: str) -> tuple[dict, list]:
        return self.call("weights", layer=layer)

    def quantizer(self, layer: str, which: str, shape) -> tuple[dict, list]:
        return self.call("quantizer", layer=layer, which=which, shape=list(shape))

    def apply(self, steps, shape, x: np.ndarray) -> np.ndarray:
        return self.call("apply", [np.asarray(x, dtype=np.float32)], steps=steps, shape=list(shape))[1][0]

    def predict(self, x: np.ndarray, strip: str | None = None) -> np.ndarray:
        return self.call("predict", [np.asarray(x, dtype=np.float32)], strip=strip)[1][0]

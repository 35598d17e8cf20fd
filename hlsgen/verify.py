"""Equivalence checks of a project: the reference against the source framework.

Later rungs of the ladder (C simulation, RTL simulation) add their own checks here,
each compared with the same integer reference, word for word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import HlsgenError
from .project import Project


def default_inputs(proj: Project) -> tuple[np.ndarray, str]:
    """Held-out digits for zoo-shaped inputs, else random values on the input grid."""
    shape = tuple(proj.graph.input.shape)
    if int(np.prod(shape)) == 64:
        from .zoo.build import digits

        _, xte, _, _ = digits()
        return xte.reshape((-1,) + shape).astype(np.float64), "held-out digits"
    t = proj.input_type
    rng = np.random.default_rng(0)
    raw = rng.integers(t.min_raw, t.max_raw, size=(256,) + shape, endpoint=True)
    return t.to_float(raw), "random values on the input grid"


FLOAT32_MANTISSA = 24


def float32_risk(proj: Project) -> str | None:
    """Why the framework's float32 pass could round an exact value (None if it cannot)."""
    for n in proj.graph:
        if n.spec.type.width > FLOAT32_MANTISSA:
            return f"'{n.name}' needs {n.spec.type.width} bits, more than float32's {FLOAT32_MANTISSA}"
    return None


def framework_outputs(source: str, x: np.ndarray, float64: bool = False) -> np.ndarray:
    """Forward pass of the source model in its own framework (float32 as it runs, or float64)."""
    if Path(source).suffix.lower() in (".h5", ".keras", ".hdf5"):
        from .frontends.keras.loader import float64_model, load_model_file

        model = load_model_file(source)
        if float64:
            with float64_model(model) as m64:
                return np.asarray(m64.predict(x, verbose=0, batch_size=256), dtype=np.float64)
        return np.asarray(model.predict(x.astype(np.float32), verbose=0, batch_size=256), dtype=np.float64)
    raise HlsgenError("no framework to compare with for this source", file=source)


def verify_against_source(proj: Project, x: np.ndarray | None = None) -> dict:
    g = proj.graph
    source = g.meta.get("source")
    if not source or not Path(source).exists():
        raise HlsgenError("the source model file is not available to compare with", file=str(source))
    if x is None:
        x, what = default_inputs(proj)
    else:
        what = "given inputs"
    # compare on inputs already on the input grid (what the hardware receives)
    xq = g.input.type.to_float(proj.quantize_input(x))
    y_ref = proj.predict(xq)
    risk = float32_risk(proj)
    y_fw = framework_outputs(source, xq, float64=risk is not None)
    if y_fw.shape != y_ref.shape:
        raise HlsgenError(f"framework output shape {y_fw.shape} differs from the reference {y_ref.shape}", file=source)
    mism = int(np.count_nonzero(y_ref != y_fw))
    checks = [
        {
            "name": "reference vs source framework",
            "inputs": what,
            "framework_precision": f"float64 ({risk})" if risk else "float32 (every value fits its mantissa)",
            "vectors": int(len(xq)),
            "values": int(y_ref.size),
            "mismatches": mism,
            "max_abs_difference": float(np.max(np.abs(y_ref - y_fw))) if y_ref.size else 0.0,
        }
    ]
    return {
        "equal": mism == 0 and bool(g.meta.get("exact", True)),
        "exact_conversion": g.meta.get("exact", True),
        "checks": checks,
    }

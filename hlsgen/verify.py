"""Equivalence checks of a project: the reference against the source framework.

Later rungs of the ladder (C simulation, RTL simulation) add their own checks here,
each compared with the same integer reference, word for word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import HlsgenError
from .progress import step
from .project import Project


def default_inputs(proj: Project) -> tuple[np.ndarray, str]:
    """Held-out digits for zoo-shaped inputs, else random values on the input grid."""
    shape = tuple(proj.graph.input.shape)
    onnx_in = proj.graph.meta.get("onnx", {}).get("input") if proj.is_onnx else None
    if onnx_in is not None:
        shape = tuple(onnx_in["shape"])
    if int(np.prod(shape)) == 64:
        from .data import digits

        _, xte, _, _ = digits()
        return xte.reshape((-1,) + shape).astype(np.float64), "held-out digits"
    t = proj.input_type
    rng = np.random.default_rng(0)
    n = random_count(proj.graph)
    if onnx_in is not None:
        from .frontends.onnx.io import onnx_random_inputs

        return onnx_random_inputs(proj.graph, rng, n), "random values over the input quantizer's range"
    raw = rng.integers(t.min_raw, t.max_raw, size=(n,) + shape, endpoint=True)
    return t.to_float(raw), "random values on the input grid"


def random_count(graph, budget: float = 512e6) -> int:
    """How many random inputs verify draws: 256, fewer for a large model (about ``budget``
    MACs in all, at least 16: a CIFAR-size CNN of 60 M MACs gets 16)."""
    macs = 0
    for node in graph:
        k = getattr(node, "kernel", None)
        if k is not None:
            macs += k.raw.size * max(1, int(np.prod(node.spec.shape[:-1])))
    return int(min(256, max(16, budget // max(macs, 1))))


FLOAT32_MANTISSA = 24


def float32_risk(proj: Project) -> str | None:
    """Why the framework's float32 pass could round an exact value (None if it cannot)."""
    for n in proj.graph:
        if n.spec.type.width > FLOAT32_MANTISSA:
            return f"'{n.name}' needs {n.spec.type.width} bits, more than float32's {FLOAT32_MANTISSA}"
    return None


def framework_outputs(
    source: str, x: np.ndarray, float64: bool = False, strip: str | None = None, weights: str | None = None
) -> np.ndarray:
    """Forward pass of the source model in its own framework (float32 as it runs, or float64);
    ``strip`` names the layer whose final softmax the conversion removed (logits compared)."""
    if Path(source).suffix.lower() in (".h5", ".keras", ".hdf5") and _is_keras3(source):
        from .frontends.keras3.client import Keras3Model

        with Keras3Model(source) as km:
            return km.predict(x, strip)
    if Path(source).suffix.lower() in (".h5", ".keras", ".hdf5", ".json"):
        from .frontends.keras.loader import float64_model, load_model_file, logits_model

        model = load_model_file(source, weights)
        if strip:
            model = logits_model(model, strip)
        if float64:
            with float64_model(model) as m64:
                return np.asarray(m64.predict(x, verbose=0, batch_size=256), dtype=np.float64)
        return np.asarray(model.predict(x.astype(np.float32), verbose=0, batch_size=256), dtype=np.float64)
    raise HlsgenError("no framework to compare with for this source", file=source)


def precision_note(g, risk: str | None) -> str:
    if not risk:
        return "float32 (every value fits its mantissa)"
    if g.meta.get("frontend") == "keras3":
        return f"float32 ({risk}; the Keras 3 worker runs float32 only, so a mismatch may be its rounding)"
    return f"float64 ({risk})"


def _is_keras3(source) -> bool:
    from .frontends.keras3.client import is_keras3

    return is_keras3(source)


def verify_against_source(proj: Project, x: np.ndarray | None = None) -> dict:
    g = proj.graph
    source = g.meta.get("source")
    if not source or not Path(source).exists():
        raise HlsgenError("the source model file is not available to compare with", file=str(source))
    if x is None:
        x, what = default_inputs(proj)
    else:
        what = "given inputs"
    if proj.is_onnx:
        return _verify_onnx(proj, source, x, what)
    # compare on inputs already on the input grid (what the hardware receives)
    xf = np.asarray(x, dtype=np.float64)
    xq = g.input.type.to_float(proj.quantize_input(xf))
    off = np.flatnonzero(np.any((xq != xf).reshape(len(xf), -1), axis=1))
    y_ref = proj.predict(xq)
    risk = float32_risk(proj)
    # the raw off-grid inputs go through the framework in the same pass
    with step("source framework"):
        y_all = framework_outputs(
            source,
            np.concatenate([xq, xf[off]]),
            float64=risk is not None,
            strip=g.meta.get("stripped_softmax"),
            weights=g.meta.get("weights"),
        )
    y_fw, y_raw = y_all[: len(xq)], y_all[len(xq) :]
    if y_fw.shape != y_ref.shape:
        raise HlsgenError(f"framework output shape {y_fw.shape} differs from the reference {y_ref.shape}", file=source)
    mism = int(np.count_nonzero(y_ref != y_fw))
    checks = [
        {
            "name": "reference vs source framework",
            "inputs": what,
            "framework_precision": precision_note(g, risk),
            "vectors": int(len(xq)),
            "values": int(y_ref.size),
            "mismatches": mism,
            "max_abs_difference": float(np.max(np.abs(y_ref - y_fw))) if y_ref.size else 0.0,
        }
    ]
    result = {
        "equal": mism == 0 and bool(g.meta.get("exact", True)),
        "exact_conversion": g.meta.get("exact", True),
        "checks": checks,
        "notes": [],
    }
    result["notes"] += overflow_notes(result, g, proj.quantize_input(xf))
    if len(off):
        t = g.input.type
        differ = int(np.count_nonzero(np.any((y_raw != y_ref[off]).reshape(len(off), -1), axis=1)))
        result["off_grid"] = {"vectors": int(len(off)), "input_type": str(t), "outputs_differ_on_raw_inputs": differ}
        result["notes"].append(
            f"{len(off)} of {len(xf)} inputs are off the input grid {t} and were quantized to it before "
            f"comparing (as the hardware receives them); on the raw inputs the source model's outputs differ "
            f"for {differ} of them. Quantize the data to {t} before it reaches the model, or set "
            f"Model: InputPrecision to the data's type"
        )
    return result


def overflow_notes(result: dict, graph, x_raw) -> list[str]:
    """Record (``result["overflow"]``) and explain every configured result precision whose
    range these inputs exceeded: hls4ml's default ``ap_fixed<16,6>`` wraps silently."""
    from .reference.execute import overflow_counts

    counts = overflow_counts(graph, x_raw)
    if counts:
        result["overflow"] = counts
    return [overflow_line(name, c) for name, c in counts.items()]


def overflow_line(name: str, c: dict) -> str:
    what = "wrap around (WRAP)" if c["mode"] == "WRAP" else f"saturate ({c['mode']})"
    return (
        f"'{name}': {c['values']} of {c['of']} values overflow {c['type']} and {what}; "
        "give it more integer bits" + (" or AP_SAT" if c["mode"] == "WRAP" else "")
    )


def _verify_onnx(proj: Project, source: str, x, what: str) -> dict:
    """The reference against ONNX Runtime (default CPU session), value for value."""
    from .frontends.onnx.io import run_onnxruntime
    from .frontends.onnx.loader import load_onnx, uses_qonnx

    qonnx = uses_qonnx(load_onnx(source, upgrade=False))
    with step("ONNX Runtime"):
        y_rt = run_onnxruntime(source, x, proj.graph)
    y_ref = proj.predict(x)
    if y_rt.shape != y_ref.shape:
        raise HlsgenError(
            f"ONNX Runtime output shape {y_rt.shape} differs from the reference {y_ref.shape}", file=source
        )
    mism = int(np.count_nonzero(y_ref != y_rt))
    diff = np.abs(y_ref.astype(np.float64) - y_rt.astype(np.float64))
    checks = [
        {
            "name": "reference vs ONNX Runtime",
            "inputs": what,
            "framework_precision": (
                "QONNX execution: QONNX operators as standard ones, ONNX Runtime CPU node by node in float32"
                if qonnx
                else "ONNX Runtime CPU, default graph optimizations"
            ),
            "vectors": int(len(x)),
            "values": int(y_ref.size),
            "mismatches": mism,
            "max_abs_difference": float(diff.max()) if diff.size else 0.0,
        }
    ]
    return {"equal": mism == 0, "exact_conversion": True, "checks": checks}


def verify_hardware(proj: Project, x: np.ndarray, what: str, csim: bool, rtl: bool, rtl_count: int | None) -> list:
    """C simulation (ap_fixed and ac_fixed) and RTL simulation against the reference."""
    from .backends.csim import csim as run_csim
    from .engines import get

    hardware = proj.hardware
    if hardware is None:
        raise HlsgenError(
            "no hardware in this project (no engine maps the model, or engine.json is missing): "
            "C and RTL simulation cannot run",
            file=str(proj.output_dir),
        )
    out = proj.output_dir
    x_raw = proj.quantize_input(x)
    expected = proj.predict_int(x_raw).reshape(len(x_raw), -1)
    checks = []
    if csim:
        hls = {"top": hardware["hls_top"]}
        for flavour in ("ap", "ac"):
            with step(f"C simulation ({flavour}_fixed, g++)"):
                y = run_csim(hls, out / "hls", x_raw, out / "work" / "csim", flavour)
            checks.append(
                {
                    "name": f"HLS C++ ({flavour}_fixed, g++) vs reference",
                    "inputs": what,
                    "vectors": int(len(x_raw)),
                    "values": int(expected.size),
                    "mismatches": int(np.count_nonzero(y != expected)) if y.shape == expected.shape else int(y.size),
                }
            )
    if rtl:
        engine = get(hardware["engine"])
        xr = x_raw[:rtl_count] if rtl_count else x_raw
        with step(f"RTL simulation ({len(xr)} inputs, Verilator)"):
            res = engine.rtl_check(proj.graph, proj.plan, hardware, out / "rtl", xr, out / "work" / "rtl", seed=1)
        checks.append(
            {
                "name": "RTL (cocotb + Verilator, random back-pressure) vs reference",
                "inputs": what + (f" (first {len(xr)})" if len(xr) < len(x_raw) else ""),
                **res,
            }
        )
    return checks

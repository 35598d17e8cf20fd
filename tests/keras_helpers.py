"""Compare a Keras/QKeras model with hlsgen's reference, bit for bit."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

try:  # the frontend makes QKeras 0.9's QGRU runnable on TF 2.15 as it is imported
    import hlsgen.frontends.keras  # noqa: F401
except ImportError:  # no TensorFlow: the Keras tests skip themselves
    pass

#: how many models each comparison mode checked (printed at the end of the run)
CHECKED: Counter = Counter()


def grid_inputs(graph, n, seed=0):
    """Random raw inputs covering the input type's range, as real values."""
    t = graph.input.type
    rng = np.random.default_rng(seed)
    raw = rng.integers(t.min_raw, t.max_raw, size=(n,) + tuple(graph.input.shape), endpoint=True)
    return t.to_float(raw)


def assert_exact(model, n=64, config=None, x=None, label="model", seed=0):
    """Convert ``model`` and require the reference to equal the framework on every output.

    The framework runs in float32 as QKeras does, unless some exact value of the model
    needs more than float32's 24-bit mantissa; then its graph is evaluated in float64
    (DESIGN.md), and the returned mode says so.
    """
    from hlsgen import convert
    from hlsgen.frontends.keras.loader import float64_model
    from hlsgen.verify import float32_risk

    proj = convert(model, None, config)
    if x is None:
        x = grid_inputs(proj.graph, n, seed)
    y = proj.predict(x)
    risk = float32_risk(proj)
    if risk:
        # both sides in float64: the framework's graph, and the tables hlsgen builds from it
        cfg = dict(config or {})
        cfg["Model"] = {**cfg.get("Model", {}), "TablePrecision": "float64"}
        proj = convert(model, None, cfg)
        y = proj.predict(x)
        with float64_model(model) as m64:
            yk = m64(x, training=False).numpy()
        mode = "float64"
    else:
        yk = model(x.astype(np.float32), training=False).numpy()
        mode = "float32"
    yk = np.asarray(yk, dtype=np.float64)
    assert y.shape == yk.shape
    bad = np.argwhere(y != yk)
    assert bad.size == 0, (
        f"{label}: {len(bad)} of {y.size} outputs differ ({mode}); first at {bad[0].tolist()}: "
        f"hlsgen {y[tuple(bad[0])]!r} vs framework {yk[tuple(bad[0])]!r}"
    )
    CHECKED[f"{label} ({mode})"] += 1
    return proj, mode

"""Random quantized CNNs built directly in the IR (for the engine's randomized regression).

Shapes, strides, paddings, kernel sizes, weight kinds (fixed point of 2..8 bits, binary,
ternary, power-of-two), sparsity, activations (ReLU, requantization, per-channel thresholds
as from a folded batch norm) and pooling are drawn from a seed.
"""

from __future__ import annotations

import numpy as np

from ...fixed import FixedType
from ...ir import Activation, Add, Conv, Dense, Graph, Input, Pool, Reshape, StepFunction, Weight


def _weights(rng, shape, kind: str, bits: int, density: float) -> Weight:
    if kind == "binary":
        e = int(rng.integers(0, 3))
        raw = np.where(rng.random(shape) < 0.5, -1, 1) << e
        return Weight(raw, FixedType(e + 2, 2), "binary")
    if kind == "ternary":
        raw = rng.integers(-1, 2, size=shape) << int(rng.integers(0, 2))
        return Weight(raw, FixedType(3, 1), "ternary")
    if kind == "po2":
        e = rng.integers(0, 4, size=shape)
        raw = np.where(rng.random(shape) < 0.5, -1, 1) * (1 << e)
        raw = np.where(rng.random(shape) < density, raw, 0)
        return Weight(raw, FixedType(5, 1), "po2")
    lim = 1 << (bits - 1)
    if kind == "shared":  # k-means weight sharing: a few values of a wide type (a codebook)
        book = rng.choice(np.arange(-lim, lim), size=int(rng.integers(2, 8)), replace=False)
        raw = np.where(rng.random(shape) < density, rng.choice(book, size=shape), 0)
        return Weight(raw, FixedType(bits, 1))
    raw = rng.integers(-lim, lim, size=shape)
    raw = np.where(rng.random(shape) < density, raw, 0)
    return Weight(raw, FixedType(bits, 1))


def _activation(rng, name, src, spec, kind):
    if kind == "relu":
        return Activation(name, [src], function="relu")
    if kind == "requant":
        t = FixedType(int(rng.integers(3, 9)), int(rng.integers(1, 4)), bool(rng.integers(0, 2)), "RND_CONV", "SAT")
        return Activation(name, [src], function="requant", type=t, relu=bool(rng.integers(0, 2)))
    c = spec.shape[-1]
    if kind == "sign":  # binary activations +-2^e: the next binary layer uses XNOR-popcount
        e = int(rng.integers(0, 2))
        br = rng.integers(int(spec.lo), int(spec.hi) + 2, size=(c, 1))
        vals = np.tile(np.array([-(1 << e), 1 << e]), (c, 1))
        return Activation(name, [src], function="step", step=StepFunction(spec.type, FixedType(e + 2, 2), br, vals))
    # per-channel thresholds (a batch norm folded into a quantized activation)
    k = int(rng.integers(1, 8))
    lo, hi = int(spec.lo), int(spec.hi)
    br = np.sort(rng.integers(lo, hi + 2, size=(c, k)), axis=1)
    signed = bool(rng.integers(0, 2))
    base = -(k // 2) if signed else 0
    vals = np.tile(np.arange(base, base + k + 1), (c, 1))
    out = FixedType(max(2, int(np.abs(vals).max()).bit_length() + 1), 2, True)
    return Activation(name, [src], function="step", step=StepFunction(spec.type, out, br, vals, "synthetic"))


def _add(g: Graph, node):
    g.add(node)
    g.output = node.name
    g.infer()
    return node


def random_cnn(seed: int, name: str = "synthetic") -> Graph:
    """A random Input -> (Conv [-> act] [-> Pool])+ -> [GlobalPool | Flatten] -> Dense graph."""
    rng = np.random.default_rng(seed)
    one_d = rng.random() < 0.2
    h = 1 if one_d else int(rng.integers(3, 9))
    w = int(rng.integers(3, 10))
    c = int(rng.integers(1, 4))
    tin = FixedType(int(rng.integers(2, 7)), 1, bool(rng.integers(0, 2)), "RND_CONV", "SAT")
    shape = (w, c) if one_d else (h, w, c)
    nodes = [Input("input", [], shape=shape, type=tin)]
    g = Graph(list(nodes))
    src = "input"
    prev_sign = False
    for i in range(int(rng.integers(1, 3))):
        spec = g[src].spec
        sp = spec.shape[:-1]
        cin = spec.shape[-1]
        if prev_sign and rng.random() < 0.7:
            kind = "binary"
        else:
            kind = str(rng.choice(["fixed", "fixed", "binary", "ternary", "po2"]))
        depthwise = (not one_d) and rng.random() < 0.25 and kind == "fixed"
        k = [int(rng.integers(1, min(3, n) + 1)) for n in sp]
        strides = tuple(int(rng.integers(1, 3)) for _ in sp)
        padding = str(rng.choice(["valid", "same"]))
        cout = int(rng.integers(1, 9))
        kshape = (*k, cin, 1 if depthwise else cout)
        kern = _weights(rng, kshape, kind, int(rng.integers(2, 9)), float(rng.uniform(0.3, 1.0)))
        mout = kshape[-1] * (cin if depthwise else 1)
        bias = Weight(rng.integers(-8, 8, size=mout), FixedType(5, 3)) if rng.random() < 0.7 else None
        conv = Conv(f"conv{i}", [src], kernel=kern, bias=bias, strides=strides, padding=padding, depthwise=depthwise)
        _add(g, conv)
        src = conv.name
        act = str(rng.choice(["relu", "requant", "step", "sign", "none"]))
        prev_sign = act == "sign"
        if act != "none":
            _add(g, _activation(rng, f"act{i}", src, g[src].spec, act))
            src = f"act{i}"
        if rng.random() < 0.3:  # a residual block: src -> conv (same shape) [-> act] -> Add(., src)
            spec = g[src].spec
            cin = spec.shape[-1]
            kr = [int(rng.integers(1, min(3, n) + 1)) for n in spec.shape[:-1]]
            rk = _weights(rng, (*kr, cin, cin), "fixed", int(rng.integers(2, 7)), 0.8)
            _add(g, Conv(f"rconv{i}", [src], kernel=rk, strides=(1,) * len(kr), padding="same"))
            body = f"rconv{i}"
            if rng.random() < 0.6:
                _add(g, _activation(rng, f"ract{i}", body, g[body].spec, "requant"))
                body = f"ract{i}"
            _add(g, Add(f"res{i}", [body, src] if rng.random() < 0.5 else [src, body]))
            src = f"res{i}"
            prev_sign = False
        sp = g[src].spec.shape[:-1]
        if rng.random() < 0.4 and min(sp) >= 2:
            ps = (2,) if one_d else (2, 2) if min(sp) >= 2 else (1, 2)
            _add(g, Pool(f"pool{i}", [src], mode=str(rng.choice(["max", "avg"])), pool_size=ps, strides=ps))
            src = f"pool{i}"
            if rng.random() < 0.5:  # an activation on its own stage (after a pool)
                kind = str(rng.choice(["relu", "requant", "step", "sign"]))
                _add(g, _activation(rng, f"pact{i}", src, g[src].spec, kind))
                src = f"pact{i}"
                prev_sign = kind == "sign"
    spec = g[src].spec
    if rng.random() < 0.3:
        area = int(np.prod(spec.shape[:-1]))
        mode = "avg" if rng.random() < 0.5 and not area & (area - 1) else "max"
        _add(g, Pool("gpool", [src], mode=mode, global_=True))
        src = "gpool"
    else:
        _add(g, Reshape("flatten", [src], shape=(int(np.prod(spec.shape)),)))
        src = "flatten"
    n_in = g[src].spec.shape[-1]
    n_out = int(rng.integers(1, 11))
    fc_kind = "binary" if prev_sign and rng.random() < 0.7 else "fixed"
    _add(
        g,
        Dense(
            "fc",
            [src],
            kernel=_weights(rng, (n_in, n_out), fc_kind, int(rng.integers(2, 9)), 0.8),
            bias=Weight(rng.integers(-8, 8, size=n_out), FixedType(5, 3)),
        ),
    )
    g.meta["name"] = name
    g.meta["source"] = f"synthetic(seed={seed})"
    return g


def _thresholds(rng, name, src, spec, bipolar: bool, fan_in: int, w_mag: int):
    """A batch norm folded into a quantized activation: per-channel thresholds spread over
    the accumulator's likely range (about sqrt(fan_in) products of magnitude w_mag)."""
    c = spec.shape[-1]
    spread = max(1, int(np.sqrt(fan_in) * w_mag))
    if bipolar:  # sign activations +-1 (the next layer uses XNOR-popcount)
        br = rng.integers(-spread // 4, spread // 4 + 1, size=(c, 1))
        vals = np.tile(np.array([-1, 1]), (c, 1))
        out = FixedType(2, 2)
    else:  # 2-bit unsigned activations: three thresholds per channel
        base = rng.integers(-spread // 2, 1, size=(c, 1))
        br = np.sort(base + rng.integers(0, spread + 1, size=(c, 3)), axis=1)
        vals = np.tile(np.arange(4), (c, 1))
        out = FixedType(2, 2, False)
    br = np.clip(br, int(spec.lo), int(spec.hi) + 1)
    return Activation(name, [src], function="step", step=StepFunction(spec.type, out, br, vals, "synthetic"))


def cnv(seed: int = 0, weights: str = "ternary", name: str = "cnv") -> Graph:
    """FINN's CNV topology with random weights (hardware figures, not accuracy): a 32 x 32 x 3
    8-bit image; conv 64, 64, pool, 128, 128, pool, 256, 256 (3 x 3, valid); dense 512, 512, 10.
    ``weights``: ``ternary`` with 2-bit activations (CNV-w2a2) or ``binary`` with sign
    activations (CNV-w1a1, XNOR-popcount after the first layer)."""
    if weights not in ("ternary", "binary"):
        raise ValueError(f"cnv: weights must be ternary or binary, not {weights!r}")
    rng = np.random.default_rng(seed)
    bipolar = weights == "binary"
    g = Graph([Input("input", [], shape=(32, 32, 3), type=FixedType(8, 8, False))])
    src = "input"

    def w(shape):
        if bipolar:
            return Weight(np.where(rng.random(shape) < 0.5, -1, 1), FixedType(2, 2), "binary")
        return Weight(rng.integers(-1, 2, size=shape), FixedType(2, 2), "ternary")

    plan = [64, 64, "pool", 128, 128, "pool", 256, 256]
    for i, c in enumerate(plan):
        if c == "pool":
            src = _add(g, Pool(f"pool{i}", [src], mode="max", pool_size=(2, 2), strides=(2, 2))).name
            continue
        cin = g[src].spec.shape[-1]
        src = _add(g, Conv(f"conv{i}", [src], kernel=w((3, 3, cin, c)), strides=(1, 1), padding="valid")).name
        src = _add(g, _thresholds(rng, f"act{i}", src, g[src].spec, bipolar, 9 * cin, 1)).name
    src = _add(g, Reshape("flatten", [src], shape=(int(np.prod(g[src].spec.shape)),))).name
    for i, n in enumerate([512, 512]):
        src = _add(g, Dense(f"fc{i}", [src], kernel=w((g[src].spec.shape[-1], n)))).name
        src = _add(g, _thresholds(rng, f"fact{i}", src, g[src].spec, bipolar, g[src].spec.shape[-1], 1)).name
    _add(g, Dense("fc_out", [src], kernel=w((512, 10))))
    g.meta["name"] = name
    g.meta["source"] = f"synthetic CNV-{'w1a1' if bipolar else 'w2a2'}(seed={seed})"
    return g

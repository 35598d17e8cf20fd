"""Random quantized sparse LSTM models built directly in the IR (for sweeps and benchmarks).

Weights are drawn on a fixed-point grid, pruned to a density (load-balance-aware for a given
P, or plain magnitude), and the sigmoid/tanh tables are exact step functions on the types the
IR derives, like those the QKeras frontend reads off a real model.
"""

from __future__ import annotations

import numpy as np

from ...compress.prune import lba_mask, magnitude_mask, pe_map
from ...fixed import FixedType
from ...ir import GRU, LSTM, Activation, Dense, Graph, Input, StepFunction, Weight
from ...ir.nodes import gru_h_specs, gru_zr_spec, lstm_c_spec, lstm_z_spec
from ...ir.tensors import TensorSpec


def table(t: FixedType, inv, lo: float, hi: float, out: FixedType) -> StepFunction:
    """A quantized monotone function y = Q_out(f(x)) on inputs of type ``t``, from its inverse.

    ``f`` maps onto (lo, hi) and ``inv`` is its inverse; the output steps from level k - 1 to k
    where f(x) crosses the midpoint, so the thresholds are computed directly (no sweep over the
    input range, which can hold billions of values).
    """
    levels = np.arange(out.min_raw, out.max_raw + 1, dtype=np.int64)
    mids = (levels[1:] - 0.5) / 2.0**out.frac
    idx = np.flatnonzero((mids > lo) & (mids < hi))
    x = inv(mids[idx])
    br = np.clip(np.ceil(np.ldexp(x, t.frac)), t.min_raw, t.max_raw + 1).astype(np.int64)
    base = levels[idx[0]] if idx.size else levels[np.searchsorted(levels, 0)]
    values = np.concatenate([[base], levels[idx + 1]])
    return StepFunction(t, out, br[None], values[None], "synthetic")


def sigmoid_table(t: FixedType, out: FixedType) -> StepFunction:
    return table(t, lambda y: np.log(y / (1 - y)), 0.0, 1.0, out)


def tanh_table(t: FixedType, out: FixedType) -> StepFunction:
    return table(t, np.arctanh, -1.0, 1.0, out)


def random_lstm(
    seed: int,
    features: int = 8,
    units: int = 16,
    steps: int = 4,
    weight_bits: int = 8,
    density: float = 0.2,
    pe: int | None = None,
    input_bits: int = 5,
    state_bits: int = 10,
    act_bits: int = 8,
    head: int = 0,
    head_act: str | None = None,
    return_sequences: bool = False,
    name: str = "synthetic",
    shared: int = 0,
    cell: str = "lstm",
    recurrent_bias: bool = True,
    layers: int = 1,
    between: str | None = None,
    reset_after: bool = True,
) -> Graph:
    """A random Input -> LSTM [-> Dense(head) [-> activation]] graph.

    ``pe`` set: load-balance-aware pruning for that many PEs, else plain magnitude pruning.
    ``head_act``: ``relu``, ``requant`` (to 8 bits, with ReLU) or ``step`` (a 4-bit
    quantized sigmoid table), after the Dense head.  ``shared``: the non-zero weights take
    that many values (k-means weight sharing), drawn apart from the other random choices.
    ``cell="gru"``: a GRU with ``reset_after`` (and then a recurrent bias unless
    ``recurrent_bias`` is False) in place of the LSTM; the layer keeps the name ``lstm``.
    ``layers`` > 1: that many recurrent layers stacked (``lstm``, ``lstm2``, ...; every one but
    the last returns its sequence), with ``between="requant"`` an 8-bit requantization after each
    (``"relu"``: after a ReLU).
    """
    if layers > 1:
        sizes = list(units) if isinstance(units, (list, tuple)) else [units] * layers
        g = random_lstm(
            seed, features, sizes[0], steps, weight_bits, density, pe, input_bits, state_bits, act_bits,
            name=name, cell=cell, recurrent_bias=recurrent_bias, return_sequences=True, reset_after=reset_after,
        )  # fmt: skip
        return _stack_more(
            g, seed, layers, between, cell, sizes, weight_bits, density, pe, state_bits, act_bits,
            head, head_act, return_sequences, reset_after,
        )  # fmt: skip
    if cell == "gru":
        return _random_gru(
            seed, features, units, steps, weight_bits, density, pe, input_bits, state_bits, act_bits,
            head, head_act, return_sequences, name, recurrent_bias and reset_after, reset_after,
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    wf = weight_bits - 1  # weights in [-1, 1)
    lim = 1 << (weight_bits - 1)
    stacked = rng.normal(0, lim / 3, size=(features + units, 4 * units))
    stacked = np.clip(np.round(stacked), -lim, lim - 1).astype(np.int64)
    mask = lba_mask(stacked, pe, density) if pe else magnitude_mask(stacked, density)
    stacked = stacked * mask
    if shared:
        srng = np.random.default_rng(seed + 7919)
        book = srng.choice(np.setdiff1d(np.arange(-lim, lim), [0]), size=shared, replace=False)
        stacked = np.where(stacked != 0, srng.choice(book, size=stacked.shape), 0)
    wt = FixedType(weight_bits, weight_bits - wf)
    kernel = Weight(stacked[:features], wt)
    recurrent = Weight(stacked[features:], wt)
    bias = Weight(rng.integers(-8, 8, size=4 * units), FixedType(5, 2))
    tin = FixedType(input_bits, 1, False, "RND_CONV", "SAT")
    st = FixedType(state_bits, 2, True, "RND_CONV", "SAT")
    z = lstm_z_spec("lstm", kernel, recurrent, bias, st, TensorSpec.of_type((steps, features), tin), 4)
    gate = sigmoid_table(z.type, FixedType(act_bits, 0, False))
    cand = tanh_table(z.type, FixedType(act_bits, 1, True))
    c = lstm_c_spec(gate, cand, st, units)
    cell = tanh_table(c.type, FixedType(act_bits, 1, True))
    nodes = [
        Input("input", [], shape=(steps, features), type=tin),
        LSTM(
            "lstm",
            ["input"],
            units=units,
            kernel=kernel,
            recurrent=recurrent,
            bias=bias,
            state_type=st,
            gate_fn=gate,
            cand_fn=cand,
            cell_fn=cell,
            return_sequences=return_sequences,
        ),
    ]
    _append_head(nodes, rng, units, head, head_act, wt, lim)
    g = Graph(nodes)
    g.meta["name"] = name
    g.meta["source"] = f"synthetic(seed={seed})"
    return g


def _random_gru(
    seed, features, units, steps, weight_bits, density, pe, input_bits, state_bits, act_bits,
    head, head_act, return_sequences, name, recurrent_bias, reset_after=True,
) -> Graph:  # fmt: skip
    """A random Input -> GRU [-> Dense(head) [-> activation]] graph."""
    rng = np.random.default_rng(seed)
    wf = weight_bits - 1
    lim = 1 << (weight_bits - 1)
    stacked = rng.normal(0, lim / 3, size=(features + units, 3 * units))
    stacked = np.clip(np.round(stacked), -lim, lim - 1).astype(np.int64)
    # load-balance-aware as the engine maps a GRU (per pass with reset_after=False)
    mask = (
        lba_mask(stacked, pe, density, *pe_map("gru", features, units, pe, reset_after))
        if pe
        else magnitude_mask(stacked, density)
    )
    stacked = stacked * mask
    wt = FixedType(weight_bits, weight_bits - wf)
    tin = FixedType(input_bits, 1, False, "RND_CONV", "SAT")
    st = FixedType(state_bits, 2, True, "RND_CONV", "SAT")
    proto = GRU.__new__(GRU)
    proto.name, proto.units, proto.state_type, proto.reset_after = "lstm", units, st, reset_after
    proto.kernel, proto.recurrent = Weight(stacked[:features], wt), Weight(stacked[features:], wt)
    proto.bias = Weight(rng.integers(-8, 8, size=3 * units), FixedType(5, 2))
    proto.recurrent_bias = Weight(rng.integers(-8, 8, size=3 * units), FixedType(6, 2)) if recurrent_bias else None
    xs = TensorSpec.of_type((steps, features), tin)
    gate = sigmoid_table(gru_zr_spec(proto, xs)["zr"].type, FixedType(act_bits, 0, False))
    cand = tanh_table(gru_h_specs(proto, xs, gate)["pre_h"].type, FixedType(act_bits, 1, True))
    nodes = [
        Input("input", [], shape=(steps, features), type=tin),
        GRU(
            "lstm",
            ["input"],
            units=units,
            kernel=proto.kernel,
            recurrent=proto.recurrent,
            bias=proto.bias,
            recurrent_bias=proto.recurrent_bias,
            state_type=st,
            gate_fn=gate,
            cand_fn=cand,
            reset_after=reset_after,
            return_sequences=return_sequences,
        ),
    ]
    _append_head(nodes, rng, units, head, head_act, wt, lim)
    g = Graph(nodes)
    g.meta["name"] = name
    g.meta["source"] = f"synthetic GRU(seed={seed})"
    return g


def _stack_more(
    g, seed, layers, between, cell, sizes, weight_bits, density, pe, state_bits, act_bits,
    head, head_act, return_sequences, reset_after=True,
) -> Graph:  # fmt: skip
    """Append layers 2..``layers`` (``sizes[k - 1]`` units each; and the head) to a one-layer
    graph returning its sequence."""
    rng = np.random.default_rng(seed + 104729)
    nodes = list(g.nodes)
    wt = FixedType(weight_bits, 1)
    lim = 1 << (weight_bits - 1)
    st = FixedType(state_bits, 2, True, "RND_CONV", "SAT")
    for k in range(2, layers + 1):
        units = sizes[k - 1]
        prev = nodes[-1].name
        if between in ("requant", "relu"):  # relu: a ReLU before the requantization
            t = FixedType(8, int(rng.integers(1, 4)), True, "RND_CONV", "SAT")
            nodes.append(Activation(f"q{k}", [prev], function="requant", type=t, relu=between == "relu"))
            prev = nodes[-1].name
        xs = Graph(list(nodes))[prev].spec
        f = xs.shape[1]
        gates = 3 if cell == "gru" else 4
        stacked = rng.normal(0, lim / 3, size=(f + units, gates * units))
        stacked = np.clip(np.round(stacked), -lim, lim - 1).astype(np.int64)
        where = pe_map(cell, f, units, pe, reset_after) if pe else None
        stacked = stacked * (lba_mask(stacked, pe, density, *where) if pe else magnitude_mask(stacked, density))
        kernel, recurrent = Weight(stacked[:f], wt), Weight(stacked[f:], wt)
        bias = Weight(rng.integers(-8, 8, size=gates * units), FixedType(5, 2))
        seq = k < layers or return_sequences
        if cell == "gru":
            proto = GRU.__new__(GRU)
            proto.name, proto.units, proto.state_type, proto.reset_after = f"lstm{k}", units, st, reset_after
            proto.kernel, proto.recurrent, proto.bias, proto.recurrent_bias = kernel, recurrent, bias, None
            gate = sigmoid_table(gru_zr_spec(proto, xs)["zr"].type, FixedType(act_bits, 0, False))
            cand = tanh_table(gru_h_specs(proto, xs, gate)["pre_h"].type, FixedType(act_bits, 1, True))
            node = GRU(
                f"lstm{k}", [prev], units=units, kernel=kernel, recurrent=recurrent, bias=bias, state_type=st,
                gate_fn=gate, cand_fn=cand, reset_after=reset_after, return_sequences=seq,
            )  # fmt: skip
        else:
            z = lstm_z_spec(f"lstm{k}", kernel, recurrent, bias, st, xs, 4)
            gate = sigmoid_table(z.type, FixedType(act_bits, 0, False))
            cand = tanh_table(z.type, FixedType(act_bits, 1, True))
            cellf = tanh_table(lstm_c_spec(gate, cand, st, units).type, FixedType(act_bits, 1, True))
            node = LSTM(
                f"lstm{k}", [prev], units=units, kernel=kernel, recurrent=recurrent, bias=bias, state_type=st,
                gate_fn=gate, cand_fn=cand, cell_fn=cellf, return_sequences=seq,
            )  # fmt: skip
        nodes.append(node)
    _append_head(nodes, rng, units, head, head_act, wt, lim)
    out = Graph(nodes)
    out.meta.update(g.meta)
    return out


def _append_head(nodes: list, rng, units: int, head: int, head_act, wt: FixedType, lim: int) -> None:
    """A Dense(``head``) on the last node's ``units`` outputs [and ``head_act`` after it]."""
    if not head:
        return
    k = rng.integers(-lim, lim, size=(units, head))
    bias = Weight(rng.integers(-4, 4, size=head), FixedType(4, 2))
    nodes.append(Dense("fc", [nodes[-1].name], kernel=Weight(k, wt), bias=bias))
    if head_act:
        nodes.append(_head_activation(head_act, rng, Graph(list(nodes))["fc"].spec.type))


def random_inputs(graph: Graph, n: int, seed: int, zero_fraction: float = 0.3) -> np.ndarray:
    """Raw inputs [n, T, F] on the input grid, with a share of exact zeros (skipped by the engine)."""
    rng = np.random.default_rng(seed)
    t = graph.input.type
    x = rng.integers(t.min_raw, t.max_raw + 1, size=(n, *graph.input.shape))
    return np.where(rng.random(x.shape) < zero_fraction, 0, x)


def _head_activation(kind: str, rng, fc_type: FixedType) -> Activation:
    if kind == "relu":
        return Activation("act", ["fc"], function="relu")
    if kind == "requant":
        t = FixedType(8, int(rng.integers(2, 6)), False, "RND_CONV", "SAT")
        return Activation("act", ["fc"], function="requant", type=t, relu=True)
    if kind == "step":
        # a 4-bit sigmoid spread over the Dense output's range, given by its 15 thresholds
        scale = 2.0 ** (fc_type.integer - 3)
        k = np.arange(15) + 0.5
        br = np.ceil(np.ldexp(scale * np.log(k / (16 - k)), fc_type.frac)).astype(np.int64)
        fn = StepFunction(fc_type, FixedType(4, 0, False), br[None], np.arange(16)[None], "synthetic sigmoid")
        return Activation("act", ["fc"], function="step", step=fn)
    raise ValueError(kind)

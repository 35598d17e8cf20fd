"""Execute an IR graph on raw integers (numpy int64).  No floats at run time.

Each op has one kernel ``kernel(node, spec_in, x_raw, ...) -> raw`` that produces
values on the grid of the node's inferred spec (``node.spec``).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph

KERNELS = {}


def kernel(op):
    def deco(fn):
        KERNELS[op] = fn
        return fn

    return deco


def _align(raw, from_frac: int, to_frac: int):
    if to_frac < from_frac:
        raise AssertionError("alignment never drops bits")
    return raw << np.int64(to_frac - from_frac) if to_frac > from_frac else raw


def _bias(node, acc, acc_frac):
    out_frac = node.spec.type.frac
    acc = _align(acc, acc_frac, out_frac)
    if node.bias is not None:
        acc = acc + _align(node.bias.raw, node.bias.type.frac, out_frac)
    return acc


@kernel("Input")
def _input(node, ins, xs):
    return xs[0]


@kernel("Dense")
def _dense(node, ins, xs):
    (x,), (s,) = xs, ins
    acc = x @ node.kernel.raw  # int64 matmul: exact (bounds checked at inference)
    return _bias(node, acc, s.type.frac + node.kernel.type.frac)


def _windows(x, kshape, strides, pairs, rank):
    """Sliding windows of a batch [N, *spatial, C] -> [N, *out, *k, C] (zero padding ``pairs``)."""
    if pairs and any(b or e for b, e in pairs):
        x = np.pad(x, [(0, 0), *pairs, (0, 0)])
    v = np.lib.stride_tricks.sliding_window_view(x, kshape, axis=tuple(range(1, 1 + rank)))
    # v: [N, *out_full, C, *k]; apply strides then move C last
    sl = (slice(None),) + tuple(slice(None, None, s) for s in strides)
    v = v[sl]
    return np.moveaxis(v, 1 + rank, -1)


@kernel("Conv")
def _conv(node, ins, xs):
    (x,), (s,) = xs, ins
    k = node.kernel.raw
    rank = node.rank
    win = _windows(x, k.shape[:rank], node.strides, node.pad_pairs(x.shape[1 : 1 + rank]), rank)  # [N, *out, *k, C]
    if node.depthwise:
        # out[..., c*m + j] = sum_k win[..., k, c] * K[k, c, j]
        kk = k.reshape(-1, k.shape[-2], k.shape[-1])  # [K, C, M]
        w2 = win.reshape(win.shape[: 1 + rank] + (-1, k.shape[-2]))  # [N, *out, K, C]
        acc = np.einsum("...kc,kcm->...cm", w2, kk)
        acc = acc.reshape(acc.shape[:-2] + (-1,))
    else:
        w2 = win.reshape(win.shape[: 1 + rank] + (-1,))  # [N, *out, K*C]
        acc = w2 @ k.reshape(-1, k.shape[-1])
    return _bias(node, acc, s.type.frac + node.kernel.type.frac)


@kernel("Pool")
def _pool(node, ins, xs):
    (x,), (s,) = xs, ins
    rank = len(s.shape) - 1
    if node.global_:
        axes = tuple(range(1, 1 + rank))
        r = x.max(axis=axes) if node.mode == "max" else x.sum(axis=axes)
        return r
    win = _windows(x, node.pool_size, node.strides, None, rank)  # [N, *out, *k, C]
    axes = tuple(range(1 + rank, 1 + 2 * rank))
    return win.max(axis=axes) if node.mode == "max" else win.sum(axis=axes)


@kernel("Reshape")
def _reshape(node, ins, xs):
    return xs[0].reshape((xs[0].shape[0],) + tuple(node.shape))


@kernel("Add")
def _add(node, ins, xs):
    f = node.spec.type.frac
    return _align(xs[0], ins[0].type.frac, f) + _align(xs[1], ins[1].type.frac, f)


@kernel("Activation")
def _activation(node, ins, xs):
    (x,), (s,) = xs, ins
    fn = node.function
    if fn == "linear":
        return x
    if fn == "relu":
        return np.maximum(x, 0)
    if fn == "requant":
        if node.relu:
            x = np.maximum(x, 0)
        return node.type.requantize(x, s.type)
    return node.step(x)


def _product(a, fa, b, fb, to_frac):
    return _align(a * b, fa + fb, to_frac)


def lstm_steps(node, s, x):
    """Run an LSTM on raw inputs [N, T, F]: yields, per step, (x_t, hq, cq, z, c, h).

    ``hq``/``cq`` are the quantized previous states the step reads (zero at t = 0);
    ``z`` the gate pre-activations, ``c``/``h`` the exact new cell and hidden state.
    Engines use this to schedule work (which activations are zero) and to check
    their intermediate values.
    """
    sp = node.internal_specs(s)
    z_t, c_t, h_t = sp["z"].type, sp["c"].type, sp["h"].type
    st = node.state_type
    u = node.units
    n, steps = x.shape[0], x.shape[1]
    kf = s.type.frac + node.kernel.type.frac
    rf = st.frac + node.recurrent.type.frac
    gt, ct, at = node.gate_fn.out_type, node.cand_fn.out_type, node.cell_fn.out_type
    h = np.zeros((n, u), dtype=np.int64)
    c = np.zeros((n, u), dtype=np.int64)
    for t in range(steps):
        hq = st.requantize(h, h_t) if t else np.zeros_like(h)
        cq = st.requantize(c, c_t) if t else np.zeros_like(c)
        z = _align(x[:, t] @ node.kernel.raw, kf, z_t.frac) + _align(hq @ node.recurrent.raw, rf, z_t.frac)
        if node.bias is not None:
            z = z + _align(node.bias.raw, node.bias.type.frac, z_t.frac)
        zi, zf, zc, zo = (z[:, k * u : (k + 1) * u] for k in range(4))
        i, f, o = node.gate_fn(zi), node.gate_fn(zf), node.gate_fn(zo)
        g = node.cand_fn(zc)
        c = _product(f, gt.frac, cq, st.frac, c_t.frac) + _product(i, gt.frac, g, ct.frac, c_t.frac)
        h = _product(o, gt.frac, node.cell_fn(c), at.frac, h_t.frac)
        yield x[:, t], hq, cq, z, c, h


@kernel("LSTM")
def _lstm(node, ins, xs):
    (x,), (s,) = xs, ins
    outs = [step[-1] for step in lstm_steps(node, s, x)]
    return np.stack(outs, axis=1) if node.return_sequences else outs[-1]


def gru_steps(node, s, x):
    """Run a GRU on raw inputs [N, T, F]: yields, per step, (x_t, hq, h, rh).

    ``hq`` is the quantized previous state the step reads (zero at t = 0), ``h`` the exact new
    hidden state, ``rh`` the exact r * hq (reset_after=False; else None); engines use the activations to schedule work, as with :func:`lstm_steps`.
    """
    sp = node.internal_specs(s)
    st, u = node.state_type, node.units
    gt, ct = node.gate_fn.out_type, node.cand_fn.out_type
    a_t, zr_t, ph_t, h_t = sp["a"].type, sp["zr"].type, sp["pre_h"].type, sp["h"].type
    kf = s.type.frac + node.kernel.type.frac
    rf = st.frac + node.recurrent.type.frac
    U = node.recurrent.raw
    rb = node.recurrent_bias
    h = np.zeros((x.shape[0], u), dtype=np.int64)
    one = np.int64(1) << np.int64(gt.frac)
    for t in range(x.shape[1]):
        hq = st.requantize(h, h_t) if t else np.zeros_like(h)
        a = _align(x[:, t] @ node.kernel.raw, kf, a_t.frac)
        if node.bias is not None:
            a = a + _align(node.bias.raw, node.bias.type.frac, a_t.frac)
        rec = hq @ U[:, : 2 * u]
        rec_f = rf
        if rb is not None:
            rec_f = max(rf, rb.type.frac)
            rec = _align(rec, rf, rec_f) + _align(rb.raw[: 2 * u], rb.type.frac, rec_f)
        zr = _align(a[:, : 2 * u], a_t.frac, zr_t.frac) + _align(rec, rec_f, zr_t.frac)
        z, r = node.gate_fn(zr[:, :u]), node.gate_fn(zr[:, u:])
        if node.reset_after:
            m = hq @ U[:, 2 * u :]
            mf = rf
            if rb is not None:
                mf = max(rf, rb.type.frac)
                m = _align(m, rf, mf) + _align(rb.raw[2 * u :], rb.type.frac, mf)
            p, pf = r * m, gt.frac + mf
        else:
            rh = r * hq
            p, pf = rh @ U[:, 2 * u :], gt.frac + st.frac + node.recurrent.type.frac
        pre_h = _align(a[:, 2 * u :], a_t.frac, ph_t.frac) + _align(p, pf, ph_t.frac)
        hh = node.cand_fn(pre_h)
        h = _product(z, gt.frac, hq, st.frac, h_t.frac) + _product(one - z, gt.frac, hh, ct.frac, h_t.frac)
        yield x[:, t], hq, h, (None if node.reset_after else rh)


@kernel("GRU")
def _gru(node, ins, xs):
    (x,), (s,) = xs, ins
    outs = [step[2] for step in gru_steps(node, s, x)]
    return np.stack(outs, axis=1) if node.return_sequences else outs[-1]


def _check_input(graph: Graph, x_raw: np.ndarray):
    shape = tuple(graph.input.shape)
    if x_raw.ndim != len(shape) + 1 or tuple(x_raw.shape[1:]) != shape:
        raise ValueError(
            f"input shape {tuple(x_raw.shape[1:])} does not match the model input {shape} "
            f"(expected a batch of shape (N, {', '.join(map(str, shape))}))"
        )


def trace(graph: Graph, x_raw) -> dict[str, np.ndarray]:
    """Raw outputs of every node for a batch of raw inputs on the Input node's grid."""
    x_raw = np.asarray(x_raw)
    _check_input(graph, x_raw)
    if not np.issubdtype(x_raw.dtype, np.integer):
        raise ValueError("predict_int/trace take raw integers; use predict() for real values")
    x_raw = x_raw.astype(np.int64)
    if not np.all(graph.input.type.contains(x_raw)):
        raise ValueError(f"raw input values outside {graph.input.type}")
    vals: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        ins = [graph[i].spec for i in node.inputs]
        xs = [vals[i] for i in node.inputs] if node.inputs else [x_raw]
        out = KERNELS[node.op](node, ins, xs)
        vals[node.name] = out
    return vals


def overflow_counts(graph: Graph, x_raw) -> dict[str, dict]:
    """Per requantization node (a configured result precision): how many of its values left
    the type's range on these inputs, so wrapped or saturated.  Only nodes where it happened."""
    vals = trace(graph, x_raw)
    out = {}
    for node in graph.nodes:
        if node.op != "Activation" or node.function != "requant":
            continue
        x = vals[node.inputs[0]]
        if node.relu:
            x = np.maximum(x, 0)
        n = int(np.count_nonzero(node.type.overflows(x, graph[node.inputs[0]].spec.type)))
        if n:
            out[node.name] = {"values": n, "of": int(x.size), "type": str(node.type), "mode": node.type.overflow}
    return out


def predict_int(graph: Graph, x_raw) -> np.ndarray:
    """Raw output integers (on ``graph.output_spec.type``'s grid)."""
    return trace(graph, x_raw)[graph.output]


def quantize_input(graph: Graph, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    _check_input(graph, x)
    return graph.input.type.quantize(x)


def predict(graph: Graph, x) -> np.ndarray:
    """Real-valued outputs for real inputs (quantized to the input type on entry)."""
    raw = predict_int(graph, quantize_input(graph, x))
    return graph.output_spec.type.to_float(raw)


__all__ = ["predict", "predict_int", "trace", "quantize_input", "lstm_steps", "gru_steps", "overflow_counts"]

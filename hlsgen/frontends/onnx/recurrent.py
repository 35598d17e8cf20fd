"""ONNX LSTM / GRU -> IR LSTM / GRU, approximately, and only when the user asks.

ONNX's LSTM and GRU compute their gates, cell and hidden state in float32 with no
quantization point inside, so no fixed-point engine reproduces ONNX Runtime bit for bit.
With ``Model: {Approximate: true}`` in the config, hlsgen converts them anyway (DESIGN.md:
"converts only when the user asks, reporting the error it introduces"):

* weights and biases rounded to ``weight`` / ``bias`` precisions (by default 8 / 16 bits on
  a power-of-two grid covering each tensor; exact when the model's weights already lie on one);
* the state (h and c) quantized every step to ``state`` (default ``ap_fixed<16,4,RND_CONV,SAT>``);
* sigmoid and tanh as exact tables of ONNX Runtime's own float32 functions, their outputs
  rounded to ``gate`` (default ``ap_ufixed<9,1,RND_CONV,SAT>``) and ``activation``
  (default ``ap_fixed<9,1,RND_CONV,SAT>``).

The converter then measures the error against ONNX Runtime and records it in the report.
Gate orders: ONNX LSTM is (i, o, f, c), the IR's (i, f, c, o); ONNX GRU and the IR are (z, r, h).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from onnx import helper

from ...fixed import FixedType
from ...ir import GRU, LSTM, Weight
from ...ir.nodes import gru_h_specs, gru_zr_spec, lstm_c_spec, lstm_z_spec
from ..probe import ProbeError, tabulate
from .numerics import NodeRunner
from .registry import handles
from .values import Const, Val

DEFAULTS = {
    "state": FixedType(16, 4, True, "RND_CONV", "SAT"),
    "gate": FixedType(9, 1, False, "RND_CONV", "SAT"),
    "activation": FixedType(9, 1, True, "RND_CONV", "SAT"),
}
LSTM_ORDER = [0, 2, 3, 1]  # IR gate k takes ONNX block LSTM_ORDER[k] (i, f, c, o <- i, o, f, c)


def _reorder(m, gates, order):
    """Rows of an ONNX [gates * H, ...] matrix in the IR's gate order."""
    h = m.shape[0] // gates
    return np.concatenate([m[k * h : (k + 1) * h] for k in order], axis=0)


def _grid_type(values, bits):
    """A signed ``bits``-bit type on a power-of-two grid that covers ``values`` (rounding, saturating)."""
    m = float(np.max(np.abs(values))) if np.size(values) else 1.0
    integer = max(int(np.ceil(np.log2(m))) + 1, 1 - bits + 2) if m > 0 else 1
    return FixedType(bits, integer, True, "RND_CONV", "SAT")


def _weight(cv, name, op, key, values, bits, what, notes):
    t = cv.cfg.explicit_precision(name, op, key) or _grid_type(values, bits)
    raw = t.quantize(values)
    back = t.to_float(raw)
    err = float(np.max(np.abs(back - values))) if np.size(values) else 0.0
    if err:
        notes.append(f"{what} rounded to {t} (largest change {err:.3g})")
    w = Weight(raw, t)
    w.kind = w.detect_kind()
    return w


def _type(cv, name, op, key):
    return cv.cfg.explicit_precision(name, op, key) or DEFAULTS[key]


def _table(cv, node, fn_op, spec, out_t, what):
    runner = NodeRunner(helper.make_node(fn_op, ["x"], ["y"]), {}, {}, max(cv.opset, 13))

    def fn(x):
        y = runner(x.astype(np.float32).reshape(-1, 1)).reshape(x.shape).astype(np.float64)
        return out_t.to_float(out_t.quantize(y))

    try:
        return tabulate(fn, spec, source=f"ONNX Runtime {fn_op} -> {out_t}", float_dtype=np.float64)
    except ProbeError as e:
        cv.fail(f"{what}: {e}", node)


def convert_recurrent(cv, node):
    op, name = node.op_type, node.name
    a = cv.attrs(node)
    if not cv.cfg.approximate:
        cv.fail(
            f"an ONNX {op} computes its gates and state in float32 with no quantization points inside, so no "
            "fixed-point engine reproduces ONNX Runtime bit for bit; set Model: {Approximate: true} in the config "
            "to convert it with a quantized state and tables (hlsgen then measures and reports the error)"
        )
    if a.get("direction", "forward") != "forward":
        cv.fail(f"direction '{a.get('direction')}' is not supported (forward)")
    if a.get("layout", 0) != 0 or a.get("clip") is not None or a.get("input_forget", 0):
        cv.fail("layout=1, clip and input_forget are not supported")
    acts = [x.decode() if isinstance(x, bytes) else x for x in a.get("activations", [])]
    default = ["Sigmoid", "Tanh", "Tanh"] if op == "LSTM" else ["Sigmoid", "Tanh"]
    if acts and acts != default:
        cv.fail(f"activations {acts} are not supported ({default})")
    # sequence_lens, initial_h (, initial_c, P): zero initial states are accepted, as exporters
    # write them (a constant, or zeros expanded to the batch)
    extra = dict(enumerate(node.input[4:], start=4))
    zero_states = all(
        isinstance(cv.vals.get(t), Const) and not np.any(cv.vals[t].value)
        for k, t in extra.items()
        if t and k in (5, 6)
    )
    seq = cv.vals.get(extra.get(4, ""))
    steps = cv.vals[node.input[0]].shape[0] if isinstance(cv.vals.get(node.input[0]), Val) else None
    full = not extra.get(4) or (isinstance(seq, Const) and steps is not None and np.all(seq.value == steps))
    if extra.get(7) or not zero_states or not full:
        cv.fail(
            "sequence_lens, non-zero initial states and peepholes are not supported (zero initial state, full sequences)"
        )
    used = [bool(o) and (cv.consumers.get(o) or o in {g.name for g in cv.g.output}) for o in node.output]
    if len(used) > 2 and used[2]:
        cv.fail("the cell-state output Y_c is not supported")
    if used[0] and len(used) > 1 and used[1]:
        cv.fail("both Y and Y_h are used; hlsgen streams one of them")
    x = cv.act(node.input[0])
    if x.batch != 1 or len(x.shape) != 2 or not np.array_equal(x.index, np.arange(x.index.size).reshape(x.shape)):
        cv.fail("X must be [time, batch, features] as it arrives (layout 0)")
    x = cv.settle(x, exact=True)
    gates = 4 if op == "LSTM" else 3
    H = int(a["hidden_size"])
    W = np.asarray(cv.const(node.input[1], "W").value, dtype=np.float64)[0]  # [gates*H, F]
    R = np.asarray(cv.const(node.input[2], "R").value, dtype=np.float64)[0]  # [gates*H, H]
    B = (
        np.asarray(cv.const(node.input[3], "B").value, dtype=np.float64)[0]
        if len(node.input) > 3 and node.input[3]
        else np.zeros(2 * gates * H)
    )
    order = LSTM_ORDER if op == "LSTM" else [0, 1, 2]
    Wb, Rb = B[: gates * H], B[gates * H :]
    notes = []
    # the IR input's real value is the ONNX value / scale: fold the scale into the kernel
    kernel = _weight(cv, name, op, "weight", _reorder(W, gates, order).T * x.scale, 8, "W", notes)
    recurrent = _weight(cv, name, op, "weight", _reorder(R, gates, order).T, 8, "R", notes)
    st = _type(cv, name, op, "state")
    gt, at = _type(cv, name, op, "gate"), _type(cv, name, op, "activation")
    xspec = cv.spec(x.node)
    seq = bool(used[0])
    if op == "LSTM":
        bias = _weight(cv, name, op, "bias", _reorder(Wb + Rb, gates, order), 16, "B", notes)
        z = lstm_z_spec(name, kernel, recurrent, bias, st, xspec, 4)
        gate_fn = _table(cv, node, "Sigmoid", z, gt, "gate sigmoid")
        cand_fn = _table(cv, node, "Tanh", z, at, "candidate tanh")
        c = lstm_c_spec(gate_fn, cand_fn, st, H)
        cell_fn = _table(cv, node, "Tanh", c, at, "cell tanh")
        ir = LSTM(
            cv.unique(name),
            [x.node],
            units=H,
            kernel=kernel,
            recurrent=recurrent,
            bias=bias,
            state_type=st,
            gate_fn=gate_fn,
            cand_fn=cand_fn,
            cell_fn=cell_fn,
            return_sequences=seq,
        )
    else:
        lbr = bool(a.get("linear_before_reset", 0))
        if lbr:  # h~ = tanh(x W_h + Wb_h + r * (h R_h + Rb_h)): Rb stays with the recurrence
            bias_v, rbias_v = Wb, _reorder(Rb, 3, order)
        else:  # h~ = tanh(x W_h + (r * h) R_h + Wb_h + Rb_h): both biases outside
            bias_v, rbias_v = Wb + Rb, None
        bias = _weight(cv, name, op, "bias", _reorder(bias_v, 3, order), 16, "B", notes)
        rbias = None if rbias_v is None else _weight(cv, name, op, "bias", rbias_v, 16, "Rb", notes)
        proto = SimpleNamespace(
            name=name,
            units=H,
            kernel=kernel,
            recurrent=recurrent,
            bias=bias,
            recurrent_bias=rbias,
            state_type=st,
            reset_after=lbr,
        )
        zr = gru_zr_spec(proto, xspec)["zr"]
        gate_fn = _table(cv, node, "Sigmoid", zr, gt, "gate sigmoid")
        pre_h = gru_h_specs(proto, xspec, gate_fn)["pre_h"]
        cand_fn = _table(cv, node, "Tanh", pre_h, at, "candidate tanh")
        ir = GRU(
            cv.unique(name),
            [x.node],
            units=H,
            kernel=kernel,
            recurrent=recurrent,
            bias=bias,
            recurrent_bias=rbias,
            state_type=st,
            gate_fn=gate_fn,
            cand_fn=cand_fn,
            reset_after=lbr,
            return_sequences=seq,
        )
    out = cv.add(ir)
    cv.approximations.append(
        f"{op} '{name}': float32 gates and state computed in fixed point (state {st}, sigmoid to {gt}, "
        f"tanh to {at}, weights {kernel.type}/{recurrent.type})" + ("; " + "; ".join(notes) if notes else "")
    )
    T = x.shape[0]
    if seq:  # Y: [time, num_directions = 1, batch, hidden]
        cv.vals[node.output[0]] = Val(
            "exact", out.name, (T, 1, H), np.arange(T * H).reshape(T, H), name, scale=1.0, batch=2
        )
    if len(node.output) > 1 and used[1]:  # Y_h: [num_directions = 1, batch, hidden]
        cv.vals[node.output[1]] = Val("exact", out.name, (1, H), np.arange(H), name, scale=1.0, batch=1)
    return None


@handles("LSTM", "GRU")
def _recurrent(cv, node):
    return convert_recurrent(cv, node)

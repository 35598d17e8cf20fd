"""QLSTM -> LSTM node with explicit quantization points (see :class:`hlsgen.ir.LSTM`)."""

from __future__ import annotations

import numpy as np

from ...ir import GRU, LSTM, Weight
from ...ir.nodes import gru_h_specs, gru_zr_spec, lstm_c_spec, lstm_z_spec
from ..probe import ProbeError, tabulate
from .common import _bias, _new_chain, input_type_of_quantizer


def _fn(cv, f):
    tf = cv.tf

    def call(x):
        return np.asarray(f(tf.constant(x)))

    return call


def _common_checks(cv, layer):
    """Options every quantized recurrent layer must have; returns the state type."""
    cell = layer.cell
    if layer.go_backwards:
        cv.fail(layer, "go_backwards=True is not supported; reverse the sequence before the layer")
    if layer.stateful:
        cv.fail(layer, "stateful=True is not supported; the engine starts every sequence from zero state")
    if getattr(layer, "return_state", False):
        cv.fail(layer, "return_state=True is not supported")
    if getattr(layer, "time_major", False):
        cv.fail(layer, "time_major=True is not supported")
    sq = getattr(cell, "state_quantizer_internal", None) or getattr(cell, "state_quantizer", None)
    if sq is None or isinstance(sq, str) and not sq:
        cv.fail(
            layer,
            "state_quantizer is None, so the state is float and grows without bound; "
            "set state_quantizer='quantized_bits(B,I)' to make it exact",
        )
    if isinstance(sq, str):
        from qkeras.quantizers import get_quantizer

        sq = get_quantizer(sq)
    st = input_type_of_quantizer(sq)
    if st is None or type(sq).__name__ != "quantized_bits":
        cv.fail(layer, f"state_quantizer {sq} is not supported; use quantized_bits(bits, integer) with alpha=None")
    return st


def _table(cv, layer, fn, spec, what, hint):
    try:
        return tabulate(_fn(cv, fn), spec, source=str(fn), float_dtype=cv.cfg.table_precision)
    except ProbeError as e:
        cv.fail(layer, f"{what}: {e}; {hint}")


def convert_qlstm(cv, layer, ins, last):
    cell = layer.cell
    st = _common_checks(cv, layer)
    x = cv.materialize(layer, ins[0])
    xs = cv.spec(x)
    k = cv.weight(layer, cell.kernel.numpy(), getattr(cell, "kernel_quantizer_internal", None), "kernel")
    r = cv.weight(
        layer, cell.recurrent_kernel.numpy(), getattr(cell, "recurrent_quantizer_internal", None), "recurrent kernel"
    )
    b = _bias(cv, cell)
    u = cell.units

    # size z exactly, then tabulate the gate functions on its type
    z = lstm_z_spec(layer.name, k, r, b, st, xs, 4)
    gate = _table(
        cv,
        layer,
        cell.recurrent_activation,
        z,
        "recurrent_activation",
        "use a quantized activation such as 'quantized_sigmoid(8)' or 'hard_sigmoid'",
    )
    cand = _table(cv, layer, cell.activation, z, "activation", "use a quantized activation such as 'quantized_tanh(8)'")
    # c = f * c_q + i * g: its exact spec follows from the tables; the cell table is read on it
    c_spec = lstm_c_spec(gate, cand, st, u)
    cellf = _table(
        cv,
        layer,
        cell.activation,
        c_spec,
        "activation on the cell state",
        "use a quantized activation such as 'quantized_tanh(8)'",
    )
    node = cv.add(
        LSTM(
            cv.unique(layer.name),
            [x],
            units=u,
            kernel=k,
            recurrent=r,
            bias=b,
            state_type=st,
            gate_fn=gate,
            cand_fn=cand,
            cell_fn=cellf,
            return_sequences=bool(layer.return_sequences),
        )
    )
    _new_chain(cv, layer, node)


def convert_qgru(cv, layer, ins, last):
    cell = layer.cell
    st = _common_checks(cv, layer)
    if (
        getattr(cell, "recurrent_quantizer", None) in (None, "")
        and getattr(cell, "recurrent_quantizer_internal", None) is None
    ):
        cv.fail(
            layer,
            "recurrent_quantizer is None (QKeras then multiplies the state by the input kernel); "
            "set recurrent_quantizer",
        )
    x = cv.materialize(layer, ins[0])
    xs = cv.spec(x)
    k = cv.weight(layer, cell.kernel.numpy(), getattr(cell, "kernel_quantizer_internal", None), "kernel")
    r = cv.weight(
        layer, cell.recurrent_kernel.numpy(), getattr(cell, "recurrent_quantizer_internal", None), "recurrent kernel"
    )
    b = rb = None
    if cell.use_bias:
        bq = cv.weight(layer, cell.bias.numpy(), getattr(cell, "bias_quantizer_internal", None), "bias")
        if cell.reset_after:  # Keras stores [input bias; recurrent bias]
            b = Weight(bq.raw[0], bq.type, bq.kind, bq.quantizer)
            rb = Weight(bq.raw[1], bq.type, bq.kind, bq.quantizer)
        else:
            b = bq
    u = cell.units
    proto = GRU.__new__(GRU)
    proto.name, proto.units, proto.kernel, proto.recurrent = layer.name, u, k, r
    proto.bias, proto.recurrent_bias, proto.state_type, proto.reset_after = b, rb, st, bool(cell.reset_after)
    zr = gru_zr_spec(proto, xs)["zr"]
    gate = _table(
        cv,
        layer,
        cell.recurrent_activation,
        zr,
        "recurrent_activation",
        "use a quantized activation such as 'quantized_sigmoid(8)' or 'hard_sigmoid'",
    )
    pre_h = gru_h_specs(proto, xs, gate)["pre_h"]
    cand = _table(
        cv, layer, cell.activation, pre_h, "activation", "use a quantized activation such as " "'quantized_tanh(8)'"
    )
    node = cv.add(
        GRU(
            cv.unique(layer.name),
            [x],
            units=u,
            kernel=k,
            recurrent=r,
            bias=b,
            recurrent_bias=rb,
            state_type=st,
            gate_fn=gate,
            cand_fn=cand,
            reset_after=bool(cell.reset_after),
            return_sequences=bool(layer.return_sequences),
        )
    )
    _new_chain(cv, layer, node)

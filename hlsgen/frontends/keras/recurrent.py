"""QLSTM -> LSTM node with explicit quantization points (see :class:`hlsgen.ir.LSTM`)."""

from __future__ import annotations

import numpy as np

from ...ir import LSTM
from ...ir.nodes import lstm_c_spec, lstm_z_spec
from ..probe import ProbeError, tabulate
from .convert import _bias, _new_chain, input_type_of_quantizer


def _fn(cv, f):
    tf = cv.tf

    def call(x):
        return np.asarray(f(tf.constant(x)))

    return call


def convert_qlstm(cv, layer, ins, last):
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
            "state_quantizer is None, so the cell state is float and grows without bound; "
            "set state_quantizer='quantized_bits(B,I)' to make it exact",
        )
    if isinstance(sq, str):
        from qkeras.quantizers import get_quantizer

        sq = get_quantizer(sq)
    st = input_type_of_quantizer(sq)
    if st is None or type(sq).__name__ != "quantized_bits":
        cv.fail(layer, f"state_quantizer {sq} is not supported; use quantized_bits(bits, integer) with alpha=None")
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
    acts = {"recurrent_activation": cell.recurrent_activation, "activation": cell.activation}
    try:
        gate = tabulate(
            _fn(cv, acts["recurrent_activation"]),
            z,
            source=str(acts["recurrent_activation"]),
            float_dtype=cv.cfg.table_precision,
        )
    except ProbeError as e:
        cv.fail(
            layer,
            f"recurrent_activation: {e}; use a quantized activation such as "
            "'quantized_sigmoid(8)' or 'hard_sigmoid' on quantized inputs",
        )
    try:
        cand = tabulate(
            _fn(cv, acts["activation"]), z, source=str(acts["activation"]), float_dtype=cv.cfg.table_precision
        )
    except ProbeError as e:
        cv.fail(layer, f"activation: {e}; use a quantized activation such as 'quantized_tanh(8)'")
    # c = f * c_q + i * g: its exact spec follows from the tables; the cell table is read on it
    c_spec = lstm_c_spec(gate, cand, st, u)
    try:
        cellf = tabulate(
            _fn(cv, acts["activation"]), c_spec, source=str(acts["activation"]), float_dtype=cv.cfg.table_precision
        )
    except ProbeError as e:
        cv.fail(layer, f"activation on the cell state: {e}")
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

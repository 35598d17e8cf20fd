"""Quantization to QKeras: the float layers of a chain become their QKeras counterparts.

Schemes (``--quantize``): ``fixed:W`` (W-bit fixed point, the integer bits from the largest
weight), ``po2:W`` (power-of-two weights, reached by INQ's incremental groups: the largest
half, then three quarters, ... of each matrix are fixed to powers of two while the rest
re-train), ``ternary`` and ``binary`` (TWN / BinaryConnect weights with a power-of-two scale per
output channel: the hardware shifts, it has no multipliers).  Activations become ``quantized_relu`` (or ``quantized_bits``
after a linear factor) with their integer bits calibrated on the training data; the input
gets the narrowest grid its training data lie on exactly.  Every scheme is exact in the
engines: the weights land on power-of-two grids, QKeras rounds as the reference does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import HlsgenError
from .chain import KINDS, Layer

QCLASS = {
    "Dense": "QDense",
    "Conv2D": "QConv2D",
    "DepthwiseConv2D": "QDepthwiseConv2D",
    "LSTM": "QLSTM",
    "GRU": "QGRU",
}
SCHEMES = ("fixed", "po2", "ternary", "binary")
#: INQ's accumulated portions of each matrix fixed to powers of two (Zhou et al. 2017)
INQ_PORTIONS = (0.5, 0.75, 0.875, 1.0)


@dataclass(frozen=True)
class Scheme:
    kind: str = "fixed"
    bits: int = 8  # weight bits (fixed, po2)
    act_bits: int = 8

    @property
    def weight_bits(self) -> int:
        return {"binary": 1, "ternary": 2}.get(self.kind, self.bits)

    @classmethod
    def parse(cls, text: str, act_bits: int = 8) -> Scheme:
        kind, _, bits = str(text).partition(":")
        if kind not in SCHEMES:
            raise HlsgenError(f"--quantize {text}: one of fixed:W, po2:W, ternary, binary")
        if kind in ("fixed", "po2"):
            try:
                b = int(bits or 8)
            except ValueError:
                raise HlsgenError(f"--quantize {text}: W must be a whole number of bits") from None
            lo = 3 if kind == "po2" else 2
            if not lo <= b <= 16:
                raise HlsgenError(f"--quantize {text}: W must be {lo}..16 bits")
        elif bits:
            raise HlsgenError(f"--quantize {text}: {kind} takes no bit width")
        else:
            b = 2 if kind == "ternary" else 1
        if not 2 <= act_bits <= 16:
            raise HlsgenError(f"--act-bits {act_bits}: must be 2..16")
        return cls(kind, b, act_bits)


def int_bits(maxabs: float) -> int:
    """Integer bits (sign not counted) that hold ``maxabs``: 0 for values below 1."""
    if not np.isfinite(maxabs) or maxabs <= 0:
        return 0
    return max(0, int(math.ceil(math.log2(maxabs * (1 + 1e-9)))))


def weight_quantizer(scheme: Scheme, maxabs: float) -> str:
    if scheme.kind == "fixed":
        return f"quantized_bits({scheme.bits},{int_bits(maxabs)},alpha=1)"
    if scheme.kind == "po2":
        return f"quantized_po2({scheme.bits},{2 ** int_bits(maxabs)})"
    # a power-of-two scale per output channel (TWN's / XNOR-Net's scale, kept exact): the
    # weights stay +-2^k per channel, so the engines shift instead of multiplying
    return f"{scheme.kind}(alpha='auto_po2')"


def bias_quantizer(scheme: Scheme, maxabs: float) -> str:
    return f"quantized_bits({max(8, scheme.bits)},{int_bits(maxabs)},alpha=1)"


def input_quantizer(x: np.ndarray, act_bits: int) -> str:
    """The narrowest ``quantized_bits`` on whose grid every training input lies (at most 12
    fraction bits); otherwise ``act_bits`` bits over the data's range."""
    x = np.asarray(x, np.float64)
    signed = bool((x < 0).any())
    ib = int_bits(float(np.abs(x).max()) + 1e-12)
    for frac in range(0, 13):
        if np.array_equal(np.round(x * 2**frac), x * 2**frac):
            # one more integer step holds the top value itself (x = 2**ib)
            ib2 = ib if float(np.abs(x).max()) < 2**ib else ib + 1
            bits = ib2 + frac + (1 if signed else 0)
            if bits <= 16:
                return f"quantized_bits({bits},{ib2},keep_negative={signed})"
            break
    return f"quantized_bits({act_bits},{ib},keep_negative={signed})"


def to_qkeras(
    layers: list[Layer], scheme: Scheme, act_max: dict, x_train, file=None, layer_bits: dict | None = None
) -> list[Layer]:
    """The chain with every float layer replaced by its QKeras counterpart.

    ``act_max[name]`` is the largest output of layer ``name`` on the training data (after its
    activation), for the activations' integer bits.  ``layer_bits[name]``: that layer's weight
    bits instead of the scheme's (fixed and po2).  QKeras layers are kept as they are.
    """
    out: list[Layer] = []
    body = [s for s in layers if s.cls != "InputLayer"]
    if not body or body[0].cls != "QActivation":
        out.append(Layer("QActivation", {"name": "input_q", "activation": input_quantizer(x_train, scheme.act_bits)}))
    a = scheme.act_bits
    base = scheme
    for i, spec in enumerate(body):
        last = i == len(body) - 1
        cfg = dict(spec.config)
        if spec.cls in ("Activation", "ReLU"):
            act = cfg.get("activation", "relu") if spec.cls == "Activation" else "relu"
            if act == "relu":
                q = f"quantized_relu({a},{int_bits(act_max[spec.name])})"
                out.append(Layer("QActivation", {"name": spec.name, "activation": q}))
            else:
                out.append(spec)
            continue
        qcls = QCLASS.get(spec.cls)
        if qcls is None:  # QKeras layers, pooling, flatten, ...
            out.append(spec)
            continue
        kind = KINDS[spec.cls]
        w = spec.weights
        scheme = layer_scheme(base, (layer_bits or {}).get(spec.name))
        if kind in ("lstm", "gru"):
            if scheme.kind != "fixed":
                raise HlsgenError(
                    f"--quantize {scheme.kind}: recurrent layers take fixed point (the LSTM engine multiplies)",
                    file=file,
                    layer=spec.name,
                    layer_type=spec.cls,
                )
            wq = weight_quantizer(scheme, max(float(np.abs(w[0]).max()), float(np.abs(w[1]).max())))
            for k in ("time_major", "implementation", "zero_output_for_mask"):
                cfg.pop(k, None)
            cfg.update(
                kernel_quantizer=wq,
                recurrent_quantizer=wq,
                bias_quantizer=bias_quantizer(scheme, float(np.abs(w[2]).max()) if len(w) > 2 else 0.0),
                state_quantizer=f"quantized_bits({max(10, a + 2)},2)",
                activation=f"quantized_tanh({a})",
                recurrent_activation=f"quantized_sigmoid({a})",
            )
            out.append(Layer(qcls, cfg, w))
            continue
        act = cfg.get("activation", "linear")
        if act not in ("linear", "relu", "softmax"):
            raise HlsgenError(
                f"activation {act!r} has no quantized counterpart here; use relu (or a separate layer)",
                file=file,
                layer=spec.name,
                layer_type=spec.cls,
            )
        cfg["activation"] = "linear"
        kq = weight_quantizer(scheme, float(np.abs(w[0]).max()))
        cfg["depthwise_quantizer" if kind == "dwconv" else "kernel_quantizer"] = kq
        if cfg.get("use_bias", True):
            cfg["bias_quantizer"] = bias_quantizer(scheme, float(np.abs(w[1]).max()))
        out.append(Layer(qcls, cfg, w))
        if act == "relu":
            q = f"quantized_relu({a},{int_bits(act_max[spec.name])})"
            out.append(Layer("QActivation", {"name": f"{spec.name}_relu", "activation": q}))
        elif act == "softmax":
            out.append(Layer("Activation", {"name": f"{spec.name}_softmax", "activation": "softmax"}))
        elif not last:
            # a linear layer inside the chain (a low-rank factor): keep its output narrow
            q = f"quantized_bits({a + 2},{int_bits(act_max[spec.name])},alpha=1)"
            out.append(Layer("QActivation", {"name": f"{spec.name}_q", "activation": q}))
    return out


def layer_scheme(scheme: Scheme, bits: int | None) -> Scheme:
    """``scheme`` with ``bits`` weight bits (fixed, po2); ternary and binary have none to change."""
    if bits is None or scheme.kind not in ("fixed", "po2"):
        return scheme
    return replace(scheme, bits=int(bits))


def apply_quantizer(text: str, w: np.ndarray) -> np.ndarray:
    """``w`` through the QKeras quantizer written ``text`` (one hlsgen wrote, as above)."""
    import tensorflow as tf
    from qkeras.quantizers import get_quantizer

    return np.asarray(get_quantizer(text)(tf.constant(w, tf.float32)), np.float32)

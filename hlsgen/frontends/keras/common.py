"""What the Keras converter and its recurrent handlers share: pending element-wise chains,
quantizer facts, new chains and biases."""

from __future__ import annotations

import numpy as np

from ...fixed import FixedType


class Chain:
    """Element-wise functions pending behind an IR node."""

    def __init__(self, node: str, rank: int, origin: str | None = None):
        self.node = node  # IR node producing the chain's input
        self.origin = origin or node  # Keras layer that produced that node
        self.rank = rank  # rank of the tensor including batch
        self.fns: list = []  # (callable(tf tensor)->tf tensor, per_channel, label)
        self.last_layer: tuple[str, str] | None = None

    @property
    def exact_only(self):
        return all(label in ("linear", "relu") for _, _, label in self.fns)


def float_scale(q) -> bool:
    """True when a quantizer multiplies by a float scale (alpha 'auto', or a non power of two)."""
    alpha = getattr(q, "alpha", None)
    if alpha is None:
        return False
    if isinstance(alpha, str):
        return "po2" not in alpha
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        return True
    return not (a > 0 and float(np.log2(a)).is_integer())


def input_type_of_quantizer(q) -> FixedType | None:
    """The exact input grid a leading QActivation quantizer defines (RND_CONV, saturating)."""
    if q is None:
        return None
    cls = type(q).__name__
    bits = getattr(q, "bits", None)
    integer = getattr(q, "integer", None)
    if not isinstance(bits, int) or not isinstance(integer, (int, np.integer)):
        return None
    if cls == "quantized_bits" and q.alpha in (None, 1, 1.0) and not getattr(q, "use_stochastic_rounding", False):
        if q.keep_negative:
            if bits < 2:
                return None
            return FixedType(bits, integer + 1, True, "RND_CONV", "SAT_SYM" if q.symmetric else "SAT")
        return FixedType(bits, integer, False, "RND_CONV", "SAT")
    if (
        cls == "quantized_relu"
        and not q.use_sigmoid
        and q.negative_slope == 0
        and not q.use_stochastic_rounding
        and q.is_quantized_clip
    ):
        return FixedType(bits, integer, False, "RND_CONV", "SAT")
    return None


def _new_chain(cv, layer, node):
    cv.out[layer.name] = Chain(node.name, len(node.spec.shape) + 1, origin=layer.name)
    return cv.out[layer.name]


def _bias(cv, layer, quantizer_attr="bias_quantizer_internal"):
    if not getattr(layer, "use_bias", False):
        return None
    q = getattr(layer, quantizer_attr, None)
    return cv.weight(layer, layer.bias.numpy(), q, "bias")

"""A Keras model as the chain of layers the compression steps rewrite.

The steps take a model in and give a model out.  Those that change the architecture (low
rank, quantization) edit the list of layer configs and rebuild a ``Sequential`` from it,
carrying the weights over; so they accept chains (every layer has one input, the next layer
its one consumer), which is what the engines map.  Branching graphs are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import HlsgenError

#: layer class -> the kind of weight matrix a step works on
KINDS = {
    "Dense": "dense",
    "QDense": "dense",
    "Conv2D": "conv",
    "QConv2D": "conv",
    "DepthwiseConv2D": "dwconv",
    "QDepthwiseConv2D": "dwconv",
    "LSTM": "lstm",
    "QLSTM": "lstm",
    "GRU": "gru",
    "QGRU": "gru",
}
#: layers without weights that a chain may hold
PASSIVE = {
    "InputLayer",
    "Activation",
    "QActivation",
    "ReLU",
    "Flatten",
    "Reshape",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Dropout",
    "Softmax",
}
GATES = {"lstm": 4, "gru": 3}


@dataclass
class Layer:
    """One layer of a chain: its class, config and weights (numpy, in Keras order)."""

    cls: str
    config: dict
    weights: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def kind(self) -> str | None:
        return KINDS.get(self.cls)


def matrices(layer) -> list:
    """The weight variables of a live Keras layer that the steps compress (no biases)."""
    kind = KINDS.get(layer.__class__.__name__)
    if kind in ("dense", "conv"):
        return [layer.kernel]
    if kind == "dwconv":
        return [layer.depthwise_kernel]
    if kind in ("lstm", "gru"):
        return [layer.cell.kernel, layer.cell.recurrent_kernel]
    return []


def compressible(model) -> list:
    """The layers of ``model`` with weight matrices, in order."""
    return [layer for layer in model.layers if KINDS.get(layer.__class__.__name__)]


def chain(model, file=None) -> list[Layer]:
    """The model as a list of layers; refuses what is not a chain or holds unknown weights."""
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        cls = layer.__class__.__name__
        if cls not in KINDS and cls not in PASSIVE and cls != "BatchNormalization":
            if layer.weights:
                raise HlsgenError(
                    "hlsgen compress does not know this layer's weights; supported: Dense, Conv2D, "
                    "DepthwiseConv2D, LSTM, GRU (and QKeras's), BatchNormalization",
                    file=file,
                    layer=layer.name,
                    layer_type=cls,
                )
        if cls in ("Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum"):
            raise HlsgenError(
                "hlsgen compress rewrites chains of layers; merges are not supported",
                file=file,
                layer=layer.name,
                layer_type=cls,
            )
        if i > 0 and model.__class__.__name__ != "Sequential" and _inputs(layer) != [layers[i - 1]]:
            raise HlsgenError(
                "hlsgen compress rewrites chains of layers; this layer does not take the previous one's "
                "output alone (a branch)",
                file=file,
                layer=layer.name,
                layer_type=cls,
            )
    return [
        Layer(layer.__class__.__name__, layer.get_config(), [w.copy() for w in layer.get_weights()]) for layer in layers
    ]


def _inputs(layer) -> list:
    out = []
    for n in getattr(layer, "_inbound_nodes", []):
        il = n.inbound_layers
        out += list(il) if isinstance(il, (list, tuple)) else [il]
    return out


def rebuild(layers: list[Layer], input_shape, name: str):
    """A ``Sequential`` model from a chain, its weights set."""
    import tensorflow as tf

    from ..frontends.keras.loader import custom_objects

    objs = custom_objects()
    model = tf.keras.Sequential(name=name)
    model.add(tf.keras.layers.InputLayer(input_shape=tuple(input_shape)))
    built = []
    for spec in layers:
        if spec.cls == "InputLayer":
            continue
        cfg = dict(spec.config)
        cfg.pop("batch_input_shape", None)
        layer = tf.keras.layers.deserialize({"class_name": spec.cls, "config": cfg}, custom_objects=objs)
        model.add(layer)
        built.append((layer, spec))
    for layer, spec in built:
        if spec.weights:
            layer.set_weights(spec.weights)
    return model


def output_is_probability(model) -> bool:
    """Does the model end in a softmax (its outputs are probabilities, not logits)?"""
    last = model.layers[-1]
    cfg = last.get_config()
    act = cfg.get("activation")
    return last.__class__.__name__ == "Softmax" or act == "softmax"


def count_parameters(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.get_weights()))

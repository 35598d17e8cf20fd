"""FINN's CNV topology as QKeras models with random weights: the zoo's CIFAR-size CNNs.

They are for hardware figures at real size (planning time, cycles per frame, resources), not
accuracy: no CIFAR-10 can be downloaded here, so the weights are drawn from a fixed seed and
the batch norms are set so that every activation level is used.  ~1.5 M weights make a 6 MB
file, which hlsgen does not ship: ``hlsgen zoo cnv_w2a2 -o cnv_w2a2.h5`` writes it.

Topology (Umuroglu et al., FINN, 2017): a 32 x 32 x 3 image of 8-bit pixels; 3 x 3 valid
convolutions 64, 64, max-pool, 128, 128, max-pool, 256, 256; dense 512, 512, 10; a batch
norm and a quantized activation after every layer but the last.
``cnv_w2a2``: ternary weights, 2-bit unsigned activations.
``cnv_w1a1``: binary weights, binary (+-1) activations (XNOR-popcount after the first layer).
"""

from __future__ import annotations

import numpy as np

VARIANTS = {
    "cnv_w2a2": ("ternary(alpha=1)", "quantized_relu(2,2)"),
    "cnv_w1a1": ("binary(alpha=1)", "binary(alpha=1)"),
}
SEED = 20261130
LAYERS = [64, 64, "pool", 128, 128, "pool", 256, 256, "flatten", 512, 512]


def info(name: str) -> dict:
    wq, aq = VARIANTS[name]
    return {
        "name": name,
        "weights": f"random (seed {SEED}); {wq} weights, {aq} activations",
        "data": "none: random weights, for hardware figures (no accuracy)",
        "quantized_accuracy": None,
        "input": "32 x 32 x 3, 8-bit unsigned pixels",
    }


def build(name: str):
    """The QKeras model ``name`` (one of :data:`VARIANTS`) with its random weights set."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense

    if name not in VARIANTS:
        raise ValueError(f"unknown CNV variant {name!r}; one of {sorted(VARIANTS)}")
    wq, aq = VARIANTS[name]
    binary = name == "cnv_w1a1"
    rng = np.random.default_rng(SEED)
    L = tf.keras.layers
    layers = [L.InputLayer((32, 32, 3)), QActivation("quantized_bits(8,8,keep_negative=False)", name="input_q")]
    for i, c in enumerate(LAYERS):
        if c == "pool":
            layers.append(L.MaxPooling2D(2, name=f"pool{i}"))
        elif c == "flatten":
            layers.append(L.Flatten(name="flatten"))
        else:
            conv = i < LAYERS.index("flatten")
            kind = QConv2D(c, 3, kernel_quantizer=wq, use_bias=False, name=f"conv{i}") if conv else None
            layers.append(kind or QDense(c, kernel_quantizer=wq, use_bias=False, name=f"fc{i}"))
            layers += [L.BatchNormalization(name=f"bn{i}"), QActivation(aq, name=f"act{i}")]
    layers.append(QDense(10, kernel_quantizer=wq, use_bias=False, name="fc_out"))
    model = tf.keras.Sequential(layers, name=name)

    x_mean, x_sq = 127.5, 127.5**2 + 255**2 / 12  # 8-bit pixels, then the activations'
    for layer in model.layers:
        if isinstance(layer, (QConv2D, QDense)):
            shape = layer.kernel.shape
            if binary:
                w = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
            else:
                w = rng.integers(-1, 2, size=shape).astype(np.float64)
            layer.kernel.assign(w.astype(np.float32))
            fan_in = int(np.prod(shape[:-1]))
            density = float(np.mean(w != 0))
            mean = w.reshape(-1, shape[-1]).sum(axis=0) * x_mean
            var = fan_in * density * max(x_sq - x_mean**2, 0.25) + 1.0
        elif isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.6, 1.4, c).astype(np.float32))
            # 2-bit ReLU: centre the channel on the middle levels; binary: around zero
            beta = rng.uniform(-0.5, 0.5, c) if binary else rng.uniform(1.0, 2.0, c)
            layer.beta.assign(beta.astype(np.float32))
            layer.moving_mean.assign(mean.astype(np.float32))
            layer.moving_variance.assign(np.full(c, var, dtype=np.float32))
            x_mean, x_sq = (0.0, 1.0) if binary else (1.5, 3.5)  # the next layer's inputs
    return model

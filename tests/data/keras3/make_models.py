"""Keras 3 / HGQ2 test models, trained briefly on digits; run by tests/test_keras3.py
under the Keras 3 environment's Python (``make venv-keras3``), never in hlsgen's own.

    python make_models.py OUT_DIR DIGITS.npz

Writes (fixed seeds):
  mlp.keras, mlp.h5      QDense 32 relu -> QDense 10; HGQ2's defaults: per-feature input
                         bits, per-weight kernel bits, both learned (EBOPs regularised)
  cnn.keras              QConv2D (per-tensor input bits) -> QMaxPool2D (per-channel) ->
                         Flatten -> QDense 10 softmax; output quantizer on the conv
  cnn_default.keras      the same CNN with HGQ2's default activation bits (per position)
  mlp_bn.keras           QDense -> QBatchNormalization -> QUnaryFunctionLUT(tanh) -> QDense
                         (untrained; random batch-norm statistics and per-feature bits);
                         mlp_bn_wrap.keras: the same with HGQ2's default WRAP activations
  plain.keras            float keras.layers.Dense model (no quantizers)
  lambda.keras           a model with a Lambda layer (must never be loaded)
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq.config import QuantizerConfig, QuantizerConfigScope  # noqa: E402
from hgq.layers import QBatchNormalization, QConv2D, QDense, QMaxPool2D, QUnaryFunctionLUT  # noqa: E402
from hgq.utils import trace_minmax  # noqa: E402


def fit(model, x, y, epochs):
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=model.layers[-1].activation.__name__ != "softmax"),
    )
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    trace_minmax(model, x, verbose=False)


def mlp_bn(overflow="SAT"):
    keras.utils.set_random_seed(3)
    # saturating activations; with HGQ2's default WRAP the quantizers wrap over the accumulator's
    # range, which hlsgen refuses to tabulate, naming the quantizer (mlp_bn_wrap.keras)
    with QuantizerConfigScope(place="datalane", overflow_mode=overflow):
        m = keras.Sequential(
            [
                keras.Input((64,)),
                QDense(16, name="h1"),
                QBatchNormalization(name="bn"),
                QUnaryFunctionLUT("tanh", name="lut", enable_oq=True),
                QDense(10, name="logits"),
            ]
        )
    rng = np.random.default_rng(3)
    bn = m.get_layer("bn")
    for v in bn.weights:
        if v.name in ("bn_gamma", "bn_beta", "moving_mean"):
            v.assign(rng.normal(0, 1, v.shape).astype("float32"))
        elif v.name == "moving_variance":
            v.assign(rng.uniform(0.5, 2, v.shape).astype("float32"))
    for v in m.get_layer("lut").iq.quantizer.weights:  # per-feature input bits of the table
        if v.name in ("i", "f"):
            v.assign(v.numpy() + rng.integers(-1, 2, size=v.shape))
    return m


def main(out, digits):
    d = np.load(digits)
    xtr, ytr = d["x_train"].reshape(len(d["x_train"]), -1).astype("float32"), d["y_train"]
    keras.utils.set_random_seed(7)

    mlp = keras.Sequential([keras.Input((64,)), QDense(32, activation="relu", name="h1"), QDense(10, name="logits")])
    fit(mlp, xtr, ytr, 6)
    mlp.save(os.path.join(out, "mlp.keras"))
    mlp.save(os.path.join(out, "mlp.h5"))

    per_tensor = QuantizerConfig(place="datalane", homogeneous_axis=(0, 1, 2, 3))
    per_channel = QuantizerConfig(place="datalane", heterogeneous_axis=(-1,))

    def cnn(conf):
        inp = keras.Input((8, 8, 1))
        kw = {} if conf is None else {"iq_conf": conf[0]}
        x = QConv2D(
            6, 3, activation="relu", name="conv", enable_oq=True, oq_conf=None if conf is None else conf[1], **kw
        )(inp)
        x = QMaxPool2D(2, name="pool", **({} if conf is None else {"iq_conf": conf[1]}))(x)
        x = keras.layers.Flatten(name="flat")(x)
        x = QDense(10, activation="softmax", name="out")(x)
        return keras.Model(inp, x)

    m = cnn((per_tensor, per_channel))
    fit(m, xtr.reshape(-1, 8, 8, 1), ytr, 3)
    m.save(os.path.join(out, "cnn.keras"))
    # HGQ2's default activation bits, one per element: make them differ as training would
    m = cnn(None)
    rng = np.random.default_rng(0)
    for v in m.get_layer("pool").iq.quantizer.weights:
        if v.name in ("i", "f"):
            v.assign(v.numpy() + rng.integers(0, 2, size=v.shape))
    m.save(os.path.join(out, "cnn_default.keras"))

    mlp_bn().save(os.path.join(out, "mlp_bn.keras"))
    mlp_bn("WRAP").save(os.path.join(out, "mlp_bn_wrap.keras"))

    plain = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, name="dense")])
    plain.save(os.path.join(out, "plain.keras"))

    inp = keras.Input((4,))
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2, name="double")(inp))
    lam.save(os.path.join(out, "lambda.keras"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Build the model zoo: train on scikit-learn's bundled digits with fixed seeds.

    python -m hlsgen.zoo.build [NAME ...]

Writes ``models/NAME.h5`` and ``models/NAME.json`` (architecture notes, float and
quantized held-out accuracy; the quantized accuracy is measured with hlsgen's own
integer reference and with QKeras, which must agree).  The saved files are
committed, so tests never train.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np

from ..data import digits  # noqa: F401  (the zoo's data; imported from here by tests)

MODELS = Path(__file__).parent / "models"
SEED = 20261128


def _seed():
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = "0"
    random.seed(SEED)
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    tf.keras.utils.set_random_seed(SEED)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:
        pass


INPUT_Q = "quantized_bits(5,1,keep_negative=False)"  # 0 .. 31/16, step 1/16: pixels/16 exactly


def _compile_fit(model, x, y, epochs, callbacks=()):
    import tensorflow as tf

    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, shuffle=True, callbacks=list(callbacks))
    return model


def mlp_tiny(quantized: bool):
    import tensorflow as tf
    from qkeras import QActivation, QDense

    L = tf.keras.layers
    if not quantized:
        return tf.keras.Sequential([L.InputLayer((64,)), L.Dense(32, activation="relu"), L.Dense(10)], name="mlp_tiny")
    return tf.keras.Sequential(
        [
            L.InputLayer((64,)),
            QActivation(INPUT_Q, name="input_q"),
            QDense(
                32,
                kernel_quantizer="quantized_bits(6,0,alpha=1)",
                bias_quantizer="quantized_bits(8,3,alpha=1)",
                name="fc1",
            ),
            QActivation("quantized_relu(6,2)", name="relu1"),
            QDense(
                10,
                kernel_quantizer="quantized_bits(6,0,alpha=1)",
                bias_quantizer="quantized_bits(8,3,alpha=1)",
                name="fc2",
            ),
        ],
        name="mlp_tiny",
    )


def cnn_small(quantized: bool):
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense

    L = tf.keras.layers
    if not quantized:
        return tf.keras.Sequential(
            [
                L.InputLayer((8, 8, 1)),
                L.Conv2D(8, 3, padding="same", activation="relu"),
                L.MaxPooling2D(2),
                L.Conv2D(16, 3, activation="relu"),
                L.Flatten(),
                L.Dense(10),
            ],
            name="cnn_small",
        )
    kq, bq = "quantized_bits(6,0,alpha=1)", "quantized_bits(8,3,alpha=1)"
    return tf.keras.Sequential(
        [
            L.InputLayer((8, 8, 1)),
            QActivation(INPUT_Q, name="input_q"),
            QConv2D(8, 3, padding="same", kernel_quantizer=kq, bias_quantizer=bq, name="conv1"),
            QActivation("quantized_relu(6,2)", name="relu1"),
            L.MaxPooling2D(2, name="pool1"),
            QConv2D(16, 3, kernel_quantizer=kq, bias_quantizer=bq, name="conv2"),
            QActivation("quantized_relu(6,2)", name="relu2"),
            L.Flatten(name="flatten"),
            QDense(10, kernel_quantizer=kq, bias_quantizer=bq, name="fc"),
        ],
        name="cnn_small",
    )


def cnn_lowbit(name: str, quantized: bool):
    """Digits CNNs whose weights make the hardware multiplier-free.

    ``cnn_binary`` (BNN: binary weights and binary activations, batch-norm folded into the
    activation thresholds), ``cnn_ternary`` (TWN: ternary weights), ``cnn_po2`` (INQ-style
    power-of-two weights) and ``cnn_dw`` (MobileNet-style depthwise-separable, fixed point).
    """
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D

    L = tf.keras.layers
    if name == "cnn_dw":
        kq, bq = "quantized_bits(6,0,alpha=1)", "quantized_bits(8,3,alpha=1)"
        if not quantized:
            return tf.keras.Sequential(
                [
                    L.InputLayer((8, 8, 1)),
                    L.Conv2D(8, 3, padding="same", activation="relu"),
                    L.DepthwiseConv2D(3, padding="same", activation="relu"),
                    L.Conv2D(16, 1, activation="relu"),
                    L.MaxPooling2D(2),
                    L.AveragePooling2D(2),
                    L.Flatten(),
                    L.Dense(10),
                ],
                name=name,
            )
        return tf.keras.Sequential(
            [
                L.InputLayer((8, 8, 1)),
                QActivation(INPUT_Q, name="input_q"),
                QConv2D(8, 3, padding="same", kernel_quantizer=kq, bias_quantizer=bq, name="conv1"),
                QActivation("quantized_relu(6,2)", name="relu1"),
                QDepthwiseConv2D(3, padding="same", depthwise_quantizer=kq, bias_quantizer=bq, name="dw"),
                QActivation("quantized_relu(6,2)", name="relu2"),
                QConv2D(16, 1, kernel_quantizer=kq, bias_quantizer=bq, name="pw"),
                QActivation("quantized_relu(6,2)", name="relu3"),
                L.MaxPooling2D(2, name="pool"),
                L.AveragePooling2D(2, name="avg"),
                L.Flatten(name="flatten"),
                QDense(10, kernel_quantizer=kq, bias_quantizer=bq, name="fc"),
            ],
            name=name,
        )
    c1, c2 = (32, 64) if name == "cnn_binary" else (16, 32)
    wq = {"cnn_binary": "binary(alpha=1)", "cnn_ternary": "ternary(alpha=1)", "cnn_po2": "quantized_po2(4,1)"}[name]
    act = "binary(alpha=1)" if name == "cnn_binary" else "quantized_relu(4,2)"
    bq = "quantized_bits(8,3,alpha=1)"
    if not quantized:
        return tf.keras.Sequential(
            [
                L.InputLayer((8, 8, 1)),
                L.Conv2D(c1, 3, padding="same"),
                L.BatchNormalization(),
                L.Activation("relu"),
                L.MaxPooling2D(2),
                L.Conv2D(c2, 3),
                L.BatchNormalization(),
                L.Activation("relu"),
                L.Flatten(),
                L.Dense(10),
            ],
            name=name,
        )
    return tf.keras.Sequential(
        [
            L.InputLayer((8, 8, 1)),
            QActivation(INPUT_Q, name="input_q"),
            QConv2D(c1, 3, padding="same", kernel_quantizer=wq, use_bias=False, name="conv1"),
            L.BatchNormalization(name="bn1"),
            QActivation(act, name="act1"),
            L.MaxPooling2D(2, name="pool1"),
            QConv2D(c2, 3, kernel_quantizer=wq, use_bias=False, name="conv2"),
            L.BatchNormalization(name="bn2"),
            QActivation(act, name="act2"),
            L.Flatten(name="flatten"),
            QDense(10, kernel_quantizer=wq, bias_quantizer=bq, name="fc"),
        ],
        name=name,
    )


LOWBIT = ("cnn_binary", "cnn_ternary", "cnn_po2", "cnn_dw")

LSTM_UNITS = 64
LSTM_DENSITY = 0.10


def lstm_sparse(quantized: bool):
    import tensorflow as tf
    from qkeras import QLSTM, QActivation, QDense

    L = tf.keras.layers
    if not quantized:
        return tf.keras.Sequential([L.InputLayer((8, 8)), L.LSTM(LSTM_UNITS), L.Dense(10)], name="lstm_sparse")
    wq = "quantized_bits(8,0,alpha=1)"
    return tf.keras.Sequential(
        [
            L.InputLayer((8, 8)),
            QActivation(INPUT_Q, name="input_q"),
            QLSTM(
                LSTM_UNITS,
                kernel_quantizer=wq,
                recurrent_quantizer=wq,
                bias_quantizer="quantized_bits(8,2,alpha=1)",
                state_quantizer="quantized_bits(10,2)",
                activation="quantized_tanh(8)",
                recurrent_activation="quantized_sigmoid(8)",
                name="lstm",
            ),
            QDense(10, kernel_quantizer=wq, bias_quantizer="quantized_bits(8,3,alpha=1)", name="fc"),
        ],
        name="lstm_sparse",
    )


def gru_sparse(quantized: bool):
    """A GRU (reset_after=True, the Keras 2 default) on the digits' 8 rows, 64 units, pruned like
    lstm_sparse: the recurrent engine maps it onto the same PE array."""
    import tensorflow as tf
    from qkeras import QGRU, QActivation, QDense

    from hlsgen.frontends.keras.loader import qkeras_compat

    qkeras_compat()  # QGRU on TF 2.15 needs the shims the loader installs
    L = tf.keras.layers
    if not quantized:
        return tf.keras.Sequential([L.InputLayer((8, 8)), L.GRU(LSTM_UNITS), L.Dense(10)], name="gru_sparse")
    wq = "quantized_bits(8,0,alpha=1)"
    return tf.keras.Sequential(
        [
            L.InputLayer((8, 8)),
            QActivation(INPUT_Q, name="input_q"),
            QGRU(
                LSTM_UNITS,
                kernel_quantizer=wq,
                recurrent_quantizer=wq,
                bias_quantizer="quantized_bits(8,2,alpha=1)",
                state_quantizer="quantized_bits(10,2)",
                activation="quantized_tanh(8)",
                recurrent_activation="quantized_sigmoid(8)",
                reset_after=True,
                name="gru",
            ),
            QDense(10, kernel_quantizer=wq, bias_quantizer="quantized_bits(8,3,alpha=1)", name="fc"),
        ],
        name="gru_sparse",
    )


def lstm_stacked(quantized: bool):
    """Two QLSTM(32) layers on the digits' 8 rows (the second reads the first's exact hidden
    state), pruned to 20%: the recurrent engine runs both on one PE array."""
    import tensorflow as tf
    from qkeras import QLSTM, QActivation, QDense

    L = tf.keras.layers
    if not quantized:
        return tf.keras.Sequential(
            [L.InputLayer((8, 8)), L.LSTM(32, return_sequences=True), L.LSTM(32), L.Dense(10)], name="lstm_stacked"
        )
    wq = "quantized_bits(8,0,alpha=1)"

    def qlstm(name, seq):
        return QLSTM(
            32,
            kernel_quantizer=wq,
            recurrent_quantizer=wq,
            bias_quantizer="quantized_bits(8,2,alpha=1)",
            state_quantizer="quantized_bits(10,2)",
            activation="quantized_tanh(8)",
            recurrent_activation="quantized_sigmoid(8)",
            return_sequences=seq,
            name=name,
        )

    return tf.keras.Sequential(
        [
            L.InputLayer((8, 8)),
            QActivation(INPUT_Q, name="input_q"),
            qlstm("lstm1", True),
            qlstm("lstm2", False),
            QDense(10, kernel_quantizer=wq, bias_quantizer="quantized_bits(8,3,alpha=1)", name="fc"),
        ],
        name="lstm_stacked",
    )


# zoo model -> its pruned recurrent layers and their density
RECURRENT = {
    "lstm_sparse": (["lstm"], LSTM_DENSITY),
    "gru_sparse": (["gru"], LSTM_DENSITY),
    "lstm_stacked": (["lstm1", "lstm2"], 0.2),
}


def _magnitude_masks(variables, density):
    masks = []
    for v in variables:
        w = np.abs(v.numpy())
        k = max(1, int(round(density * w.size)))
        thr = np.sort(w.ravel())[-k]
        masks.append((w >= thr).astype(np.float32))
    return masks


def lstm_lba():
    """lstm_sparse re-pruned for the engine: load-balance-aware over 8 PEs at 10% density (ESE)."""
    import tensorflow as tf

    from hlsgen.compress.keras_prune import prune_keras_model
    from hlsgen.frontends.keras import convert_keras
    from hlsgen.frontends.keras.loader import load_model_file
    from hlsgen.reference.execute import predict

    _seed()
    xtr, xte, ytr, yte = digits()
    model = load_model_file(str(MODELS / "lstm_sparse.h5"))
    res = prune_keras_model(model, 8, LSTM_DENSITY, "lba", 10, xtr, ytr, xte, yte)
    q_keras = np.argmax(model.predict(xte, verbose=0), -1)
    path = MODELS / "lstm_lba.h5"
    model.save(path, include_optimizer=False)
    graph = convert_keras(str(path))
    q_ref = np.argmax(predict(graph, xte), -1)
    if not np.array_equal(q_ref, q_keras):
        raise SystemExit(f"lstm_lba: hlsgen reference and QKeras disagree on {np.sum(q_ref != q_keras)} images")
    lstm = next(n for n in graph if n.op == "LSTM")
    info = {
        "name": "lstm_lba",
        "seed": SEED,
        "data": "sklearn digits, 75/25 stratified split, random_state=0",
        "from": "lstm_sparse.h5",
        "pruning": f"load-balance-aware over 8 PEs, {LSTM_DENSITY:.0%} density, 10 epochs fine-tuning",
        "accuracy_before": round(res["accuracy"]["before"], 4),
        "accuracy_pruned": round(res["accuracy"]["pruned"], 4),
        "quantized_accuracy": round(float(np.mean(q_ref == yte)), 4),
        "test_samples": int(len(yte)),
        "layers": graph.table(),
        "density": {"kernel": round(lstm.kernel.density, 4), "recurrent": round(lstm.recurrent.density, 4)},
    }
    (MODELS / "lstm_lba.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"lstm_lba: quantized {info['quantized_accuracy']:.4f}")
    tf.keras.backend.clear_session()


def train(name: str):
    import tensorflow as tf

    from hlsgen.compress.keras_prune import hold_masks
    from hlsgen.frontends.keras import convert_keras
    from hlsgen.reference.execute import predict

    _seed()
    xtr, xte, ytr, yte = digits()
    if name in ("mlp_tiny",):
        xtr, xte = xtr.reshape(-1, 64), xte.reshape(-1, 64)
    elif name == "cnn_small" or name in LOWBIT:
        xtr, xte = xtr[..., None], xte[..., None]
    build = {
        "mlp_tiny": mlp_tiny,
        "cnn_small": cnn_small,
        "lstm_sparse": lstm_sparse,
        "gru_sparse": gru_sparse,
        "lstm_stacked": lstm_stacked,
    }.get(name)
    if name in LOWBIT:

        def build(q, name=name):
            return cnn_lowbit(name, q)

    epochs = {
        "mlp_tiny": 60,
        "cnn_small": 40,
        "lstm_sparse": 40,
        "gru_sparse": 40,
        "cnn_binary": 100,
        "cnn_dw": 80,
    }.get(name, 40)

    fmodel = _compile_fit(build(False), xtr, ytr, epochs)
    float_acc = float(np.mean(np.argmax(fmodel.predict(xte, verbose=0), -1) == yte))

    _seed()
    qmodel = _compile_fit(build(True), xtr, ytr, epochs)
    info = {
        "name": name,
        "seed": SEED,
        "data": "sklearn digits, 75/25 stratified split, random_state=0",
        "epochs": epochs,
        "float_accuracy": round(float_acc, 4),
    }
    if name in RECURRENT:
        names, density = RECURRENT[name]
        variables = []
        for ln in names:
            cell = qmodel.get_layer(ln).cell
            variables += [cell.kernel, cell.recurrent_kernel]
        masks = _magnitude_masks(variables, density)
        for v, m in zip(variables, masks, strict=False):
            v.assign(v * m)
        info["dense_quantized_accuracy"] = None
        _compile_fit(qmodel, xtr, ytr, 30, callbacks=[hold_masks(variables, masks)])
        info["pruning"] = f"magnitude, {density:.0%} density on kernel and recurrent kernel, 30 epochs fine-tuning"
    q_keras = np.argmax(qmodel.predict(xte, verbose=0), -1)
    path = MODELS / f"{name}.h5"
    MODELS.mkdir(parents=True, exist_ok=True)
    qmodel.save(path, include_optimizer=False)
    graph = convert_keras(str(path))
    y_ref = predict(graph, xte)
    q_ref = np.argmax(y_ref, -1)
    if not np.array_equal(q_ref, q_keras):
        raise SystemExit(f"{name}: hlsgen reference and QKeras disagree on {np.sum(q_ref != q_keras)} images")
    info["quantized_accuracy"] = round(float(np.mean(q_ref == yte)), 4)
    info["test_samples"] = int(len(yte))
    info["layers"] = graph.table()
    if name in RECURRENT:
        cells = [n for n in graph if n.op in ("LSTM", "GRU")]
        dens = {
            c.name: {"kernel": round(c.kernel.density, 4), "recurrent": round(c.recurrent.density, 4)} for c in cells
        }
        info["density"] = dens[cells[0].name] if len(cells) == 1 else dens
    info.pop("dense_quantized_accuracy", None)
    (MODELS / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"{name}: float {float_acc:.4f}  quantized {info['quantized_accuracy']:.4f}")
    tf.keras.backend.clear_session()


def train_float(name: str):
    """The float counterpart of a trained zoo model (``NAME_float.h5``): the same architecture
    without quantizers, trained with the same seed and epochs, dense.  The input of ``hlsgen
    compress`` (it prunes, shares, factors and quantizes it); it does not convert exactly."""
    import tensorflow as tf

    base = name.removesuffix("_float")
    _seed()
    xtr, xte, ytr, yte = digits()
    if base == "mlp_tiny":
        xtr, xte = xtr.reshape(-1, 64), xte.reshape(-1, 64)
    elif base == "cnn_small":
        xtr, xte = xtr[..., None], xte[..., None]
    build = {"mlp_tiny": mlp_tiny, "cnn_small": cnn_small, "lstm_sparse": lstm_sparse}[base]
    epochs = {"mlp_tiny": 60, "cnn_small": 40, "lstm_sparse": 40}[base]
    model = _compile_fit(build(False), xtr, ytr, epochs)
    acc = float(np.mean(np.argmax(model.predict(xte, verbose=0), -1) == yte))
    model.save(MODELS / f"{name}.h5", include_optimizer=False)
    info = {
        "name": name,
        "float_counterpart_of": base,
        "seed": SEED,
        "data": "sklearn digits, 75/25 stratified split, random_state=0",
        "epochs": epochs,
        "float_accuracy": round(acc, 4),
        "test_samples": int(len(yte)),
        "parameters": int(model.count_params()),
    }
    (MODELS / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"{name}: float {acc:.4f}")
    tf.keras.backend.clear_session()


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or [
        "mlp_tiny",
        "cnn_small",
        *LOWBIT,
        "lstm_sparse",
        "lstm_lba",
        "gru_sparse",
        "lstm_stacked",
    ]
    for n in names:
        if n == "lstm_lba":
            lstm_lba()
        elif n.endswith("_float"):
            train_float(n)
        else:
            train(n)


if __name__ == "__main__":
    main()

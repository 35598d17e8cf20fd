"""`hlsgen prune`: prune the LSTM and GRU layers of a Keras/QKeras model for the sparse
recurrent engine.

Load-balance-aware (ESE): every one of P processing elements keeps the same number of
weights of the stacked gate matrix [kernel; recurrent] (gate row r belongs to PE r mod P; a
GRU's rows as the engine lays them out, and with reset_after=False each of its two passes
balanced on its own, :func:`~hlsgen.compress.prune.pe_map`);
or plain magnitude pruning, to compare.  The model is then fine-tuned with the mask held,
and accuracies before, after pruning and after fine-tuning are reported with the per-PE
non-zero counts of the quantized weights the hardware will hold.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import HlsgenError
from .prune import imbalance, lba_mask, magnitude_mask, pe_map

RECURRENT = ("LSTM", "QLSTM", "GRU", "QGRU")


def training_data(path, model_path, input_shape):
    """``x_train, y_train, x_test, y_test`` from ``path`` (.npz, no pickles) or the bundled digits,
    shaped to ``input_shape``."""
    if path is None:
        from ..data import digits

        xtr, xte, ytr, yte = digits()
        shape = tuple(input_shape[1:])
        if int(np.prod(shape)) != 64:
            raise HlsgenError(
                f"the model's input {shape} is not shaped like the digits data; give --data X.npz", file=model_path
            )
        return xtr.reshape((-1,) + shape), ytr, xte.reshape((-1,) + shape), yte
    p = Path(path)
    try:
        d = np.load(p, allow_pickle=False)
        return d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    except Exception as e:
        raise HlsgenError(
            f"not a readable .npz with x_train, y_train, x_test, y_test ({type(e).__name__})", file=str(path)
        ) from None


def _accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=256), -1) == y))


def hold_masks(variables, masks):
    """A Keras callback that keeps pruned weights at zero while training."""
    import tensorflow as tf

    class Hold(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for v, m in zip(variables, masks, strict=True):
                v.assign(v * m)

    return Hold()


def prune_keras_model(model, pe: int, density: float, method: str, epochs: int, xtr, ytr, xte, yte) -> dict:
    """Prune every LSTM and GRU layer of ``model`` in place and fine-tune with the mask held.

    Returns the accuracies (before, pruned, fine-tuned) and the per-PE counts of the masks.
    """
    import tensorflow as tf

    lstms = [layer for layer in model.layers if layer.__class__.__name__ in RECURRENT]
    if not lstms:
        raise HlsgenError("no LSTM or GRU layer to prune")
    acc0 = _accuracy(model, xte, yte)
    variables, masks, report = [], [], []
    for layer in lstms:
        cell = layer.cell
        k, r = cell.kernel.numpy(), cell.recurrent_kernel.numpy()
        stacked = np.vstack([k, r])
        kind = "gru" if "GRU" in layer.__class__.__name__ else "lstm"
        if pe > stacked.shape[1]:
            raise HlsgenError(
                f"--pe {pe}: more PEs than the {stacked.shape[1]} gate rows",
                layer=layer.name,
                layer_type=layer.__class__.__name__,
            )
        where = pe_map(kind, k.shape[0], r.shape[0], pe, bool(getattr(cell, "reset_after", True)))
        m = lba_mask(stacked, pe, density, *where) if method == "lba" else magnitude_mask(stacked, density)
        mk, mr = m[: k.shape[0]].astype(np.float32), m[k.shape[0] :].astype(np.float32)
        cell.kernel.assign(k * mk)
        cell.recurrent_kernel.assign(r * mr)
        variables += [cell.kernel, cell.recurrent_kernel]
        masks += [mk, mr]
        report.append((layer.name, imbalance(m.astype(np.int64), pe, *where)))
    acc1 = _accuracy(model, xte, yte)
    if epochs > 0:
        from_logits = getattr(model.layers[-1], "activation", None) is not tf.keras.activations.softmax

        model.compile(
            optimizer=tf.keras.optimizers.Adam(1e-3),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        )
        model.fit(
            xtr, ytr, epochs=epochs, batch_size=32, verbose=0, shuffle=True, callbacks=[hold_masks(variables, masks)]
        )
    acc2 = _accuracy(model, xte, yte)
    return {"accuracy": {"before": acc0, "pruned": acc1, "fine_tuned": acc2}, "masks": report}


def prune_model(model_path, output, pe: int, density: float, method: str, epochs: int, data=None) -> int:
    from ..frontends.keras.loader import load_model_file, quiet_tensorflow

    quiet_tensorflow()
    out = Path(output)
    if out.is_dir():
        raise HlsgenError("-o is a directory; give the pruned model's file name (.h5)", file=str(out))
    if out.suffix.lower() != ".h5":
        raise HlsgenError("-o: the pruned model is written as Keras .h5; give a name ending in .h5", file=str(out))
    if not 0 < density <= 1:
        raise HlsgenError(f"--density {density}: must be in (0, 1]")
    if pe < 1:
        raise HlsgenError(f"--pe {pe}: must be a positive integer")
    model = load_model_file(str(model_path))
    if not any(layer.__class__.__name__ in RECURRENT for layer in model.layers):
        raise HlsgenError("no LSTM or GRU layer to prune", file=str(model_path))
    xtr, ytr, xte, yte = training_data(data, str(model_path), model.input_shape)
    if len(xtr) == 0 or len(xte) == 0:
        raise HlsgenError("empty training or test data", file=str(data))
    try:
        res = prune_keras_model(model, pe, density, method, epochs, xtr, ytr, xte, yte)
    except HlsgenError as e:
        raise e.located(file=str(model_path)) from None
    acc = res["accuracy"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        part = Path(tmp) / "model.h5"  # whole, then renamed: never half a file at -o
        model.save(part, include_optimizer=False)
        part.replace(out)
    names = ", ".join(n for n, _ in res["masks"])
    print(f"pruned {names} of {model_path}: {method}, density {density:.1%}, {pe} PEs")
    print(
        f"accuracy: {acc['before']:.4f} before, {acc['pruned']:.4f} pruned, "
        f"{acc['fine_tuned']:.4f} after {epochs} epochs of fine-tuning"
    )
    for name, b in res["masks"]:
        print(f"'{name}' weights kept per PE (mask): {b['min']}..{b['max']}, imbalance {b['imbalance']:.3f}")
    # what the hardware will hold: the quantized weights (a small weight may quantize to 0)
    from ..frontends.keras import convert_keras

    try:
        g = convert_keras(str(out))
        for n in g.nodes:
            if n.op in ("LSTM", "GRU"):
                kr = np.vstack([n.kernel.raw, n.recurrent.raw])
                where = pe_map(n.op.lower(), n.kernel.raw.shape[0], n.units, pe, bool(getattr(n, "reset_after", True)))
                b = imbalance(kr, pe, *where)
                print(
                    f"'{n.name}' non-zeros per PE (quantized): {b['min']}..{b['max']}, "
                    f"imbalance {b['imbalance']:.3f}"
                )
    except HlsgenError as e:
        print(f"note: the pruned model does not convert yet: {e}")
    print(f"wrote {out}")
    return 0

"""The Keras 3 side of the Keras 3 / HGQ2 frontend: a process in the second environment.

hlsgen's own environment runs QKeras on TF 2.15's Keras 2, which cannot read a Keras 3
file.  This script runs under the Keras 3 environment's Python (``make venv-keras3``),
loads the model once with Keras's safe mode, and answers requests on stdin/stdout in
the format of :mod:`wire` (JSON headers, ``.npy`` arrays, no pickles):

``load``      the layers, their shapes, configs and quantizers
``weights``   a layer's kernel and bias as the layer quantizes them (HGQ2's ``qkernel``)
``quantizer`` a quantizer's k, i, f broadcast over its tensor, and its modes
``apply``     element-wise steps (an activation, an input/output quantizer, a quantizer
              layer) on probe values, so that hlsgen tabulates HGQ2's own functions
``predict``   the model's forward pass (logits when a final softmax is stripped)

It imports numpy, keras and (when installed) hgq only; nothing of hlsgen but :mod:`wire`.
"""

from __future__ import annotations

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import wire  # noqa: E402

#: config keys passed to hlsgen (everything else stays in the worker)
CONFIG_KEYS = (
    "units",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "groups",
    "use_bias",
    "pool_size",
    "depth_multiplier",
    "target_shape",
    "max_value",
    "negative_slope",
    "threshold",
    "keepdims",
    "enable_iq",
    "enable_oq",
    "axis",
)


class Worker:
    def __init__(self):
        import keras

        try:
            import hgq  # noqa: F401  (registers HGQ2's layers with Keras)
        except ImportError:
            pass
        self.keras = keras
        self.model = None
        self.layers = {}

    # ------------------------------------------------------------------ requests
    def load(self, h, arrays):
        keras = self.keras
        self.model = keras.saving.load_model(h["path"], compile=False, safe_mode=True)
        self.layers = {lyr.name: lyr for lyr in self.model.layers}
        inputs = [{"name": t._keras_history.operation.name, "shape": _shape(t.shape)} for t in self.model.inputs]
        outputs = [{"name": t._keras_history.operation.name, "shape": _shape(t.shape)} for t in self.model.outputs]
        layers = []
        for lyr in self.model.layers:
            cfg = lyr.get_config()
            info = {
                "name": lyr.name,
                "class": type(lyr).__name__,
                "module": type(lyr).__module__,
                "inbound": _inbound(lyr),
                "input_shape": _tensor_shape(lyr, "input") if type(lyr).__name__ != "InputLayer" else None,
                "output_shape": _tensor_shape(lyr, "output"),
                "config": {k: _plain(cfg[k]) for k in CONFIG_KEYS if k in cfg},
                "activation": _fn_name(getattr(lyr, "activation", None)),
                "quantizers": [w for w in ("iq", "oq") if _quantizer(lyr, w) is not None],
            }
            if type(lyr).__name__ == "Quantizer":
                info["quantizers"].append("self")
            layers.append(info)
        return {
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
            "inputs": inputs,
            "outputs": outputs,
            "layers": layers,
        }, []

    def weights(self, h, arrays):
        lyr = self.layers[h["layer"]]
        kernel = getattr(lyr, "qkernel", None)
        if kernel is None:
            kernel = getattr(lyr, "kernel", None)
        bias = getattr(lyr, "qbias", None) if hasattr(lyr, "qbias") else getattr(lyr, "bias", None)
        numpy = self.keras.ops.convert_to_numpy
        out = [np.asarray(numpy(kernel), dtype=np.float32)] if kernel is not None else []
        if bias is not None:
            out.append(np.asarray(numpy(bias), dtype=np.float32))
        return {"kernel": kernel is not None, "bias": bias is not None, "quantized": hasattr(lyr, "qkernel")}, out

    def quantizer(self, h, arrays):
        q = _quantizer(self.layers[h["layer"]], h["which"])
        inner = getattr(q, "quantizer", q)
        shape = (1,) + tuple(h["shape"])
        info = {
            "q_type": str(getattr(getattr(q, "config", None), "q_type", type(inner).__name__)),
            "class": type(inner).__name__,
            "round_mode": getattr(inner, "round_mode", None),
            "overflow_mode": getattr(inner, "overflow_mode", None),
            "scaled": getattr(q, "scaler", None) is not None or getattr(q, "affine", None) is not None,
        }
        if not hasattr(inner, "kif"):
            return info, []
        numpy = self.keras.ops.convert_to_numpy
        k, i, f = (np.broadcast_to(np.asarray(numpy(v), dtype=np.float64), shape) for v in inner.kif)
        return info, [k, i, f]

    def apply(self, h, arrays):
        """Element-wise steps on probe values ``x`` [M, c]: the values are laid over every
        position of a tensor shaped like the layer's (so each call is HGQ2's own, on its own
        shape), which is valid because hlsgen checked the bits are the same at every position."""
        (x,) = arrays
        shape = tuple(h["shape"])
        c_all = shape[-1]
        per_pos = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        m, c = x.shape
        if c != c_all:
            x = np.repeat(x[:, :1], c_all, axis=1)
        rows = -(-m // per_pos) * per_pos
        xp = np.zeros((rows, c_all), dtype=np.float32)
        xp[:m] = x
        t = self.keras.ops.convert_to_tensor(xp.reshape((rows // per_pos,) + shape))
        for kind, name in h["steps"]:
            lyr = self.layers[name]
            if kind == "activation":
                t = lyr.activation(t)
            elif kind in ("iq", "oq"):
                t = _quantizer(lyr, kind)(t, training=False)
            else:  # an element-wise layer
                t = lyr(t, training=False)
        y = np.asarray(t, dtype=np.float64).reshape(rows, c_all)[:m]
        return {}, [y[:, :c]]

    def predict(self, h, arrays):
        (x,) = arrays
        model = self.model
        strip = h.get("strip")
        saved = None
        if strip:
            lyr = self.layers[strip]
            if type(lyr).__name__ in ("Activation", "Softmax"):
                model = self.keras.Model(model.inputs, lyr.input)
            else:
                saved = lyr.activation
                lyr.activation = self.keras.activations.linear
        try:
            y = model.predict(x.astype(np.float32), verbose=0, batch_size=256)
        finally:
            if saved is not None:
                self.layers[strip].activation = saved
        return {}, [np.asarray(y, dtype=np.float64)]


# ---------------------------------------------------------------------- helpers
def _quantizer(lyr, which):
    if which == "self":
        return lyr if type(lyr).__name__ == "Quantizer" else None
    if which == "iq" and not getattr(lyr, "enable_iq", False):
        return None
    if which == "oq" and not getattr(lyr, "enable_oq", False):
        return None
    try:
        return getattr(lyr, which, None)
    except AttributeError:
        return None


def _shape(s):
    return None if s is None else [None if d is None else int(d) for d in s][1:]


def _tensor_shape(lyr, which):
    try:
        t = getattr(lyr, which)
    except (AttributeError, ValueError):
        return None
    return None if isinstance(t, (list, tuple)) else _shape(t.shape)


def _inbound(lyr):
    nodes = getattr(lyr, "_inbound_nodes", None) or []
    if not nodes:
        return []
    return [p.operation.name for p in nodes[0].parent_nodes]


def _fn_name(fn):
    if fn is None:
        return None
    return getattr(fn, "__name__", type(fn).__name__)


def _plain(v):
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # keep stray prints of the libraries off the message stream
    sys.stdout = sys.stderr
    worker = None
    while True:
        h, arrays = wire.receive(stdin)
        if not h:
            return
        try:
            if worker is None:
                worker = Worker()
            reply, out = getattr(worker, h["op"])(h, arrays)
            wire.send(stdout, dict(reply, ok=True), out)
        except Exception as e:  # reported to hlsgen, which words it for the user
            wire.send(
                stdout,
                {
                    "ok": False,
                    "error": f"{type(e).__name__}: {e}".splitlines()[0][:500],
                    "trace": traceback.format_exc(),
                },
            )


if __name__ == "__main__":
    main()

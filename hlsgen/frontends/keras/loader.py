"""Read a Keras / QKeras model from a file, refusing bad files in one line."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from ...errors import HlsgenError

_H5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    import tensorflow as tf

    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras\..*")
    qkeras_compat()

    tf.get_logger().setLevel(logging.ERROR)
    return tf


def qkeras_compat():
    """Let QKeras 0.9.0's QGRU run on TF 2.15, which renamed two functions it calls.

    ``nest.is_sequence`` became ``nest.is_nested``; ``array_ops.unstack`` moved to
    ``array_ops_stack`` (used with ``reset_after=True``).  Aliases only; no behaviour changes.
    """
    from tensorflow.python.ops import array_ops
    from tensorflow.python.util import nest

    if not hasattr(nest, "is_sequence"):
        nest.is_sequence = nest.is_nested
    if not hasattr(array_ops, "unstack"):
        from tensorflow.python.ops import array_ops_stack

        array_ops.unstack = array_ops_stack.unstack


def custom_objects() -> dict:
    from qkeras.utils import _add_supported_quantized_objects

    objs: dict = {}
    _add_supported_quantized_objects(objs)
    return objs


# layer classes whose saved config carries code (Keras would run it on load) or names one
CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
KNOWN_WRAPPERS = {"Functional", "Sequential", "Model", "InputLayer", "PruneLowMagnitude"}


def saved_config(p: Path) -> dict:
    """The model config a ``.h5`` / ``.keras`` file holds, read as JSON data only."""
    import json
    import zipfile

    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                if "config.json" not in z.namelist():
                    raise HlsgenError("a zip file without config.json: not a Keras model", file=str(p))
                text = z.read("config.json").decode("utf-8")
                if "metadata.json" in z.namelist():
                    version = json.loads(z.read("metadata.json").decode("utf-8")).get("keras_version")
                    refuse_keras3(p, version)
        else:
            import h5py

            with h5py.File(p, "r") as f:
                version = f.attrs.get("keras_version")
                refuse_keras3(p, version.decode() if isinstance(version, bytes) else version)
                text = f.attrs.get("model_config")
                if text is None:
                    raise HlsgenError(
                        "holds weights only (no model config): give the model's JSON or full .h5 file",
                        file=str(p),
                    )
                if isinstance(text, bytes):
                    text = text.decode("utf-8")
        cfg = json.loads(text)
    except HlsgenError:
        raise
    except Exception as e:  # corrupt HDF5 / zip / JSON
        raise HlsgenError(f"cannot read the model config ({type(e).__name__})", file=str(p)) from None
    if not isinstance(cfg, dict):
        raise HlsgenError("the model config is not a JSON object", file=str(p))
    return cfg


def refuse_keras3(p: Path, version) -> None:
    """A file saved by Keras 3 cannot be read by Keras 2 (TF 2.15, which QKeras needs): say so."""
    if isinstance(version, str) and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3:
        raise HlsgenError(
            f"saved by Keras {version}; hlsgen reads Keras 2 files (QKeras runs on TF 2.15's Keras 2): "
            "save the model with tf-keras / TF <= 2.15 as .h5, or export it to ONNX and convert that",
            file=str(p),
        )


def _layers(cfg):
    """Every layer-shaped object (a dict with class_name and config) in a saved config."""
    if isinstance(cfg, dict):
        if "class_name" in cfg and isinstance(cfg.get("config"), dict):
            yield cfg
        for v in cfg.values():
            yield from _layers(v)
    elif isinstance(cfg, list):
        for v in cfg:
            yield from _layers(v)


def check_config(p: Path, cfg: dict) -> None:
    """Refuse a saved model whose config would run code when Keras deserializes it: Lambda
    layers (marshalled Python), custom classes, registered or module-qualified objects
    hlsgen does not know.  Only the JSON is read here."""
    import tensorflow as tf

    known = set(dir(tf.keras.layers)) | set(custom_objects()) | KNOWN_WRAPPERS
    for obj in _layers(cfg):
        cls = obj.get("class_name")
        name = obj["config"].get("name", "?")
        if not isinstance(cls, str):
            raise HlsgenError("a layer without a class name in the model config", file=str(p), layer=str(name))
        if cls in CODE_LAYERS or "function_type" in obj["config"] or obj["config"].get("function") is not None:
            raise HlsgenError(
                "Lambda layers hold Python code, which hlsgen never runs; replace the layer with a supported one",
                file=str(p),
                layer=str(name),
                layer_type=cls,
            )
        looks_like_layer = "trainable" in obj["config"] or "batch_input_shape" in obj["config"]
        if looks_like_layer and cls not in known:
            raise HlsgenError(
                f"unknown layer class {cls!r} (custom objects are never loaded)",
                file=str(p),
                layer=str(name),
                layer_type=cls,
            )


def _keras_zip_rebuilt(p: Path):
    """A ``.keras`` file whose recorded build shapes Keras 2.15 cannot replay (QLSTM: "as_list()
    is not defined on an unknown TensorShape"): rebuild the model from its (already checked)
    config without them, through its InputLayer, then load the weights.  None if that fails."""
    import zipfile

    def drop_build(o):
        if isinstance(o, dict):
            o.pop("build_config", None)
            o.pop("compile_config", None)
            for v in o.values():
                drop_build(v)
        elif isinstance(o, list):
            for v in o:
                drop_build(v)

    try:
        with zipfile.ZipFile(p) as z:
            cfg = json.loads(z.read("config.json"))
        drop_build(cfg)
        model = model_from_config(cfg)
        model.load_weights(str(p))
        return model
    except Exception:
        return None


#: a model JSON larger than this is not a Keras architecture
MAX_JSON_BYTES = 64 << 20


def weights_beside(p: Path) -> Path | None:
    """The weights file hls4ml's examples ship beside ``X.json``: ``X_weights.h5``, else ``X.h5``."""
    for cand in (p.with_name(p.stem + "_weights.h5"), p.with_suffix(".h5")):
        if cand.is_file():
            return cand
    return None


def _load_json_model(p: Path, weights) -> object:
    """A model JSON (``model.to_json()``) with its weights file, as hls4ml's examples ship them."""
    if p.stat().st_size > MAX_JSON_BYTES:
        raise HlsgenError("too large for a model JSON", file=str(p))
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except Exception as e:
        raise HlsgenError(f"not a readable model JSON ({type(e).__name__})", file=str(p)) from None
    if not isinstance(cfg, dict) or "class_name" not in cfg or "config" not in cfg:
        raise HlsgenError("not a Keras model JSON (no class_name and config at the top)", file=str(p))
    check_config(p, cfg)
    w = Path(weights) if weights else weights_beside(p)
    if w is None:
        raise HlsgenError(
            f"a model JSON holds no weights; give the weights file with --weights W.h5 "
            f"(none found beside it as {p.stem}_weights.h5 or {p.stem}.h5)",
            file=str(p),
        )
    if not w.is_file():
        raise HlsgenError("weights file not found", file=str(w))
    with open(w, "rb") as f:
        if not f.read(8).startswith(_H5_MAGIC):
            raise HlsgenError("not an HDF5 weights file", file=str(w))
    try:
        model = model_from_config(cfg)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HlsgenError(f"cannot build the model ({type(e).__name__}: {first[:200]})", file=str(p)) from None
    try:
        model.load_weights(str(w))
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HlsgenError(
            f"the weights do not fit the model of {p.name} ({type(e).__name__}: {first[:200]})", file=str(w)
        ) from None
    return strip_pruning(model)


def load_model_file(path, weights=None) -> object:
    """Load a ``.h5`` / ``.keras`` file, or a model ``.json`` with its weights ``.h5`` (found
    beside it when ``weights`` is None).  QKeras layers and tfmot pruning wrappers allowed."""
    p = Path(path)
    if not p.exists():
        raise HlsgenError("file not found", file=str(path))
    if p.is_dir():
        raise HlsgenError("is a directory, not a model file (.h5, .keras, or .json with weights)", file=str(path))
    with open(p, "rb") as f:
        head = f.read(8)
    if not head:
        raise HlsgenError("file is empty", file=str(path))
    if p.suffix.lower() == ".json" or head.lstrip()[:1] == b"{":
        return _load_json_model(p, weights)
    if weights is not None:
        raise HlsgenError("--weights goes with a model .json; this file holds its own weights", file=str(path))
    if not (head.startswith(_H5_MAGIC) or head.startswith(_ZIP_MAGIC)):
        raise HlsgenError("not a Keras model file (expected an HDF5 .h5 or a zip .keras file)", file=str(path))
    tf = quiet_tensorflow()
    import tensorflow_model_optimization as tfmot

    check_config(p, saved_config(p))  # before anything is deserialized: no code from the file runs
    try:
        with tfmot.sparsity.keras.prune_scope():
            model = tf.keras.models.load_model(str(p), custom_objects=custom_objects(), compile=False)
    except Exception as e:  # Keras raises many types for corrupt files
        model = _keras_zip_rebuilt(p) if head.startswith(_ZIP_MAGIC) else None
        if model is None:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise HlsgenError(f"cannot read the model ({type(e).__name__}: {first[:200]})", file=str(path)) from None
    if not isinstance(model, tf.keras.Model):
        raise HlsgenError("file holds no Keras model", file=str(path))
    return strip_pruning(model)


def strip_pruning(model):
    """Remove tfmot pruning wrappers; the zeros they left stay in the weights as sparsity."""
    import tensorflow_model_optimization as tfmot

    has_wrapper = any(type(layer).__name__ == "PruneLowMagnitude" for layer in model.layers)
    if has_wrapper:
        model = tfmot.sparsity.keras.strip_pruning(model)
    return model


@contextlib.contextmanager
def float64_model(model):
    """The same model computing in float64, for comparisons where float32 would round.

    QKeras evaluates in float32; where an exact accumulator needs more than 24 bits,
    float32 rounds it and the framework's own answer is not the exact one.  Rebuilding
    the graph in float64 keeps every such value exact (up to 53 bits).  QKeras
    quantizers read ``floatx`` when called, so it stays float64 inside the block.
    """
    tf = quiet_tensorflow()

    def f64(o):
        if isinstance(o, dict):
            return {k: ("float64" if k == "dtype" and v == "float32" else f64(v)) for k, v in o.items()}
        if isinstance(o, list):
            return [f64(v) for v in o]
        return o

    # weights quantized once, by QKeras in float32 (what the model really uses); the float64
    # copy carries those values and no weight quantizers (some QKeras quantizers only run in float32)
    cfg = f64(model.get_config())
    quantized = {}
    for layer in model.layers:
        lcfg = _layer_config(cfg, layer.name)
        for obj, pairs in ((layer, _WEIGHT_QUANTIZERS), (getattr(layer, "cell", None), _CELL_QUANTIZERS)):
            if obj is None:
                continue
            for var_attr, q_attr, cfg_key in pairs:
                var, q = getattr(obj, var_attr, None), getattr(obj, q_attr, None)
                if var is not None and q:
                    quantized[id(var)] = np.asarray(q(var), dtype="float64")
                    # QKeras's QGRU multiplies the state by the input kernel when it has no
                    # recurrent quantizer: keep that one (it maps its own outputs to themselves)
                    keep = cfg_key == "recurrent_quantizer" and type(layer).__name__ == "QGRU"
                    if lcfg is not None and cfg_key in lcfg and not keep:
                        lcfg[cfg_key] = None
    values = [quantized.get(id(v), v.numpy().astype("float64")) for v in model.weights]
    old = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        yield rebuild(model, cfg, values)
    finally:
        tf.keras.backend.set_floatx(old)


def rebuild(model, cfg: dict, weights: list):
    """A new model of ``model``'s class from an edited ``get_config()``, with these weights."""
    new = model.__class__.from_config(quantizer_objects(cfg), custom_objects=custom_objects())
    new.set_weights(weights)
    return new


def model_from_config(cfg: dict):
    """A Sequential or functional model from its saved (already checked) config, quantizer
    objects restored."""
    tf = quiet_tensorflow()
    import tensorflow_model_optimization as tfmot

    cls = {"Sequential": tf.keras.Sequential}.get(cfg["class_name"], tf.keras.Model)
    with tfmot.sparsity.keras.prune_scope():
        return cls.from_config(quantizer_objects(cfg["config"]), custom_objects=custom_objects())


def quantizer_objects(cfg):
    """``cfg`` with every serialized QKeras quantizer turned back into its object.

    QActivation(quantized_relu(...)) serializes its quantizer as a dict, and its constructor
    needs the object back (Keras 2.15 rebuilds it only from legacy h5 configs).  Only classes
    QKeras registers are built; anything else stays data."""
    tf = quiet_tensorflow()
    objs = custom_objects()

    def walk(o):
        if isinstance(o, dict):
            cls = objs.get(o.get("class_name"))
            if (
                isinstance(cls, type)
                and not issubclass(cls, tf.keras.layers.Layer)
                and isinstance(o.get("config"), dict)
            ):
                return tf.keras.utils.deserialize_keras_object(o, custom_objects=objs)
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(cfg)


def logits_model(model, layer_name: str):
    """``model`` with the softmax of ``layer_name`` (an Activation layer, or a layer's
    ``activation``) replaced by the identity: the logits that StripSoftmax keeps."""
    cfg = model.get_config()
    lcfg = _layer_config(cfg, layer_name)
    if lcfg is None or "activation" not in lcfg:
        raise HlsgenError(f"no softmax in layer '{layer_name}' to strip", layer=layer_name)
    lcfg["activation"] = "linear"
    return rebuild(model, cfg, model.get_weights())


_WEIGHT_QUANTIZERS = (
    ("kernel", "kernel_quantizer_internal", "kernel_quantizer"),
    ("bias", "bias_quantizer_internal", "bias_quantizer"),
    ("depthwise_kernel", "depthwise_quantizer_internal", "depthwise_quantizer"),
)
_CELL_QUANTIZERS = (
    ("kernel", "kernel_quantizer_internal", "kernel_quantizer"),
    ("recurrent_kernel", "recurrent_quantizer_internal", "recurrent_quantizer"),
    ("bias", "bias_quantizer_internal", "bias_quantizer"),
)


def _layer_config(cfg, name):
    for lc in cfg.get("layers", []):
        if lc.get("config", {}).get("name") == name:
            return lc["config"]
    return None

"""Keras / QKeras model -> IR graph.

One handler per layer family, registered with :func:`handles`.  Weights pass through
the layer's own quantizer and must come out on a power-of-two grid.  Element-wise
layers (activations, quantizers, batch-norm) are collected into a chain behind the
node that feeds them and become one exact table when something consumes the chain
(:mod:`hlsgen.frontends.probe`): the framework itself says what they compute.
"""

from __future__ import annotations

import numpy as np

from ...config import DEFAULT_PRECISION, Config
from ...errors import HlsgenError
from ...fixed import FixedType
from ...ir import Activation, Add, Conv, Dense, Graph, Input, IRError, Pool, Reshape, Weight
from ..builder import GraphBuilder
from ..probe import ProbeError, tabulate
from .common import Chain, _bias, _new_chain, float_scale, input_type_of_quantizer  # noqa: F401
from .loader import load_model_file, quiet_tensorflow, strip_pruning

HANDLERS: dict = {}


def handles(*class_names):
    def deco(fn):
        for c in class_names:
            HANDLERS[c] = fn
        return fn

    return deco


class KerasConverter(GraphBuilder):
    def __init__(self, model, config: Config, file: str | None, prequantized: bool = False):
        self.tf = quiet_tensorflow()
        self.model = model
        self.cfg = config
        self.file = file or "<in-memory model>"
        self.graph: Graph | None = None
        self.out: dict[str, Chain] = {}  # keras layer name -> chain on its output
        self.notes: list[str] = []
        self.approximations: list[str] = []
        self.skip_input_quantizer: str | None = None
        # weights already passed through their quantizers (a float64 copy made by float64_model)
        self.prequantized = prequantized

    # -------------------------------------------------------------- errors
    def fail(self, layer, msg):
        raise HlsgenError(msg, file=self.file, layer=layer.name, layer_type=type(layer).__name__)

    # -------------------------------------------------------------- graph building
    def spec(self, name):
        return self.graph[name].spec

    def materialize(self, layer, inbound_name) -> str:
        """IR node name holding the (fully applied) output of a Keras layer."""
        chain = self.out[inbound_name]
        if not chain.fns:
            return chain.node
        lname, ltype = chain.last_layer
        base = lname + "_act" if lname == chain.origin else lname
        if chain.exact_only:
            if any(label == "relu" for _, _, label in chain.fns):
                node = self.add(Activation(self.unique(base), [chain.node], function="relu"))
            else:
                chain.fns = []
                return chain.node
        else:
            spec = self.spec(chain.node)
            per_channel = any(pc for _, pc, _ in chain.fns)
            c = spec.shape[-1] if per_channel else 1
            fns = list(chain.fns)
            rank = chain.rank
            tf = self.tf

            def fn(x, fns=fns, c=c, rank=rank):
                n = x.shape[0]
                shape = (n,) + (1,) * (rank - 2) + (c,) if rank >= 2 else (n, c)
                t = tf.constant(x.reshape(shape))
                for f, _, _ in fns:
                    t = f(t)
                return np.asarray(t).reshape(n, c)

            label = " -> ".join(lbl for _, _, lbl in fns)
            try:
                step = tabulate(fn, spec, channels=c, source=label, float_dtype=self.cfg.table_precision)
            except ProbeError as e:
                # a float result (plain BatchNormalization, ...): the config's result precision
                # for that layer quantizes it, as hls4ml does; otherwise say how to give one
                rt = self.cfg.precision(lname, ltype, "result")
                if rt is None:
                    raise HlsgenError(
                        f"{e}, or give it a result precision in the config "
                        f"(LayerName: {{{lname}: {{Precision: {{result: ap_fixed<16,6>}}}}}})",
                        file=self.file,
                        layer=lname,
                        layer_type=ltype,
                    ) from None
                fns.append(
                    (
                        lambda t, rt=rt: self.tf.constant(
                            rt.to_float(rt.quantize(np.asarray(t, np.float64))).astype(np.float32)
                        ),
                        False,
                        f"quantize {rt}",
                    )
                )
                try:
                    step = tabulate(fn, spec, channels=c, source=label, float_dtype=self.cfg.table_precision)
                except ProbeError as e2:
                    raise HlsgenError(f"{e2}", file=self.file, layer=lname, layer_type=ltype) from None
                self.approximations.append(f"{lname}: float {ltype} output quantized to {rt} (config)")
            node = self.add(Activation(self.unique(base), [chain.node], function="step", step=step))
        new = Chain(node.name, chain.rank, origin=lname)
        self.out[inbound_name] = new
        return node.name

    # -------------------------------------------------------------- weights
    def weight(self, layer, arr, quantizer, what: str) -> Weight:
        """Quantize a float weight the way the layer does, and take its exact integer form."""
        arr = np.asarray(arr, dtype=np.float64 if self.prequantized else np.float32)
        kind = None
        qname = ""
        if quantizer is not None:
            qname = str(quantizer)
            if float_scale(quantizer) and not self.cfg.approximate:
                self.fail(
                    layer,
                    f"{what} quantizer {qname} has a float scale (alpha={quantizer.alpha!r}), "
                    "which cannot be exact; use alpha='auto_po2' (power-of-two scales) or alpha=None, "
                    f"or set Model: Approximate: true with a {what} precision in the config",
                )
            q = np.asarray(quantizer(self.tf.constant(arr)), dtype=np.float32)
            cls = type(quantizer).__name__
            kind = {
                "binary": "binary",
                "stochastic_binary": "binary",
                "ternary": "ternary",
                "stochastic_ternary": "ternary",
                "quantized_po2": "po2",
            }.get(cls)
        elif self.prequantized and type(layer).__name__.startswith("Q"):
            q = arr.astype(np.float64)
        else:
            w = self.config_weight(layer.name, type(layer).__name__, what, arr)
            if w is None:
                self.fail(
                    layer,
                    f"{what} is not quantized; add a {what} quantizer (QKeras) or give a precision "
                    f"in the config (LayerName: {{{layer.name}: {{Precision: ...}}}})",
                )
            return w
        try:
            if quantizer is not None and float_scale(quantizer):
                raise ValueError("float scale")
            w = Weight.from_values(q, quantizer=qname, max_frac=32)
            if kind == "po2" and w.detect_kind() not in ("po2", "binary", "ternary"):
                kind = None
            if kind:
                w.kind = kind
            return w
        except ValueError:
            pass
        # a quantizer whose values are off any power-of-two grid: a float scale
        ptype = self.cfg.precision(layer.name, type(layer).__name__, "bias" if what == "bias" else "weight")
        if self.cfg.approximate and ptype is not None:
            self.approximations.append(
                f"{layer.name}.{what}: {qname} has a float scale; weights re-quantized to {ptype}"
            )
            return Weight(ptype.quantize(q), ptype, quantizer=str(ptype))
        alpha = getattr(quantizer, "alpha", None)
        hint = (
            "use alpha='auto_po2' (power-of-two scales) or alpha=None"
            if alpha is not None
            else "use a fixed-point quantizer"
        )
        self.fail(
            layer,
            f"{what} quantizer {qname} gives values off any power-of-two grid "
            f"(a float scale cannot be exact); {hint}, or set Model: Approximate: true "
            f"with a {what} precision in the config",
        )

    # -------------------------------------------------------------- activations
    def activation_fn(self, layer, act, chain: Chain, last=False):
        """Append a Keras/QKeras activation (object or string) to a chain."""
        name = getattr(act, "__name__", None) or type(act).__name__
        qname = str(act) if not hasattr(act, "__name__") else name
        if name == "linear":
            return
        if name == "relu" and not hasattr(act, "bits"):
            chain.fns.append((lambda t: self.tf.nn.relu(t), False, "relu"))
        elif name == "softmax":
            if self.cfg.strip_softmax and last:
                self.notes.append(f"{layer.name}: final softmax removed (StripSoftmax); outputs are logits")
                self.graph.meta["stripped_softmax"] = layer.name
                return
            self.fail(
                layer,
                "softmax is not supported in the datapath; set Model: StripSoftmax: true to "
                "drop a final softmax (argmax is unchanged)",
            )
        else:
            module = getattr(act, "__module__", None) or type(act).__module__
            is_quantizer = hasattr(act, "bits") or str(module).startswith("qkeras")
            chain.fns.append((lambda t, a=act: a(t), False, qname))
            if not is_quantizer:
                # a float function (sigmoid, tanh, ...): its result needs a configured precision
                rt = self.cfg.precision(layer.name, type(layer).__name__, "result")
                if rt is None:
                    self.fail(
                        layer,
                        f"activation '{name}' returns floats; use a QKeras quantized activation "
                        f"or give a result precision in the config",
                    )
                chain.fns.append(
                    (
                        lambda t, rt=rt: self.tf.constant(
                            rt.to_float(rt.quantize(np.asarray(t, dtype=np.float64))).astype(np.float32)
                        ),
                        False,
                        f"quantize {rt}",
                    )
                )
                self.approximations.append(f"{layer.name}: float '{name}' quantized to {rt}")
        chain.last_layer = (layer.name, type(layer).__name__)

    # -------------------------------------------------------------- driver
    def inbound(self, layer) -> list[str]:
        names = []
        for node in layer._inbound_nodes[:1]:
            ils = node.inbound_layers
            if not isinstance(ils, (list, tuple)):
                ils = [ils]
            names += [lyr.name for lyr in ils]
        return names

    def run(self) -> Graph:
        model = self.model
        layers = list(model.layers)
        if not layers:
            raise HlsgenError("the model has no layers", file=self.file)
        for what, tensors in (("inputs", model.inputs), ("outputs", model.outputs)):
            if len(tensors or []) > 1:
                names = ", ".join(t.name.split("/")[0].split(":")[0] for t in tensors)
                raise HlsgenError(
                    f"the model has {len(tensors)} {what} ({names}); hlsgen converts models with one input "
                    "and one output (split the model, or convert each part)",
                    file=self.file,
                )
        if type(layers[0]).__name__ != "InputLayer":
            # Sequential models built without an explicit InputLayer
            self.input_layer(model, None)
            prev = "__input__"
        else:
            prev = None
        final = layers[-1].name
        for layer in layers:
            cls = type(layer).__name__
            handler = HANDLERS.get(cls)
            if handler is None:
                self.fail(
                    layer,
                    f"layer type {cls} is not supported (supported: "
                    f"{', '.join(sorted(k for k in HANDLERS if k != 'InputLayer'))})",
                )
            ins = self.inbound(layer) or ([prev] if prev else [])
            if prev == "__input__" and ins and ins[0] not in self.out:
                ins = ["__input__"]
            if not getattr(layer, "_inbound_nodes", None) and prev:
                ins = [prev]
            try:
                handler(self, layer, ins, layer.name == final)
            except HlsgenError:
                raise
            except (IRError, ValueError, OverflowError) as e:
                self.fail(layer, str(e))
            prev = layer.name
        out_name = self.materialize(layers[-1], final)
        self.graph.output = out_name
        self.graph.meta.update(
            {
                "source": self.file,
                "frontend": "keras",
                "exact": not self.approximations,
                "approximations": self.approximations,
                "notes": self.notes,
            }
        )
        self.graph.infer()
        if self.approximations:
            self.graph.meta["measured_error"] = self.measure_error()
        return self.graph

    def measure_error(self, n: int = 256) -> dict:
        """Error of an approximate conversion against the float model, on inputs from the input grid."""
        from ...reference.execute import overflow_counts, predict

        t = self.graph.input.type
        rng = np.random.default_rng(0)
        lo, hi = max(t.min_raw, -(1 << 30)), min(t.max_raw, 1 << 30)
        # inputs spread over the central part of the input range, on the input grid
        x = t.to_float(rng.integers(lo // 4, hi // 4, size=(n,) + tuple(self.graph.input.shape), endpoint=True))
        y_ref = predict(self.graph, x)
        overflow = overflow_counts(self.graph, self.graph.input.type.quantize(x))
        model = self.model
        if self.graph.meta.get("stripped_softmax"):
            from .loader import logits_model

            model = logits_model(model, self.graph.meta["stripped_softmax"])
        y_fw = np.asarray(model.predict(x.astype(np.float32), verbose=0), dtype=np.float64)
        err = np.abs(y_ref - y_fw)
        return {
            "vectors": n,
            "inputs": "uniform on the input grid over a quarter of its range",
            "max_abs": float(err.max()),
            "mean_abs": float(err.mean()),
            "max_abs_output": float(np.abs(y_fw).max()),
            "overflow": overflow,
        }

    def input_layer(self, model, layer):
        shape = tuple(model.input_shape[1:])
        if any(s is None for s in shape):
            raise HlsgenError(f"input shape {shape} has unknown dimensions; give a fixed input shape", file=self.file)
        in_name = layer.name if layer is not None else (list(getattr(model, "input_names", None) or []) or [None])[0]
        t = self.cfg.input_precision(in_name)
        first = self.first_consumer(model)
        if first is not None and t is None:
            q = getattr(first, "quantizer", None)
            t = input_type_of_quantizer(q)
            if t is not None:
                self.skip_input_quantizer = first.name
                self.notes.append(f"input type {t} taken from '{first.name}' ({q})")
        if t is None:
            t = FixedType.parse(DEFAULT_PRECISION)
            self.notes.append(f"input type {t} (default; set Model: InputPrecision to change it)")
        name = layer.name if layer is not None else "input"
        self.add(Input(name, [], shape=shape, type=t))
        self.out[layer.name if layer is not None else "__input__"] = Chain(name, len(shape) + 1)

    def first_consumer(self, model):
        layers = [lyr for lyr in model.layers if type(lyr).__name__ != "InputLayer"]
        if layers and type(layers[0]).__name__ == "QActivation":
            return layers[0]
        return None


# ======================================================================= handlers
@handles("InputLayer")
def _input(cv, layer, ins, last):
    cv.input_layer(cv.model, layer)


def _elementwise_source(cv, layer, ins):
    """The chain a unary element-wise layer extends (copied, so branches stay separate)."""
    src = cv.out[ins[0]]
    ch = Chain(src.node, src.rank, src.origin)
    ch.fns = list(src.fns)
    ch.last_layer = src.last_layer
    cv.out[layer.name] = ch
    return ch


@handles("Activation", "QActivation", "ReLU")
def _activation(cv, layer, ins, last):
    ch = _elementwise_source(cv, layer, ins)
    if cv.skip_input_quantizer == layer.name:
        return  # already applied when the input was quantized
    if type(layer).__name__ == "ReLU":
        if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
            cv.fail(layer, "ReLU with max_value/negative_slope/threshold is not supported; use quantized_relu")
        ch.fns.append((lambda t: cv.tf.nn.relu(t), False, "relu"))
        ch.last_layer = (layer.name, "ReLU")
        return
    act = layer.quantizer if type(layer).__name__ == "QActivation" else layer.activation
    cv.activation_fn(layer, act, ch, last)


@handles("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")
def _identity(cv, layer, ins, last):
    _elementwise_source(cv, layer, ins)


@handles("BatchNormalization", "QBatchNormalization")
def _batchnorm(cv, layer, ins, last):
    ch = _elementwise_source(cv, layer, ins)
    ch.fns.append((lambda t, lyr=layer: lyr(t, training=False), True, f"batchnorm {layer.name}"))
    ch.last_layer = (layer.name, type(layer).__name__)


def _apply_layer_activation(cv, layer, node, last):
    node = _result_precision(cv, layer, node)
    ch = _new_chain(cv, layer, node)
    act = getattr(layer, "activation", None)
    if act is not None:
        cv.activation_fn(layer, act, ch, last)


def _result_precision(cv, layer, node):
    """Plain Keras layers: requantize the result where the config gives a precision (as hls4ml)."""
    if type(layer).__name__.startswith("Q"):
        return node
    rt = cv.cfg.precision(layer.name, type(layer).__name__, "result")
    if rt is None:
        return node
    return cv.add(Activation(cv.unique(layer.name + "_result"), [node.name], function="requant", type=rt))


@handles("Dense", "QDense")
def _dense(cv, layer, ins, last):
    x = cv.materialize(layer, ins[0])
    k = cv.weight(layer, layer.kernel.numpy(), getattr(layer, "kernel_quantizer_internal", None), "kernel")
    node = cv.add(Dense(cv.unique(layer.name), [x], kernel=k, bias=_bias(cv, layer)))
    _apply_layer_activation(cv, layer, node, last)


@handles("Conv1D", "Conv2D", "QConv1D", "QConv2D", "DepthwiseConv2D", "QDepthwiseConv2D")
def _conv(cv, layer, ins, last):
    cls = type(layer).__name__
    depthwise = "Depthwise" in cls
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        cv.fail(layer, "data_format channels_first is not supported; use channels_last")
    if any(d != 1 for d in layer.dilation_rate):
        cv.fail(layer, f"dilation_rate {layer.dilation_rate} is not supported; use 1")
    if getattr(layer, "groups", 1) != 1:
        cv.fail(layer, f"groups={layer.groups} is not supported; use DepthwiseConv2D or groups=1")
    if layer.padding not in ("valid", "same"):
        cv.fail(layer, f"padding '{layer.padding}' is not supported; use 'valid' or 'same'")
    x = cv.materialize(layer, ins[0])
    if depthwise:
        k = cv.weight(
            layer, layer.depthwise_kernel.numpy(), getattr(layer, "depthwise_quantizer_internal", None), "kernel"
        )
    else:
        k = cv.weight(layer, layer.kernel.numpy(), getattr(layer, "kernel_quantizer_internal", None), "kernel")
    node = cv.add(
        Conv(
            cv.unique(layer.name),
            [x],
            kernel=k,
            bias=_bias(cv, layer),
            strides=tuple(layer.strides),
            padding=layer.padding,
            depthwise=depthwise,
        )
    )
    _apply_layer_activation(cv, layer, node, last)


@handles(
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
)
def _pool(cv, layer, ins, last):
    cls = type(layer).__name__
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        cv.fail(layer, "data_format channels_first is not supported; use channels_last")
    if getattr(layer, "keepdims", False):
        cv.fail(layer, "keepdims=True is not supported")
    x = cv.materialize(layer, ins[0])
    mode = "max" if "Max" in cls else "avg"
    if cls.startswith("Global"):
        node = Pool(cv.unique(layer.name), [x], mode=mode, global_=True)
    else:
        if layer.padding != "valid":
            cv.fail(layer, f"padding '{layer.padding}' is not supported for pooling; use 'valid'")
        node = Pool(
            cv.unique(layer.name),
            [x],
            mode=mode,
            pool_size=tuple(layer.pool_size),
            strides=tuple(layer.strides),
            padding="valid",
        )
    _new_chain(cv, layer, cv.add(node))


@handles("Flatten", "Reshape")
def _reshape(cv, layer, ins, last):
    x = cv.materialize(layer, ins[0])
    shape = tuple(layer.output_shape[1:])
    _new_chain(cv, layer, cv.add(Reshape(cv.unique(layer.name), [x], shape=shape)))


@handles("Add", "QAdd")
def _add(cv, layer, ins, last):
    if len(ins) != 2:
        cv.fail(layer, f"Add of {len(ins)} tensors is not supported; add two at a time")
    a = cv.materialize(layer, ins[0])
    b = cv.materialize(layer, ins[1])
    _new_chain(cv, layer, cv.add(Add(cv.unique(layer.name), [a, b])))


@handles("QLSTM")
def _qlstm(cv, layer, ins, last):
    from .recurrent import convert_qlstm

    convert_qlstm(cv, layer, ins, last)


@handles("QGRU")
def _qgru(cv, layer, ins, last):
    from .recurrent import convert_qgru

    convert_qgru(cv, layer, ins, last)


@handles("LSTM", "GRU", "SimpleRNN")
def _float_rnn(cv, layer, ins, last):
    q = "Q" + type(layer).__name__
    cv.fail(
        layer,
        f"a float {type(layer).__name__} cannot be exact; use {q} with kernel/recurrent/bias "
        "quantizers, quantized activations and a state_quantizer",
    )


def convert_keras(model_or_path, config=None, weights=None) -> Graph:
    """Convert a Keras/QKeras model (object, .h5/.keras path, or .json path with ``weights``)
    to an IR graph."""
    cfg = Config.coerce(config)
    if isinstance(model_or_path, (str, bytes)) or hasattr(model_or_path, "__fspath__"):
        file = str(model_or_path)
        model = load_model_file(file, weights)
    else:
        file = None
        model = strip_pruning(model_or_path)
    if cfg.table_precision == "float64":
        # QKeras functions compute in Keras' floatx: read them off a float64 copy of the model
        from .loader import float64_model

        with float64_model(model) as m64:
            graph = KerasConverter(m64, cfg, file, prequantized=True).run()
        graph.meta["notes"].append("tables evaluated in float64 (TablePrecision)")
        return graph
    return KerasConverter(model, cfg, file).run()

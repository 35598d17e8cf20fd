"""Keras 3 / HGQ2 model -> IR graph, with Keras 3 running in its own environment.

The model is loaded once in a worker process (:mod:`.worker`, under the Keras 3
environment's Python).  Like the Keras 2 frontend, this converter never re-implements a
quantizer: weights come out of HGQ2's own ``qkernel``/``qbias``, and every element-wise
chain (a layer's activation, its output quantizer, the next layer's input quantizer, a
``Quantizer`` layer) is tabulated by calling HGQ2's functions on probe values
(:func:`hlsgen.frontends.probe.tabulate`).

HGQ2 quantizes per element.  Bits that differ per feature or per channel become
per-channel tables; bits that differ between positions of a feature map (HGQ2's default
for activations) cannot be one table per channel in a streaming engine and are refused
with the setting that avoids them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ...config import DEFAULT_PRECISION, Config
from ...errors import HlsgenError
from ...fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType
from ...ir import Activation, Add, Conv, Dense, Graph, Input, IRError, Pool, Reshape, Weight
from ..builder import GraphBuilder
from ..probe import ProbeError, tabulate
from .client import Keras3Model, keras_version

#: module prefixes a Keras 3 config may name; anything else would make Keras import it
SAFE_MODULES = ("keras", "hgq", "quantizers")
CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
#: HGQ2 element-wise layers with their own input (and output) quantizers; called whole
QUANTIZED_ELEMENTWISE = {"QBatchNormalization", "QUnaryFunctionLUT", "QAffinedUnaryFunctionLUT"}
ELEMENTWISE = {
    "Activation",
    "ReLU",
    "Quantizer",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
} | QUANTIZED_ELEMENTWISE
SUPPORTED = sorted(
    {"InputLayer", "QDense", "Dense", "QConv1D", "QConv2D", "Conv1D", "Conv2D", "Flatten", "Reshape", "Add"}
    | {"QMaxPooling1D", "QMaxPooling2D", "MaxPooling1D", "MaxPooling2D"}
    | {"QGlobalMaxPooling1D", "QGlobalMaxPooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"}
    | ELEMENTWISE
)


class Chain:
    """Element-wise steps (run by the worker) pending behind an IR node."""

    def __init__(self, node: str, shape, origin: str):
        self.node, self.shape, self.origin = node, tuple(shape), origin
        self.steps: list[list[str]] = []  # [kind, layer name]
        self.last = origin


class Keras3Converter(GraphBuilder):
    def __init__(self, km: Keras3Model, cfg: Config, file: str):
        self.km, self.cfg, self.file = km, cfg, file
        self.info = km.info
        self.layers = {lyr["name"]: lyr for lyr in self.info["layers"]}
        self.graph: Graph | None = None
        self.out: dict[str, Chain] = {}
        self.notes: list[str] = []
        self.approximations: list[str] = []
        self.skip_iq: str | None = None
        self.varies: dict[tuple, bool] = {}  # (layer, which) -> bits vary along the channel axis
        self.overflow: dict[tuple, str | None] = {}  # (layer, which) -> the quantizer's overflow mode

    # ------------------------------------------------------------------ basics
    def fail(self, lyr, msg):
        raise HlsgenError(msg, file=self.file, layer=lyr["name"], layer_type=lyr["class"])

    # ------------------------------------------------------------------ quantizers
    def check_quantizer(self, lyr, which, shape):
        """HGQ2 fixed-point quantizer facts; refuse what one table per channel cannot hold."""
        qinfo, arrays = self.km.quantizer(lyr["name"], which, shape)
        label = f"{lyr['name']}.{which}" if which != "self" else lyr["name"]
        if not arrays:
            self.fail(
                lyr,
                f"quantizer {label} is a {qinfo['q_type']} quantizer ({qinfo['class']}); hlsgen maps HGQ2's "
                "fixed-point quantizers (q_type 'kif' or 'kbi')",
            )
        k, i, f = arrays
        if len(shape) > 1:
            first = (slice(None),) + (slice(0, 1),) * (len(shape) - 1) + (slice(None),)
            for a in (k, i, f):
                if not np.array_equal(a, np.broadcast_to(a[first], a.shape)):
                    self.fail(
                        lyr,
                        f"quantizer {label} has different bit widths at different positions of its "
                        f"{tuple(shape)} input; a streaming engine applies one table per channel: build the "
                        "layer with QuantizerConfig(place='datalane', heterogeneous_axis=(-1,)) (per channel) "
                        f"or homogeneous_axis=(0, ..., {len(shape) - 1}) (per tensor)",
                    )
        self.overflow[(lyr["name"], which)] = qinfo.get("overflow_mode")
        flat = [a.reshape(-1, shape[-1])[0] for a in (k, i, f)]
        self.varies[(lyr["name"], which)] = any(np.ptp(a) != 0 for a in flat)
        return qinfo, flat

    def input_type(self, lyr, shape):
        """The union grid of the first layer's input quantizer, and whether it equals that quantizer."""
        qinfo, (k, i, f) = self.check_quantizer(lyr, "iq", shape)
        live = (k + i + f) > 0
        if not live.any():
            self.fail(lyr, "the input quantizer has zero bits everywhere: the model ignores its input")
        signed = bool(np.any(k[live] > 0))
        frac = int(np.max(f[live]))
        top = int(np.max(i[live]))
        width = int(signed) + top + frac
        uniform = all(np.ptp(a) == 0 for a in (k, i, f))
        rnd, ovf = qinfo.get("round_mode"), qinfo.get("overflow_mode")
        if uniform and rnd in ROUNDING_MODES and ovf in OVERFLOW_MODES and not qinfo.get("scaled"):
            t = FixedType(width, int(signed) + top, signed, rnd, ovf)
            if self.same_as_quantizer(lyr, shape, t):
                return t, True
        return FixedType(max(width, 1), int(signed) + top, signed, "RND_CONV", "SAT"), False

    def same_as_quantizer(self, lyr, shape, t: FixedType) -> bool:
        """Does quantizing to ``t`` give what HGQ2's quantizer gives, on and off the grid?"""
        rng = np.random.default_rng(0)
        span = (t.max_raw - t.min_raw + 1) * 2.0**-t.frac
        x = rng.uniform(t.to_float(t.min_raw) - span, t.to_float(t.max_raw) + span, size=(4096, 1))
        x = np.concatenate([x, t.to_float(np.arange(t.min_raw, t.max_raw + 1)[:, None]) + 0.5 * 2.0**-t.frac])
        x = x.astype(np.float32).astype(np.float64)
        y = self.km.apply([["iq", lyr["name"]]], shape, x)
        return np.array_equal(y, t.to_float(t.quantize(x)))

    # ------------------------------------------------------------------ chains
    def materialize(self, lyr, inbound: str, with_iq: bool) -> str:
        """IR node holding the output of ``inbound`` after its pending steps and, when
        ``with_iq``, the consuming layer's input quantizer."""
        chain = self.out[inbound]
        steps = list(chain.steps)
        if with_iq and self.skip_iq != lyr["name"]:
            self.check_quantizer(lyr, "iq", chain.shape)
            steps.append(["iq", lyr["name"]])
        if not steps:
            return chain.node
        spec = self.graph[chain.node].spec
        per_channel = any(self.varies.get((name, kind if kind != "layer" else "self"), False) for kind, name in steps)
        c = chain.shape[-1] if per_channel else 1
        km, shape = self.km, chain.shape

        def fn(x, steps=steps):
            return km.apply(steps, shape, x)

        label = " -> ".join(f"{name}.{kind}" for kind, name in steps)
        try:
            step = tabulate(fn, spec, channels=c, source=label, float_dtype=self.cfg.table_precision)
        except ProbeError as e:
            last = self.layers.get(steps[-1][1], lyr)
            kinds = [(n, k if k != "layer" else "iq") for k, n in steps]
            wraps = [f"{n}.{k}" for n, k in kinds if self.overflow.get((n, k)) == "WRAP"]
            if wraps and "monotone" in str(e):
                self.fail(
                    last,
                    f"{e}: the WRAP quantizer {wraps[0]} wraps values beyond its range, and hlsgen tabulates "
                    "over the whole accumulator range; quantize activations with overflow_mode='SAT' (or "
                    "'SAT_SYM'), e.g. QuantizerConfigScope(place='datalane', overflow_mode='SAT')",
                )
            self.fail(last, f"{e}; end the chain with an HGQ2 quantizer (enable_oq, or a quantized next layer)")
        base = steps[-1][1] + "_" + steps[-1][0]
        node = self.add(Activation(self.unique(base), [chain.node], function="step", step=step))
        new = Chain(node.name, chain.shape, chain.origin)
        if with_iq and steps and steps[-1] == ["iq", lyr["name"]]:
            # the quantized input belongs to the consumer only; other consumers see the plain chain
            return node.name
        self.out[inbound] = new
        return node.name

    def new_chain(self, lyr, node):
        ch = Chain(node.name, self.graph[node.name].spec.shape, lyr["name"])
        self.out[lyr["name"]] = ch
        return ch

    def layer_output(self, lyr, node, last):
        ch = self.new_chain(lyr, node)
        act = lyr.get("activation")
        if act == "softmax":
            if not (last and self.cfg.strip_softmax):
                self.fail(
                    lyr,
                    "softmax is not supported in the datapath; set Model: StripSoftmax: true to drop a final "
                    "softmax (argmax is unchanged)",
                )
            self.notes.append(f"{lyr['name']}: final softmax removed (StripSoftmax); outputs are logits")
            self.graph.meta["stripped_softmax"] = lyr["name"]
        elif act not in (None, "linear"):
            ch.steps.append(["activation", lyr["name"]])
        if "oq" in lyr["quantizers"]:
            self.check_quantizer(lyr, "oq", ch.shape)
            ch.steps.append(["oq", lyr["name"]])

    # ------------------------------------------------------------------ weights
    def weights(self, lyr):
        h, arrays = self.km.weights(lyr["name"])
        out = []
        for what, present in (("kernel", h["kernel"]), ("bias", h["bias"])):
            if not present:
                out.append(None)
                continue
            a = arrays.pop(0).astype(np.float64)
            if h["quantized"]:
                try:
                    w = Weight.from_values(a, quantizer=f"HGQ2 {lyr['name']}", max_frac=32)
                except ValueError:
                    self.fail(lyr, f"{what} values are off any power-of-two grid (a scaled quantizer?)")
            else:
                w = self.config_weight(lyr["name"], lyr["class"], what, a)
                if w is None:
                    self.fail(
                        lyr,
                        f"{what} is not quantized; use HGQ2's Q{lyr['class']} or give a precision in the config "
                        f"(LayerName: {{{lyr['name']}: {{Precision: ...}}}})",
                    )
            out.append(w)
        return out

    # ------------------------------------------------------------------ driver
    def run(self) -> Graph:
        info = self.info
        for what in ("inputs", "outputs"):
            if len(info[what]) != 1:
                names = ", ".join(t["name"] for t in info[what])
                raise HlsgenError(
                    f"the model has {len(info[what])} {what} ({names}); hlsgen converts models with one input "
                    "and one output",
                    file=self.file,
                )
        layers = [lyr for lyr in info["layers"] if lyr["class"] != "InputLayer"]
        if not layers:
            raise HlsgenError("the model has no layers", file=self.file)
        self.make_input(info["inputs"][0], layers)
        final = info["outputs"][0]["name"]
        for lyr in layers:
            cls = lyr["class"]
            if cls not in SUPPORTED:
                self.fail(lyr, f"layer type {cls} is not supported (supported: {', '.join(SUPPORTED)})")
            ins = lyr["inbound"]
            if any(i not in self.out for i in ins):
                self.fail(lyr, f"inputs {ins} come from layers hlsgen did not convert")
            try:
                self.convert_layer(lyr, ins, lyr["name"] == final)
            except (IRError, ValueError, OverflowError) as e:
                self.fail(lyr, str(e))
        out_node = self.materialize(self.layers[final], final, with_iq=False)
        g = self.graph
        g.output = out_node
        g.meta.update(
            {
                "frontend": "keras3",
                "keras_version": info["keras_version"],
                "exact": not self.approximations,
                "approximations": self.approximations,
                "notes": self.notes,
            }
        )
        g.infer()
        return g

    def make_input(self, inp, layers):
        shape = tuple(inp["shape"])
        if any(s is None for s in shape):
            raise HlsgenError(f"input shape {shape} has unknown dimensions; give a fixed input shape", file=self.file)
        consumers = [lyr for lyr in layers if inp["name"] in lyr["inbound"]]
        t = self.cfg.input_precision(inp["name"])
        if t is None and len(consumers) == 1 and "iq" in consumers[0]["quantizers"]:
            first = consumers[0]
            t, same = self.input_type(first, shape)
            if same:
                self.skip_iq = first["name"]
                self.notes.append(f"input type {t} taken from '{first['name']}' (its HGQ2 input quantizer)")
            else:
                self.notes.append(
                    f"input type {t} covers '{first['name']}''s per-feature input quantizer, which stays a table"
                )
        if t is None:
            t = FixedType.parse(DEFAULT_PRECISION)
            self.notes.append(f"input type {t} (default; set Model: InputPrecision to change it)")
        self.add(Input(inp["name"], [], shape=shape, type=t))
        self.out[inp["name"]] = Chain(inp["name"], shape, inp["name"])

    def convert_layer(self, lyr, ins, last):
        cls, cfg, name = lyr["class"], lyr["config"], lyr["name"]
        with_iq = "iq" in lyr["quantizers"]
        if cls in ELEMENTWISE:
            src = self.out[ins[0]]
            ch = Chain(src.node, src.shape, src.origin)
            ch.steps = list(src.steps)
            self.out[name] = ch
            if cls.startswith(("Dropout", "SpatialDropout", "GaussianNoise")):
                return
            if cls == "Activation" and lyr.get("activation") == "softmax":
                if not (last and self.cfg.strip_softmax):
                    self.fail(lyr, "softmax is not supported in the datapath; set Model: StripSoftmax: true")
                self.graph.meta["stripped_softmax"] = name
                self.notes.append(f"{name}: final softmax removed (StripSoftmax); outputs are logits")
                return
            if cls == "ReLU" and any(cfg.get(k) not in (None, 0, 0.0) for k in ("max_value", "negative_slope")):
                self.fail(lyr, "ReLU with max_value/negative_slope is not supported; quantize after a plain relu")
            if cls == "Quantizer":
                self.check_quantizer(lyr, "self", ch.shape)
            if cls in QUANTIZED_ELEMENTWISE:
                for which in lyr["quantizers"]:
                    self.check_quantizer(lyr, which, ch.shape)
                # batch-norm has per-channel parameters; a table is per channel when its bits are
                self.varies[(name, "self")] = cls == "QBatchNormalization" or any(
                    self.varies[(name, w)] for w in lyr["quantizers"]
                )
            ch.steps.append(["layer", name])
            return
        if cls in ("Flatten", "Reshape"):
            x = self.materialize(lyr, ins[0], with_iq)
            node = self.add(Reshape(self.unique(name), [x], shape=tuple(lyr["output_shape"])))
            self.new_chain(lyr, node)
            return
        if cls == "Add":
            if len(ins) != 2:
                self.fail(lyr, f"Add of {len(ins)} tensors is not supported; add two at a time")
            a, b = (self.materialize(lyr, i, False) for i in ins)
            self.new_chain(lyr, self.add(Add(self.unique(name), [a, b])))
            return
        if cfg.get("data_format", "channels_last") != "channels_last":
            self.fail(lyr, "data_format channels_first is not supported; use channels_last")
        if "MaxPooling" in cls:
            x = self.materialize(lyr, ins[0], with_iq)
            if cls.startswith(("QGlobal", "Global")):
                if cfg.get("keepdims"):
                    self.fail(lyr, "keepdims=True is not supported")
                node = Pool(self.unique(name), [x], mode="max", global_=True)
            else:
                if cfg.get("padding", "valid") != "valid":
                    self.fail(lyr, f"padding '{cfg['padding']}' is not supported for pooling; use 'valid'")
                node = Pool(
                    self.unique(name),
                    [x],
                    mode="max",
                    pool_size=tuple(cfg["pool_size"]),
                    strides=tuple(cfg.get("strides") or cfg["pool_size"]),
                    padding="valid",
                )
            self.new_chain(lyr, self.add(node))
            return
        if len(lyr["input_shape"] or []) != (1 if "Dense" in cls else int(cls[-2]) + 1):
            self.fail(lyr, f"input shape {lyr['input_shape']} is not supported for {cls}")
        if "Conv" in cls:
            if any(d != 1 for d in cfg.get("dilation_rate", [1])):
                self.fail(lyr, f"dilation_rate {cfg['dilation_rate']} is not supported; use 1")
            if cfg.get("groups", 1) != 1:
                self.fail(lyr, f"groups={cfg['groups']} is not supported; use groups=1")
            if cfg.get("padding") not in ("valid", "same"):
                self.fail(lyr, f"padding '{cfg.get('padding')}' is not supported; use 'valid' or 'same'")
        x = self.materialize(lyr, ins[0], with_iq)
        kernel, bias = self.weights(lyr)
        if "Conv" in cls:
            node = Conv(
                self.unique(name),
                [x],
                kernel=kernel,
                bias=bias,
                strides=tuple(cfg["strides"]),
                padding=cfg["padding"],
                depthwise=False,
            )
        else:
            node = Dense(self.unique(name), [x], kernel=kernel, bias=bias)
        self.layer_output(lyr, self.add(node), last)


def check_keras3_config(path: Path) -> None:
    """Refuse, from the JSON alone, a Keras 3 file whose config would import or run code:
    Lambda layers, and objects from modules other than Keras and HGQ2."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                cfg = json.loads(z.read("config.json").decode("utf-8"))
        else:
            import h5py

            with h5py.File(path, "r") as f:
                text = f.attrs.get("model_config")
                cfg = json.loads(text.decode() if isinstance(text, bytes) else text)
    except Exception as e:
        raise HlsgenError(f"cannot read the Keras 3 model config ({type(e).__name__})", file=str(path)) from None
    stack = [cfg]
    while stack:
        obj = stack.pop()
        if isinstance(obj, list):
            stack += obj
            continue
        if not isinstance(obj, dict):
            continue
        cls = obj.get("class_name")
        inner = obj.get("config")
        name = inner.get("name", "?") if isinstance(inner, dict) else "?"
        if cls in CODE_LAYERS or (isinstance(inner, dict) and "function" in inner and cls is not None):
            raise HlsgenError(
                "Lambda layers hold Python code, which hlsgen never runs; replace the layer with a supported one",
                file=str(path),
                layer=str(name),
                layer_type=str(cls),
            )
        module = obj.get("module")
        if cls is not None and module is not None and not str(module).startswith(SAFE_MODULES):
            msg = (
                f"QKeras layers in a file saved by Keras {keras_version(path)}: QKeras runs on Keras 2; save the "
                "model with TF <= 2.15 (tf-keras) as .h5, or quantize it with HGQ2 for Keras 3"
                if str(module).startswith("qkeras")
                else f"names the Python module '{module}', which loading would import; hlsgen loads Keras and "
                "HGQ2 objects only"
            )
            raise HlsgenError(msg, file=str(path), layer=str(name), layer_type=str(cls))
        stack += list(obj.values())


def convert_keras3(path, config=None) -> Graph:
    """Convert a Keras 3 file (HGQ2-quantized, or plain layers with configured precisions)."""
    cfg = Config.coerce(config)
    p = Path(path)
    check_keras3_config(p)
    with Keras3Model(p, backend="numpy") as km:
        graph = Keras3Converter(km, cfg, str(p)).run()
        if graph.meta["approximations"]:
            graph.meta["measured_error"] = measure_error(km, graph)
    graph.meta["notes"].append(f"read with Keras {keras_version(p)} in its own process (numpy backend)")
    return graph


def measure_error(km: Keras3Model, graph: Graph, n: int = 256) -> dict:
    from ...reference.execute import predict

    t = graph.input.type
    rng = np.random.default_rng(0)
    lo, hi = max(t.min_raw, -(1 << 30)), min(t.max_raw, 1 << 30)
    x = t.to_float(rng.integers(lo // 4, hi // 4, size=(n,) + tuple(graph.input.shape), endpoint=True))
    err = np.abs(predict(graph, x) - km.predict(x, graph.meta.get("stripped_softmax")))
    return {
        "vectors": n,
        "inputs": "uniform on the input grid over a quarter of its range",
        "max_abs": float(err.max()),
        "mean_abs": float(err.mean()),
    }

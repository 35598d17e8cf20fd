"""ONNX model (QDQ, QLinear*, *Integer, QONNX) -> IR graph, exact with ONNX Runtime.

The converter walks the ONNX nodes in order and keeps, for every tensor, how the IR
carries it (:class:`Val`):

* ``int``   - an integer tensor q (QuantizeLinear output, graph input): the IR node's
  real value is ``(q - zp) * unit`` (``unit`` is the scale when it is a power of two,
  so that the IR value is the dequantized value; 1 otherwise).
* ``exact`` - a float32 tensor that equals ``IR value * scale`` exactly.
* ``chain`` - element-wise ONNX nodes (DequantizeLinear, Relu, Clip, Sigmoid, Tanh,
  BatchNormalization, Mul/Add by constants, QuantizeLinear, Quant, ...) pending on an
  ``int`` or ``exact`` tensor.  When something consumes the chain it becomes one exact
  table (:func:`hlsgen.frontends.probe.tabulate`) read off ONNX Runtime itself.
* ``acc``   - the integer accumulator of an integer kernel (QLinearConv, QLinearMatMul,
  or a DequantizeLinear -> Conv/Gemm/MatMul -> QuantizeLinear group that ONNX Runtime
  fuses into one): its QuantizeLinear becomes a table of ONNX Runtime's float32
  requantization over the whole accumulator range.

Float32 arithmetic that is not fused (a float Conv, Add, AveragePool) is accepted only
where it is exact: every product and partial sum an integer multiple of the grid with
fewer than 24 significant bits.  Anything else is refused with the node named.

Layouts: ONNX is channels-first, the IR channels-last.  Every ``Val`` carries, for each
IR element, its flat index in the ONNX tensor; Flatten/Reshape/Transpose only change that
map, and the Gemm/MatMul after a Flatten reads its weight rows through it.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ...errors import HlsgenError
from ...fixed import FixedType
from ...ir import Activation, Add, Conv, Dense, Graph, Input, IRError, Pool, Reshape, Weight
from ...ir.nodes import _pad_amounts, reason
from ..probe import ProbeError, tabulate
from .loader import load_onnx, node_label, ort_kernels, uses_qonnx
from .numerics import FLOAT, ONNX_INT_TYPES, NodeRunner, int_range, multiplier, requant
from .values import Const, Val, _is_po2, canonical_index

#: float32 carries 24 significant bits: integer sums below this are exact in any order
F32_EXACT = 1 << 24

ELEMENTWISE = {
    "DequantizeLinear",
    "QuantizeLinear",
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "BatchNormalization",
    "Mul",
    "Div",
    "Sub",
    "Cast",
    "LeakyRelu",
    "HardSigmoid",
    "Quant",
    "BipolarQuant",
    "Trunc",
}
#: integer kernels of ONNX Runtime whose requantization :func:`numerics.requant` reproduces
ORT_INT_KERNELS = {"QLinearConv", "QLinearMatMul", "QGemm"}


class OnnxConverter:
    def __init__(self, model, file: str, cfg=None):
        from ...config import Config

        self.model = model
        self.file = file
        self.cfg = cfg or Config()
        self.approximations: list[str] = []
        self.g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.vals: dict[str, Val | Const] = {}
        self.types: dict[str, int] = {}  # ONNX element type of constants
        self.graph: Graph | None = None
        self.names: set[str] = set()
        self.notes: list[str] = []
        self.meta: dict = {}
        self.qonnx = uses_qonnx(model)
        self.recurrent = any(n.op_type in ("LSTM", "GRU") for n in self.g.node)
        self.kernels = {} if self.qonnx else ort_kernels(model, file)
        self.consumers: dict[str, list] = {}
        for n in self.g.node:
            for t in n.input:
                if t:
                    self.consumers.setdefault(t, []).append(n)
        self.cur = None

    # -------------------------------------------------------------- errors, IR
    def fail(self, msg, node=None):
        node = node if node is not None else self.cur
        if node is None:
            raise HlsgenError(msg, file=self.file)
        raise HlsgenError(msg, file=self.file, layer=node_label(node), layer_type=node.op_type)

    def add(self, node):
        try:
            if self.graph is None:
                self.graph = Graph([node])
            else:
                self.graph.append(node)
        except (IRError, OverflowError, ValueError) as e:
            self.fail(reason(e))
        self.names.add(node.name)
        return node

    def unique(self, base):
        base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "n"
        if base[0].isdigit():
            base = "n" + base
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        return name

    def spec(self, name):
        return self.graph[name].spec

    # -------------------------------------------------------------- values
    def const(self, name, what="input") -> Const:
        v = self.vals.get(name)
        if not isinstance(v, Const):
            self.fail(f"{what} '{name}' must be a constant (an initializer), not computed at run time")
        return v

    def act(self, name) -> Val:
        v = self.vals.get(name)
        if v is None:
            self.fail(f"input '{name}' is not defined")
        if isinstance(v, Const):
            self.fail(f"input '{name}' is a constant; hlsgen streams one activation input through the graph")
        return v

    def attrs(self, node) -> dict:
        from onnx import helper

        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out

    # -------------------------------------------------------------- run
    def run(self) -> Graph:
        from onnx import numpy_helper

        for init in self.g.initializer:
            self.vals[init.name] = Const(_to_array(init), init.data_type)
            self.types[init.name] = init.data_type
        inputs = [vi for vi in self.g.input if vi.name not in self.vals]
        if len(inputs) != 1:
            self.fail(f"the graph has {len(inputs)} activation inputs; hlsgen streams exactly one")
        self.graph_input(inputs[0])
        for node in self.g.node:
            self.cur = node
            if node.op_type == "Constant":
                a = self.attrs(node)
                if "value" not in a:
                    self.fail("only Constant with a tensor 'value' is supported")
                t = next(x for x in node.attribute if x.name == "value").t
                self.vals[node.output[0]] = Const(numpy_helper.to_array(t), t.data_type)
                self.types[node.output[0]] = t.data_type
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None or (node.domain not in ("", "ai.onnx") and node.op_type not in QONNX_OPS):
                self.fail(
                    f"operator {node.op_type} is not supported (supported: {', '.join(sorted([*HANDLERS, 'Constant']))})"
                )
            try:
                out = self.convert_node(node, handler)
            except HlsgenError:
                raise
            except (IRError, OverflowError) as e:
                self.fail(reason(e))
            except Exception as e:  # never a traceback: name the node and what went wrong
                msg = str(e).splitlines()[0][:200] if str(e) else ""
                self.fail(f"cannot convert this node ({type(e).__name__}: {msg})")
            if out is not None:
                self.vals[node.output[0]] = out
        self.cur = None
        if len(self.g.output) != 1:
            self.fail(f"the graph has {len(self.g.output)} outputs; hlsgen streams exactly one")
        out = self.vals.get(self.g.output[0].name)
        if not isinstance(out, Val):
            self.fail("the graph output is a constant")
        self.graph_output(out)
        self.graph.meta.update(
            {
                "source": self.file,
                "frontend": "onnx",
                "exact": not self.approximations,
                "approximations": self.approximations,
                "notes": self.notes,
                "onnx": self.meta,
            }
        )
        self.graph.infer()
        if self.approximations:
            self.graph.meta["measured_error"] = self.measure_error()
        return self.graph

    def measure_error(self, n: int = 256) -> dict:
        """The approximate graph against ONNX Runtime on random inputs over the input quantizer's range."""
        from ...reference.execute import predict_int
        from .io import onnx_random_inputs, output_to_onnx, quantize_input, run_onnxruntime

        x = onnx_random_inputs(self.graph, np.random.default_rng(0), n)
        y = output_to_onnx(self.graph, predict_int(self.graph, quantize_input(self.graph, x))).astype(np.float64)
        yr = run_onnxruntime(self.file, x).astype(np.float64)
        err = np.abs(y - yr)
        return {
            "vectors": n,
            "inputs": "uniform over the input quantizer's range",
            "against": "ONNX Runtime (CPU, default options)",
            "values_differing": int(np.count_nonzero(err)),
            "values": int(err.size),
            "max_abs": float(err.max()),
            "mean_abs": float(err.mean()),
            "max_abs_output": float(np.abs(yr).max()),
        }

    def convert_node(self, node, handler):
        ins = [self.vals.get(i) if i else None for i in node.input]
        if all(isinstance(v, Const) or v is None for v in ins) and node.op_type in CONST_FOLD:
            c = CONST_FOLD[node.op_type](self, node)
            self.types[node.output[0]] = c.elem
            return c
        return handler(self, node)

    # -------------------------------------------------------------- graph input / output
    def graph_input(self, vi):
        tt = vi.type.tensor_type
        full = [d.dim_value for d in tt.shape.dim]
        b = self.sequence_batch_axis(vi.name) if len(full) == 3 else 0
        dims = full[:b] + full[b + 1 :]
        if not dims:
            self.fail("the input has no dimensions besides the batch", None)
        if min(dims) <= 0:
            k = [i for i, d in enumerate(full) if d <= 0 and i != b][0]
            raise HlsgenError(
                f"dimension {k} is dynamic; hardware needs fixed shapes (export with a fixed input shape)",
                file=self.file,
                layer=vi.name,
                layer_type="graph input",
            )
        shape = tuple(dims)
        # sequences keep their (time, features) order; images go channels-last
        index = (
            np.arange(math.prod(shape)).reshape(shape) if self.recurrent and len(shape) == 2 else canonical_index(shape)
        )
        self.input_name = vi.name
        self.input_shape = shape
        self.input_index = index
        self.meta["input"] = {
            "name": vi.name,
            "shape": list(shape),
            "elem": tt.elem_type,
            "batch_axis": b,
            "index": index.reshape(-1).tolist(),
        }
        if tt.elem_type == FLOAT:
            self.vals[vi.name] = Val("float_input", "", shape, index, vi.name, batch=b)
            return
        if tt.elem_type not in ONNX_INT_TYPES or tt.elem_type == 6:
            raise HlsgenError(
                f"input element type {tt.elem_type} is not supported (float or 4/8/16-bit integers)",
                file=self.file,
                layer=vi.name,
                layer_type="graph input",
            )
        # integer input: take the zero point of the DequantizeLinear nodes that read it
        zps = set()
        for c in self.consumers.get(vi.name, []):
            zi = (
                2
                if c.op_type in ("DequantizeLinear", "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul")
                else None
            )
            if zi is not None and len(c.input) > zi and c.input[zi]:
                zps.add(int(np.asarray(self.const(c.input[zi]).value).reshape(-1)[0]))
        zp = zps.pop() if len(zps) == 1 else 0
        lo, hi = int_range(tt.elem_type)
        t = FixedType.for_range(lo - zp, hi - zp, 0)
        self.add(Input(self.unique(vi.name), [], shape=index.shape, type=t))
        self.meta["input"].update({"zero_point": zp, "quantize": None})
        self.vals[vi.name] = Val(
            "int", self.graph.nodes[-1].name, shape, index, vi.name, elem=tt.elem_type, zp=zp, batch=b
        )

    def sequence_batch_axis(self, name) -> int:
        """1 when the input reaches an LSTM/GRU's X (layout 0: [time, batch, features]) through
        element-wise nodes only; else 0."""
        seen, todo = set(), [name]
        while todo:
            t = todo.pop()
            for c in self.consumers.get(t, []):
                if c.op_type in ("LSTM", "GRU") and c.input[0] == t:
                    return 1
                if c.op_type in ELEMENTWISE | {"Identity"} and c.output[0] not in seen:
                    seen.add(c.output[0])
                    todo.append(c.output[0])
        return 0

    def quantize_graph_input(self, node, v: Val):
        """The QuantizeLinear / Quant reading the float graph input becomes the IR Input."""
        if self.graph is not None:
            self.fail("the float input is read by more than one quantizer")
        a = self.attrs(node)
        scale = np.asarray(self.const(node.input[1], "scale").value, dtype=np.float32)
        if scale.size != 1:
            self.fail("the input quantizer must be per-tensor (one scale)")
        s = float(scale.reshape(-1)[0])
        if node.op_type == "QuantizeLinear":
            zp_name = node.input[2] if len(node.input) > 2 else ""
            elem = self.types.get(zp_name, 2) if zp_name else 2
            zp = int(np.asarray(self.const(zp_name).value).reshape(-1)[0]) if zp_name else 0
            qmin, qmax = int_range(elem)
            rounding, narrow = "RND_CONV", False
            q = {"op": "QuantizeLinear", "scale": s, "zero_point": zp, "qmin": qmin, "qmax": qmax}
        else:  # QONNX Quant
            zp = int(np.asarray(self.const(node.input[2]).value).reshape(-1)[0])
            bits = int(np.asarray(self.const(node.input[3]).value).reshape(-1)[0])
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            mode = str(a.get("rounding_mode", "ROUND")).upper()
            rounding = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN"}.get(mode)
            if rounding is None or bits < 2:
                self.fail(f"input Quant with rounding_mode {mode} and {bits} bits is not supported")
            qmin = -(1 << (bits - 1)) + int(narrow) if signed else 0
            qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - int(narrow)
            elem = FLOAT
            q = {"op": "Quant", "scale": s, "zero_point": zp, "qmin": qmin, "qmax": qmax, "rounding": mode}
            q.update({"bits": bits, "signed": signed, "narrow": narrow})
        if _is_po2(s) and zp == 0 and not (narrow and qmin == 0):
            bits = max(int(qmax).bit_length() + (1 if qmin < 0 else 0), 1)
            frac = -int(np.frexp(s)[1] - 1)
            ovf = "SAT_SYM" if narrow and qmin < 0 else "SAT"
            t = FixedType(bits, bits - frac, qmin < 0, rounding, ovf)
            unit, q["ir"] = s, "fixed"
        else:
            t, unit, q["ir"] = FixedType.for_range(qmin - zp, qmax - zp, 0), 1.0, "integer"
        self.add(Input(self.unique(self.input_name), [], shape=v.index.shape, type=t))
        self.meta["input"]["quantize"] = q
        out_kind = "int" if node.op_type == "QuantizeLinear" else "exact"
        if out_kind == "int":
            return Val(
                "int",
                self.graph.nodes[-1].name,
                v.shape,
                v.index,
                node_label(node),
                elem=elem,
                zp=zp,
                unit=unit,
                batch=v.batch,
            )
        if unit != s:
            self.fail("an input Quant with a float scale or a zero point is not supported (its output is float)")
        return Val("exact", self.graph.nodes[-1].name, v.shape, v.index, node_label(node), scale=1.0, batch=v.batch)

    def graph_output(self, v: Val):
        dq = None
        if (
            v.kind == "chain"
            and len(v.chain) == 1
            and v.chain[0].op_type == "DequantizeLinear"
            and v.base.kind == "int"
        ):
            s, zp = self.qparams(v.chain[0])
            if s.size == 1 and zp.size == 1 and int(zp[0]) == v.base.zp:
                # the last DequantizeLinear is done on the host, exactly as ONNX Runtime does it
                dq = float(s[0])
                v = v.base.derive(shape=v.shape, index=v.index)
        v = self.settle(v)
        info = {"shape": list(v.shape), "index": v.index.reshape(-1).tolist(), "batch_axis": v.batch}
        if dq is not None:
            info.update({"kind": "dequantized", "zero_point": int(v.zp), "unit": float(v.unit), "scale": dq})
        elif v.kind == "int":
            info.update({"kind": "int", "zero_point": int(v.zp), "unit": float(v.unit), "elem": v.elem})
        else:
            sp = self.spec(v.node)
            f = max(sp.type.frac, 0)
            if max(abs(sp.lo), abs(sp.hi)) >= F32_EXACT and f > 0:
                self.fail("the float output is not exact in float32 (more than 24 significant bits)")
            info.update({"kind": "float", "scale": float(v.scale)})
        self.meta["output"] = info
        self.graph.output = v.node

    # -------------------------------------------------------------- settling values into IR nodes
    def settle(self, v: Val, exact=False) -> Val:
        """An ``int`` or ``exact`` Val: pending chains become a table node."""
        if v.kind == "float_input":
            self.fail("the float graph input must be quantized (QuantizeLinear or Quant) before anything else")
        if v.kind == "acc":
            self.fail(f"the integer kernel '{v.origin}' must be followed by QuantizeLinear")
        if v.kind == "chain":
            v = self.table(v)
        if exact and v.kind == "int":
            v = self.dequantized(v)
        return v

    def dequantized(self, v: Val) -> Val:
        """An integer tensor read as its real value (for float ops): needs a power-of-two unit."""
        if v.unit == 1.0 and v.zp == 0:
            return v.derive(kind="exact", scale=1.0)
        self.fail(
            f"tensor from '{v.origin}' has a float scale or a zero point here, where float32 arithmetic "
            "would not be exact; use power-of-two scales and zero points of 0"
        )

    def chain_of(self, v: Val, node) -> Val:
        """v with one more element-wise node pending."""
        if v.kind == "chain":
            return v.derive(chain=v.chain + [node], elem=self.out_elem(node, v.elem), origin=node_label(node))
        if v.kind in ("int", "exact"):
            return v.derive(
                kind="chain", base=v, chain=[node], elem=self.out_elem(node, v.elem), origin=node_label(node)
            )
        if v.kind == "acc":
            self.fail(f"the integer kernel '{v.origin}' must be followed directly by QuantizeLinear")
        self.fail("the float graph input must be quantized (QuantizeLinear or Quant) first")

    def out_elem(self, node, elem):
        if node.op_type == "QuantizeLinear":
            zp = node.input[2] if len(node.input) > 2 else ""
            return self.types.get(zp, 2) if zp else 2
        if node.op_type in ("DequantizeLinear", "Quant", "BipolarQuant", "Trunc"):
            return FLOAT
        if node.op_type == "Cast":
            return self.attrs(node)["to"]
        return elem

    def qparams(self, node) -> tuple[np.ndarray, np.ndarray]:
        """Scale (float32) and zero point (int64) of a Q/DQ node, as 1-D arrays (zero point 0 if absent)."""
        s = np.asarray(self.const(node.input[1], "scale").value, dtype=np.float32).reshape(-1)
        has_zp = len(node.input) > 2 and node.input[2]
        zp = (
            np.asarray(self.const(node.input[2]).value).astype(np.int64).reshape(-1)
            if has_zp
            else np.zeros(1, np.int64)
        )
        return s, zp

    def exact_dq(self, v: Val) -> Val | None:
        """DequantizeLinear with a power-of-two scale: (q - zp) * s is exact in float32, so the
        IR value times s / unit is the ONNX value and no table is needed."""
        if v.kind != "chain" or len(v.chain) != 1 or v.chain[0].op_type != "DequantizeLinear" or v.base.kind != "int":
            return None
        base = v.base
        sc, zp = self.qparams(v.chain[0])
        if sc.size == 1 and zp.size == 1 and int(zp[0]) == base.zp and _is_po2(sc) and _is_po2(base.unit):
            return v.derive(
                kind="exact", node=base.node, scale=float(sc[0]) / base.unit, base=None, chain=[], elem=FLOAT
            )
        return None

    def batch0(self, v: Val) -> Val:
        """v with the batch on axis 0 (size-1 axes before it dropped), or a one-line refusal."""
        if v.batch == 0:
            return v
        if all(d == 1 for d in v.shape[: v.batch]):
            return v.derive(shape=v.shape[v.batch :], batch=0)
        self.fail(
            f"the batch is on axis {v.batch} of this tensor; only element-wise nodes, Transpose and Squeeze handle that"
        )

    def per_channel(self, v: Val) -> bool:
        """A pending chain with per-channel constants (per-axis scales, batch-norm, ...)."""
        return v.kind == "chain" and any(
            self.vals[i].value.size > 1
            for n in v.chain
            for i in n.input[1:]
            if i and isinstance(self.vals.get(i), Const)
        )

    def channel_map(self, v: Val):
        """ONNX channel (axis 1) of every IR last-axis position, or None when the layout mixes them."""
        c0 = np.unravel_index(v.index, v.shape)[0] if len(v.shape) > 1 else v.index
        c0 = np.asarray(c0).reshape(-1, v.index.shape[-1])
        if not np.all(c0 == c0[:1]):
            return None
        return c0[0]

    def table(self, v: Val) -> Val:
        """Tabulate a pending chain with ONNX Runtime; the result is an ``int`` or ``exact`` Val."""
        base, chain = v.base, v.chain
        exact = self.exact_dq(v)
        if exact is not None:
            return exact
        per_channel = self.per_channel(v)
        last = chain[-1]
        if per_channel and v.batch:
            v = self.batch0(v)
        spec = self.spec(base.node)
        cmap = self.channel_map(v) if per_channel else None
        if per_channel and cmap is None:
            self.fail("a per-channel operation on a tensor whose layout mixes channels is not supported", last)
        n_onnx = v.shape[0]
        rank = len(v.shape) + 1
        runners = [
            NodeRunner(n, {i: self.vals[i].value for i in n.input[1:] if i}, self.types, self.opset) for n in chain
        ]
        out_int = v.elem != FLOAT
        unit_out, zp_out = 1.0, 0
        if out_int:
            if last.op_type != "QuantizeLinear":
                self.fail(f"an integer result of {last.op_type} is not supported here", last)
            s, zps = self.qparams(last)
            if np.any(zps != zps[0]):
                self.fail("per-axis zero points that differ are not supported", last)
            zp_out = int(zps[0])
            if _is_po2(s):
                unit_out = float(s[0])
        base_dtype = ONNX_INT_TYPES[base.elem][0] if base.kind == "int" else np.float32

        def fn(x):
            m, c = x.shape
            if base.kind == "int":
                t = np.rint(x / base.unit).astype(np.int64) + base.zp
                t = t.astype(base_dtype) if base.elem not in (21, 22) else t
            else:
                t = (x * base.scale).astype(np.float32)
            full = np.zeros((m, n_onnx if per_channel else 1) + (1,) * (rank - 2), dtype=t.dtype)
            if per_channel:
                full[:, cmap, ...] = t.reshape((m, c) + (1,) * (rank - 2))
            else:
                full[:, 0, ...] = t.reshape((m,) + (1,) * (rank - 2))
            y = full
            for r in runners:
                y = r(y)
            y = y.reshape(m, -1)
            y = y[:, cmap] if per_channel else y[:, :1]
            if out_int:
                return (y.astype(np.float64) - zp_out) * unit_out
            return y.astype(np.float64)

        channels = len(cmap) if per_channel else 1
        try:
            step = tabulate(
                fn, spec, channels=channels, source=" -> ".join(n.op_type for n in chain), float_dtype=np.float64
            )
        except ProbeError as e:
            self.fail(f"{e}", last)
        node = self.add(Activation(self.unique(node_label(last)), [base.node], function="step", step=step))
        if out_int:
            return v.derive(kind="int", node=node.name, unit=unit_out, zp=zp_out, base=None, chain=[])
        return v.derive(kind="exact", node=node.name, scale=1.0, base=None, chain=[])


def _to_array(init):
    from onnx import numpy_helper

    if init.data_type in (21, 22):  # int4/uint4: numpy_helper unpacks them into int8/uint8
        return numpy_helper.to_array(init).astype(np.int64)
    return numpy_helper.to_array(init)


def _ir_shape(shape):
    shape = tuple(shape)
    return shape[1:] + shape[:1] if len(shape) > 1 else shape


# ====================================================================== handlers
HANDLERS: dict = {}
CONST_FOLD: dict = {}
QONNX_OPS = ("Quant", "BipolarQuant", "Trunc")


def _registrar(table):
    def register(*ops):
        def deco(fn):
            for o in ops:
                table[o] = fn
            return fn

        return deco

    return register


handles = _registrar(HANDLERS)  # handler of an operator on activations
folds = _registrar(CONST_FOLD)  # evaluation of an operator on constants


# ---------------------------------------------------------------- constants
@folds("DequantizeLinear")
def _fold_dq(cv, node):
    if cv.attrs(node).get("block_size", 0):
        cv.fail("blocked quantization (block_size) is not supported")
    q = cv.vals[node.input[0]]
    consts = {i: cv.vals[i].value for i in node.input[1:] if i}
    r = NodeRunner(node, consts, cv.types, cv.opset)
    axis = cv.attrs(node).get("axis", 1)
    val = r(np.asarray(q.value))
    s = consts[node.input[1]]
    zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros_like(s, dtype=np.int64)
    return Const(
        val,
        FLOAT,
        dq=(
            np.asarray(q.value).astype(np.int64),
            np.asarray(s, np.float32),
            np.asarray(zp).astype(np.int64),
            axis,
            q.elem,
        ),
    )


@folds(
    "Quant",
    "BipolarQuant",
    "Trunc",
    "QuantizeLinear",
    "Cast",
    "Relu",
    "Clip",
    "Mul",
    "Div",
    "Sub",
    "Add",
    "Sigmoid",
    "Tanh",
)
def _fold_eval(cv, node):
    x = cv.vals[node.input[0]]
    if not isinstance(x, Const):
        cv.fail("the data input of a constant expression must be a constant")
    consts = {i: cv.vals[i].value for i in node.input[1:] if i}
    r = NodeRunner(node, consts, cv.types, cv.opset)
    r.in_elem = x.elem if x.elem in (21, 22) else None
    y = r(np.asarray(x.value))
    return Const(y, cv.out_elem(node, x.elem))


@folds("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def _fold_layout(cv, node):
    x = cv.vals[node.input[0]]
    a = cv.attrs(node)
    v = np.asarray(x.value)
    op = node.op_type
    if op == "Transpose":
        v = np.transpose(v, a.get("perm"))
    elif op == "Reshape":
        shape = [int(s) for s in cv.const(node.input[1]).value]
        shape = [v.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        v = v.reshape(shape)
    elif op == "Flatten":
        ax = a.get("axis", 1)
        v = v.reshape(int(np.prod(v.shape[:ax])), -1)
    elif op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes") or ([int(s) for s in cv.const(node.input[1]).value] if len(node.input) > 1 else None)
        v = np.squeeze(v, tuple(axes) if axes else None) if op == "Squeeze" else np.expand_dims(v, tuple(axes))
    dq = None
    if x.dq is not None and x.dq[1].size == 1:  # per-tensor: the integers follow the values
        q = x.dq[0]
        dq = (np.transpose(q, a.get("perm")) if op == "Transpose" else q.reshape(v.shape), *x.dq[1:])
    return Const(v, x.elem, dq=dq)


# ---------------------------------------------------------------- element-wise
@handles(
    "DequantizeLinear",
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "Cast",
    "LeakyRelu",
    "HardSigmoid",
    "Quant",
    "BipolarQuant",
    "Trunc",
)
def _elementwise(cv, node):
    v = cv.vals.get(node.input[0])
    if isinstance(v, Val) and v.kind == "float_input" and node.op_type == "Quant":
        return cv.quantize_graph_input(node, v)
    v = cv.act(node.input[0])
    for i in node.input[1:]:
        if i:
            cv.const(i)
    if cv.attrs(node).get("block_size", 0):
        cv.fail("blocked quantization (block_size) is not supported")
    if node.op_type == "DequantizeLinear":
        if v.kind != "int" and not (v.kind == "chain" and v.elem != FLOAT):
            cv.fail("DequantizeLinear reads a tensor that is not an integer tensor")
    if node.op_type == "Relu" and v.kind == "exact":
        out = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="relu"))
        return v.derive(node=out.name, origin=node_label(node))
    return cv.chain_of(v, node)


@handles("QuantizeLinear")
def _quantize(cv, node):
    v = cv.vals.get(node.input[0])
    if isinstance(v, Val) and v.kind == "float_input":
        return cv.quantize_graph_input(node, v)
    v = cv.act(node.input[0])
    a = cv.attrs(node)
    if a.get("block_size", 0):
        cv.fail("blocked quantization (block_size) is not supported")
    s = np.asarray(cv.const(node.input[1], "scale").value, dtype=np.float32)
    zp_name = node.input[2] if len(node.input) > 2 else ""
    elem = cv.types.get(zp_name, 2) if zp_name else 2
    if elem not in ONNX_INT_TYPES or elem == 6:
        cv.fail(f"QuantizeLinear to element type {elem} is not supported (int8, uint8, int16, uint16, int4, uint4)")
    zp = np.asarray(cv.const(zp_name).value).astype(np.int64) if zp_name else np.zeros((), np.int64)
    if zp.size > 1 and np.any(zp != zp.reshape(-1)[0]):
        cv.fail("per-axis zero points that differ are not supported")
    zp = int(zp.reshape(-1)[0])
    if v.kind == "acc":
        return cv_requant(cv, node, v, s, zp, elem)
    v = cv.exact_dq(v) or v
    if v.kind == "exact" and s.size == 1 and zp == 0 and _is_po2(s) and _is_po2(v.scale):
        # a plain fixed-point requantization: round half to even, saturate.  The float32
        # division value / s is exact; the IR value times scale / s lands on the type's grid.
        qmin, qmax = int_range(elem)
        sv = float(s.reshape(-1)[0])
        ft = int(np.log2(v.scale / sv))
        bits = int(qmax).bit_length() + (1 if qmin < 0 else 0)
        t = FixedType(bits, bits - ft, qmin < 0, "RND_CONV", "SAT")
        sp = cv.spec(v.node)
        if sp.type.frac == ft and t.min_raw <= sp.lo and sp.hi <= t.max_raw:
            name = v.node  # neither rounds nor saturates: nothing to compute
        else:
            name = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="requant", type=t)).name
        return v.derive(kind="int", node=name, unit=sv / v.scale, zp=0, elem=elem, origin=node_label(node))
    return cv.table(cv.chain_of(v, node))


def cv_requant(cv, node, v: Val, s, zp, elem):
    """QuantizeLinear of an integer kernel's accumulator: ONNX Runtime's float32 requantization, tabulated."""
    if s.size != 1:
        cv.fail("the output scale of an integer kernel must be per-tensor")
    sx, sw = v.facts
    mult = multiplier(sx, sw, s.reshape(-1)[0])
    qmin, qmax = int_range(elem)
    spec = cv.spec(v.node)
    cmap = cv.channel_map(v)
    if cmap is None:
        cv.fail("the integer kernel's output layout mixes channels")
    m = mult[cmap] if mult.size > 1 else np.full(len(cmap), mult.reshape(-1)[0], dtype=np.float32)
    sv = float(s.reshape(-1)[0])
    unit_out = sv if _is_po2(sv) else 1.0
    per_channel = bool(np.any(m != m[0]))
    mm = m if per_channel else m[:1]
    sp = cv.spec(v.node)
    if (
        not per_channel
        and zp == 0
        and _is_po2(mm[0])
        and max(abs(sp.lo), abs(sp.hi)) * sp.type.to_float(1) / v.unit < F32_EXACT
    ):
        # a power-of-two multiplier on an accumulator float32 holds exactly: a plain fixed-point
        # requantization (round half to even, saturate) instead of a table
        ft = int(np.log2(float(mm[0]) / v.unit))
        bits = int(qmax).bit_length() + (1 if qmin < 0 else 0)
        t = FixedType(bits, bits - ft, qmin < 0, "RND_CONV", "SAT")
        out = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="requant", type=t))
        return v.derive(kind="int", node=out.name, unit=v.unit / float(mm[0]), zp=0, elem=elem, origin=node_label(node))

    def fn(x):
        acc = np.rint(x / v.unit).astype(np.int64)
        q = requant(acc, mm[None, :].astype(np.float32), zp, qmin, qmax)
        return (q - zp).astype(np.float64) * unit_out

    try:
        step = tabulate(fn, spec, channels=len(mm), source=f"{v.kernel} requantization", float_dtype=np.float64)
    except ProbeError as e:
        cv.fail(str(e))
    out = cv.add(Activation(cv.unique(node_label(node)), [v.node], function="step", step=step))
    return v.derive(kind="int", node=out.name, unit=unit_out, zp=zp, elem=elem, origin=node_label(node))


@handles("BatchNormalization")
def _batchnorm(cv, node):
    if len(node.output) > 1 and any(node.output[1:]):
        cv.fail("BatchNormalization in training mode (extra outputs) is not supported")
    return _elementwise_const(cv, node)


@handles("Mul", "Div", "Sub")
def _elementwise_const(cv, node):
    a, b = (
        (cv.vals.get(i) for i in node.input[:2])
        if node.op_type != "BatchNormalization"
        else (cv.vals.get(node.input[0]), None)
    )
    if node.op_type != "BatchNormalization" and (isinstance(a, Val) == isinstance(b, Val)):
        cv.fail(f"{node.op_type} of two activation tensors is not supported (only by a constant)")
    if isinstance(b, Val) and node.op_type != "Mul":
        cv.fail(f"{node.op_type} with the activation as the second operand is not supported")
    if isinstance(b, Val):  # constant * x: swap into x * constant
        from onnx import helper

        node = helper.make_node("Mul", [node.input[1], node.input[0]], list(node.output), name=node.name)
    v = cv.act(node.input[0])
    for i in node.input[1:]:
        c = cv.const(i)
        if node.op_type == "BatchNormalization" and c.value.size not in (1, v.shape[0]):
            cv.fail(f"BatchNormalization parameter '{i}' does not have one value per channel")
        if node.op_type != "BatchNormalization" and not _per_channel_ok(c, v):
            cv.fail(f"constant '{i}' of shape {c.value.shape} is not per-tensor or per-channel")
    return cv.chain_of(v, node)


def _per_channel_ok(c: Const, v: Val) -> bool:
    """A constant that broadcasts per tensor or per channel (ONNX axis 1) over v."""
    if c.value.size == 1:
        return True
    shape = tuple(c.value.shape)
    if len(shape) > len(v.shape) + 1:
        return False
    padded = (1,) * (len(v.shape) - len(shape)) + shape[-len(v.shape) :] if len(shape) <= len(v.shape) else shape[1:]
    return padded[0] == v.shape[0] and all(d == 1 for d in padded[1:])


# ---------------------------------------------------------------- linear
def _weight_from_dq(cv, c: Const, what):
    """Integer weights (q - zp) and per-output-channel scales of a DequantizeLinear'd constant."""
    if c.dq is None:
        cv.fail(f"{what} must be DequantizeLinear of integer weights for ONNX Runtime's integer kernel")
    q, s, zp, axis, _ = c.dq
    return q - (zp if zp.size == 1 else zp.reshape([-1 if k == axis % q.ndim else 1 for k in range(q.ndim)])), s, axis


def _conv_geometry(cv, node, in_shape, kshape):
    a = cv.attrs(node)
    rank = len(kshape)
    if any(d != 1 for d in a.get("dilations", [1] * rank)):
        cv.fail("dilation is not supported")
    strides = tuple(a.get("strides", [1] * rank))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    spatial = in_shape[1:]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, k, s in zip(spatial, kshape, strides, strict=False):
            b, e = _pad_amounts(n, k, s, "same")
            pads.append((e, b) if auto == "SAME_LOWER" else (b, e))
    elif auto == "VALID":
        pads = [(0, 0)] * rank
    else:
        p = list(a.get("pads", [0] * (2 * rank)))
        pads = list(zip(p[:rank], p[rank:], strict=False))
    if all(b == 0 and e == 0 for b, e in pads):
        return strides, "valid", ()
    if min(min(p) for p in pads) < 0:
        cv.fail(f"negative padding {pads} is not supported")
    same = [_pad_amounts(n, k, s, "same") for n, k, s in zip(spatial, kshape, strides, strict=False)]
    if [tuple(p) for p in pads] == same:
        return strides, "same", ()
    return strides, "explicit", tuple(int(v) for p in pads for v in p)


@handles("Conv", "ConvInteger", "QLinearConv")
def _conv(cv, node):
    op = node.op_type
    xin = 0
    win = 1 if op == "Conv" else (1 if op == "ConvInteger" else 3)
    x = cv.batch0(cv.act(node.input[xin]))
    wc = cv.const(node.input[win], "weight")
    a = cv.attrs(node)
    if len(x.shape) not in (2, 3):
        cv.fail(f"Conv input of shape {x.shape} is not 1-D or 2-D with channels")
    if x.kind != "float_input" and not np.array_equal(x.index, canonical_index(x.shape)):
        cv.fail("the input of this Conv was transposed or reshaped; Conv needs channels-first data")
    group = a.get("group", 1)
    cin = x.shape[0]
    kshape = tuple(wc.value.shape[2:])
    strides, padding, pads = _conv_geometry(cv, node, x.shape, kshape)
    wmode, facts, xv, bias_raw, unit = _linear_inputs(cv, node, x, wc, op, axis_out=0)
    # W: [M, C/group, *k] -> IR [*k, C, M] or depthwise [*k, C, mult]
    wq = wmode  # integer or float array in ONNX layout
    M = wq.shape[0]
    if group == 1:
        k_ir = np.moveaxis(wq, (0, 1), (-1, -2))
        depthwise = False
    elif group == cin and wq.shape[1] == 1:
        mult = M // cin
        k_ir = np.moveaxis(wq.reshape((cin, mult) + kshape), (0, 1), (-2, -1))
        depthwise = True
    else:
        cv.fail(f"group={group} is not supported (1, or the number of input channels for a depthwise convolution)")
    wunit = _weight_unit(facts)
    w, b = _ir_weights(cv, k_ir, bias_raw, xv, wunit)
    unit *= wunit
    out = cv.add(
        Conv(
            cv.unique(node_label(node)),
            [xv.node],
            kernel=w,
            bias=b,
            strides=strides,
            padding=padding,
            pads=pads,
            depthwise=depthwise,
        )
    )
    oshape = (M,) + tuple(cv.spec(out.name).shape[:-1])
    return _linear_output(cv, node, out, oshape, facts, unit)


@handles("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")
def _dense(cv, node):
    op = node.op_type
    a = cv.attrs(node)
    x = cv.batch0(cv.act(node.input[0]))
    win = {"Gemm": 1, "MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3}[op]
    wc = cv.const(node.input[win], "weight")
    if op == "Gemm":
        if a.get("transA", 0):
            cv.fail("Gemm with transA=1 is not supported")
        if a.get("alpha", 1.0) != 1.0 or (len(node.input) > 2 and node.input[2] and a.get("beta", 1.0) != 1.0):
            cv.fail("Gemm with alpha or beta other than 1 is not supported")
    if len(x.shape) != 1 or wc.value.ndim != 2:
        cv.fail(f"{op} of a tensor of shape {x.shape} is not supported (flatten to [N, features] first)")
    trans = bool(a.get("transB", 0)) if op == "Gemm" else False
    wmode, facts, xv, bias_raw, unit = _linear_inputs(cv, node, x, wc, op, axis_out=0 if trans else 1)
    wq = wmode.T if trans else wmode  # [K, M]
    if wq.shape[0] != x.shape[0]:
        cv.fail(f"weight of shape {wc.value.shape} does not match {x.shape[0]} input features")
    k_ir = wq[x.index.reshape(-1)]  # rows in the IR's feature order
    if bias_raw is not None:
        bias_raw = np.asarray(bias_raw)
        if bias_raw.ndim == 2 and bias_raw.shape[0] != 1:
            cv.fail(f"a bias of shape {bias_raw.shape} differs per batch row")
        bias_raw = np.broadcast_to(bias_raw.reshape(-1), (wq.shape[1],)).copy()
    wunit = _weight_unit(facts)
    w, b = _ir_weights(cv, k_ir, bias_raw, xv, wunit)
    unit *= wunit
    out = cv.add(Dense(cv.unique(node_label(node)), [xv.node], kernel=w, bias=b))
    return _linear_output(cv, node, out, (wq.shape[1],), facts, unit)


def _linear_inputs(cv, node, x: Val, wc: Const, op, axis_out):
    """(weights in ONNX layout, (s_x, s_w) or None, input Val, bias, input unit).

    Integer path (ONNX Runtime integer kernels, explicit or fused): weights are integers,
    the input is an integer tensor, the bias int32; ``facts`` carries the scales.
    Float path: weights are floats and everything must be exact in float32.
    """
    kernel = ""
    if op in ("Conv", "Gemm", "MatMul"):
        kernel = cv.kernels.get(_q_output(cv, node), "")
        if kernel not in ORT_INT_KERNELS:
            # not fused: ONNX Runtime computes in float32 (any float kernel: the exactness
            # check below holds for every summation order), unless it chose another integer kernel
            mine = cv.kernels.get(node.output[0], "")
            if any(k.startswith(("QLinear", "QGemm", "DynamicQuantize")) or "Integer" in k for k in (kernel, mine)):
                cv.fail(f"ONNX Runtime runs this node as {kernel or mine}, whose arithmetic hlsgen does not reproduce")
            kernel = ""
    if op in ("QLinearConv", "QLinearMatMul"):
        xs = float(np.asarray(cv.const(node.input[1]).value).reshape(-1)[0])
        xzp = int(np.asarray(cv.const(node.input[2]).value).reshape(-1)[0])
        if x.kind != "int" or x.zp != xzp:
            x = _as_int(cv, x, xzp)
        wq = np.asarray(wc.value).astype(np.int64)
        wzp = np.asarray(cv.const(node.input[5]).value).astype(np.int64)
        ws = np.asarray(cv.const(node.input[4]).value, dtype=np.float32).reshape(-1)
        wq = wq - (wzp.reshape([-1] + [1] * (wq.ndim - 1)) if wzp.size > 1 else wzp.reshape(()))
        bias = None
        if op == "QLinearConv" and len(node.input) > 8 and node.input[8]:
            bias = np.asarray(cv.const(node.input[8]).value).astype(np.int64)
        return wq, (xs, ws), x, bias, x.unit
    if op in ("ConvInteger", "MatMulInteger"):
        xzp = (
            int(np.asarray(cv.const(node.input[2]).value).reshape(-1)[0])
            if len(node.input) > 2 and node.input[2]
            else 0
        )
        if x.kind != "int" or x.zp != xzp:
            x = _as_int(cv, x, xzp)
        wq = np.asarray(wc.value).astype(np.int64)
        if len(node.input) > 3 and node.input[3]:
            wzp = np.asarray(cv.const(node.input[3]).value).astype(np.int64)
            shape = [1] * wq.ndim
            shape[0 if op == "ConvInteger" else 1] = -1
            wq = wq - (wzp.reshape(shape) if wzp.size > 1 else wzp.reshape(()))
        return wq, None, x, None, x.unit
    if kernel in ORT_INT_KERNELS:
        # DQ -> op -> Q that ONNX Runtime runs as one integer kernel
        if x.kind != "chain" or len(x.chain) != 1 or x.chain[0].op_type != "DequantizeLinear" or x.base.kind != "int":
            cv.fail(
                f"ONNX Runtime runs this node as {kernel}, but its input is not DequantizeLinear of an integer tensor"
            )
        xs_, xzp_ = cv.qparams(x.chain[0])
        xs, xzp = float(xs_[0]), int(xzp_[0])
        xb = x.base
        if xb.zp != xzp:
            cv.fail("the input's DequantizeLinear zero point differs from its QuantizeLinear's")
        wq, ws, waxis = _weight_from_dq(cv, wc, "the weight")
        ws = ws.reshape(-1)
        if ws.size > 1 and waxis % wq.ndim != axis_out:
            cv.fail(f"per-axis weight scales on axis {waxis} are not per output channel")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bc = cv.const(node.input[2], "bias")
            if bc.dq is None or bc.dq[4] != 6:
                cv.fail(f"ONNX Runtime runs this node as {kernel}: its bias must be DequantizeLinear of int32")
            bias = bc.dq[0] - bc.dq[2].reshape(bc.dq[0].shape if bc.dq[2].size > 1 else ())
        return wq, (xs, ws), xb, bias, xb.unit
    # float path: exact float32 only
    xv = cv.settle(x, exact=True)
    bias = None
    if len(node.input) > 2 and node.input[2] and op != "MatMul":
        bias = np.asarray(cv.const(node.input[2], "bias").value, dtype=np.float64)
    return np.asarray(wc.value, dtype=np.float64), None, xv, bias, 1.0


def _as_int(cv, x: Val, zp):
    if x.kind == "int" and x.zp == zp:
        return x
    if x.kind == "chain" and x.elem != FLOAT:
        x = cv.table(x)
        if x.zp == zp:
            return x
    cv.fail("the input must be an integer tensor with the zero point this node declares")


def _q_output(cv, node) -> str:
    """Name of the tensor ONNX Runtime's fused kernel writes (the QuantizeLinear after the node)."""
    out = node.output[0]
    cons = cv.consumers.get(out, [])
    if len(cons) == 1 and cons[0].op_type == "QuantizeLinear":
        return cons[0].output[0]
    return out


def _weight_unit(facts) -> float:
    """The weight scale when it is one power of two (then the IR weights carry it), else 1."""
    if facts is None:
        return 1.0
    ws = np.asarray(facts[1], dtype=np.float64).reshape(-1)
    return float(ws[0]) if np.all(ws == ws[0]) and _is_po2(ws[0]) else 1.0


def _ir_weights(cv, k_ir, bias_raw, xv, wunit=1.0):
    if np.issubdtype(np.asarray(k_ir).dtype, np.integer):
        k = np.asarray(k_ir, dtype=np.int64)
        lo, hi = int(min(k.min(), 0)), int(max(k.max(), 0))
        w = Weight(k, FixedType.for_range(lo, hi, -int(np.log2(wunit))))
        w.kind = w.detect_kind()
        b = None
        if bias_raw is not None:
            # the accumulator is (sum + bias) * unit on the IR side
            bv = np.asarray(bias_raw, dtype=np.float64) * xv.unit * wunit
            b = Weight.from_values(bv, kind="fixed")
        return w, b
    try:
        w = Weight.from_values(np.asarray(k_ir, dtype=np.float32).astype(np.float64))
        b = (
            None
            if bias_raw is None
            else Weight.from_values(np.asarray(bias_raw, dtype=np.float32).astype(np.float64), kind="fixed")
        )
    except ValueError:
        cv.fail("float weights are not on a power-of-two grid, so float32 arithmetic would not be exact")
    # every product and partial sum must be exact in float32: the L1 bound in grid units < 2**24
    sp = cv.spec(xv.node)
    xmax = max(abs(sp.lo), abs(sp.hi))
    flat = w.raw.reshape(-1, w.raw.shape[-1]).astype(object)
    l1 = np.abs(flat).sum(axis=0) * xmax
    f = sp.type.frac + w.type.frac
    if b is not None:
        fb = b.type.frac
        ff = max(f, fb)
        l1 = l1 * (1 << (ff - f)) + np.abs(b.raw.astype(object)) * (1 << (ff - fb))
    if max(l1) >= F32_EXACT:
        cv.fail(
            f"float32 arithmetic of this node is not exact (its sums need {int(max(l1)).bit_length()} significant bits); "
            "quantize it so that ONNX Runtime runs an integer kernel (QDQ with int8/uint8), or use fewer bits"
        )
    if xv.scale != 1.0:
        cv.fail("the input's scale is not folded; dequantize with the quantizer's own scale")
    return w, b


def _linear_output(cv, node, out, oshape, facts, unit):
    idx = canonical_index(oshape)
    name = node_label(node)
    if facts is not None:
        kernel = cv.kernels.get(_q_output(cv, node), node.op_type)
        acc = Val("acc", out.name, oshape, idx, name, facts=facts, kernel=kernel, unit=unit)
        if node.op_type in ("QLinearConv", "QLinearMatMul"):  # the requantization is part of the node
            s = np.asarray(cv.const(node.input[6], "y_scale").value, dtype=np.float32)
            zp = np.asarray(cv.const(node.input[7], "y_zero_point").value).astype(np.int64).reshape(-1)
            return cv_requant(cv, node, acc, s, int(zp[0]), cv.types.get(node.input[7], 2))
        return acc
    if node.op_type in ("ConvInteger", "MatMulInteger"):
        return Val("int", out.name, oshape, idx, name, elem=6, zp=0, unit=unit)
    return Val("exact", out.name, oshape, idx, name, scale=1.0)


# ---------------------------------------------------------------- pools, add, layout
@handles("MaxPool", "GlobalMaxPool", "AveragePool", "GlobalAveragePool")
def _pool(cv, node):
    v = cv.batch0(cv.act(node.input[0]))
    if len(node.output) > 1 and node.output[1]:
        cv.fail("MaxPool's Indices output is not supported")
    a = cv.attrs(node)
    if not np.array_equal(v.index, canonical_index(v.shape)) or len(v.shape) not in (2, 3):
        cv.fail("pooling needs a channels-first 1-D or 2-D tensor")
    is_max = "Max" in node.op_type
    glob = node.op_type.startswith("Global")
    if not is_max and v.kind == "chain":
        for n in v.chain:
            if n.op_type == "DequantizeLinear" and not _is_po2(cv.const(n.input[1]).value):
                cv.fail(
                    "average of a tensor with a float scale: ONNX Runtime sums dequantized float32 values "
                    "whose rounding depends on every term; hlsgen reproduces it for power-of-two scales only"
                )
    if v.kind == "chain" and is_max and all(_monotone(cv, n) for n in v.chain):
        src = v  # max commutes with non-decreasing element-wise functions
    else:
        src = cv.settle(v, exact=not is_max)
    if glob:
        p = Pool(
            cv.unique(node_label(node)),
            [src.node if src.kind != "chain" else src.base.node],
            mode="max" if is_max else "avg",
            global_=True,
        )
    else:
        k = tuple(a["kernel_shape"])
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1])):
            cv.fail("pooling with padding, ceil_mode or dilation is not supported")
        auto = a.get("auto_pad", b"NOTSET")
        if (auto.decode() if isinstance(auto, bytes) else auto) not in ("NOTSET", "VALID"):
            cv.fail("pooling with auto_pad SAME is not supported")
        strides = tuple(a.get("strides", [1] * len(k)))
        p = Pool(
            cv.unique(node_label(node)),
            [src.node if src.kind != "chain" else src.base.node],
            mode="max" if is_max else "avg",
            pool_size=k,
            strides=strides,
        )
    out = cv.add(p)
    sp = cv.spec(out.name)
    oshape = (v.shape[0],) if glob else (v.shape[0],) + tuple(sp.shape[:-1])
    if glob:
        oshape = oshape + (1,) * (len(v.shape) - 1)
    idx = canonical_index(oshape).reshape(sp.shape) if glob else canonical_index(oshape)
    if not is_max:
        s = cv.spec(out.name)
        if max(abs(s.lo), abs(s.hi)) >= F32_EXACT:
            cv.fail("float32 arithmetic of this average is not exact (sum needs more than 24 bits)")
    if src.kind == "chain":
        base = src.base.derive(node=out.name, shape=oshape, index=idx)
        return src.derive(base=base, shape=oshape, index=idx, origin=node_label(node))
    return src.derive(node=out.name, shape=oshape, index=idx, origin=node_label(node))


def _monotone(cv, n) -> bool:
    """Element-wise node that is non-decreasing in its input (max-pool commutes with it)."""
    if n.op_type in ("Relu", "Clip", "Sigmoid", "Tanh", "Cast"):
        return True
    if n.op_type in ("QuantizeLinear", "DequantizeLinear", "Quant", "Trunc", "BipolarQuant"):
        return bool(np.all(np.asarray(cv.vals[n.input[1]].value) > 0))  # a positive scale
    return False


@handles("Add")
def _add(cv, node):
    a, b = (cv.vals.get(i) for i in node.input[:2])
    if isinstance(a, Const) or isinstance(b, Const):
        if isinstance(a, Const):
            from onnx import helper

            node = helper.make_node("Add", [node.input[1], node.input[0]], list(node.output), name=node.name)
        return _elementwise_const_add(cv, node)
    a, b = cv.batch0(a), cv.batch0(b)
    if a.shape != b.shape or not np.array_equal(a.index, b.index):
        cv.fail(f"Add of tensors with shapes {a.shape} and {b.shape} (or layouts) that differ")
    for v in (a, b):
        if v.kind == "chain" and any(
            n.op_type == "DequantizeLinear" and not _is_po2(cv.const(n.input[1]).value) for n in v.chain
        ):
            cv.fail(
                f"Add of a tensor with a float scale (from '{v.origin}'): ONNX Runtime adds rounded float32 "
                "values, which hlsgen reproduces for power-of-two scales only"
            )
    xa, xb = cv.settle(a, exact=True), cv.settle(b, exact=True)
    if xa.scale != 1.0 or xb.scale != 1.0:
        cv.fail("Add of tensors with float scales is not exact in float32")
    out = cv.add(Add(cv.unique(node_label(node)), [xa.node, xb.node]))
    s = cv.spec(out.name)
    if max(abs(s.lo), abs(s.hi)) >= F32_EXACT:
        cv.fail("float32 arithmetic of this Add is not exact (the sum needs more than 24 bits)")
    return xa.derive(node=out.name, origin=node_label(node))


def _elementwise_const_add(cv, node):
    v = cv.act(node.input[0])
    c = cv.const(node.input[1])
    if not _per_channel_ok(c, v):
        cv.fail(f"constant '{node.input[1]}' of shape {c.value.shape} is not per-tensor or per-channel")
    return cv.chain_of(v, node)


@handles("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def _layout(cv, node):
    v = cv.act(node.input[0])
    a = cv.attrs(node)
    op = node.op_type
    if cv.per_channel(v) and op not in ("Identity", "Dropout"):
        v = cv.table(v)  # per-channel constants refer to the layout before the change
    if op in ("Identity", "Dropout"):
        if len(node.output) > 1 and node.output[1]:
            cv.fail("Dropout's mask output is not supported")
        return v
    b = v.batch
    rank = len(v.shape) + 1

    def nb(ax):  # full-tensor axis -> axis of v.shape
        return ax if ax < b else ax - 1

    if op == "Transpose":
        perm = list(a.get("perm", range(rank)[::-1]))
        nbatch = perm.index(b)
        p = [nb(q) for q in perm if q != b]
        new = tuple(v.shape[q] for q in p)
        # the ONNX flat index (batch left out) of every element after the transpose
        old = np.arange(math.prod(v.shape)).reshape(v.shape)
        moved = np.transpose(old, p).reshape(-1)  # new flat position -> old flat index
        inv = np.empty_like(moved)
        inv[moved] = np.arange(moved.size)
        out = v.derive(shape=new, index=inv[v.index], origin=node_label(node), batch=nbatch)
        if v.kind == "chain":
            out.base = v.base.derive(shape=new, index=inv[v.base.index], batch=nbatch)
        return out
    if op in ("Squeeze", "Unsqueeze"):
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(q) for q in cv.const(node.input[1]).value]
        full = list(v.shape)
        full.insert(b, 1)
        if op == "Squeeze":
            axes = sorted(q % rank for q in (axes if axes else [i for i, d in enumerate(full) if d == 1 and i != b]))
            if b in axes or any(full[q] != 1 for q in axes):
                cv.fail("Squeeze of the batch dimension or of an axis longer than 1 is not supported")
            new = tuple(d for i, d in enumerate(v.shape) if nb_keep(i, b, axes))
            nbatch = b - sum(q < b for q in axes)
        else:
            out_rank = rank + len(axes)
            axes = sorted(q % out_rank for q in axes)
            rest = iter(range(rank))
            nfull = [None if q in axes else next(rest) for q in range(out_rank)]
            nbatch = nfull.index(b)
            new = tuple(1 if q is None else v.shape[nb(q)] for q in nfull if q != b)
        # size-1 axes do not change flat indices: only the shape and the batch position move
        out = v.derive(shape=new, origin=node_label(node), batch=nbatch)
        if v.kind == "chain":
            out.base = v.base.derive(shape=new, batch=nbatch)
        return out
    v = cv.batch0(v)
    full = (1,) + v.shape
    if op == "Flatten":
        ax = a.get("axis", 1)
        if ax != 1:
            cv.fail(f"Flatten with axis={ax} is not supported (axis 1: keep the batch)")
        new = (math.prod(v.shape),)
    else:  # Reshape
        shape = [int(q) for q in cv.const(node.input[1], "shape").value]
        shape = [full[i] if q == 0 else q for i, q in enumerate(shape)]
        if shape.count(-1) == 1:
            known = math.prod(q for q in shape if q != -1)
            shape[shape.index(-1)] = math.prod(full) // max(known, 1)
        if not shape or shape[0] != 1 or math.prod(shape) != math.prod(full):
            cv.fail(f"Reshape to {shape} changes the batch dimension")
        new = tuple(shape[1:])
    if not new:
        cv.fail("a tensor without dimensions besides the batch is not supported")
    if v.kind in ("acc", "float_input"):
        cv.settle(v)
    # the IR holds the same elements in its own order: reshape that order and keep, for every
    # element, its ONNX flat index (an ONNX reshape keeps flat indices)
    ir_shape = (math.prod(new),) if len(new) == 1 else _ir_shape(new)
    carrier = v.base if v.kind == "chain" else v
    node_name = carrier.node
    if tuple(cv.spec(node_name).shape) != ir_shape:
        node_name = cv.add(Reshape(cv.unique(node_label(node)), [node_name], shape=ir_shape)).name
    idx = v.index.reshape(ir_shape)
    if v.kind == "chain":
        base = v.base.derive(node=node_name, shape=new, index=v.base.index.reshape(ir_shape), batch=0)
        return v.derive(shape=new, index=idx, base=base, origin=node_label(node))
    return v.derive(node=node_name, shape=new, index=idx, origin=node_label(node))


def nb_keep(i, b, axes) -> bool:
    """Axis i of a shape without the batch (at b) survives a Squeeze of full-tensor axes."""
    full_axis = i if i < b else i + 1
    return full_axis not in axes


@handles("LSTM", "GRU")
def _recurrent(cv, node):
    from .recurrent import convert_recurrent

    return convert_recurrent(cv, node)


# ====================================================================== entry points
def convert_onnx(path, config=None) -> Graph:
    """Convert an ONNX file to an IR graph that is exact with ONNX Runtime.

    Only an ONNX LSTM / GRU (float32 inside) is converted approximately, and only with
    ``Model: {Approximate: true}``; the error against ONNX Runtime is then measured and kept
    in ``graph.meta["measured_error"]``.
    """
    from ...config import Config

    file = str(path)
    model = load_onnx(file)
    return OnnxConverter(model, file, Config.coerce(config)).run()

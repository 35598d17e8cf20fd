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
from ...ir import Activation, Graph, Input, IRError
from ...ir.nodes import reason
from ..probe import ProbeError, tabulate
from . import ops  # noqa: F401  (registers the operator handlers)
from .loader import load_onnx, node_label, ort_kernels, uses_qonnx
from .numerics import FLOAT, ONNX_INT_TYPES, NodeRunner, int_range, qonnx_range
from .registry import CONST_FOLD, ELEMENTWISE, F32_EXACT, HANDLERS, INT_TO_INT, QONNX_OPS
from .values import Const, Val, _is_po2, _to_array, canonical_index


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
        self.float_scales: list[str] = []  # layers computed exactly with float scales (exact.py)
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
        if len(self.g.output) != 1:
            self.fail(f"the graph has {len(self.g.output)} outputs; hlsgen streams exactly one")
        nodes, out_name = self.strip_softmax(list(self.g.node), self.g.output[0].name)
        for node in nodes:
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
                if node.op_type in ("Scan", "Loop"):
                    self.fail(
                        f"operator {node.op_type} (a recurrent loop, as a QCDQ QuantLSTM exports) is not supported; "
                        "an ONNX LSTM/GRU converts with Model: Approximate: true, a QKeras QLSTM/QGRU exactly"
                    )
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
        out = self.vals.get(out_name)
        if not isinstance(out, Val):
            self.fail("the graph output is a constant")
        self.graph_output(out)
        if self.float_scales:
            self.approximations.append(
                "float scales ("
                + ", ".join(self.float_scales[:8])
                + ("..." if len(self.float_scales) > 8 else "")
                + "): integer accumulators and requantizations computed exactly as QONNX defines them; "
                "runtimes that compute in float32 round differently (measured_error counts where)"
            )
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

    def strip_softmax(self, nodes: list, out_name: str) -> tuple[list, str]:
        """Drop the Softmax that computes the graph output when the config asks (StripSoftmax):
        the output is then its input, the logits (argmax unchanged)."""
        prod = next((n for n in nodes if out_name in n.output), None)
        if not self.cfg.strip_softmax or prod is None or prod.op_type != "Softmax":
            return nodes, out_name
        if len(self.consumers.get(prod.input[0], [])) != 1:
            return nodes, out_name
        self.notes.append(f"{node_label(prod)}: final softmax removed (StripSoftmax); outputs are logits")
        self.meta["stripped_softmax"] = prod.input[0]
        return [n for n in nodes if n is not prod], prod.input[0]

    def measure_error(self, n: int = 256) -> dict:
        """The approximate graph against ONNX Runtime on random inputs over the input quantizer's range."""
        from ...reference.execute import predict_int
        from .io import onnx_random_inputs, output_to_onnx, quantize_input, run_onnxruntime

        x = onnx_random_inputs(self.graph, np.random.default_rng(0), n)
        y = output_to_onnx(self.graph, predict_int(self.graph, quantize_input(self.graph, x))).astype(np.float64)
        yr = run_onnxruntime(self.file, x, self.graph).astype(np.float64)
        err = np.abs(y - yr)
        return {
            "vectors": n,
            "inputs": "uniform over the input quantizer's range",
            "against": (
                "QONNX execution (QONNX operators as standard ones, ONNX Runtime node by node in float32)"
                if self.qonnx
                else "ONNX Runtime (CPU, default options)"
            ),
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
        self.batch_size = full[b]  # 0 when dynamic
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
        elif node.op_type == "BipolarQuant":  # FINN-style binary networks: +-scale from the sign
            zp, qmin, qmax, elem, rounding, narrow = 0, -1, 1, FLOAT, "RND_CONV", False
            if not _is_po2(s):
                self.fail("an input BipolarQuant needs a power-of-two scale")
            q = {"op": "BipolarQuant", "scale": s, "zero_point": 0, "qmin": -1, "qmax": 1}
        else:  # QONNX Quant
            zp = int(np.asarray(self.const(node.input[2]).value).reshape(-1)[0])
            bits = int(np.asarray(self.const(node.input[3]).value).reshape(-1)[0])
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            mode = str(a.get("rounding_mode", "ROUND")).upper()
            rounding = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN"}.get(mode)
            if rounding is None or bits < 2:
                self.fail(f"input Quant with rounding_mode {mode} and {bits} bits is not supported")
            qmin, qmax = qonnx_range(bits, signed, narrow)
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
        v = self.input_relayout(v)
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
        if unit != s:  # float scale or zero point: the IR holds q - zp, worth (q - zp) * s
            self.float_scales.append(node_label(node))
            return Val("exact", self.graph.nodes[-1].name, v.shape, v.index, node_label(node), scale=s, batch=v.batch)
        return Val("exact", self.graph.nodes[-1].name, v.shape, v.index, node_label(node), scale=1.0, batch=v.batch)

    def input_relayout(self, v: Val) -> Val:
        """A graph input transposed before anything is computed (keras2onnx's and tf2onnx's NHWC
        input -> Transpose -> NCHW, before or after its quantizer): the IR input takes the
        transposed tensor's own channels-last order, so the transpose costs nothing in hardware
        (the host sends the elements in that order).  ``v`` unchanged if that cannot be done."""
        canon = canonical_index(v.shape)
        if self.recurrent or (v.index.shape == canon.shape and np.array_equal(v.index, canon)):
            return v
        carrier = v.base if v.kind == "chain" else v
        if self.graph is not None:  # only the Input node exists, and v reads it directly
            if len(self.graph.nodes) != 1 or carrier.node != self.graph.nodes[0].name:
                return v
            if carrier is not v and not np.array_equal(carrier.index, v.index):
                return v
        orig_of = np.empty(v.index.size, dtype=np.int64)  # transposed flat index -> input flat index
        orig_of[v.index.reshape(-1)] = np.asarray(self.meta["input"]["index"], dtype=np.int64)
        self.meta["input"]["index"] = orig_of[canon.reshape(-1)].tolist()
        self.notes.append(f"input layout change absorbed ({self.input_name} read in the order {v.origin} makes)")
        if self.graph is not None:
            old = self.graph.nodes[0]
            self.graph = None
            self.add(Input(old.name, [], shape=canon.shape, type=old.type))
        if carrier is not v:
            return v.derive(index=canon, base=carrier.derive(index=canon))
        return v.derive(index=canon)

    def affine_output(self, v: Val):
        """A float-scale last layer without an output quantizer: the hardware returns the integer
        accumulators; the host applies the scales, bias and element-wise ops exactly (exact.py)."""
        sx, sw = v.facts
        shape = v.shape
        per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        channel = np.repeat(np.arange(shape[0]), per)  # ONNX channel of every flat element

        def per_elem(c):
            c = np.asarray(c, dtype=np.float64).reshape(-1)
            return (c[channel] if c.size > 1 else np.repeat(c, channel.size)).tolist()

        steps = [[n, per_elem(a) if n in ("add", "mul") else a] for n, a in v.ops]
        steps = [[n, [None if q is None else float(q) for q in a]] if n == "clip" else [n, a] for n, a in steps]
        self.meta["output"] = {
            "shape": list(shape),
            "index": v.index.reshape(-1).tolist(),
            "batch_axis": v.batch,
            "kind": "affine",
            "frac": int(self.spec(v.node).type.frac),
            "sx": float(sx),
            "sw": per_elem(sw),
            "ops": steps,
        }
        self.graph.output = v.node

    def int_before_dq(self, v: Val) -> Val:
        """QuantizeLinear -> Clip -> DequantizeLinear (Brevitas's sub-8-bit activations, QCDQ):
        the Clip on integers becomes its own table, and the DequantizeLinear reads its integers."""
        if v.kind != "chain" or len(v.chain) < 2 or v.base.kind != "int" or v.chain[-1].op_type != "DequantizeLinear":
            return v
        if not all(n.op_type in INT_TO_INT for n in v.chain[:-1]):
            return v
        vi = self.table(v.derive(chain=v.chain[:-1], elem=v.base.elem))
        return v.derive(base=vi, chain=v.chain[-1:])

    def graph_output(self, v: Val):
        dq = None
        v = self.int_before_dq(v)
        if v.kind == "acc" and v.kernel == "exact":
            return self.affine_output(v)
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
        if v.kind == "acc" and v.kernel == "exact":
            self.fail(f"the float-scale layer '{v.origin}' must be followed by a Quant before this node")
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
        if v.kind == "acc" and v.kernel == "exact":
            return v.derive(ops=v.ops + self.exact_ops(node, v), origin=node_label(node))
        if v.kind == "acc":
            self.fail(f"the integer kernel '{v.origin}' must be followed directly by QuantizeLinear")
        self.fail("the float graph input must be quantized (QuantizeLinear or Quant) first")

    def exact_ops(self, node, v: Val) -> list:
        """An element-wise node after a float-scale layer as exact operations (exact.py)."""
        op = node.op_type

        def vec(name):
            return np.asarray(self.const(name).value, dtype=np.float32).reshape(-1)

        if op in ("Add", "Sub", "Mul") and len(node.input) == 2 and isinstance(self.vals.get(node.input[1]), Const):
            c = vec(node.input[1])
            return [("mul", c) if op == "Mul" else ("add", -c if op == "Sub" else c)]
        if op == "Relu":
            return [("relu", None)]
        if op == "Clip":
            a = self.attrs(node)
            lo = vec(node.input[1])[0] if len(node.input) > 1 and node.input[1] else a.get("min")
            hi = vec(node.input[2])[0] if len(node.input) > 2 and node.input[2] else a.get("max")
            return [("clip", (lo, hi))]
        if op == "BatchNormalization":
            # (x - mean) / sqrt(var + eps) * gamma + beta as x * a + b, a and b in float64: the
            # square root is the one step no rational arithmetic can do exactly
            gamma, beta, mean, var = (vec(i).astype(np.float64) for i in node.input[1:5])
            a = gamma / np.sqrt(var + float(self.attrs(node).get("epsilon", 1e-5)))
            return [("mul", a), ("add", beta - mean * a)]
        self.fail(
            f"{op} between the float-scale layer '{v.origin}' and its output quantizer is not supported "
            "(Add, Sub, Mul by constants, BatchNormalization, Relu, Clip are)"
        )

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
        # a QONNX Quant with a float scale closes the chain: the table gives its integers q - zp
        qscale = None
        if not out_int and last.op_type in ("Quant", "BipolarQuant"):
            sl = np.asarray(self.const(last.input[1], "scale").value, dtype=np.float64).reshape(-1)
            if sl.size == 1 and sl[0] > 0 and not _is_po2(sl):
                qscale = float(sl[0])
        if out_int and base.kind == "int" and all(n.op_type in INT_TO_INT for n in chain):
            # Clip on integers (sub-8-bit activations as QuantizeLinear -> Clip): same zero point and unit
            zp_out, unit_out = base.zp, base.unit
        elif out_int:
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
            if qscale is not None:
                return np.rint(y.astype(np.float64) / qscale)
            return y.astype(np.float64)

        channels = len(cmap) if per_channel else 1
        try:
            step = tabulate(
                fn, spec, channels=channels, source=" -> ".join(n.op_type for n in chain), float_dtype=np.float64
            )
        except ProbeError as e:
            self.fail(f"{e}", last)
        out_scale = qscale if qscale is not None else 1.0
        if _identity(step, spec):
            # DequantizeLinear -> MaxPool / Flatten / ... -> QuantizeLinear with the same scale and
            # zero point (ONNX Runtime's QDQ around layout ops): nothing to compute, no stage
            if out_int:
                return v.derive(kind="int", node=base.node, unit=unit_out, zp=zp_out, base=None, chain=[])
            return v.derive(kind="exact", node=base.node, scale=out_scale, base=None, chain=[])
        node = self.add(Activation(self.unique(node_label(last)), [base.node], function="step", step=step))
        if out_int:
            return v.derive(kind="int", node=node.name, unit=unit_out, zp=zp_out, base=None, chain=[])
        return v.derive(kind="exact", node=node.name, scale=out_scale, base=None, chain=[])


def _identity(step, spec, limit: int = 1 << 20) -> bool:
    """The table maps every value its input can take to itself (on the same grid)."""
    lo, hi = int(spec.lo), int(spec.hi)
    if step.out_type.frac != spec.type.frac or hi - lo + 1 > limit:
        return False
    raw = np.arange(lo, hi + 1, dtype=np.int64)
    x = np.repeat(raw[:, None], step.channels, axis=1) if step.channels > 1 else raw[:, None]
    return bool(np.array_equal(step(x), x))


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

"""Read an ONNX file and refuse, in one line naming the node, what cannot be converted.

Checks, in order: the file parses; external data is present; the opset is one hlsgen
knows; the ONNX checker accepts the graph; every input has a static shape (a symbolic
batch dimension is allowed).  :func:`ort_kernels` asks ONNX Runtime how it will execute
the graph (which nodes it fuses into integer kernels), because that decides the
arithmetic hlsgen must reproduce.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ...errors import HlsgenError

#: default-domain opsets this frontend is written and tested against
OPSETS = range(10, 22)
#: domains of the QONNX custom ops (Quant, BipolarQuant, Trunc); older Brevitas exports use
#: "onnx.brevitas" and FINN's "finn.custom_op.general" for the same operators
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "qonnx", "finn", "onnx.brevitas")


def node_label(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def load_onnx(path, upgrade: bool = True) -> object:
    """The model with names on every node, external data loaded; HlsgenError on bad input.

    A default-domain opset below the supported ones is upgraded with onnx's version converter
    (``upgrade``); ONNX Runtime still runs the file as it is when ``verify`` compares."""
    import onnx
    from onnx import TensorProto

    file = str(path)
    p = Path(file)
    if not p.is_file():
        raise HlsgenError("no such file", file=file)
    try:
        model = onnx.load(file, load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise HlsgenError(f"not a readable ONNX model ({type(e).__name__}: {_first_line(e)})", file=file) from None
    g = model.graph
    if not g.node:
        raise HlsgenError("the ONNX graph has no nodes (not a model, or a truncated file)", file=file)
    # every node gets a name: errors and ONNX Runtime's optimized graph refer to nodes by name
    seen = set()
    for i, n in enumerate(g.node):
        if not n.name or n.name in seen:
            n.name = f"{n.op_type}_{i}"
        seen.add(n.name)
    users = {}
    for n in g.node:
        for t in n.input:
            users.setdefault(t, n)
    for init in g.initializer:
        if init.data_location == TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in init.external_data}.get("location", "")
            if not loc or not (p.parent / loc).is_file():
                user = users.get(init.name)
                raise HlsgenError(
                    f"external data '{loc}' of initializer '{init.name}' is missing (expected beside the model file)",
                    file=file,
                    layer=node_label(user) if user is not None else init.name,
                    layer_type=user.op_type if user is not None else "initializer",
                )
    try:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, str(p.parent))
    except Exception as e:
        raise HlsgenError(f"cannot read the external data ({_first_line(e)})", file=file) from None
    if upgrade:
        model = upgrade_opset(model, file)
    check_opsets(model, file, default_domain=upgrade)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise HlsgenError(f"the ONNX checker rejects the model: {_first_line(e)}", file=file) from None
    init_names = {i.name for i in g.initializer}
    for vi in g.input:
        if vi.name in init_names:
            continue
        dims = vi.type.tensor_type.shape.dim
        if not vi.type.tensor_type.HasField("shape"):
            raise HlsgenError(
                "input has no shape; export the model with a fixed input shape",
                file=file,
                layer=vi.name,
                layer_type="graph input",
            )
        dynamic = [k for k, d in enumerate(dims) if not d.HasField("dim_value") or d.dim_value <= 0]
        # one dynamic dimension may be the batch: axis 0, or axis 1 of a [time, batch, features] sequence
        bad = [k for k in dynamic if k > 1] + dynamic[1:]
        if bad:
            d = dims[bad[0]]
            raise HlsgenError(
                f"dimension {bad[0]} is dynamic ('{d.dim_param or '?'}'); hardware needs fixed shapes "
                "(export with a fixed input shape)",
                file=file,
                layer=vi.name,
                layer_type="graph input",
            )
    return model


#: the opset an old model is upgraded to
UPGRADE_TO = 13


def upgrade_opset(model, file):
    """A model whose default-domain opset is below :data:`OPSETS`, converted to opset 13."""
    v = next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), None)
    if v is None or v >= OPSETS.start:
        return model
    from onnx import version_converter

    names = [n.name for n in model.graph.node]
    try:
        up = version_converter.convert_version(model, UPGRADE_TO)
    except Exception as e:
        raise HlsgenError(
            f"opset {v} is older than the supported {OPSETS.start}-{OPSETS.stop - 1} and onnx's version "
            f"converter cannot upgrade it ({_first_line(e)})",
            file=file,
        ) from None
    if len(up.graph.node) == len(names):  # keep the node names errors refer to
        for n, name in zip(up.graph.node, names, strict=True):
            n.name = name
    return up


def check_opsets(model, file, default_domain: bool = True):
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and default_domain:
            if op.version not in OPSETS:
                raise HlsgenError(
                    f"opset {op.version} is not supported (default domain opsets {OPSETS.start}-{OPSETS.stop - 1})",
                    file=file,
                )
    known = {"", "ai.onnx", *QONNX_DOMAINS}
    for n in model.graph.node:
        if n.domain not in known:
            raise HlsgenError(
                f"operator domain '{n.domain}' is not supported (the ONNX default domain and QONNX's)",
                file=file,
                layer=node_label(n),
                layer_type=n.op_type,
            )


def uses_qonnx(model) -> bool:
    return any(n.domain in QONNX_DOMAINS for n in model.graph.node)


def ort_kernels(model, file) -> dict:
    """{output tensor name: op type} of ONNX Runtime's optimized graph (CPU, default level),
    and {NODE_KEY + node name: op type}.

    ONNX Runtime rewrites DequantizeLinear -> Conv/Gemm/MatMul -> QuantizeLinear into
    integer kernels (QLinearConv, QGemm, QLinearMatMul) when their types allow; those
    compute an exact integer accumulator and requantize it in float32.  Unfused nodes
    compute in float32.  Which one happened decides what hlsgen reproduces.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    # QDQ fusion happens at the extended level; the last level only adds float-layout changes
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    with tempfile.TemporaryDirectory() as d:
        so.optimized_model_filepath = os.path.join(d, "opt.onnx")
        try:
            ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise HlsgenError(f"ONNX Runtime cannot load the model: {_first_line(e)}", file=file) from None
        import onnx

        opt = onnx.load(so.optimized_model_filepath)
    kernels = {o: n.op_type for n in opt.graph.node for o in n.output}
    # ONNX Runtime keeps node names where it renames tensors (int8 Q/DQ pairs become uint8 and
    # their tensors get new names): a fused kernel is found by the name of the node it replaced
    kernels.update({NODE_KEY + n.name: n.op_type for n in opt.graph.node if n.name})
    return kernels


#: prefix of node-name keys in :func:`ort_kernels`'s table (tensor names never start with it)
NODE_KEY = "\0node:"


def _first_line(e) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:300]

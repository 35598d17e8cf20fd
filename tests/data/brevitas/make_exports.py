"""Write the Brevitas exports the tests read (run once, by hand; the files are committed).

    python -m venv /tmp/brev && /tmp/brev/bin/pip install torch==2.13.0 "brevitas==0.13.*" \
        "onnx==1.18.*" onnxoptimizer onnxscript onnxruntime
    /tmp/brev/bin/python tests/data/brevitas/make_exports.py

Brevitas's defaults throughout: float scales (per tensor; per output channel where asked),
4-bit weights and activations, an 8-bit input quantizer, a last layer without an output
quantizer.  Each model is exported as QONNX and as QCDQ (TorchScript and dynamo exporters) with
the batch fixed at 1, and the
PyTorch outputs for 256 fixed inputs are saved beside them (``*_torch.npz``), so the tests can
report the disagreement with PyTorch without installing it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from brevitas import nn as qnn
from brevitas.export import export_onnx_qcdq, export_qonnx

HERE = Path(__file__).parent


def mlp():
    return torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(64, 32, bias=True, weight_bit_width=4, weight_scaling_per_output_channel=True),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(32, 10, bias=True, weight_bit_width=4),
    )


def cnn():
    return torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantConv2d(1, 8, 3, padding=1, bias=True, weight_bit_width=4, weight_scaling_per_output_channel=True),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        qnn.QuantConv2d(8, 16, 3, padding=1, bias=True, weight_bit_width=4, weight_scaling_per_output_channel=True),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(16 * 4 * 4, 10, bias=True, weight_bit_width=4),
    )


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for name, make, shape in (("mlp", mlp, (64,)), ("cnn", cnn, (1, 8, 8))):
        model = make()
        model.train()
        with torch.no_grad():  # calibrate the activation scales on pixel-like data
            for _ in range(40):
                model(torch.rand((32, *shape)))
        model.eval()
        x = rng.uniform(0, 1, (256, *shape)).astype(np.float32)
        with torch.no_grad():
            y = model(torch.from_numpy(x))
        y = y.value if hasattr(y, "value") else y
        np.savez(HERE / f"{name}_torch.npz", x=x, y=y.numpy())
        example = torch.rand((1, *shape))
        export_qonnx(model, example, export_path=str(HERE / f"{name}_qonnx.onnx"))
        export_onnx_qcdq(model, example, export_path=str(HERE / f"{name}_qcdq.onnx"), dynamo=False)
        # torch's dynamo exporter: weight Clips on int8 constants, initializers listed as inputs
        export_onnx_qcdq(model, example, export_path=str(HERE / f"{name}_qcdq_dynamo.onnx"), dynamo=True)
        (HERE / f"{name}_qcdq_dynamo.onnx.data").unlink(missing_ok=True)  # written, never referenced


if __name__ == "__main__":
    main()

"""ONNX frontend: QDQ, QLinear*/…Integer and QONNX models -> IR, exact with ONNX Runtime."""

from .convert import convert_onnx
from .io import output_to_onnx, quantize_input

__all__ = ["convert_onnx", "quantize_input", "output_to_onnx"]

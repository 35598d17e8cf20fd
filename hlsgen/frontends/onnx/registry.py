"""The ONNX converter's operator tables: which operators it handles (``handles``) and folds
on constants (``folds``), filled by the modules of :mod:`.ops`."""

from __future__ import annotations

HANDLERS: dict = {}
CONST_FOLD: dict = {}

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


QONNX_OPS = ("Quant", "BipolarQuant", "Trunc")
#: element-wise operators that map an integer tensor to integers on the same grid
INT_TO_INT = ("Clip", "Relu")


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

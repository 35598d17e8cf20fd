"""Bit-exact integer execution of the IR (the golden model every backend is checked against)."""

from .execute import KERNELS, predict, predict_int, trace

__all__ = ["predict", "predict_int", "trace", "KERNELS"]

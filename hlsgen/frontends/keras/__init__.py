"""Keras / QKeras frontend (needs the ``keras`` extra: TensorFlow 2.15, QKeras)."""

from .convert import HANDLERS, convert_keras
from .loader import quiet_tensorflow

quiet_tensorflow()  # also makes QKeras 0.9 layers run on TF 2.15 (see loader.qkeras_compat)

__all__ = ["convert_keras", "HANDLERS"]

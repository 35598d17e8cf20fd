"""Keras / QKeras frontend (needs the ``keras`` extra: TensorFlow 2.15, QKeras)."""

from .convert import HANDLERS, convert_keras

__all__ = ["convert_keras", "HANDLERS"]

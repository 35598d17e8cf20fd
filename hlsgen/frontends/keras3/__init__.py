"""Keras 3 / HGQ2 frontend: the model is read by Keras 3 in a second environment
(``make venv-keras3``) through a worker process; the IR is built here."""

from .client import is_keras3
from .convert import convert_keras3

__all__ = ["convert_keras3", "is_keras3"]

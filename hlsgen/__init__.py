"""hlsgen: compressed neural networks (QKeras, ONNX) to bit-exact FPGA hardware.

    >>> import hlsgen
    >>> proj = hlsgen.convert("model.h5", "out/model")      # doctest: +SKIP
    >>> y = proj.predict(x)                                   # doctest: +SKIP

The core (fixed-point library, IR, reference) imports without TensorFlow; the
Keras frontend loads it only when a Keras model is converted.
"""

from ._version import __version__
from .config import Config
from .errors import HlsgenError
from .fixed import FixedType
from .ir import Graph
from .project import Project, convert, load

__all__ = ["convert", "load", "Project", "Config", "FixedType", "Graph", "HlsgenError", "__version__"]

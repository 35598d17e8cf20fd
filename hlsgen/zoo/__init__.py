"""The model zoo: small compressed models trained on scikit-learn's digits (files ship with
hlsgen), and CIFAR-size CNNs of FINN's CNV topology with random weights (``GENERATED``: built
on request by ``hlsgen zoo NAME -o FILE.h5``; 6 MB each, so not shipped)."""

from __future__ import annotations

import json
from pathlib import Path

MODELS = Path(__file__).parent / "models"
NAMES = (
    "mlp_tiny",
    "cnn_small",
    "cnn_binary",
    "cnn_ternary",
    "cnn_po2",
    "cnn_dw",
    "lstm_sparse",
    "lstm_lba",
    "gru_sparse",
    "lstm_stacked",
)
GENERATED = ("cnv_w2a2", "cnv_w1a1")
#: float counterparts of trained zoo models (no quantizers, dense): inputs of ``hlsgen compress``
FLOAT = ("mlp_tiny_float", "cnn_small_float", "lstm_sparse_float")


def path(name: str) -> Path:
    """The saved model file of a zoo model."""
    return MODELS / f"{name}.h5"


def info(name: str) -> dict:
    if name in GENERATED:
        from .cnv import info as cnv_info

        return cnv_info(name)
    return json.loads((MODELS / f"{name}.json").read_text())


def write(name: str, out) -> Path:
    """Write zoo model ``name`` to ``out`` (.h5): a copy of a shipped file, or a generated model."""
    import shutil
    import tempfile

    out = Path(out)
    if out.suffix.lower() != ".h5":
        raise ValueError(f"{out}: the zoo writes Keras .h5 files; give a name ending in .h5")
    if name not in NAMES + FLOAT + GENERATED:
        raise ValueError(f"{name!r} is not a zoo model; one of {', '.join(NAMES + FLOAT + GENERATED)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        part = Path(tmp) / "model.h5"  # written whole, then renamed: never half a file at out
        if name in NAMES + FLOAT:
            shutil.copyfile(path(name), part)
        else:
            import warnings

            from ..frontends.keras.loader import quiet_tensorflow
            from .cnv import build

            quiet_tensorflow()
            with warnings.catch_warnings():  # QKeras quantizers saved as constraints: harmless
                warnings.simplefilter("ignore", UserWarning)
                build(name).save(part, include_optimizer=False)
        part.replace(out)
    return out


def available() -> list[str]:
    return [n for n in NAMES if path(n).is_file()]

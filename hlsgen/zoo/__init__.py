"""The model zoo: small compressed models trained on scikit-learn's digits (files ship with hlsgen)."""

from __future__ import annotations

import json
from pathlib import Path

MODELS = Path(__file__).parent / "models"
NAMES = ("mlp_tiny", "cnn_small", "cnn_binary", "cnn_ternary", "cnn_po2", "cnn_dw", "lstm_sparse", "lstm_lba")


def path(name: str) -> Path:
    """The saved model file of a zoo model."""
    return MODELS / f"{name}.h5"


def info(name: str) -> dict:
    return json.loads((MODELS / f"{name}.json").read_text())


def available() -> list[str]:
    return [n for n in NAMES if path(n).is_file()]

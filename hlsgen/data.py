"""The data at hand: scikit-learn's bundled digits (no download), the zoo's training data and
the default held-out inputs of ``hlsgen verify`` and ``hlsgen prune``."""

from __future__ import annotations

import numpy as np


def digits():
    """Digits split 75/25, stratified; pixels 0..16 scaled to [0, 1] (exact on a 1/16 grid).

    Returns ``x_train, x_test, y_train, y_test`` (images [N, 8, 8], float32).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    return train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)

"""Pruning for the sparse LSTM engine: load-balance-aware (ESE) and plain magnitude.

Both work on the stacked gate matrix in Keras layout, ``[inputs + units, 4 * units]``
(kernel rows on top of recurrent rows); its columns are the engine's gate rows, and gate
row r belongs to processing element r mod P.  Load-balance-aware pruning keeps the same
number of largest-magnitude weights in every PE's slice, so that no PE waits for another:
the MAC phase of a step then takes nnz / P cycles instead of max over PEs.
"""

from __future__ import annotations

import numpy as np


def _keep_top(a: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k largest |a| (ties broken by position, deterministic)."""
    flat = np.abs(a).ravel()
    k = int(min(max(k, 0), flat.size))
    mask = np.zeros(flat.size, dtype=bool)
    if k:
        order = np.argsort(-flat, kind="stable")
        mask[order[:k]] = True
    return mask.reshape(a.shape)


def magnitude_mask(stacked: np.ndarray, density: float) -> np.ndarray:
    """Global magnitude pruning: keep the ``density`` fraction of largest weights."""
    _check_density(density)
    return _keep_top(stacked, int(round(density * stacked.size)))


def lba_mask(stacked: np.ndarray, pe: int, density: float) -> np.ndarray:
    """Load-balance-aware pruning: every PE keeps the same number of weights.

    Each PE keeps ``round(density * size / pe)`` weights, its largest, but never more than
    its slice holds (when P does not divide the rows, the short slices keep all they can).
    """
    _check_density(density)
    if pe < 1:
        raise ValueError(f"pe must be >= 1, got {pe}")
    rows = stacked.shape[1]
    if pe > rows:
        raise ValueError(f"pe={pe} is more than the {rows} gate rows")
    k = int(round(density * stacked.size / pe))
    mask = np.zeros(stacked.shape, dtype=bool)
    for p in range(pe):
        mask[:, p::pe] = _keep_top(stacked[:, p::pe], k)
    return mask


def imbalance(stacked: np.ndarray, pe: int) -> dict:
    """Non-zeros per PE and the resulting slowdown against a perfect balance (max / mean)."""
    nnz = [int(np.count_nonzero(stacked[:, p::pe])) for p in range(pe)]
    mean = sum(nnz) / pe
    return {
        "pe": pe,
        "nnz_per_pe": nnz,
        "min": min(nnz),
        "max": max(nnz),
        "mean": round(mean, 2),
        "imbalance": round(max(nnz) / mean, 4) if mean else 1.0,
    }


def _check_density(d):
    if not 0.0 < d <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {d}")

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


def pe_map(cell: str, features: int, units: int, pe: int, reset_after: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Where the sparse recurrent engine puts each weight of the stacked Keras matrix
    [kernel; recurrent] (``[F + U, G * U]``, G = 4 for an LSTM, 3 for a GRU): the PE that holds
    it and the MAC phase it is multiplied in (per step).

    LSTM: column c is engine row c.  GRU (reset_after=True): the rows are [z; r; h_x; h_h], so a
    candidate column's recurrent weights sit U rows further down than its kernel weights.  GRU
    (reset_after=False): two passes, z and r (columns < 2U, engine rows c) and then the
    candidate (engine rows c - 2U).  Row r belongs to PE r mod P."""
    cols = np.arange((4 if cell == "lstm" else 3) * units)
    row_k, row_r, phase = cols.copy(), cols.copy(), np.zeros_like(cols)
    if cell == "gru" and reset_after:
        row_r = np.where(cols < 2 * units, cols, cols + units)
    elif cell == "gru":
        phase = (cols >= 2 * units).astype(np.int64)
        row_k = row_r = np.where(cols < 2 * units, cols, cols - 2 * units)
    pe_of = np.vstack(
        [np.broadcast_to(row_k % pe, (features, cols.size)), np.broadcast_to(row_r % pe, (units, cols.size))]
    )
    return pe_of, np.broadcast_to(phase, pe_of.shape)


def lba_mask(
    stacked: np.ndarray, pe: int, density: float, pe_of: np.ndarray | None = None, phase: np.ndarray | None = None
) -> np.ndarray:
    """Load-balance-aware pruning: every PE keeps the same number of weights.

    Each PE keeps ``round(density * size / pe)`` weights, its largest, but never more than
    its slice holds (when P does not divide the rows, the short slices keep all they can).
    ``pe_of`` gives each weight's PE (default: column mod P) and ``phase`` its MAC phase
    (:func:`pe_map`): with phases, every phase is balanced on its own, as each is a MAC phase
    that waits for its busiest PE.
    """
    _check_density(density)
    if pe < 1:
        raise ValueError(f"pe must be >= 1, got {pe}")
    rows = stacked.shape[1]
    if pe > rows:
        raise ValueError(f"pe={pe} is more than the {rows} gate rows")
    if pe_of is None:
        pe_of = np.broadcast_to(np.arange(rows) % pe, stacked.shape)
    if phase is None:
        phase = np.zeros(stacked.shape, dtype=np.int64)
    mask = np.zeros(stacked.shape, dtype=bool)
    for ph in np.unique(phase):
        in_phase = phase == ph
        k = int(round(density * int(in_phase.sum()) / pe))
        for p in range(pe):
            sel = in_phase & (pe_of == p)
            mask[sel] = _keep_top(stacked[sel], k)
    return mask


def imbalance(stacked: np.ndarray, pe: int, pe_of: np.ndarray | None = None, phase: np.ndarray | None = None) -> dict:
    """Non-zeros per PE and the resulting slowdown against a perfect balance (max / mean; with
    several MAC phases (:func:`pe_map`), the sum of their busiest PEs against nnz / P)."""
    if pe_of is None:
        pe_of = np.broadcast_to(np.arange(stacked.shape[1]) % pe, stacked.shape)
    if phase is None:
        phase = np.zeros(stacked.shape, dtype=np.int64)
    nz = stacked != 0
    nnz = [int(np.count_nonzero(nz & (pe_of == p))) for p in range(pe)]
    mean = sum(nnz) / pe
    busiest = sum(
        max(int(np.count_nonzero(nz & (pe_of == p) & (phase == ph))) for p in range(pe)) for ph in np.unique(phase)
    )
    return {
        "pe": pe,
        "nnz_per_pe": nnz,
        "min": min(nnz),
        "max": max(nnz),
        "mean": round(mean, 2),
        "imbalance": round(busiest / mean, 4) if mean else 1.0,
    }


def _check_density(d):
    if not 0.0 < d <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {d}")

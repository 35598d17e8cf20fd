"""Gradual magnitude pruning (Zhu & Gupta, 2017) with per-layer targets.

The density falls from 1 to the target along a cubic over the first part of fine-tuning,

    d_t = d_f + (1 - d_f) * (1 - (t - t0) / (n * dt))^3,     t0 <= t <= t0 + n * dt,

the mask recomputed every ``dt`` steps from the weights' magnitudes; pruned weights stay at
zero.  Recurrent layers are pruned per gate (Narang et al.): each gate's block of the kernel
and of the recurrent kernel keeps the target fraction of its own weights, so no gate is
starved; or, for the sparse LSTM engine, load-balance-aware over P processing elements (ESE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chain import GATES
from .prune import _keep_top, lba_mask


def cubic_density(step: int, target: float, begin: int, end: int) -> float:
    """Zhu & Gupta's schedule: 1 before ``begin``, ``target`` from ``end`` on."""
    if step <= begin:
        return 1.0
    if step >= end:
        return float(target)
    frac = (step - begin) / (end - begin)
    return float(target + (1.0 - target) * (1.0 - frac) ** 3)


@dataclass
class Target:
    """How one layer is pruned: its final density and the grouping of its weights."""

    density: float
    kind: str  # dense / conv / dwconv / lstm / gru
    pe: int | None = None  # load-balance-aware over this many PEs (LSTM only)


def layer_masks(mats: list[np.ndarray], t: Target, density: float) -> list[np.ndarray]:
    """Masks (float32 0/1) that keep ``density`` of each of the layer's matrices.

    Dense and conv matrices keep their largest weights; recurrent matrices keep the largest
    of every gate block (Narang's per-gate pruning), or, with ``t.pe``, the same number in
    every PE's slice of the stacked [kernel; recurrent] matrix.
    """
    if density >= 1.0:
        return [np.ones(m.shape, np.float32) for m in mats]
    if t.kind == "lstm" and t.pe:
        stacked = np.vstack(mats)
        m = lba_mask(stacked, t.pe, density)
        rows = mats[0].shape[0]
        return [m[:rows].astype(np.float32), m[rows:].astype(np.float32)]
    out = []
    for w in mats:
        if t.kind in GATES:
            g = GATES[t.kind]
            units = w.shape[1] // g
            mask = np.zeros(w.shape, bool)
            for k in range(g):
                block = w[:, k * units : (k + 1) * units]
                mask[:, k * units : (k + 1) * units] = _keep_top(block, int(round(density * block.size)))
            out.append(mask.astype(np.float32))
        else:
            out.append(_keep_top(w, int(round(density * w.size))).astype(np.float32))
    return out

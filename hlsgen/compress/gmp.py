"""Gradual magnitude pruning (Zhu & Gupta, 2017) with per-layer targets.

The density falls from 1 to the target along a cubic over the first part of fine-tuning,

    d_t = d_f + (1 - d_f) * (1 - (t - t0) / (n * dt))^3,     t0 <= t <= t0 + n * dt,

the mask recomputed every ``dt`` steps from the weights' magnitudes; pruned weights stay at
zero.  Recurrent layers are pruned per gate (Narang et al.): each gate's block of the kernel
and of the recurrent kernel keeps the target fraction of its own weights, so no gate is
starved; or, for the sparse LSTM engine, load-balance-aware over P processing elements (ESE).

Dense and convolution matrices may be pruned in blocks instead (``block=(R, C)``): the
matrix the CNN engine streams (rows in window order ky, kx, c; a column per output) is cut
into R x C blocks, and whole blocks are kept by their L2 norm.  A folding whose SIMD divides
R and whose PE divides C then finds every pruned block as whole PE x SIMD tiles, which the
engine skips: cycles fall with the density, as they do not with scattered zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chain import GATES
from .prune import _keep_top, lba_mask, pe_map


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
    pe: int | None = None  # load-balance-aware over this many PEs (LSTM, GRU)
    block: tuple | None = None  # (rows, columns) of the blocks kept or pruned whole (dense, conv)
    reset_after: bool = True  # a GRU's: False runs two passes, each balanced on its own


def target(
    density: float, kind: str, pe: int | None = None, block: tuple | None = None, reset_after: bool = True
) -> Target:
    """A layer's Target: ``pe`` applies to LSTMs and GRUs, ``block`` to Dense and convolution
    layers."""
    return Target(
        density,
        kind,
        pe if kind in ("lstm", "gru") else None,
        block if kind in ("dense", "conv") else None,
        bool(reset_after),
    )


def divisor_at_most(n: int, k: int) -> int:
    """The largest divisor of ``n`` that is at most ``k``."""
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


def block_mask(w: np.ndarray, block: tuple, density: float) -> np.ndarray:
    """Keep the ``density`` fraction of ``w``'s R x C blocks (of its [inputs, outputs] matrix)
    with the largest L2 norms; block sides shrink to divisors of the matrix's sides."""
    m = w.reshape(-1, w.shape[-1])
    n, k = m.shape
    r, c = divisor_at_most(n, block[0]), divisor_at_most(k, block[1])
    norms = np.sqrt((m.reshape(n // r, r, k // c, c).astype(np.float64) ** 2).sum(axis=(1, 3)))
    keep = _keep_top(norms, int(round(density * norms.size)))
    return np.repeat(np.repeat(keep, r, axis=0), c, axis=1).reshape(w.shape)


def layer_masks(mats: list[np.ndarray], t: Target, density: float) -> list[np.ndarray]:
    """Masks (float32 0/1) that keep ``density`` of each of the layer's matrices.

    Dense and conv matrices keep their largest weights; recurrent matrices keep the largest
    of every gate block (Narang's per-gate pruning), or, with ``t.pe``, the same number in
    every PE's slice of the stacked [kernel; recurrent] matrix.
    """
    if density >= 1.0:
        return [np.ones(m.shape, np.float32) for m in mats]
    if t.kind in ("lstm", "gru") and t.pe:  # as the PE array holds the rows (pe_map)
        stacked = np.vstack(mats)
        where = pe_map(t.kind, mats[0].shape[0], mats[1].shape[0], t.pe, t.reset_after)
        m = lba_mask(stacked, t.pe, density, *where)
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
        elif t.block and t.kind in ("dense", "conv"):
            out.append(block_mask(w, t.block, density).astype(np.float32))
        else:
            out.append(_keep_top(w, int(round(density * w.size))).astype(np.float32))
    return out

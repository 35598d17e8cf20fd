"""Weight sharing (Deep Compression, Han et al. 2016): one k-means codebook per layer.

The non-zero weights of a layer's matrices (kernel and recurrent kernel together, so the
hardware holds one codebook per layer) are clustered into ``2**bits`` centroids, initialised
linearly between the smallest and largest weight (the initialisation Deep Compression found
best: it keeps the few large weights their own centroids).  Pruned weights stay zero and
are not clustered.  Fine-tuning then trains the centroids: each centroid's gradient is the
sum of its weights' gradients (done in ``finetune``).  The weights are stored as b-bit
indices; the engines look them up in the codebook before the multiplier.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass
class Codebook:
    """The shared weights of one layer: ``centroids[index]`` for every non-zero weight."""

    centroids: np.ndarray  # [k] float32
    index: list  # per matrix: int32 array of the matrix's shape, -1 where the weight is zero

    def weights(self, centroids=None) -> list[np.ndarray]:
        c = np.append(self.centroids if centroids is None else centroids, 0.0).astype(np.float32)
        return [c[np.where(i < 0, len(c) - 1, i)] for i in self.index]


def kmeans_1d(values: np.ndarray, k: int, iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm on scalars with linear initialisation; returns (centroids, labels).

    Deterministic; empty clusters are dropped, so fewer than k centroids may come back.
    """
    v = np.asarray(values, np.float64).ravel()
    if v.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int32)
    k = max(1, min(int(k), np.unique(v).size))
    c = np.linspace(v.min(), v.max(), k)
    labels = np.zeros(v.size, np.int64)
    for _ in range(iters):
        # nearest centroid of sorted centroids: the midpoints split the line
        order = np.argsort(c, kind="stable")
        c = c[order]
        mids = (c[1:] + c[:-1]) / 2
        new = np.searchsorted(mids, v)
        sums = np.bincount(new, weights=v, minlength=c.size)
        counts = np.bincount(new, minlength=c.size)
        keep = counts > 0
        c2 = np.where(keep, sums / np.maximum(counts, 1), c)
        if np.array_equal(new, labels) and np.allclose(c2, c):
            break
        labels, c = new, c2
        if not keep.all():  # drop empty clusters and relabel
            c = c[keep]
            labels = np.searchsorted((c[1:] + c[:-1]) / 2, v)
    return c.astype(np.float32), labels.astype(np.int32)


def share(mats: list[np.ndarray], bits: int) -> Codebook:
    """Cluster the non-zero weights of one layer's matrices so that a ``bits``-bit index says
    every weight: ``2**bits`` values, or ``2**bits - 1`` and zero when the layer is pruned
    (the engines keep zero as codebook entry 0)."""
    nz = [m != 0 for m in mats]
    values = np.concatenate([m[z] for m, z in zip(mats, nz, strict=True)]) if mats else np.zeros(0)
    pruned = any(not z.all() for z in nz)
    centroids, labels = kmeans_1d(values, 2**bits - (1 if pruned else 0))
    index, at = [], 0
    for m, z in zip(mats, nz, strict=True):
        i = np.full(m.shape, -1, np.int32)
        n = int(z.sum())
        i[z] = labels[at : at + n]
        at += n
        index.append(i)
    return Codebook(centroids, index)


def huffman_bits(symbols) -> int:
    """The size in bits of ``symbols`` Huffman-coded (the code table not counted, as Deep
    Compression reports it); 1 bit per symbol when there is only one kind."""
    counts = Counter(np.asarray(symbols).ravel().tolist())
    if not counts:
        return 0
    if len(counts) == 1:
        return int(sum(counts.values()))
    heap = [(n, i, 0) for i, n in enumerate(counts.values())]  # (weight, tiebreak, depth sum)
    heapq.heapify(heap)
    total, tie = 0, len(heap)
    while len(heap) > 1:
        a, _, _ = heapq.heappop(heap)
        b, _, _ = heapq.heappop(heap)
        total += a + b  # every merge adds one bit to each symbol beneath it
        heapq.heappush(heap, (a + b, tie, 0))
        tie += 1
    return int(total)

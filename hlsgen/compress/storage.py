"""What a compressed model stores, counted as Deep Compression counts it.

Per layer, for the weights the hardware holds (the quantizer's output, not the float
shadow weights):

* **values**: ``bits`` per weight, or ``ceil(log2 k)``-bit indices into a codebook of k
  shared values (each ``bits`` wide) when the layer's weights are shared;
* **positions** of a sparse matrix: compressed columns with ``p``-bit relative row indices
  (zeros since the previous entry; a gap longer than ``2^p - 1`` costs filler entries, as
  in EIE and ESE) and one pointer per column; ``p`` is chosen per matrix, and a dense layout
  (no positions) is used when it is smaller;
* **biases** at their bits.

The ratio is against float32 for every parameter of the original model.  The Huffman
figure codes the value indices and relative indices with Huffman codes (Deep Compression's
last stage; the hardware does not decode Huffman).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .share import huffman_bits


def _as_columns(w: np.ndarray) -> np.ndarray:
    """[rows, columns]: a column per output (the last axis); rows are every input position."""
    w = np.asarray(w)
    return w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w.reshape(-1, 1)


def column_gaps(w: np.ndarray) -> np.ndarray:
    """The zeros before each non-zero in its column, column by column (compressed-column order)."""
    c, r = np.nonzero(_as_columns(w).T)  # by column, then row
    if r.size == 0:
        return np.zeros(0, np.int64)
    first = np.concatenate([[True], c[1:] != c[:-1]])
    prev = np.where(first, -1, np.concatenate([[-1], r[:-1]]))
    return (r - prev - 1).astype(np.int64)


def relative_entries(w: np.ndarray, p: int, gaps: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """Entries (non-zeros plus fillers) of the compressed-column form with p-bit relative
    indices, and the relative indices themselves (for Huffman; in no particular order)."""
    g = column_gaps(w) if gaps is None else gaps
    span = 2**p
    fill = g // span
    rel = np.concatenate([np.full(int(fill.sum()), span - 1, np.int64), g - fill * span])
    return int(fill.sum() + g.size), rel


@dataclass
class MatrixStore:
    params: int
    nonzeros: int
    bits: int  # of one stored value (a weight, or a codebook entry)
    codebook: int | None  # shared values (None: weights stored as themselves)
    layout: str  # dense / sparse
    index_bits: int  # relative row index bits (sparse layout)
    stored_bits: int
    huffman_bits: int


def store_matrix(w: np.ndarray, bits: int, shared: bool) -> MatrixStore:
    """The cheapest layout of one weight matrix (values as the hardware holds them)."""
    w = np.asarray(w)
    nz = w[w != 0]
    values = np.unique(nz)
    k = len(values) if shared else None
    code_bits = max(1, math.ceil(math.log2(max(k, 1)))) if shared else bits
    book = k * bits if shared else 0
    cols = _as_columns(w).shape[1]
    sym = np.searchsorted(values, nz) if shared else nz
    # dense: every position holds a value (a shared layer then needs a code for zero too)
    dense_code = max(1, math.ceil(math.log2(k + 1))) if shared else bits
    best = MatrixStore(w.size, int(nz.size), bits, k, "dense", 0, w.size * dense_code + book, 0)
    dense_sym = np.searchsorted(np.concatenate([[0], values]), w.ravel()) if shared else w.ravel()
    coded = shared or bits < 32  # float32 weights are not Huffman-coded: counted as they are

    def huff(symbols) -> int:
        return huffman_bits(symbols) if coded else int(np.size(symbols)) * bits

    best.huffman_bits = huff(dense_sym) + book
    gaps = column_gaps(w)
    for p in range(1, 9):
        entries, rel = relative_entries(w, p, gaps)
        ptr = (cols + 1) * max(1, math.ceil(math.log2(entries + 1)))
        total = entries * (code_bits + p) + ptr + book
        if total < best.stored_bits:
            fillers = entries - nz.size
            h = huff(np.concatenate([sym, np.zeros(fillers, sym.dtype)])) + huffman_bits(rel)
            best = MatrixStore(w.size, int(nz.size), bits, k, "sparse", p, total, h + ptr + book)
    return best


def as_dict(s: MatrixStore) -> dict:
    return asdict(s)

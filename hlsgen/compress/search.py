"""Per-layer densities for a compression target, by sensitivity analysis (Han et al. 2015).

Each layer is pruned alone to every density of a grid, without fine-tuning, and the held-out
accuracy is measured: its sensitivity curve.  A greedy walk then lowers, one step at a time,
the density of the layer whose next step costs the least accuracy per stored bit saved, until
the estimated storage meets the target ratio.  Every point of the walk is kept, with its
estimated accuracy (the sum of the layers' losses; pessimistic, as fine-tuning afterwards
recovers most of it): ``search`` in the report.  The pipeline measures the final accuracy
after fine-tuning and refuses a result below the floor.
"""

from __future__ import annotations

import numpy as np

from ..errors import HlsgenError
from . import chain as chain_mod
from .finetune import accuracy
from .gmp import Target, layer_masks
from .storage import store_matrix

GRID = (1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.09, 0.06, 0.045, 0.03, 0.02)


def stored_bits(mats: list, masks: list, value_bits: int) -> int:
    """Stored bits of a layer's matrices under ``masks`` (the cheaper of dense and sparse
    layouts, as the report counts them; values at ``value_bits``)."""
    return sum(store_matrix(w * m, value_bits, False).stored_bits for w, m in zip(mats, masks, strict=True))


def sensitivity(model, x, y, value_bits: int, pe=None) -> tuple[dict, dict]:
    """``{layer: {density: accuracy}}`` with each layer pruned alone (weights restored after),
    and ``{layer: {density: stored bits}}``."""
    curves, sizes = {}, {}
    for layer in chain_mod.compressible(model):
        kind = chain_mod.KINDS[layer.__class__.__name__]
        mats = chain_mod.matrices(layer)
        saved = [v.numpy() for v in mats]
        curve, size = {}, {}
        for d in GRID:
            masks = layer_masks(saved, Target(d, kind, pe if kind == "lstm" else None), d)
            size[d] = stored_bits(saved, masks, value_bits)
            if d >= 1.0:
                continue
            for v, m in zip(mats, masks, strict=True):
                v.assign(v.numpy() * m)
            curve[d] = accuracy(model, x, y)
            for v, w in zip(mats, saved, strict=True):
                v.assign(w)
        curves[layer.name], sizes[layer.name] = curve, size
    return curves, sizes


def choose_densities(model, x, y, target_ratio: float, value_bits: int, fixed: dict, pe=None):
    """Per-layer densities for ``target_ratio`` (float32 bits of every parameter over the
    estimated stored bits of the matrices at ``value_bits`` plus biases at 8 bits).

    Returns ``(densities, path)``; ``path`` lists every step's estimate (the Pareto table).
    ``fixed``: densities the user gave, kept.  Raises when no densities of the grid reach it.
    """
    base = accuracy(model, x, y)
    layers = chain_mod.compressible(model)
    sizes = {lay.name: sum(int(np.prod(v.shape)) for v in chain_mod.matrices(lay)) for lay in layers}
    float_bits = 32 * chain_mod.count_parameters(model)
    other = 8 * (chain_mod.count_parameters(model) - sum(sizes.values()))
    curves, size_at = sensitivity(model, x, y, value_bits, pe)
    dens = {n: fixed.get(n, 1.0) for n in sizes}
    for n, d in fixed.items():  # a density the user gave, off the grid
        if d not in size_at[n]:
            lay = next(lay for lay in layers if lay.name == n)
            w = [v.numpy() for v in chain_mod.matrices(lay)]
            kind = chain_mod.KINDS[lay.__class__.__name__]
            size_at[n][d] = stored_bits(
                w, layer_masks(w, Target(d, kind, pe if kind == "lstm" else None), d), value_bits
            )

    def bits():
        return other + sum(size_at[n][dens[n]] for n in sizes)

    def loss(n, d):
        return 0.0 if d >= 1.0 or d not in curves[n] else max(0.0, base - curves[n][d])  # off-grid: unknown

    def point(step):
        est = base - sum(loss(n, dens[n]) for n in sizes)
        return {
            "step": step,
            "densities": dict(dens),
            "ratio": round(float_bits / bits(), 2),
            "accuracy_estimate": round(est, 4),
        }

    path = [point("start")]
    while float_bits / bits() < target_ratio:
        best = None
        for n in sizes:
            if n in fixed:
                continue
            lower = [d for d in GRID if d < dens[n]]
            if not lower:
                continue
            d = lower[0]
            saved = size_at[n][dens[n]] - size_at[n][d]
            cost = loss(n, d) - loss(n, dens[n])
            key = (max(cost, 0.0) / max(saved, 1e-9), -saved)
            if best is None or key < best[0]:
                best = (key, n, d)
        if best is None:
            raise HlsgenError(
                f"--target-ratio {target_ratio:g}: even the lowest densities reach only "
                f"{float_bits / bits():.1f}x (at {value_bits}-bit values); lower the bits or the target"
            )
        _, n, d = best
        prev = dens[n]
        dens[n] = d
        path.append(point(f"{n} {prev:g}->{d:g}"))
    return dens, path

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

from dataclasses import dataclass

import numpy as np

from ..errors import HlsgenError
from . import chain as chain_mod
from .finetune import accuracy
from .gmp import layer_masks, target
from .share import share
from .storage import store_matrix

GRID = (1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.09, 0.06, 0.045, 0.03, 0.02)


def stored_bits(mats: list, masks: list, value_bits: int) -> int:
    """Stored bits of a layer's matrices under ``masks`` (the cheaper of dense and sparse
    layouts, as the report counts them; values at ``value_bits``)."""
    return sum(store_matrix(w * m, value_bits, False).stored_bits for w, m in zip(mats, masks, strict=True))


def sensitivity(model, x, y, value_bits: int, pe=None, block=None) -> tuple[dict, dict]:
    """``{layer: {density: accuracy}}`` with each layer pruned alone (weights restored after),
    and ``{layer: {density: stored bits}}``."""
    curves, sizes = {}, {}
    for layer in chain_mod.compressible(model):
        kind = chain_mod.KINDS[layer.__class__.__name__]
        mats = chain_mod.matrices(layer)
        saved = [v.numpy() for v in mats]
        curve, size = {}, {}
        for d in GRID:
            masks = layer_masks(saved, target(d, kind, pe, block, getattr(layer, "reset_after", True)), d)
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


def choose_densities(model, x, y, target_ratio: float, value_bits: int, fixed: dict, pe=None, block=None):
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
    curves, size_at = sensitivity(model, x, y, value_bits, pe, block)
    dens = {n: fixed.get(n, 1.0) for n in sizes}
    for n, d in fixed.items():  # a density the user gave, off the grid
        if d not in size_at[n]:
            lay = next(lay for lay in layers if lay.name == n)
            w = [v.numpy() for v in chain_mod.matrices(lay)]
            kind = chain_mod.KINDS[lay.__class__.__name__]
            size_at[n][d] = stored_bits(
                w, layer_masks(w, target(d, kind, pe, block, getattr(lay, "reset_after", True)), d), value_bits
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


# ------------------------------------------------------------------ under a hardware budget

#: the fewest weight bits the budget search goes down to (fixed point and po2)
BIT_FLOOR = 3


@dataclass
class Space:
    """What the budget search may change: densities (``prune`` among the steps), and bits:
    the weight bits (``quantize`` to fixed:W or po2:W) or, with ``cluster`` among the steps,
    the codebook's index bits (its size); and what it keeps (the user's own densities)."""

    densities: tuple  # grid, high to low ((1.0,) when not pruning)
    bits: tuple  # ladder, high to low ((None,) when no bits are searched)
    fixed: dict  # layer -> density the user gave
    codebook: bool = False  # ``bits`` are codebook index bits (weights at the scheme's bits)


def _fake_quant(mats, scheme, bits):
    """The matrices as the layer's weight quantizer gives them (one scale for the layer)."""
    from .quantize import apply_quantizer, layer_scheme, weight_quantizer

    if scheme is None:
        return mats
    maxabs = max(float(np.abs(m).max()) for m in mats)
    q = weight_quantizer(layer_scheme(scheme, bits), maxabs)
    return [apply_quantizer(q, m) for m in mats]


def budget_sensitivity(model, x, y, space: Space, scheme, pe=None, block=None) -> tuple[dict, dict]:
    """``{layer: {(density, bits): accuracy}}`` with each layer alone masked and its weights
    quantized (the others as they are), and ``{layer: {(density, bits): stored bits}}``."""
    curves, sizes = {}, {}
    for layer in chain_mod.compressible(model):
        kind = chain_mod.KINDS[layer.__class__.__name__]
        mats = chain_mod.matrices(layer)
        saved = [v.numpy() for v in mats]
        dens = [space.fixed[layer.name]] if layer.name in space.fixed else list(space.densities)
        curve, size = {}, {}
        for d in dens:
            masks = layer_masks(saved, target(d, kind, pe, block, getattr(layer, "reset_after", True)), d)
            masked = [w * m for w, m in zip(saved, masks, strict=True)]
            for b in space.bits:
                if space.codebook:  # b-bit indices into a k-means codebook of the weights
                    q = _fake_quant(share(masked, b).weights(), scheme, None)
                    size[(d, b)] = sum(store_matrix(w, scheme.weight_bits, True).stored_bits for w in q)
                else:
                    q = _fake_quant(masked, scheme, b)
                    vb = 32 if scheme is None else (scheme.weight_bits if b is None else b)
                    size[(d, b)] = sum(store_matrix(w, vb, False).stored_bits for w in q)
                for v, w in zip(mats, q, strict=True):
                    v.assign(w)
                curve[(d, b)] = accuracy(model, x, y)
        for v, w in zip(mats, saved, strict=True):
            v.assign(w)
        curves[layer.name], sizes[layer.name] = curve, size
    return curves, sizes


class BudgetWalk:
    """Per-layer densities and weight bits whose design meets ``budget``.

    ``hardware(densities, bits)`` compresses the current model that way (masks, quantizers,
    codebooks; no fine-tuning), plans it in the engine and returns its figures
    (:func:`hlsgen.compress.budget.figures`).  From the start (the densities and bits given),
    each move takes one layer one density or bit step lower: the move that costs the least
    estimated accuracy (each layer's loss measured alone, summed) per stored bit saved.  While
    cycles or multipliers are over, only density moves count (bits do not change them).  The
    walk plans every point and stops at the first design within the budget; ``path`` keeps
    them all, with their estimates and figures (the Pareto table).  The pipeline walks on
    after fine-tuning if the fine-tuned weights' masks come out over the budget.
    """

    def __init__(self, model, x, y, budget, space: Space, scheme, hardware, pe=None, log=None, file=None, block=None):
        self.budget, self.space, self.hardware, self.log, self.file = budget, space, hardware, log, file
        self.base = accuracy(model, x, y)
        self.curves, self.sizes = budget_sensitivity(model, x, y, space, scheme, pe, block)
        self.names = list(self.curves)
        self.state = {n: (space.fixed.get(n, space.densities[0]), space.bits[0]) for n in self.names}
        self.scheme = scheme
        self.path: list = []

    @property
    def densities(self) -> dict:
        return {n: self.state[n][0] for n in self.names}

    @property
    def bits(self) -> dict:
        return {n: self.state[n][1] for n in self.names if self.state[n][1] is not None}

    def _loss(self, n, key) -> float:
        return max(0.0, self.base - self.curves[n][key])

    def measure(self, step: str) -> dict:
        fig = self.hardware(self.densities, self.bits)
        if self.budget.lut is not None and not self.budget.over(fig):
            fig = self.hardware(self.densities, self.bits, lut=True)  # Yosys, only where the rest fit
        p = {
            "step": step,
            "densities": self.densities,
            "bits": self.bits,
            "accuracy_estimate": round(self.base - sum(self._loss(n, self.state[n]) for n in self.names), 4),
            **{k: fig.get(k) for k in ("cycles", "dsp", "bram", "lut")},
            "per": fig["per"],
            "over": self.budget.over(fig),
        }
        self.path.append(p)
        if self.log:
            self.log(p)
        return p

    def move(self) -> str | None:
        """Take the cheapest move for what is over; its description, or None when none is left."""
        over = self.path[-1]["over"]
        speed_over = any(o.split()[0] in ("cycles", "dsp") for o in over)  # bits cannot help these
        best = None
        for n in self.names:
            d, b = self.state[n]
            moves = []
            lower_d = [v for v in self.space.densities if v < d]
            if n not in self.space.fixed and lower_d:
                moves.append((lower_d[0], b))
            lower_b = [v for v in self.space.bits if v is not None and b is not None and v < b]
            if lower_b and not speed_over:
                moves.append((d, lower_b[0]))
            for mv in moves:
                saved = self.sizes[n][self.state[n]] - self.sizes[n][mv]
                if saved <= 0 and not speed_over:
                    continue
                cost = max(0.0, self._loss(n, mv) - self._loss(n, self.state[n]))
                key = (cost / max(saved, 1), -saved)
                if best is None or key < best[0]:
                    best = (key, n, mv)
        if best is None:
            return None
        _, n, mv = best
        prev = self.state[n]
        self.state[n] = mv
        if mv[0] != prev[0]:
            return f"{n} density {prev[0]:g}->{mv[0]:g}"
        return f"{n} {'codebook ' if self.space.codebook else ''}bits {prev[1]}->{mv[1]}"

    def run(self, first: str = "start") -> None:
        """Measure, then move until within the budget; raises when the moves run out."""
        self.measure(first)
        while self.path[-1]["over"]:
            what = self.move()
            if what is None:
                self.fail()
            self.measure(what)
        mark_pareto(self.path)

    def fail(self):
        last = self.path[-1]
        hint = ""
        if any(o.startswith("dsp") for o in last["over"]) and self.scheme is not None and self.scheme.kind == "fixed":
            hint = "; power-of-two, ternary or binary weights need no multipliers (--quantize po2:4, ternary)"
        raise HlsgenError(
            f"--budget {self.budget.text()}: no configuration of the search meets it; the last one planned has "
            f"{last['cycles']:g} cycles per {last['per']}, {last['dsp']} multipliers, {last['bram']} BRAM18"
            + (f", {last['lut']} LUT " if last.get("lut") is not None else " ")
            + f"({', '.join(last['over'])}){hint}",
            file=self.file,
        )


def mark_pareto(path: list) -> None:
    """``pareto``: no other point is as accurate (estimate) and as cheap in every figure, and
    better in one.  LUTs count where every point has them (Yosys ran on each)."""
    keys = ("cycles", "dsp", "bram") + (("lut",) if all(p.get("lut") is not None for p in path) else ())
    for p in path:
        p["pareto"] = not any(
            q is not p
            and q["accuracy_estimate"] >= p["accuracy_estimate"]
            and all(q[k] <= p[k] for k in keys)
            and (q["accuracy_estimate"] > p["accuracy_estimate"] or any(q[k] < p[k] for k in keys))
            for q in path
        )

"""`hlsgen compress`: the field's compression steps in one run, model in, model out.

The steps run in a fixed order, each followed by fine-tuning that keeps what the earlier
ones did (masks, codebooks, quantizers), with Hinton's distillation as the recovery loss when
``distill`` is among them:

    lowrank -> prune -> quantize -> cluster

``compress.json`` records, per layer and in total, what the compressed model stores (see
``storage``) against float32, and the held-out accuracy before and after every step; a PNG
plots accuracy against compression ratio along the steps.  The output is written whole or
not at all.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import HlsgenError
from . import chain as chain_mod
from .budget import Budget
from .finetune import Distill, Hold, accuracy, finetune, logits_of, teacher_attention
from .gmp import Target, cubic_density, layer_masks, target
from .lowrank import factor_chain
from .quantize import INQ_PORTIONS, Scheme, apply_quantizer, to_qkeras
from .share import share
from .storage import as_dict, store_matrix

STEPS = ("lowrank", "prune", "quantize", "cluster", "distill")


@dataclass
class Options:
    steps: tuple = ("prune", "quantize", "cluster")
    density: float = 0.1
    layer_density: dict = field(default_factory=dict)
    pe: int | None = None
    block: tuple | None = None  # prune Dense/conv matrices in (rows, columns) blocks (CNN engine tiles)
    cluster_bits: int = 4
    energy: float = 0.9
    rank: str = "energy"  # how lowrank chooses ranks: retained energy or vbmf
    scheme: Scheme = field(default_factory=Scheme)
    epochs: int = 20
    teacher: str | None = None
    temperature: float = 4.0
    attention: float = 0.0  # beta of attention transfer for CNNs (0: off)
    alpha: float = 0.7
    seed: int = 0
    target_ratio: float | None = None  # per-layer densities by sensitivity analysis
    accuracy_floor: float | None = None  # refuse a result below this held-out accuracy
    budget: Budget = field(default_factory=Budget)  # cycles / dsp / bram of the design (search)

    def check(self, names: list[str]) -> None:
        bad = [s for s in self.steps if s not in STEPS]
        if bad or not self.steps:
            raise HlsgenError(f"--steps {','.join(self.steps)}: steps are {', '.join(STEPS)}")
        for name, d in [("", self.density), *self.layer_density.items()]:
            if not 0.0 < d <= 1.0:
                raise HlsgenError(f"--density {name + '=' if name else ''}{d}: must be in (0, 1]")
        unknown = sorted(set(self.layer_density) - set(names))
        if unknown:
            raise HlsgenError(
                f"--density {unknown[0]}=...: no layer with weights of that name (layers: {', '.join(names)})"
            )
        if self.block is not None and (len(self.block) != 2 or min(self.block) < 1):
            raise HlsgenError(
                f"--block {self.block}: give RxC, two whole numbers >= 1 (rows = inputs, columns = outputs)"
            )
        if self.block is not None and "prune" not in self.steps:
            raise HlsgenError("--block says how prune cuts: add prune to --steps")
        if not 1 <= self.cluster_bits <= 8:
            raise HlsgenError(f"--cluster-bits {self.cluster_bits}: must be 1..8")
        if self.rank not in ("energy", "vbmf"):
            raise HlsgenError(f"--rank {self.rank}: energy (keep --energy of the squared singular values) or vbmf")
        if not 0.0 < self.energy <= 1.0:
            raise HlsgenError(f"--energy {self.energy}: must be in (0, 1]")
        if not self.temperature > 0:
            raise HlsgenError(f"--temperature {self.temperature}: must be > 0")
        if not self.attention >= 0 or self.attention != self.attention:
            raise HlsgenError(f"--attention {self.attention}: beta must be >= 0 (Zagoruyko & Komodakis use 1000)")
        if self.attention and "distill" not in self.steps:
            raise HlsgenError("--attention is a distillation loss: add distill to --steps")
        if not 0.0 <= self.alpha <= 1.0:
            raise HlsgenError(f"--alpha {self.alpha}: must be in [0, 1]")
        if self.target_ratio is not None and not self.target_ratio > 1:
            raise HlsgenError(f"--target-ratio {self.target_ratio}: must be > 1")
        if self.budget and self.target_ratio is not None:
            raise HlsgenError("give --budget or --target-ratio, not both (each chooses the densities)")
        if self.budget and "quantize" not in self.steps and "prune" not in self.steps:
            raise HlsgenError("--budget chooses densities and bits: add prune or quantize to --steps")
        if self.target_ratio is not None and "prune" not in self.steps:
            raise HlsgenError("--target-ratio chooses the pruning densities: add prune to --steps")
        if self.accuracy_floor is not None and not 0 <= self.accuracy_floor <= 1:
            raise HlsgenError(f"--accuracy-floor {self.accuracy_floor}: a fraction in [0, 1]")
        if self.epochs < 0:
            raise HlsgenError(f"--epochs {self.epochs}: must be >= 0")


# ------------------------------------------------------------------ data


def load_data(path, model, file) -> tuple:
    """``x_train, y_train, x_test, y_test`` shaped for the model, checked."""
    from .keras_prune import training_data

    xtr, ytr, xte, yte = training_data(path, file, model.input_shape)
    want = tuple(model.input_shape[1:])
    src = str(path) if path else "digits"
    for what, x in (("x_train", xtr), ("x_test", xte)):
        if tuple(x.shape[1:]) != want:
            raise HlsgenError(f"{what} has samples of shape {tuple(x.shape[1:])}; the model takes {want}", file=src)
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise HlsgenError(f"{what} is not all finite numbers", file=src)
    classes = int(model.output_shape[-1])
    for what, y, x in (("y_train", ytr, xtr), ("y_test", yte, xte)):
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise HlsgenError(f"{what} must be integer class labels, one per sample", file=src)
        if len(y) == 0 or y.min() < 0 or y.max() >= classes:
            raise HlsgenError(f"{what} labels must be in 0..{classes - 1} (the model's outputs)", file=src)
    return xtr.astype(np.float32), np.asarray(ytr), xte.astype(np.float32), np.asarray(yte)


# ------------------------------------------------------------------ what a layer stores


def _quantizer(layer, attr):
    holder = layer.cell if hasattr(layer, "cell") else layer
    return getattr(holder, attr, None)


def stored_weights(layer) -> list:
    """``(what, values the hardware holds, bits)`` for a layer's matrices and bias."""
    kind = chain_mod.KINDS.get(layer.__class__.__name__)
    if kind is None:
        return []
    names = {"dwconv": ["depthwise"], "lstm": ["kernel", "recurrent"], "gru": ["kernel", "recurrent"]}.get(
        kind, ["kernel"]
    )
    qattr = {"kernel": "kernel_quantizer_internal", "depthwise": "depthwise_quantizer_internal"}
    qattr["recurrent"] = "recurrent_quantizer_internal"
    out = []
    mats = chain_mod.matrices(layer)
    for what, v in zip(names, mats, strict=True):
        q = _quantizer(layer, qattr[what])
        w = v.numpy()
        out.append((what, np.asarray(q(w)) if q is not None else w, int(getattr(q, "bits", 32)) if q else 32))
    bias = layer.cell.bias if hasattr(layer, "cell") else getattr(layer, "bias", None)
    if bias is not None:
        q = _quantizer(layer, "bias_quantizer_internal")
        b = bias.numpy()
        out.append(("bias", np.asarray(q(b)) if q is not None else b, int(getattr(q, "bits", 32)) if q else 32))
    return out


def model_storage(model, shared: set, ranks: dict) -> dict:
    layers, total, huff, params = [], 0, 0, 0
    for layer in model.layers:
        for what, w, bits in stored_weights(layer):
            scale_bits = 0
            q = _quantizer(layer, {"depthwise": "depthwise_quantizer_internal"}.get(what, f"{what}_quantizer_internal"))
            if what != "bias" and type(q).__name__ in ("binary", "ternary", "stochastic_binary", "stochastic_ternary"):
                # +-1 (and 0) per weight; a power-of-two scale per output channel: a 5-bit shift
                po2 = isinstance(getattr(q, "alpha", None), str)
                w = np.sign(w)
                scale_bits = 5 * int(w.shape[-1]) if po2 else 0
            if what == "bias":
                s = {"params": int(w.size), "bits": bits, "stored_bits": int(w.size) * bits}
                s["huffman_bits"] = s["stored_bits"]
            else:
                s = as_dict(store_matrix(w, bits, layer.name in shared))
                if scale_bits:
                    s["scale_bits"] = scale_bits
                    s["stored_bits"] += scale_bits
                    s["huffman_bits"] += scale_bits
            s["density"] = round(s.get("nonzeros", s["params"]) / max(1, s["params"]), 4)
            s = {"layer": layer.name, "class": layer.__class__.__name__, "weights": what, **s}
            if layer.name in ranks:
                s["rank"] = ranks[layer.name]
            layers.append(s)
            total += s["stored_bits"]
            huff += s["huffman_bits"]
            params += s["params"]
    # parameters the engines do not compress (batch norm, ...) stay float32
    other = chain_mod.count_parameters(model) - params
    total += 32 * other
    huff += 32 * other
    return {"layers": layers, "stored_bits": total, "huffman_bits": huff, "parameters": params + other}


# ------------------------------------------------------------------ the steps


def default_density(density: float, size: int, sizes: dict) -> float:
    """A layer's density when none is given for it: the largest layer keeps ``density``,
    a smaller one ``density * sqrt(largest / size)`` (at most all), so that the layers
    with few weights (a first convolution, the classifier) are not starved."""
    largest = max(sizes.values())
    return float(min(1.0, density * np.sqrt(largest / max(1, size))))


class Run:
    """One compression run: the current model, what is held, the history."""

    def __init__(self, model, data, opts: Options, file: str, teacher_logits=None, progress=None, planner=None):
        self.model = model
        self.planner = planner  # (model, config, options_for) -> design figures
        self.progress = progress  # a line of the budget search at a time
        self.xtr, self.ytr, self.xte, self.yte = data
        self.opts = opts
        self.file = file
        self.masks: dict = {}  # layer name -> [mask per matrix]
        self.books: dict = {}  # layer name -> Codebook
        self.ranks: dict = {}
        self.float_bits = 32 * chain_mod.count_parameters(model)
        self.distill = Distill(teacher_logits, opts.temperature, opts.alpha) if teacher_logits is not None else None
        self.history: list = []
        self.search: list = []
        self.layer_bits: dict = {}  # layer -> weight bits chosen by the budget search
        self.book_bits: dict = {}  # layer -> codebook index bits chosen by the budget search
        self.chosen: dict | None = None  # layer -> density chosen by a search
        self.walk = None  # the budget search (search.BudgetWalk)
        self.walk_act: dict | None = None  # act_max() of the model the budget search walks from
        self.notes: list = []
        self.record("input")

    # -- bookkeeping
    def storage(self) -> dict:
        return model_storage(self.model, set(self.books), self.ranks)

    def record(self, step: str) -> None:
        st = self.storage()
        acc = accuracy(self.model, self.xte, self.yte)
        self.history.append(
            {
                "step": step,
                "accuracy": round(acc, 4),
                "stored_bits": st["stored_bits"],
                "compression_ratio": round(self.float_bits / st["stored_bits"], 2),
            }
        )

    def hold(self) -> Hold:
        h = Hold()
        for layer in chain_mod.compressible(self.model):
            mats = chain_mod.matrices(layer)
            if layer.name in self.books:
                h.codebooks[layer.name] = (mats, self.books[layer.name])
            elif layer.name in self.masks:
                for v, m in zip(mats, self.masks[layer.name], strict=True):
                    h.mask(v, m)
        return h

    def train(self, hold=None, schedule=None, epochs=None) -> None:
        finetune(
            self.model,
            self.xtr,
            self.ytr,
            self.opts.epochs if epochs is None else epochs,
            hold=hold or self.hold(),
            distill=self.distill,
            schedule=schedule,
            seed=self.opts.seed,
        )

    def rebuild(self, layers) -> None:
        import tensorflow as tf

        name = self.model.name
        shape = self.model.input_shape[1:]
        tf.keras.backend.clear_session()
        self.model = chain_mod.rebuild(layers, shape, name)

    # -- steps
    def lowrank(self) -> None:
        specs = chain_mod.chain(self.model, self.file)
        for spec in specs:
            if spec.kind in ("lstm", "gru", "dwconv"):
                why = (
                    "its recurrent matrices would need a projection layer (LSTMP, as Sak et al. and ESE's model have), "
                    "which the LSTM engine does not have"
                    if spec.kind != "dwconv"
                    else "a depthwise kernel has no channel modes to factor"
                )
                self.notes.append(f"lowrank: {spec.name} ({spec.cls}) is not factored: {why}")
        layers, ranks = factor_chain(specs, self.opts.energy, method=self.opts.rank)
        if ranks:
            self.rebuild(layers)
            self.ranks.update(ranks)
            self.train()
        self.record("lowrank")

    def prune(self) -> None:
        targets = {}
        sizes = {
            layer.name: sum(int(np.prod(v.shape)) for v in chain_mod.matrices(layer))
            for layer in chain_mod.compressible(self.model)
        }
        chosen = self.choose() or {}
        for layer in chain_mod.compressible(self.model):
            kind = chain_mod.KINDS[layer.__class__.__name__]
            d = self.opts.layer_density.get(layer.name, default_density(self.opts.density, sizes[layer.name], sizes))
            d = chosen.get(layer.name, d)
            pe = self.opts.pe if kind in ("lstm", "gru") else None
            ra = getattr(layer, "reset_after", True)
            targets[layer.name] = (layer, target(d, kind, pe, self.opts.block, ra))
        per_epoch = max(1, -(-len(self.xtr) // 32))
        total = max(1, self.opts.epochs * per_epoch)
        end = max(1, int(0.6 * total))  # Zhu & Gupta: prune over the first part, then recover
        every = max(1, per_epoch // 2)
        hold = Hold()

        def update(step, steps, final=False):
            if not final and (step > end or step % every):
                return
            for name, (layer, t) in targets.items():
                d = t.density if final else cubic_density(step + every, t.density, 0, end)
                mats = chain_mod.matrices(layer)
                ms = layer_masks([v.numpy() for v in mats], t, d)
                self.masks[name] = ms
                for v, m in zip(mats, ms, strict=True):
                    hold.mask(v, m)

        if self.opts.epochs == 0:
            update(0, 0, final=True)
            hold.apply()
        else:
            self.train(hold=hold, schedule=update)
            update(0, 0, final=True)  # exactly the target, whatever the last schedule point
            hold.apply()
        if self.walk is not None and self._budget_after_pruning(targets):
            self.train()  # recover from the extra pruning, the new masks held
        self.record("prune")

    def _budget_after_pruning(self, targets) -> bool:
        """The fine-tuned weights give other masks than the draft's: plan them, and walk on
        (lower densities, masks again) while the design is over the budget.  Moved at all?"""
        walk = self.walk
        walk.measure("after pruning")
        moved = False
        while walk.path[-1]["over"]:
            what = walk.move()
            if what is None:
                walk.fail()
            for name, (layer, t) in targets.items():
                d = walk.densities[name]
                if d != t.density:
                    t = Target(d, t.kind, t.pe, t.block)
                    targets[name] = (layer, t)
                    mats = chain_mod.matrices(layer)
                    ms = layer_masks([v.numpy() for v in mats], t, d)
                    self.masks[name] = ms
                    for v, m in zip(mats, ms, strict=True):
                        v.assign(v.numpy() * m)
            walk.measure(what + " (after pruning)")
            moved = True
        from .search import mark_pareto

        mark_pareto(walk.path)
        self._take(walk)
        return moved

    def _take(self, walk) -> None:
        """The walk's choice: densities, and weight bits or codebook bits per layer."""
        self.chosen, self.search = walk.densities, walk.path
        if walk.space.codebook:
            self.book_bits = walk.bits
        else:
            self.layer_bits = walk.bits

    def validation(self) -> tuple:
        """The last fifth of the training data: what the searches measure on."""
        n = max(1, len(self.xtr) // 5)
        return self.xtr[-n:], self.ytr[-n:]

    def choose(self) -> dict | None:
        """Densities (and bits) chosen once, before the first step they concern."""
        if self.chosen is None and (self.opts.target_ratio or self.opts.budget):
            if self.opts.budget:
                self.walk = self._budget_walk()
                try:
                    self.walk.run()
                finally:
                    self.walk_act = None  # the model trains on after the search
                self._take(self.walk)
            else:
                self.chosen, self.search = self._search()
        return self.chosen

    def _budget_walk(self):
        from .search import BIT_FLOOR, GRID, BudgetWalk, Space

        o = self.opts
        quant = "quantize" in o.steps
        bits = (None,)
        book = "cluster" in o.steps and quant and o.scheme.kind in ("fixed", "po2")
        if book:  # the codebook's size: index bits from --cluster-bits down to 2
            bits = tuple(range(o.cluster_bits, min(2, o.cluster_bits) - 1, -1))
        elif quant and o.scheme.kind in ("fixed", "po2"):
            bits = tuple(range(o.scheme.bits, min(BIT_FLOOR, o.scheme.bits) - 1, -1))
        space = Space(GRID if "prune" in o.steps else (1.0,), bits, dict(o.layer_density), book)
        x, y = self.validation()
        return BudgetWalk(
            self.model,
            x,
            y,
            o.budget,
            space,
            o.scheme if quant else None,
            self.draft_figures,
            o.pe,
            self.log,
            self.file,
            o.block,
        )

    def log(self, p: dict) -> None:
        if self.progress:
            over = "; over: " + ", ".join(p["over"]) if p["over"] else "; within the budget"
            self.progress(
                f"search {p['step']}: estimate {p['accuracy_estimate']:.4f}, {p['cycles']:g} cycles/{p['per']}, "
                f"{p['dsp']} multipliers, {p['bram']} BRAM18{over}"
            )

    def walk_codebook(self) -> bool:
        """Does the budget search size the codebooks (rather than the weight bits)?"""
        o = self.opts
        return "cluster" in o.steps and "quantize" in o.steps and o.scheme.kind in ("fixed", "po2")

    def engine_options(self, engine: str) -> dict:
        opts = self.opts.budget.engine_options(engine)
        if engine == "sparse_lstm" and self.opts.pe:
            opts["pe"] = self.opts.pe
        return opts

    def draft_figures(self, dens: dict, bits: dict, lut: bool = False) -> dict:
        """The engine's figures for the model compressed with ``dens`` and ``bits``, before
        fine-tuning: masked, quantized (and shared) as the steps will, then planned."""
        from .quantize import to_qkeras

        specs = chain_mod.chain(self.model, self.file)
        for spec in specs:
            if spec.kind is None or spec.name not in dens:
                continue
            nm = 2 if spec.kind in ("lstm", "gru") else 1
            mats = spec.weights[:nm]
            pe = self.opts.pe if spec.kind in ("lstm", "gru") else None
            t = target(dens[spec.name], spec.kind, pe, self.opts.block, spec.config.get("reset_after", True))
            masks = layer_masks(mats, t, dens[spec.name])
            spec.weights = [w * m for w, m in zip(mats, masks, strict=True)] + spec.weights[nm:]
            if "cluster" in self.opts.steps and self.opts.scheme.kind in ("fixed", "po2"):
                kb = bits.get(spec.name, self.opts.cluster_bits) if self.walk_codebook() else self.opts.cluster_bits
                shared = share(spec.weights[:nm], kb).weights()
                spec.weights = list(shared) + spec.weights[nm:]
        if "quantize" in self.opts.steps:
            layer_bits = {} if self.walk_codebook() else bits
            if self.walk_act is None:  # the same model at every point of the search: once
                self.walk_act = self.act_max()
            specs = to_qkeras(specs, self.opts.scheme, self.walk_act, self.xtr, self.file, layer_bits=layer_bits)
        return self.figures(chain_mod.rebuild(specs, self.model.input_shape[1:], self.model.name), lut)

    def figures(self, model, lut: bool = False) -> dict:
        """The design's figures (the planner handed to :func:`compress`; Yosys's LUTs with ``lut``)."""
        try:
            return self.planner(model, convert_config(model), self.engine_options, lut)
        except HlsgenError as e:
            raise HlsgenError(f"--budget: {e.message}", file=self.file) from None

    def act_max(self) -> dict:
        """The largest output of every layer on the training data (activations' integer bits)."""
        import tensorflow as tf

        probe = tf.keras.Model(self.model.inputs, [layer.output for layer in self.model.layers])
        outs = probe.predict(self.xtr, verbose=0, batch_size=256)
        return {layer.name: float(np.max(o)) for layer, o in zip(self.model.layers, outs, strict=True)}

    def _search(self):
        """Densities for --target-ratio by sensitivity on a validation fifth of the training data."""
        from .search import choose_densities

        if "cluster" in self.opts.steps:
            bits = self.opts.cluster_bits
        elif "quantize" in self.opts.steps:
            bits = self.opts.scheme.weight_bits
        else:
            bits = 32
        xv, yv = self.validation()
        return choose_densities(
            self.model, xv, yv, self.opts.target_ratio, bits, self.opts.layer_density, self.opts.pe, self.opts.block
        )

    def quantize(self) -> None:
        scheme = self.opts.scheme
        self.choose()
        layers = to_qkeras(
            chain_mod.chain(self.model, self.file), scheme, self.act_max(), self.xtr, self.file, self.layer_bits
        )
        if scheme.kind == "po2":
            self._inq(layers)
        else:
            self.rebuild(layers)
            self.train()
        self.record("quantize")

    def _inq(self, layers) -> None:
        """INQ: fix growing portions of each matrix to powers of two, re-train the rest."""
        final = [chain_mod.Layer(s.cls, dict(s.config), s.weights) for s in layers]
        keys = ("kernel_quantizer", "depthwise_quantizer")
        free = []
        for s in layers:
            cfg = dict(s.config)
            for k in keys:
                if k in cfg:
                    cfg[k] = None
            free.append(chain_mod.Layer(s.cls, cfg, s.weights))
        self.rebuild(free)
        quantizers = {s.name: s.config[k] for s in final for k in keys if s.config.get(k)}
        fixed: dict = {}
        per_stage = max(1, self.opts.epochs // len(INQ_PORTIONS))
        for portion in INQ_PORTIONS:
            hold = self.hold()
            for layer in chain_mod.compressible(self.model):
                if layer.name not in quantizers:
                    continue
                for i, v in enumerate(chain_mod.matrices(layer)):
                    w = v.numpy()
                    done = fixed.get((layer.name, i), np.zeros(w.shape, bool))
                    nz = w != 0 if layer.name in self.masks else np.ones(w.shape, bool)
                    want = int(round(portion * nz.sum()))
                    order = np.argsort(-np.where(done | ~nz, -1, np.abs(w)).ravel(), kind="stable")
                    extra = want - int((done & nz).sum())
                    new = done.copy().ravel()
                    new[order[: max(0, extra)]] = True
                    new = new.reshape(w.shape) & nz
                    values = np.where(new, apply_quantizer(quantizers[layer.name], w), w)
                    v.assign(values)
                    fixed[(layer.name, i)] = new
                    hold.frozen[id(v)] = (v, new, values)
            if portion < 1.0:
                self.train(hold=hold, epochs=per_stage)
        weights = {layer.name: layer.get_weights() for layer in self.model.layers}
        for s in final:
            if s.name in weights:
                s.weights = weights[s.name]
        self.rebuild(final)

    def cluster(self) -> None:
        for layer in chain_mod.compressible(self.model):
            q = _quantizer(layer, "kernel_quantizer_internal") or _quantizer(layer, "depthwise_quantizer_internal")
            if q is not None and type(q).__name__ in ("binary", "ternary", "stochastic_binary", "stochastic_ternary"):
                continue  # two or three values already: nothing to share
            bits = self.book_bits.get(layer.name, self.opts.cluster_bits)
            self.books[layer.name] = share([v.numpy() for v in chain_mod.matrices(layer)], bits)
        self.train()
        self.record("cluster")

    def distill_only(self) -> None:
        self.train()
        self.record("distill")


def compress(
    model_path,
    output,
    data=None,
    opts: Options | None = None,
    report=None,
    plot=None,
    progress=None,
    planner=None,
) -> dict:
    """Run the steps on ``model_path``; write the model to ``output`` (.h5), the report and
    the plot.  Returns the report.  ``progress``: called with a line per budget-search point;
    ``planner``: the design's figures for ``--budget`` (:func:`hlsgen.project.design_figures`)."""
    import tensorflow as tf

    from ..frontends.keras.loader import load_model_file, quiet_tensorflow

    opts = opts or Options()
    quiet_tensorflow()
    out = Path(output)
    if out.is_dir() or out.suffix.lower() != ".h5":
        raise HlsgenError(
            "-o: the compressed model is written as Keras .h5; give a file name ending in .h5", file=str(out)
        )
    model = load_model_file(str(model_path))
    file = str(model_path)
    chain_mod.chain(model, file)  # refuse what the steps cannot rewrite, before any work
    opts.check([layer.name for layer in chain_mod.compressible(model)])
    if not chain_mod.compressible(model):
        raise HlsgenError("no layer with weights to compress (Dense, Conv2D, DepthwiseConv2D, LSTM, GRU)", file=file)
    if "lowrank" in opts.steps and "quantize" not in opts.steps and _is_quantized(model):
        raise HlsgenError("--steps lowrank works on float layers; this model is already quantized", file=file)
    data_ = load_data(data, model, file)
    tf.keras.utils.set_random_seed(opts.seed)
    teacher_logits = None
    if "distill" in opts.steps:
        teacher = model
        if opts.teacher:
            teacher = load_model_file(str(opts.teacher))
            if (
                tuple(teacher.input_shape[1:]) != tuple(model.input_shape[1:])
                or teacher.output_shape[-1] != model.output_shape[-1]
            ):
                raise HlsgenError(
                    "the teacher's input or output shape differs from the student's", file=str(opts.teacher)
                )
        teacher_logits = np.asarray(logits_of(teacher, teacher.predict(data_[0], verbose=0, batch_size=256)))
        if opts.attention:
            maps = teacher_attention(teacher, data_[0])
            if not maps:
                raise HlsgenError(
                    "--attention transfers feature maps of convolutions; this teacher has none (H x W x C)",
                    file=str(opts.teacher or model_path),
                )
    if opts.budget and planner is None:
        raise HlsgenError("--budget needs the engines' planner: pass planner=hlsgen.project.design_figures")
    if opts.budget and "quantize" not in opts.steps and not _is_quantized(model):
        raise HlsgenError("--budget needs a design: add quantize to --steps (this model is float)", file=file)
    run = Run(model, data_, opts, file, teacher_logits, progress, planner)
    if run.distill is not None and opts.attention:
        run.distill.attention, run.distill.teacher_maps = opts.attention, maps
    done = []
    for step in ("lowrank", "prune", "quantize", "cluster"):
        if step in opts.steps:
            getattr(run, step)()
            done.append(step)
    if not done:  # distillation alone: fine-tune against the teacher
        run.distill_only()
    result = _report(run, model_path, out)
    floor = opts.accuracy_floor
    if floor is not None and result["accuracy_after"] < floor:
        raise HlsgenError(
            f"--accuracy-floor {floor:g}: the compressed model reaches {result['accuracy_after']:.4f} on the "
            f"held-out data at {result['compression_ratio']:.1f}x; nothing written (lower the target, or more --epochs)",
            file=file,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        part = Path(tmp) / "model.h5"  # whole, then renamed: never half a file at -o
        run.model.save(part, include_optimizer=False)
        result["hlsgen"] = _check_exact(part, run, file)
        if opts.budget:
            fig = run.figures(run.model, opts.budget.lut is not None)
            result["hardware"] = fig
            result["budget"] = opts.budget.text()
            over = opts.budget.over(fig)
            if over:  # fine-tuning moved a weight the draft had: said, nothing written
                raise HlsgenError(
                    f"--budget {opts.budget.text()}: the fine-tuned model's design is over it ({', '.join(over)}); "
                    "nothing written (the search's draft was within it: tighten the budget a step)",
                    file=file,
                )
        part.replace(out)
    if report:
        Path(report).write_text(json.dumps(result, indent=1) + "\n")
    if plot:
        _plot(result, plot)
    return result


def convert_config(model) -> dict | None:
    """hlsgen's config for converting a compressed model: a final softmax leaves the datapath
    (the engines give logits; the classes are the same)."""
    return {"Model": {"StripSoftmax": True}} if chain_mod.output_is_probability(model) else None


def _is_quantized(model) -> bool:
    return any(layer.__class__.__name__.startswith("Q") for layer in model.layers)


def _report(run: Run, model_path, out) -> dict:
    st = run.storage()
    first, last = run.history[0], run.history[-1]
    return {
        "model": str(model_path),
        "output": str(out),
        "steps": [h["step"] for h in run.history[1:]],
        "options": {
            "density": run.opts.density,
            "layer_density": run.opts.layer_density,
            "pe": run.opts.pe,
            "block": list(run.opts.block) if run.opts.block else None,
            "cluster_bits": run.opts.cluster_bits,
            "energy": run.opts.energy,
            "rank": run.opts.rank,
            "quantize": f"{run.opts.scheme.kind}:{run.opts.scheme.bits}",
            "act_bits": run.opts.scheme.act_bits,
            "epochs": run.opts.epochs,
            "distill": run.distill is not None,
            "attention": run.opts.attention,
            "target_ratio": run.opts.target_ratio,
            "accuracy_floor": run.opts.accuracy_floor,
            "budget": run.opts.budget.text() or None,
            "layer_bits": run.layer_bits,
            "codebook_bits": run.book_bits,
        },
        "test_samples": int(len(run.yte)),
        "float32_bits": run.float_bits,
        "stored_bits": st["stored_bits"],
        "huffman_bits": st["huffman_bits"],
        "compression_ratio": round(run.float_bits / st["stored_bits"], 2),
        "compression_ratio_huffman": round(run.float_bits / st["huffman_bits"], 2),
        "accuracy_before": first["accuracy"],
        "accuracy_after": last["accuracy"],
        "history": run.history,
        "search": run.search,
        "notes": run.notes,
        "layers": st["layers"],
    }


def _check_exact(path: Path, run: Run, file: str) -> dict:
    """Convert the written model with hlsgen and run its integer reference on the held-out
    data: a quantized model must give QKeras's own classes."""
    from ..frontends.keras import convert_keras
    from ..reference.execute import predict

    if not _is_quantized(run.model):
        return {"converts": False, "why": "float model: add the quantize step for hardware"}
    strip = chain_mod.output_is_probability(run.model)
    try:
        g = convert_keras(str(path), convert_config(run.model))
    except HlsgenError as e:
        return {"converts": False, "why": e.message}
    ref = np.argmax(predict(g, run.xte), -1)
    keras = np.argmax(run.model.predict(run.xte, verbose=0, batch_size=256), -1)
    return {
        "converts": True,
        "config": "Model: StripSoftmax: true" if strip else None,
        "exact": bool(g.meta.get("exact")),
        "class_mismatches_against_keras": int(np.sum(ref != keras)),
        "accuracy": round(float(np.mean(ref == run.yte)), 4),
    }


def _plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result["history"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs, ys = [p["compression_ratio"] for p in h], [100 * p["accuracy"] for p in h]
    ax.plot(xs, ys, "o-")
    for p, x, y in zip(h, xs, ys, strict=True):
        ax.annotate(p["step"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio against float32")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(Path(result["model"]).name)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

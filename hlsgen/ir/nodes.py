"""IR nodes: declared, validated attributes and exact output types.

Every node class declares its attributes (``attributes``: name -> kind); the base
class validates them when the node is built and (de)serialises them.  ``infer``
maps input :class:`TensorSpec` s to the output spec; it sizes every result so
that it holds the exact value (no rounding, no overflow) unless the node is a
requantization point, where the target type says how to round and saturate.
"""

from __future__ import annotations

import math
import re
from typing import ClassVar

import numpy as np

from ..fixed import FixedType
from .tensors import StepFunction, TensorSpec, Weight

__all__ = ["Node", "NODE_TYPES", "IRError"]

NODE_TYPES: dict[str, type[Node]] = {}


class IRError(ValueError):
    """A node is malformed or its inputs do not fit it."""


def reason(e: Exception) -> str:
    """An IR error's message without its leading ``Op 'name': `` (frontends name the layer themselves)."""
    return re.sub(r"^\w+ '[^']*': ", "", str(e))


def register(cls):
    NODE_TYPES[cls.op] = cls
    return cls


_KIND_CHECK = {
    "int": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, (bool, np.bool_)),
    "str": lambda v: isinstance(v, str),
    "ints": lambda v: isinstance(v, (tuple, list)) and all(isinstance(x, (int, np.integer)) for x in v),
    "type": lambda v: isinstance(v, FixedType),
    "weight": lambda v: isinstance(v, Weight),
    "step": lambda v: isinstance(v, StepFunction),
    "dict": lambda v: isinstance(v, dict),
}


class Node:
    """Base class of IR nodes.

    Subclasses set ``op`` and ``attributes`` (``{name: (kind, default)}``; a default of
    ``...`` means required; kind ``?type`` etc. allows None).
    """

    op: ClassVar[str] = ""
    attributes: ClassVar[dict] = {}
    n_inputs: ClassVar[int] = 1

    def __init__(self, name: str, inputs: list[str], **attrs):
        self.name = str(name)
        self.inputs = list(inputs)
        if self.n_inputs >= 0 and len(self.inputs) != self.n_inputs:
            raise IRError(f"{self.op} '{name}' takes {self.n_inputs} input(s), got {len(self.inputs)}")
        unknown = set(attrs) - set(self.attributes)
        if unknown:
            raise IRError(f"{self.op} '{name}': unknown attribute(s) {sorted(unknown)}")
        for key, (kind, default) in self.attributes.items():
            if key in attrs:
                value = attrs[key]
            elif default is ...:
                raise IRError(f"{self.op} '{name}': missing attribute '{key}'")
            else:
                value = default
            optional = kind.startswith("?")
            base = kind.lstrip("?")
            if not (optional and value is None) and not _KIND_CHECK[base](value):
                raise IRError(f"{self.op} '{name}': attribute '{key}' must be {kind}, got {value!r}")
            if base == "ints" and value is not None:
                value = tuple(int(v) for v in value)
            setattr(self, key, value)
        self.spec: TensorSpec | None = None
        self.validate()

    def validate(self):
        """Check attribute values against each other (shapes, ranges)."""

    def infer(self, ins: list[TensorSpec]) -> TensorSpec:
        raise NotImplementedError

    def weights(self) -> dict[str, Weight]:
        return {
            k: getattr(self, k)
            for k, (kind, _) in self.attributes.items()
            if kind.lstrip("?") == "weight" and getattr(self, k) is not None
        }

    def steps(self) -> dict[str, StepFunction]:
        return {
            k: getattr(self, k)
            for k, (kind, _) in self.attributes.items()
            if kind.lstrip("?") == "step" and getattr(self, k) is not None
        }

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        d = {"op": self.op, "name": self.name, "inputs": self.inputs, "attrs": {}}
        for key, (kind, _) in self.attributes.items():
            v = getattr(self, key)
            base = kind.lstrip("?")
            if v is None:
                d["attrs"][key] = None
            elif base in ("type",):
                d["attrs"][key] = str(v)
            elif base in ("weight", "step"):
                d["attrs"][key] = v.to_json()
            elif base == "ints":
                d["attrs"][key] = list(v)
            else:
                d["attrs"][key] = v
        return d

    @classmethod
    def from_json(cls, d: dict) -> Node:
        ncls = NODE_TYPES.get(d.get("op"))
        if ncls is None:
            raise IRError(f"unknown node op {d.get('op')!r}")
        attrs = {}
        for key, v in d.get("attrs", {}).items():
            if key not in ncls.attributes:
                raise IRError(f"{ncls.op} '{d.get('name')}': unknown attribute '{key}'")
            base = ncls.attributes[key][0].lstrip("?")
            if v is None:
                attrs[key] = None
            elif base == "type":
                attrs[key] = FixedType.parse(v)
            elif base == "weight":
                attrs[key] = Weight.from_json(v)
            elif base == "step":
                attrs[key] = StepFunction.from_json(v)
            elif base == "ints":
                attrs[key] = tuple(v)
            else:
                attrs[key] = v
        return ncls(d["name"], d["inputs"], **attrs)

    def describe(self) -> str:
        """Short text for layer tables: bits, density, kind."""
        parts = []
        for k, w in self.weights().items():
            parts.append(f"{k}:{w.type.width}b {w.kind} {100 * w.density:.0f}%")
        return ", ".join(parts)


# ------------------------------------------------------------------ helpers
def _mac_bounds(w: np.ndarray, xlo: int, xhi: int, axis: int = 0):
    """Exact per-output bounds of sum_i w[i, j] * x[i] for x in [xlo, xhi] (integer ``w``;
    the bounds come back as Python integers, exact at any width)."""
    if w.size:
        # int64 is exact when no partial sum can reach 2^62 (object arithmetic is slow at scale)
        wmax = max(abs(int(w.max())), abs(int(w.min())))
        if wmax * max(abs(int(xlo)), abs(int(xhi)), 1) * w.shape[axis] < 2**62:
            wi = w.astype(np.int64)
            wpos, wneg = np.where(wi > 0, wi, 0), np.where(wi < 0, wi, 0)
            xlo, xhi = int(xlo), int(xhi)
            hi = (wpos * xhi + wneg * xlo).sum(axis=axis)
            lo = (wpos * xlo + wneg * xhi).sum(axis=axis)
            return lo.astype(object), hi.astype(object)
    w = w.astype(object)
    wpos = np.where(w > 0, w, 0)
    wneg = np.where(w < 0, w, 0)
    hi = (wpos * xhi + wneg * xlo).sum(axis=axis)
    lo = (wpos * xlo + wneg * xhi).sum(axis=axis)
    return lo, hi


def _check_bounds_fit(name, lo, hi):
    if max(abs(int(lo)), abs(int(hi))) >= 2**61:
        raise IRError(f"'{name}': exact accumulator exceeds 61 bits; lower the bit widths")


def _add_bias(name, lo, hi, frac, bias: Weight | None):
    """Align bias and accumulator to the finer grid; return raw bounds and frac."""
    if bias is None:
        return lo, hi, frac, 0, 0
    bf = bias.type.frac
    f = max(frac, bf)
    sa, sb = f - frac, f - bf
    blo = bias.raw.astype(object) * (1 << sb)
    lo = np.asarray(lo).astype(object) * (1 << sa) + blo
    hi = np.asarray(hi).astype(object) * (1 << sa) + blo
    return lo, hi, f, sa, sb


def _out_size(n, k, s, padding):
    if padding == "valid":
        return (n - k) // s + 1
    return -(-n // s)  # same


def _pad_amounts(n, k, s, padding):
    """Total padding and its split (Keras/TF 'same': the extra pixel goes after)."""
    if padding == "valid":
        return 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


# ------------------------------------------------------------------ nodes
@register
class Input(Node):
    """The model input: floats are quantized to ``type`` (its rounding and overflow) on entry."""

    op = "Input"
    n_inputs = 0
    attributes = {"shape": ("ints", ...), "type": ("type", ...)}

    def infer(self, ins):
        return TensorSpec.of_type(self.shape, self.type)


@register
class Dense(Node):
    """y[j] = sum_i x[i] * W[i, j] + b[j], exact. Inputs of rank > 1 act on the last axis."""

    op = "Dense"
    attributes = {"kernel": ("weight", ...), "bias": ("?weight", None)}

    def validate(self):
        if self.kernel.raw.ndim != 2:
            raise IRError(f"Dense '{self.name}': kernel must be 2-D")
        if self.bias is not None and self.bias.raw.shape != (self.kernel.raw.shape[1],):
            raise IRError(f"Dense '{self.name}': bias shape does not match kernel")

    def infer(self, ins):
        (x,) = ins
        n_in, n_out = self.kernel.raw.shape
        if x.shape[-1] != n_in:
            raise IRError(f"Dense '{self.name}': input has {x.shape[-1]} features, kernel expects {n_in}")
        lo, hi = _mac_bounds(self.kernel.raw, x.lo, x.hi)
        frac = x.type.frac + self.kernel.type.frac
        lo, hi, frac, _, _ = _add_bias(self.name, lo, hi, frac, self.bias)
        lo, hi = min(lo.min(), 0), max(hi.max(), 0)
        _check_bounds_fit(self.name, lo, hi)
        return TensorSpec.exact(x.shape[:-1] + (n_out,), lo, hi, frac)

    @property
    def macs(self):
        return self.kernel.raw.size


@register
class Conv(Node):
    """Conv1D / Conv2D / DepthwiseConv2D (channels last), exact.

    ``kernel``: [*k, c_in, c_out] for a normal convolution, [*k, c_in, multiplier] when
    ``depthwise``.  ``padding``: 'valid', 'same' (TF's split: extra pixel after) or
    'explicit' with ``pads`` = (before, after) per spatial axis, flattened (ONNX, PyTorch).
    """

    op = "Conv"
    attributes = {
        "kernel": ("weight", ...),
        "bias": ("?weight", None),
        "strides": ("ints", ...),
        "padding": ("str", "valid"),
        "depthwise": ("bool", False),
        "pads": ("ints", ()),
    }

    @property
    def rank(self):
        return self.kernel.raw.ndim - 2

    def pad_pairs(self, spatial) -> list[tuple[int, int]]:
        """Zero padding (before, after) of every spatial axis for an input of this size."""
        if self.padding == "explicit":
            return [(self.pads[2 * i], self.pads[2 * i + 1]) for i in range(self.rank)]
        k = self.kernel.raw.shape[: self.rank]
        return [_pad_amounts(n, kk, s, self.padding) for n, kk, s in zip(spatial, k, self.strides, strict=False)]

    def validate(self):
        if self.rank not in (1, 2):
            raise IRError(f"Conv '{self.name}': only 1-D and 2-D convolutions are supported")
        if len(self.strides) != self.rank or min(self.strides) < 1:
            raise IRError(f"Conv '{self.name}': strides {self.strides} do not fit a {self.rank}-D kernel")
        if self.padding not in ("valid", "same", "explicit"):
            raise IRError(f"Conv '{self.name}': padding '{self.padding}' is not supported (valid, same, explicit)")
        if (self.padding == "explicit") != bool(self.pads):
            raise IRError(f"Conv '{self.name}': pads are given exactly when padding is 'explicit'")
        if self.pads and (len(self.pads) != 2 * self.rank or min(self.pads) < 0):
            raise IRError(f"Conv '{self.name}': pads {self.pads} must be (before, after) per spatial axis")
        n_out = self.kernel.raw.shape[-1] * (self.kernel.raw.shape[-2] if self.depthwise else 1)
        if self.bias is not None and self.bias.raw.shape != (n_out,):
            raise IRError(f"Conv '{self.name}': bias shape does not match kernel")

    def out_channels(self):
        k = self.kernel.raw
        return k.shape[-2] * k.shape[-1] if self.depthwise else k.shape[-1]

    def infer(self, ins):
        (x,) = ins
        k = self.kernel.raw
        if len(x.shape) != self.rank + 1:
            raise IRError(f"Conv '{self.name}': input shape {x.shape} is not {self.rank}-D with channels")
        if x.shape[-1] != k.shape[-2]:
            raise IRError(f"Conv '{self.name}': input has {x.shape[-1]} channels, kernel expects {k.shape[-2]}")
        spatial = []
        pairs = self.pad_pairs(x.shape[:-1])
        for n, kk, s, (b, e) in zip(x.shape[:-1], k.shape[:-2], self.strides, pairs, strict=False):
            if self.padding == "same":
                spatial.append(_out_size(n, kk, s, "same"))
                continue
            if kk > n + b + e:
                raise IRError(
                    f"Conv '{self.name}': kernel {kk} larger than the input {n + b + e}"
                    + (" (padded)" if b or e else "")
                )
            spatial.append((n + b + e - kk) // s + 1)
        kobj = k
        if self.depthwise:
            flat = kobj.reshape(-1, k.shape[-2] * k.shape[-1])
        else:
            flat = kobj.reshape(-1, k.shape[-1])
        # padding contributes zeros, which the bounds already allow (0 is in [lo, hi] or not:
        # include it explicitly so a padded window is covered)
        padded = any(b or e for b, e in pairs)
        xlo, xhi = (min(x.lo, 0), max(x.hi, 0)) if padded else (x.lo, x.hi)
        lo, hi = _mac_bounds(flat, xlo, xhi)
        frac = x.type.frac + self.kernel.type.frac
        lo, hi, frac, _, _ = _add_bias(self.name, lo, hi, frac, self.bias)
        lo, hi = min(lo.min(), 0), max(hi.max(), 0)
        _check_bounds_fit(self.name, lo, hi)
        return TensorSpec.exact(tuple(spatial) + (self.out_channels(),), lo, hi, frac)


@register
class Pool(Node):
    """Max or average pooling (1-D/2-D, or global).  Average is exact only for power-of-two areas."""

    op = "Pool"
    attributes = {
        "mode": ("str", ...),
        "pool_size": ("ints", ()),
        "strides": ("ints", ()),
        "padding": ("str", "valid"),
        "global_": ("bool", False),
    }

    def validate(self):
        if self.mode not in ("max", "avg"):
            raise IRError(f"Pool '{self.name}': mode must be max or avg")
        if not self.global_ and (len(self.pool_size) not in (1, 2) or len(self.strides) != len(self.pool_size)):
            raise IRError(f"Pool '{self.name}': pool_size/strides malformed")
        if self.padding != "valid":
            raise IRError(f"Pool '{self.name}': padding '{self.padding}' is not supported (valid)")

    def window(self, in_shape):
        return tuple(in_shape[:-1]) if self.global_ else self.pool_size

    def infer(self, ins):
        (x,) = ins
        win = self.window(x.shape)
        if len(win) != len(x.shape) - 1:
            raise IRError(f"Pool '{self.name}': input shape {x.shape} does not match the pool rank")
        area = math.prod(win)
        if self.global_:
            out_shape = (x.shape[-1],)
        else:
            out_shape = tuple(
                _out_size(n, k, s, "valid") for n, k, s in zip(x.shape[:-1], win, self.strides, strict=False)
            )
            if min(out_shape) < 1:
                raise IRError(f"Pool '{self.name}': pool window larger than the input")
            out_shape += (x.shape[-1],)
        if self.mode == "max":
            return TensorSpec(out_shape, x.type, x.lo, x.hi)
        if area & (area - 1):
            raise IRError(
                f"Pool '{self.name}': average over {area} values is not exact in fixed point; "
                "use a power-of-two pool area"
            )
        shift = area.bit_length() - 1
        # mean = sum / 2**shift: the raw sum read with `shift` more fractional bits
        return TensorSpec.exact(out_shape, x.lo * area, x.hi * area, x.type.frac + shift)


@register
class Reshape(Node):
    """Flatten / Reshape (row-major, channels last as in Keras): values unchanged."""

    op = "Reshape"
    attributes = {"shape": ("ints", ...)}

    def infer(self, ins):
        (x,) = ins
        if math.prod(self.shape) != math.prod(x.shape):
            raise IRError(f"Reshape '{self.name}': cannot reshape {x.shape} to {self.shape}")
        return TensorSpec(self.shape, x.type, x.lo, x.hi)


@register
class Add(Node):
    """Element-wise sum of two tensors, exact (aligned to the finer grid)."""

    op = "Add"
    n_inputs = 2

    def infer(self, ins):
        a, b = ins
        if a.shape != b.shape:
            raise IRError(f"Add '{self.name}': shapes {a.shape} and {b.shape} differ")
        f = max(a.type.frac, b.type.frac)
        sa, sb = 1 << (f - a.type.frac), 1 << (f - b.type.frac)
        return TensorSpec.exact(a.shape, a.lo * sa + b.lo * sb, a.hi * sa + b.hi * sb, f)


@register
class Activation(Node):
    """Element-wise activation or requantization point.

    ``function``:
      * ``linear`` - identity;
      * ``relu`` - exact max(x, 0);
      * ``requant`` - convert to ``type`` with its rounding and overflow (after ReLU if ``relu``);
      * ``step`` - an exact table ``step`` (sigmoid, tanh, quantizers, folded batch-norm, ...).
    """

    op = "Activation"
    attributes = {
        "function": ("str", ...),
        "type": ("?type", None),
        "relu": ("bool", False),
        "step": ("?step", None),
    }
    FUNCTIONS = ("linear", "relu", "requant", "step")

    def validate(self):
        if self.function not in self.FUNCTIONS:
            raise IRError(f"Activation '{self.name}': unknown function '{self.function}'")
        if self.function == "requant" and self.type is None:
            raise IRError(f"Activation '{self.name}': requant needs a target type")
        if self.function == "step" and self.step is None:
            raise IRError(f"Activation '{self.name}': step needs a table")

    def infer(self, ins):
        (x,) = ins
        if self.function == "linear":
            return x
        if self.function == "relu":
            lo, hi = 0, max(x.hi, 0)
            return TensorSpec.exact(x.shape, lo, hi, x.type.frac)
        if self.function == "requant":
            t = self.type
            return TensorSpec.of_type(x.shape, t)
        st = self.step
        if st.in_type.frac != x.type.frac:
            raise IRError(f"Activation '{self.name}': table built for {st.in_type}, input is {x.type}")
        if st.channels not in (1, x.shape[-1]):
            raise IRError(f"Activation '{self.name}': table has {st.channels} channels, input {x.shape[-1]}")
        lo, hi = st.out_bounds()
        return TensorSpec(x.shape, st.out_type, lo, hi)


def _lstm_like_validate(node, gates):
    k, r = node.kernel.raw, node.recurrent.raw
    u = node.units
    if k.ndim != 2 or k.shape[1] != gates * u:
        raise IRError(f"{node.op} '{node.name}': kernel must be [features, {gates}*units]")
    if r.shape != (u, gates * u):
        raise IRError(f"{node.op} '{node.name}': recurrent kernel must be [units, {gates}*units]")


@register
class LSTM(Node):
    """Quantized LSTM (Keras gate order i, f, c, o), with explicit quantization points.

    Per time step, from the previous state quantized to ``state_type``
    (c_q = Q(c[t-1]), h_q = Q(h[t-1]); both zero at t = 0):

      z   = x W + h_q U + b                    exact accumulator
      i, f, o = gate_fn(z_i), gate_fn(z_f), gate_fn(z_o)   exact tables
      g   = cand_fn(z_c)                       exact table
      c   = f * c_q + i * g                    exact
      h   = o * cell_fn(c)                     exact (cell_fn: table on c's type)

    Output: h for every step (``return_sequences``) or the last one, exact.
    """

    op = "LSTM"
    attributes = {
        "units": ("int", ...),
        "kernel": ("weight", ...),
        "recurrent": ("weight", ...),
        "bias": ("?weight", None),
        "state_type": ("type", ...),
        "gate_fn": ("step", ...),
        "cand_fn": ("step", ...),
        "cell_fn": ("step", ...),
        "return_sequences": ("bool", False),
    }

    def validate(self):
        _lstm_like_validate(self, 4)

    def internal_specs(self, x: TensorSpec) -> dict[str, TensorSpec]:
        """Exact specs of z, cell state and hidden state."""
        z = lstm_z_spec(self.name, self.kernel, self.recurrent, self.bias, self.state_type, x, 4)
        for nm, fn in (("gate_fn", self.gate_fn), ("cand_fn", self.cand_fn)):
            if fn.in_type.frac != z.type.frac or fn.channels != 1:
                raise IRError(f"LSTM '{self.name}': {nm} is not a shared table on {z.type}")
        c = lstm_c_spec(self.gate_fn, self.cand_fn, self.state_type, self.units)
        if self.cell_fn.in_type.frac != c.type.frac or self.cell_fn.channels != 1:
            raise IRError(f"LSTM '{self.name}': cell_fn is not a shared table on {c.type}")
        glo, ghi = self.gate_fn.out_bounds()
        alo, ahi = self.cell_fn.out_bounds()
        ph = [a * b for a in (glo, ghi) for b in (alo, ahi)]
        h = TensorSpec.exact(
            (self.units,), min(min(ph), 0), max(max(ph), 0), self.gate_fn.out_type.frac + self.cell_fn.out_type.frac
        )
        return {"z": z, "c": c, "h": h}

    def infer(self, ins):
        (x,) = ins
        if len(x.shape) != 2:
            raise IRError(f"LSTM '{self.name}': input must be [time, features], got {x.shape}")
        if x.shape[1] != self.kernel.raw.shape[0]:
            raise IRError(
                f"LSTM '{self.name}': input has {x.shape[1]} features, kernel expects " f"{self.kernel.raw.shape[0]}"
            )
        h = self.internal_specs(x)["h"]
        shape = (x.shape[0], self.units) if self.return_sequences else (self.units,)
        return TensorSpec(shape, h.type, h.lo, h.hi)

    @property
    def macs_per_step(self):
        return self.kernel.raw.size + self.recurrent.raw.size


def lstm_z_spec(name, kernel: Weight, recurrent: Weight, bias, state_type: FixedType, x: TensorSpec, gates: int):
    """Exact spec of the gate pre-activations z = x W + Q(h) U + b."""
    klo, khi = _mac_bounds(kernel.raw, x.lo, x.hi)
    rlo, rhi = _mac_bounds(recurrent.raw, state_type.min_raw, state_type.max_raw)
    fk, fr = x.type.frac + kernel.type.frac, state_type.frac + recurrent.type.frac
    f = max(fk, fr)
    lo = klo * (1 << (f - fk)) + rlo * (1 << (f - fr))
    hi = khi * (1 << (f - fk)) + rhi * (1 << (f - fr))
    lo, hi, f, _, _ = _add_bias(name, lo, hi, f, bias)
    zlo, zhi = min(lo.min(), 0), max(hi.max(), 0)
    _check_bounds_fit(name, zlo, zhi)
    return TensorSpec.exact((kernel.raw.shape[1],), zlo, zhi, f)


def lstm_c_spec(gate_fn: StepFunction, cand_fn: StepFunction, state_type: FixedType, units: int) -> TensorSpec:
    """Exact spec of the cell state c = f * Q(c_prev) + i * g."""
    glo, ghi = gate_fn.out_bounds()
    clo, chi = cand_fn.out_bounds()
    p1 = [a * b for a in (glo, ghi) for b in (state_type.min_raw, state_type.max_raw)]
    p2 = [a * b for a in (glo, ghi) for b in (clo, chi)]
    f1, f2 = gate_fn.out_type.frac + state_type.frac, gate_fn.out_type.frac + cand_fn.out_type.frac
    fc = max(f1, f2)
    c_lo = min(p1) * (1 << (fc - f1)) + min(p2) * (1 << (fc - f2))
    c_hi = max(p1) * (1 << (fc - f1)) + max(p2) * (1 << (fc - f2))
    return TensorSpec.exact((units,), min(c_lo, 0), max(c_hi, 0), fc)


def _corner_bounds(alo, ahi, blo, bhi):
    p = [a * b for a in (alo, ahi) for b in (blo, bhi)]
    return min(p), max(p)


def _aligned_sum(parts):
    """Bounds of a sum of (lo, hi, frac) parts on the finest grid."""
    f = max(fr for _, _, fr in parts)
    lo = sum(np.asarray(lo).astype(object) * (1 << (f - fr)) for lo, _, fr in parts)
    hi = sum(np.asarray(hi).astype(object) * (1 << (f - fr)) for _, hi, fr in parts)
    return lo, hi, f


@register
class GRU(Node):
    """Quantized GRU (Keras gate order z, r, h), with explicit quantization points.

    Per time step, from h_q = Q(h[t-1]) (``state_type``; zero at t = 0):

      a      = x W + b                                   exact (b: input bias)
      z, r   = gate_fn(a_z + h_q U_z [+ rb_z]), gate_fn(a_r + h_q U_r [+ rb_r])
      pre_h  = a_h + (r * h_q) U_h                       (reset_after = False)
             = a_h + r * (h_q U_h + rb_h)                (reset_after = True)
      hh     = cand_fn(pre_h)
      h      = z * h_q + (1 - z) * hh                    exact

    Output: h for every step (``return_sequences``) or the last one, exact.
    """

    op = "GRU"
    attributes = {
        "units": ("int", ...),
        "kernel": ("weight", ...),
        "recurrent": ("weight", ...),
        "bias": ("?weight", None),
        "recurrent_bias": ("?weight", None),
        "state_type": ("type", ...),
        "gate_fn": ("step", ...),
        "cand_fn": ("step", ...),
        "reset_after": ("bool", False),
        "return_sequences": ("bool", False),
    }

    def validate(self):
        _lstm_like_validate(self, 3)
        if self.recurrent_bias is not None and not self.reset_after:
            raise IRError(f"GRU '{self.name}': a recurrent bias needs reset_after")

    def internal_specs(self, x: TensorSpec) -> dict[str, TensorSpec]:
        specs = gru_zr_spec(self, x)
        if self.gate_fn.in_type.frac != specs["zr"].type.frac or self.gate_fn.channels != 1:
            raise IRError(f"GRU '{self.name}': gate_fn is not a shared table on {specs['zr'].type}")
        specs.update(gru_h_specs(self, x, self.gate_fn))
        if self.cand_fn.in_type.frac != specs["pre_h"].type.frac or self.cand_fn.channels != 1:
            raise IRError(f"GRU '{self.name}': cand_fn is not a shared table on {specs['pre_h'].type}")
        st, gt, ct = self.state_type, self.gate_fn.out_type, self.cand_fn.out_type
        glo, ghi = self.gate_fn.out_bounds()
        one = 1 << gt.frac
        clo, chi = self.cand_fn.out_bounds()
        lo, hi, f = _aligned_sum(
            [
                (*_corner_bounds(glo, ghi, st.min_raw, st.max_raw), gt.frac + st.frac),
                (*_corner_bounds(one - ghi, one - glo, clo, chi), gt.frac + ct.frac),
            ]
        )
        specs["h"] = TensorSpec.exact((self.units,), min(lo, 0), max(hi, 0), f)
        return specs

    def infer(self, ins):
        (x,) = ins
        if len(x.shape) != 2 or x.shape[1] != self.kernel.raw.shape[0]:
            raise IRError(f"GRU '{self.name}': input must be [time, {self.kernel.raw.shape[0]}], got {x.shape}")
        h = self.internal_specs(x)["h"]
        shape = (x.shape[0], self.units) if self.return_sequences else (self.units,)
        return TensorSpec(shape, h.type, h.lo, h.hi)


def gru_zr_spec(node, x: TensorSpec) -> dict[str, TensorSpec]:
    """Exact specs of a = x W + b and of the z/r pre-activations (tables not needed yet)."""
    u, st = node.units, node.state_type
    klo, khi = _mac_bounds(node.kernel.raw.astype(object), x.lo, x.hi)
    alo, ahi, af, _, _ = _add_bias(node.name, klo, khi, x.type.frac + node.kernel.type.frac, node.bias)
    rlo, rhi = _mac_bounds(node.recurrent.raw[:, : 2 * u].astype(object), st.min_raw, st.max_raw)
    rf = st.frac + node.recurrent.type.frac
    rb = None if node.recurrent_bias is None else Weight(node.recurrent_bias.raw[: 2 * u], node.recurrent_bias.type)
    rlo, rhi, rf, _, _ = _add_bias(node.name, rlo, rhi, rf, rb)
    lo, hi, f = _aligned_sum([(alo[: 2 * u], ahi[: 2 * u], af), (rlo, rhi, rf)])
    lo, hi = min(lo.min(), 0), max(hi.max(), 0)
    _check_bounds_fit(node.name, lo, hi)
    a = TensorSpec.exact((3 * u,), min(alo.min(), 0), max(ahi.max(), 0), af)
    return {"a": a, "zr": TensorSpec.exact((2 * u,), lo, hi, f)}


def gru_h_specs(node, x: TensorSpec, gate_fn: StepFunction) -> dict[str, TensorSpec]:
    """Exact spec of the candidate pre-activation, given the gate table."""
    u, st = node.units, node.state_type
    a = gru_zr_spec(node, x)["a"]
    glo, ghi = gate_fn.out_bounds()
    gf = gate_fn.out_type.frac
    uh = node.recurrent.raw[:, 2 * u :].astype(object)
    if node.reset_after:
        mlo, mhi = _mac_bounds(uh, st.min_raw, st.max_raw)
        rb = None if node.recurrent_bias is None else Weight(node.recurrent_bias.raw[2 * u :], node.recurrent_bias.type)
        mlo, mhi, mf, _, _ = _add_bias(node.name, mlo, mhi, st.frac + node.recurrent.type.frac, rb)
        plo, phi = _corner_bounds(glo, ghi, min(mlo.min(), 0), max(mhi.max(), 0))
        pf = gf + mf
    else:
        rhlo, rhhi = _corner_bounds(glo, ghi, st.min_raw, st.max_raw)
        plo, phi = _mac_bounds(uh, rhlo, rhhi)
        plo, phi = plo.min(), phi.max()
        pf = gf + st.frac + node.recurrent.type.frac
    lo, hi, f = _aligned_sum([(a.lo, a.hi, a.type.frac), (plo, phi, pf)])
    _check_bounds_fit(node.name, lo, hi)
    return {"pre_h": TensorSpec.exact((u,), min(lo, 0), max(hi, 0), f)}

"""The engine interface and its registry: the one place that knows which engines exist.

An engine maps an IR graph onto parameterized hardware.  It declares

* :meth:`Engine.maps`: whether a graph is its kind of model (the first registered engine that
  maps a graph gets it);
* :attr:`Engine.options`: its options, each declared once (:class:`Option`): the keyword of its
  planner, the command-line flag, the type and the check of a value;
* :meth:`Engine.plan`: the typed plan (PEs, encodings, memories, schedule) every backend, the
  cycle model and the RTL check read;
* :attr:`Engine.backends`: the modules of :mod:`hlsgen.backends` that render its plan
  (``write_rtl(plan, out_dir, ...)`` and ``write_hls(plan, out_dir)``).  They are named, not
  imported, so that engines never import a backend;
* its cycle figures, RTL check and summaries.

Adding an engine is one folder under ``hlsgen/engines/`` with an :class:`Engine` subclass and
one :func:`register` call in ``hlsgen/engines/__init__.py``; nothing else compares engine names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import HlsgenError


@dataclass(frozen=True)
class Option:
    """One engine option, declared once: planner keyword, flag, type, help, value check."""

    name: str  # the planner's keyword and the key in engine.json's "options"
    kind: type  # int or float (``fold`` is the CNN engine's LAYER=PE,SIMD mapping: dict)
    help: str
    minimum: float | None = None  # values below are refused (the planner checks the rest)
    positive: bool = False  # zero and below refused
    cli: bool = True  # also a command-line flag (False: Python API only)

    @property
    def flag(self) -> str:
        return "--" + {"target_fps": "fps", "clock_mhz": "clock"}.get(self.name, self.name).replace("_", "-")

    def check(self, value):
        """The value in its type, or a one-line error naming the flag."""
        if self.kind is dict:
            if not isinstance(value, dict):
                raise HlsgenError(f"option {self.flag}: expected LAYER=PE,SIMD pairs, got {value!r}")
            return {str(k): tuple(int(x) for x in v) for k, v in value.items()}
        if self.kind is bool:
            if not isinstance(value, bool):
                raise HlsgenError(f"option {self.name}={value!r}: expected true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HlsgenError(f"option {self.flag}={value!r}: expected a number")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise HlsgenError(f"option {self.flag}={value!r}: expected an integer")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise HlsgenError(f"option {self.flag}={value}: expected a finite number")
        if self.positive and value <= 0:
            raise HlsgenError(f"option {self.flag}={value}: must be positive")
        if self.minimum is not None and value < self.minimum:
            raise HlsgenError(f"option {self.flag}={value}: must be at least {self.minimum:g}")
        return value


class Engine:
    """Base class of the engines; see the module docstring."""

    name: str = ""  # engine.json's "engine"
    title: str = ""  # how messages name it ("sparse LSTM engine")
    options: tuple[Option, ...] = ()
    backends: tuple[str, str] = ("", "")  # (Verilog, HLS C++) modules of hlsgen.backends
    readme_template: str = ""  # the bundle README's template

    # ---------------------------------------------------------------- mapping
    def maps(self, graph) -> bool:
        raise NotImplementedError

    def check_options(self, options: dict) -> dict:
        """Options in their types; unknown ones refused, naming this engine's flags."""
        known = {o.name: o for o in self.options}
        bad = sorted(set(options) - set(known))
        if bad:
            # the Python keyword and, where there is one, the command-line flag
            takes = ", ".join(o.name + (f" ({o.flag})" if o.cli else "") for o in self.options)
            raise HlsgenError(f"option(s) {', '.join(bad)} do not apply to the {self.title} (it takes {takes})")
        return {k: known[k].check(v) for k, v in options.items() if v is not None}

    def plan(self, graph, options: dict):
        """The typed plan for checked options (raises HlsgenError naming the layer)."""
        raise NotImplementedError

    def options_from_config(self, graph, cfg, options: dict) -> tuple[dict, list[str]]:
        """Engine options a precision config implies (hls4ml's ReuseFactor), under the
        options given, and notes saying what was mapped or not used."""
        if cfg.has_reuse:
            flags = ", ".join(o.flag for o in self.options if o.cli)
            return {}, [f"ReuseFactor has no meaning for the {self.title}; its parallelism comes from {flags}"]
        return {}, []

    # ---------------------------------------------------------------- reports
    def describe(self, plan) -> dict:
        """Entries engine.json records beside the plan summary (schedule figures)."""
        return {}

    def report_data(self, graph, plan, x_raw) -> list[dict]:
        """Figures for ``hlsgen report``: dicts with ``kind`` (bar | image | line), ``title``,
        ``xlabel``, ``ylabel`` and the data (``labels``/``values``, ``matrix``, ``x``/``y``);
        an optional ``ref`` draws a horizontal line (a bound)."""
        return []

    def convert_lines(self, plan) -> list[str]:
        """What ``hlsgen convert`` prints about the plan."""
        return []

    def info_lines(self, graph, pe: int | None = None) -> list[str]:
        """What ``hlsgen info`` prints beyond the layer table."""
        return []

    def rtl_check(self, graph, plan, hardware: dict, rtl_dir, x_raw, work_dir, seed: int = 1) -> dict:
        """Simulate the RTL against the reference and the cycle model: a ``verify.json`` check."""
        raise NotImplementedError

    def verify_lines(self, check: dict) -> list[str]:
        """What ``hlsgen verify`` prints under an RTL check's line (its cycle comparison)."""
        return []

    def synth_summary(self, graph, plan, resources: dict, x_raw, what: str, verified: list, clock_mhz: float):
        """``synth.json``'s figures and the lines ``hlsgen synth`` prints: ``(dict, [str])``."""
        raise NotImplementedError


_ENGINES: list[Engine] = []


def register(engine: Engine) -> Engine:
    """Add an engine (the order of registration is the order engines are asked to map)."""
    if any(e.name == engine.name for e in _ENGINES):
        raise ValueError(f"engine {engine.name!r} registered twice")
    _ENGINES.append(engine)
    return engine


def engines() -> tuple[Engine, ...]:
    return tuple(_ENGINES)


def engine_for(graph) -> Engine | None:
    """The engine a graph maps to, or None."""
    return next((e for e in _ENGINES if e.maps(graph)), None)


def get(name: str) -> Engine:
    """The engine registered under ``name`` (as engine.json records it)."""
    for e in _ENGINES:
        if e.name == name:
            return e
    raise HlsgenError(f"unknown engine {name!r} (known: {', '.join(e.name for e in _ENGINES)})")


#: both engines: shared weights (k-means, Deep Compression) as codebook indices (EIE)
CODEBOOK = Option(
    "codebook_bits",
    int,
    "a layer with few distinct weights (k-means shared) stores codebook indices of at most B bits "
    "when they save more weight-memory bits than a lane's codebook costs (default 8; 0: never)",
    minimum=0,
)


def all_options() -> list[Option]:
    """Every engine's options, each flag once (for the command line)."""
    seen, out = set(), []
    for e in _ENGINES:
        for o in e.options:
            if o.name not in seen:
                seen.add(o.name)
                out.append(o)
    return out

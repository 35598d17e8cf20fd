"""Hardware budgets for ``hlsgen compress --budget``: what a compressed model costs in the engine.

A budget bounds the figures of the design hlsgen builds from the compressed model:

* ``cycles``: cycles per frame (CNN engine) or per time step (LSTM engine), from the engine's
  exact cycle model (the RTL tests check it cycle for cycle);
* ``dsp``: multipliers (CNN: the lanes of fixed-point layers, shift and XNOR datapaths have
  none; LSTM: one per PE, three per element-wise lane, one per Dense of the head);
* ``bram``: 18 Kb block RAMs (a 36 Kb one counts two) of the memories (CNN: weights, line
  buffers, FIFOs; LSTM: every memory image), by the rule Yosys's ``synth_xilinx`` follows
  for a registered-read memory (``bench/bram_rule.py`` checks it).

The figures (:mod:`hlsgen.engines.resources`) come from planning a draft of the compressed
model in the engine itself, so they are the figures of the design, not of a separate
estimate: with ``cycles`` or ``dsp`` the CNN engine folds for them (``target_fps``, ``dsp``),
as ``hlsgen convert`` does.  The planner is handed in from above (``hlsgen.project``): the
compression steps do not depend on the engines.

* ``lut``: LUTs have no model short of synthesis, so a ``lut`` budget runs Yosys
  (``synth_xilinx``, as ``hlsgen synth``) on a point once it meets every other limit; each
  such point costs a Yosys run (a minute or more for small designs).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HlsgenError

KEYS = ("cycles", "dsp", "bram", "lut")
#: lanes allowed in all when a budget drives the CNN engine's folding (its own default is 64)
BUDGET_LANES = 4096


@dataclass(frozen=True)
class Budget:
    cycles: float | None = None
    dsp: int | None = None
    bram: int | None = None
    lut: int | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, k) is not None for k in KEYS)

    @classmethod
    def parse(cls, items) -> Budget:
        """``["dsp=0,bram=8", "cycles=900"]`` (``--budget``, repeatable)."""
        got: dict = {}
        for item in items or []:
            for part in str(item).split(","):
                if not part.strip():
                    continue
                key, eq, value = part.strip().partition("=")
                key = key.strip().lower()
                if key not in KEYS or not eq:
                    raise HlsgenError(f"--budget {part.strip()}: give KEY=N with KEY one of {', '.join(KEYS)}")
                try:
                    v = float(value)
                except ValueError:
                    raise HlsgenError(f"--budget {part.strip()}: {value!r} is not a number") from None
                if not v >= (1 if key == "cycles" else 0) or v != v or v == float("inf"):
                    raise HlsgenError(f"--budget {part.strip()}: must be {'>= 1' if key == 'cycles' else '>= 0'}")
                if key != "cycles" and v != int(v):
                    raise HlsgenError(f"--budget {part.strip()}: {key} is a whole number")
                got[key] = v if key == "cycles" else int(v)
        return cls(**got)

    def text(self) -> str:
        return ",".join(f"{k}={getattr(self, k):g}" for k in KEYS if getattr(self, k) is not None)

    def over(self, fig: dict) -> list[str]:
        """The limits ``fig`` exceeds, each as ``key X > N`` (a figure not measured, None, is not)."""
        return [
            f"{k} {fig[k]:g} > {getattr(self, k):g}"
            for k in KEYS
            if getattr(self, k) is not None and fig.get(k) is not None and fig[k] > getattr(self, k)
        ]

    def engine_options(self, engine: str, clock_mhz: float = 200.0) -> dict:
        """Options that make the CNN engine fold for the budget, as ``hlsgen convert`` would."""
        if engine != "streaming_cnn":
            return {}
        opts: dict = {}
        if self.cycles is not None:  # the fewest lanes that meet it, however many that is
            opts["lanes"] = BUDGET_LANES
            opts["target_fps"] = clock_mhz * 1e6 / self.cycles
            opts["clock_mhz"] = clock_mhz
        if self.dsp is not None:
            opts["dsp"] = self.dsp
        return opts

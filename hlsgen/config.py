"""Precision configuration, shaped like hls4ml's: per model, per layer type, per layer name.

    Model:
      Precision: ap_fixed<16,6>            # default for weights, biases and results
      InputPrecision: ap_fixed<8,3,AP_RND_CONV,AP_SAT>
      StripSoftmax: false                  # drop a final softmax (argmax is unchanged)
      Approximate: false                   # accept float scales etc., reporting the error
      TablePrecision: float32              # evaluate non-linear functions as the framework does
                                           # (float32); float64 where a comparison runs in float64
    LayerType:
      Dense: {Precision: {weight: ap_fixed<8,2>, bias: ap_fixed<16,6>, result: ap_fixed<16,6>}}
    LayerName:
      fc1: {Precision: ap_fixed<8,3>}      # a single string sets all three

Quantizers that a QKeras layer carries always win over the config: the config only
fills what the model does not say.
"""

from __future__ import annotations

from pathlib import Path

from .errors import HlsgenError
from .fixed import FixedType

DEFAULT_PRECISION = "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"
KEYS = ("weight", "bias", "result")


#: keys of an hls4ml configuration file that name the model
HLS4ML_MODEL_KEYS = ("KerasJson", "KerasH5", "KerasModel", "OnnxModel")


def hls4ml_model(path) -> tuple[str, str | None] | None:
    """(model file, weights file or None) that an hls4ml configuration file names, relative to
    its folder; None if the YAML is not an hls4ml configuration."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not any(k in data for k in HLS4ML_MODEL_KEYS):
        return None
    for k in HLS4ML_MODEL_KEYS:
        if k in data and not isinstance(data[k], str):
            raise HlsgenError(f"{k} must be a file name", file=str(path))

    def beside(name):
        q = Path(name)
        return str(q if q.is_absolute() else p.parent / q)

    if "KerasJson" in data:
        return beside(data["KerasJson"]), beside(data["KerasH5"]) if "KerasH5" in data else None
    if "KerasModel" in data:
        return beside(data["KerasModel"]), None
    if "OnnxModel" in data:
        return beside(data["OnnxModel"]), None
    return beside(data["KerasH5"]), None  # a full model saved as .h5


#: Keras layer types (hls4ml's LayerType keys) of each IR op that ReuseFactor folds
REUSE_TYPES = {
    "Dense": ("Dense", "QDense"),
    "Conv": ("Conv1D", "Conv2D", "QConv1D", "QConv2D", "DepthwiseConv2D", "QDepthwiseConv2D"),
}


class Config:
    def __init__(self, data: dict | None = None, source: str = "config"):
        data = dict(data or {})
        self.source = source
        self.ignored: list[str] = []  # keys of an hls4ml config that hlsgen did not use
        unknown = set(data) - {"Model", "LayerType", "LayerName"}
        if unknown:
            raise HlsgenError(
                f"unknown config section(s) {sorted(unknown)}; use Model, LayerType, LayerName", file=source
            )
        for section in ("Model", "LayerType", "LayerName"):
            if data.get(section) is not None and not isinstance(data[section], dict):
                raise HlsgenError(
                    f"{section} must be a mapping (key: value lines), not {type(data[section]).__name__}", file=source
                )
        self.model = dict(data.get("Model") or {})
        self.by_type = dict(data.get("LayerType") or {})
        self.by_name = dict(data.get("LayerName") or {})
        self.strip_softmax = self._flag("StripSoftmax")
        self.approximate = self._flag("Approximate")
        self.table_precision = str(self.model.get("TablePrecision", "float32"))
        if self.table_precision not in ("float32", "float64"):
            raise HlsgenError("Model.TablePrecision must be float32 or float64", file=source)
        # validate every type string now, so that a typo fails before conversion starts
        for where, d in [("Model", {"": self.model})] + [("LayerType", self.by_type), ("LayerName", self.by_name)]:
            for key, entry in d.items():
                whole = isinstance(entry, dict) and not isinstance(entry.get("Precision"), dict)
                for k, t in self._entries(entry):
                    label = ".".join(x for x in (where, key, "Precision", "" if whole else k) if x)
                    self._parse(t, label)
        if "InputPrecision" in self.model:
            self._parse(self.model["InputPrecision"], "Model.InputPrecision")
        for where, d in [("Model", {"": self.model})] + [("LayerType", self.by_type), ("LayerName", self.by_name)]:
            for key, entry in d.items():
                if isinstance(entry, dict) and "ReuseFactor" in entry:
                    r = entry["ReuseFactor"]
                    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
                        label = ".".join(x for x in (where, str(key), "ReuseFactor") if x)
                        raise HlsgenError(f"{label} must be a whole number >= 1, not {r!r}", file=source)

    def reuse_factor(self, layer_name: str, op: str) -> int | None:
        """hls4ml's ReuseFactor for an IR layer (by name, then by the Keras types of its op,
        then the Model default): how many cycles each multiplier serves one output item."""
        types = REUSE_TYPES.get(op, ())
        for entry in (self.by_name.get(layer_name), *(self.by_type.get(t) for t in types), self.model):
            if isinstance(entry, dict) and "ReuseFactor" in entry:
                return int(entry["ReuseFactor"])
        return None

    @property
    def has_reuse(self) -> bool:
        entries = [self.model, *self.by_type.values(), *self.by_name.values()]
        return any(isinstance(e, dict) and "ReuseFactor" in e for e in entries)

    def _flag(self, key: str) -> bool:
        v = self.model.get(key, False)
        if not isinstance(v, bool):
            raise HlsgenError(f"Model.{key} must be true or false, not {v!r}", file=self.source)
        return v

    @staticmethod
    def _entries(entry):
        if not isinstance(entry, dict):
            return []
        p = entry.get("Precision")
        if p is None:
            return []
        if isinstance(p, dict):
            return list(p.items())
        return [(k, p) for k in KEYS]

    def _parse(self, text, where) -> FixedType:
        if not isinstance(text, str):
            raise HlsgenError(f'{where}: a type is written like "ap_fixed<16,6>", not {text!r}', file=self.source)
        try:
            return FixedType.parse(text)
        except ValueError as e:
            raise HlsgenError(f"{where}: {e}", file=self.source) from None

    @classmethod
    def from_hls4ml(cls, hls: dict, source: str) -> Config:
        """An hls4ml ``HLSConfig`` (Model / LayerType / LayerName with Precision, ReuseFactor,
        Strategy, ...): the precisions are kept; every other key is named in ``ignored``."""
        ignored: list[str] = []
        data: dict = {}
        for section, value in hls.items():
            if section not in ("Model", "LayerType", "LayerName") or not isinstance(value, dict):
                ignored.append(f"HLSConfig.{section}")
                continue
            entries = {"": value} if section == "Model" else value
            out: dict = {}
            for key, entry in entries.items():
                where = ".".join(x for x in ("HLSConfig", section, str(key)) if x)
                if not isinstance(entry, dict):
                    ignored.append(where)
                    continue
                kept: dict = {}
                for k, v in entry.items():
                    if k == "ReuseFactor":
                        kept[k] = v
                    elif k != "Precision":
                        ignored.append(f"{where}.{k}")
                    elif isinstance(v, dict):
                        default = v.get("default")
                        p = {t: v.get(t, default) for t in KEYS if v.get(t, default) not in (None, "auto")}
                        ignored += [f"{where}.Precision.{t}" for t in v if t not in (*KEYS, "default")]
                        ignored += [f"{where}.Precision.{t} (auto)" for t in KEYS if v.get(t, default) == "auto"]
                        if p:
                            kept["Precision"] = p
                    elif v == "auto":
                        ignored.append(f"{where}.Precision (auto)")
                    else:
                        kept["Precision"] = v
                out[key] = kept
            data[section] = out[""] if section == "Model" else out
        cfg = cls(data, source)
        cfg.ignored = ignored
        return cfg

    @classmethod
    def load(cls, path) -> Config:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise HlsgenError("config file not found", file=str(path))
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise HlsgenError(f"not valid YAML ({str(e).splitlines()[0]})", file=str(path)) from None
        if data is not None and not isinstance(data, dict):
            raise HlsgenError("a config must be a mapping with Model / LayerType / LayerName", file=str(path))
        if data and any(k in data for k in ("HLSConfig", *HLS4ML_MODEL_KEYS)):  # an hls4ml configuration file
            if not isinstance(data.get("HLSConfig") or {}, dict):
                raise HlsgenError("HLSConfig must be a mapping", file=str(path))
            cfg = cls.from_hls4ml(data.get("HLSConfig") or {}, str(path))
            cfg.ignored = [k for k in data if k not in ("HLSConfig", *HLS4ML_MODEL_KEYS)] + cfg.ignored
            return cfg
        return cls(data, str(path))

    @classmethod
    def coerce(cls, cfg) -> Config:
        if cfg is None:
            return cls()
        if isinstance(cfg, Config):
            return cfg
        if isinstance(cfg, dict):
            return cls(cfg)
        return cls.load(cfg)

    def explicit_precision(self, layer_name: str, layer_type: str, key: str) -> FixedType | None:
        """The type given for ``key`` of this very layer (by name or type), without the Model default."""
        for entry in (self.by_name.get(layer_name), self.by_type.get(layer_type)):
            for k, t in self._entries(entry):
                if k == key:
                    return self._parse(t, f"{layer_name}.{key}")
        return None

    def precision(self, layer_name: str, layer_type: str, key: str) -> FixedType | None:
        """The configured type for weight/bias/result of a layer, most specific first."""
        t = self.explicit_precision(layer_name, layer_type, key)
        if t is not None:
            return t
        if "Precision" in self.model:
            return self._parse(self.model["Precision"], "Model.Precision")
        return None

    def input_precision(self, layer_name: str | None = None) -> FixedType | None:
        """Model.InputPrecision, or (hls4ml's way) the result precision given to the input layer by name."""
        if layer_name is not None:
            for k, t in self._entries(self.by_name.get(layer_name)):
                if k == "result":
                    return self._parse(t, f"LayerName.{layer_name}.Precision")
        if "InputPrecision" in self.model:
            return self._parse(self.model["InputPrecision"], "Model.InputPrecision")
        return None

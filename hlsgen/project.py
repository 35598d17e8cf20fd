"""A converted model on disk: the IR, a report, and the reference to run it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .config import Config
from .errors import HlsgenError
from .ir import Graph, IRError
from .names import comment_text
from .progress import step
from .reference import execute

IR_FILE = "model.json"
REPORT_FILE = "report.json"
MARKER = ".hlsgen"


class Project:
    """The result of :func:`convert`, shaped like an hls4ml model: ``predict``, ``trace``."""

    def __init__(self, graph: Graph, output_dir: str | Path | None = None, engine: dict | None = None):
        self.graph = graph
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.engine_options = engine  # None: no hardware engine for this model
        self.hardware: dict | None = None  # engine.json of a written project (top, sources, ...)
        self._plan = None

    # ----------------------------------------------------------- hardware
    @property
    def engine(self) -> str | None:
        """The name of the hardware engine this model maps to (``sparse_lstm``, ...), or None."""
        e = self.engine_spec
        return e.name if e is not None else None

    @property
    def engine_spec(self):
        """The registered :class:`hlsgen.engines.Engine` this model maps to, or None."""
        from .engines import engine_for

        return engine_for(self.graph)

    @property
    def plan(self):
        """The engine plan (raises HlsgenError, naming the layer, when the model cannot map)."""
        if self._plan is None:
            e = self.engine_spec
            if e is None:
                raise HlsgenError("no hardware engine for this model yet (LSTM, or a chain with Conv/Pool layers)")
            self._plan = e.plan(self.graph, e.check_options(dict(self.engine_options or {})))
        return self._plan

    # ----------------------------------------------------------- execution
    def _input_error(self, e: Exception) -> HlsgenError:
        return HlsgenError(str(e), layer=self.graph.input.name, layer_type="Input")

    @property
    def is_onnx(self) -> bool:
        return self.graph.meta.get("frontend") == "onnx"

    def predict(self, x) -> np.ndarray:
        """Real outputs for real inputs (inputs quantized to the input type on entry).

        For a model converted from ONNX, inputs and outputs are in the ONNX model's layout
        and element types: the output equals ONNX Runtime's.
        """
        try:
            if self.is_onnx:
                from .frontends.onnx import output_to_onnx

                return output_to_onnx(self.graph, execute.predict_int(self.graph, self.quantize_input(x)))
            return execute.predict(self.graph, x)
        except ValueError as e:
            raise self._input_error(e) from None

    def predict_int(self, x_raw) -> np.ndarray:
        """Raw output integers for raw input integers (the hardware's view)."""
        try:
            return execute.predict_int(self.graph, x_raw)
        except ValueError as e:
            raise self._input_error(e) from None

    def trace(self, x) -> dict[str, np.ndarray]:
        """Real values of every node's output for real inputs."""
        try:
            raws = execute.trace(self.graph, self.quantize_input(x))
        except ValueError as e:
            raise self._input_error(e) from None
        return {n.name: n.spec.type.to_float(raws[n.name]) for n in self.graph}

    def quantize_input(self, x) -> np.ndarray:
        """Raw input integers the hardware receives for real inputs (ONNX layout for ONNX models)."""
        try:
            if self.is_onnx:
                from .frontends.onnx import quantize_input

                return quantize_input(self.graph, x)
            return execute.quantize_input(self.graph, x)
        except ValueError as e:
            raise self._input_error(e) from None

    @property
    def input_type(self):
        return self.graph.input.type

    @property
    def output_type(self):
        return self.graph.output_spec.type

    # ----------------------------------------------------------- files
    def report(self) -> dict:
        g = self.graph
        return {
            "source": g.meta.get("source"),
            "exact": g.meta.get("exact", True),
            "approximations": g.meta.get("approximations", []),
            "measured_error": g.meta.get("measured_error"),
            "notes": g.meta.get("notes", []),
            "input": {"shape": list(g.input.shape), "type": str(g.input.type)},
            "output": {"shape": list(g.output_spec.shape), "type": str(g.output_spec.type)},
            "layers": g.table(),
        }

    def write(self, output_dir) -> Path:
        """Write the project atomically: a half-written folder never looks complete.

        The new project is written beside ``output_dir`` into a temporary folder; an existing
        project is moved aside, the new one renamed in, and only then the old one deleted (an
        interrupt leaves either the old or the new project, and the next run cleans up what
        was left).  Files in an existing project that hlsgen did not write (the user's own,
        ``vivado/build`` and other tool run folders) move into the new one.  A lock file
        beside the folder keeps two writers apart.
        """
        out = Path(output_dir)
        if out.is_symlink():
            raise HlsgenError("output path is a symbolic link; give the real folder", file=str(out))
        if out.exists():
            if not out.is_dir():
                raise HlsgenError("output path exists and is not a directory", file=str(out))
            if any(out.iterdir()) and not (out / MARKER).exists():
                raise HlsgenError(
                    "output directory exists, is not empty and was not written by hlsgen; choose another -o",
                    file=str(out),
                )
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HlsgenError(f"cannot create the output folder ({e.strerror})", file=str(out)) from None
        with _lock(out):
            _clean_stale(out)
            try:
                tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
            except OSError as e:
                raise HlsgenError(f"cannot write beside the output folder ({e.strerror})", file=str(out)) from None
            old = None
            try:
                _chmod_umask(tmp)
                self.graph.save(tmp / IR_FILE)
                (tmp / REPORT_FILE).write_text(json.dumps(self.report(), indent=1) + "\n")
                readme = _readme(self)
                if self.engine_options is not None and self.engine is not None:
                    from .bundle import write_bundle

                    b = write_bundle(self.graph, self.engine_spec, self.plan, tmp, self.engine_options)
                    self.hardware = b["engine"]
                    readme += "\n" + b["readme"]
                (tmp / "README.md").write_text(readme)
                (tmp / MARKER).write_text("hlsgen project\n")
                if out.exists():
                    _keep_user_files(out, tmp)
                    old = out.parent / f".{out.name}.old-{os.getpid()}"
                    out.rename(old)
                tmp.rename(out)
            except BaseException:
                if old is not None and old.exists() and not out.exists():
                    old.rename(out)  # put the previous project back
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        self.output_dir = out
        return out

    @classmethod
    def load(cls, output_dir) -> Project:
        d = Path(output_dir)
        f = d / IR_FILE
        if not d.exists():
            raise HlsgenError("project directory not found", file=str(d))
        if not f.is_file():
            raise HlsgenError(f"no {IR_FILE} here: not an hlsgen project (run `hlsgen convert` first)", file=str(d))
        try:
            proj = cls(Graph.load(f), d)
        except (IRError, ValueError, KeyError, TypeError) as e:
            raise HlsgenError(f"corrupt IR ({e})", file=str(f)) from None
        ef = d / "engine.json"
        if ef.is_file():
            try:
                proj.hardware = json.loads(ef.read_text())
                proj.engine_options = proj.hardware["options"]
                for key in ("top", "hls_top", "sources", "obw"):
                    proj.hardware[key]
            except (ValueError, KeyError, TypeError) as e:
                raise HlsgenError(f"corrupt engine description ({e})", file=str(ef)) from None
        return proj


# what hlsgen writes at the top of a project (anything else there is the user's or a tool's)
GENERATED = {IR_FILE, REPORT_FILE, MARKER, "README.md", "engine.json", "rtl", "hls", "vivado", "vitis_hls", "quartus"}
GENERATED |= {"work", "verify.json", "synth.json"}  # results of the old design: stale once it is replaced
GENERATED_SUFFIXES = (".v", ".mem", ".mif", ".f", ".h", ".cpp", ".tcl", ".qsf", ".qpf", ".sdc", ".core", ".json", ".md")


@contextlib.contextmanager
def _lock(out: Path):
    """An exclusive lock on ``.<name>.lock`` beside the output folder while the project is
    written (the loser fails at once); the lock file is removed again, so nothing stays
    outside the output folder."""
    import fcntl

    path = out.parent / f".{out.name}.lock"
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
    except OSError as e:
        raise HlsgenError(f"cannot create a lock beside the output folder ({e.strerror})", file=str(out)) from None
    busy = HlsgenError("another hlsgen is writing this project now; try again when it is done", file=str(out))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise busy from None
        try:  # the holder before us may have removed the file we opened: then it is not our lock
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise busy
        except FileNotFoundError:
            raise busy from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still holding it
    finally:
        os.close(fd)


def _clean_stale(out: Path):
    """Temporary and set-aside folders of earlier runs that were killed (we hold the lock)."""
    for p in out.parent.glob(f".{out.name}.*"):
        if p.is_dir() and (".tmp-" in p.name or ".old-" in p.name):
            if ".old-" in p.name and not out.exists():
                p.rename(out)  # killed between the two renames: the previous project comes back
            else:
                shutil.rmtree(p, ignore_errors=True)


def _chmod_umask(path: Path):
    """mkdtemp creates 0700; a project folder gets the permissions the user's umask gives."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod(0o777 & ~mask)


def _keep_user_files(old: Path, new: Path):
    """Move what hlsgen did not write from the old project into the new one: unknown top-level
    entries, and unknown entries inside the generated folders (e.g. vivado/build)."""
    for entry in old.iterdir():
        target = new / entry.name
        if entry.name not in GENERATED and not entry.name.endswith(".core"):
            if not target.exists():
                entry.rename(target)
        elif entry.is_dir() and target.is_dir():
            for sub in entry.iterdir():
                t = target / sub.name
                if not t.exists() and not sub.name.endswith(GENERATED_SUFFIXES):
                    sub.rename(t)


def _readme(p: Project) -> str:
    g = p.graph
    rows = "\n".join(
        f"| {comment_text(r['name'])} | {r['op']} | {r['shape']} | `{r['type']}` | {r['weights']} |" for r in g.table()
    )
    exact = (
        "exact (bit-for-bit equal to the source framework)"
        if g.meta.get("exact", True)
        else ("APPROXIMATE: " + "; ".join(g.meta.get("approximations", [])))
    )
    return f"""# hlsgen project

Converted from `{comment_text(g.meta.get("source"))}` by hlsgen.  Conversion: {exact}.

| file | what it is |
|---|---|
| `{IR_FILE}` | the IR: typed nodes, integer weights, exact activation tables (lossless JSON) |
| `{REPORT_FILE}` | layer table, types, approximations, notes |

Run the reference: `hlsgen predict {p.output_dir.name if p.output_dir else "OUT"} X.npy -o Y.npy`
(`--raw` for raw integers), or in Python `hlsgen.load(path).predict(x)`.

| layer | op | shape | output type | weights |
|---|---|---|---|---|
{rows}
"""


def convert(
    model_or_path,
    output_dir=None,
    config=None,
    frontend: str | None = None,
    engine: dict | None = None,
    hardware: bool = True,
    weights=None,
) -> Project:
    """Convert a model (Keras/QKeras object, ``.h5`` / ``.keras`` path, or zoo name) to a Project.

    Parameters
    ----------
    model_or_path : keras.Model | str | Path
        The model, or its file.  A zoo model's name (``lstm_sparse``) is accepted too.
    output_dir : str | Path, optional
        Where to write the project (IR JSON, report).  Nothing is written when None.
    config : dict | str | Path | Config, optional
        Precision configuration (see :mod:`hlsgen.config`).
    engine : dict, optional
        Hardware engine options, e.g. ``{"pe": 8, "index_bits": 4}`` for the sparse LSTM
        engine.  With an output directory, the RTL, HLS C++ and vendor projects are written
        for models an engine supports (defaults used when None).
    hardware : bool
        False: write the IR and report only, even when an engine supports the model.
    weights : str | Path, optional
        The weights ``.h5`` of a model given as Keras JSON (hls4ml's examples ship them
        this way); by default ``X_weights.h5`` or ``X.h5`` beside ``X.json``.
    """
    src = resolve_model(model_or_path)
    if isinstance(src, str) and Path(src).suffix.lower() in (".yml", ".yaml") and Path(src).is_file():
        # an hls4ml configuration file: the model it names, its HLSConfig precisions
        from .config import hls4ml_model

        named = hls4ml_model(src)
        if named is None:
            raise HlsgenError(
                "a YAML file without KerasJson, KerasH5, KerasModel or OnnxModel: not an hls4ml configuration "
                "(give the model file, and this file with --config)",
                file=src,
            )
        if config is None:
            config = src
        src, weights = named[0], weights if weights is not None else named[1]
    cfg = Config.coerce(config)
    if isinstance(src, str):
        sp = Path(src)
        if sp.is_dir():
            raise HlsgenError("is a directory, not a model file (.h5, .keras or .onnx)", file=src)
        if sp.exists() and not sp.is_file():
            raise HlsgenError("not a regular file (a pipe or a device?); give a model file", file=src)
    kind = frontend or _frontend_of(src)
    if weights is not None and not (isinstance(src, str) and Path(src).suffix.lower() == ".json"):
        raise HlsgenError("--weights goes with a model .json; this model holds its own weights", file=str(src))
    if kind == "keras3":
        from .frontends.keras3 import convert_keras3

        graph = convert_keras3(src, cfg)
    elif kind == "keras":
        from .frontends.keras import convert_keras

        if isinstance(src, str) and Path(src).suffix.lower() == ".json" and Path(src).is_file():
            from .frontends.keras.loader import weights_beside

            weights = weights if weights is not None else weights_beside(Path(src))
        graph = convert_keras(src, cfg, weights)
    elif kind == "onnx":
        from .frontends.onnx import convert_onnx

        if not isinstance(src, str):
            raise HlsgenError("give an ONNX model as a file path")
        graph = convert_onnx(src, cfg)
    else:
        raise HlsgenError(f"no frontend for this model ({kind})", file=str(src))
    if isinstance(src, str) and Path(src).is_file():
        # absolute, so that verify finds it from any directory; the hash tells a replaced file
        graph.meta["source"] = str(Path(src).resolve())
        graph.meta["source_sha256"] = file_sha256(src)
        if weights is not None and Path(weights).is_file():
            graph.meta["weights"] = str(Path(weights).resolve())
            graph.meta["weights_sha256"] = file_sha256(weights)
    if cfg.ignored:
        graph.meta.setdefault("notes", []).append(
            f"hls4ml keys not used by hlsgen ({cfg.source}): {', '.join(cfg.ignored)}"
        )
    proj = Project(graph)
    if proj.engine is not None and hardware:
        options = dict(engine or {})
        derived, notes = proj.engine_spec.options_from_config(graph, cfg, options)
        graph.meta.setdefault("notes", []).extend(notes)
        proj.engine_options = {**options, **derived}
        try:
            with step(f"planning the {proj.engine_spec.title}"):
                _ = proj.plan  # refuse unsupported shapes/options before writing anything
        except HlsgenError as e:
            if engine:  # the user asked for hardware with these options: say why it cannot be
                raise e.located(file=str(src)) from None
            # the IR and reference still hold; say why there is no hardware
            proj.engine_options = None
            graph.meta.setdefault("notes", []).append(f"no hardware: {e}")
    elif engine:
        raise HlsgenError("no hardware engine for this model yet: engine options do not apply", file=str(src))
    if output_dir is not None:
        with step(f"writing {output_dir}"):
            proj.write(output_dir)
    return proj


def load(output_dir) -> Project:
    """Open a project written by :func:`convert`."""
    return Project.load(output_dir)


def file_sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_model(m):
    if isinstance(m, (str, Path)):
        p = Path(m)
        if not p.exists() and p.suffix == "" and "/" not in str(m):
            from . import zoo

            if str(m) in zoo.NAMES + zoo.FLOAT:
                return str(zoo.path(str(m)))
            if str(m) in zoo.GENERATED:
                raise HlsgenError(
                    f"{m} is a generated zoo model (random weights, 6 MB): write it first with "
                    f"`hlsgen zoo {m} -o {m}.h5` and give that file",
                    file=str(m),
                )
        return str(m)
    return m


def _frontend_of(src) -> str:
    if isinstance(src, str):
        suffix = Path(src).suffix.lower()
        if suffix == ".onnx":
            return "onnx"
        if suffix in (".keras", ".h5", ".hdf5") and Path(src).is_file():
            from .frontends.keras3.client import is_keras3

            if is_keras3(src):
                return "keras3"
        return "keras"
    return "keras"


def design_figures(model, config=None, options_for=None, lut: bool = False) -> dict:
    """The figures of the design hlsgen would build for ``model`` (a Keras model or file),
    planned and not written: cycles per frame or step, multipliers, 18 Kb block RAMs
    (:mod:`hlsgen.engines.resources`).  ``options_for(engine name)`` gives the engine's
    options.  With ``lut``, the design is written to a temporary folder and Yosys
    (``synth_xilinx``) adds ``lut`` (and its own ``yosys`` counts).  What ``hlsgen compress
    --budget`` bounds."""
    import tempfile
    from importlib import import_module

    from .engines.resources import figures

    proj = convert(model, None, config, hardware=False)
    if proj.engine is None:
        raise HlsgenError("no hlsgen engine maps this model, so it has no hardware figures")
    options = options_for(proj.engine_spec.name) if options_for else {}
    proj.engine_options = options
    fig = {**figures(proj.plan, proj.engine_spec.describe), "lut": None}
    if lut:
        from .synth import run_yosys

        # the RTL of the plan above (planned once), not a whole project
        backend = import_module(f"{__package__}.backends.{proj.engine_spec.backends[0]}")
        with tempfile.TemporaryDirectory(prefix="hlsgen_budget_") as tmp:
            rtl = backend.write_rtl(proj.plan, Path(tmp) / "rtl")
            res = run_yosys(Path(tmp) / "rtl", rtl["top"], rtl["sources"], "xilinx")
        fig["lut"] = res["LUT"]
        fig["yosys"] = {k: res[k] for k in ("LUT", "FF", "DSP", "BRAM")}
    return fig

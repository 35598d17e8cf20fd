"""The ``hlsgen`` command.

    hlsgen info MODEL                         layer table: type, shape, bits, density
    hlsgen convert MODEL -o OUT [--config F]  write the IR and a report to OUT
    hlsgen predict OUT X.npy -o Y.npy [--raw] run the integer reference
    hlsgen verify OUT [--inputs X.npy]        reference against the source framework
    hlsgen sweep MODEL --grid pe=4,8 -o DIR   engine options on Dask, cached; CSV, JSON, Pareto PNG
    hlsgen report OUT                         OUT/report/index.html with figures
    hlsgen compress MODEL -o OUT.h5           prune, share, factor, quantize, distill; compress.json

MODEL is a ``.h5`` / ``.keras`` file or a zoo name (``lstm_sparse``, ``cnn_small``, ``mlp_tiny``).
Errors in the user's input print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import HlsgenError

EXIT_USAGE = 2


def _print_table(rows, cols):
    from .table import format_table

    print(format_table(rows, cols))


def cmd_info(args):
    from .project import convert

    proj = convert(args.model, None, args.config, weights=args.weights)
    g = proj.graph
    print(f"{g.meta.get('source')}: {'exact' if g.meta.get('exact') else 'APPROXIMATE'}")
    _print_table(g.table(), ["name", "op", "shape", "type", "weights"])
    for n in g.meta.get("notes", []):
        print(f"note: {n}")
    engine = proj.engine_spec
    if engine is not None:
        for line in engine.info_lines(g, args.pe):
            print(line)
    for a in g.meta.get("approximations", []):
        print(f"approximation: {a}")
    return 0


def engine_options(args) -> dict:
    """The engine options given on the command line (each engine declares its own)."""
    from .engines import all_options

    opts = {}
    for o in all_options():
        if not o.cli:
            continue
        v = getattr(args, o.name, None)
        if v is not None:
            opts[o.name] = _parse_fold(v) if o.kind is dict else v
    return opts


def cmd_convert(args):
    from .project import convert

    opts = engine_options(args)
    proj = convert(
        args.model,
        args.output,
        args.config,
        engine=None if args.no_hw else opts,
        hardware=not args.no_hw,
        weights=args.weights,
    )
    g = proj.graph
    print(f"wrote {proj.output_dir} ({len(g.nodes)} nodes, {'exact' if g.meta.get('exact') else 'APPROXIMATE'})")
    for n in g.meta.get("notes", []):
        if n.startswith("hls4ml keys") or "ReuseFactor" in n:
            print(f"  note: {n}")
    from .verify import overflow_line

    for name, c in ((g.meta.get("measured_error") or {}).get("overflow") or {}).items():
        print(f"  warning: {overflow_line(name, c)} (measured on the error-measurement inputs)")
    if args.no_hw:
        return 0
    if proj.engine_spec is not None and proj.engine_options is None:
        for n in g.meta.get("notes", []):
            if n.startswith("no hardware"):
                print(f"  {n}")
    elif proj.engine_spec is not None:
        for line in proj.engine_spec.convert_lines(proj.plan):
            print(line)
    else:
        print("  no hardware engine for this model yet (IR and reference only)")
    return 0


def _parse_fold(items):
    """--fold LAYER=PE,SIMD (repeatable) -> {layer: (pe, simd)}."""
    out = {}
    for it in items:
        name, _, val = it.partition("=")
        parts = val.split(",")
        if not name or len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise HlsgenError(f"--fold {it!r}: write LAYER=PE,SIMD (for example conv1=4,9)")
        out[name] = (int(parts[0]), int(parts[1]))
    return out


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (the error names the flag)."""

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{v} must be at least {minimum}")
        return v

    return parse


def _load_npy(path, what):
    p = Path(path)
    if not p.is_file():
        raise HlsgenError(f"{what} file not found", file=str(path))
    try:
        a = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError on corrupt files
        raise HlsgenError(f"not a readable .npy array ({type(e).__name__})", file=str(path)) from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        kind = "complex numbers" if getattr(a, "dtype", None) is not None and a.dtype.kind == "c" else "no real numbers"
        raise HlsgenError(
            f"the array holds {kind} (dtype {getattr(a, 'dtype', '?')}); give real values", file=str(path)
        )
    return a


def cmd_predict(args):
    from .project import load

    proj = load(args.project)
    x = _load_npy(args.inputs, "input")
    try:
        y = proj.predict_int(x) if args.raw else proj.predict(x)
    except HlsgenError as e:
        raise e.located(file=args.inputs) from None
    out = Path(args.output)
    if out.suffix != ".npy":  # numpy.save would add it: say the name actually written
        out = out.with_name(out.name + ".npy")
    np.save(out, y)
    print(f"wrote {out} {y.shape} ({'raw integers of ' if args.raw else ''}{proj.output_type})")
    return 0


def cmd_verify(args):
    from .project import load
    from .verify import default_inputs, verify_against_source, verify_hardware

    proj = load(args.project)
    x = _load_npy(args.inputs, "input") if args.inputs else None
    what = "given inputs"
    if x is None:
        x, what = default_inputs(proj)
    else:
        try:
            proj.quantize_input(x)
        except HlsgenError as e:
            raise e.located(file=args.inputs) from None
    source = proj.graph.meta.get("source")
    hw = args.csim or args.rtl
    from .project import file_sha256

    meta = proj.graph.meta
    for key, label in (("source", "source model"), ("weights", "weights file")):
        f, digest = meta.get(key), meta.get(f"{key}_sha256")
        if f and digest and Path(f).is_file() and file_sha256(f) != digest:
            raise HlsgenError(
                f"the {label} changed since this project was converted (its SHA-256 differs); "
                "convert it again to compare",
                file=f,
            )
    if source and Path(source).exists():
        result = verify_against_source(proj, x)
        for c in result["checks"]:
            c["inputs"] = what
    elif hw:
        result = {"equal": True, "checks": [], "notes": [f"source model {source} not available: not compared"]}
    else:
        result = verify_against_source(proj, x)
    if hw:
        checks = verify_hardware(proj, x, what, args.csim, args.rtl, args.rtl_count)
        result["checks"] += checks
        result["equal"] = result["equal"] and all(
            c["mismatches"] == 0 and c.get("cycles_equal_model", True) for c in checks
        )
    out = Path(args.json) if args.json else Path(args.project) / "verify.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for note in result.get("notes", []):
        print(f"note: {note}")
    for check in result["checks"]:
        status = "EQUAL" if check["mismatches"] == 0 else "DIFFERENT"
        print(
            f"{check['name']}: {check['vectors']} vectors, {check['values']} values, "
            f"{check['mismatches']} mismatches -> {status}"
        )
        if check.get("cycles") and proj.hardware:
            from .engines import get

            for line in get(proj.hardware["engine"]).verify_lines(check):
                print(line)
    print(f"wrote {out}")
    return 0 if result["equal"] else 1


def cmd_sweep(args):
    from .project import convert
    from .sweep import parse_grid, sweep

    proj = convert(args.model, None, args.config, hardware=False)
    engine = proj.engine_spec
    if engine is None:
        raise HlsgenError("no hardware engine for this model: nothing to sweep", file=str(args.model))
    grid = parse_grid(args.grid or [], engine)  # before anything is written
    results = sweep(args.model, grid, args.output, args.config, args.synth, args.rtl or 0, args.workers, args.scheduler)
    failed = [r for r in results if r.get("error")]
    cached = sum(1 for r in results if r.get("cached"))
    print(f"{len(results)} points ({cached} from the cache), {len(failed)} failed")
    for r in failed:
        print(f"  failed {r['options']}: {r['error']}")
    out = Path(args.output)
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.json'}, {out / 'pareto.png'}")
    return 0


def cmd_report(args):
    from .html_report import write_report
    from .project import load

    page = write_report(load(args.project))
    print(f"wrote {page}")
    return 0


def cmd_synth(args):
    from .project import load
    from .report import synth_summary

    proj = load(args.project)
    return synth_summary(proj, targets=args.target)


def cmd_prune(args):
    from .compress.keras_prune import prune_model
    from .project import resolve_model

    return prune_model(
        resolve_model(args.model), args.output, args.pe, args.density, args.method, args.epochs, args.data
    )


def _layer_values(items, flag, kind=float):
    """``[0.1, "fc2=0.5"]`` -> (default, {layer: value})."""
    default, per = None, {}
    for item in items or []:
        for part in str(item).split(","):
            name, eq, val = part.strip().rpartition("=")
            try:
                v = kind(val)
            except ValueError:
                raise HlsgenError(f"{flag} {part}: give a number, or LAYER=number") from None
            if eq:
                per[name] = v
            else:
                default = v
    return default, per


def _block(text):
    """``--block RxC`` -> (R, C); None when not given."""
    if text is None:
        return None
    r, x, c = str(text).lower().partition("x")
    bad = HlsgenError(f"--block {text}: give RxC, e.g. 4x4, two whole numbers >= 1 (rows = inputs, columns = outputs)")
    try:
        block = (int(r), int(c))
    except ValueError:
        raise bad from None
    if not x or min(block) < 1:
        raise bad
    return block


def cmd_compress(args):
    from .compress.budget import Budget
    from .compress.pipeline import Options, compress
    from .compress.quantize import Scheme
    from .project import design_figures, resolve_model

    density, per = _layer_values(args.density, "--density")
    searched = "--budget" if args.budget else "--target-ratio" if args.target_ratio is not None else None
    if density is not None and searched:
        raise HlsgenError(
            f"--density {density:g} with {searched}: the search chooses the densities; give LAYER=D to fix a layer's"
        )
    opts = Options(
        steps=tuple(s.strip() for s in args.steps.split(",") if s.strip()),
        density=0.1 if density is None else density,
        layer_density=per,
        pe=args.pe,
        block=_block(args.block),
        cluster_bits=args.cluster_bits,
        energy=args.energy,
        rank=args.rank,
        scheme=Scheme.parse(args.quantize, args.act_bits),
        epochs=args.epochs,
        teacher=args.teacher,
        temperature=args.temperature,
        attention=args.attention,
        alpha=args.alpha,
        seed=args.seed,
        target_ratio=args.target_ratio,
        accuracy_floor=args.accuracy_floor,
        budget=Budget.parse(args.budget),
    )
    report = args.report or str(Path(args.output).with_suffix(".json"))
    plot = str(Path(report).with_suffix(".png"))
    shown = sys.stderr.isatty()  # the search's points as it goes, on a terminal (the table comes at the end)
    r = compress(
        resolve_model(args.model), args.output, args.data, opts, report, plot,
        (lambda line: print(line, file=sys.stderr)) if shown else None, design_figures,
    )  # fmt: skip
    for h in r["history"]:
        print(
            f"{h['step']:9s} accuracy {h['accuracy']:.4f}  {h['stored_bits']:>10,d} bits  x{h['compression_ratio']:.1f}"
        )
    print(
        f"compression {r['compression_ratio']:.1f}x against float32 ({r['compression_ratio_huffman']:.1f}x with "
        f"Huffman coding); accuracy {r['accuracy_before']:.4f} -> {r['accuracy_after']:.4f} on {r['test_samples']} "
        "held-out samples"
    )
    hw = r["hlsgen"]
    if hw["converts"]:
        how = f" (convert with the config {hw['config']})" if hw.get("config") else ""
        print(
            f"hlsgen reference: accuracy {hw['accuracy']:.4f}, {hw['class_mismatches_against_keras']} classes "
            f"differ from Keras{how}"
        )
    else:
        print(f"note: not converted for hardware: {hw['why']}")
    for n in r["notes"]:
        print(f"note: {n}")
    if r["search"] and opts.budget:
        from .table import format_table

        rows = [
            {
                "step": p["step"],
                "estimate": f"{p['accuracy_estimate']:.4f}",
                f"cycles/{p['per']}": f"{p['cycles']:g}",
                "mult.": p["dsp"],
                "BRAM18": p["bram"],
                **({"LUT": "" if p["lut"] is None else p["lut"]} if opts.budget.lut is not None else {}),
                "pareto": "*" if p["pareto"] else "",
            }
            for p in r["search"]
        ]
        print(format_table(rows, list(rows[0])))
        hw = r["hardware"]
        o = r["options"]
        what, chosen = ("codebook bits", o["codebook_bits"]) if o["codebook_bits"] else ("weight bits", o["layer_bits"])
        bits = ", ".join(f"{k} {v}" for k, v in chosen.items())
        dens = ", ".join(f"{k} {v:g}" for k, v in r["search"][-1]["densities"].items())
        print(
            f"--budget {opts.budget.text()}: densities {dens}" + (f"; {what} {bits}" if bits else "") + "; "
            f"the design: {hw['cycles']:g} cycles/{hw['per']}, {hw['dsp']} multipliers, {hw['bram']} BRAM18"
            + (f", {hw['lut']} LUT (Yosys)" if hw.get("lut") is not None else "")
        )
    elif r["search"]:
        last = r["search"][-1]
        chosen = ", ".join(f"{k} {v:g}" for k, v in last["densities"].items())
        print(f"densities for x{args.target_ratio:g} (estimated x{last['ratio']:.1f}): {chosen}")
    print(f"wrote {args.output}, {report}, {plot}")
    return 0


def cmd_zoo(args):
    from . import zoo

    if args.name is None:
        for n in zoo.NAMES + zoo.FLOAT + zoo.GENERATED:
            about = "trained on digits"
            if n in zoo.GENERATED:
                about = "generated: random weights, hardware figures only"
            elif n in zoo.FLOAT:
                about = "float counterpart, trained on digits: an input of hlsgen compress"
            print(f"{n:12s} {about}")
        return 0
    if args.output is None:
        raise HlsgenError("give -o FILE.h5 (where to write the model)")
    try:
        out = zoo.write(args.name, args.output)
    except ValueError as e:
        raise HlsgenError(str(e)) from None
    print(f"wrote {out}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with hlsgen's promise: a usage error is one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"hlsgen: error: {self.prog}: {message} (see {self.prog} --help)\n")


WEIGHTS_HELP = "weights .h5 of a model given as Keras JSON (default: X_weights.h5 or X.h5 beside X.json)"


def build_parser():
    p = _Parser(prog="hlsgen", description="Compressed neural networks to bit-exact FPGA hardware.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("info", help="layer table of a model")
    s.add_argument("model")
    s.add_argument("--config")
    s.add_argument("--weights", help=WEIGHTS_HELP)
    s.add_argument("--pe", type=_count(1), help="report the LSTM load balance over this many PEs")
    s.set_defaults(fn=cmd_info)
    s = sub.add_parser("convert", help="convert a model to an hlsgen project (IR, RTL, HLS, vendor projects)")
    s.add_argument("model")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--config")
    s.add_argument("--weights", help=WEIGHTS_HELP)
    from .engines import all_options

    for o in all_options():
        if o.cli:
            kw = {"action": "append", "metavar": "LAYER=PE,SIMD"} if o.kind is dict else {"type": o.kind}
            s.add_argument(o.flag, dest=o.name, help=o.help, **kw)
    s.add_argument("--no-hw", action="store_true", help="write the IR and reference only, no hardware")
    s.set_defaults(fn=cmd_convert)
    s = sub.add_parser("predict", help="run the integer reference")
    s.add_argument("project")
    s.add_argument("inputs")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--raw", action="store_true", help="raw integers in and out")
    s.set_defaults(fn=cmd_predict)
    s = sub.add_parser("report", help="OUT/report/index.html: layers, engine figures, resources, verification")
    s.add_argument("project")
    s.set_defaults(fn=cmd_report)
    s = sub.add_parser("sweep", help="a grid of engine options, one Dask task per point, cached")
    s.add_argument("model")
    s.add_argument("--grid", action="extend", nargs="+", metavar="KEY=V1,V2", help="engine options and their values")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--config")
    s.add_argument("--synth", action="store_true", help="Yosys resources (7-series) for every point")
    s.add_argument("--rtl", type=_count(1), help="RTL check on this many inputs for every point")
    s.add_argument("--workers", type=_count(1), help="local Dask workers (default: the cores)")
    s.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    s.set_defaults(fn=cmd_sweep)
    s = sub.add_parser("verify", help="check the project against the source framework, C and RTL simulation")
    s.add_argument("project")
    s.add_argument("--inputs", help="real-valued inputs .npy (default: held-out digits or random)")
    s.add_argument("--csim", action="store_true", help="also compile and run the HLS C++ (g++)")
    s.add_argument("--rtl", action="store_true", help="also simulate the RTL (cocotb + Verilator)")
    s.add_argument("--rtl-count", type=_count(1), default=None, help="simulate only the first N inputs in RTL")
    s.add_argument("--json", help="where to write the results (default OUT/verify.json)")
    s.set_defaults(fn=cmd_verify)
    s = sub.add_parser("synth", help="lint, Yosys resource estimates and the summary of a project")
    s.add_argument("project")
    s.add_argument("--target", choices=["xilinx", "intel", "both"], default="both")
    s.set_defaults(fn=cmd_synth)
    s = sub.add_parser(
        "prune", help="load-balance-aware (ESE) or magnitude pruning of LSTM and GRU layers, with fine-tuning"
    )
    s.add_argument("model")
    s.add_argument("-o", "--output", required=True, help="pruned model (.h5)")
    s.add_argument("--pe", type=_count(1), default=8, help="processing elements to balance for (default 8)")
    s.add_argument("--density", type=float, default=0.1, help="fraction of weights kept (default 0.1)")
    s.add_argument("--method", choices=["lba", "magnitude"], default="lba")
    s.add_argument("--epochs", type=_count(0), default=20, help="fine-tuning epochs with the mask held")
    s.add_argument("--data", help="training data .npz (x_train, y_train, x_test, y_test); default: digits")
    s.set_defaults(fn=cmd_prune)
    s = sub.add_parser("compress", help="prune, share weights, factor, quantize and distill a Keras model")
    s.add_argument("model", help="Keras/QKeras .h5 (a chain of Dense, Conv2D, DepthwiseConv2D, LSTM, GRU, ...)")
    s.add_argument("-o", "--output", required=True, help="compressed model (.h5)")
    s.add_argument("--data", help="data .npz (x_train, y_train, x_test, y_test); default: digits")
    s.add_argument("--steps", default="prune,quantize,cluster", help="of lowrank,prune,quantize,cluster,distill")
    s.add_argument(
        "--density",
        action="append",
        metavar="D|LAYER=D",
        help="fraction kept by the largest layer (default 0.1); a smaller layer of N weights keeps "
        "D*sqrt(N_largest/N); LAYER=D sets one layer",
    )
    s.add_argument("--pe", type=_count(1), help="prune LSTMs and GRUs load-balance-aware over this many PEs")
    s.add_argument(
        "--block", metavar="RxC", help="prune Dense/conv weights in R x C blocks (inputs x outputs: SIMD x PE tiles)"
    )
    s.add_argument("--cluster-bits", type=int, default=4, help="codebook index bits per layer (default 4)")
    s.add_argument("--energy", type=float, default=0.9, help="low rank: squared singular values kept (0.9)")
    s.add_argument("--rank", default="energy", help="low rank: ranks by retained --energy, or vbmf (Nakajima et al.)")
    s.add_argument("--quantize", default="fixed:8", help="fixed:W, po2:W (INQ), ternary or binary")
    s.add_argument("--act-bits", type=int, default=8, help="activation bits (default 8)")
    s.add_argument("--epochs", type=_count(0), default=20, help="fine-tuning epochs per step (default 20)")
    s.add_argument("--teacher", help="teacher model for distillation (default: the input model)")
    s.add_argument("--temperature", type=float, default=4.0)
    s.add_argument(
        "--attention", type=float, default=0.0, help="CNNs: attention transfer with this beta (e.g. 1000; 0 = off)"
    )
    s.add_argument("--alpha", type=float, default=0.7, help="weight of the teacher's term")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--target-ratio", type=float, help="choose per-layer densities for this ratio (sensitivity analysis)"
    )
    s.add_argument("--accuracy-floor", type=float, help="refuse a result below this held-out accuracy (0..1)")
    s.add_argument(
        "--budget",
        action="append",
        metavar="KEY=N[,KEY=N]",
        help="the design's cycles (per frame or step), dsp (multipliers), bram (18 Kb blocks), lut (Yosys, "
        "slow): choose per-layer densities and weight or codebook bits that meet it",
    )
    s.add_argument("--report", help="compress.json (default: beside -o); the plot goes beside it as .png")
    s.set_defaults(fn=cmd_compress)
    s = sub.add_parser("zoo", help="list the zoo, or write one of its models to a file")
    s.add_argument("name", nargs="?", help="zoo model (none: list them)")
    s.add_argument("-o", "--output", help="the model file to write (.h5)")
    s.set_defaults(fn=cmd_zoo)
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except HlsgenError as e:
        if args.debug:
            raise
        print(f"hlsgen: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hlsgen: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in hlsgen: still one line, and a way to see more
        if args.debug:
            raise
        msg = " ".join(str(e).split())[:300]
        print(f"hlsgen: internal error: {type(e).__name__}: {msg} (rerun with --debug and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

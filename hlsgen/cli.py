"""The ``hlsgen`` command.

    hlsgen info MODEL                         layer table: type, shape, bits, density
    hlsgen convert MODEL -o OUT [--config F]  write the IR and a report to OUT
    hlsgen predict OUT X.npy -o Y.npy [--raw] run the integer reference
    hlsgen verify OUT [--inputs X.npy]        reference against the source framework

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
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))


def cmd_info(args):
    from .project import convert

    proj = convert(args.model, None, args.config)
    g = proj.graph
    print(f"{g.meta.get('source')}: {'exact' if g.meta.get('exact') else 'APPROXIMATE'}")
    _print_table(g.table(), ["name", "op", "shape", "type", "weights"])
    for n in g.meta.get("notes", []):
        print(f"note: {n}")
    for a in g.meta.get("approximations", []):
        print(f"approximation: {a}")
    return 0


def cmd_convert(args):
    from .project import convert

    proj = convert(args.model, args.output, args.config)
    g = proj.graph
    print(f"wrote {proj.output_dir} ({len(g.nodes)} nodes, {'exact' if g.meta.get('exact') else 'APPROXIMATE'})")
    return 0


def _load_npy(path, what):
    p = Path(path)
    if not p.is_file():
        raise HlsgenError(f"{what} file not found", file=str(path))
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError on corrupt files
        raise HlsgenError(f"not a readable .npy array ({type(e).__name__})", file=str(path)) from None


def cmd_predict(args):
    from .project import load

    proj = load(args.project)
    x = _load_npy(args.inputs, "input")
    try:
        y = proj.predict_int(x) if args.raw else proj.predict(x)
    except HlsgenError as e:
        raise e.located(file=args.inputs) from None
    np.save(args.output, y)
    print(f"wrote {args.output} {y.shape} ({'raw integers of ' if args.raw else ''}{proj.output_type})")
    return 0


def cmd_verify(args):
    from .project import load
    from .verify import verify_against_source

    proj = load(args.project)
    x = _load_npy(args.inputs, "input") if args.inputs else None
    result = verify_against_source(proj, x)
    out = Path(args.project) / "verify.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for check in result["checks"]:
        status = "EQUAL" if check["mismatches"] == 0 else "DIFFERENT"
        print(
            f"{check['name']}: {check['vectors']} vectors, {check['values']} values, "
            f"{check['mismatches']} mismatches -> {status}"
        )
    print(f"wrote {out}")
    return 0 if result["equal"] else 1


def build_parser():
    p = argparse.ArgumentParser(prog="hlsgen", description="Compressed neural networks to bit-exact FPGA hardware.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("info", help="layer table of a model")
    s.add_argument("model")
    s.add_argument("--config")
    s.set_defaults(fn=cmd_info)
    s = sub.add_parser("convert", help="convert a model to an hlsgen project")
    s.add_argument("model")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--config")
    s.set_defaults(fn=cmd_convert)
    s = sub.add_parser("predict", help="run the integer reference")
    s.add_argument("project")
    s.add_argument("inputs")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--raw", action="store_true", help="raw integers in and out")
    s.set_defaults(fn=cmd_predict)
    s = sub.add_parser("verify", help="check the project against the source framework")
    s.add_argument("project")
    s.add_argument("--inputs")
    s.set_defaults(fn=cmd_verify)
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

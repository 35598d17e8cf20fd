"""Names from models and files are data: they never become paths outside the output folder,
broken identifiers or code in generated comments (hlsgen/names.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hlsgen.names import Idents, comment_text, ident

HOSTILE = ["../../../../x", "head/fc", "fc.v1->x", "module", "lstm_gate", "modèle", "9lives", "a b", ""]


def test_identifiers_are_ascii_distinct_and_reversible():
    names = Idents(taken=["lstm", "head"])
    out = [names(n) for n in HOSTILE + HOSTILE]
    assert len(set(o.lower() for o in out)) == len(out)
    for o in out:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", o), o
        assert not o.lower().startswith(("lstm_", "head_"))
    assert [names.original[o] for o in out] == HOSTILE + HOSTILE
    assert ident("fc1") == "fc1" and ident("conv_2d") == "conv_2d"  # clean names stay as they are


def test_comment_text_is_one_printable_ascii_line():
    for s in ["a\nb", "x\r\n#include <cstdlib>", "*/ system(); /*", "modèle.h5", "`rm -rf`"]:
        c = comment_text(s)
        assert c.isascii() and c.isprintable() and "\n" not in c and "*/" not in c and "/*" not in c, c


def _renamed(g, mapping):
    from hlsgen.ir import Graph

    for n in g.nodes:
        n.inputs = [mapping.get(i, i) for i in n.inputs]
        n.name = mapping.get(n.name, n.name)
    out = Graph(list(g.nodes), output=mapping.get(g.output, g.output), meta=dict(g.meta))
    out.infer()
    return out


@pytest.mark.gxx
def test_hostile_layer_and_file_names_stay_data(tmp_path):
    """A head layer named ``../../../../x`` and ``fc.v1->x``, a source path with a newline and C
    preprocessor text: every file lands inside -o, the RTL lints clean, the C++ compiles and
    equals the reference, and the injected line appears in no generated file as a line."""
    from hlsgen.backends.csim import csim
    from hlsgen.engines.lstm.synthetic import random_inputs, random_lstm
    from hlsgen.project import Project
    from hlsgen.reference.execute import predict_int
    from hlsgen.simulate import lint

    g = random_lstm(5, features=3, units=4, steps=3, head=2, head_act="relu")
    heads = [n.name for n in g.nodes[2:]]
    g = _renamed(g, {heads[0]: "../../../../x", heads[1]: "fc.v1->x"})
    g.meta["source"] = "/models/evil\n#error injected\n.h5"
    g.meta["name"] = "modèle"
    out = tmp_path / "deep" / "o"
    p = Project(g)
    p.engine_options = {}
    p.write(out)
    written = [f.resolve() for f in tmp_path.rglob("*") if f.is_file()]
    assert all(f.is_relative_to(out.resolve()) for f in written), [f for f in written if not f.is_relative_to(out)]
    hw = p.hardware
    assert hw["top"].isascii() and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", hw["top"]), hw["top"]
    assert lint(out / "rtl", hw["sources"], hw["top"]) == ""
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".v", ".h", ".cpp", ".tcl", ".qsf", ".core", ".md", ".sdc"):
            assert not any(line.startswith("#error") for line in f.read_text().splitlines()), f
    x = random_inputs(g, 8, 1)
    y = csim({"top": hw["hls_top"]}, out / "hls", x, tmp_path / "csim", "ap")
    assert np.array_equal(y, predict_int(g, x).reshape(len(x), -1))


@pytest.mark.gxx
def test_hostile_cnn_layer_names_stay_data(tmp_path):
    """CNN stage comments carry layer names: a name with a newline and C preprocessor text
    reaches no generated file as a line; the RTL lints and the C++ equals the reference."""
    from hlsgen.backends.csim import csim
    from hlsgen.engines.cnn.synthetic import random_cnn
    from hlsgen.project import Project
    from hlsgen.reference.execute import predict_int
    from hlsgen.simulate import lint

    g = random_cnn(3)
    g = _renamed(g, {n.name: f"l{k}\n#error injected {k}" for k, n in enumerate(g.nodes[1:])})
    out = tmp_path / "o"
    p = Project(g)
    p.engine_options = {}
    p.write(out)
    hw = p.hardware
    assert lint(out / "rtl", hw["sources"], hw["top"]) == ""
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".v", ".h", ".cpp", ".tcl", ".qsf", ".core", ".md", ".sdc"):
            assert not any(line.startswith("#error") for line in f.read_text().splitlines()), f
    t = g.input.type
    x = np.random.default_rng(0).integers(t.min_raw, t.max_raw, size=(6,) + tuple(g.input.shape), endpoint=True)
    y = csim({"top": hw["hls_top"]}, out / "hls", x, tmp_path / "csim", "ap")
    assert np.array_equal(y, predict_int(g, x).reshape(len(x), -1))

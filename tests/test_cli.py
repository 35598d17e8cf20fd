"""The hlsgen command: normal use, and every kind of bad input -> one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from hlsgen import zoo

pytestmark = pytest.mark.keras
pytest.importorskip("qkeras")


def run(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "hlsgen.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def main_run(*args):
    """The command in this process: returncode, stdout and stderr like :func:`run`."""
    import contextlib
    import io

    from hlsgen.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert lines[0].startswith("hlsgen: error: ")
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "mlp"
    r = run("convert", "mlp_tiny", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def test_info_convert_predict_verify(project, tmp_path):
    r = run("info", "mlp_tiny")
    assert r.returncode == 0 and "fc1" in r.stdout and "Dense" in r.stdout and "%" in r.stdout
    assert (project / "model.json").is_file() and (project / "README.md").is_file()
    from hlsgen.zoo.build import digits

    _, xte, _, _ = digits()
    x = xte.reshape(-1, 64)[:20]
    np.save(tmp_path / "x.npy", x)
    r = run("predict", project, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    import hlsgen

    assert np.array_equal(np.load(tmp_path / "y.npy"), hlsgen.load(project).predict(x))
    r = main_run("predict", project, tmp_path / "x.npy", "-o", tmp_path / "y2")  # numpy adds .npy
    assert r.returncode == 0 and f"wrote {tmp_path / 'y2.npy'} " in r.stdout, r.stdout
    assert np.array_equal(np.load(tmp_path / "y2.npy"), np.load(tmp_path / "y.npy"))
    r = run("predict", project, tmp_path / "x.npy", "-o", tmp_path / "yr.npy", "--raw")
    assert r.returncode != 0  # floats are not raw integers
    r = run("verify", project)
    assert r.returncode == 0, r.stdout + r.stderr
    v = json.loads((project / "verify.json").read_text())
    assert v["equal"] and v["checks"][0]["vectors"] == 450 and v["checks"][0]["mismatches"] == 0


def test_output_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("convert", "cnn_small", "-o", a).returncode == 0
    assert run("convert", "cnn_small", "-o", b).returncode == 0
    for f in ("model.json", "report.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_verify_finds_the_source_from_anywhere_and_notices_a_replaced_one(tmp_path):
    """The source is recorded absolute with its SHA-256: verify from another directory still
    compares with the framework; a source file replaced by another model is refused."""
    import shutil

    from hlsgen import zoo

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copyfile(zoo.path("mlp_tiny"), work / "m.h5")
    assert run("convert", "m.h5", "-o", "p", "--no-hw", cwd=work).returncode == 0
    r = run("verify", work / "p", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "reference vs source framework" in r.stdout and "EQUAL" in r.stdout
    shutil.copyfile(zoo.path("cnn_small"), work / "m.h5")
    assert_one_line_error(run("verify", work / "p", cwd=elsewhere), "m.h5", "changed since", "convert it again")


def test_missing_file(tmp_path):
    out = tmp_path / "out"
    r = run("convert", tmp_path / "nope.h5", "-o", out)
    assert_one_line_error(r, "nope.h5", "not found")
    assert not out.exists()


def test_truncated_h5(tmp_path):
    data = zoo.path("mlp_tiny").read_bytes()
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert_one_line_error(run("convert", bad, "-o", out), "trunc.h5", "cannot read")
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_corrupt_keras_zip(tmp_path):
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("config.json", "{not json")
    assert_one_line_error(run("info", bad), "bad.keras")


def test_not_a_model_file(tmp_path):
    txt = tmp_path / "notes.h5"
    txt.write_text("hello\n")
    assert_one_line_error(run("info", txt), "notes.h5", "not a Keras model")
    import h5py

    h5 = tmp_path / "data.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(3)
    assert_one_line_error(run("info", h5), "data.h5")


def _save(model, path):
    model.save(path)
    return path


def test_unsupported_layer_file(tmp_path):
    import tensorflow as tf

    m = tf.keras.Sequential([tf.keras.layers.InputLayer((4, 4, 1)), tf.keras.layers.UpSampling2D(name="up")])
    p = _save(m, tmp_path / "up.h5")
    assert_one_line_error(run("convert", p, "-o", tmp_path / "o"), "up.h5", "layer 'up'", "UpSampling2D")
    assert not (tmp_path / "o").exists()


def test_qlstm_saved_as_keras_zip_is_read(tmp_path):
    """Keras 2.15 cannot replay a QLSTM's recorded build shapes from a .keras file; hlsgen
    rebuilds it from the config and loads the weights: the same model as the .h5."""
    from hlsgen import zoo
    from hlsgen.frontends.keras.loader import load_model_file

    load_model_file(zoo.path("lstm_sparse")).save(tmp_path / "l.keras")
    r = main_run("convert", tmp_path / "l.keras", "-o", tmp_path / "p", "--no-hw")
    assert r.returncode == 0 and "exact" in r.stdout, r.stderr
    r = main_run("verify", tmp_path / "p")
    assert r.returncode == 0 and "0 mismatches -> EQUAL" in r.stdout, r.stdout + r.stderr


def test_several_inputs_or_outputs_are_named(tmp_path):
    import tensorflow as tf

    L = tf.keras.layers
    a, b = tf.keras.Input((4,), name="a"), tf.keras.Input((4,), name="b")
    two_in = _save(tf.keras.Model([a, b], L.Dense(3, name="d")(L.Add()([a, b]))), tmp_path / "two_in.h5")
    x = tf.keras.Input((4,), name="x")
    two_out = _save(tf.keras.Model(x, [L.Dense(3, name="d1")(x), L.Dense(2, name="d2")(x)]), tmp_path / "two_out.h5")
    r = main_run("convert", two_in, "-o", tmp_path / "o")
    assert_one_line_error(r, "two_in.h5", "2 inputs (a, b)", "one input and one output")
    r = main_run("convert", two_out, "-o", tmp_path / "o")
    assert_one_line_error(r, "two_out.h5", "2 outputs (d1, d2)")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "quantizer, words",
    [
        ("quantized_bits(4,0,alpha='auto')", ["alpha='auto_po2'"]),
        ("quantized_ulaw(8,0)", ["fixed-point grid"]),
    ],
)
def test_unsupported_quantizer_file(tmp_path, quantizer, words):
    import qkeras as qk
    import tensorflow as tf

    L = tf.keras.layers
    if "ulaw" in quantizer:
        m = tf.keras.Sequential(
            [L.InputLayer((4,)), qk.QActivation("quantized_bits(4,1)"), qk.QActivation(quantizer, name="qact")]
        )
        name = "qact"
    else:
        m = tf.keras.Sequential(
            [
                L.InputLayer((4,)),
                qk.QActivation("quantized_bits(4,1)"),
                qk.QDense(2, kernel_quantizer=quantizer, name="fc"),
            ]
        )
        name = "fc"
    p = _save(m, tmp_path / "q.h5")
    assert_one_line_error(run("convert", p, "-o", tmp_path / "o"), "q.h5", f"layer '{name}'", *words)


def test_predict_bad_inputs(project, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 10)))
    assert_one_line_error(
        run("predict", project, tmp_path / "wrong.npy", "-o", tmp_path / "y.npy"),
        "wrong.npy",
        "input",
        "does not match",
    )
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    assert_one_line_error(run("predict", project, tmp_path / "junk.npy", "-o", tmp_path / "y.npy"), "junk.npy")
    assert_one_line_error(run("predict", project, tmp_path / "none.npy", "-o", tmp_path / "y.npy"), "none.npy")
    assert_one_line_error(
        run("predict", tmp_path / "noproj", tmp_path / "wrong.npy", "-o", tmp_path / "y.npy"), "noproj"
    )
    assert not (tmp_path / "y.npy").exists()


def test_corrupt_project_and_foreign_output_dir(project, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(project, bad)
    (bad / "model.json").write_text('{"format": "hlsgen-ir", "version": 1, "nodes": [{"op": "Nope"}]}')
    np.save(tmp_path / "x.npy", np.zeros((1, 64)))
    assert_one_line_error(run("predict", bad, tmp_path / "x.npy", "-o", tmp_path / "y.npy"), "model.json", "corrupt")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    assert_one_line_error(run("convert", "mlp_tiny", "-o", foreign), "foreign", "not empty")
    assert (foreign / "mine.txt").read_text() == "keep me"


def test_bad_config(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("Model:\n  Precision: ap_fixed<8>\n")
    assert_one_line_error(run("convert", "mlp_tiny", "-o", tmp_path / "o", "--config", cfg), "c.yml", "ap_fixed<8>")
    cfg.write_text("Model: [unclosed\n")
    assert_one_line_error(run("convert", "mlp_tiny", "-o", tmp_path / "o", "--config", cfg), "c.yml", "YAML")
    assert not (tmp_path / "o").exists()


def test_corrupt_onnx_is_clear(tmp_path):
    f = tmp_path / "m.onnx"
    f.write_bytes(b"\x08\x07")
    assert_one_line_error(run("info", f), "m.onnx")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_lambda_code_never_runs(tmp_path, suffix):
    """A Lambda layer's code would run when Keras deserializes the model: the saved config is
    read first and the file refused, naming the layer, before anything is deserialized."""
    import tensorflow as tf

    marker = tmp_path / "ran"
    fn = eval(f"lambda x: (open({str(marker)!r}, 'w').write('pwned'), x)[1]")  # noqa: S307 (the attack itself)
    m = tf.keras.Sequential([tf.keras.layers.InputLayer((4,)), tf.keras.layers.Lambda(fn, name="evil")])
    p = _save(m, tmp_path / f"lam{suffix}")
    if marker.exists():
        marker.unlink()  # saving traced the layer once
    for cmd in (["info", p], ["convert", p, "-o", tmp_path / "o"]):
        assert_one_line_error(run(*cmd), f"lam{suffix}", "layer 'evil'", "Lambda")
        assert not marker.exists(), "the Lambda's code ran"
    assert not (tmp_path / "o").exists()


def test_weights_only_h5_is_named(tmp_path):
    import tensorflow as tf

    m = tf.keras.Sequential([tf.keras.layers.InputLayer((4,)), tf.keras.layers.Dense(2, name="d")])
    m.save_weights(tmp_path / "w.h5")
    assert_one_line_error(run("info", tmp_path / "w.h5"), "w.h5", "weights only")


def test_overwrite_keeps_user_files_and_is_atomic(tmp_path, monkeypatch):
    """Converting into an existing project keeps the user's files and tool run folders, drops the
    old design's results; a write that fails half-way leaves the old project as it was; output
    folders follow the umask; stale temporary folders of killed runs are cleaned up."""
    import hlsgen
    from hlsgen import bundle

    out = tmp_path / "p"
    hlsgen.convert("mlp_tiny", out)
    (out / "notes.txt").write_text("mine")
    (out / "vivado" / "build").mkdir()
    (out / "vivado" / "build" / "run.log").write_text("vivado ran")
    (out / "verify.json").write_text("{}")
    (tmp_path / ".p.tmp-killed").mkdir()  # left by a SIGKILL
    hlsgen.convert("mlp_tiny", out)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "vivado" / "build" / "run.log").read_text() == "vivado ran"
    assert not (out / "verify.json").exists()
    assert not (tmp_path / ".p.tmp-killed").exists()
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    before = {f.relative_to(out): f.read_bytes() for f in out.rglob("*") if f.is_file()}

    def boom(*a, **k):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(bundle, "write_bundle", boom)
    with pytest.raises(RuntimeError):
        hlsgen.convert("mlp_tiny", out)
    after = {f.relative_to(out): f.read_bytes() for f in out.rglob("*") if f.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.") and p.is_dir()] == []


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_two_writers_one_loses_with_one_line(tmp_path):
    """While one hlsgen holds the project's lock, another convert into it fails in one line."""
    import fcntl

    out = tmp_path / "p"
    fd = os.open(tmp_path / ".p.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert_one_line_error(run("convert", "mlp_tiny", "-o", out, "--no-hw"), "another hlsgen is writing")
    finally:
        os.close(fd)
    assert not out.exists()
    r = run("convert", "mlp_tiny", "-o", out, "--no-hw")
    assert r.returncode == 0, r.stderr


def test_bad_values_are_refused_in_one_line(tmp_path):
    """Values that were accepted silently or crashed: each one line, exit 2, nothing written."""
    cfg = tmp_path / "c.yml"
    cases = [
        (["verify", "P", "--rtl-count", "0"], "--rtl-count"),
        (["verify", "P", "--rtl-count", "-1"], "--rtl-count"),
        (["info", "mlp_tiny", "--pe", "0"], "--pe"),
        (["prune", "lstm_sparse", "-o", tmp_path / "x.h5", "--epochs", "-1"], "--epochs"),
        (["convert", "cnn_small", "-o", tmp_path / "o", "--fps", "nan"], "--fps"),
        (["convert", "cnn_small", "-o", tmp_path / "o", "--clock", "0"], "--clock"),
        (["convert", "cnn_small", "-o", tmp_path / "o", "--clock", "inf"], "--clock"),
        (["convert", tmp_path, "-o", tmp_path / "o"], "is a directory"),
    ]
    for args, word in cases:  # in this process (no TensorFlow start-up per case)
        assert_one_line_error(main_run(*[tmp_path / "p" if a == "P" else a for a in args]), word)
    for text, word in (
        ("Model: [1, 2]\n", "Model must be a mapping"),
        ("Model: {StripSoftmax: 'false'}\n", "StripSoftmax must be true or false"),
        ("Model: {Precision: 42}\n", "Model.Precision"),
    ):
        cfg.write_text(text)
        assert_one_line_error(main_run("convert", "mlp_tiny", "-o", tmp_path / "o", "--config", cfg), word)
    assert not (tmp_path / "o").exists()
    np.save(tmp_path / "z.npy", np.ones((2, 8, 8), dtype=np.complex64))
    hlsgen_project = tmp_path / "p"
    assert main_run("convert", "mlp_tiny", "-o", hlsgen_project, "--no-hw").returncode == 0
    assert_one_line_error(main_run("predict", hlsgen_project, tmp_path / "z.npy", "-o", tmp_path / "y.npy"), "complex")
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    assert_one_line_error(main_run("info", fifo), "pipe.h5", "not a regular file")


def test_budget_that_cannot_be_met_is_said(tmp_path):
    """--dsp 0 / --lanes 1 / an unreachable --fps: the design is the closest one, and convert says
    exactly which target was missed (also recorded in engine.json)."""
    for args, words in (
        (["--dsp", "0"], ["--dsp 0", "conv1, conv2, fc", "3 multiplier lanes"]),
        (["--lanes", "1"], ["--lanes 1", "3 lanes"]),
        (["--fps", "1e30"], ["--fps 1e+30", "cannot be met"]),
    ):
        r = main_run("convert", "cnn_small", "-o", tmp_path / "o", *args)
        assert r.returncode == 0, r.stderr
        for w in words:
            assert w in r.stdout, (w, r.stdout)
        notes = json.loads((tmp_path / "o" / "engine.json").read_text())["plan"]["notes"]
        assert any(words[0] in n for n in notes), notes


@pytest.mark.rtl
def test_incomplete_or_hanging_design_ends_in_one_line(tmp_path):
    """verify --rtl with a memory file deleted stops at once naming it (it ran for over ten
    minutes before); a simulation that does not finish in its cycle bound ends with a message."""
    from hlsgen.errors import HlsgenError
    from hlsgen.simulate import run_rtl

    out = tmp_path / "p"
    assert run("convert", "mlp_tiny", "-o", out).returncode == 0
    hw = json.loads((out / "engine.json").read_text())
    victim = hw["memories"][0]
    (out / "rtl" / victim).unlink()
    assert_one_line_error(run("verify", out, "--rtl", "--rtl-count", "2"), victim, "missing")
    # the bound itself: a run given far too few cycles
    import hlsgen

    proj = hlsgen.convert("mlp_tiny", tmp_path / "q")
    x = proj.quantize_input(np.zeros((2, 64)))
    with pytest.raises(HlsgenError, match="did not finish within 5 cycles"):
        run_rtl(
            tmp_path / "q" / "rtl",
            proj.hardware["top"],
            proj.hardware["sources"],
            x.reshape(2, -1),
            proj.predict_int(x).reshape(2, -1),
            proj.hardware["obw"],
            tmp_path / "w",
            test_module="cnn_tb",
            extra={"probe": 1, "ibw": 8, "timeout_cycles": 5},
        )

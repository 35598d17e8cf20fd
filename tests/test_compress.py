"""`hlsgen compress`: the steps' pieces against independent computations, the whole command on
the zoo's float models (exact conversion checked here, not trusted from the report), and bad
input."""

from __future__ import annotations

import heapq
import json
import math

import numpy as np
import pytest

from hlsgen.compress.gmp import Target, cubic_density, layer_masks
from hlsgen.compress.lowrank import rank_for_energy, svd_factors, tucker2
from hlsgen.compress.prune import imbalance
from hlsgen.compress.share import huffman_bits, kmeans_1d, share
from hlsgen.compress.storage import relative_entries, store_matrix
from tests.test_cli import main_run
from tests.test_lstm_cli import one_line_error

# ------------------------------------------------------------------ pieces


def test_cubic_schedule():
    assert cubic_density(0, 0.1, 0, 100) == 1.0
    assert cubic_density(100, 0.1, 0, 100) == pytest.approx(0.1)
    assert cubic_density(500, 0.1, 0, 100) == pytest.approx(0.1)
    d = [cubic_density(t, 0.1, 0, 100) for t in range(101)]
    assert all(a >= b for a, b in zip(d, d[1:], strict=False))
    # Zhu & Gupta: halfway, 1/8 of the pruning is still to come
    assert cubic_density(50, 0.0, 0, 100) == pytest.approx(0.125)


def test_per_gate_and_balanced_masks():
    rng = np.random.default_rng(1)
    k, r = rng.normal(size=(12, 4 * 10)), rng.normal(size=(10, 4 * 10))
    mk, mr = layer_masks([k, r], Target(0.2, "lstm"), 0.2)
    for m in (mk, mr):
        for g in range(4):  # every gate keeps its own 20%
            assert int(m[:, g * 10 : (g + 1) * 10].sum()) == round(0.2 * m.shape[0] * 10)
    kept = np.abs(k[:, :10])[mk[:, :10] > 0].min()
    assert kept >= np.abs(k[:, :10])[mk[:, :10] == 0].max()  # the largest of the block
    bk, br = layer_masks([k, r], Target(0.2, "lstm", pe=8), 0.2)
    b = imbalance(np.vstack([bk, br]).astype(np.int64), 8)
    assert b["min"] == b["max"]
    # a GRU with reset_after=False: each of its two passes balanced on its own (6 units, 4 PEs)
    from hlsgen.compress.gmp import target
    from hlsgen.compress.prune import pe_map

    k, r = rng.normal(size=(5, 18)), rng.normal(size=(6, 18))
    where = pe_map("gru", 5, 6, 4, False)
    gk, gr = layer_masks([k, r], target(0.3, "gru", pe=4, reset_after=False), 0.3)
    assert imbalance(np.vstack([gk, gr]), 4, *where)["imbalance"] == 1.0
    gk, gr = layer_masks([k, r], target(0.3, "gru", pe=4), 0.3)  # balanced for one pass instead
    assert imbalance(np.vstack([gk, gr]), 4, *where)["imbalance"] > 1.0


def test_kmeans_is_a_lloyd_fixed_point():
    rng = np.random.default_rng(2)
    v = np.concatenate([rng.normal(0, 0.1, 500), rng.normal(1.0, 0.05, 30)])
    c, lab = kmeans_1d(v, 16)
    assert len(c) <= 16 and np.all(np.diff(c) > 0)
    near = np.argmin(np.abs(v[:, None] - c[None, :]), 1)
    assert np.array_equal(near, lab)  # every weight at its nearest centroid
    for j in range(len(c)):
        assert c[j] == pytest.approx(v[lab == j].mean(), abs=1e-6)  # every centroid its members' mean
    assert np.array_equal(kmeans_1d(v, 16)[1], lab)  # deterministic (linear initialisation)
    assert len(kmeans_1d(np.array([0.5, 0.5, -1.0]), 16)[0]) == 2


def test_share_keeps_zeros_out_of_the_codebook():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20, 8)) * (rng.random((20, 8)) < 0.3)
    b = rng.normal(size=(5, 8)) * (rng.random((5, 8)) < 0.3)
    book = share([a, b], 3)
    assert len(book.centroids) <= 8
    wa, wb = book.weights()
    assert np.array_equal(wa == 0, a == 0) and np.array_equal(wb == 0, b == 0)
    assert len(np.unique(np.concatenate([wa[wa != 0], wb[wb != 0]]))) <= 8


def _huffman_reference(counts):
    """Code lengths from an explicit tree."""
    heap = [(n, i, (s,)) for i, (s, n) in enumerate(counts.items())]
    heapq.heapify(heap)
    depth = dict.fromkeys(counts, 0)
    t = len(heap)
    while len(heap) > 1:
        a, _, sa = heapq.heappop(heap)
        b, _, sb = heapq.heappop(heap)
        for s in sa + sb:
            depth[s] += 1
        heapq.heappush(heap, (a + b, t, sa + sb))
        t += 1
    return sum(counts[s] * depth[s] for s in counts)


def test_huffman_size():
    assert huffman_bits(list("aaaaabbcd")) == 15  # lengths 1, 2, 3, 3
    rng = np.random.default_rng(4)
    x = rng.geometric(0.3, 2000)
    from collections import Counter

    c = Counter(x.tolist())
    assert huffman_bits(x) == _huffman_reference(c)
    h = -sum(n / len(x) * math.log2(n / len(x)) for n in c.values())
    assert h * len(x) <= huffman_bits(x) < (h + 1) * len(x)


def _eie_encode(col, p):
    """Entries of one column in EIE's format, encoded one by one."""
    out, pending, zeros = [], [], 0
    for v in col:
        if v == 0:
            zeros += 1
            if zeros == 2**p:  # the index cannot say more: a filler takes this zero's place
                pending.append((0, 2**p - 1))
                zeros = 0
        else:
            out += pending + [(v, zeros)]  # fillers only before a non-zero: none at a column's end
            pending, zeros = [], 0
    return out


def test_relative_index_entries_match_an_encoder():
    rng = np.random.default_rng(5)
    for density in (0.02, 0.1, 0.5):
        w = rng.normal(size=(200, 7)) * (rng.random((200, 7)) < density)
        for p in (1, 2, 3, 4, 5, 8):
            enc = [e for c in range(7) for e in _eie_encode(w[:, c], p)]
            entries, rel = relative_entries(w, p)
            assert entries == len(enc) and sorted(rel.tolist()) == sorted(z for _, z in enc)
            # decoding gives the column back
            dec = []
            for c in range(7):
                col = np.zeros(200)
                pos = -1
                for v, z in _eie_encode(w[:, c], p):
                    pos += z + 1
                    col[pos] = v
                dec.append(col)
            assert np.array_equal(np.stack(dec, 1), w)


def test_store_matrix_picks_the_smaller_layout():
    dense = np.arange(1, 65, dtype=float).reshape(8, 8)
    s = store_matrix(dense, 8, False)
    assert s.layout == "dense" and s.stored_bits == 64 * 8
    sparse = np.zeros((100, 10))
    sparse[::10, :] = 1.0
    s = store_matrix(sparse, 8, True)  # one shared value: 1-bit codes
    assert s.layout == "sparse" and s.codebook == 1 and s.stored_bits < 100 * 10


def test_low_rank_factors():
    rng = np.random.default_rng(6)
    w = rng.normal(size=(30, 6)) @ rng.normal(size=(6, 20))  # rank 6
    a, b, r = svd_factors(w, 1.0)
    assert r == 6 and np.allclose(a @ b, w, atol=1e-4)
    assert rank_for_energy(np.array([3.0, 1.0]), 0.9) == 1
    k = rng.normal(size=(3, 3, 8, 12))
    a, core, bt, (r1, r2) = tucker2(k, 1.0)
    assert np.allclose(np.einsum("hwrs,ir,so->hwio", core, a, bt), k, atol=1e-4)


def test_vbmf_finds_the_planted_rank_and_noise():
    """VBMF's rank and noise variance against matrices built with a known rank plus Gaussian
    noise of a known variance (both orientations, square, and a Tucker-2 unfolding)."""
    from hlsgen.compress.chain import Layer
    from hlsgen.compress.lowrank import factor_chain, vbmf

    rng = np.random.default_rng(7)
    for L, M, r, sigma in ((64, 200, 5, 0.1), (100, 100, 10, 0.5), (300, 40, 3, 1.0), (32, 576, 8, 0.05)):
        y = rng.normal(size=(L, r)) @ rng.normal(size=(r, M)) + sigma * rng.normal(size=(L, M))
        rank, s2 = vbmf(y)
        assert rank == r and abs(s2 / sigma**2 - 1) < 0.1, (L, M, r, rank, s2)
    assert vbmf(np.zeros((4, 6)))[0] == 0
    # the pipeline's step: a Dense of planted rank 4 becomes rank-4 factors
    w = rng.normal(size=(64, 4)) @ rng.normal(size=(4, 48)) + 0.01 * rng.normal(size=(64, 48))
    spec = Layer(
        "Dense", {"name": "d", "units": 48, "activation": "relu"}, [w.astype(np.float32), np.zeros(48, np.float32)]
    )
    out, ranks = factor_chain([spec], 0.999, method="vbmf")
    assert ranks == {"d": 4} and [s.name for s in out] == ["d_lr", "d"]
    k = np.einsum("hwrs,ir,os->hwio", rng.normal(size=(3, 3, 3, 5)), rng.normal(size=(16, 3)), rng.normal(size=(24, 5)))
    k += 0.01 * rng.normal(size=k.shape)
    _, _, _, (r1, r2) = tucker2(k, 1.0, "vbmf")
    assert (r1, r2) == (3, 5)


# ------------------------------------------------------------------ the command


def _quantized_weights(layer):
    from hlsgen.compress.pipeline import stored_weights

    return {what: w for what, w, _ in stored_weights(layer)}


def _exact_against_qkeras(path, x):
    """hlsgen's integer reference of the written file against QKeras, classes and values."""
    from hlsgen.frontends.keras import convert_keras
    from hlsgen.frontends.keras.loader import load_model_file
    from hlsgen.reference.execute import predict

    g = convert_keras(str(path))
    assert g.meta.get("exact")
    m = load_model_file(str(path))
    ref, keras = predict(g, x), m.predict(x, verbose=0)
    assert np.array_equal(ref, keras.astype(np.float64)), "hlsgen reference and QKeras differ"
    return g, m


#: C simulation in make test; the RTL too in make regress (the codebook and po2 datapaths'
#: RTL is in make test through test_shared_weights_use_a_codebook, the hg_mvu block test and
#: the zoo CNNs)
WITH_RTL = [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.rtl])]


@pytest.mark.gxx
@pytest.mark.keras
@pytest.mark.parametrize("rtl", WITH_RTL)
def test_compress_mlp_prune_quantize_share_distill(tmp_path, rtl):
    from hlsgen.data import digits

    out = tmp_path / "m.h5"
    r = main_run(
        "compress", "mlp_tiny_float", "-o", out, "--steps", "prune,quantize,cluster,distill",
        "--density", "0.2", "--density", "dense_1=0.5", "--cluster-bits", "3", "--quantize", "fixed:6",
        "--epochs", "4", "--report", tmp_path / "c.json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "c.json").read_text())
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert [h["step"] for h in rep["history"]] == ["input", "prune", "quantize", "cluster"]
    assert rep["float32_bits"] == 32 * (64 * 32 + 32 + 32 * 10 + 10)
    _, xte, _, yte = digits()
    g, m = _exact_against_qkeras(out, xte.reshape(-1, 64))
    assert rep["hlsgen"]["class_mismatches_against_keras"] == 0
    # accuracy recomputed here, not read back
    acc = float(np.mean(np.argmax(m.predict(xte.reshape(-1, 64), verbose=0), -1) == yte))
    assert rep["accuracy_after"] == pytest.approx(acc, abs=1e-4)
    layers = {layer.name: layer for layer in m.layers}
    for name, d in (("dense", 0.2), ("dense_1", 0.5)):
        w = _quantized_weights(layers[name])["kernel"]
        assert np.count_nonzero(w) <= round(d * w.size)  # a shared value may quantize to zero
        assert np.count_nonzero(w) >= round(d * w.size) - 3
        assert len(np.unique(w[w != 0])) <= 2**3 - 1  # 3-bit indices with zero among them
        assert np.all(np.abs(w * 2**5 - np.round(w * 2**5)) == 0)  # 6-bit fixed point grid
    # the stored size, recounted from the IR the hardware is built from
    total = 0
    for n in g.nodes:
        if n.op == "Dense":
            k = n.kernel.raw
            total += store_matrix(k, 6, True).stored_bits + n.bias.raw.size * 8
    assert total == rep["stored_bits"]
    assert rep["compression_ratio"] == pytest.approx(rep["float32_bits"] / total, abs=0.01)
    # the engine stores the 3-bit indices and looks the shared weights up (EIE): exact in C and RTL
    from hlsgen.engines.cnn import plan_cnn

    plan = plan_cnn(g)
    assert [(s.p.datapath, s.p.code_width) for s in plan.mvus] == [("book", 3), ("book", 3)]
    proj = tmp_path / "p"
    r = main_run("convert", out, "-o", proj)
    assert r.returncode == 0 and r.stdout.count("book datapath") == 2, r.stdout + r.stderr
    r = main_run("verify", proj, "--csim", *(["--rtl", "--rtl-count", "10"] if rtl else []))
    assert r.returncode == 0 and r.stdout.count("0 mismatches -> EQUAL") == 3 + rtl, r.stdout + r.stderr


@pytest.mark.gxx
@pytest.mark.keras
@pytest.mark.parametrize("rtl", WITH_RTL)
def test_compress_cnn_lowrank_and_inq(tmp_path, rtl):
    from hlsgen.data import digits

    _, xte, _, _ = digits()
    out = tmp_path / "c.h5"
    r = main_run("compress", "cnn_small_float", "-o", out, "--steps", "lowrank,quantize", "--energy", "0.8",
                 "--quantize", "po2:4", "--epochs", "4")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["layers"] and any("rank" in lay for lay in rep["layers"])
    g, m = _exact_against_qkeras(out, xte[..., None])
    names = [layer.name for layer in m.layers]
    assert "conv2d_1_in" in names and "conv2d_1_core" in names  # Tucker-2 of the second conv
    for layer in m.layers:
        if layer.__class__.__name__ in ("QConv2D", "QDense"):
            w = layer.get_weights()[0]  # INQ: the float weights are already powers of two
            assert np.array_equal(np.asarray(layer.kernel_quantizer_internal(w)), w)
            nz = np.abs(w[w != 0])
            assert np.array_equal(np.log2(nz), np.round(np.log2(nz)))
    assert any(getattr(n, "kernel", None) is not None and n.kernel.kind == "po2" for n in g.nodes)
    # the factored, power-of-two model through the hardware checks
    proj = tmp_path / "p"
    r = main_run("convert", out, "-o", proj)
    assert r.returncode == 0, r.stderr
    r = main_run("verify", proj, "--csim", *(["--rtl", "--rtl-count", "10"] if rtl else []))
    assert r.returncode == 0, r.stdout + r.stderr
    checks = json.loads((proj / "verify.json").read_text())
    assert "0 mismatches -> EQUAL" in r.stdout and "ac_fixed" in r.stdout, (r.stdout, checks)
    assert r.stdout.count("0 mismatches -> EQUAL") == 3 + rtl and ("RTL" in r.stdout) == rtl, r.stdout


@pytest.mark.keras
def test_compress_lstm_balanced_for_the_engine(tmp_path):
    from hlsgen.data import digits

    _, xte, _, _ = digits()
    out = tmp_path / "l.h5"
    r = main_run("compress", "lstm_sparse_float", "-o", out, "--steps", "lowrank,prune,quantize,cluster",
                 "--pe", "8", "--density", "0.1", "--density", "dense=1", "--epochs", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "note: lowrank: lstm (LSTM) is not factored" in r.stdout, r.stdout
    g, _ = _exact_against_qkeras(out, xte[:100])
    lstm = next(n for n in g.nodes if n.op == "LSTM")
    stacked = np.vstack([lstm.kernel.raw, lstm.recurrent.raw])
    b = imbalance(stacked, 8)
    assert b["max"] <= round(0.1 * stacked.size / 8)  # balanced by the mask (a value may round to 0)
    assert len(np.unique(stacked[stacked != 0])) <= 15  # one 4-bit codebook for the layer, zero included
    from hlsgen.engines.lstm import plan_lstm

    plan = plan_lstm(g, pe=8)  # the engine stores the indices (C sim and RTL: test_lstm_engine)
    assert plan.codebook is not None and plan.code_width <= 4


@pytest.mark.keras
def test_compress_bad_input(tmp_path):
    x = tmp_path / "x.h5"
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--steps", "prune,fold"), "--steps")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--density", "1.5"), "--density 1.5")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--density", "fc9=0.5"), "fc9", "no layer")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--quantize", "fixed:40"), "--quantize")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", tmp_path / "x.onnx"), "ending in .h5")
    one_line_error(main_run("compress", "mlp_tiny", "-o", x, "--steps", "lowrank"), "already quantized")
    one_line_error(
        main_run("compress", "lstm_sparse_float", "-o", x, "--steps", "quantize", "--quantize", "ternary"),
        "layer 'lstm'",
        "fixed point",
    )
    bad = tmp_path / "d.npz"
    np.savez(
        bad, x_train=np.zeros((4, 8, 8)), y_train=np.zeros(4, int), x_test=np.zeros((4, 8, 8)), y_test=np.zeros(4, int)
    )
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--data", bad), str(bad), "shape")
    np.savez(bad, x_train=np.zeros((4, 64)), y_train=np.full(4, 12), x_test=np.zeros((4, 64)), y_test=np.zeros(4, int))
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--data", bad), "labels", "0..9")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]  # nothing written


@pytest.mark.keras
def test_compress_refuses_branches(tmp_path):
    import tensorflow as tf

    inp = tf.keras.Input((64,))
    a = tf.keras.layers.Dense(8, name="a")(inp)
    b = tf.keras.layers.Dense(8, name="b")(inp)
    y = tf.keras.layers.Dense(10, name="head")(tf.keras.layers.Add(name="join")([a, b]))
    path = tmp_path / "branch.h5"
    tf.keras.Model(inp, y).save(path)
    one_line_error(main_run("compress", path, "-o", tmp_path / "o.h5"), str(path), "chain")
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.keras
def test_search_meets_the_ratio_by_sensitivity(tmp_path):
    """--target-ratio: per-layer densities from each layer's sensitivity curve, the walk kept
    in the report; the written model stores what the walk estimated; the floor refuses."""
    out = tmp_path / "s.h5"
    r = main_run("compress", "mlp_tiny_float", "-o", out, "--steps", "prune,quantize", "--quantize", "fixed:6",
                 "--target-ratio", "12", "--density", "dense_1=0.8", "--epochs", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    walk = rep["search"]
    assert walk[0]["step"] == "start" and walk[-1]["ratio"] >= 12 > walk[-2]["ratio"]
    assert all(p["densities"]["dense_1"] == 0.8 for p in walk)  # the user's density is kept
    chosen = walk[-1]["densities"]["dense"]
    dense = next(lay for lay in rep["layers"] if lay["layer"] == "dense" and lay["weights"] == "kernel")
    assert dense["nonzeros"] <= round(chosen * dense["params"])
    # the storage the walk estimated is what the report counts (the quantizer may zero a few more)
    assert rep["compression_ratio"] >= 0.95 * walk[-1]["ratio"]
    # a floor the result does not reach: one line, exit 2, nothing written
    out2 = tmp_path / "t.h5"
    r = main_run("compress", "mlp_tiny_float", "-o", out2, "--target-ratio", "30", "--accuracy-floor", "0.99",
                 "--steps", "prune,quantize", "--epochs", "0")  # fmt: skip
    one_line_error(r, "--accuracy-floor 0.99", "nothing written")
    assert not out2.exists() and not out2.with_suffix(".json").exists()
    from hlsgen.compress.search import choose_densities
    from hlsgen.errors import HlsgenError
    from hlsgen.frontends.keras.loader import load_model_file
    from hlsgen.zoo import path as zoo_path

    m = load_model_file(str(zoo_path("mlp_tiny_float")))
    x = np.random.default_rng(0).random((40, 64)).astype(np.float32)
    with pytest.raises(HlsgenError, match="lowest densities reach only"):
        choose_densities(m, x, np.zeros(40, int), 1e4, 6, {})
    one_line_error(
        main_run("compress", "mlp_tiny_float", "-o", out2, "--steps", "quantize", "--target-ratio", "5"), "add prune"
    )


@pytest.mark.keras
def test_compress_a_model_ending_in_softmax(tmp_path):
    """A classifier ending in softmax (and a Dropout): trained on logits of log-probabilities,
    converted with StripSoftmax (the engines give logits; the classes are the same)."""
    import tensorflow as tf

    L = tf.keras.layers
    m = tf.keras.Sequential(
        [
            L.InputLayer((64,)),
            L.Dense(16, activation="relu", name="h"),
            L.Dropout(0.1),
            L.Dense(10, activation="softmax"),
        ]
    )
    m.compile("adam", "sparse_categorical_crossentropy")
    from hlsgen.data import digits

    xtr, xte, ytr, yte = digits()
    m.fit(xtr.reshape(-1, 64), ytr, epochs=3, verbose=0)
    path = tmp_path / "soft.h5"
    m.save(path)
    r = main_run("compress", path, "-o", tmp_path / "o.h5", "--steps", "prune,quantize,distill", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    hw = json.loads((tmp_path / "o.json").read_text())["hlsgen"]
    assert hw["converts"] and hw["exact"] and hw["config"] == "Model: StripSoftmax: true"
    assert hw["class_mismatches_against_keras"] == 0


# ------------------------------------------------------------------ hardware budgets

#: 18 Kb blocks Yosys 0.70 ``synth_xilinx`` used for a registered-read ROM of each shape
#: (RAMB18E1 + 2 x RAMB36E1), measured by bench/bram_rule.py
YOSYS_BRAM18 = {
    (128, 72): 0, (128, 400): 0, (256, 9): 0, (256, 18): 0, (256, 36): 1, (256, 72): 2, (256, 400): 12,
    (512, 9): 0, (512, 18): 1, (512, 72): 2, (1024, 4): 0, (1024, 9): 1, (1024, 144): 8, (1024, 400): 23,
    (2048, 4): 0, (2048, 18): 2, (2048, 72): 8, (2048, 144): 16,
}  # fmt: skip


def test_budget_parse_and_the_block_ram_rule():
    from hlsgen.compress.budget import Budget
    from hlsgen.engines.resources import bram18
    from hlsgen.errors import HlsgenError

    b = Budget.parse(["dsp=0,bram=8", "cycles=900.5"])
    assert (b.cycles, b.dsp, b.bram) == (900.5, 0, 8) and b.text() == "cycles=900.5,dsp=0,bram=8"
    assert not Budget.parse([]) and Budget.parse(["bram=0"]) and Budget.parse(["lut=900"]).lut == 900
    assert b.over({"cycles": 901, "dsp": 0, "bram": 9}) == ["cycles 901 > 900.5", "bram 9 > 8"]
    for bad, words in (
        ("ff=1", "one of cycles, dsp, bram, lut"),
        ("lut=-5", ">= 0"),
        ("dsp", "KEY=N"),
        ("dsp=1.5", "whole number"),
        ("cycles=0", ">= 1"),
        ("bram=-1", ">= 0"),
        ("bram=x", "not a number"),
        ("cycles=nan", ">= 1"),
    ):
        with pytest.raises(HlsgenError, match=words):
            Budget.parse([bad])
    for (d, w), blocks in YOSYS_BRAM18.items():
        assert bram18(d, w) == blocks, (d, w)


def _pareto(path):
    keys = ("cycles", "dsp", "bram")
    out = []
    for p in path:
        dominated = False
        for q in path:
            if q is p:
                continue
            ge = q["accuracy_estimate"] >= p["accuracy_estimate"] and all(q[k] <= p[k] for k in keys)
            gt = q["accuracy_estimate"] > p["accuracy_estimate"] or any(q[k] < p[k] for k in keys)
            dominated |= ge and gt
        out.append(not dominated)
    return out


def _one_step_apart(a, b) -> bool:
    """Two points of the walk differ in one layer, by one density or one bit step."""
    changed = [n for n in a["densities"] if a["densities"][n] != b["densities"][n]]
    changed += [n for n in a["bits"] if a["bits"][n] != b["bits"][n]]
    return len(changed) == 1


@pytest.mark.keras
def test_compress_meets_a_cycle_and_multiplier_budget(tmp_path):
    """--budget cycles,dsp on the CNN engine: the walk prunes until the engine, folding for
    the budget, plans a design within it; the written model, converted here with the same
    folding goal, has those figures."""
    import hlsgen
    from hlsgen.engines.cnn.plan import dsp_lanes

    out = tmp_path / "m.h5"
    r = main_run("compress", "mlp_tiny_float", "-o", out, "--steps", "prune,quantize", "--budget", "cycles=100",
                 "--budget", "dsp=20", "--epochs", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    walk = rep["search"]
    first = next(i for i, p in enumerate(walk) if not p["over"])  # the draft's walk ends here
    assert first > 0 and all(p["over"] for p in walk[:first]) and not walk[-1]["over"]
    # then the fine-tuned masks are planned ("after pruning"), and the walk goes on if over
    assert [p["step"] for p in walk[first + 1 :]][:1] == ["after pruning"]
    assert all(_one_step_apart(a, b) for a, b in zip(walk, walk[1:], strict=False) if b["step"] != "after pruning")
    assert [p["pareto"] for p in walk] == _pareto(walk)
    proj = hlsgen.convert(
        str(out), None, engine={"target_fps": 200e6 / 100, "clock_mhz": 200, "dsp": 20, "lanes": 4096}
    )
    period, lanes = proj.plan.timing["period"], dsp_lanes(proj.plan)
    assert period <= 100 and lanes <= 20
    assert (rep["hardware"]["cycles"], rep["hardware"]["dsp"]) == (period, lanes)
    # the densities the walk chose are the model's
    m = {lay["layer"]: lay for lay in rep["layers"] if lay["weights"] == "kernel"}
    for name, d in walk[-1]["densities"].items():
        assert m[name]["nonzeros"] <= round(d * m[name]["params"])
    assert "cycles/frame" in r.stdout and "--budget cycles=100,dsp=20: densities" in r.stdout, r.stdout


@pytest.mark.keras
def test_compress_meets_a_block_ram_budget_with_fewer_bits(tmp_path):
    """--budget bram on the LSTM engine, quantize alone: the walk lowers the LSTM's weight
    bits until its PE memories fit; the memories recounted here from the written model's plan."""
    import hlsgen
    from hlsgen.engines.resources import bram18

    out = tmp_path / "l.h5"
    r = main_run("compress", "lstm_sparse_float", "-o", out, "--steps", "quantize", "--pe", "8", "--budget",
                 "bram=8", "--epochs", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    walk = rep["search"]
    assert walk[0]["bram"] > 8 >= walk[-1]["bram"] and len(walk) >= 2
    bits = rep["options"]["layer_bits"]["lstm"]
    assert bits < 8 and walk[-1]["bits"]["lstm"] == bits
    proj = hlsgen.convert(str(out), None, engine={"pe": 8})
    plan = proj.plan
    assert plan.weight_width <= bits  # the quantizer's grid is what the engine stores
    # the PE memories (entries, pointers) are the ones big enough for block RAM
    blocks = plan.pe * (
        bram18(plan.depth, plan.code_width + plan.index_bits) + bram18(plan.ncol, plan.addr_bits + plan.count_bits)
    )
    assert blocks == rep["hardware"]["bram"] <= 8
    assert rep["hardware"]["dsp"] == 8 + 3 * plan.ew_lanes + 1  # PEs, element-wise lanes, the Dense head


@pytest.mark.keras
def test_compress_budget_bad_input(tmp_path):
    x = tmp_path / "x.h5"
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--rank", "svd"), "--rank svd", "vbmf")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--density", "0.2", "--budget", "bram=1"),
                   "--density 0.2 with --budget", "LAYER=D")  # fmt: skip
    one_line_error(main_run("compress", "cnn_small_float", "-o", x, "--attention", "1000"), "add distill")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--steps", "distill", "--attention", "1000"),
                   "mlp_tiny_float", "has none")  # fmt: skip
    one_line_error(
        main_run("compress", "mlp_tiny_float", "-o", x, "--budget", "bram=1", "--target-ratio", "5"), "not both"
    )
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", x, "--steps", "prune", "--budget", "bram=1"),
                   "mlp_tiny_float", "add quantize")  # fmt: skip
    # no configuration meets it: the walk has no move that lowers cycles (no pruning)
    r = main_run("compress", "mlp_tiny_float", "-o", x, "--steps", "quantize", "--budget", "cycles=1", "--epochs", "1")
    one_line_error(r, "mlp_tiny_float", "--budget cycles=1", "no configuration")
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.keras
def test_attention_transfer_pulls_the_student_maps_to_the_teacher():
    """Attention maps against a numpy computation; fine-tuning with the attention term brings
    a perturbed student's maps closer to the teacher's than fine-tuning without it."""
    import tensorflow as tf

    from hlsgen.compress.finetune import Distill, attention_map, finetune, resolution_outputs, teacher_attention
    from hlsgen.data import digits
    from hlsgen.frontends.keras.loader import load_model_file
    from hlsgen.zoo import path as zoo_path

    a = np.random.default_rng(3).normal(size=(5, 4, 6, 7)).astype(np.float32)
    q = (a**2).mean(-1).reshape(5, -1)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    assert np.allclose(attention_map(tf.constant(a)).numpy(), q, atol=1e-6)

    xtr, _, ytr, _ = digits()
    x, y = xtr[:256, ..., None].astype(np.float32), ytr[:256]
    teacher = load_model_file(str(zoo_path("cnn_small_float")))
    maps = teacher_attention(teacher, x)
    assert sorted(maps) == sorted(resolution_outputs(teacher)) and len(maps) >= 2
    logits = teacher.predict(x, verbose=0)

    def distance(student):
        layers = resolution_outputs(student)
        probe = tf.keras.Model(student.inputs, [layers[k].output for k in maps])
        return sum(float(np.mean((attention_map(tf.constant(o)).numpy() - maps[k]) ** 2))
                   for k, o in zip(maps, probe.predict(x, verbose=0), strict=True))  # fmt: skip

    result = {}
    for beta in (0.0, 1000.0):
        student = tf.keras.models.clone_model(teacher)
        rng = np.random.default_rng(0)
        student.set_weights(
            [w + 0.3 * rng.normal(size=w.shape).astype(np.float32) * np.std(w) for w in teacher.get_weights()]
        )
        before = distance(student)
        finetune(student, x, y, 2, distill=Distill(logits, 4.0, 0.0, beta, maps), seed=0)
        result[beta] = distance(student)
    assert result[1000.0] < 0.5 * before and result[1000.0] < 0.7 * result[0.0], (before, result)


@pytest.mark.slow
@pytest.mark.keras
def test_compress_meets_a_lut_budget_by_yosys(tmp_path):
    """--budget lut: Yosys runs on the points that meet everything else; the walk lowers weight
    bits until the LUTs fit; `hlsgen synth` of the written model, run here, counts the same."""
    out = tmp_path / "m.h5"
    r = main_run("compress", "mlp_tiny_float", "-o", out, "--steps", "quantize", "--budget", "lut=2300",
                 "--epochs", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    walk = rep["search"]
    assert all(p["lut"] is not None for p in walk) and walk[-1]["lut"] <= 2300
    assert walk[0]["lut"] > 2300 and rep["options"]["layer_bits"] != {"dense": 8, "dense_1": 8}
    proj = tmp_path / "p"
    assert main_run("convert", out, "-o", proj).returncode == 0
    r = main_run("synth", proj, "--target", "xilinx")
    assert r.returncode == 0, r.stdout + r.stderr
    lut = json.loads((proj / "synth.json").read_text())["resources"]["xilinx"]["LUT"]
    assert lut == rep["hardware"]["lut"] <= 2300


def test_block_mask_keeps_the_strongest_blocks():
    from hlsgen.compress.gmp import block_mask, divisor_at_most

    rng = np.random.default_rng(11)
    for shape, block, d in (((3, 3, 8, 12), (4, 4), 0.3), ((64, 30), (8, 4), 0.1), ((9, 5), (4, 4), 0.5)):
        w = rng.normal(size=shape)
        m = block_mask(w, block, d)
        mat, mm = w.reshape(-1, shape[-1]), m.reshape(-1, shape[-1])
        r, c = divisor_at_most(mat.shape[0], block[0]), divisor_at_most(mat.shape[1], block[1])
        assert mat.shape[0] % r == 0 and mat.shape[1] % c == 0 and r <= block[0] and c <= block[1]
        blocks = {(i, j): mm[i * r : (i + 1) * r, j * c : (j + 1) * c] for i in range(mat.shape[0] // r)
                  for j in range(mat.shape[1] // c)}  # fmt: skip
        assert all(b.min() == b.max() for b in blocks.values())  # whole blocks, kept or pruned
        kept = {k for k, b in blocks.items() if b.max()}
        assert len(kept) == round(d * len(blocks))
        norm = {k: np.linalg.norm(mat[k[0] * r : (k[0] + 1) * r, k[1] * c : (k[1] + 1) * c]) for k in blocks}
        assert min(norm[k] for k in kept) >= max(norm[k] for k in blocks if k not in kept)


@pytest.mark.keras
def test_block_pruning_becomes_skipped_tiles(tmp_path):
    """--block 4x4: the CNN engine folded at PE 4 x SIMD 4 stores (and spends cycles on)
    exactly the kept blocks; scattered pruning at the same density leaves almost every tile."""
    import hlsgen

    tiles = {}
    for how in ("block", "scattered"):
        out = tmp_path / f"{how}.h5"
        extra = ["--block", "4x4"] if how == "block" else []
        r = main_run("compress", "mlp_tiny_float", "-o", out, "--steps", "prune,quantize", "--density", "0.25",
                     "--density", "dense_1=1", "--epochs", "1", *extra)  # fmt: skip
        assert r.returncode == 0, r.stderr
        proj = hlsgen.convert(str(out), None, engine={"fold": {"dense": (4, 4), "dense_1": (2, 4)}})
        mvu = {s.layers[0]: s for s in proj.plan.mvus}["dense"]
        k = next(n for n in proj.graph.nodes if n.name == "dense").kernel.raw
        nz_blocks = int((k.reshape(16, 4, 8, 4) != 0).any(axis=(1, 3)).sum())  # 64x32 in 4x4 blocks
        assert mvu.p.tiles == nz_blocks
        tiles[how] = mvu.p.tiles
    assert tiles["block"] <= round(0.25 * 128) and tiles["scattered"] > 100
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", tmp_path / "x.h5", "--block", "4"), "--block 4")
    one_line_error(main_run("compress", "mlp_tiny_float", "-o", tmp_path / "x.h5", "--steps", "quantize",
                            "--block", "4x4"), "add prune")  # fmt: skip

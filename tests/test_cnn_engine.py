"""The streaming CNN engine: plan, cycle model, RTL (cocotb + Verilator) and HLS C++ (g++)
against the reference, on the zoo CNNs (every held-out image) and on random CNNs."""

from __future__ import annotations

import numpy as np
import pytest

from hlsgen.backends.cnn_hls import write_hls
from hlsgen.backends.cnn_verilog import write_rtl
from hlsgen.backends.csim import csim
from hlsgen.engines.cnn import plan_cnn
from hlsgen.engines.cnn.cycles import Deadlock, bound, simulate
from hlsgen.engines.cnn.flow import rtl_check
from hlsgen.engines.cnn.plan import conv_matrix, lane_codes, plan_stages, stored_tiles, tile_counts
from hlsgen.engines.cnn.synthetic import cnv, random_cnn
from hlsgen.engines.lstm.synthetic import random_inputs
from hlsgen.errors import HlsgenError
from hlsgen.project import convert
from hlsgen.reference.execute import predict_int
from hlsgen.simulate import lint

ZOO_CNNS = ["cnn_small", "cnn_binary", "cnn_ternary", "cnn_po2", "cnn_dw"]


def sweep_config(i: int) -> dict:
    """Configuration i of the randomized regression: a random CNN and a random folding budget."""
    rng = np.random.default_rng(1000 + i)
    return {"seed": 1000 + i, "lanes": int(rng.choice([1, 2, 4, 8, 16, 64])), "p": float(rng.choice([0.0, 0.3]))}


def run_config(cfg: dict, tmp_path, frames: int = 24):
    g = random_cnn(cfg["seed"])
    check_design(g, plan_cnn(g, lanes=cfg["lanes"]), tmp_path, cfg["seed"], cfg["p"], frames)


def check_design(g, plan, tmp_path, seed: int, p: float, frames: int = 24):
    """Lint, C simulation (ap and ac) and RTL with back-pressure against the reference; the
    first frames' cycles against the model."""
    x = random_inputs(g, frames, seed)
    expected = predict_int(g, x).reshape(frames, -1)
    rtl = write_rtl(plan, tmp_path / "rtl")
    assert lint(tmp_path / "rtl", rtl["sources"], rtl["top"]) == ""
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in ("ap", "ac"):
        y = csim(hls, tmp_path / "hls", x, tmp_path / "csim", flavour)
        assert np.array_equal(y, expected), f"C simulation ({flavour}) differs"
    res = rtl_check(
        g,
        plan,
        rtl,
        tmp_path / "rtl",
        x,
        tmp_path / "work",
        seed=seed,
        p_bubble=p,
        p_stall=p,
        probe=3,
    )
    assert res["mismatches"] == 0 and res["bad_tlast"] == 0, res["first_mismatches"]
    assert res["cycles_equal"], (res["last_out"], res["model_last_out"])


# the fast subset covers every stage kind and datapath: 1-D with XNOR-popcount (3), a 1-D
# residual with a standalone activation and both poolings (5), a 2-D residual (6), depthwise
# lanes with window pooling (14)
FAST = [3, 5, 6, 14]


@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("i", FAST)
def test_random_cnn_fast(i, tmp_path):
    run_config(sweep_config(i), tmp_path)


@pytest.mark.slow
@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("i", [i for i in range(40) if i not in FAST])
def test_random_cnn_regression(i, tmp_path):
    run_config(sweep_config(i), tmp_path)


def test_zero_tiles_are_skipped_and_counted():
    w = np.zeros((8, 4), dtype=np.int64)
    w[0, 0] = 3
    w[5, 3] = -1
    assert tile_counts(w, 1, 1).tolist() == [1, 1, 1, 1]  # an all-zero group still costs one tile
    assert tile_counts(w, 2, 4).tolist() == [1, 1]
    assert tile_counts(w, 4, 2).tolist() == [2]


def test_stored_tiles_are_the_non_zero_blocks_in_read_order():
    rng = np.random.default_rng(5)
    for trial in range(30):
        pe, simd = int(rng.choice([1, 2, 4])), int(rng.choice([1, 3, 4]))
        nf, sf = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        w = rng.integers(-3, 4, size=(sf * simd, nf * pe)) * (rng.random((sf * simd, nf * pe)) < 0.3)
        if trial % 5 == 0:
            w[:, :pe] = 0  # a group with no non-zero tile
        tiles = stored_tiles(w, pe, simd, "mul")
        want = []  # tile by tile: group g, input fold s, block [PE, SIMD]
        for g in range(nf):
            blocks = [(s, w[s * simd : (s + 1) * simd, g * pe : (g + 1) * pe].T) for s in range(sf)]
            nz = [(s, b) for s, b in blocks if np.any(b)] or [blocks[0]]
            want += [(s, int(k == len(nz) - 1), b) for k, (s, b) in enumerate(nz)]
        assert len(tiles) == len(want) == tile_counts(w, pe, simd).sum()
        for k, (s, last, b) in enumerate(want):
            assert (tiles.sf[k], tiles.last[k]) == (s, last)
            assert np.array_equal(tiles.codes[k], b)
    po2 = np.array([[4, -1], [0, -8]])
    assert lane_codes(po2, "shift").tolist() == [[2 << 2 | 1, 0 << 2 | 2 | 1], [0, 3 << 2 | 2 | 1]]
    assert lane_codes(po2, "xnor").tolist() == [[0, 1], [0, 1]]


def test_event_model_equals_the_clocked_model():
    """The cycle model jumps from event to event; run clock by clock it must give the same
    cycle for every frame and the same FIFO peaks, with roomy, random and one-deep FIFOs
    (back-pressure, a branch that must wait, deadlock)."""
    rng = np.random.default_rng(7)
    compared = deadlocks = 0
    for seed in range(70):
        try:
            plan = plan_stages(random_cnn(seed), {}, None, None, int(rng.choice([1, 8, 64])), 200.0)
        except HlsgenError:
            continue
        for trial in range(3):
            for s in plan.stages:
                if s.kind == "fifo":
                    s.p.depth = [s.items_in + 2, int(rng.integers(1, s.items_in + 3)), 1][trial]
            got = []
            for clocked in (True, False):
                try:
                    got.append(simulate(plan, 3, clocked=clocked))
                except Deadlock:
                    got.append("deadlock")
            assert got[0] == got[1], (seed, trial)
            compared += 1
            deadlocks += got[0] == "deadlock"
    assert compared > 150 and 0 < deadlocks < compared


def test_verify_draws_fewer_random_inputs_for_a_large_model():
    from hlsgen.verify import random_count

    assert random_count(random_cnn(3)) == 256
    assert random_count(cnv(0)) == 16  # 60 M MACs per frame: C simulation stays in seconds


@pytest.mark.parametrize("weights,lanes", [("ternary", 2048), ("binary", 64)])
def test_cnv_plans_at_the_bottleneck(weights, lanes):
    """FINN's CNV topology (32 x 32 x 3, 1.5 M weights) plans in seconds and streams at its
    bottleneck: a frame every max over layers of (stored tiles x items) cycles."""
    plan = plan_cnn(cnv(1, weights), lanes=lanes)
    slowest = max(s.p.tiles * s.items_in for s in plan.mvus)
    assert plan.timing["period"] == slowest
    assert sum(s.p.lanes for s in plan.mvus) <= lanes
    if weights == "ternary":
        assert plan.timing["period"] == max(bound(plan).values())  # dense at this folding


def test_depthwise_matrix_is_block_diagonal():
    g = random_cnn(3)
    for seed in range(40):
        g = random_cnn(seed)
        dws = [n for n in g if n.op == "Conv" and n.depthwise]
        if dws:
            break
    n = dws[0]
    w = conv_matrix(n)
    k = n.kernel.raw
    c = k.shape[-2]
    rows, cols = np.nonzero(w)
    assert np.all(rows % c == cols // k.shape[-1])  # input channel of a row feeds only its outputs


def test_folding_meets_budget_and_bad_folds_are_refused():
    proj = convert("cnn_small", hardware=False)
    plan = plan_cnn(proj.graph, dsp=8)
    assert plan.summary()["dsp_lanes"] <= 8
    big = plan_cnn(proj.graph, lanes=64)
    assert big.timing["period"] < plan.timing["period"]
    with pytest.raises(HlsgenError, match="PE=3 does not divide the 8 output channels"):
        plan_cnn(proj.graph, fold={"conv1": (3, 1)})
    with pytest.raises(HlsgenError, match="SIMD=5 does not divide the 9 inputs"):
        plan_cnn(proj.graph, fold={"conv1": (1, 5)})
    with pytest.raises(HlsgenError, match="does not have"):
        plan_cnn(proj.graph, fold={"nope": (1, 1)})


@pytest.mark.keras
@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("name", ZOO_CNNS)
def test_zoo_cnn_every_heldout_image(name, tmp_path, rtl_frames=24):
    """C simulation (ap and ac) equals the reference on all 450 held-out digits, and the RTL
    (bubbles and back-pressure) on the first 24 (all 450 in make regress); the first frames'
    timing equals the cycle model; the reference equals QKeras (test_zoo)."""
    from hlsgen.zoo.build import digits

    proj = convert(name, tmp_path / "out")
    _, xte, _, _ = digits()
    x = proj.quantize_input(xte[..., None])
    expected = proj.predict_int(x).reshape(len(x), -1)
    hw = proj.hardware
    for flavour in ("ap", "ac"):
        y = csim({"top": hw["hls_top"]}, tmp_path / "out" / "hls", x, tmp_path / "csim", flavour)
        assert np.array_equal(y, expected)
    res = rtl_check(
        proj.graph,
        proj.plan,
        hw,
        tmp_path / "out" / "rtl",
        x[:rtl_frames],
        tmp_path / "work",
        p_bubble=0.2,
        p_stall=0.3,
    )
    assert res["ok"], {k: res[k] for k in ("mismatches", "bad_tlast", "last_out", "model_last_out")}
    if name in ("cnn_binary", "cnn_ternary", "cnn_po2"):
        assert all(s.p.datapath in ("shift", "xnor") for s in proj.plan.mvus)
    if name == "cnn_binary":  # binary activations into binary layers: XNOR-popcount
        assert [s.p.datapath for s in proj.plan.mvus] == ["shift", "xnor", "xnor"]


@pytest.mark.slow
@pytest.mark.keras
@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("name", ZOO_CNNS)
def test_zoo_cnn_every_heldout_image_in_rtl(name, tmp_path):
    """The same, with all 450 held-out digits through the RTL."""
    test_zoo_cnn_every_heldout_image(name, tmp_path, rtl_frames=450)


@pytest.mark.rtl
def test_rtl_check_can_fail(tmp_path):
    """A flipped weight bit in a memory image is caught."""
    g = random_cnn(1)
    plan = plan_cnn(g)
    rtl = write_rtl(plan, tmp_path / "rtl")
    mem = sorted((tmp_path / "rtl").glob("*_w.mem"))[0]
    lines = mem.read_text().splitlines()
    lines[0] = format(int(lines[0], 16) ^ 1, f"0{len(lines[0])}x")
    mem.write_text("\n".join(lines) + "\n")
    x = random_inputs(g, 8, 1, zero_fraction=0.0)
    res = rtl_check(g, plan, rtl, tmp_path / "rtl", x, tmp_path / "work", probe=1)
    assert res["mismatches"] > 0


@pytest.mark.keras
@pytest.mark.rtl
def test_binary_cnn_uses_no_dsp(tmp_path):
    """Binary weights become sign selection: Yosys maps no multiplier (and finds no latch)."""
    from hlsgen.synth import run_yosys

    proj = convert("cnn_binary", tmp_path / "out")
    hw = proj.hardware
    res = run_yosys(tmp_path / "out" / "rtl", hw["top"], hw["sources"], "xilinx")
    assert res["DSP"] == 0


def test_cli_cnn_option_errors(tmp_path, capsys):
    """Bad engine options: one line on stderr naming the layer or option, exit status 2."""
    from hlsgen.cli import main

    for args, msg in (
        (["--fold", "conv1=3,1"], "layer 'conv1' (Conv): PE=3 does not divide"),
        (["--fold", "conv1"], "write LAYER=PE,SIMD"),
        (["--fold", "fcx=1,1"], "does not have"),
        (["--pe", "4"], "do not apply to the streaming CNN engine"),
        (["--fps", "-1"], "positive frame rate"),
    ):
        assert main(["convert", "cnn_small", "-o", str(tmp_path / "o"), *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err and "Traceback" not in err, err


def _tiny_graph(extra):
    from hlsgen.fixed import FixedType
    from hlsgen.ir import Conv, Graph, Input, Weight

    rng = np.random.default_rng(0)
    nodes = [Input("input", [], shape=(3, 3, 2), type=FixedType(4, 1, False))]
    nodes += extra(rng, Conv, Weight, FixedType)
    return Graph(nodes)


def test_planner_refuses_what_it_cannot_stream():
    def big_kernel(rng, Conv, Weight, FixedType):
        k = Weight(rng.integers(-3, 4, size=(5, 5, 2, 4)), FixedType(4, 1))
        return [Conv("conv_big", ["input"], kernel=k, strides=(1, 1), padding="same")]

    with pytest.raises(HlsgenError, match=r"layer 'conv_big' \(Conv\): kernel 5x5 is larger than its 3x3 input"):
        plan_cnn(_tiny_graph(big_kernel))


@pytest.mark.slow
@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("hw,k,stride", [((8, 8), 3, 1), ((7, 9), 5, 1), ((9, 6), 3, 2), ((6, 5), (3, 1), 1)])
def test_same_padding_costs_no_cycle_of_its_own(hw, k, stride):
    """A 'same' convolution whose matrix-vector unit takes a window a cycle streams a frame
    every H x W cycles, one per pixel (the input's own bound), not one per padded position;
    a single frame still comes out (its last windows do not wait for a next frame)."""
    from hlsgen.fixed import FixedType
    from hlsgen.ir import Activation, Conv, Graph, Input, Weight

    rng = np.random.default_rng(5)
    kk = (k, k) if isinstance(k, int) else k
    kern = Weight(rng.integers(-3, 4, size=(*kk, 1, 1)), FixedType(4, 1))
    g = Graph(
        [
            Input("input", [], shape=(*hw, 1), type=FixedType(4, 1, False)),
            Conv("conv", ["input"], kernel=kern, strides=(stride, stride), padding="same"),
            Activation("q", ["conv"], function="requant", type=FixedType(4, 2, False, "RND_CONV", "SAT")),
        ]
    )
    g.infer()
    g.meta["name"] = "same_pad"
    plan = plan_cnn(g, fold={"conv": (1, kk[0] * kk[1])}, lanes=64)  # one tile: a window a cycle
    win = next(s for s in plan.stages if s.kind == "window").p
    assert win.mr + win.mc > 0  # trailing padding shares its cycles
    assert plan.timing["period"] == hw[0] * hw[1]
    one = simulate(plan, 1)
    assert one["last_out"][0] < 3 * hw[0] * hw[1]
    # where the matrix-vector unit sets the pace the sharing would buy nothing: not kept
    slow = plan_cnn(g, fold={"conv": (1, 1)}, lanes=64)
    win = next(s for s in slow.stages if s.kind == "window").p
    assert win.mr == win.mc == 0 and slow.timing["period"] == max(s.p.tiles * s.items_in for s in slow.mvus)


@pytest.mark.rtl
@pytest.mark.gxx
def test_a_standalone_activation_takes_an_item_every_cost_cycles(tmp_path):
    """hg_proc starts the next item as the last one's result leaves: a max pool (cost 1) takes a
    window a cycle and a standalone activation after it (latency 1: cost 2) an item every two
    cycles, which sets the frame period here (the planner says so); exact, RTL cycles = model."""
    from hlsgen.fixed import FixedType
    from hlsgen.ir import Activation, Conv, Graph, Input, Pool, Weight

    rng = np.random.default_rng(5)
    kern = Weight(rng.integers(-3, 4, size=(3, 3, 1, 2)), FixedType(4, 1))
    g = Graph(
        [
            Input("input", [], shape=(8, 8, 1), type=FixedType(4, 1, False)),
            Conv("conv", ["input"], kernel=kern, strides=(1, 1), padding="same"),
            Activation("q", ["conv"], function="requant", type=FixedType(6, 3, True, "RND_CONV", "SAT")),
            Pool("pool", ["q"], mode="max", pool_size=(2, 2), strides=(1, 1)),
            Activation("r", ["pool"], function="requant", relu=True, type=FixedType(4, 2, False, "RND_CONV", "SAT")),
        ]
    )
    g.infer()
    g.meta["name"] = "act_after_pool"
    plan = plan_cnn(g, fold={"conv": (2, 9)}, lanes=64)  # the conv: a window a cycle, 64 a frame
    act = next(s for s in plan.stages if s.kind == "act")
    pool = next(s for s in plan.stages if s.kind == "reduce")
    assert (pool.p.cost, act.p.cost, act.items_in) == (1, 2, 7 * 7)
    assert plan.timing["period"] == 2 * 7 * 7  # was 3 an item before
    assert any(n.startswith("r: this activation stands alone") and "max pool" in n for n in plan.notes)
    check_design(g, plan, tmp_path, seed=5, p=0.3, frames=12)


def test_depthwise_with_a_channel_multiplier(tmp_path):
    """Depthwise 3x3 with 3 outputs per channel: a block-sparse matrix whose zero tiles are
    skipped (not the one-lane-per-channel diagonal); exact in C simulation and RTL."""
    from hlsgen.fixed import FixedType
    from hlsgen.ir import Conv, Dense, Graph, Input, Reshape, Weight

    rng = np.random.default_rng(4)
    k = Weight(rng.integers(-3, 4, size=(3, 3, 2, 3)), FixedType(4, 1))
    g = Graph(
        [
            Input("input", [], shape=(5, 4, 2), type=FixedType(4, 1, False)),
            Conv("dw", ["input"], kernel=k, strides=(1, 1), padding="same", depthwise=True),
            Reshape("flat", ["dw"], shape=(120,)),
            Dense("fc", ["flat"], kernel=Weight(rng.integers(-3, 4, size=(120, 4)), FixedType(4, 1))),
        ]
    )
    g.infer()
    g.meta["name"] = "dw_mult"
    plan = plan_cnn(g, fold={"dw": (3, 1)}, lanes=64)  # a group: one channel's 3 outputs
    dw = plan.mvus[0].p
    assert not dw.diag and dw.tiles <= dw.nf * dw.sf // 2  # the other channel's rows skipped
    check_design(g, plan, tmp_path, seed=4, p=0.3, frames=12)


@pytest.mark.rtl
@pytest.mark.gxx
def test_a_stream_feeds_any_number_of_layers(tmp_path):
    """The input feeds three branches and a residual output feeds two adds and a conv: chains
    of two-way forks, FIFOs sized by the cycle model, exact in C simulation and RTL."""
    from hlsgen.ir import Add, Dense, Reshape

    def fan_out(rng, Conv, Weight, FixedType):
        def k(cin, cout, size=1):
            return Weight(rng.integers(-3, 4, size=(size, size, cin, cout)), FixedType(4, 1))

        convs = [Conv(f"b{j}", ["input"], kernel=k(2, 2, 1 + j % 2), strides=(1, 1), padding="same") for j in range(3)]
        return [
            *convs,
            Add("s01", ["b0", "b1"]),
            Add("s012", ["s01", "b2"]),
            Conv("c3", ["s012"], kernel=k(2, 2, 3), strides=(1, 1), padding="same"),
            Add("s3", ["c3", "s012"]),
            Add("s4", ["s012", "s3"]),
            Reshape("flat", ["s4"], shape=(18,)),
            Dense("fc", ["flat"], kernel=Weight(rng.integers(-3, 4, size=(18, 4)), FixedType(4, 1))),
        ]

    g = _tiny_graph(fan_out)
    g.infer()
    g.meta["name"] = "fan_out"
    plan = plan_cnn(g, lanes=4)
    forks = [s for s in plan.stages if s.kind == "dup"]
    assert len(forks) == 2 + 2  # input: 3 users; s012: 3 users
    check_design(g, plan, tmp_path, seed=5, p=0.3, frames=12)


@pytest.mark.keras
def test_cli_refuses_shapes_the_engine_cannot_stream(tmp_path, capsys):
    """Dilation, grouped convolution and causal padding: one line naming the layer, exit 2."""
    import tensorflow as tf

    from hlsgen.cli import main

    L = tf.keras.layers
    cases = {
        "dilated": ([L.InputLayer((8, 8, 2)), L.Conv2D(4, 3, dilation_rate=2, name="c_dil")], "dilation_rate"),
        "grouped": ([L.InputLayer((8, 8, 4)), L.Conv2D(4, 3, groups=2, name="c_grp")], "groups=2"),
        "causal": ([L.InputLayer((16, 2)), L.Conv1D(4, 3, padding="causal", name="c_causal")], "padding 'causal'"),
    }
    for name, (layers, msg) in cases.items():
        path = tmp_path / f"{name}.h5"
        tf.keras.Sequential(layers).save(path)
        assert main(["convert", str(path), "-o", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err.strip()
        layer = layers[-1].name
        assert f"{name}.h5" in err and f"layer '{layer}'" in err and msg in err and "\n" not in err, err


@pytest.mark.keras
@pytest.mark.rtl
@pytest.mark.gxx
def test_qkeras_residual_block_end_to_end(tmp_path, capsys):
    """A QKeras residual block (conv -> relu -> conv, Add with the block's input): the reference
    equals QKeras, and the C simulation and the RTL equal the reference (hlsgen verify)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense

    from hlsgen.cli import main

    tf.keras.utils.set_random_seed(3)
    kq = "quantized_bits(4,0,alpha=1)"
    x = tf.keras.Input((6, 6, 1))
    q = QActivation("quantized_bits(4,1,keep_negative=False)", name="input_q")(x)
    a = QConv2D(4, 3, padding="same", kernel_quantizer=kq, bias_quantizer=kq, name="c1")(q)
    a = QActivation("quantized_relu(4,2)", name="r1")(a)
    b = QConv2D(4, 3, padding="same", kernel_quantizer=kq, bias_quantizer=kq, name="c2")(a)
    b = QActivation("quantized_relu(4,2)", name="r2")(b)
    y = tf.keras.layers.Add(name="res")([a, b])
    y = tf.keras.layers.Flatten(name="flat")(y)
    y = QDense(3, kernel_quantizer=kq, bias_quantizer=kq, name="fc")(y)
    model = tf.keras.Model(x, y)
    path = tmp_path / "res.h5"
    model.save(path)
    assert main(["convert", str(path), "-o", str(tmp_path / "out")]) == 0
    assert "streaming_cnn" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "out"), "--csim", "--rtl", "--rtl-count", "64"]) == 0
    out = capsys.readouterr().out
    assert out.count("0 mismatches -> EQUAL") == 4 and "equal to the cycle model" in out, out


@pytest.mark.keras
def test_zoo_cnv_is_written_on_request_and_streams_at_the_asked_rate(tmp_path, capsys):
    """The generated CNV zoo model: listed, refused by name with the command to write it,
    written by `hlsgen zoo`, converted exactly at a FINN-like rate (5,000 frames/s)."""
    from hlsgen.cli import main

    assert main(["zoo"]) == 0
    assert "cnv_w1a1" in capsys.readouterr().out
    assert main(["convert", "cnv_w1a1", "-o", str(tmp_path / "p")]) == 2
    assert "hlsgen zoo cnv_w1a1 -o cnv_w1a1.h5" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["zoo", "nope", "-o", str(tmp_path / "m.h5")]) == 2
    assert "not a zoo model" in capsys.readouterr().err
    f = tmp_path / "zoo" / "cnv_w1a1.h5"
    assert main(["zoo", "cnv_w1a1", "-o", str(f)]) == 0
    assert [p.name for p in f.parent.iterdir()] == ["cnv_w1a1.h5"]  # no temporary left
    proj = convert(str(f), tmp_path / "p", engine={"target_fps": 5000, "lanes": 4096})
    assert proj.graph.meta.get("exact", True)
    plan = proj.plan
    assert plan.timing["period"] <= 200e6 / 5000
    assert plan.timing["period"] == max(s.p.tiles * s.items_in for s in plan.mvus)
    kinds = [s.p.datapath for s in plan.mvus]
    assert kinds[0] == "shift" and set(kinds[1:]) == {"xnor"}  # 8-bit pixels, then XNOR-popcount
    assert plan.summary()["dsp_lanes"] == 0


@pytest.mark.slow
@pytest.mark.keras
@pytest.mark.rtl
@pytest.mark.gxx
def test_zoo_cnv_end_to_end(tmp_path):
    """CNV-w2a2 through QKeras, C simulation (ap and ac) and RTL on two frames (~15 minutes)."""
    from hlsgen import zoo
    from hlsgen.verify import verify_against_source, verify_hardware

    f = zoo.write("cnv_w2a2", tmp_path / "cnv_w2a2.h5")
    proj = convert(str(f), tmp_path / "p", engine={"target_fps": 5000, "lanes": 4096})
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(8, 32, 32, 3)).astype(np.float64)
    assert verify_against_source(proj, x)["equal"]
    checks = verify_hardware(proj, x, "random pixels", True, True, 2)
    assert all(c["mismatches"] == 0 for c in checks), checks
    assert all(c.get("cycles_equal_model", True) for c in checks)


@pytest.mark.rtl
@pytest.mark.gxx
def test_shared_weights_use_a_codebook(tmp_path):
    """Layers whose weights take few values (k-means sharing) store codebook indices and look
    the weight up before the multiplier, as EIE does: a conv, a depthwise conv on the diagonal
    lanes and a dense layer; exact in C simulation and RTL; narrower weight memories.  With
    one tile per lane, the codebook would cost more than it saves: weights stay as they are."""
    from hlsgen.fixed import FixedType
    from hlsgen.ir import Conv, Dense, Graph, Input, Reshape, Weight

    rng = np.random.default_rng(11)

    def shared(shape, values, density):
        raw = rng.choice(np.array(values), size=shape) * (rng.random(shape) < density)
        return Weight(raw, FixedType(8, 2))

    g = Graph(
        [
            Input("input", [], shape=(5, 4, 2), type=FixedType(4, 1, False)),
            Conv("c1", ["input"], kernel=shared((3, 3, 2, 4), [-77, -9, 30, 101], 0.6), strides=(1, 1), padding="same"),
            Conv(
                "dw",
                ["c1"],
                kernel=shared((3, 3, 4, 1), [-50, 3, 64], 1.0),
                strides=(1, 1),
                padding="same",
                depthwise=True,
            ),
            Reshape("flat", ["dw"], shape=(80,)),
            Dense("fc", ["flat"], kernel=shared((80, 4), [-120, -1, 7, 44, 90, 127, -66], 0.5)),
        ]
    )
    g.infer()
    g.meta["name"] = "shared"
    fold = {"c1": (1, 1), "dw": (4, 4), "fc": (2, 1)}
    plan = plan_cnn(g, fold=fold, lanes=64)
    q = {s.layers[0]: s.p for s in plan.mvus}
    assert [q[n].datapath for n in ("c1", "dw", "fc")] == ["book", "book", "book"]
    assert q["dw"].diag
    assert [q[n].code_width for n in ("c1", "dw", "fc")] == [3, 2, 3]  # zero + values; dw has no zero
    plain = plan_cnn(g, fold=fold, lanes=64, codebook_bits=0)
    assert [s.p.datapath for s in plain.mvus] == ["mul", "mul", "mul"]
    rows = {r["layer"]: r for r in plan.summary()["mvus"]}
    rows0 = {r["layer"]: r for r in plain.summary()["mvus"]}
    assert all(rows[n]["weight_bits"] < rows0[n]["weight_bits"] for n in rows)
    wide = plan_cnn(g, fold={"c1": (4, 18), "dw": (4, 4), "fc": (4, 80)}, lanes=512)
    assert [s.p.datapath for s in wide.mvus] == ["mul", "book", "mul"]
    check_design(g, plan, tmp_path, seed=11, p=0.3, frames=12)


def test_hls_is_a_dataflow_of_stage_functions(tmp_path):
    """The HLS C++ mirrors the RTL's stages: one function per computing stage called from a
    DATAFLOW top, streams between them; a stream read by k stages is written once per reader
    with a frame of depth (the fan-out model of test_a_stream_feeds_any_number_of_layers runs
    in C simulation there)."""
    import re

    plan = plan_cnn(random_cnn(3), lanes=4)
    hls = write_hls(plan, tmp_path / "hls")
    cpp = (tmp_path / "hls" / f"{hls['top']}.cpp").read_text()
    computing = [s for s in plan.stages if s.kind in ("mvu", "reduce", "gpool", "add", "act")]
    assert len(re.findall(r"^static void \w+_stage\(", cpp, re.M)) == len(computing)
    assert "#pragma HLS DATAFLOW" in cpp and "HG_STREAM<" in cpp
    streams = hls["context"]["streams"]
    assert len(streams) == sum(1 + (s.kind == "add") for s in computing) + 1  # + the output
    forked = [st for st in streams if st["depth"]]  # this model has a residual block
    assert len(forked) == 2 and forked[0]["name"][:3] == forked[1]["name"][:3]
    assert all(f"{st['name']}.write(" in cpp for st in streams)

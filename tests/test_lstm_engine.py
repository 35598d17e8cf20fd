"""The sparse LSTM engine: encoding, pruning, cycle model, and RTL against the reference."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlsgen.backends.csim import csim
from hlsgen.backends.lstm_hls import write_hls
from hlsgen.backends.lstm_verilog import write_rtl
from hlsgen.compress.prune import imbalance, lba_mask, magnitude_mask
from hlsgen.engines.lstm import decode, encode, mac_cycles, plan_lstm
from hlsgen.engines.lstm.flow import rtl_check
from hlsgen.engines.lstm.synthetic import random_inputs, random_lstm
from hlsgen.errors import HlsgenError
from hlsgen.ir import Graph
from hlsgen.reference.execute import predict_int
from hlsgen.simulate import lint
from hlsgen.synth import run_yosys

SCALE = int(os.environ.get("HLSGEN_HYPOTHESIS_SCALE", "1"))
SWEEP_RESULTS: list = []


# ------------------------------------------------------------------ encoding
@st.composite
def sparse_matrices(draw):
    ncol = draw(st.integers(1, 12))
    nrow = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**31))
    density = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    m = rng.integers(-100, 100, size=(ncol, nrow)) * (rng.random((ncol, nrow)) < density)
    return m, draw(st.integers(1, nrow)), draw(st.integers(1, 5))


def fillers_expected(m, pe, b):
    """Independent count: a gap of g zero rows needs floor(g / 2^b) fillers."""
    n = 0
    for p in range(pe):
        for col in m[:, p::pe]:
            rows = np.flatnonzero(col)
            gaps = np.diff(np.concatenate([[-1], rows])) - 1
            n += int(np.sum(gaps // (1 << b)))
    return n


@settings(max_examples=150 * SCALE, deadline=None)
@given(sparse_matrices())
def test_encoding_round_trips_and_counts_fillers(case):
    m, pe, b = case
    entries, pointers, fillers = encode(m, pe, b)

    class P:  # the fields decode() reads
        pass

    p = P()
    p.pe, p.ncol, p.nrow, p.entries, p.pointers = pe, m.shape[0], m.shape[1], entries, pointers
    assert np.array_equal(decode(p), m)
    assert fillers == fillers_expected(m, pe, b)
    for e, ptr in zip(entries, pointers, strict=True):
        assert np.all(e[:, 1] < (1 << b)) and np.all(e[:, 1] >= 0)
        assert ptr[:, 1].sum() == len(e)
    assert sum(len(e) for e in entries) == np.count_nonzero(m) + fillers


# ------------------------------------------------------------------ pruning
def test_lba_pruning_balances_every_pe_and_magnitude_does_not():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(72, 256)) * np.linspace(0.2, 3, 256)  # some rows matter more
    for pe in (4, 8, 16, 32):
        m = lba_mask(w, pe, 0.1)
        counts = [int(m[:, p::pe].sum()) for p in range(pe)]
        assert len(set(counts)) == 1 and abs(sum(counts) - 0.1 * w.size) <= pe
        # within each PE the kept weights are the largest of that PE
        for p in range(pe):
            kept, dropped = np.abs(w[:, p::pe][m[:, p::pe]]), np.abs(w[:, p::pe][~m[:, p::pe]])
            assert kept.min() >= dropped.max()
        g = magnitude_mask(w, 0.1)
        assert imbalance(w * g, pe)["imbalance"] > 1.0
        assert imbalance(w * m, pe)["imbalance"] == 1.0


# ------------------------------------------------------------------ cycle model
def test_cycle_model_bounds_and_skipping():
    g = random_lstm(11, features=6, units=16, density=0.25, pe=4)
    plan = plan_lstm(g, pe=4, scan_width=1)
    full = np.ones(plan.ncol, dtype=bool)
    cyc, work = mac_cycles(plan, full)
    per_pe_work = [len(e) for e in plan.entries]
    assert work == sum(per_pe_work)
    assert cyc >= max(per_pe_work) and cyc >= plan.ncol
    assert cyc <= max(per_pe_work) + plan.ncol + 8
    none = np.zeros(plan.ncol, dtype=bool)
    assert mac_cycles(plan, none) == (plan.ncol + 1, 0)  # the scanner still walks every column
    half = full.copy()
    half[::2] = False
    c2, w2 = mac_cycles(plan, half)
    assert w2 < work and c2 < cyc
    wide = plan_lstm(g, pe=4, scan_width=4)
    assert mac_cycles(wide, none) == (wide.blocks + 1, 0)  # one cycle per block
    assert mac_cycles(wide, full)[1] == work and mac_cycles(wide, full)[0] >= max(per_pe_work)


def test_scan_width_lifts_the_column_floor():
    """Many PEs over few entries each (ESE at P = 1024 in small): with one column per cycle the
    scanner's NCOL cycles bound the MAC phase; the chosen scan width K broadcasts K columns per
    cycle and each PE then spends a cycle only per column it has work for (or per empty block),
    so the phase drops below NCOL and tracks the busiest PE's entries."""
    g = random_lstm(5, features=40, units=32, density=0.1, pe=32)
    one = plan_lstm(g, pe=32, scan_width=1)
    auto = plan_lstm(g, pe=32)
    assert auto.scan_width > 1 and any("scan width" in n for n in auto.notes)
    busiest = max(len(e) for e in auto.entries)
    assert 2 * auto.blocks <= busiest < one.ncol
    rng = np.random.default_rng(0)
    for _ in range(5):
        nz = rng.random(one.ncol) < 0.7
        c1, w1 = mac_cycles(one, nz)
        ck, wk = mac_cycles(auto, nz)
        assert w1 == wk  # the same entries, fewer cycles
        assert c1 >= one.ncol and ck < one.ncol and ck < 0.7 * c1
    # the pointer memory holds one word of K pointers per block
    assert auto.summary()["pointer_memory"]["depth"] == auto.blocks == -(-auto.ncol // auto.scan_width)
    for bad in (3, 0, 64):
        with pytest.raises(HlsgenError, match=f"layer 'lstm'.*scan_width={bad}"):
            plan_lstm(g, pe=32, scan_width=bad)


def test_overlap_gate_replays_a_prescan():
    """A pre-scan gated for G cycles: G = 0 is the plain schedule; for any G the phase after the
    gate is no longer than the plain one; once G is long enough for the input-only blocks to
    drain, what is left is the schedule of the rest alone: the same activations with the
    input-only blocks zeroed, less the one cycle the scanner spends skipping each of them."""
    g = random_lstm(3, features=21, units=16, density=0.3, pe=8)
    plan = plan_lstm(g, pe=8, scan_width=4, overlap=True)
    bx = plan.input_blocks
    assert plan.acc_ram and plan.overlap and bx == 5
    rng = np.random.default_rng(2)
    for _ in range(6):
        nz = rng.random(plan.ncol) < 0.7
        plain = mac_cycles(plan, nz)
        assert mac_cycles(plan, nz, gate=0) == plain
        for gate in (1, 3, 7, 20):
            c, w = mac_cycles(plan, nz, gate=gate)
            assert w == plain[1] and gate < c <= gate + plain[0]
        rest = nz.copy()
        rest[: bx * plan.scan_width] = False
        assert mac_cycles(plan, nz, gate=500)[0] - 500 == mac_cycles(plan, rest)[0] - bx
    off = plan_lstm(g, pe=8, scan_width=4, overlap=False)
    assert not off.overlap and off.acc_ram
    with pytest.raises(HlsgenError, match="layer 'lstm'.*overlap=True needs the accumulators in RAM"):
        plan_lstm(g, pe=8, acc_ram=False, overlap=True)


@pytest.mark.rtl
@pytest.mark.gxx
def test_scan_width_rtl_equals_the_cycle_model(tmp_path):
    """The chosen K (16 over 18 columns: the last block mostly past the end) and K = 4, whose
    blocks straddle the input/recurrent boundary: exact, every phase as modelled.  (K is a
    property of the RTL's scanner only: the HLS C++ is the same for both, simulated once.)"""
    g = random_lstm(6, features=10, units=8, steps=3, density=0.15, pe=16, head=3)
    for k, want in ((None, 16), (4, 4)):
        plan = plan_lstm(g, pe=16, scan_width=k)
        assert plan.scan_width == want
        check_plan(g, plan, tmp_path / f"k{k}", 6, {"scan_width": k}, n=12, flavours=("ap",) if k else ())


# ------------------------------------------------------------------ plan refusals
def test_plan_pads_or_refuses_and_names_the_layer():
    g = random_lstm(1, units=5)
    plan = plan_lstm(g, pe=3)
    assert plan.rows_per_pe == 7 and "padding" in " ".join(plan.notes)
    with pytest.raises(HlsgenError, match="layer 'lstm'.*pe=3.*do not divide"):
        plan_lstm(g, pe=3, pad=False)
    with pytest.raises(HlsgenError, match="pe=0"):
        plan_lstm(g, pe=0)
    with pytest.raises(HlsgenError, match="more PEs than"):
        plan_lstm(g, pe=21)
    with pytest.raises(HlsgenError, match="index_bits=0"):
        plan_lstm(g, index_bits=0)
    with pytest.raises(HlsgenError, match="layer 'lstm'.*afifo_depth=6"):
        plan_lstm(g, afifo_depth=6)
    wide = random_lstm(1, weight_bits=50, input_bits=3, state_bits=4, act_bits=3, features=1, units=2)
    with pytest.raises(HlsgenError, match="layer 'lstm'.*weights need 49 bits.*at most 48"):
        plan_lstm(wide)
    seq = random_lstm(1, units=5, head=3)
    seq.nodes[1].return_sequences = True  # every step's h into the Dense: not streamable here
    with pytest.raises(HlsgenError, match="layer 'lstm'.*return_sequences=True followed by more layers"):
        plan_lstm(seq)
    seq = random_lstm(1, units=5, steps=3, return_sequences=True)
    assert plan_lstm(seq).out_count == 3 * 5
    # a GRU: the same checks name its layer, with reset_after=False (two passes) too
    for ra in (True, False):
        gru = random_lstm(1, units=5, cell="gru", reset_after=ra)
        with pytest.raises(HlsgenError, match="layer 'lstm' \\(GRU\\).*pe=3.*do not divide"):
            plan_lstm(gru, pe=3, pad=False)
    # an activation between stacked layers that is not a requantization: named, with why
    two = random_lstm(1, units=4, layers=2, between="requant")
    two.nodes[2].function = "relu"
    with pytest.raises(HlsgenError, match="layer 'q2' \\(Activation\\).*'relu' between two recurrent layers"):
        plan_lstm(two)


def test_fillers_reported_for_small_index():
    g = random_lstm(2, units=32, density=0.05, pe=2)
    plan = plan_lstm(g, pe=2, index_bits=2)
    assert plan.fillers > 0 and any("filler" in n for n in plan.notes)
    assert plan.summary()["fillers"] == plan.fillers


@pytest.mark.parametrize("seed,density,pe", [(3, 0.05, 2), (4, 0.1, 4), (5, 0.3, 8), (6, 0.6, 4)])
def test_index_bits_chosen_from_the_gaps(seed, density, pe):
    """Without --index-bits the width with the fewest entries on the busiest PE (then the smallest)
    is chosen; checked against the encoder itself at every width (before: always 4 bits)."""
    g = random_lstm(seed, units=32, density=density, pe=pe)
    plan = plan_lstm(g, pe=pe)
    busiest = {b: max(len(e) for e in plan_lstm(g, pe=pe, index_bits=b).entries) for b in range(1, 17)}
    best = min(busiest.values())
    assert busiest[plan.index_bits] == best and plan.index_bits == min(b for b in busiest if busiest[b] == best)
    assert any(n.startswith(f"index_bits={plan.index_bits} chosen") for n in plan.notes)
    assert np.array_equal(decode(plan), plan.matrix)


# ------------------------------------------------------------------ RTL
def sweep_config(i: int) -> dict:
    """Configuration i of the regression sweep (deterministic)."""
    rng = np.random.default_rng(1000 + i)
    units = int(rng.choice([2, 4, 5, 8, 12, 16, 24, 32]))
    pe = int(rng.choice([p for p in (1, 2, 4, 8, 16) if p <= 4 * units]))
    cfg = {
        "graph": dict(
            seed=i,
            features=int(rng.integers(1, 13)),
            units=units,
            steps=int(rng.integers(1, 5)),
            weight_bits=int(rng.integers(4, 17)),
            density=float(rng.uniform(0.05, 0.5)),
            pe=pe if rng.random() < 0.6 else None,  # load-balance-aware or plain magnitude
            input_bits=int(rng.integers(3, 9)),
            state_bits=int(rng.integers(6, 15)),
            act_bits=int(rng.integers(4, 10)),
            head=int(rng.choice([0, 0, 3, 10])),
            head_act=[None, "relu", "requant", "step"][int(rng.integers(0, 4))],
            name=f"sweep{i}",
        ),
        "pe": pe,
        "index_bits": int(rng.choice([2, 4])),
        "afifo_depth": int(rng.choice([2, 4, 8, 16])),
        "jq_depth": int(rng.choice([2, 4, 8])),
        "return_sequences": bool(rng.random() < 0.5),  # only without a head
        "ew_lanes": [None, 1, 2, 4, 8][int(rng.integers(0, 5))],  # None: chosen by the plan
        "scan_width": [None, 1, 2, 4, 8][int(rng.integers(0, 5))],  # columns per scanner block
    }
    # drawn last, so that the LSTM configurations stay as they were: a third are GRUs, half of
    # them without a recurrent bias
    if rng.random() < 1 / 3:
        cfg["graph"].update(cell="gru", recurrent_bias=bool(rng.random() < 0.5))
    # a quarter stack two or three recurrent layers on the one array (sizes drawn, some with an
    # 8-bit requantization between them, a ReLU before it in some)
    if rng.random() < 1 / 4:
        n = int(rng.integers(2, 4))
        sizes = [units] + [int(rng.choice([2, 4, 5, 8, 12, 16])) for _ in range(n - 1)]
        cfg["graph"].update(layers=n, units=sizes, between=["requant", None, "relu"][int(rng.integers(0, 3))])
    # half of the GRUs with reset_after=False (two passes per step; no recurrent bias then)
    if rng.random() < 1 / 2 and cfg["graph"].get("cell") == "gru":
        cfg["graph"]["reset_after"] = False
    return cfg


def run_config(i, tmp_path, n=24, synth=False, cell=None, layers=None):
    cfg = sweep_config(i)
    if cell:
        cfg["graph"]["cell"] = cell
        cfg["graph"].pop("recurrent_bias", None)
    if layers == 1:
        for k in ("layers", "between"):
            cfg["graph"].pop(k, None)
        cfg["graph"]["units"] = (
            cfg["graph"]["units"][0] if isinstance(cfg["graph"]["units"], list) else cfg["graph"]["units"]
        )
    g = random_lstm(**cfg["graph"], return_sequences=cfg["return_sequences"] and not cfg["graph"]["head"])
    plan = plan_lstm(
        g,
        pe=cfg["pe"],
        index_bits=cfg["index_bits"],
        afifo_depth=cfg["afifo_depth"],
        jq_depth=cfg["jq_depth"],
        ew_lanes=cfg["ew_lanes"],
        scan_width=cfg["scan_width"],
    )
    return check_plan(g, plan, tmp_path, i, cfg, n, synth)


def check_plan(g, plan, tmp_path, i, cfg, n=24, synth=False, flavours=("ap", "ac")):
    """Lint, [Yosys,] C simulation (``flavours``) and RTL with back-pressure against the reference."""
    rtl = write_rtl(plan, tmp_path / "rtl")
    assert lint(tmp_path / "rtl", rtl["sources"], rtl["top"]) == "", f"config {i}: lint"
    if synth:  # Yosys: elaborates, maps to 7-series, asserts no latch
        r = run_yosys(tmp_path / "rtl", rtl["top"], rtl["sources"], "xilinx")
        assert r["latches"] == 0 and r["DSP"] >= 1
    x = random_inputs(g, n, seed=i)
    expected = predict_int(g, x).reshape(n, -1)
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in flavours:
        y = csim(hls, tmp_path / "hls", x, tmp_path / "csim", flavour)
        assert np.array_equal(y, expected), f"config {i} {cfg}: C simulation ({flavour}) differs"
    res = rtl_check(g, plan, rtl, tmp_path / "rtl", x, tmp_path / "sim", seed=i, p_bubble=0.3, p_stall=0.3)
    SWEEP_RESULTS.append((i, res["ok"]))
    shutil.rmtree(tmp_path / "sim" / "build", ignore_errors=True)
    summary = {k: v for k, v in res.items() if k not in ("mac", "ew", "head")}
    assert res["ok"], f"config {i} {cfg}: {summary}"
    return res


@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("i", [0, 1, 2, 3])
def test_rtl_sweep_fast(i, tmp_path):
    run_config(i, tmp_path, cell="lstm", layers=1)


@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.parametrize("i,reset_after", [(0, True)])
def test_rtl_sweep_gru_fast(i, reset_after, tmp_path):
    """The first sweep configuration that draws a GRU (reset_after=True; the regress set has more,
    7 with reset_after=False)."""
    cfg = sweep_config(i)
    assert cfg["graph"]["cell"] == "gru" and cfg["graph"].get("reset_after", True) == reset_after
    run_config(i, tmp_path)


@pytest.mark.rtl
@pytest.mark.gxx
@pytest.mark.slow
@pytest.mark.parametrize("i", range(4, 4 + 40))
def test_rtl_sweep_regress(i, tmp_path):
    run_config(i, tmp_path, n=64, synth=i % 4 == 0)


@pytest.mark.rtl
@pytest.mark.gxx
def test_shared_weights_use_a_codebook(tmp_path):
    """Weights that take 7 values (k-means sharing): every PE stores 3-bit indices and looks
    the weight up before its multiplier (EIE); exact in C simulation and RTL; with
    --codebook-bits 0 the weights are stored as they are.  (Yosys: make regress.)"""
    g = random_lstm(21, features=6, units=12, steps=3, weight_bits=10, density=0.4, pe=4, head=3, shared=7)
    plan = plan_lstm(g, pe=4)
    assert plan.codebook is not None and plan.code_width == 3 and 0 in plan.codebook
    plain = plan_lstm(g, pe=4, codebook_bits=0)
    assert plain.codebook is None and plain.code_width == 10
    assert plan.summary()["weight_memory"]["width"] == plain.summary()["weight_memory"]["width"] - 7
    check_plan(g, plan, tmp_path, 21, {"shared": 7}, n=16)


@pytest.mark.slow
@pytest.mark.rtl
def test_shared_weights_synthesize_without_latches(tmp_path):
    g = random_lstm(21, features=6, units=12, steps=3, weight_bits=10, density=0.4, pe=4, head=3, shared=7)
    plan = plan_lstm(g, pe=4)
    rtl = write_rtl(plan, tmp_path / "rtl")
    r = run_yosys(tmp_path / "rtl", rtl["top"], rtl["sources"], "xilinx")
    assert plan.codebook is not None and r["latches"] == 0 and r["DSP"] >= 1


def test_accumulators_go_to_ram_when_the_layout_allows():
    """P divides the units and E divides P: the accumulators are a RAM per PE read by the lanes
    (the sweep and the zoo run both layouts in RTL); otherwise flip-flops, and asking for RAM
    names the layer and the reason."""
    g = random_lstm(7, features=6, units=8, steps=3, density=0.3, pe=4, head=3)
    assert plan_lstm(g, pe=4, ew_lanes=2).acc_ram
    assert not plan_lstm(g, pe=4, ew_lanes=2, acc_ram=False).acc_ram
    assert not plan_lstm(g, pe=16, ew_lanes=2).acc_ram  # 16 PEs do not divide 8 units
    assert not plan_lstm(g, pe=2, ew_lanes=4).acc_ram  # 4 lanes do not divide 2 PEs
    with pytest.raises(HlsgenError, match="layer 'lstm'.*acc_ram=True: 16 PEs do not divide the 8 units"):
        plan_lstm(g, pe=16, acc_ram=True)
    with pytest.raises(HlsgenError, match="acc_ram=True: 4 element-wise lanes do not divide the 2 PEs"):
        plan_lstm(g, pe=2, ew_lanes=4, acc_ram=True)


@pytest.mark.slow
@pytest.mark.rtl
def test_accumulators_in_ram_map_to_lutram(tmp_path):
    """Yosys infers LUTRAM for the accumulators (no flip-flop per accumulator bit)."""
    g = random_lstm(7, features=6, units=32, steps=3, density=0.2, pe=4, head=3)
    figures = {}
    for ram in (True, False):
        plan = plan_lstm(g, pe=4, ew_lanes=2, acc_ram=ram)
        rtl = write_rtl(plan, tmp_path / str(ram))
        figures[ram] = run_yosys(tmp_path / str(ram), rtl["top"], rtl["sources"], "xilinx")
    accumulator_bits = 4 * 32 * plan.acc_width
    assert figures[True]["LUTRAM"] > figures[False]["LUTRAM"]
    assert figures[False]["FF"] - figures[True]["FF"] > 0.8 * accumulator_bits
    assert figures[True]["latches"] == 0


@pytest.mark.rtl
def test_rtl_check_catches_a_wrong_weight(tmp_path):
    """The check must be able to fail: one corrupted weight word must show up."""
    g = random_lstm(7, features=4, units=8, steps=3, density=0.4, pe=2, head=3)
    plan = plan_lstm(g, pe=2)
    rtl = write_rtl(plan, tmp_path / "rtl")
    mem = Path(tmp_path / "rtl" / "lstm_w_pe1.mem")
    lines = mem.read_text().split()
    lines[0] = format(int(lines[0], 16) ^ 0x1, f"0{len(lines[0])}x")  # flip a weight bit
    mem.write_text("\n".join(lines) + "\n")
    res = rtl_check(g, plan, rtl, tmp_path / "rtl", random_inputs(g, 8, 3), tmp_path / "sim", p_bubble=0, p_stall=0)
    assert res["mismatches"] > 0 and not res["ok"]


@pytest.mark.rtl
@pytest.mark.parametrize("n", [150, pytest.param(450, marks=pytest.mark.slow)])
def test_zoo_lstm_every_heldout_sequence(n, tmp_path):
    """lstm_sparse at P=8: the first 150 held-out digits (all 450 in `make regress`), random
    bubbles and back-pressure, every step's MAC cycles equal to the cycle model."""
    import hlsgen
    from hlsgen.zoo.build import digits

    proj = hlsgen.convert("lstm_sparse")
    _, xte, _, _ = digits()
    x = proj.quantize_input(xte)[:n]
    plan = plan_lstm(proj.graph, pe=8)
    rtl = write_rtl(plan, tmp_path / "rtl")
    res = rtl_check(proj.graph, plan, rtl, tmp_path / "rtl", x, tmp_path / "sim", p_bubble=0.2, p_stall=0.3)
    assert res["sequences"] == n and res["words"] == 10 * n and res["steps"] == 8 * n
    assert res["ok"], {k: v for k, v in res.items() if k not in ("mac", "ew", "head")}


@pytest.mark.gxx
def test_zoo_lstm_csim_every_heldout_sequence(tmp_path):
    """The HLS C++ (ap_fixed and ac_fixed) equals the reference on all 450 held-out digits."""
    import hlsgen
    from hlsgen.zoo.build import digits

    proj = hlsgen.convert("lstm_sparse")
    _, xte, _, _ = digits()
    x = proj.quantize_input(xte)
    expected = proj.predict_int(x)
    plan = plan_lstm(proj.graph, pe=8)
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in ("ap", "ac"):
        y = csim(hls, tmp_path / "hls", x, tmp_path / "w", flavour)
        assert y.shape == (450, 10) and np.array_equal(y, expected), flavour


@pytest.mark.gxx
def test_csim_catches_a_wrong_table(tmp_path):
    """The C simulation check must be able to fail: change one gate table value."""
    g = random_lstm(5, features=3, units=4, steps=3, density=0.6, pe=2)
    plan = plan_lstm(g, pe=2)
    plan.gate.values[0, plan.gate.values.shape[1] // 2] += 1
    hls = write_hls(plan, tmp_path / "hls")
    x = random_inputs(g, 32, 1)
    y = csim(hls, tmp_path / "hls", x, tmp_path / "w", "ap")
    assert not np.array_equal(y, predict_int(g, x))


# ------------------------------------------------------------------ GRU on the same array
def test_gru_plan_stacks_the_rows_and_keeps_the_candidate_parts_apart():
    """Rows [z; r; h_x; h_h], columns [x; h_q]: the input rows hold no U_h and the recurrent
    rows no W_h, so the MAC phase gives x W_h and h_q U_h apart (reset_after=True)."""
    g = random_lstm(3, features=5, units=6, density=0.5, cell="gru")
    gru = g.nodes[1]
    plan = plan_lstm(g, pe=4)
    u, f = 6, 5
    assert plan.kind == "gru" and plan.matrix.shape == (f + u, 4 * u)
    assert np.array_equal(plan.matrix[:f, : 3 * u], gru.kernel.raw)
    assert not plan.matrix[:f, 3 * u :].any() and not plan.matrix[f:, 2 * u : 3 * u].any()
    assert np.array_equal(plan.matrix[f:, 3 * u :], gru.recurrent.raw[:, 2 * u :])
    assert np.array_equal(decode(plan), plan.matrix)
    assert plan.cell is None and plan.ew_latency == 3 + plan.gate.latency + plan.cand.latency


@pytest.mark.rtl
def test_gru_rtl_check_catches_a_wrong_candidate(tmp_path):
    """The GRU element-wise unit is checked: a changed candidate table shows up."""
    g = random_lstm(8, features=3, units=4, steps=3, density=0.6, head=3, cell="gru")
    plan = plan_lstm(g, pe=2)
    rtl = write_rtl(plan, tmp_path / "rtl")
    mem = Path(tmp_path / "rtl" / "lstm_cand_v.mem")
    words = [format(int(v, 16) ^ 1, f"0{len(v)}x") for v in mem.read_text().split()]  # every hh off by one
    mem.write_text("\n".join(words) + "\n")
    res = rtl_check(g, plan, rtl, tmp_path / "rtl", random_inputs(g, 16, 3), tmp_path / "sim", p_bubble=0, p_stall=0)
    assert res["mismatches"] > 0 and not res["ok"]


@pytest.mark.gxx
@pytest.mark.parametrize("name", ["gru_sparse", "lstm_stacked"])
def test_zoo_recurrent_csim_every_heldout_sequence(name, tmp_path):
    """gru_sparse and lstm_stacked (two QLSTM(32) on one array) at P=8: the HLS C++ (ap_fixed and
    ac_fixed) equals the reference on all 450 held-out digits."""
    import hlsgen
    from hlsgen.zoo.build import digits

    proj = hlsgen.convert(name)
    _, xte, _, _ = digits()
    x = proj.quantize_input(xte)
    expected = proj.predict_int(x)
    plan = plan_lstm(proj.graph, pe=8)
    assert [p.kind for p in plan.layers] == (["gru"] if name == "gru_sparse" else ["lstm", "lstm"])
    hls = write_hls(plan, tmp_path / "hls")
    for flavour in ("ap", "ac"):
        y = csim(hls, tmp_path / "hls", x, tmp_path / "w", flavour)
        assert y.shape == (450, 10) and np.array_equal(y, expected), flavour


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru_sparse", "lstm_stacked"])
def test_zoo_recurrent_rtl_heldout_sequences(name, tmp_path):
    """The same models in RTL on 100 held-out digits with bubbles and back-pressure, every
    layer's phases as the cycle model says (`make regress`; `make synth MODEL=<name>` runs 50)."""
    import hlsgen
    from hlsgen.zoo.build import digits

    proj = hlsgen.convert(name)
    _, xte, _, _ = digits()
    x = proj.quantize_input(xte)[:100]
    plan = plan_lstm(proj.graph, pe=8)
    rtl = write_rtl(plan, tmp_path / "rtl")
    res = rtl_check(proj.graph, plan, rtl, tmp_path / "rtl", x, tmp_path / "sim", p_bubble=0.2, p_stall=0.3)
    assert res["sequences"] == 100 and res["steps"] == 800 and len(res["mac"]) == 800 * len(plan.layers)
    assert res["ok"], {k: v for k, v in res.items() if k not in ("mac", "ew", "head")}


# ------------------------------------------------------------------ stacked layers on one array
@pytest.mark.rtl
@pytest.mark.gxx
def test_stacked_relu_between_layers(tmp_path):
    """A ReLU and a requantization between three stacked layers: exact in C
    simulation and RTL; the ReLU matters (the model without it gives other outputs)."""
    g = random_lstm(13, features=5, units=[8, 8, 4], steps=3, density=0.4, head=3, layers=3, between="relu")
    plan = plan_lstm(g, pe=4)
    assert all(r is not None and r.relu for r in plan.between)
    x = random_inputs(g, 12, seed=13)
    plain = Graph.from_json(g.to_json())
    for n in plain.nodes:
        if n.op == "Activation" and n.function == "requant":
            n.relu = False
    assert not np.array_equal(predict_int(plain, x), predict_int(g, x))
    check_plan(g, plan, tmp_path, 13, {"between": "relu"}, n=12)


def test_stacked_plan_shares_the_pe_memories():
    """Every layer's entries in every PE's memory, pointers absolute: decoding each layer's
    slice of the images gives its matrix back; the cycle model sums the layers' phases."""
    from hlsgen.engines.lstm.flow import cycle_report
    from hlsgen.engines.lstm.plan import memory_images

    g = random_lstm(9, features=5, units=(6, 10, 3), steps=3, layers=3, between="requant", head=4)
    plan = plan_lstm(g, pe=4)
    assert [p.units for p in plan.layers] == [6, 10, 3] and plan.between[0] is not None
    imgs = memory_images(plan)
    ab, cb, k = plan.addr_bits, plan.count_bits, plan.scan_width
    for p in range(plan.pe):
        words, _ = imgs[f"lstm_w_pe{p}"]
        ptrs, _ = imgs[f"lstm_ptr_pe{p}"]
        base = 0
        for lp in plan.layers:
            got = np.zeros_like(lp.matrix)
            for j in range(lp.ncol):
                word = ptrs[base + j // k] >> ((j % k) * (ab + cb))
                start, count = word & ((1 << ab) - 1), (word >> ab) & ((1 << cb) - 1)
                row = -1
                for wd in words[start : start + count] if count else []:
                    row += (wd >> plan.code_width) + 1
                    w = wd & ((1 << plan.code_width) - 1)
                    w -= (1 << plan.code_width) if w >> (plan.code_width - 1) else 0
                    if w:
                        got[j, p + row * plan.pe] = w
            assert np.array_equal(got[:, p :: plan.pe], lp.matrix[:, p :: plan.pe])
            base += lp.blocks
    cy = cycle_report(g, plan, random_inputs(g, 4, 1))["model"]
    assert cy["mac_layers"].shape == (4, 3, 3)
    assert np.array_equal(cy["mac"], cy["mac_layers"].sum(axis=2))
    ew = sum(1 + p.ew_groups + p.ew_latency for p in plan.layers)
    # with the overlap, every step but a sequence's first resumes a pre-scan: no start cycle
    assert not cy["resumed"][:, 0].any() and (cy["resumed"][:, 1:] == plan.overlap).all()
    assert np.array_equal(cy["step"], cy["mac"] + ew - cy["resumed"])


def test_stacked_figures_and_balance_cover_every_layer():
    """The report draws each stacked layer's sparsity, and `info` balances each layer."""
    from hlsgen.engines.lstm.engine import SparseLstmEngine

    g = random_lstm(9, features=5, units=(6, 10), steps=3, layers=2, head=4)
    plan = plan_lstm(g, pe=4)
    eng = SparseLstmEngine()
    figs = eng.report_data(g, plan, random_inputs(g, 2, 1))
    images = [f for f in figs if f["kind"] == "image"]
    assert [np.array(f["matrix"]).shape for f in images] == [p.matrix.shape for p in plan.layers]
    assert "'lstm2'" in images[1]["title"]
    lines = eng.info_lines(g, pe=4)
    assert len(lines) == 2 and "'lstm'" in lines[0] and "'lstm2'" in lines[1]


def test_step_functions_that_are_requantizations_are_recognised():
    """A step function (how a QKeras QActivation arrives) equal to a requantization on every
    input of the range is returned as one, rounding, overflow and ReLU included; one value off,
    an offset (a hard sigmoid) or a range too wide to check gives None."""
    from hlsgen.engines.arith import MAX_STEP_DOMAIN, step_as_requant
    from hlsgen.fixed import FixedType
    from hlsgen.ir.tensors import StepFunction

    src = FixedType(14, 3, True)
    x = np.arange(src.min_raw, src.max_raw + 1)

    def tabulate(f, out):  # the step function of f over the whole input type
        y = f(x)
        k = np.flatnonzero(np.diff(y)) + 1
        return StepFunction(src, out, x[k][None], np.concatenate([[y[0]], y[k]])[None])

    for dst, relu in (
        (FixedType(8, 2, True, "RND_CONV", "SAT"), False),
        (FixedType(6, 1, False, "RND", "SAT"), True),
        (FixedType(5, 3, True, "TRN", "WRAP"), False),
    ):
        fn = tabulate(lambda v, d=dst, r=relu: d.requantize(np.maximum(v, 0) if r else v, src), dst)
        got = step_as_requant(fn, src.min_raw, src.max_raw)
        assert got is not None
        assert np.array_equal(got[0].requantize(np.maximum(x, 0) if got[1] else x, src), fn(x))
        bad = StepFunction(src, dst, fn.breaks, fn.values.copy())
        bad.values[0, -1] -= 1  # one level off
        assert step_as_requant(bad, src.min_raw, src.max_raw) is None
    out = FixedType(8, 2, False)
    hard_sigmoid = tabulate(lambda v: out.requantize(np.clip((v >> 1) + (1 << 10), 0, 1 << 11), src), out)
    assert step_as_requant(hard_sigmoid, src.min_raw, src.max_raw) is None
    assert step_as_requant(fn, 0, MAX_STEP_DOMAIN) is None


@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False)])
def test_load_balance_aware_pruning_follows_the_engines_layout(cell, reset_after):
    """pe_map puts every weight where the plan does: pruned load-balance-aware with it, every PE
    holds the same number of weights in every MAC phase (both passes of a GRU with
    reset_after=False), also when P does not divide the units; the default (column mod P) does
    not balance a GRU's passes."""
    from hlsgen.compress.prune import imbalance, lba_mask, pe_map

    g = random_lstm(4, features=5, units=6, steps=2, density=0.3, pe=4, cell=cell, reset_after=reset_after)
    plan = plan_lstm(g, pe=4)
    for lp in plan.layers:
        per = [int(np.count_nonzero(lp.matrix[:, p::4])) for p in range(4)]
        assert max(per) == min(per) > 0, (lp.gru_pass, per)
    if cell == "gru" and not reset_after:
        rng = np.random.default_rng(0)
        m = rng.normal(size=(5 + 6, 18))
        plain = m * lba_mask(m, 4, 0.3)
        assert imbalance(plain, 4, *pe_map("gru", 5, 6, 4, False))["imbalance"] > 1.0
        assert imbalance(m * lba_mask(m, 4, 0.3, *pe_map("gru", 5, 6, 4, False)), 4, *pe_map("gru", 5, 6, 4, False))[
            "imbalance"
        ] == pytest.approx(1.0, abs=0.02)

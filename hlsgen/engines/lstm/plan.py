"""The sparse recurrent engine (ESE style): plan, compressed-column encoding, memory images.

The four gate matrices are stacked into one matrix M with NROW = 4U rows (gate outputs, Keras
order i, f, c, o) and NCOL = F + U columns (input features, then the previous hidden state).
A GRU (``reset_after=True``) uses the same array: its rows are [z; r; h_x; h_h] and its columns
[[W_z W_r W_h 0]; [U_z U_r 0 U_h]], so that the MAC phase gives x W_h and h_q U_h apart and the
element-wise unit forms r * (h_q U_h + b_rh) after it (see :func:`_gru_numerics`).
Row r belongs to processing element r mod P; inside a PE it is local row r div P.  Each PE keeps
its slice column by column (compressed sparse column):

* a weight memory of entries ``{rel, w}``: ``rel`` counts the zero rows skipped since the
  previous entry of the column (B bits); a gap longer than 2^B - 1 is bridged by a filler
  entry with w = 0 (counted in :attr:`LstmPlan.fillers`);
* a pointer memory ``{count, start}`` per column.

Per time step the activation scanner walks the NCOL columns K at a time (the scan width) and
broadcasts every block of K activations that holds a non-zero one to P activation FIFOs; each
PE looks up the block's K pointers, hands on only the columns with a non-zero activation and
entries in its slice, and multiplies-accumulates one entry per cycle into local accumulators.
The element-wise unit then computes gates, cell and hidden state, E units per cycle.  :mod:`.cycles` models the cycle count exactly; :mod:`hlsgen.backends`
renders the plan as Verilog and HLS C++.  Reference, RTL and HLS all read this plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...errors import HlsgenError
from ...fixed import FixedType
from ...ir import Graph
from ...ir.nodes import _corner_bounds, _mac_bounds
from ...names import Idents
from ..arith import (
    Requant,
    TablePlan,
    book_codes,
    exact_type,
    lane_type,
    plan_table,
    shared_codebook,
    signed_bits,
    step_as_requant,
    ubits,
)

MAX_MUL_WIDTH = 48  # widest multiplier operand the engine builds
MAX_ACC_WIDTH = 62
#: most element-wise lanes (each: four gate tables, a cell table, three multipliers)
MAX_EW_LANES = 64
#: widest scanner block (columns broadcast per cycle)
MAX_SCAN_WIDTH = 32


#: a GRU with reset_after=False's two passes (:attr:`LstmPlan.gru_pass`)
PASS_NAMES = {1: "gates", 2: "candidate"}


@dataclass
class HeadStage:
    """A vector stage after the LSTM: Dense (sequential MAC) or an element-wise activation."""

    name: str
    kind: str  # dense | step | relu | requant | linear
    n_in: int
    n_out: int
    in_width: int
    in_signed: bool
    out_width: int
    out_signed: bool
    weights: np.ndarray | None = None  # dense: [n_in, n_out] raw
    weight_width: int = 0
    bias: np.ndarray | None = None
    bias_width: int = 0
    prod_shift: int = 0
    bias_shift: int = 0
    table: TablePlan | None = None
    requant: Requant | None = None
    in_type: FixedType | None = None  # the stage's input values (signed lane of in_width bits)
    out_type: FixedType | None = None  # the stage's output values (signed lane of out_width bits)
    weight_type: FixedType | None = None  # dense: weights and bias as stored
    bias_type: FixedType | None = None
    value_type: FixedType | None = None  # step: the table's output values

    @property
    def cycles(self) -> int:
        """Exact cycles from start to done (see hw/hg_dense_seq.v, hw/hg_vec_act.v)."""
        if self.kind == "dense":
            return self.n_in * self.n_out + 2
        lat = self.table.latency if self.kind == "step" else 1
        return self.n_out + lat + 1


@dataclass(frozen=True)
class EwSchedule:
    """The element-wise unit's pipeline, in cycles after a unit u is issued: the gate and
    candidate tables take ``c_read - 1`` cycles, then c[u] is read, the new c written, and the
    cell table's output gives h[u] (its requantized state written at ``h_write``)."""

    c_read: int
    c_write: int
    h_write: int


@dataclass
class LstmTypes:
    """The fixed-point type of every value the engine carries: the HLS C++ declares them, the
    RTL carries their raw integers at the plan's widths (a ``*_th`` type holds a table's
    thresholds: one bit wider than the values it compares)."""

    x: FixedType
    state: FixedType
    kernel: FixedType  # the kernel's and the recurrent matrix's own grids
    recurrent: FixedType
    weight: FixedType  # stacked entries on the common grid of both
    act: FixedType  # broadcast activations on the common grid of x and the state
    acc: FixedType
    bias: FixedType
    z: FixedType
    z_th: FixedType
    gate: FixedType
    cand: FixedType
    h: FixedType
    # LSTM: the cell state, its table's thresholds and outputs
    c: FixedType | None = None
    c_th: FixedType | None = None
    cell_act: FixedType | None = None
    # GRU: the candidate's input x W_h + r * (h_q U_h), exact on its own grid, and its thresholds
    pre: FixedType | None = None
    pre_th: FixedType | None = None
    one_z: FixedType | None = None  # 1 - z
    rh: FixedType | None = None  # GRU, reset_after=False: r * h_q, exact


@dataclass
class LstmPlan:
    """Everything the backends need to build the engine for one model."""

    name: str
    pe: int
    index_bits: int
    afifo_depth: int
    jq_depth: int
    steps: int
    features: int
    units: int
    # stacked matrix and its encoding
    matrix: np.ndarray  # [NCOL, NROW] raw weights (kernel rows first)
    entries: list  # per PE: int64 [n, 2] (w, rel)
    pointers: list  # per PE: int64 [NCOL, 2] (start, count)
    fillers: int
    # widths
    x_width: int
    x_signed: bool
    state_width: int
    state_signed: bool
    act_width: int  # signed width of broadcast activations
    weight_width: int
    acc_width: int
    shift_x: int
    shift_h: int
    z_width: int
    bias: np.ndarray  # [NROW] raw, on bias grid
    bias_width: int
    bias_shift: int
    gate: TablePlan = None
    cand: TablePlan = None
    cell: TablePlan = None
    gate_width: int = 0
    cand_width: int = 0
    c_width: int = 0
    c_shift_fc: int = 0  # (f * cq) << c_shift_fc
    c_shift_ig: int = 0  # (i * g) << c_shift_ig
    h_width: int = 0
    state_requant_c: Requant | None = None
    state_requant_h: Requant | None = None
    types: LstmTypes | None = None
    head: list = field(default_factory=list)
    out_type: FixedType | None = None  # the engine's output words (signed lane of out_width bits)
    ew_lanes: int = 1  # element-wise lanes (a power of two): units u = k*E + e side by side
    scan_width: int = 1  # K: columns the scanner broadcasts per cycle (a power of two)
    # accumulators in a RAM per PE (LUTRAM), read by the element-wise lanes through four ports,
    # instead of flip-flops read out as one vector (:func:`acc_ram_fits`)
    acc_ram: bool = False
    # the first layer's input-only blocks of step t+1 are scanned during the last layer's
    # element-wise phase of step t, into the other of two accumulator banks (needs acc_ram)
    overlap: bool = False
    head_names: dict = field(default_factory=dict)  # head stage identifier -> the model's layer name
    out_width: int = 0
    out_signed: bool = True
    out_count: int = 0
    return_sequences: bool = False  # stream h after every step (T x U words per sequence)
    # shared weights (k-means): the raw weights an entry's code indexes, zero (the fillers'
    # weight) first; None: entries hold the weights themselves
    codebook: np.ndarray | None = None
    # "lstm", or "gru": then gate/cand are the GRU's tables on the accumulator grid and on the
    # candidate's input grid (pre_width bits), cell is None, and
    # h = (z * h_q) << h_shift_z + ((1 - z) * hh) << h_shift_c
    kind: str = "lstm"
    # a GRU with reset_after=False takes two passes per step, two layers of the stack sharing one
    # element-wise unit (:func:`_gru_split_numerics`): 1 the gates pass (z, r; it keeps z and
    # r * h_q), 2 the candidate pass (its columns [x; r * h_q]); 0: a single pass
    gru_pass: int = 0
    rh_width: int = 0  # gru_pass: bits of r * h_q (exact, signed)
    pre_width: int = 0
    h_shift_z: int = 0
    h_shift_c: int = 0
    # stacked recurrent layers on one PE array: every layer's plan, the first being this one
    # (empty: a single layer), and the requantization between layer l and l + 1 (None: none)
    stack: list = field(default_factory=list)
    between: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    # the layer's own planning facts (for the stack): accumulator grid, specs, the IR node
    grid: int = field(default=0, repr=False)
    h_spec: object = field(default=None, repr=False)
    cell_types: dict | None = field(default=None, repr=False)
    cell_node: object = field(default=None, repr=False)
    x_spec: object = field(default=None, repr=False)
    hcol: tuple | None = field(default=None, repr=False)  # the recurrent columns' (lo, hi, frac)
    graph: Graph | None = field(default=None, repr=False)  # the model planned (figures for engine.json)

    # ----------------------------------------------------------------- sizes
    @property
    def ncol(self) -> int:
        return self.features + self.units

    @property
    def nrow(self) -> int:
        return 4 * self.units

    @property
    def blocks(self) -> int:
        """Scanner blocks per step of this layer: ceil(NCOL / K)."""
        return -(-self.ncol // self.scan_width)

    @property
    def input_blocks(self) -> int:
        """Blocks of input columns alone (what an overlapped pre-scan may take): floor(F / K)."""
        return self.features // self.scan_width

    @property
    def prescan_gate(self) -> int:
        """Cycles an overlapped pre-scan runs gated when nothing waits on the output: the last
        layer's element-wise phase after its first cycle, and the hand-off (``return_sequences``)."""
        last = self.layers[-1]
        return last.ew_groups + last.ew_latency - 1 + int(self.return_sequences)

    @property
    def layers(self) -> list:
        """The recurrent layers' plans, in order (this one alone when not stacked)."""
        return self.stack or [self]

    @property
    def read_width(self) -> int:
        """Bits of a scanner read of this layer's recurrent columns: the state's width, or for a
        GRU with reset_after=False (either pass) a signed word that holds the state and r * h_q."""
        if not self.gru_pass:
            return self.state_width
        return max(self.state_width + (0 if self.state_signed else 1), self.rh_width)

    @property
    def input_layers(self) -> int:
        """Layers that scan the model's input each step (2: a first GRU with reset_after=False,
        whose candidate pass reads x_t again); the input slot is released after their MAC phases."""
        return 2 if len(self.layers) > 1 and self.layers[1].gru_pass == 2 else 1

    @property
    def total_blocks(self) -> int:
        """Pointer memory words per PE: every layer's blocks, layer after layer."""
        return sum(p.blocks for p in self.layers)

    @property
    def tables(self) -> list[TablePlan]:
        """The element-wise unit's tables: gate, candidate and (LSTM) cell."""
        return [t for t in (self.gate, self.cand, self.cell) if t is not None]

    @property
    def rows_per_pe(self) -> int:
        """Accumulators per PE (the largest layer's rows)."""
        return max(-(-p.nrow // p.pe) for p in self.layers)

    @property
    def code_width(self) -> int:
        """Bits of an entry's weight field: a codebook index, or the weight."""
        return self.weight_width if self.codebook is None else ubits(len(self.codebook) - 1)

    def codes(self, w: np.ndarray) -> np.ndarray:
        """The stored code of each weight (its codebook index, or itself)."""
        if self.codebook is None:
            return np.asarray(w, dtype=np.int64)
        return book_codes(self.codebook, w)

    @property
    def depth(self) -> int:
        """Weight memory depth per PE (the deepest PE, every layer's entries; at least 1)."""
        return max(1, max(sum(len(p.entries[k]) for p in self.layers) for k in range(self.pe)))

    @property
    def count_bits(self) -> int:
        return ubits(max(int(q[:, 1].max()) if len(q) else 0 for p in self.layers for q in p.pointers))

    @property
    def busiest_entries(self) -> int:
        """Entries of the busiest PE: the MAC phase's lower bound."""
        return max((len(e) for e in self.entries), default=1)

    @property
    def addr_bits(self) -> int:
        return ubits(self.depth - 1)

    @property
    def weight_slots(self) -> int:
        """The model's recurrent weights, zero or not (the engine's matrices also hold rows and
        blocks that are zero by construction: a GRU's [W_h 0] and [0 U_h], a pass's unused rows)."""
        per_row_block = {0: 3 if self.kind == "gru" else 4, 1: 2, 2: 1}
        return sum(p.ncol * p.units * per_row_block[p.gru_pass] for p in self.layers)

    @property
    def nnz(self) -> int:
        return sum(int(np.count_nonzero(p.matrix)) for p in self.layers)

    @property
    def nnz_per_pe(self) -> list[int]:
        return [sum(int(np.count_nonzero(q.matrix[:, k :: self.pe])) for q in self.layers) for k in range(self.pe)]

    @property
    def ew_schedule(self) -> EwSchedule:
        """When the element-wise unit reads and writes a unit's state (defined here only).

        GRU (``hw/hg_gru_ew.v``): the gate tables run from cycle 1, r * m + h_x is registered at
        ``c_read`` = 1 + gate latency, the candidate table follows, h_q is read at ``c_write`` and
        h written at ``h_write``.  A GRU's gates pass (``gru_pass`` 1) writes z and r * h_q at
        ``h_write`` = 1 + gate latency; its candidate pass (2) feeds its row straight to the
        candidate table, reads z and h_q at ``c_write`` and writes h at ``h_write``."""
        if self.gru_pass == 1:
            c = 1 + self.gate.latency
            return EwSchedule(c_read=c, c_write=c, h_write=c)
        if self.gru_pass == 2:
            return EwSchedule(c_read=1, c_write=1 + self.cand.latency, h_write=2 + self.cand.latency)
        if self.kind == "gru":
            lt = self.gate.latency + self.cand.latency
            return EwSchedule(c_read=1 + self.gate.latency, c_write=2 + lt, h_write=3 + lt)
        lt = max(self.gate.latency, self.cand.latency)
        return EwSchedule(c_read=1 + lt, c_write=2 + lt, h_write=3 + lt + self.cell.latency)

    @property
    def ew_groups(self) -> int:
        """Cycles the element-wise unit issues units for: ceil(U / E)."""
        return -(-self.units // self.ew_lanes)

    @property
    def ew_latency(self) -> int:
        """Cycles from issuing a unit to the element-wise unit to its state being written."""
        return self.ew_schedule.h_write

    def summary(self) -> dict:
        per_pe = self.nnz_per_pe
        return {
            "pe": self.pe,
            "index_bits": self.index_bits,
            "matrix": [self.nrow, self.ncol],
            "nnz": self.nnz,
            "density": round(self.nnz / self.weight_slots, 4),
            "nnz_per_pe": {"min": min(per_pe), "max": max(per_pe), "mean": round(sum(per_pe) / self.pe, 2)},
            "imbalance": round(max(per_pe) / (sum(per_pe) / self.pe), 4) if sum(per_pe) else 1.0,
            "fillers": sum(p.fillers for p in self.layers),
            "weight_memory": {"depth": self.depth, "width": self.code_width + self.index_bits},
            "codebook": None if self.codebook is None else len(self.codebook),
            "pointer_memory": {"depth": self.total_blocks, "width": self.scan_width * (self.addr_bits + self.count_bits)},
            "scan_width": self.scan_width,
            "widths": {
                "activation": self.act_width,
                "weight": self.weight_width,
                "accumulator": self.acc_width,
                "z": self.z_width,
                "cell": self.c_width,
                "hidden": self.h_width,
            },
            "padding_rows": self.rows_per_pe * self.pe - self.nrow,
            "ew_lanes": self.ew_lanes,
            "accumulators": "ram" if self.acc_ram else "flip-flops",
            "overlap": self.overlap,
            "cell": self.kind,
            "layers": [
                {"name": p.cell_node.name if p.cell_node else p.name, "cell": p.kind, "units": p.units,
                 "matrix": [p.nrow, p.ncol], "ew_lanes": p.ew_lanes,
                 **({"pass": PASS_NAMES[p.gru_pass]} if p.gru_pass else {})}
                for p in self.layers
            ],
            "notes": self.notes,
        }  # fmt: skip


def choose_ew_lanes(plan: LstmPlan) -> tuple[int, str]:
    """Element-wise lanes (a power of two): as many as a budget of a quarter of the PEs'
    multipliers allows (three per lane: 3E <= P/4), and no more than it takes to make the
    phase, ceil(U/E) cycles, at most 1/64 of the MAC phase's lower bound (the busiest PE's
    entries)."""
    bound = plan.busiest_entries
    e = 1
    while 2 * e <= min(MAX_EW_LANES, plan.units) and 3 * (2 * e) * 4 <= plan.pe and -(-plan.units // e) * 64 > bound:
        e *= 2
    why = (
        f"{e} element-wise lane{'s' if e > 1 else ''}: {-(-plan.units // e)} cycles per step against a MAC phase of "
        f"at least {bound}; three multipliers per lane, at most a quarter of the PEs' (--ew-lanes overrides)"
    )
    return e, why


def choose_scan_width(plan: LstmPlan) -> tuple[int, str]:
    """Scan width K (a power of two): at least 4, and wide enough that the scanner's
    ceil(NCOL / K) cycles per step stay under half the MAC phase's lower bound (the busiest
    PE's entries), so that a PE's cycles track its own entries rather than the column count.

    The floor of 4: a FIFO slot holds K columns, so the broadcast then has 4 x the FIFO depth
    in columns of slack between the scanner and the slowest PE, and a PE spends no cycle on
    a column it holds no entries of.  Measured with the cycle model (``bench/lstm_engine.py``):
    K = 4 against K = 1 makes the MAC phase 5% shorter on the zoo's shape and 9% on ESE's at
    P = 128.  ``--scan-width 1`` is the smallest engine (one read port on the input and the
    hidden state instead of K).
    """
    bound = plan.busiest_entries
    k = 1
    while k < MAX_SCAN_WIDTH and k < plan.ncol and (k < 4 or 2 * -(-plan.ncol // k) > bound):
        k *= 2
    why = (
        f"scan width {k}: {-(-plan.ncol // k)} blocks of {k} column{'s' if k > 1 else ''} per step against a MAC "
        f"phase of at least {bound} (--scan-width overrides; 1 is the smallest engine)"
    )
    return k, why


# --------------------------------------------------------------------- encoding
def encode_pe(column_rows: np.ndarray, weights: np.ndarray, index_bits: int) -> tuple[list, int]:
    """Compressed entries of one PE column: local rows (sorted) and their weights -> [(w, rel)]."""
    maxrel = (1 << index_bits) - 1
    out, prev, fill = [], -1, 0
    for r, w in zip(column_rows.tolist(), weights.tolist(), strict=True):
        gap = r - prev - 1
        while gap > maxrel:
            out.append((0, maxrel))
            prev += maxrel + 1
            gap -= maxrel + 1
            fill += 1
        out.append((int(w), gap))
        prev = r
    return out, fill


def encode(matrix: np.ndarray, pe: int, index_bits: int):
    """Per PE: entries [n, 2] (w, rel) in column order, pointers [NCOL, 2] (start, count)."""
    ncol, nrow = matrix.shape
    entries, pointers, fillers = [], [], 0
    for p in range(pe):
        sub = matrix[:, p::pe]  # local rows
        ent, ptr = [], np.zeros((ncol, 2), dtype=np.int64)
        for j in range(ncol):
            rows = np.flatnonzero(sub[j])
            e, f = encode_pe(rows, sub[j, rows], index_bits)
            ptr[j] = (len(ent), len(e))
            ent.extend(e)
            fillers += f
        entries.append(np.asarray(ent, dtype=np.int64).reshape(-1, 2))
        pointers.append(ptr)
    return entries, pointers, fillers


def decode(plan: LstmPlan) -> np.ndarray:
    """Rebuild the stacked matrix from the encoding (the inverse of :func:`encode`)."""
    m = np.zeros((plan.ncol, plan.nrow), dtype=np.int64)
    for p in range(plan.pe):
        for j in range(plan.ncol):
            start, count = plan.pointers[p][j]
            row = -1
            for w, rel in plan.entries[p][start : start + count]:
                row += int(rel) + 1
                if w:
                    m[j, p + row * plan.pe] = w
    return m


def index_costs(matrix: np.ndarray, pe: int, bits: range) -> dict[int, int]:
    """For each index width b: the entries of the busiest PE, fillers included (a gap of g rows
    between non-zeros needs g >> b fillers, see :func:`encode_pe`)."""
    gaps = []  # per PE: the rows skipped before every non-zero, column by column
    for p in range(pe):
        cols, rows = np.nonzero(matrix[:, p::pe])
        first = np.ones(len(rows), dtype=bool)
        first[1:] = cols[1:] != cols[:-1]
        prev = np.where(first, -1, np.concatenate([[-1], rows[:-1]]))
        gaps.append(rows - prev - 1)
    return {b: max((int(len(g) + np.sum(g >> b)) for g in gaps), default=0) for b in bits}


def choose_index_bits(matrices: list[np.ndarray], pe: int, weight_width: int) -> tuple[int, str]:
    """The relative-index width with the fewest entries on the busiest PE (its MAC cycles; summed
    over the stacked layers' ``matrices``), then the least weight memory (entries x (weight +
    index bits)); 1 to 16 bits."""
    costs: dict[int, int] = {}
    for m in matrices:
        for b, c in index_costs(m, pe, range(1, 17)).items():
            costs[b] = costs.get(b, 0) + c
    best = min(costs, key=lambda b: (costs[b], costs[b] * (weight_width + b)))
    return best, (
        f"index_bits={best} chosen from the gaps: {costs[best]} entries on the busiest PE "
        f"(4 bits: {costs[4]}); --index-bits overrides"
    )


# --------------------------------------------------------------------- planning
def _fail(node, msg):
    return HlsgenError(msg, layer=node.name, layer_type=node.op)


def _stack_of(nodes) -> tuple[list, list, list]:
    """The recurrent layers at the model's start (each but the last with return_sequences,
    optionally a requantizing activation between two), what stands between them (per pair: None
    or the requantization's ``(dst, relu)``), and the rest."""
    cells, between = [nodes[1]], []
    i = 2
    while cells[-1].return_sequences and i < len(nodes):
        n, act = nodes[i], None
        if n.op == "Activation" and i + 1 < len(nodes) and nodes[i + 1].op in ("LSTM", "GRU"):
            act, n = n, nodes[i + 1]
            rq = _between_requant(act, cells[-1])
            if rq is False or act.inputs != [cells[-1].name]:
                what = f"'{act.function}'" + (
                    f" ({act.step.source})" if act.function == "step" and act.step.source else ""
                )
                raise _fail(
                    act,
                    f"activation {what} between two recurrent layers is not a requantization of the values it "
                    "gets; the engine applies only a requantization there (a ReLU before it allowed)",
                )
        if n.op not in ("LSTM", "GRU"):
            break
        if n.inputs != [(act or cells[-1]).name]:
            raise _fail(n, "the recurrent engine streams a chain of layers; this layer is not fed by the one before it")
        cells.append(n)
        between.append(rq if act is not None else None)
        i += 2 if act is not None else 1
    return cells, between, nodes[i:]


def _between_requant(act, cell):
    """The requantization ``(dst, relu)`` an activation between two recurrent layers applies
    to the first one's exact output (None: linear; False: not a requantization).  A step
    function (QKeras's QActivation arrives as one) counts when it equals a requantization on
    every value the output can take (:func:`~hlsgen.engines.arith.step_as_requant`)."""
    if act.function == "linear":
        return None
    if act.function == "requant":
        return act.type, bool(act.relu)
    if act.function == "step" and act.step.in_type.frac == cell.spec.type.frac:
        lo, hi = int(np.min(cell.spec.lo)), int(np.max(cell.spec.hi))
        found = step_as_requant(act.step, lo, hi)
        return found if found is not None else False
    return False


def plan_lstm(
    graph: Graph,
    pe: int | None = None,
    index_bits: int | None = None,
    afifo_depth: int = 16,
    jq_depth: int = 4,
    pad: bool = True,
    ew_lanes: int | None = None,
    codebook_bits: int = 8,
    scan_width: int | None = None,
    acc_ram: bool | None = None,
    overlap: bool | None = None,
) -> LstmPlan:
    """Map ``Input -> (LSTM | GRU)+ -> [Dense | Activation]*`` onto the sparse recurrent engine.

    Stacked recurrent layers (each but the last with ``return_sequences``, a requantizing
    activation allowed between two) share the PE array: every layer's weights live in the PE
    memories and each step runs the layers in turn; the returned plan is the first layer's,
    its ``stack`` lists them all.  ``pe`` defaults to 8 (fewer for a layer with fewer than 8
    gate rows); ``index_bits`` is chosen from the gaps between non-zeros when None
    (:func:`choose_index_bits`); ``ew_lanes`` (a power of two) from the MAC phase's length when
    None (:func:`choose_ew_lanes`); ``scan_width`` likewise (:func:`choose_scan_width`).
    ``acc_ram`` puts the accumulators in RAM; None: whenever the layout allows it
    (:func:`acc_ram_fits`).  ``overlap`` scans the next step's input columns during the last
    layer's element-wise phase (two accumulator banks); None: when it pays
    (:func:`choose_overlap`).
    """
    nodes = graph.nodes
    if len(nodes) < 2 or nodes[1].op not in ("LSTM", "GRU"):
        bad = nodes[1] if len(nodes) > 1 else nodes[0]
        raise _fail(bad, "the sparse recurrent engine needs the model to start with an LSTM or GRU layer")
    inp = nodes[0]
    cells, between, rest = _stack_of(nodes)
    lstm = cells[0]
    if cells[-1].return_sequences and rest:
        raise _fail(
            cells[-1],
            "return_sequences=True followed by more layers is not supported by the LSTM engine "
            "(it streams the hidden state of every step only as the model's output)",
        )
    prev = cells[-1]
    for n in rest:
        if n.inputs != [prev.name]:
            raise _fail(n, "the LSTM engine streams a chain of layers; this layer is not fed by the one before it")
        if n.op not in ("Dense", "Activation"):
            raise _fail(n, f"{n.op} after the LSTM is not supported by the LSTM engine (Dense and activations are)")
        if n.op == "Activation" and n.function not in ("step", "relu", "linear", "requant"):
            raise _fail(n, f"activation '{n.function}' is not supported by the LSTM engine")
        prev = n
    if pe is None:
        pe = min(8, min(4 * c.units for c in cells))
    if not isinstance(pe, int) or pe < 1:
        raise _fail(lstm, f"option pe={pe!r}: the number of processing elements must be a positive integer")
    if index_bits is not None and (not isinstance(index_bits, int) or not 1 <= index_bits <= 16):
        raise _fail(lstm, f"option index_bits={index_bits!r}: must be between 1 and 16")
    if ew_lanes is not None and (
        not isinstance(ew_lanes, int) or ew_lanes < 1 or ew_lanes & (ew_lanes - 1) or ew_lanes > MAX_EW_LANES
    ):
        raise _fail(lstm, f"option ew_lanes={ew_lanes!r}: must be a power of two from 1 to {MAX_EW_LANES}")
    if scan_width is not None and (
        not isinstance(scan_width, int)
        or scan_width < 1
        or scan_width & (scan_width - 1)
        or scan_width > MAX_SCAN_WIDTH
    ):
        raise _fail(lstm, f"option scan_width={scan_width!r}: must be a power of two from 1 to {MAX_SCAN_WIDTH}")
    for opt, v in (("afifo_depth", afifo_depth), ("jq_depth", jq_depth)):
        if not isinstance(v, int) or v < 2 or v & (v - 1):
            raise _fail(lstm, f"option {opt}={v}: must be a power of two >= 2")
    most = max(cells, key=lambda c: c.units)
    if pe > 4 * most.units:
        raise _fail(most, f"option pe={pe}: more PEs than the {4 * most.units} gate rows")
    steps = inp.spec.shape[0]
    notes: list = []
    layers = []
    for k, cell in enumerate(cells):
        x_spec = inp.spec if k == 0 else graph[cell.inputs[0]].spec
        layers.extend(_plan_cell(graph, cell, x_spec, pe, pad, notes))
    # one PE array: common weight, activation and accumulator widths, index bits, scan width
    weight_width = max(p.weight_width for p in layers)
    act_width = max(p.act_width for p in layers)
    acc_width = max(p.acc_width for p in layers)
    if index_bits is None:
        index_bits, why = choose_index_bits([p.matrix for p in layers], pe, weight_width)
        notes.append(why)
    for p in layers:
        p.weight_width, p.act_width, p.acc_width = weight_width, act_width, acc_width
        p.index_bits, p.afifo_depth, p.jq_depth = index_bits, afifo_depth, jq_depth
        p.entries, p.pointers, p.fillers = encode(p.matrix, pe, index_bits)
        p.types = _types(p.cell_node, p.x_spec, p.matrix, p.features, p.grid, acc_width, p, p.cell_types)
        if p.fillers:
            notes.append(
                f"{p.fillers} filler entries in '{p.cell_node.name}': gaps longer than {2**index_bits - 1} rows "
                f"(index_bits={index_bits})"
            )
    plan = layers[0]
    plan.name = graph.meta.get("name") or Path(str(graph.meta.get("source") or "model")).stem
    plan.notes = notes
    plan.stack = layers if len(layers) > 1 else []
    # per layer past the first, the requantization of its input (a candidate pass: its gates pass's)
    plan.between = []
    for i in range(1, len(layers)):
        if layers[i].gru_pass == 2:
            plan.between.append(plan.between[i - 2] if i >= 2 else None)
            continue
        a, p = between[next(k for k, c in enumerate(cells) if c is layers[i].cell_node) - 1], layers[i - 1]
        plan.between.append(None if a is None else Requant(lane_type(p.h_width, p.h_spec.type.frac), a[0], relu=a[1]))
    last = layers[-1]
    _plan_head(plan, last.h_spec, last.units, rest)
    plan.graph = graph
    for i, p in enumerate(layers):
        if p.gru_pass == 2:  # the candidate pass runs on its gates pass's element-wise unit
            p.ew_lanes = layers[i - 1].ew_lanes
            continue
        if ew_lanes is None:
            e, why = choose_ew_lanes(p)
            notes.append(why if len(layers) == 1 else f"'{p.cell_node.name}': {why}")
        else:
            e = ew_lanes
            if e > p.units:
                notes.append(
                    f"ew_lanes={e} for {p.units} units: {e - p.units} lanes have no unit (left out of the RTL)"
                )
        p.ew_lanes = e
    if scan_width is None:
        picks = [choose_scan_width(p) for p in layers]
        scan_width, why = max(picks)
        notes.append(why)
    for p in layers:
        p.scan_width = scan_width
    why_not = acc_ram_fits(plan)
    if acc_ram and why_not:
        raise _fail(lstm, f"option acc_ram=True: {why_not}")
    for p in layers:
        p.acc_ram = acc_ram if acc_ram is not None else not why_not
    if overlap and not plan.acc_ram:
        raise _fail(
            lstm, "option overlap=True needs the accumulators in RAM (two banks): " + (why_not or "acc_ram=False")
        )
    if cells[-1].return_sequences:
        plan.return_sequences = True
        plan.out_count = steps * last.units
    if overlap is None:
        ov, why = choose_overlap(plan)
        if why:
            notes.append(why)
    else:
        ov = overlap
    for p in layers:
        p.overlap = bool(ov)
    if len(layers) == 1:
        plan.codebook = shared_codebook(plan.matrix, weight_width, plan.depth, codebook_bits, zero=True)
        if plan.codebook is not None:
            notes.append(
                f"{len(plan.codebook) - 1} shared weights: {plan.code_width}-bit codebook indices stored "
                f"instead of {weight_width}-bit weights, looked up in every PE before its multiplier"
            )
    elif len(cells) > 1:
        notes.append(f"{len(cells)} stacked recurrent layers on one array of {pe} PEs: each step runs them in turn")
    return plan


OVERLAP_MIN_GAIN = 0.05  # the estimated share of a step the overlap must save to be chosen


def choose_overlap(plan: LstmPlan) -> tuple[bool, str]:
    """Whether to overlap the next step's input columns with the element-wise phase, and why
    ('' when it cannot: the accumulators are flip-flops, or no block holds input columns alone).

    It costs a second accumulator bank in every PE (a LUTRAM twice as deep behind five
    asynchronous read ports, and twice the valid bits), LUTs in proportion to the rows per PE:
    measured with Yosys on 7-series, +13% LUT on the zoo's `lstm_sparse` and +32% on ESE's
    shape at P = 32 (one such PE alone: 1,658 -> 2,325 LUT).
    So it is chosen when the cycles it saves, estimated as 1 (the start cycle) plus the busiest
    PE's entries in the input-only blocks (at most the element-wise phase), are at least 5% of a
    step (the busiest PE's entries and the element-wise phase of every layer)."""
    if not plan.acc_ram or plan.input_blocks == 0:
        return False, ""
    layers = plan.layers
    xcols = plan.input_blocks * plan.scan_width
    x_work = max(int(p[:xcols, 1].sum()) for p in plan.pointers)
    step = sum(1 + p.busiest_entries + p.ew_groups + p.ew_latency for p in layers)
    gain = (1 + min(plan.prescan_gate, x_work)) / step
    use = gain >= OVERLAP_MIN_GAIN
    what = "the next step's input columns scanned during the element-wise phase" if use else "no overlap"
    return use, (
        f"{what}: about {gain:.1%} of a step saved ({'at least' if use else 'under'} {OVERLAP_MIN_GAIN:.0%}) for a "
        "second accumulator bank per PE (the Python option overlap= overrides)"
    )


def acc_ram_fits(plan: LstmPlan) -> str:
    """Why the accumulators cannot live in RAM ('' when they can).

    The element-wise lanes then read them through four ports per PE at one common local row:
    unit u's four gate rows sit in PE u mod P (P divides every layer's units), and the E lanes
    of a cycle read E different PEs (E divides P)."""
    for p in plan.layers:
        name = p.cell_node.name if p.cell_node is not None else p.name
        if p.units % p.pe:
            return f"{p.pe} PEs do not divide the {p.units} units of '{name}'"
        if p.pe % p.ew_lanes:
            return f"{p.ew_lanes} element-wise lanes do not divide the {p.pe} PEs ('{name}')"
    return ""


def _plan_layer(graph, cell, x_spec, pe, pad, notes, num=None) -> LstmPlan:
    """One recurrent layer's plan (not yet encoded: the caller fixes the common widths first);
    ``num``: its numerics when the caller has them (a GRU pass)."""
    steps, feats = x_spec.shape
    u = cell.units
    nrow = 4 * u
    if nrow % pe:
        if not pad:
            raise _fail(cell, f"option pe={pe}: {pe} PEs do not divide the {nrow} gate rows (4 x {u} units)")
        notes.append(
            f"{pe} PEs do not divide the {nrow} gate rows of '{cell.name}': the last PEs hold "
            f"{-(-nrow // pe) * pe - nrow} padding rows (no weights, never read)"
        )
    if num is None:
        num = _gru_numerics(cell, x_spec) if cell.op == "GRU" else _lstm_numerics(cell, x_spec)
    st = cell.state_type
    xt = x_spec.type
    num = dict(num)
    matrix = num.pop("matrix")
    grid, h_spec, cell_types = num.pop("grid"), num.pop("h_spec"), num.pop("cell_types")
    # the recurrent columns' values: the quantized state, or (a GRU's candidate pass) r * h_q
    hcol = num.pop("hcol", (st.min_raw, st.max_raw, st.frac))
    wlo, whi = int(min(matrix.min(), 0)), int(max(matrix.max(), 0))
    weight_width = signed_bits(wlo, whi)
    x_lo, x_hi = x_spec.lo, x_spec.hi
    act_width = signed_bits(min(x_lo, hcol[0], 0), max(x_hi, hcol[1]))
    for what, w in (("weights", weight_width), ("activations", act_width)):
        if w > MAX_MUL_WIDTH:
            raise _fail(cell, f"{what} need {w} bits; the engine's multipliers take at most {MAX_MUL_WIDTH}")
    # accumulator: a partial sum of a row lies between the sums of its negative and positive
    # terms; one accumulator serves many rows, so take the extremes over rows
    klo, khi = _mac_bounds(matrix[:feats], x_lo, x_hi)
    rlo, rhi = _mac_bounds(matrix[feats:], hcol[0], hcol[1])
    sx, sh = num["shift_x"], num["shift_h"]
    acc_lo = min(0, int(min(klo)) * (1 << sx) + int(min(rlo)) * (1 << sh))
    acc_hi = max(0, int(max(khi)) * (1 << sx) + int(max(rhi)) * (1 << sh))
    acc_width = signed_bits(acc_lo, acc_hi)
    z_width = num["z_width"]
    if max(acc_width, z_width) > MAX_ACC_WIDTH:
        raise _fail(cell, f"the gate accumulator needs {max(acc_width, z_width)} bits (limit {MAX_ACC_WIDTH})")
    bias = num["bias"]
    plan = LstmPlan(
        name=cell.name,
        pe=pe,
        index_bits=0,
        afifo_depth=0,
        jq_depth=0,
        steps=steps,
        features=feats,
        units=u,
        matrix=matrix,
        entries=[],
        pointers=[],
        fillers=0,
        x_width=xt.width,
        x_signed=xt.signed,
        state_width=st.width,
        state_signed=st.signed,
        act_width=act_width,
        weight_width=weight_width,
        acc_width=acc_width,
        bias_width=signed_bits(int(min(bias.min(), 0)), int(max(bias.max(), 0))),
        **num,
    )
    plan.grid, plan.h_spec, plan.cell_types, plan.cell_node, plan.x_spec = grid, h_spec, cell_types, cell, x_spec
    plan.hcol = hcol
    return plan


def _plan_cell(graph, cell, x_spec, pe, pad, notes) -> list:
    """A recurrent layer's plans: one, or a GRU with reset_after=False's two passes."""
    if cell.op == "GRU" and not cell.reset_after:
        gates, cand, bias_width = _gru_split_numerics(cell, x_spec)
        notes.append(
            f"'{cell.name}' (GRU, reset_after=False): two passes per step, the gates z, r and then the "
            "candidate from r * h_q"
        )
        plans = [
            _plan_layer(graph, cell, x_spec, pe, pad, notes, gates),
            _plan_layer(graph, cell, x_spec, pe, pad, [], cand),
        ]
        for p in plans:  # one bias memory, one row width in the shared element-wise unit
            p.bias_width = bias_width
        return plans
    return [_plan_layer(graph, cell, x_spec, pe, pad, notes)]


def stacked_matrix(cell) -> np.ndarray:
    """The engine's matrix [NCOL, NROW] of an LSTM or GRU layer (raw weights, kernel rows first)."""
    k, r = cell.kernel.raw.astype(np.int64), cell.recurrent.raw.astype(np.int64)
    if cell.op != "GRU":
        return np.vstack([k, r])
    u = cell.units
    return np.vstack(
        [
            np.hstack([k, np.zeros((k.shape[0], u), dtype=np.int64)]),
            np.hstack([r[:, : 2 * u], np.zeros((u, u), dtype=np.int64), r[:, 2 * u :]]),
        ]
    )


def _lstm_numerics(lstm, x_spec) -> dict:
    """The LSTM's stacked matrix, accumulator grid (z's), tables and element-wise widths."""
    st, xt = lstm.state_type, x_spec.type
    sp = lstm.internal_specs(x_spec)
    z_t, c_t, h_t = sp["z"], sp["c"], sp["h"]
    zf = z_t.type.frac
    if lstm.bias is not None:
        bias = lstm.bias.raw.astype(np.int64)
        bias_shift = zf - lstm.bias.type.frac
    else:
        bias, bias_shift = np.zeros(4 * lstm.units, dtype=np.int64), 0
    gate = plan_table("gate", lstm.gate_fn, z_t.lo, z_t.hi)
    cand = plan_table("cand", lstm.cand_fn, z_t.lo, z_t.hi)
    lv = max(gate.levels, cand.levels)
    gate = plan_table("gate", lstm.gate_fn, z_t.lo, z_t.hi, lv)
    cand = plan_table("cand", lstm.cand_fn, z_t.lo, z_t.hi, lv)
    cell = plan_table("cell", lstm.cell_fn, c_t.lo, c_t.hi)
    gt, ct = lstm.gate_fn.out_type, lstm.cand_fn.out_type
    c_width = signed_bits(c_t.lo, c_t.hi)
    h_width = signed_bits(h_t.lo, h_t.hi)
    z_width = signed_bits(z_t.lo, z_t.hi)
    cf = c_t.type.frac
    return {
        "matrix": stacked_matrix(lstm),
        "grid": zf,
        "h_spec": h_t,
        "shift_x": zf - (xt.frac + lstm.kernel.type.frac),
        "shift_h": zf - (st.frac + lstm.recurrent.type.frac),
        "z_width": z_width,
        "bias": bias,
        "bias_shift": bias_shift,
        "gate": gate,
        "cand": cand,
        "cell": cell,
        "gate_width": gate.out_width,
        "cand_width": cand.out_width,
        "c_width": c_width,
        "c_shift_fc": cf - (gt.frac + st.frac),
        "c_shift_ig": cf - (gt.frac + ct.frac),
        "h_width": h_width,
        "state_requant_c": Requant(lane_type(c_width, cf), st),
        "state_requant_h": Requant(lane_type(h_width, h_t.type.frac), st),
        "cell_types": {
            "z": lane_type(z_width, zf),
            "z_th": lane_type(z_width + 1, zf),
            "gate": gt,
            "cand": ct,
            "c": lane_type(c_width, cf),
            "c_th": lane_type(c_width + 1, cf),
            "cell_act": lstm.cell_fn.out_type,
            "h": lane_type(h_width, h_t.type.frac),
        },
    }


def _gru_numerics(gru, x_spec) -> dict:
    """The GRU (reset_after=True) on the LSTM's array.

    Rows [z; r; h_x; h_h] (U each), columns [x; h_q]: the matrix is [[W_z W_r W_h 0]; [U_z U_r 0 U_h]].
    Every row accumulates on one grid G, fine enough for the exact z/r pre-activations, for
    a = x W + b and for m = h_q U_h + b_rh, so a row's sum is its reference value shifted left:
    the biases are put on G in the plan (bias_shift 0).  The gate table's thresholds are moved
    onto G; the candidate's input pre = (h_x << gf) + r * m is exact on the grid gf + G, and its
    table's thresholds are moved there.  h = (z * h_q) << h_shift_z + ((1 - z) * hh) << h_shift_c.
    """
    st, xt, u, F = gru.state_type, x_spec.type, gru.units, x_spec.shape[1]
    sp = gru.internal_specs(x_spec)
    a_s, zr_s, ph_s, h_s = sp["a"], sp["zr"], sp["pre_h"], sp["h"]
    gt, ct = gru.gate_fn.out_type, gru.cand_fn.out_type
    gf = gt.frac
    if gf < 0:
        raise _fail(gru, f"the gate's output type {gt} has a negative fraction; the engine needs gf >= 0")
    kf, rf = xt.frac + gru.kernel.type.frac, st.frac + gru.recurrent.type.frac
    rb = gru.recurrent_bias
    mf = max(rf, rb.type.frac) if rb is not None else rf
    grid = max(zr_s.type.frac, a_s.type.frac, mf, kf, rf)
    matrix = stacked_matrix(gru)
    bias = [0] * (4 * u)
    if gru.bias is not None:
        for i, v in enumerate(gru.bias.raw.tolist()):
            bias[i] += int(v) << (grid - gru.bias.type.frac)
    if rb is not None:
        for i, v in enumerate(rb.raw.tolist()):
            bias[i if i < 2 * u else i + u] += int(v) << (grid - rb.type.frac)
    # every row's sum, on G: the kernel part, the recurrent part and its bias
    sx, sh = grid - kf, grid - rf
    klo, khi = _mac_bounds(matrix[:F], x_spec.lo, x_spec.hi)
    rlo, rhi = _mac_bounds(matrix[F:], st.min_raw, st.max_raw)
    row_lo = [int(a) * (1 << sx) + int(b) * (1 << sh) + int(c) for a, b, c in zip(klo, rlo, bias, strict=True)]
    row_hi = [int(a) * (1 << sx) + int(b) * (1 << sh) + int(c) for a, b, c in zip(khi, rhi, bias, strict=True)]
    sg = grid - zr_s.type.frac
    z_width = signed_bits(min(min(row_lo), zr_s.lo << sg, 0), max(max(row_hi), zr_s.hi << sg, 0))
    sc = gf + grid - ph_s.type.frac
    pre_width = signed_bits(ph_s.lo << sc, ph_s.hi << sc)
    if max(z_width, pre_width) > MAX_ACC_WIDTH:
        raise _fail(
            gru,
            f"the rows need {z_width} bits and the candidate's input {pre_width} on the engine's common "
            f"grid (limit {MAX_ACC_WIDTH})",
        )
    bias = np.asarray(bias, dtype=np.int64)
    gate, cand = _gru_tables(gru, zr_s, ph_s, (sg, z_width + 1), (sc, pre_width + 1))
    hf = h_s.type.frac
    h_width = signed_bits(h_s.lo, h_s.hi)
    glo, ghi = gru.gate_fn.out_bounds()
    one = 1 << gf
    return {
        "matrix": matrix,
        "grid": grid,
        "h_spec": h_s,
        "shift_x": sx,
        "shift_h": sh,
        "z_width": z_width,
        "bias": bias,
        "bias_shift": 0,
        "gate": gate,
        "cand": cand,
        "cell": None,
        "gate_width": gate.out_width,
        "cand_width": cand.out_width,
        "h_width": h_width,
        "state_requant_h": Requant(lane_type(h_width, hf), st),
        "kind": "gru",
        "pre_width": pre_width,
        "h_shift_z": hf - (gf + st.frac),
        "h_shift_c": hf - (gf + ct.frac),
        "cell_types": {
            "z": lane_type(z_width, grid),
            "z_th": lane_type(z_width + 1, grid),
            "gate": gt,
            "cand": ct,
            "pre": lane_type(pre_width, gf + grid),
            "pre_th": lane_type(pre_width + 1, gf + grid),
            "one_z": lane_type(signed_bits(min(one - int(ghi), 0), max(one - int(glo), 0)), gf),
            "h": lane_type(h_width, hf),
        },
    }


def _gru_tables(gru, zr_s, ph_s, gate_at: tuple[int, int], cand_at: tuple[int, int]) -> tuple:
    """The GRU's gate table (on the z/r pre-activations) and candidate table (on pre_h), their
    thresholds shifted onto the engine's grids and compared at the given widths:
    ``gate_at``, ``cand_at`` = (shift, input width)."""
    gate = plan_table("gate", gru.gate_fn, zr_s.lo, zr_s.hi)
    gate = replace(gate, thresholds=gate.thresholds << gate_at[0], in_width=gate_at[1])
    cand = plan_table("cand", gru.cand_fn, ph_s.lo, ph_s.hi)
    cand = replace(cand, thresholds=cand.thresholds << cand_at[0], in_width=cand_at[1])
    return gate, cand


def _gru_split_numerics(gru, x_spec) -> tuple[dict, dict]:
    """A GRU with reset_after=False in two passes per step (two layers of the stack, one
    element-wise unit): pre_h = a_h + (r * h_q) U_h needs r before U_h can start.

    Gates pass: columns [x; h_q], rows [z; r; 0; 0] ([[W_z W_r 0 0]; [U_z U_r 0 0]]) on a grid
    G_A fine enough for the exact z/r pre-activations; the element-wise unit keeps z and the
    exact r * h_q (``rh``).  Candidate pass: columns [x; r * h_q], rows [pre; 0; 0; 0]
    ([[W_h 0 0 0]; [U_h 0 0 0]]) on G_B, the grid of the exact pre_h = a_h + (r * h_q) U_h, so
    that its row is pre_h (b_h added); the candidate table reads it and h = z * h_q + (1 - z) * hh
    as in :func:`_gru_numerics`.  Both passes share the row width ZW and the bias width.
    """
    st, xt, u, F = gru.state_type, x_spec.type, gru.units, x_spec.shape[1]
    sp = gru.internal_specs(x_spec)
    zr_s, ph_s, h_s = sp["zr"], sp["pre_h"], sp["h"]
    gt, ct = gru.gate_fn.out_type, gru.cand_fn.out_type
    gf = gt.frac
    if gf < 0:
        raise _fail(gru, f"the gate's output type {gt} has a negative fraction; the engine needs gf >= 0")
    kf, rf, sf = xt.frac + gru.kernel.type.frac, st.frac + gru.recurrent.type.frac, st.frac
    k, r = gru.kernel.raw.astype(np.int64), gru.recurrent.raw.astype(np.int64)
    glo, ghi = gru.gate_fn.out_bounds()
    rh_lo, rh_hi = (int(v) for v in _corner_bounds(int(glo), int(ghi), st.min_raw, st.max_raw))
    rh_f = gf + sf
    b = gru.bias

    def one_pass(matrix, grid, hcol, rows):  # rows: (row block, bias slice) pairs
        bias = np.zeros(4 * u, dtype=np.int64)
        if b is not None:
            for blk, sl in rows:
                bias[blk * u : (blk + 1) * u] = b.raw[sl].astype(np.int64) << (grid - b.type.frac)
        sx, sh = grid - kf, grid - (hcol[2] + gru.recurrent.type.frac)
        klo, khi = _mac_bounds(matrix[:F], x_spec.lo, x_spec.hi)
        rlo, rhi = _mac_bounds(matrix[F:], hcol[0], hcol[1])
        lo = [int(a) * (1 << sx) + int(c) * (1 << sh) + int(d) for a, c, d in zip(klo, rlo, bias, strict=True)]
        hi = [int(a) * (1 << sx) + int(c) * (1 << sh) + int(d) for a, c, d in zip(khi, rhi, bias, strict=True)]
        return bias, sx, sh, lo, hi

    zeros = np.zeros
    # gates pass
    ga = max(zr_s.type.frac, kf, rf)
    ma = np.vstack(
        [
            np.hstack([k[:, : 2 * u], zeros((F, 2 * u), np.int64)]),
            np.hstack([r[:, : 2 * u], zeros((u, 2 * u), np.int64)]),
        ]
    )
    hq_col = (st.min_raw, st.max_raw, sf)
    bias_a, sxa, sha, lo_a, hi_a = one_pass(ma, ga, hq_col, [(0, slice(0, u)), (1, slice(u, 2 * u))])
    sga = ga - zr_s.type.frac
    zw_a = signed_bits(min(min(lo_a), zr_s.lo << sga, 0), max(max(hi_a), zr_s.hi << sga, 0))
    # candidate pass
    gb = max(ph_s.type.frac, kf, rh_f + gru.recurrent.type.frac)
    mb = np.vstack(
        [
            np.hstack([k[:, 2 * u :], zeros((F, 3 * u), np.int64)]),
            np.hstack([r[:, 2 * u :], zeros((u, 3 * u), np.int64)]),
        ]
    )
    rh_col = (rh_lo, rh_hi, rh_f)
    bias_b, sxb, shb, lo_b, hi_b = one_pass(mb, gb, rh_col, [(0, slice(2 * u, 3 * u))])
    sgb = gb - ph_s.type.frac
    zw_b = signed_bits(min(min(lo_b), ph_s.lo << sgb, 0), max(max(hi_b), ph_s.hi << sgb, 0))
    zw = max(zw_a, zw_b)
    if zw > MAX_ACC_WIDTH:
        raise _fail(gru, f"the rows need {zw} bits on the engine's grids (limit {MAX_ACC_WIDTH})")
    bw = signed_bits(int(min(bias_a.min(), bias_b.min(), 0)), int(max(bias_a.max(), bias_b.max(), 0)))
    gate, cand = _gru_tables(gru, zr_s, ph_s, (sga, zw + 1), (sgb, zw + 1))
    hf = h_s.type.frac
    h_width = signed_bits(h_s.lo, h_s.hi)
    one = 1 << gf
    rh_width = signed_bits(min(rh_lo, 0), max(rh_hi, 0))
    shared = {
        "h_spec": h_s,
        "z_width": zw,
        "bias_shift": 0,
        "gate_width": gate.out_width,
        "cand_width": cand.out_width,
        "cell": None,
        "h_width": h_width,
        "state_requant_h": Requant(lane_type(h_width, hf), st),
        "kind": "gru",
        "pre_width": zw,
        "rh_width": rh_width,
        "h_shift_z": hf - (gf + st.frac),
        "h_shift_c": hf - (gf + ct.frac),
    }

    def types(grid):
        return {
            "z": lane_type(zw, grid),
            "z_th": lane_type(zw + 1, grid),
            "gate": gt,
            "cand": ct,
            "pre": lane_type(zw, grid),
            "pre_th": lane_type(zw + 1, grid),
            "one_z": lane_type(signed_bits(min(one - int(ghi), 0), max(one - int(glo), 0)), gf),
            "h": lane_type(h_width, hf),
            "rh": lane_type(rh_width, rh_f),
        }

    gates = {**shared, "matrix": ma, "grid": ga, "shift_x": sxa, "shift_h": sha, "bias": bias_a, "gate": gate,
             "cand": None, "gru_pass": 1, "hcol": hq_col, "cell_types": types(ga)}  # fmt: skip
    cands = {**shared, "matrix": mb, "grid": gb, "shift_x": sxb, "shift_h": shb, "bias": bias_b, "gate": None,
             "cand": cand, "gru_pass": 2, "hcol": rh_col, "cell_types": types(gb)}  # fmt: skip
    return gates, cands, bw


def _types(cell, x_spec, matrix, feats, grid, acc_width, plan, cell_types) -> LstmTypes:
    xt, st = x_spec.type, cell.state_type
    kt, rt = cell.kernel.type, cell.recurrent.type
    wf = max(kt.frac, rt.frac)
    on_grid = matrix.copy()
    on_grid[:feats] <<= wf - kt.frac
    on_grid[feats:] <<= wf - rt.frac
    hlo, hhi, hf = plan.hcol
    af = max(xt.frac, hf)
    a_lo = min(x_spec.lo << (af - xt.frac), hlo << (af - hf))
    a_hi = max(x_spec.hi << (af - xt.frac), hhi << (af - hf))
    return LstmTypes(
        x=xt,
        state=st,
        kernel=kt,
        recurrent=rt,
        weight=exact_type(int(on_grid.min()), int(on_grid.max()), wf),
        act=exact_type(a_lo, a_hi, af),
        acc=lane_type(acc_width, grid),
        bias=lane_type(plan.bias_width, grid - plan.bias_shift),
        **cell_types,
    )


def _plan_head(plan: LstmPlan, h_spec, units: int, rest: list):
    width, signed, n, frac = signed_bits(h_spec.lo, h_spec.hi), True, units, h_spec.type.frac
    lo, hi = h_spec.lo, h_spec.hi
    # the head's layer names become file names and identifiers: ASCII, distinct, and never one
    # the engine's own memories use (lstm_*); plan.head_names maps them back
    names = Idents(taken=["lstm", "head"])
    for node in rest:
        s = node.spec
        ow = signed_bits(min(s.lo, 0), s.hi)
        if node.op == "Dense":
            k = node.kernel.raw.astype(np.int64)
            b = node.bias.raw.astype(np.int64) if node.bias is not None else np.zeros(k.shape[1], dtype=np.int64)
            bfrac = node.bias.type.frac if node.bias is not None else s.type.frac
            stage = HeadStage(
                names(node.name),
                "dense",
                k.shape[0],
                k.shape[1],
                width,
                signed,
                ow,
                True,
                weights=k,
                weight_width=signed_bits(int(min(k.min(), 0)), int(max(k.max(), 0))),
                bias=b,
                bias_width=signed_bits(int(min(b.min(), 0)), int(max(b.max(), 0))),
                prod_shift=s.type.frac - (frac + node.kernel.type.frac),
                bias_shift=s.type.frac - bfrac,
            )
            stage.weight_type = lane_type(stage.weight_width, node.kernel.type.frac)
            stage.bias_type = lane_type(stage.bias_width, bfrac)
            if max(stage.weight_width, width) > MAX_MUL_WIDTH or ow > MAX_ACC_WIDTH:
                raise _fail(node, "types wider than the engine's multipliers/accumulators")
        else:
            fn = node.function
            stage = HeadStage(names(node.name), fn, n, n, width, signed, ow, True)
            if fn == "step":
                stage.table = plan_table(stage.name, node.step, lo, hi)
                stage.value_type = node.step.out_type
                if stage.table.channels not in (1, n):
                    raise _fail(node, "per-channel table does not match the vector length")
            elif fn == "requant":
                stage.requant = Requant(lane_type(width, frac), node.type, bool(node.relu))
        stage.in_type = lane_type(width, frac)
        stage.out_type = lane_type(ow, s.type.frac)
        plan.head.append(stage)
        width, n, frac, lo, hi = ow, stage.n_out, s.type.frac, s.lo, s.hi
    plan.head_names = names.original
    plan.out_width = width
    plan.out_type = lane_type(width, frac)
    plan.out_count = n
    plan.out_signed = True


# --------------------------------------------------------------------- memory images
def layer_prefix(k: int) -> str:
    """File stem prefix of layer k's element-wise memories (bias, tables)."""
    return "lstm_" if k == 0 else f"lstm{k}_"


def memory_images(plan: LstmPlan) -> dict[str, tuple[list, int]]:
    """Every memory's words and width, by file stem (``lstm_w_pe0`` ...).  A PE's memories hold
    every layer's entries and blocks, layer after layer (pointers are absolute addresses)."""
    out: dict[str, tuple[list, int]] = {}
    ww, b = plan.code_width, plan.index_bits
    ab, cb, k = plan.addr_bits, plan.count_bits, plan.scan_width
    for p in range(plan.pe):
        words, blocks = [], []
        for lp in plan.layers:
            e = lp.entries[p]
            base = len(words)
            codes = plan.codes(e[:, 0]) if len(e) else []
            words += [(int(rel) << ww) | (int(c) & ((1 << ww) - 1)) for c, rel in zip(codes, e[:, 1], strict=True)]
            # an empty column's start is never read (and may equal the depth): store 0
            ptr = [(int(c) << ab) | (int(s) + base if c else 0) for s, c in lp.pointers[p]]
            assert all(int(s) + base < (1 << ab) for s, c in lp.pointers[p] if c), "pointer field overflow"
            ptr += [0] * (lp.blocks * k - len(ptr))
            # one word per block of K columns, column b*K + i at bits i*(ab + cb)
            blocks += [sum(ptr[j * k + i] << (i * (ab + cb)) for i in range(k)) for j in range(lp.blocks)]
        words = words or [0]
        words += [0] * (plan.depth - len(words))
        out[f"lstm_w_pe{p}"] = (words, ww + b)
        out[f"lstm_ptr_pe{p}"] = (blocks, k * (ab + cb))
    for i, lp in enumerate(plan.layers):
        out[f"{layer_prefix(i)}bias"] = ([int(v) for v in lp.bias], lp.bias_width)
        for t in lp.tables:
            _table_images(out, f"{layer_prefix(i)}{t.name}", t)
    for st in plan.head:
        if st.kind == "dense":
            out[f"{st.name}_w"] = ([int(v) for v in st.weights.T.reshape(-1)], st.weight_width)
            out[f"{st.name}_b"] = ([int(v) for v in st.bias], st.bias_width)
        elif st.kind == "step":
            _table_images(out, st.name, st.table)
    return out


def _table_images(out, stem, t: TablePlan):
    n = 1 << t.levels
    th = np.full((t.channels, n), 0, dtype=np.int64)
    th[:, : n - 1] = t.thresholds
    out[f"{stem}_t"] = ([int(v) for v in th.reshape(-1)], t.in_width)
    out[f"{stem}_v"] = ([int(v) for v in t.values.reshape(-1)], t.out_width)

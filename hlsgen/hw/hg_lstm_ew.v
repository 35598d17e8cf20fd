// hg_lstm_ew: the sparse LSTM engine's element-wise unit and state memories.
//
// E lanes (a power of two) work side by side: while `run` (the controller's element-wise phase),
// counter k issues units u = k*E + e (lane e, for u < U), so the phase lasts ceil(U/E) + H_W
// cycles.  In each lane:
// z_g[u] = acc_g[u] + bias_g[u] << BS for the four gates (i, f, c, o) is registered, the gate
// and candidate tables (hg_step) give i, f, o and g, then at fixed offsets after the issue
//   C_R: c_q[u] is read;  C_W: c = (f * c_q) << SFC + (i * g) << SIG is requantized to the
//   state type and written;  H_W: h = o * cell(c) (exact, kept for the output) and its
//   requantized state (the next step's recurrent input) are written.
// The offsets come from the plan (EwSchedule).  On the sequence's first step the previous state
// reads as zero (first).  The states live in E banks (unit u in bank u mod E, row u / E); the
// scanner reads K words of the quantized hidden state at once (h_addr, h_q); the exact hidden state
// is read NR words at a time (r_addr, r_h) and, with OUT, by the output streamer; see hg_ew_io.
`default_nettype none
module hg_lstm_ew #(
    parameter integer U     = 16,  // units
    parameter integer E     = 1,   // element-wise lanes (a power of two)
    parameter integer K     = 1,   // the scanner's reads of the quantized hidden state
    parameter integer NR    = 1,   // reads of the exact hidden state by address (r_addr)
    parameter integer OUT   = 0,   // 1: the output streamer reads the state (o_swap, o_idx, o_word)
    parameter integer EB    = $clog2(E),            // log2(E)
    parameter integer NG    = (U + E - 1) / E,      // unit groups: ceil(U / E)
    parameter integer GRW   = NG > 1 ? $clog2(NG) : 1,  // bits of a group index (holds NG - 1)
    parameter integer UW    = 4,   // bits of a unit index (holds U - 1)
    parameter integer RIW   = 6,   // bits of a gate row index (holds 4U - 1)
    parameter integer EKW   = 5,   // bits of k (holds NG + H_W)
    parameter integer ACCW  = 24,  // accumulator bits (signed)
    parameter integer ZIN   = 0,   // 1: z_flat holds the PEs' RAM reads (below)
    parameter integer NJ    = 1,   // ZIN: PEs per lane, P / E
    parameter integer JW    = 1,   // ZIN: bits of a PE within a lane's (holds NJ - 1)
    parameter integer ZRW   = 1,   // ZIN: bits of z_row
    parameter integer BW    = 8,   // bias bits (signed)
    parameter integer BS    = 0,   // bias shift onto the z grid
    parameter integer ZSW   = 26,  // bits of the biased sum (exact)
    parameter integer ZW    = 16,  // bits of z (exact, signed)
    parameter integer GW    = 8,   // gate table output bits (signed)
    parameter integer GGW   = 8,   // candidate table output bits (signed)
    parameter integer GLV   = 4,   // gate table levels
    parameter integer CLV   = 4,   // candidate table levels
    parameter integer SW    = 8,   // quantized state bits
    parameter integer SSIGN = 1,   // the state type is signed
    parameter integer CW    = 16,  // cell state bits (exact, signed)
    parameter integer CXW   = 20,  // bits of the cell products (exact)
    parameter integer SFC   = 0,   // (f * c_q) shift onto the c grid
    parameter integer SIG   = 0,   // (i * g) shift onto the c grid
    parameter integer ALV   = 4,   // cell table levels
    parameter integer AOW   = 8,   // cell table output bits (signed)
    parameter integer LT2   = 5,   // cell table latency (ALV + 1)
    parameter integer HW    = 16,  // hidden state bits (exact, signed)
    parameter integer C_R   = 6,   // schedule: c_q read, k - u
    parameter integer C_W   = 7,   // schedule: c written
    parameter integer H_W   = 13,  // schedule: h written (the element-wise latency)
    parameter integer RQC_SHIFT = 0, parameter integer RQC_RND = 0, parameter integer RQC_OVF = 1,
    parameter integer RQH_SHIFT = 0, parameter integer RQH_RND = 0, parameter integer RQH_OVF = 1,
    parameter        BFILE  = "lstm_bias.mem",
    parameter        GTFILE = "lstm_gate_t.mem", parameter GVFILE = "lstm_gate_v.mem",
    parameter        CTFILE = "lstm_cand_t.mem", parameter CVFILE = "lstm_cand_v.mem",
    parameter        ATFILE = "lstm_cell_t.mem", parameter AVFILE = "lstm_cell_v.mem"
) (
    input  wire              clk,
    input  wire              run,      // the element-wise phase
    input  wire [EKW-1:0]    k,        // cycles since the phase began
    input  wire              first,    // the sequence's first step: previous state is zero
    // ZIN = 0: every gate row, z_flat[(g*U + u)*ACCW +: ACCW].  ZIN = 1 (the accumulators in
    // RAM, P a multiple of E and U of P): unit u's rows sit in PE u mod P at local rows
    // g*(U/P) + u / P; every PE q reads its rows g*(U/P) + z_row onto z_flat[(q*4 + g)*ACCW +: ACCW]
    // and at cycle k lane e takes PE (k mod NJ)*E + e, z_row being k / NJ.
    input  wire [(ZIN != 0 ? NJ * E : U)*4*ACCW-1:0] z_flat,
    output wire [ZRW-1:0]    z_row,
    input  wire [K*UW-1:0]   h_addr,   // the scanner's K reads of the quantized hidden state
    output wire [K*SW-1:0]   h_q,
    input  wire [NR*UW-1:0]  r_addr,   // reads of the exact hidden state (the next layer's, the head's)
    output wire [NR*HW-1:0]  r_h,
    input  wire              o_swap,   // OUT: the output hand-off (hg_ew_io's output banks)
    input  wire [UW-1:0]     o_idx,
    output wire [HW-1:0]     o_word
);
    reg [BW-1:0] bmem [0:4*U-1];
    initial $readmemh(BFILE, bmem);
    // hg_ew_io: the scanner's reads, the exact hidden state's lane memories and their reads, the RAM-read counters (ZIN)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [JW-1:0] ej;  // ZIN: the PE each lane reads (unused without ZIN)
    /* verilator lint_on UNUSEDSIGNAL */
    wire [E*K*SW-1:0] lane_q;  // lane e's K words (its bank at each read's row)
    wire [E-1:0] h_we;  // lane e writes the exact hidden state h_wd at its row h_wrow
    wire [E*GRW-1:0] h_wrow;
    wire [E*HW-1:0] h_wd;
    hg_ew_io #(.U(U), .E(E), .EB(EB), .NG(NG), .GRW(GRW), .K(K), .NR(NR), .OUT(OUT), .UW(UW), .QW(SW), .HW(HW), .ZIN(ZIN), .NJ(NJ), .JW(JW),
               .ZRW(ZRW)) u_io (
        .clk(clk), .run(run), .h_addr(h_addr), .lane_q(lane_q), .h_q(h_q), .h_we(h_we), .h_wrow(h_wrow),
        .h_wd(h_wd), .r_addr(r_addr), .r_h(r_h), .o_swap(o_swap), .o_idx(o_idx),
        .o_word(o_word),
        .ej(ej), .z_row(z_row)
    );
    genvar g, e, r;
    generate
        for (e = U; e < E; e = e + 1) begin : g_idle  // lanes without a unit (E > U)
            assign lane_q[e*K*SW +: K*SW] = {K*SW{1'b0}};
            assign h_we[e] = 1'b0;
            assign h_wrow[e*GRW +: GRW] = {GRW{1'b0}};
            assign h_wd[e*HW +: HW] = {HW{1'b0}};
        end
        for (e = 0; e < E && e < U; e = e + 1) begin : g_lane
            // the lane's unit at a group index (units past U are issued but never written)
            /* verilator lint_off UNUSEDSIGNAL */
            wire [EKW+EB:0] u_full = ({{(EB + 1) {1'b0}}, k} << EB) + e;
            /* verilator lint_on UNUSEDSIGNAL */
            localparam integer UI = U;
            wire [EKW+EB:0] UL = UI[EKW+EB:0];
            wire in_range = u_full < UL;
            wire [UW-1:0] u = in_range ? u_full[UW-1:0] : {UW{1'b0}};
            wire [RIW-1:0] ur = {{(RIW - UW) {1'b0}}, u};
            reg [SW-1:0] hst [0:NG-1];   // quantized hidden state (next step's recurrent input)
            reg [SW-1:0] cst [0:NG-1];   // quantized cell state
            wire [K*SW-1:0] hq_lane;
            for (r = 0; r < K; r = r + 1) begin : g_hread
                /* verilator lint_off UNUSEDSIGNAL */
                wire [UW:0] h_row = {1'b0, h_addr[r*UW +: UW]} >> EB;
                /* verilator lint_on UNUSEDSIGNAL */
                assign hq_lane[r*SW +: SW] = hst[h_row[GRW-1:0]];
            end
            assign lane_q[e*K*SW +: K*SW] = hq_lane;
            reg [ZW-1:0] zr [0:3];
            // the lane's own rows only: unit k*E + e of gate g is row g*U + k*E + e (an NG:1
            // read per gate, not 4U:1; with ZIN a P/E:1 read); k past the last group reads
            // group 0 (never written); kg is unused with ZIN
            /* verilator lint_off UNUSEDSIGNAL */
            wire [GRW-1:0] kg = (k < NG[EKW-1:0]) ? k[GRW-1:0] : {GRW{1'b0}};
            /* verilator lint_on UNUSEDSIGNAL */
            for (g = 0; g < 4; g = g + 1) begin : g_gate
                localparam integer GU = g * U;
                wire [RIW-1:0] zi = ur + GU[RIW-1:0];
                wire [BW-1:0] bb = bmem[zi];
                wire [ZW-1:0] zg;
                hg_ew_row #(.U(U), .E(E), .LANE(e), .GATE(g), .NG(NG), .GRW(GRW), .ZIN(ZIN), .NJ(NJ), .JW(JW),
                            .ZFW((ZIN != 0 ? NJ * E : U)*4*ACCW), .ACCW(ACCW), .BW(BW), .BS(BS), .ZSW(ZSW), .ZW(ZW))
                    u_row (.z_flat(z_flat), .ej(ej), .kg(kg), .bias(bb), .z(zg));
                always @(posedge clk) zr[g] <= zg;
            end
            wire [GW-1:0] g_i, g_f, g_o;
            wire [GGW-1:0] g_g;
            hg_step #(.XW(ZW), .OW(GW), .LEVELS(GLV), .CHW(1), .TFILE(GTFILE), .VFILE(GVFILE))
                u_gate_i (.clk(clk), .x(zr[0]), .ch(1'b0), .y(g_i));
            hg_step #(.XW(ZW), .OW(GW), .LEVELS(GLV), .CHW(1), .TFILE(GTFILE), .VFILE(GVFILE))
                u_gate_f (.clk(clk), .x(zr[1]), .ch(1'b0), .y(g_f));
            hg_step #(.XW(ZW), .OW(GW), .LEVELS(GLV), .CHW(1), .TFILE(GTFILE), .VFILE(GVFILE))
                u_gate_o (.clk(clk), .x(zr[3]), .ch(1'b0), .y(g_o));
            hg_step #(.XW(ZW), .OW(GGW), .LEVELS(CLV), .CHW(1), .TFILE(CTFILE), .VFILE(CVFILE))
                u_cand (.clk(clk), .x(zr[2]), .ch(1'b0), .y(g_g));

            // cell: c = (f * c_q) << SFC + (i * g) << SIG
            wire c_rd = (k >= C_R[EKW-1:0]) && (k < NG[EKW-1:0] + C_R[EKW-1:0]);
            /* verilator lint_off UNUSEDSIGNAL */
            wire [EKW-1:0] c_rk = c_rd ? k - C_R[EKW-1:0] : {EKW{1'b0}};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [SW-1:0] cq_raw = cst[c_rk[GRW-1:0]];
            wire signed [SW:0] cq = first ? {(SW + 1) {1'b0}} : {(SSIGN != 0) & cq_raw[SW-1], cq_raw};
            /* verilator lint_off UNUSEDSIGNAL */
            wire signed [CXW-1:0] fc = $signed(g_f) * cq;
            wire signed [CXW-1:0] ig = $signed(g_i) * $signed(g_g);
            wire signed [CXW-1:0] c_next = (fc <<< SFC) + (ig <<< SIG);
            /* verilator lint_on UNUSEDSIGNAL */
            reg [CW-1:0] c_r;
            always @(posedge clk) c_r <= c_next[CW-1:0];
            wire c_wr = (k >= C_W[EKW-1:0]) && (k < NG[EKW-1:0] + C_W[EKW-1:0]);
            /* verilator lint_off UNUSEDSIGNAL */
            wire [EKW-1:0] c_wk = c_wr ? k - C_W[EKW-1:0] : {EKW{1'b0}};
            wire [EKW+EB:0] c_unit = ({{(EB + 1) {1'b0}}, c_wk} << EB) + e;
            /* verilator lint_on UNUSEDSIGNAL */
            wire [SW-1:0] cq_new;
            hg_requant #(.IW(CW), .SHIFT(RQC_SHIFT), .OW(SW), .OSIGNED(SSIGN), .RND(RQC_RND), .OVF(RQC_OVF))
                u_rq_c (.x(c_r), .y(cq_new));
            always @(posedge clk) if (run && c_wr && c_unit < UL) cst[c_wk[GRW-1:0]] <= cq_new;

            // hidden: h = o * cell(c)
            wire [AOW-1:0] a_c;
            hg_step #(.XW(CW), .OW(AOW), .LEVELS(ALV), .CHW(1), .TFILE(ATFILE), .VFILE(AVFILE))
                u_cell (.clk(clk), .x(c_r), .ch(1'b0), .y(a_c));
            reg [GW*(LT2+1)-1:0] o_sr;
            /* verilator lint_off UNUSEDSIGNAL */
            wire [GW*(LT2+2)-1:0] o_next = {o_sr, g_o};
            /* verilator lint_on UNUSEDSIGNAL */
            always @(posedge clk) o_sr <= o_next[GW*(LT2+1)-1:0];
            wire signed [GW-1:0] o_d = o_sr[GW*(LT2+1)-1 -: GW];
            /* verilator lint_off UNUSEDSIGNAL */
            wire signed [GW+AOW-1:0] h_next = o_d * $signed(a_c);
            /* verilator lint_on UNUSEDSIGNAL */
            reg [HW-1:0] h_r;
            always @(posedge clk) h_r <= h_next[HW-1:0];
            wire h_wr = (k >= H_W[EKW-1:0]) && (k < NG[EKW-1:0] + H_W[EKW-1:0]);
            /* verilator lint_off UNUSEDSIGNAL */
            wire [EKW-1:0] h_wk = h_wr ? k - H_W[EKW-1:0] : {EKW{1'b0}};
            wire [EKW+EB:0] h_unit = ({{(EB + 1) {1'b0}}, h_wk} << EB) + e;
            /* verilator lint_on UNUSEDSIGNAL */
            wire [SW-1:0] hq_new;
            hg_requant #(.IW(HW), .SHIFT(RQH_SHIFT), .OW(SW), .OSIGNED(SSIGN), .RND(RQH_RND), .OVF(RQH_OVF))
                u_rq_h (.x(h_r), .y(hq_new));
            assign h_we[e] = run && h_wr && h_unit < UL;
            assign h_wrow[e*GRW +: GRW] = h_wk[GRW-1:0];
            assign h_wd[e*HW +: HW] = h_r;  // the exact state: hg_ew_io's lane memory
            always @(posedge clk) if (h_we[e]) hst[h_wk[GRW-1:0]] <= hq_new;
        end
    endgenerate
endmodule
`default_nettype wire

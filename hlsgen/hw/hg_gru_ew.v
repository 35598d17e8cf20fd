// hg_gru_ew: the sparse recurrent engine's element-wise unit for a GRU.
//
// RA = 1 (reset_after = True): one pass per step.
// The PE array gives four rows per unit on one grid G (see engines/lstm/plan.py, _gru_numerics):
// z, r (the gates' pre-activations), h_x = x W_h + b_h and m = h_q U_h + b_rh.  E lanes (a power of
// two) work side by side: while `run`, counter k issues units u = k*E + e (lane e, for u < U),
// so the phase lasts ceil(U/E) + H_W cycles.  In each lane, at fixed offsets after the issue:
//   1:   the four biased sums are registered; the gate table (hg_step) turns z and r into gates;
//   C_R: pre = (h_x << GF) + r * m is registered (exact on the grid GF + G);
//        the candidate table turns it into hh;
//   H_R: h_q[u] is read (zero on the sequence's first step);
//   H_W: h = (z * h_q) << SHZ + ((1 - z) * hh) << SHC (exact, kept for the output) and its
//        requantized state (the next step's recurrent input) are written.
// RA = 0 (reset_after = False): two passes per step, each with its own MAC phase (`pass`):
//   gates pass (0): rows z, r (row 0, 1) on their grid; at C_R the gates z and r * h_q[u]
//     (exact, RHW bits) are written to the lane's banks, and the scanner reads r * h_q as the
//     candidate pass's recurrent columns;
//   candidate pass (1): row 0 is pre = x W_h + (r * h_q) U_h (+ b_h, from BFILE2) on its grid,
//     straight into the candidate table; at H_R z and h_q[u] are read, at H_W h is written.
// The states live in E banks (unit u in bank u mod E, row u / E); the scanner reads K words of
// the quantized hidden state at once (h_addr, h_q: QW bits; RA = 0: signed, r * h_q in the
// candidate pass); the exact hidden state is read NR words at a time (r_addr, r_h) and, with
// OUT, by the output streamer; see hg_ew_io.
`default_nettype none
module hg_gru_ew #(
    parameter integer U     = 16,  // units
    parameter integer RA    = 1,   // reset_after: 1 one pass per step, 0 two (gates, candidate)
    parameter integer RHW   = 17,  // RA = 0: bits of r * h_q (exact, signed)
    parameter integer QW    = 8,   // bits of a scanner read (RA = 1: SW; RA = 0: signed)
    parameter integer E     = 1,   // element-wise lanes (a power of two)
    parameter integer K     = 1,   // the scanner's reads of the quantized hidden state
    parameter integer NR    = 1,   // reads of the exact hidden state by address (r_addr)
    parameter integer OUT   = 0,   // 1: the output streamer reads the state (o_swap, o_idx, o_word)
    parameter integer EB    = $clog2(E),            // log2(E)
    parameter integer NG    = (U + E - 1) / E,      // unit groups: ceil(U / E)
    parameter integer GRW   = NG > 1 ? $clog2(NG) : 1,  // bits of a group index (holds NG - 1)
    parameter integer UW    = 4,   // bits of a unit index (holds U - 1)
    parameter integer RIW   = 6,   // bits of a row index (holds 4U - 1)
    parameter integer EKW   = 5,   // bits of k (holds NG + H_W)
    parameter integer ACCW  = 24,  // accumulator bits (signed)
    parameter integer ZIN   = 0,   // 1: z_flat holds the PEs' RAM reads (below)
    parameter integer NJ    = 1,   // ZIN: PEs per lane, P / E
    parameter integer JW    = 1,   // ZIN: bits of a PE within a lane's (holds NJ - 1)
    parameter integer ZRW   = 1,   // ZIN: bits of z_row
    parameter integer BW    = 8,   // bias bits (signed)
    parameter integer BS    = 0,   // bias shift onto G
    parameter integer ZSW   = 26,  // bits of the biased sum (exact)
    parameter integer ZW    = 16,  // bits of a row's value on G (exact, signed)
    parameter integer GW    = 8,   // gate table output bits (signed)
    parameter integer GGW   = 8,   // candidate table output bits (signed)
    parameter integer GLV   = 4,   // gate table levels
    parameter integer CLV   = 4,   // candidate table levels
    parameter integer GF    = 8,   // the gate's fraction bits: 1 is 1 << GF
    parameter integer PW    = 24,  // bits of pre (exact, signed)
    parameter integer SW    = 8,   // quantized state bits
    parameter integer SSIGN = 1,   // the state type is signed
    parameter integer SHZ   = 0,   // (z * h_q) shift onto the h grid
    parameter integer SHC   = 0,   // ((1 - z) * hh) shift onto the h grid
    parameter integer HW    = 16,  // hidden state bits (exact, signed)
    parameter integer C_R   = 6,   // schedule: pre registered, k - u
    parameter integer H_R   = 11,  // schedule: h_q read
    parameter integer H_W   = 12,  // schedule: h written (the element-wise latency)
    parameter integer RQH_SHIFT = 0, parameter integer RQH_RND = 0, parameter integer RQH_OVF = 1,
    parameter        BFILE  = "lstm_bias.mem",
    parameter        BFILE2 = "lstm1_bias.mem",  // RA = 0: the candidate pass's bias
    parameter        GTFILE = "lstm_gate_t.mem", parameter GVFILE = "lstm_gate_v.mem",
    parameter        CTFILE = "lstm_cand_t.mem", parameter CVFILE = "lstm_cand_v.mem"
) (
    input  wire              clk,
    input  wire              run,      // the element-wise phase
    input  wire [EKW-1:0]    k,        // cycles since the phase began
    input  wire              first,    // the sequence's first step: previous state is zero
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire              pass,     // RA = 0: the candidate pass (else the gates pass)
    /* verilator lint_on UNUSEDSIGNAL */
    // ZIN = 0: every gate row, z_flat[(g*U + u)*ACCW +: ACCW].  ZIN = 1 (the accumulators in
    // RAM, P a multiple of E and U of P): unit u's rows sit in PE u mod P at local rows
    // g*(U/P) + u / P; every PE q reads its rows g*(U/P) + z_row onto z_flat[(q*4 + g)*ACCW +: ACCW]
    // and at cycle k lane e takes PE (k mod NJ)*E + e, z_row being k / NJ.
    input  wire [(ZIN != 0 ? NJ * E : U)*4*ACCW-1:0] z_flat,
    output wire [ZRW-1:0]    z_row,
    input  wire [K*UW-1:0]   h_addr,   // the scanner's K reads of the quantized hidden state
    output wire [K*QW-1:0]   h_q,
    input  wire [NR*UW-1:0]  r_addr,   // reads of the exact hidden state (the next layer's, the head's)
    output wire [NR*HW-1:0]  r_h,
    input  wire              o_swap,   // OUT: the output hand-off (hg_ew_io's output banks)
    input  wire [UW-1:0]     o_idx,
    output wire [HW-1:0]     o_word
);
    localparam integer LG  = GLV + 1;                      // gate table latency
    localparam integer OZW = (GW > GF + 2 ? GW : GF + 2) + 1;  // 1 - z (signed)
    localparam integer PXW = (ZW + GF > GW + ZW ? ZW + GF : GW + ZW) + 2;
    localparam integer HXA = GW + SW + 1 + SHZ;
    localparam integer HXB = OZW + GGW + SHC;
    localparam integer HXW = (HXA > HXB ? HXA : HXB) + 2;
    reg [BW-1:0] bmem [0:4*U-1];
    initial $readmemh(BFILE, bmem);
    /* verilator lint_off UNUSEDSIGNAL */
    /* verilator lint_off UNDRIVEN */
    reg [BW-1:0] bmem2 [0:4*U-1];  // RA = 0: the candidate pass's (row 0 only is read)
    /* verilator lint_on UNDRIVEN */
    /* verilator lint_on UNUSEDSIGNAL */
    generate
        if (RA == 0) begin : g_b2
            initial $readmemh(BFILE2, bmem2);
        end
    endgenerate
    wire cpass = (RA == 0) && pass;  // the candidate pass
    // hg_ew_io: the scanner's reads, the exact hidden state's lane memories and their reads, the RAM-read counters (ZIN)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [JW-1:0] ej;  // ZIN: the PE each lane reads (unused without ZIN)
    /* verilator lint_on UNUSEDSIGNAL */
    wire [E*K*QW-1:0] lane_q;  // lane e's K words (its bank at each read's row)
    wire [E-1:0] h_we;  // lane e writes the exact hidden state h_wd at its row h_wrow
    wire [E*GRW-1:0] h_wrow;
    wire [E*HW-1:0] h_wd;
    hg_ew_io #(.U(U), .E(E), .EB(EB), .NG(NG), .GRW(GRW), .K(K), .NR(NR), .OUT(OUT), .UW(UW), .QW(QW), .HW(HW), .ZIN(ZIN), .NJ(NJ), .JW(JW),
               .ZRW(ZRW)) u_io (
        .clk(clk), .run(run), .h_addr(h_addr), .lane_q(lane_q), .h_q(h_q), .h_we(h_we), .h_wrow(h_wrow),
        .h_wd(h_wd), .r_addr(r_addr), .r_h(r_h), .o_swap(o_swap), .o_idx(o_idx),
        .o_word(o_word),
        .ej(ej), .z_row(z_row)
    );
    genvar g, e, r;
    generate
        for (e = U; e < E; e = e + 1) begin : g_idle  // lanes without a unit (E > U)
            assign lane_q[e*K*QW +: K*QW] = {K*QW{1'b0}};
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
            /* verilator lint_off UNUSEDSIGNAL */
            reg [GW-1:0] zbank [0:NG-1];   // RA = 0: z, from the gates pass
            reg [RHW-1:0] rbank [0:NG-1];  // RA = 0: r * h_q, from the gates pass
            /* verilator lint_on UNUSEDSIGNAL */
            wire [K*QW-1:0] hq_lane;
            for (r = 0; r < K; r = r + 1) begin : g_hread
                /* verilator lint_off UNUSEDSIGNAL */
                wire [UW:0] h_row = {1'b0, h_addr[r*UW +: UW]} >> EB;
                /* verilator lint_on UNUSEDSIGNAL */
                wire [SW-1:0] hw_ = hst[h_row[GRW-1:0]];
                if (RA != 0) begin : g_plain
                    assign hq_lane[r*QW +: QW] = hw_;
                end else begin : g_signed
                    wire [RHW-1:0] rw_ = rbank[h_row[GRW-1:0]];
                    assign hq_lane[r*QW +: QW] = cpass ? {{(QW - RHW) {rw_[RHW-1]}}, rw_}
                                                       : {{(QW - SW) {(SSIGN != 0) & hw_[SW-1]}}, hw_};
                end
            end
            assign lane_q[e*K*QW +: K*QW] = hq_lane;
            reg [ZW-1:0] zr [0:3];
            // the lane's own rows only: unit k*E + e of gate g is row g*U + k*E + e (an NG:1
            // read per gate, not 4U:1; with ZIN a P/E:1 read); k past the last group reads
            // group 0 (never written); kg is unused with ZIN
            /* verilator lint_off UNUSEDSIGNAL */
            wire [GRW-1:0] kg = (k < NG[EKW-1:0]) ? k[GRW-1:0] : {GRW{1'b0}};
            /* verilator lint_on UNUSEDSIGNAL */
            for (g = 0; g < 4; g = g + 1) begin : g_sum
                localparam integer GU = g * U;
                wire [RIW-1:0] zi = ur + GU[RIW-1:0];
                wire [BW-1:0] bb = (cpass && g == 0) ? bmem2[zi] : bmem[zi];
                wire [ZW-1:0] zg;
                hg_ew_row #(.U(U), .E(E), .LANE(e), .GATE(g), .NG(NG), .GRW(GRW), .ZIN(ZIN), .NJ(NJ), .JW(JW),
                            .ZFW((ZIN != 0 ? NJ * E : U)*4*ACCW), .ACCW(ACCW), .BW(BW), .BS(BS), .ZSW(ZSW), .ZW(ZW))
                    u_row (.z_flat(z_flat), .ej(ej), .kg(kg), .bias(bb), .z(zg));
                always @(posedge clk) zr[g] <= zg;
            end
            // gates z and r; h_x and m wait for r
            wire [GW-1:0] g_z, g_r;
            hg_step #(.XW(ZW), .OW(GW), .LEVELS(GLV), .CHW(1), .TFILE(GTFILE), .VFILE(GVFILE))
                u_gate_z (.clk(clk), .x(zr[0]), .ch(1'b0), .y(g_z));
            hg_step #(.XW(ZW), .OW(GW), .LEVELS(GLV), .CHW(1), .TFILE(GTFILE), .VFILE(GVFILE))
                u_gate_r (.clk(clk), .x(zr[1]), .ch(1'b0), .y(g_r));
            reg [ZW-1:0] hx_d [0:LG-1];
            reg [ZW-1:0] m_d [0:LG-1];
            integer i;
            always @(posedge clk) begin
                hx_d[0] <= zr[2];
                m_d[0] <= zr[3];
                for (i = 1; i < LG; i = i + 1) begin
                    hx_d[i] <= hx_d[i - 1];
                    m_d[i] <= m_d[i - 1];
                end
            end
            // C_R: pre = (h_x << GF) + r * m
            /* verilator lint_off UNUSEDSIGNAL */
            wire signed [PXW-1:0] pre_next = ($signed({{(PXW - ZW) {hx_d[LG-1][ZW-1]}}, hx_d[LG-1]}) <<< GF)
                                           + $signed(g_r) * $signed(m_d[LG-1]);
            /* verilator lint_on UNUSEDSIGNAL */
            /* verilator lint_off UNUSEDSIGNAL */
            reg [PW-1:0] pre_r;  // RA = 0: not read
            /* verilator lint_on UNUSEDSIGNAL */
            always @(posedge clk) pre_r <= pre_next[PW-1:0];
            wire [GGW-1:0] g_hh;
            wire [PW-1:0] cand_in;  // RA = 0: the candidate pass's row (PW = ZW)
            if (RA != 0) begin : g_pre_ra
                assign cand_in = pre_r;
            end else begin : g_pre_row
                assign cand_in = zr[0][PW-1:0];
            end
            hg_step #(.XW(PW), .OW(GGW), .LEVELS(CLV), .CHW(1), .TFILE(CTFILE), .VFILE(CVFILE))
                u_cand (.clk(clk), .x(cand_in), .ch(1'b0), .y(g_hh));
            // H_R: h_q[u] is read, h formed
            wire h_rd = (k >= H_R[EKW-1:0]) && (k < NG[EKW-1:0] + H_R[EKW-1:0]);
            /* verilator lint_off UNUSEDSIGNAL */
            wire [EKW-1:0] h_rk = h_rd ? k - H_R[EKW-1:0] : {EKW{1'b0}};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [SW-1:0] hq_raw = hst[h_rk[GRW-1:0]];
            wire signed [SW:0] hq = first ? {(SW + 1) {1'b0}} : {(SSIGN != 0) & hq_raw[SW-1], hq_raw};
            wire signed [GW-1:0] zg;
            if (RA != 0) begin : g_zdelay
                // z waits for hh: from C_R to H_R
                localparam integer ZD = H_R - C_R;
                reg [GW-1:0] z_d [0:ZD-1];
                always @(posedge clk) begin
                    z_d[0] <= g_z;
                    for (i = 1; i < ZD; i = i + 1) z_d[i] <= z_d[i - 1];
                end
                assign zg = z_d[ZD-1];
            end else begin : g_gates
                // the gates pass: at C_R, z and r * h_q[u] are kept for the candidate pass
                assign zg = zbank[h_rk[GRW-1:0]];
                wire g_wr = (k >= C_R[EKW-1:0]) && (k < NG[EKW-1:0] + C_R[EKW-1:0]);
                /* verilator lint_off UNUSEDSIGNAL */
                wire [EKW-1:0] g_wk = g_wr ? k - C_R[EKW-1:0] : {EKW{1'b0}};
                wire [EKW+EB:0] g_unit = ({{(EB + 1) {1'b0}}, g_wk} << EB) + e;
                wire [SW-1:0] gq_raw = hst[g_wk[GRW-1:0]];
                wire signed [SW:0] gq = first ? {(SW + 1) {1'b0}} : {(SSIGN != 0) & gq_raw[SW-1], gq_raw};
                wire signed [GW+SW:0] rh = $signed(g_r) * gq;
                /* verilator lint_on UNUSEDSIGNAL */
                always @(posedge clk) begin
                    if (run && !pass && g_wr && g_unit < UL) begin
                        zbank[g_wk[GRW-1:0]] <= g_z;
                        rbank[g_wk[GRW-1:0]] <= rh[RHW-1:0];
                    end
                end
            end
            localparam integer ONE_I = 1 << GF;
            wire signed [OZW-1:0] one = ONE_I[OZW-1:0];
            wire signed [OZW-1:0] omz = one - {{(OZW - GW) {zg[GW-1]}}, zg};
            /* verilator lint_off UNUSEDSIGNAL */
            wire signed [HXW-1:0] zh = $signed(zg) * hq;
            wire signed [HXW-1:0] ch = omz * $signed(g_hh);
            wire signed [HXW-1:0] h_next = (zh <<< SHZ) + (ch <<< SHC);
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
            assign h_we[e] = run && h_wr && h_unit < UL && (RA != 0 || pass);
            assign h_wrow[e*GRW +: GRW] = h_wk[GRW-1:0];
            assign h_wd[e*HW +: HW] = h_r;  // the exact state: hg_ew_io's lane memory
            always @(posedge clk) if (h_we[e]) hst[h_wk[GRW-1:0]] <= hq_new;
        end
    endgenerate
endmodule
`default_nettype wire

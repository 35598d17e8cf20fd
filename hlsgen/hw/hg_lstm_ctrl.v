// hg_lstm_ctrl: the sparse LSTM engine's controller and activation scanner.
//
// Per time step: S_IDLE waits for a whole input step (avail); S_MAC scans the NCOL columns
// (input features, then the previous hidden state) K at a time: block b holds columns
// b*K .. b*K + K - 1.  A block whose activations are all zero is skipped; any other is
// broadcast to the PEs (its K values, which are recurrent, which are non-zero, b) when all
// have space.  Once every block is scanned and every PE is idle, the input slot is released
// and S_EW runs the element-wise unit for EW_CYC cycles.  After the last step (or every step,
// RETSEQ) the head layers run one after the other (S_HEAD: start, wait for done) and S_OUT
// hands the result to the output streamer once it is free.  With NL stacked layers every step
// runs the layers in turn (S_IDLE, S_MAC, S_EW each, `layer` telling which): layer l scans its
// FV[l] input columns and its own hidden state, its blocks at BASEV[l] in the PEs' pointer
// memories (blk is the absolute block), and only layer 0 waits for the input, which is released
// after layer XREL's MAC phase (1: a GRU's candidate pass reads x_t again).
// OVL = 1 (overlap; the PEs' accumulators in two banks, `wbank` written, `rbank` read): when the
// last layer's element-wise phase of a step (not a sequence's last) begins and the next input
// is available, the next step's layer 0 starts there (start_step, `mlayer` = 0) and scans its
// BX0 blocks of input columns alone (the pre-scan, `pre`); after the element-wise phase (and,
// RETSEQ, the hand-off) S_RES resumes the scan without a start cycle.
// The exact cycle model is hlsgen/engines/lstm/cycles.py.
`default_nettype none
module hg_lstm_ctrl #(
    parameter integer F      = 8,   // input features
    parameter integer NCOL   = 24,  // columns: F + U
    parameter integer COLW   = 5,   // bits of a column index (holds K * NB)
    parameter integer K      = 1,   // columns per block (a power of two)
    parameter integer NB     = 24,  // blocks: ceil(NCOL / K)
    parameter integer BLW    = 5,   // bits of a block index (holds NB)
    parameter integer FW     = 3,   // bits of a feature index (holds F - 1)
    parameter integer UW     = 4,   // bits of a unit index (holds U - 1)
    parameter integer T      = 8,   // time steps per sequence
    parameter integer TCW    = 3,   // bits of the step counter (holds T - 1)
    parameter integer EKW    = 5,   // bits of the element-wise counter
    parameter integer EW_CYC = 29,  // element-wise phase: U + its latency
    parameter integer NPE    = 8,   // processing elements
    parameter integer NHEAD  = 0,   // layers after the LSTM (0: none)
    parameter integer HSW    = 1,   // bits of the head stage index
    parameter integer RETSEQ = 0,   // stream the hidden state after every step
    parameter integer XW     = 8,   // input value bits
    parameter integer XSIGN  = 1,   // input values are signed
    parameter integer SW     = 8,   // quantized state bits
    parameter integer SSIGN  = 1,   // the state is signed
    parameter integer AW     = 10,  // broadcast activation bits (signed)
    parameter integer NL     = 1,   // stacked layers
    parameter integer LYW    = 1,   // bits of a layer index
    parameter integer XREL   = 0,   // the layer whose MAC phase ends the step's reads of the input
    parameter integer OVL    = 0,   // 1: pre-scan the next step's input during the element-wise phase
    parameter integer BX0    = 0,   // OVL: layer 0's blocks of input columns alone
    // per layer l at bits l*16: input columns, columns, blocks, first block, element-wise cycles
    parameter [NL*16-1:0] FV    = F[15:0],
    parameter [NL*16-1:0] NCOLV = NCOL[15:0],
    parameter [NL*16-1:0] NBV   = NB[15:0],
    parameter [NL*16-1:0] BASEV = {NL{16'd0}},
    parameter [NL*16-1:0] EWV   = EW_CYC[15:0]
) (
    input  wire              clk,
    input  wire              rst,
    // input buffer
    input  wire              avail,
    output wire              release_slot,
    output wire [K*FW-1:0]   x_idx,     // the block's K reads, column i at bits i*FW
    input  wire [K*XW-1:0]   x_raw,
    // hidden state
    output wire [K*UW-1:0]   h_idx,
    input  wire [K*SW-1:0]   h_raw,
    // processing elements
    output wire              start_step,  // clears the accumulators
    output wire              push,
    output wire [K*AW-1:0]   col_val,
    output wire [K-1:0]      is_rec,
    output wire [K-1:0]      col_nz,
    output wire [BLW-1:0]    blk,       // the absolute block (the layer's first + the scanned one)
    output reg  [LYW-1:0]    layer,     // the layer whose element-wise phase runs (and MAC phase, but in a pre-scan)
    output wire [LYW-1:0]    mlayer,    // the layer whose MAC phase runs
    output reg               wbank,     // OVL: the accumulator bank the MAC phase writes
    output reg               rbank,     // OVL: the bank the element-wise phase reads
    input  wire [NPE-1:0]    pe_space,
    input  wire [NPE-1:0]    pe_idle,
    // element-wise unit
    output wire              ew_run,
    output reg  [EKW-1:0]    ew_k,
    output wire              first_step,
    // head layers
    output wire              head_start,
    output reg  [HSW-1:0]    hs,
    input  wire              head_step_done,
    input  wire              head_last_done,
    // output streamer
    output wire              out_load,
    output reg               out_last,   // the vector handed over ends a sequence
    input  wire              out_busy
);
    localparam [2:0] S_IDLE = 3'd0, S_MAC = 3'd1, S_EW = 3'd2, S_HEAD = 3'd3, S_OUT = 3'd4, S_RES = 3'd5;
    reg [2:0] state;
    reg [TCW-1:0] t;
    reg hrun;
    reg pre;           // a pre-scan runs (OVL)
    reg [BLW-1:0] bk;  // the block scanned, within the layer
    assign mlayer = pre ? {LYW{1'b0}} : layer;
    // the figures of the layer scanned and of the one in its element-wise phase
    /* verilator lint_off UNUSEDSIGNAL */
    wire [15:0] f_cur = FV[mlayer*16 +: 16];
    wire [15:0] ncol_cur = NCOLV[mlayer*16 +: 16];
    wire [15:0] nb_cur = NBV[mlayer*16 +: 16];
    wire [15:0] base_cur = BASEV[mlayer*16 +: 16];
    wire [15:0] ew_cur = EWV[layer*16 +: 16];
    /* verilator lint_on UNUSEDSIGNAL */
    localparam integer NLM = NL - 1;
    wire last_layer = (layer == NLM[LYW-1:0]);
    wire last_t = (t == T[TCW-1:0] - 1'b1);
    assign blk = bk + base_cur[BLW-1:0];
    assign first_step = (t == {TCW{1'b0}});
    assign ew_run = (state == S_EW);
    // the pre-scan starts with the last layer's element-wise phase, the next input at hand
    wire pre_go = (OVL != 0) && ew_run && last_layer && (ew_k == {EKW{1'b0}}) && !last_t && avail;
    assign start_step = ((state == S_IDLE) && (avail || (layer != {LYW{1'b0}}))) || pre_go;
    wire mac_on = (state == S_MAC) || (state == S_RES);
    wire mac_done = mac_on && (bk == nb_cur[BLW-1:0]) && (&pe_idle);
    assign release_slot = mac_done && (layer == XREL[LYW-1:0]);
    wire ew_last = ew_run && (ew_k == ew_cur[EKW-1:0] - 1'b1);
    assign head_start = (state == S_HEAD) && !hrun;
    assign out_load = (state == S_OUT) && !out_busy;

    // scanner: input columns first, then the previous hidden state (zero on the first step)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [COLW-1:0] col0 = {{(COLW - BLW) {1'b0}}, bk} << $clog2(K);
    /* verilator lint_on UNUSEDSIGNAL */
    genvar i;
    generate
        for (i = 0; i < K; i = i + 1) begin : g_col
            /* verilator lint_off UNUSEDSIGNAL */
            wire [COLW-1:0] col = col0 + i[COLW-1:0];
            wire in_range = (col < ncol_cur[COLW-1:0]);
            wire rec = (col >= f_cur[COLW-1:0]);
            wire [COLW-1:0] xj = (rec || !in_range) ? {COLW{1'b0}} : col;
            wire [COLW-1:0] hj = (rec && in_range) ? col - f_cur[COLW-1:0] : {COLW{1'b0}};
            /* verilator lint_on UNUSEDSIGNAL */
            assign x_idx[i*FW +: FW] = xj[FW-1:0];
            assign h_idx[i*UW +: UW] = hj[UW-1:0];
            wire [XW-1:0] xr = x_raw[i*XW +: XW];
            wire [SW-1:0] hr = h_raw[i*SW +: SW];
            wire [AW-1:0] xval = {{(AW - XW) {(XSIGN != 0) & xr[XW-1]}}, xr};
            wire [AW-1:0] hval = first_step ? {AW{1'b0}} : {{(AW - SW) {(SSIGN != 0) & hr[SW-1]}}, hr};
            wire [AW-1:0] v = rec ? hval : xval;
            assign col_val[i*AW +: AW] = v;
            assign is_rec[i] = rec;
            assign col_nz[i] = in_range && (v != {AW{1'b0}});
        end
    endgenerate
    wire pre_scan;  // the pre-scan has an input-only block left
    generate
        if (OVL != 0 && BX0 > 0) begin : g_pre
            assign pre_scan = pre && (bk < BX0[BLW-1:0]);
        end else begin : g_no_pre
            assign pre_scan = 1'b0;
        end
    endgenerate
    wire scanning = (mac_on && (bk != nb_cur[BLW-1:0])) || pre_scan;
    wire blk_zero = (col_nz == {K{1'b0}});
    assign push = scanning && !blk_zero && (&pe_space);
    wire scan_adv = scanning && (blk_zero || (&pe_space));

    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE;
            t <= {TCW{1'b0}};
            bk <= {BLW{1'b0}};
            layer <= {LYW{1'b0}};
            ew_k <= {EKW{1'b0}};
            out_last <= 1'b0;
            hs <= {HSW{1'b0}};
            hrun <= 1'b0;
            pre <= 1'b0;
            wbank <= 1'b0;
            rbank <= 1'b0;
        end else begin
            if (OVL != 0 && start_step) wbank <= ~wbank;  // each MAC phase writes the other bank
            if (OVL != 0 && mac_done) rbank <= wbank;
            if (pre_go) begin
                pre <= 1'b1;
                bk <= {BLW{1'b0}};
            end
            if (pre && scan_adv) bk <= bk + 1'b1;
            case (state)
                S_IDLE: if (start_step) begin
                    state <= S_MAC;
                    bk <= {BLW{1'b0}};
                end
                S_MAC, S_RES: begin
                    if (scan_adv) bk <= bk + 1'b1;
                    if (mac_done) begin
                        state <= S_EW;
                        ew_k <= {EKW{1'b0}};
                    end
                end
                S_EW: begin
                    ew_k <= ew_k + 1'b1;
                    if (ew_last && !last_layer) begin  // the next layer of the same step
                        layer <= layer + 1'b1;
                        state <= S_IDLE;
                    end else if (ew_last) begin
                        layer <= {LYW{1'b0}};
                        out_last <= last_t;
                        if (last_t) begin
                            t <= {TCW{1'b0}};
                            state <= (NHEAD > 0) ? S_HEAD : S_OUT;
                        end else begin
                            t <= t + 1'b1;
                            if (RETSEQ != 0) state <= S_OUT;
                            else if (pre || pre_go) begin
                                state <= S_RES;
                                pre <= 1'b0;
                            end else state <= S_IDLE;
                        end
                    end
                end
                S_HEAD: begin
                    if (head_start) hrun <= 1'b1;
                    if (head_step_done) begin
                        hrun <= 1'b0;
                        hs <= hs + 1'b1;
                        if (head_last_done) begin
                            hs <= {HSW{1'b0}};
                            state <= S_OUT;
                        end
                    end
                end
                S_OUT: if (!out_busy) begin
                    if (pre) begin
                        state <= S_RES;
                        pre <= 1'b0;
                    end else state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire

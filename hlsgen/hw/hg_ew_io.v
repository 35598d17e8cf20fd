// hg_ew_io: what the sparse recurrent engine's element-wise units (hg_lstm_ew, hg_gru_ew) share
// around their E lanes.  Lane e holds units u = j*E + e (group j):
//   * the scanner's K reads of the quantized hidden state: read r asks for unit h_addr_r, which
//     lane h_addr_r mod E has already read at its row h_addr_r / E (lane_q); h_q takes that word;
//   * the exact hidden state, in one memory per lane (lane e writes its row h_wrow_e when h_we_e),
//     read in the same banked way by NR addresses (r_addr -> r_h: the next layer's scanner reads,
//     or the head's one read per cycle);
//   * OUT = 1 (a last layer without a head, whose state is the output): every write goes to a
//     second, double-banked lane memory too; o_swap (the output hand-off) gives the bank just
//     written to the output streamer, which reads it by index (o_idx -> o_word) while the next
//     vector is written to the other bank;
//   * with the accumulators in RAM (ZIN = 1): the PE each lane reads, ej = k mod NJ, and the
//     local row, z_row = k / NJ, counted from the phase's start (k: cycles since `run` rose).
`default_nettype none
module hg_ew_io #(
    parameter integer U    = 16,  // units
    parameter integer E    = 1,   // lanes (a power of two)
    parameter integer EB   = 0,   // log2(E)
    parameter integer NG   = 16,  // unit groups: ceil(U / E)
    parameter integer GRW  = 4,   // bits of a group index (holds NG - 1)
    parameter integer K    = 1,   // the scanner's reads
    parameter integer NR   = 1,   // reads of the exact hidden state
    parameter integer OUT  = 0,   // 1: the double-banked output memory (o_swap, o_idx, o_word)
    parameter integer UW   = 4,   // bits of a unit index (holds U - 1)
    parameter integer QW   = 8,   // bits of a read word
    parameter integer HW   = 16,  // bits of the exact hidden state
    parameter integer ZIN  = 0,   // 1: count ej and z_row
    parameter integer NJ   = 1,   // ZIN: PEs per lane
    parameter integer JW   = 1,   // ZIN: bits of ej (holds NJ - 1)
    parameter integer ZRW  = 1    // ZIN: bits of z_row
) (
    input  wire               clk,
    input  wire               run,
    input  wire [K*UW-1:0]    h_addr,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [E*K*QW-1:0]  lane_q,  // lane e's K words at bits (e*K + r)*QW (lanes past U: unused)
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [K*QW-1:0]    h_q,
    input  wire [E-1:0]       h_we,    // lane e writes the exact hidden state ...
    input  wire [E*GRW-1:0]   h_wrow,  // ... at its row h_wrow_e ...
    input  wire [E*HW-1:0]    h_wd,    // ... the word h_wd_e
    input  wire [NR*UW-1:0]   r_addr,
    output wire [NR*HW-1:0]   r_h,
    input  wire               o_swap,
    input  wire [UW-1:0]      o_idx,
    output wire [HW-1:0]      o_word,
    output reg  [JW-1:0]      ej,
    output reg  [ZRW-1:0]     z_row
);
    always @(posedge clk) begin
        if (!run || ZIN == 0) begin
            ej <= {JW{1'b0}};
            z_row <= {ZRW{1'b0}};
        end else if (ej == NJ[JW-1:0] - 1'b1) begin
            ej <= {JW{1'b0}};
            z_row <= z_row + 1'b1;
        end else begin
            ej <= ej + 1'b1;
        end
    end
    localparam integer NL = E < U ? E : U;  // lanes that hold units
    wire [E*NR*HW-1:0] lane_r;  // lane e's NR words at bits (e*NR + r)*HW
    wire [E*HW-1:0] lane_o;     // OUT: lane e's word at row o_idx / E of the output bank
    /* verilator lint_off UNUSEDSIGNAL */
    reg wb;                     // OUT: the bank being written (the streamer reads the other)
    initial wb = 1'b0;          // no reset port here: either start works, but never X
    always @(posedge clk) if (o_swap) wb <= ~wb;
    wire [UW:0] o_row = {1'b0, o_idx} >> EB;
    /* verilator lint_on UNUSEDSIGNAL */
    genvar r, e;
    generate
        for (e = 0; e < E; e = e + 1) begin : g_lane
            if (e < NL) begin : g_mem
                reg [HW-1:0] hout [0:NG-1];
                always @(posedge clk) if (h_we[e]) hout[h_wrow[e*GRW +: GRW]] <= h_wd[e*HW +: HW];
                for (r = 0; r < NR; r = r + 1) begin : g_rd
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [UW:0] row = {1'b0, r_addr[r*UW +: UW]} >> EB;
                    /* verilator lint_on UNUSEDSIGNAL */
                    assign lane_r[(e*NR + r)*HW +: HW] = hout[row[GRW-1:0]];
                end
                if (OUT != 0) begin : g_out
                    reg [HW-1:0] obank [0:(2 << GRW)-1];
                    always @(posedge clk) if (h_we[e]) obank[{wb, h_wrow[e*GRW +: GRW]}] <= h_wd[e*HW +: HW];
                    assign lane_o[e*HW +: HW] = obank[{~wb, o_row[GRW-1:0]}];
                end else begin : g_noout
                    assign lane_o[e*HW +: HW] = {HW{1'b0}};
                end
            end else begin : g_idle  // E > U: no unit
                assign lane_r[e*NR*HW +: NR*HW] = {NR*HW{1'b0}};
                assign lane_o[e*HW +: HW] = {HW{1'b0}};
            end
        end
        if (E == 1) begin : g_oone
            assign o_word = lane_o;
        end else begin : g_olanes
            /* verilator lint_off UNUSEDSIGNAL */
            wire [UW+EB:0] a = {{(EB + 1) {1'b0}}, o_idx};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [EB-1:0] lane = a[EB-1:0];
            assign o_word = lane_o[{{(32 - EB) {1'b0}}, lane} * HW +: HW];
        end
        for (r = 0; r < K; r = r + 1) begin : g_read
            if (E == 1) begin : g_one
                assign h_q[r*QW +: QW] = lane_q[r*QW +: QW];
            end else begin : g_lanes
                /* verilator lint_off UNUSEDSIGNAL */
                wire [UW+EB:0] a = {{(EB + 1) {1'b0}}, h_addr[r*UW +: UW]};  // wide enough for E > U
                /* verilator lint_on UNUSEDSIGNAL */
                wire [EB-1:0] lane = a[EB-1:0];
                assign h_q[r*QW +: QW] = lane_q[({{(32 - EB) {1'b0}}, lane} * K + r) * QW +: QW];
            end
        end
        for (r = 0; r < NR; r = r + 1) begin : g_xread
            if (E == 1) begin : g_one
                assign r_h[r*HW +: HW] = lane_r[r*HW +: HW];
            end else begin : g_lanes
                /* verilator lint_off UNUSEDSIGNAL */
                wire [UW+EB:0] a = {{(EB + 1) {1'b0}}, r_addr[r*UW +: UW]};
                /* verilator lint_on UNUSEDSIGNAL */
                wire [EB-1:0] lane = a[EB-1:0];
                assign r_h[r*HW +: HW] = lane_r[({{(32 - EB) {1'b0}}, lane} * NR + r) * HW +: HW];
            end
        end
    endgenerate
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = |h_addr | |r_addr | |h_we | |h_wrow | |h_wd | |o_idx | o_swap;  // parts unused for some E, U, OUT
    /* verilator lint_on UNUSEDSIGNAL */
endmodule
`default_nettype wire

// hg_ew_io: what the sparse recurrent engine's element-wise units (hg_lstm_ew, hg_gru_ew) share
// around their E lanes.  Lane e holds units u = j*E + e (group j):
//   * the scanner's K reads of the quantized hidden state: read r asks for unit h_addr_r, which
//     lane h_addr_r mod E has already read at its row h_addr_r / E (lane_q); h_q takes that word;
//   * the exact hidden state laid out unit by unit: unit u is lane u mod E's word u / E (lane_h);
//   * with the accumulators in RAM (ZIN = 1): the PE each lane reads, ej = k mod NJ, and the
//     local row, z_row = k / NJ, counted from the phase's start (k: cycles since `run` rose).
`default_nettype none
module hg_ew_io #(
    parameter integer U   = 16,  // units
    parameter integer E   = 1,   // lanes (a power of two)
    parameter integer EB  = 0,   // log2(E)
    parameter integer NG  = 16,  // unit groups: ceil(U / E)
    parameter integer K   = 1,   // the scanner's reads
    parameter integer UW  = 4,   // bits of a unit index (holds U - 1)
    parameter integer QW  = 8,   // bits of a read word
    parameter integer HW  = 16,  // bits of the exact hidden state
    parameter integer ZIN = 0,   // 1: count ej and z_row
    parameter integer NJ  = 1,   // ZIN: PEs per lane
    parameter integer JW  = 1,   // ZIN: bits of ej (holds NJ - 1)
    parameter integer ZRW = 1    // ZIN: bits of z_row
) (
    input  wire              clk,
    input  wire              run,
    input  wire [K*UW-1:0]   h_addr,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [E*K*QW-1:0] lane_q,  // lane e's K words at bits (e*K + r)*QW (lanes past U: unused)
    input  wire [E*NG*HW-1:0] lane_h, // lane e's group j at bits (e*NG + j)*HW (groups past U: unused)
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [K*QW-1:0]   h_q,
    output wire [U*HW-1:0]   h_flat,
    output reg  [JW-1:0]     ej,
    output reg  [ZRW-1:0]    z_row
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
    genvar r, u;
    generate
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
        for (u = 0; u < U; u = u + 1) begin : g_unit
            assign h_flat[u*HW +: HW] = lane_h[((u % E) * NG + u / E) * HW +: HW];
        end
    endgenerate
    /* verilator lint_off UNUSEDSIGNAL */
    wire unused = |h_addr;  // E = 1: the address selects a row inside the lane only
    /* verilator lint_on UNUSEDSIGNAL */
endmodule
`default_nettype wire

// hg_add: element-wise sum of two streams (a residual's join), exact:
// y[c] = (a[c] << SA) + (b[c] << SB) on OEW bits (signed; sized for the exact sum).
// An item is taken from both inputs at once, when both are valid and the output is free.
`default_nettype none
module hg_add #(
    parameter integer C   = 4,
    parameter integer AW  = 8,
    parameter integer BW  = 8,
    parameter integer OEW = 10,
    parameter integer SA  = 0,
    parameter integer SB  = 0
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [C*AW-1:0]  a_data,
    input  wire             a_valid,
    output wire             a_ready,
    input  wire [C*BW-1:0]  b_data,
    input  wire             b_valid,
    output wire             b_ready,
    output reg  [C*OEW-1:0] m_data,
    output reg              m_valid,
    input  wire             m_ready
);
    wire free = !m_valid || m_ready;
    assign a_ready = b_valid && free;
    assign b_ready = a_valid && free;
    wire [C*OEW-1:0] sum;
    genvar c;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_c
            wire [AW-1:0] ea = a_data[c*AW +: AW];
            wire [BW-1:0] eb = b_data[c*BW +: BW];
            /* verilator lint_off UNUSEDSIGNAL */
            wire [OEW+AW-1:0] xa = {{OEW{ea[AW-1]}}, ea};
            wire [OEW+BW-1:0] xb = {{OEW{eb[BW-1]}}, eb};
            /* verilator lint_on UNUSEDSIGNAL */
            assign sum[c*OEW +: OEW] = (xa[OEW-1:0] << SA) + (xb[OEW-1:0] << SB);
        end
    endgenerate
    always @(posedge clk) begin
        if (a_valid && b_valid && free) m_data <= sum;
        if (rst) m_valid <= 1'b0;
        else if (a_valid && b_valid && free) m_valid <= 1'b1;
        else if (m_ready) m_valid <= 1'b0;
    end
endmodule
`default_nettype wire

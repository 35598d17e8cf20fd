// hg_dup: one stream to two (a residual's fork).  The item is held for each branch until
// that branch takes it; the next is taken once both are free (or freed this cycle).
`default_nettype none
module hg_dup #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] s_data,
    input  wire         s_valid,
    output wire         s_ready,
    output wire [W-1:0] m0_data,
    output reg          m0_valid,
    input  wire         m0_ready,
    output wire [W-1:0] m1_data,
    output reg          m1_valid,
    input  wire         m1_ready
);
    reg [W-1:0] d;
    assign s_ready = (!m0_valid || m0_ready) && (!m1_valid || m1_ready);
    assign m0_data = d;
    assign m1_data = d;
    always @(posedge clk) begin
        if (s_valid && s_ready) d <= s_data;
        if (rst) begin
            m0_valid <= 1'b0;
            m1_valid <= 1'b0;
        end else if (s_valid && s_ready) begin
            m0_valid <= 1'b1;
            m1_valid <= 1'b1;
        end else begin
            if (m0_ready) m0_valid <= 1'b0;
            if (m1_ready) m1_valid <= 1'b0;
        end
    end
endmodule
`default_nettype wire

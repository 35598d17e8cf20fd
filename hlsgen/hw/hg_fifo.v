// hg_fifo: a synchronous FIFO of D items of W bits between two stages (valid/ready both sides).
// An item pushed at a clock edge can leave at the next one; push and pop may coincide.
// Depths are sized by hlsgen from the engine's exact cycle model, so that the stages overlap
// as a dataflow pipeline should (see engines/cnn/plan.py).
`default_nettype none
module hg_fifo #(
    parameter integer W  = 8,
    parameter integer D  = 4,
    parameter integer AW = 2,  // bits of a slot index (holds D - 1)
    parameter integer NW = 3   // bits of the count (holds D)
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] s_data,
    input  wire         s_valid,
    output wire         s_ready,
    output wire [W-1:0] m_data,
    output wire         m_valid,
    input  wire         m_ready
);
    reg [W-1:0] mem [0:D-1];
    reg [AW-1:0] wp, rp;
    reg [NW-1:0] n;
    assign s_ready = (n != D[NW-1:0]);
    assign m_valid = (n != {NW{1'b0}});
    assign m_data = mem[rp];
    wire push = s_valid && s_ready;
    wire pop = m_valid && m_ready;
    always @(posedge clk) begin
        if (push) mem[wp] <= s_data;
        if (rst) begin
            wp <= {AW{1'b0}};
            rp <= {AW{1'b0}};
            n <= {NW{1'b0}};
        end else begin
            if (push) wp <= (wp == D[AW-1:0] - 1'b1) ? {AW{1'b0}} : wp + 1'b1;
            if (pop) rp <= (rp == D[AW-1:0] - 1'b1) ? {AW{1'b0}} : rp + 1'b1;
            if (push && !pop) n <= n + 1'b1;
            else if (pop && !push) n <= n - 1'b1;
        end
    end
endmodule
`default_nettype wire

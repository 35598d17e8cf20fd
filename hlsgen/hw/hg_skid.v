// hg_skid: two-entry skid buffer for a valid/ready stream.
// Registers data and ready in both directions, so that long combinational paths between
// stages are cut; full throughput when never stalled, nothing lost or repeated under
// back-pressure.  Part of hlsgen's hand-written primitives (hw/).
`default_nettype none
module hg_skid #(
    parameter integer W = 8
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
    reg [W-1:0] d0, d1;
    reg v0, v1;
    assign s_ready = !v1;
    assign m_valid = v0;
    assign m_data  = d0;
    always @(posedge clk) begin
        if (rst) begin
            v0 <= 1'b0;
            v1 <= 1'b0;
        end else if (m_ready || !v0) begin
            // the output register is free this cycle
            if (v1) begin
                d0 <= d1;
                v0 <= 1'b1;
                v1 <= 1'b0;
            end else begin
                d0 <= s_data;
                v0 <= s_valid;
            end
        end else if (s_valid && !v1) begin
            // output stalled: park the incoming word
            d1 <= s_data;
            v1 <= 1'b1;
        end
    end
endmodule
`default_nettype wire

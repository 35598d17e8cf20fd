// hg_gather: collect N items of W bits into one vector (item k at bits [k*W +: W]).
// Packs input words into pixels, and pixels into a flattened tensor.  The last item of a
// group goes straight to the output register when it is free, so a stream of single items
// (N = 1) passes at one per cycle; otherwise the group waits, and input stops, until it is.
`default_nettype none
module hg_gather #(
    parameter integer N  = 4,
    parameter integer W  = 8,
    parameter integer KW = 2  // bits of the item counter (holds N - 1)
) (
    input  wire           clk,
    input  wire           rst,
    input  wire [W-1:0]   s_data,
    input  wire           s_valid,
    output wire           s_ready,
    output reg  [N*W-1:0] m_data,
    output reg            m_valid,
    input  wire           m_ready
);
    reg [N*W-1:0] col;
    reg cfull;
    reg [KW-1:0] k;
    wire free = !m_valid || m_ready;
    wire take = s_valid && !cfull;
    wire lastk = (k == N[KW-1:0] - 1'b1);
    assign s_ready = !cfull;
    wire [N*W-1:0] merged;
    genvar j;
    generate
        for (j = 0; j < N; j = j + 1) begin : g_slot
            if (j == N - 1) begin : g_last
                assign merged[j*W +: W] = s_data;
            end else begin : g_mid
                assign merged[j*W +: W] = col[j*W +: W];
            end
            always @(posedge clk) if (take && k == j[KW-1:0]) col[j*W +: W] <= s_data;
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) begin
            cfull <= 1'b0;
            k <= {KW{1'b0}};
            m_valid <= 1'b0;
        end else if (cfull) begin
            if (free) begin
                m_data <= col;
                m_valid <= 1'b1;
                cfull <= 1'b0;
            end
        end else begin
            if (take) k <= lastk ? {KW{1'b0}} : k + 1'b1;
            if (take && lastk && free) begin
                m_data <= merged;
                m_valid <= 1'b1;
            end else begin
                if (take && lastk) cfull <= 1'b1;
                if (m_ready) m_valid <= 1'b0;
            end
        end
    end
endmodule
`default_nettype wire

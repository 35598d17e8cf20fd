// hg_gpool: global max (MODE 0) or sum (MODE 1) pooling: N pixels of C elements (EW bits,
// signed) in, one vector of C results (OEW bits) out.  Control as hg_gather: the result of
// the last pixel goes straight to the output register when it is free.
`default_nettype none
module hg_gpool #(
    parameter integer N    = 16,
    parameter integer C    = 4,
    parameter integer EW   = 8,
    parameter integer OEW  = 12,
    parameter integer MODE = 0,
    parameter integer KW   = 4
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [C*EW-1:0]  s_data,
    input  wire             s_valid,
    output wire             s_ready,
    output reg  [C*OEW-1:0] m_data,
    output reg              m_valid,
    input  wire             m_ready
);
    reg [C*OEW-1:0] acc;
    reg cfull;
    reg [KW-1:0] k;
    wire free = !m_valid || m_ready;
    wire take = s_valid && !cfull;
    wire lastk = (k == N[KW-1:0] - 1'b1);
    assign s_ready = !cfull;
    wire [C*OEW-1:0] nxt;
    genvar ch;
    generate
        for (ch = 0; ch < C; ch = ch + 1) begin : g_ch
            wire [EW-1:0] e = s_data[ch*EW +: EW];
            /* verilator lint_off UNUSEDSIGNAL */
            wire [OEW+EW-1:0] ee = {{OEW{e[EW-1]}}, e};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [OEW-1:0] v = ee[OEW-1:0];
            wire [OEW-1:0] o = acc[ch*OEW +: OEW];
            if (MODE == 0) begin : g_max
                assign nxt[ch*OEW +: OEW] = (k == {KW{1'b0}} || $signed(v) > $signed(o)) ? v : o;
            end else begin : g_sum
                assign nxt[ch*OEW +: OEW] = (k == {KW{1'b0}}) ? v : o + v;
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (take) acc <= nxt;
        if (rst) begin
            cfull <= 1'b0;
            k <= {KW{1'b0}};
            m_valid <= 1'b0;
        end else if (cfull) begin
            if (free) begin
                m_data <= acc;
                m_valid <= 1'b1;
                cfull <= 1'b0;
            end
        end else begin
            if (take) k <= lastk ? {KW{1'b0}} : k + 1'b1;
            if (take && lastk && free) begin
                m_data <= nxt;
                m_valid <= 1'b1;
            end else begin
                if (take && lastk) cfull <= 1'b1;
                if (m_ready) m_valid <= 1'b0;
            end
        end
    end
endmodule
`default_nettype wire

// hg_pool_reduce: max (MODE 0) or sum (MODE 1) over the K pixels of a pooling window, per
// channel (combinational).  Window element (k, ch) at bits [(k*C + ch)*EW +: EW], signed;
// the result OEW bits per channel (a sum is exact: OEW is sized for it).
`default_nettype none
module hg_pool_reduce #(
    parameter integer K    = 4,
    parameter integer C    = 1,
    parameter integer EW   = 8,
    parameter integer OEW  = 8,
    parameter integer MODE = 0
) (
    input  wire [K*C*EW-1:0] win,
    output wire [C*OEW-1:0]  y
);
    genvar ch, k;
    generate
        for (ch = 0; ch < C; ch = ch + 1) begin : g_ch
            wire [OEW-1:0] r [0:K-1];
            for (k = 0; k < K; k = k + 1) begin : g_k
                wire [EW-1:0] e = win[(k*C + ch)*EW +: EW];
                /* verilator lint_off UNUSEDSIGNAL */
                wire [OEW+EW-1:0] ee = {{OEW{e[EW-1]}}, e};
                /* verilator lint_on UNUSEDSIGNAL */
                wire [OEW-1:0] v = ee[OEW-1:0];
                if (k == 0) begin : g_first
                    assign r[k] = v;
                end else if (MODE == 0) begin : g_max
                    assign r[k] = ($signed(v) > $signed(r[k-1])) ? v : r[k-1];
                end else begin : g_sum
                    assign r[k] = r[k-1] + v;
                end
            end
            assign y[ch*OEW +: OEW] = r[K-1];
        end
    endgenerate
endmodule
`default_nettype wire

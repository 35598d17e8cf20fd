// hg_step: an exact piecewise-constant function y = V[count of thresholds <= x],
// realised as a pipelined binary search over 2^LEVELS - 1 sorted thresholds per channel
// (TFILE, unused slots hold a value above the input range) and a value ROM (VFILE).
// Latency LEVELS + 1 cycles, one input per cycle, no stall.  Memories are indexed
// {channel, position}: both files hold 2^(CHW + LEVELS) words.
`default_nettype none
module hg_step #(
    parameter integer XW     = 16,  // input width (signed)
    parameter integer OW     = 8,   // output width (signed)
    parameter integer LEVELS = 8,   // >= 1
    parameter integer CHW    = 1,   // channel index width
    parameter        TFILE  = "t.mem",
    parameter        VFILE  = "v.mem"
) (
    input  wire              clk,
    input  wire [XW-1:0]     x,
    input  wire [CHW-1:0]    ch,
    output reg  [OW-1:0]     y
);
    localparam integer TW = XW + 1;
    localparam integer AW = CHW + LEVELS;
    reg [TW-1:0] tmem [0:(1 << AW) - 1];
    reg [OW-1:0] vmem [0:(1 << AW) - 1];
    initial begin
        $readmemh(TFILE, tmem);
        $readmemh(VFILE, vmem);
    end
    // level l compares against one threshold and passes {x, channel, position} on
    genvar l;
    generate
        for (l = 0; l < LEVELS; l = l + 1) begin : g_level
            localparam integer B = LEVELS - 1 - l;
            wire [LEVELS-1:0] bit_b = {{(LEVELS - 1) {1'b0}}, 1'b1} << B;
            wire [LEVELS-1:0] low = bit_b - 1'b1;
            wire [TW-1:0] xin;
            wire [CHW-1:0] cin;
            wire [LEVELS-1:0] pin;
            /* verilator lint_off UNUSEDSIGNAL */
            reg [TW-1:0] xo;  // the last level's copy is not read
            /* verilator lint_on UNUSEDSIGNAL */
            reg [CHW-1:0] co;
            reg [LEVELS-1:0] po;
            if (l == 0) begin : g_in
                assign xin = {x[XW-1], x};
                assign cin = ch;
                assign pin = {LEVELS{1'b0}};
            end else begin : g_chain
                assign xin = g_level[l-1].xo;
                assign cin = g_level[l-1].co;
                assign pin = g_level[l-1].po;
            end
            wire [TW-1:0] th = tmem[{cin, pin | low}];
            wire ge = $signed(xin) >= $signed(th);
            always @(posedge clk) begin
                xo <= xin;
                co <= cin;
                po <= ge ? (pin | bit_b) : pin;
            end
        end
    endgenerate
    always @(posedge clk) y <= vmem[{g_level[LEVELS-1].co, g_level[LEVELS-1].po}];
endmodule
`default_nettype wire

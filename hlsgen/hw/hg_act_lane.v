// hg_act_lane: one lane of an element-wise activation, fully pipelined (one value per cycle).
// MODE 0: exact table (hg_step over per-channel thresholds; ch selects the channel)
// MODE 1: requantize (hg_requant; RELU != 0 clamps negatives first)   MODE 2: relu   MODE 3: linear
// Latency LEVELS + 1 cycles for tables, 1 otherwise.  x is signed (XW bits); the inner result
// (TOW bits, signed unless OSIGNED == 0) is sign- or zero-extended, or cut, to OW bits: the
// value fits OW by construction.
`default_nettype none
module hg_act_lane #(
    parameter integer XW      = 16,
    parameter integer OW      = 8,
    parameter integer TOW     = 8,
    parameter integer MODE    = 3,
    parameter integer LEVELS  = 1,
    parameter integer CHW     = 1,
    parameter integer SHIFT   = 0,
    parameter integer RND     = 0,
    parameter integer OVF     = 1,
    parameter integer OSIGNED = 1,
    parameter integer RELU    = 0,
    parameter        TFILE   = "t.mem",
    parameter        VFILE   = "v.mem"
) (
    input  wire           clk,
    input  wire [XW-1:0]  x,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [CHW-1:0] ch,  // tables only
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [OW-1:0]  y
);
    wire [TOW-1:0] f;
    generate
        if (MODE == 0) begin : g_table
            // hg_step keeps its thresholds one bit wider than x (one may lie above x's range)
            hg_step #(.XW(XW), .OW(TOW), .LEVELS(LEVELS), .CHW(CHW), .TFILE(TFILE), .VFILE(VFILE))
                u_step (.clk(clk), .x(x), .ch(ch), .y(f));
        end else begin : g_reg
            wire [TOW-1:0] g;
            if (MODE == 1) begin : g_rq
                wire [XW-1:0] xr = (RELU != 0 && x[XW-1]) ? {XW{1'b0}} : x;
                hg_requant #(.IW(XW), .SHIFT(SHIFT), .OW(TOW), .OSIGNED(OSIGNED), .RND(RND), .OVF(OVF))
                    u_rq (.x(xr), .y(g));
            end else begin : g_pass
                /* verilator lint_off UNUSEDSIGNAL */
                wire [XW+TOW-1:0] xe = {{TOW{x[XW-1]}}, x};
                /* verilator lint_on UNUSEDSIGNAL */
                wire [TOW-1:0] xt = xe[TOW-1:0];
                assign g = (MODE == 2 && x[XW-1]) ? {TOW{1'b0}} : xt;
            end
            reg [TOW-1:0] r;
            always @(posedge clk) r <= g;
            assign f = r;
        end
    endgenerate
    wire sgn = (OSIGNED != 0) ? f[TOW-1] : 1'b0;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [OW+TOW-1:0] fe = {{OW{sgn}}, f};
    /* verilator lint_on UNUSEDSIGNAL */
    assign y = fe[OW-1:0];
endmodule
`default_nettype wire

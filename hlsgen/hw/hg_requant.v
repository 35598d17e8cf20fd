// hg_requant: convert a signed fixed-point value to another type, with exactly the
// rounding and overflow of ap_fixed<OW, ., RND, OVF> (purely combinational).
//   y = overflow(round(x * 2^-SHIFT))      SHIFT = in_frac - out_frac (may be negative)
// RND: 0 TRN, 1 TRN_ZERO, 2 RND, 3 RND_ZERO, 4 RND_INF, 5 RND_MIN_INF, 6 RND_CONV
// OVF: 0 WRAP, 1 SAT, 2 SAT_ZERO, 3 SAT_SYM (signed SAT_SYM never yields the most negative code)
`default_nettype none
module hg_requant #(
    parameter integer IW      = 16,
    parameter integer SHIFT   = 0,
    parameter integer OW      = 8,
    parameter integer OSIGNED = 1,
    parameter integer RND     = 0,
    parameter integer OVF     = 1
) (
    input  wire [IW-1:0] x,
    output wire [OW-1:0] y
);
    localparam integer LS = (SHIFT < 0) ? -SHIFT : 0;
    localparam integer QA = IW + 2 + LS;
    localparam integer QW = (QA > OW + 2) ? QA : OW + 2;
    wire signed [QW-1:0] q;
    generate
        if (SHIFT > 0) begin : g_right
            wire signed [IW-1:0] xs = x;
            wire signed [IW-1:0] fl = xs >>> SHIFT;
            wire [SHIFT-1:0] rem = x[SHIFT-1:0];
            wire [SHIFT-1:0] one = 1;
            wire [SHIFT-1:0] halfv = one << (SHIFT - 1);
            wire exact = (rem == {SHIFT{1'b0}});
            wire half = (rem == halfv);
            wire above;  // the dropped fraction is above one half (impossible for one bit)
            if (SHIFT > 1) begin : g_above
                assign above = (rem > halfv);
            end else begin : g_one
                assign above = 1'b0;
            end
            wire neg = fl[IW-1];
            reg up;
            always @(*) begin
                case (RND)
                    1: up = !exact && neg;
                    2: up = half || above;
                    3: up = above || (half && neg);
                    4: up = above || (half && !neg);
                    5: up = above;
                    6: up = above || (half && fl[0]);
                    default: up = 1'b0;
                endcase
            end
            wire signed [QW-1:0] fle = {{(QW - IW) {fl[IW-1]}}, fl};
            assign q = fle + $signed({{(QW - 1) {1'b0}}, up});
        end else begin : g_left
            wire signed [IW-1:0] xs = x;
            wire signed [QW-1:0] xe = {{(QW - IW) {xs[IW-1]}}, xs};
            assign q = xe <<< LS;
        end
    endgenerate
    // output range as QW-bit signed constants
    wire signed [QW-1:0] maxv = (OSIGNED != 0) ? $signed({{(QW - OW + 1) {1'b0}}, {(OW - 1) {1'b1}}})
                                              : $signed({{(QW - OW) {1'b0}}, {OW{1'b1}}});
    wire signed [QW-1:0] minv = (OSIGNED != 0) ? $signed({{(QW - OW + 1) {1'b1}}, {(OW - 1) {1'b0}}})
                                              : {QW{1'b0}};
    wire signed [QW-1:0] symv = (OSIGNED != 0) ? -maxv : minv;
    wire over_hi = q > maxv;
    wire over_lo = q < minv;
    reg [OW-1:0] r;
    always @(*) begin
        case (OVF)
            0: r = q[OW-1:0];
            2: r = (over_hi || over_lo) ? {OW{1'b0}} : q[OW-1:0];
            3: r = over_hi ? maxv[OW-1:0] : ((q < symv) ? symv[OW-1:0] : q[OW-1:0]);
            default: r = over_hi ? maxv[OW-1:0] : (over_lo ? minv[OW-1:0] : q[OW-1:0]);
        endcase
    end
    assign y = r;
endmodule
`default_nettype wire

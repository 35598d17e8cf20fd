// hg_window: sliding windows over a raster stream of pixels (C elements of EW bits).
// The generator walks the padded image (PH x PW) one position per cycle: inside the image
// it takes a pixel, in the padding it shifts in zeros.  Where ROWE[r] & COLE[c] (stride and
// output extent, precomputed) it emits the window ending at (r, c), element (ky, kx, ch) at
// bits [((ky*KW + kx)*C + ch)*EW +: EW].  The leading R0 rows and C0 columns (padding where no
// window ends) are not walked: rows R0.., columns C0.. only, and a window element in a row
// before R0 or a column before C0 is masked to zero (its registers hold stale pixels).
// Line buffer in RAM (FINN-style): one word per padded column holds that column's pixels of
// the KH-1 rows above, (KH-1)*C*EW bits, PW words (block RAM or LUTRAM); the window itself is
// KW columns of KH pixels in registers.  At position (r, c) the word of the load side's column
// is read (fetched one cycle ahead: the next position is known) and written back with the new
// pixel on top, so the RAM has one read and one write port at different addresses.
// The trailing padding costs no cycle of its own either.  A walked position has two sides:
// the window side emits the window ending at (r, c); the load side takes a pixel into the
// line buffer and the window registers.  They are the same position, except
//  * in the last MC columns of a row (trailing padding, their window column is zeros): the
//    load side is at the first MC columns of the next walked row (image columns where no window
//    ends), so every row after the first walks columns C0+MC.. only;
//  * in the last MR rows of a frame (trailing padding): the load side is at the first MR rows
//    of the next frame (image rows where no window ends), so every frame after the first walks
//    rows R1 = R0+MR.. only.
// LROWI[r] / LNROWI[r]: the load side of row r / of the next walked row is in an image row;
// LCOLI[c]: the load side of column c is in an image column.  A window element in a trailing
// padding row (>= RE) or column (>= CE) is masked to zero, as its registers hold the next
// row's or frame's pixels.
// A frame's windows must not wait for the next frame, which may never come.  LF[r] / LNF[r]
// mark the positions whose load side is in the next frame.  At the first of them that takes
// a pixel the generator decides: if the pixel is there (the next frame has begun, all of it
// will come) the rest of the frame loads ahead and the next frame starts at (R1, C1); if not,
// the rest of the frame loads nothing and the next frame starts at (R0, C0) like the first.
`default_nettype none
module hg_window #(
    parameter integer C    = 1,
    parameter integer EW   = 8,
    parameter integer KH   = 3,
    parameter integer KW   = 3,
    parameter integer PH   = 8,
    parameter integer PW   = 8,
    parameter integer RW   = 4,  // bits of the row counter (holds PH - 1)
    parameter integer CWB  = 4,  // bits of the column counter (holds PW - 1)
    parameter integer R0   = 0,  // leading padded rows not walked (padding, no window ends there)
    parameter integer C0   = 0,  // leading padded columns not walked
    parameter integer MR   = 0,  // trailing padded rows whose load side is the next frame's
    parameter integer MC   = 0,  // trailing padded columns whose load side is the next row's
    parameter integer RE   = PH, // the first trailing padding row (masked when MR > 0)
    parameter integer CE   = PW, // the first trailing padding column (masked when MC > 0)
    parameter [PH-1:0] ROWE = {PH{1'b1}},  // a window ends in this padded row
    parameter [PW-1:0] COLE = {PW{1'b1}},  // ... and in this padded column
    parameter [PH-1:0] ROWI = {PH{1'b1}},  // the padded row is an image row (not padding)
    parameter [PW-1:0] COLI = {PW{1'b1}},
    parameter [PH-1:0] LROWI = ROWI,   // load side in an image row: this walked row
    parameter [PH-1:0] LNROWI = ROWI,  // ... in the last MC columns: the next walked row
    parameter [PW-1:0] LCOLI = COLI,   // load side in an image column
    parameter [PH-1:0] LF = {PH{1'b0}},  // load side in the next frame: this walked row
    parameter [PH-1:0] LNF = {PH{1'b0}}  // ... in the last MC columns (the next walked row)
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire [C*EW-1:0]       s_data,
    input  wire                  s_valid,
    output wire                  s_ready,
    output reg  [KH*KW*C*EW-1:0] m_data,
    output reg                   m_valid,
    input  wire                  m_ready
);
    localparam integer PX = C * EW;
    localparam integer LB = (KH - 1) * PX;  // a line-buffer word: one column of the rows above
    localparam integer R1 = R0 + MR;  // the first row walked after the first frame
    localparam integer C1 = C0 + MC;  // the first column walked after the first row
    localparam integer TC = PW - MC;  // the first column whose load side is the next row's
    reg [RW-1:0] r;
    reg [CWB-1:0] c;
    wire trail;  // c >= TC: the load side is at column C0 + c - TC of the next walked row
    generate
        if (MC > 0) begin : g_trail
            assign trail = c >= TC[CWB-1:0];
        end else begin : g_notrail
            assign trail = 1'b0;
        end
    endgenerate
    wire decided, ahead;  // this frame's loads ahead: decided, and on (else off)
    wire fut = trail ? LNF[r] : LF[r];
    wire lin = (trail ? LNROWI[r] : LROWI[r]) && LCOLI[c];  // the load side takes a pixel
    wire und = fut && lin && !decided;    // the first pixel loaded ahead: decide now
    wire off = fut && decided && !ahead;  // the loads ahead are off for the rest of the frame
    wire ahead_now = decided ? ahead : (und && s_valid);
    wire inimg = lin && !off;
    wire emit = ROWE[r] && COLE[c];
    wire free = !m_valid || m_ready;
    wire room = !emit || free;
    assign s_ready = inimg && room;
    wire go = room && (!inimg || s_valid || und);
    // (a pixel not taken as the loads ahead are decided off lands where the window is masked)
    wire [PX-1:0] pix = inimg ? s_data : {PX{1'b0}};
    wire wrap = (r == PH[RW-1:0] - 1'b1) && !ahead_now;  // the next frame starts at (R0, C0)
    wire [CWB-1:0] c_next = (c == PW[CWB-1:0] - 1'b1) ? (wrap ? C0[CWB-1:0] : C1[CWB-1:0]) : c + 1'b1;
    generate
        if (MR > 0 || MC > 0) begin : g_ahead
            reg dec_q, ahead_q;
            assign decided = dec_q;
            assign ahead = ahead_q;
            always @(posedge clk) begin
                if (rst) begin
                    dec_q <= 1'b0;
                    ahead_q <= 1'b0;
                end else if (go) begin
                    if (und) begin
                        dec_q <= 1'b1;
                        ahead_q <= s_valid;
                    end
                    if (c == PW[CWB-1:0] - 1'b1 && r == PH[RW-1:0] - 1'b1)
                        dec_q <= 1'b0;  // the frame's last position: the next frame decides anew
                end
            end
        end else begin : g_noahead
            assign decided = 1'b0;
            assign ahead = 1'b0;
        end
    endgenerate
    // the new window column: this pixel on top of column c of the KH-1 rows above (row r-1 next)
    wire [KH*PX-1:0] col;
    generate
        if (KH > 1 && PW > 1) begin : g_ram
            reg [LB-1:0] mem [0:PW-1];
            reg [LB-1:0] above;  // mem[c]: read one position ahead, or again while waiting
            assign col = {above, pix};
            // the load side's column: c, or in the last MC columns the next row's first ones
            function [CWB-1:0] la(input [CWB-1:0] q);
                la = (MC > 0 && q >= TC[CWB-1:0]) ? q - (TC[CWB-1:0] - C0[CWB-1:0]) : q;
            endfunction
            always @(posedge clk) begin
                if (go && !rst)
                    mem[la(c)] <= col[LB-1:0];  // the newest KH-1 rows of the column
                above <= mem[la((go && !rst) ? c_next : c)];
            end
        end else if (KH > 1) begin : g_reg  // one column: the rows above fit a register
            reg [LB-1:0] above;
            assign col = {above, pix};
            always @(posedge clk) if (go && !rst) above <= col[LB-1:0];
        end else begin : g_row
            assign col = pix;
        end
    endgenerate
    // the window: the KW-1 previous columns in registers, the new one from col
    wire [KW*KH*PX-1:0] cols;  // column kx = KW-1 is the newest
    generate
        if (KW > 1) begin : g_cols
            reg [(KW-1)*KH*PX-1:0] prev;
            assign cols = {col, prev};
            always @(posedge clk) if (go && !rst) prev <= cols[KW*KH*PX-1:KH*PX];
        end else begin : g_col
            assign cols = col;
        end
    endgenerate
    wire [KH*KW*PX-1:0] win;
    genvar ky, kx;
    generate
        for (ky = 0; ky < KH; ky = ky + 1) begin : g_ky
            for (kx = 0; kx < KW; kx = kx + 1) begin : g_kx
                // column kx holds rows r-KH+1 .. r from bit 0 up: pixel (ky, kx) is row r-(KH-1-ky)
                wire [PX-1:0] px = cols[(kx*KH + (KH-1-ky))*PX +: PX];
                if (R0 > 0 || C0 > 0 || MR > 0 || MC > 0) begin : g_mask
                    // zeros: rows before R0 or from RE (MR > 0), columns before C0 or from CE (MC > 0)
                    localparam integer RMIN = R0 + KH - 1 - ky;
                    localparam integer CMIN = C0 + KW - 1 - kx;
                    localparam integer RMAX = RE + KH - 1 - ky;  // the element's row is r-(KH-1-ky)
                    localparam integer CMAX = CE + KW - 1 - kx;
                    wire r_ok, c_ok, r_in, c_in;
                    if (RMIN > 0) begin : g_r
                        assign r_ok = {1'b0, r} >= RMIN[RW:0];
                    end else begin : g_r_all
                        assign r_ok = 1'b1;
                    end
                    if (CMIN > 0) begin : g_c
                        assign c_ok = {1'b0, c} >= CMIN[CWB:0];
                    end else begin : g_c_all
                        assign c_ok = 1'b1;
                    end
                    if (MR > 0 && RMAX < PH) begin : g_re
                        assign r_in = {1'b0, r} < RMAX[RW:0];
                    end else begin : g_re_all
                        assign r_in = 1'b1;
                    end
                    if (MC > 0 && CMAX < PW) begin : g_ce
                        assign c_in = {1'b0, c} < CMAX[CWB:0];
                    end else begin : g_ce_all
                        assign c_in = 1'b1;
                    end
                    assign win[(ky*KW + kx)*PX +: PX] = (r_ok && c_ok && r_in && c_in) ? px : {PX{1'b0}};
                end else begin : g_plain
                    assign win[(ky*KW + kx)*PX +: PX] = px;
                end
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) begin
            r <= R0[RW-1:0];
            c <= C0[CWB-1:0];
            m_valid <= 1'b0;
        end else begin
            if (go) begin
                c <= c_next;
                if (c == PW[CWB-1:0] - 1'b1)
                    r <= (r == PH[RW-1:0] - 1'b1) ? (wrap ? R0[RW-1:0] : R1[RW-1:0]) : r + 1'b1;
            end
            if (go && emit) begin
                m_data <= win;
                m_valid <= 1'b1;
            end else if (m_ready) begin
                m_valid <= 1'b0;
            end
        end
    end
endmodule
`default_nettype wire

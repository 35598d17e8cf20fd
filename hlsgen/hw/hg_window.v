// hg_window: sliding windows over a raster stream of pixels (C elements of EW bits).
// The generator walks the padded image (PH x PW) one position per cycle: inside the image
// it takes a pixel, in the padding it shifts in zeros.  Where ROWE[r] & COLE[c] (stride and
// output extent, precomputed) it emits the window ending at (r, c), element (ky, kx, ch) at
// bits [((ky*KW + kx)*C + ch)*EW +: EW].  The leading R0 rows and C0 columns (padding where no
// window ends) are not walked: rows R0.., columns C0.. only, and a window element in a row
// before R0 or a column before C0 is masked to zero (its registers hold stale pixels).
// Line buffer in RAM (FINN-style): one word per padded column holds that column's pixels of
// the KH-1 rows above, (KH-1)*C*EW bits, PW words (block RAM or LUTRAM); the window itself is
// KW columns of KH pixels in registers.  At position (r, c) the word of column c is read
// (fetched one cycle ahead: the next position is known) and written back with the new pixel
// on top, so the RAM has one read and one write port at different addresses.
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
    parameter [PH-1:0] ROWE = {PH{1'b1}},  // a window ends in this padded row
    parameter [PW-1:0] COLE = {PW{1'b1}},  // ... and in this padded column
    parameter [PH-1:0] ROWI = {PH{1'b1}},  // the padded row is an image row (not padding)
    parameter [PW-1:0] COLI = {PW{1'b1}}
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
    reg [RW-1:0] r;
    reg [CWB-1:0] c;
    wire inimg = ROWI[r] && COLI[c];
    wire emit = ROWE[r] && COLE[c];
    wire free = !m_valid || m_ready;
    wire room = !emit || free;
    assign s_ready = inimg && room;
    wire go = room && (!inimg || s_valid);
    wire [PX-1:0] pix = inimg ? s_data : {PX{1'b0}};
    wire [CWB-1:0] c_next = (c == PW[CWB-1:0] - 1'b1) ? C0[CWB-1:0] : c + 1'b1;
    // the new window column: this pixel on top of column c of the KH-1 rows above (row r-1 next)
    wire [KH*PX-1:0] col;
    generate
        if (KH > 1 && PW > 1) begin : g_ram
            reg [LB-1:0] mem [0:PW-1];
            reg [LB-1:0] above;  // mem[c]: read one position ahead, or again while waiting
            assign col = {above, pix};
            always @(posedge clk) begin
                if (go && !rst)
                    mem[c] <= col[LB-1:0];  // the newest KH-1 rows of column c
                above <= mem[(go && !rst) ? c_next : c];
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
                if (R0 > 0 || C0 > 0) begin : g_mask  // rows before R0, columns before C0: zeros
                    localparam integer RMIN = R0 + KH - 1 - ky;
                    localparam integer CMIN = C0 + KW - 1 - kx;
                    wire r_ok, c_ok;
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
                    assign win[(ky*KW + kx)*PX +: PX] = (r_ok && c_ok) ? px : {PX{1'b0}};
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
                    r <= (r == PH[RW-1:0] - 1'b1) ? R0[RW-1:0] : r + 1'b1;
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

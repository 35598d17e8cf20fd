// hg_window: sliding windows over a raster stream of pixels (C elements of EW bits).
// The line buffer is a shift register of (KH-1) padded rows plus KW pixels (TAPS); on Xilinx
// the long runs between taps map to SRLs.  The generator walks the padded image (PH x PW)
// one position per cycle: inimg the image it takes a pixel, in the padding it shifts in
// zeros.  Where ROWE[r] & COLE[c] (stride and output extent, precomputed) it emits the
// window ending at (r, c), element (ky, kx, ch) at bits [((ky*KW + kx)*C + ch)*EW +: EW].
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
    localparam integer TAPS = (KH - 1) * PW + KW;
    reg [RW-1:0] r;
    reg [CWB-1:0] c;
    wire inimg = ROWI[r] && COLI[c];
    wire emit = ROWE[r] && COLE[c];
    wire free = !m_valid || m_ready;
    wire room = !emit || free;
    assign s_ready = inimg && room;
    wire go = room && (!inimg || s_valid);
    wire [PX-1:0] pix = inimg ? s_data : {PX{1'b0}};
    // the line buffer after this cycle's shift: newest pixel in slot 0
    wire [TAPS*PX-1:0] nsr;
    generate
        if (TAPS > 1) begin : g_shift
            reg [(TAPS-1)*PX-1:0] sr;  // the TAPS-1 most recent pixels
            assign nsr = {sr, pix};
            always @(posedge clk) if (go) sr <= nsr[(TAPS-1)*PX-1:0];
        end else begin : g_one
            assign nsr = pix;
        end
    endgenerate
    wire [KH*KW*PX-1:0] win;
    genvar ky, kx;
    generate
        for (ky = 0; ky < KH; ky = ky + 1) begin : g_ky
            for (kx = 0; kx < KW; kx = kx + 1) begin : g_kx
                assign win[(ky*KW + kx)*PX +: PX] = nsr[((KH-1-ky)*PW + (KW-1-kx))*PX +: PX];
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (rst) begin
            r <= {RW{1'b0}};
            c <= {CWB{1'b0}};
            m_valid <= 1'b0;
        end else begin
            if (go) begin
                if (c == PW[CWB-1:0] - 1'b1) begin
                    c <= {CWB{1'b0}};
                    r <= (r == PH[RW-1:0] - 1'b1) ? {RW{1'b0}} : r + 1'b1;
                end else begin
                    c <= c + 1'b1;
                end
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

// hg_dense_seq: y = x W + b for a small dense layer, one multiply-accumulate per cycle.
// WFILE holds W transposed (row o: the NI weights of output o), BFILE the biases.  The
// exact result is kept: y = (sum_j w[o][j] * x[j]) << PS  +  b[o] << BS, on OW bits.
// The input is read one value per cycle: in_idx asks, in_word answers in the same cycle.
// start (one cycle) -> done (one cycle) exactly NI*NO + 2 cycles later.
`default_nettype none
module hg_dense_seq #(
    parameter integer NI  = 64,
    parameter integer NO  = 10,
    parameter integer IW  = 16,
    parameter integer WW  = 8,
    parameter integer BW  = 8,
    parameter integer OW  = 32,
    parameter integer PS  = 0,
    parameter integer BS  = 0,
    parameter integer NIW = 6,
    parameter integer NOW = 4,
    parameter integer ADW = 10,  // bits of a weight address (0 .. NI*NO-1)
    parameter        WFILE = "w.mem",
    parameter        BFILE = "b.mem"
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             start,
    output wire [NIW-1:0]   in_idx,   // the input read this cycle ...
    input  wire [IW-1:0]    in_word,  // ... its value (the caller's memory, read combinationally)
    output reg              done,
    output wire [NO*OW-1:0] out_flat
);
    localparam integer PW = WW + IW;
    localparam integer EW = ((PW + PS > BW + BS) ? PW + PS : BW + BS) + 1;
    localparam integer SW = (EW > OW) ? EW + 1 : OW + 1;
    reg [WW-1:0] wmem [0:NI*NO-1];
    reg [BW-1:0] bmem [0:NO-1];
    initial begin
        $readmemh(WFILE, wmem);
        $readmemh(BFILE, bmem);
    end
    reg run;
    reg [NIW-1:0] j;
    assign in_idx = j;
    reg [NOW-1:0] o;
    reg [ADW-1:0] addr;
    wire last_j = (j == NI[NIW-1:0] - 1'b1);
    wire last_o = (o == NO[NOW-1:0] - 1'b1);
    reg v1, f1, l1;
    reg [NOW-1:0] o1;
    reg signed [WW-1:0] wq;
    reg signed [IW-1:0] xq;
    reg signed [OW-1:0] acc;
    reg [OW-1:0] y [0:NO-1];
    always @(posedge clk) begin
        if (rst) begin
            run <= 1'b0;
            v1 <= 1'b0;
            done <= 1'b0;
        end else begin
            if (start) begin
                run <= 1'b1;
                j <= {NIW{1'b0}};
                o <= {NOW{1'b0}};
                addr <= {ADW{1'b0}};
            end else if (run) begin
                addr <= addr + 1'b1;
                j <= last_j ? {NIW{1'b0}} : j + 1'b1;
                if (last_j) o <= o + 1'b1;
                if (last_j && last_o) run <= 1'b0;
            end
            v1 <= run;
            done <= v1 && l1 && (o1 == NO[NOW-1:0] - 1'b1);
        end
        if (run) begin
            wq <= wmem[addr];
            xq <= in_word;
            f1 <= (j == {NIW{1'b0}});
            l1 <= last_j;
            o1 <= o;
        end
    end
    /* verilator lint_off UNUSEDSIGNAL */
    wire signed [PW-1:0] prod = wq * xq;
    wire signed [SW-1:0] pe = {{(SW - PW) {prod[PW-1]}}, prod};
    wire signed [BW-1:0] bq = bmem[o1];
    wire signed [SW-1:0] be = {{(SW - BW) {bq[BW-1]}}, bq};
    wire signed [SW-1:0] ae = {{(SW - OW) {acc[OW-1]}}, acc};
    wire signed [SW-1:0] sum = (f1 ? (be <<< BS) : ae) + (pe <<< PS);
    /* verilator lint_on UNUSEDSIGNAL */
    always @(posedge clk) begin
        if (v1) begin
            acc <= sum[OW-1:0];
            if (l1) y[o1] <= sum[OW-1:0];
        end
    end
    genvar g;
    generate
        for (g = 0; g < NO; g = g + 1) begin : g_out
            assign out_flat[g*OW +: OW] = y[g];
        end
    endgenerate
endmodule
`default_nettype wire

// hg_lstm_pe: one processing element of the sparse LSTM engine (ESE style).
//
// Holds the rows r = pe + k*P of the stacked gate matrix in compressed-column form:
//   WFILE: entries {rel[B-1:0], w[CW-1:0]} in column order; rel = zero rows skipped since the
//          previous entry of the column (fillers have w = 0).  With BOOK = 1 (shared weights,
//          as EIE), w is a CW-bit index into the KN signed WW-bit weights of KV (entry i at
//          bits i*WW), looked up before the multiplier; else CW = WW and w is the weight.
//   PFILE: per column {count[CNTW-1:0], start[ADW-1:0]}
// Non-zero activations arrive through the activation FIFO (push/space); the pointer stage
// drops empty columns; the sequencer issues one entry per cycle; the accumulators add
// w * a, shifted onto the z grid (SX for input columns, SH for recurrent ones).
// Pipeline: FIFO -> pointer read -> job queue -> weight read -> multiply -> accumulate.
// `clear` zeroes the accumulators (only while idle).  The exact cycle behaviour is
// replayed by hlsgen/engines/lstm/cycles.py.
`default_nettype none
module hg_lstm_pe #(
    parameter integer WW    = 8,    // weight width (signed)
    parameter integer B     = 4,    // relative row index bits
    parameter integer AW    = 10,   // activation width (signed)
    parameter integer ACCW  = 24,   // accumulator width (signed)
    parameter integer R     = 32,   // local rows
    parameter integer RW    = 5,    // local row index width
    parameter integer DEPTH = 256,  // weight memory depth
    parameter integer ADW   = 8,    // weight address width
    parameter integer CNTW  = 6,    // entries-per-column counter width
    parameter integer NCOL  = 72,   // columns (inputs + units)
    parameter integer COLW  = 7,    // column index width (holds NCOL)
    parameter integer PCW   = 7,    // pointer memory address width (holds NCOL - 1)
    parameter integer SX    = 0,    // product shift, input columns
    parameter integer SH    = 0,    // product shift, recurrent columns
    parameter integer AFW   = 3,    // log2 of the activation FIFO depth
    parameter integer JQW   = 2,    // log2 of the job queue depth
    parameter integer CW    = WW,   // stored weight code width (BOOK: index bits)
    parameter integer BOOK  = 0,    // 1: codes index the codebook KV
    parameter integer KN    = 1,    // BOOK: codebook entries
    parameter [KN*WW-1:0] KV = {KN*WW{1'b0}},  // BOOK: the codebook
    parameter        WFILE = "w.mem",
    parameter        PFILE = "p.mem"
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              clear,
    input  wire              push,
    input  wire [AW-1:0]     push_a,
    input  wire              push_sel,  // 1: recurrent column
    input  wire [COLW-1:0]   push_col,
    output wire              space,
    output wire              idle,
    output wire [R*ACCW-1:0] acc_flat
);
    localparam integer AFD = 1 << AFW;
    localparam integer JQD = 1 << JQW;
    localparam integer FW  = AW + 1 + COLW;         // FIFO word {a, sel, col}
    localparam integer JW  = AW + 1 + ADW + CNTW;   // job {a, sel, start, count}
    localparam integer PW  = WW + AW;               // product width
    localparam integer SM  = (SX > SH) ? SX : SH;
    localparam integer XW  = ((PW + SM > ACCW) ? PW + SM : ACCW) + 1;
    localparam integer RX  = ((RW > B) ? RW : B) + 1;

    // ---------------------------------------------------------------- activation FIFO
    reg [FW-1:0] af_mem [0:AFD-1];
    reg [AFW-1:0] af_wp, af_rp;
    reg [AFW:0] af_cnt;
    wire af_empty = (af_cnt == {(AFW + 1) {1'b0}});
    assign space = (af_cnt != AFD[AFW:0]);
    /* verilator lint_off UNUSEDSIGNAL */
    wire [FW-1:0] af_head = af_mem[af_rp];  // a column index never reaches NCOL: top bit unused
    /* verilator lint_on UNUSEDSIGNAL */

    // ---------------------------------------------------------------- pointer stage
    reg [ADW+CNTW-1:0] pmem [0:NCOL-1];
    reg [CW+B-1:0] wmem [0:DEPTH-1];
    initial begin
        $readmemh(PFILE, pmem);
        $readmemh(WFILE, wmem);
    end
    reg pv;
    reg [ADW+CNTW-1:0] pdata;
    reg [AW:0] pas;  // {a, sel}
    reg [JQW:0] jq_cnt;
    // read a pointer only when the job queue surely has room for it (counting the one in flight)
    wire pop_a = !af_empty && ({1'b0, jq_cnt} + {{(JQW + 1) {1'b0}}, pv} < JQD[JQW+1:0]);
    wire [CNTW-1:0] pcnt = pdata[ADW+CNTW-1:ADW];
    wire jpush = pv && (pcnt != {CNTW{1'b0}});
    wire [JW-1:0] jnew = {pas, pdata};

    // ---------------------------------------------------------------- job queue
    reg [JW-1:0] jq_mem [0:JQD-1];
    reg [JQW-1:0] jq_wp, jq_rp;
    wire [JW-1:0] jq0 = jq_mem[jq_rp];
    reg active;
    wire use_head = !active && (jq_cnt != {(JQW + 1) {1'b0}});
    wire jpop = use_head;

    // ---------------------------------------------------------------- sequencer
    reg [AW-1:0] cur_a;
    reg cur_sel;
    reg [ADW-1:0] cur_addr;
    reg [CNTW-1:0] cur_rem;
    wire issue = active || use_head;
    wire [AW-1:0] src_a = active ? cur_a : jq0[JW-1:JW-AW];
    wire src_sel = active ? cur_sel : jq0[ADW+CNTW];
    wire [ADW-1:0] src_addr = active ? cur_addr : jq0[ADW-1:0];
    wire [CNTW-1:0] src_rem = active ? cur_rem : jq0[ADW+CNTW-1:ADW];

    always @(posedge clk) begin
        if (rst) begin
            af_wp <= {AFW{1'b0}};
            af_rp <= {AFW{1'b0}};
            af_cnt <= {(AFW + 1) {1'b0}};
            pv <= 1'b0;
            jq_cnt <= {(JQW + 1) {1'b0}};
            jq_wp <= {JQW{1'b0}};
            jq_rp <= {JQW{1'b0}};
            active <= 1'b0;
        end else begin
            if (push) begin
                af_mem[af_wp] <= {push_a, push_sel, push_col};
                af_wp <= af_wp + 1'b1;
            end
            if (pop_a) af_rp <= af_rp + 1'b1;
            af_cnt <= af_cnt + {{AFW{1'b0}}, push} - {{AFW{1'b0}}, pop_a};
            pv <= pop_a;
            if (jpush) begin
                jq_mem[jq_wp] <= jnew;
                jq_wp <= jq_wp + 1'b1;
            end
            if (jpop) jq_rp <= jq_rp + 1'b1;
            jq_cnt <= jq_cnt + {{JQW{1'b0}}, jpush} - {{JQW{1'b0}}, jpop};
            active <= issue && (src_rem != {{(CNTW - 1) {1'b0}}, 1'b1});
        end
        if (pop_a) begin
            pdata <= pmem[af_head[PCW-1:0]];
            pas <= af_head[FW-1:COLW];
        end
        if (issue) begin
            cur_a <= src_a;
            cur_sel <= src_sel;
            cur_addr <= src_addr + 1'b1;
            cur_rem <= src_rem - 1'b1;
        end
    end

    // ---------------------------------------------------------------- weight read
    reg v1, first1, sel1;
    reg [AW-1:0] a1;
    reg [CW+B-1:0] wdata;
    always @(posedge clk) begin
        v1 <= !rst && issue;
        if (issue) begin
            wdata <= wmem[src_addr];
            a1 <= src_a;
            sel1 <= src_sel;
            first1 <= use_head;
        end
    end

    // ---------------------------------------------------------------- row + multiply
    wire [B-1:0] rel = wdata[CW+B-1:CW];
    wire [CW-1:0] code = wdata[CW-1:0];
    wire signed [WW-1:0] w;
    generate
        if (BOOK != 0) begin : g_book
            wire [KN*WW-1:0] book = KV;
            assign w = book[code*WW +: WW];
        end else begin : g_plain
            assign w = code;
        end
    endgenerate
    reg [RW-1:0] row_prev;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [RX-1:0] row_sum = first1 ? {{(RX - B) {1'b0}}, rel}
                                   : {{(RX - RW) {1'b0}}, row_prev} + {{(RX - B) {1'b0}}, rel} + 1'b1;
    wire signed [PW-1:0] prod = w * $signed(a1);
    wire signed [XW-1:0] pext = {{(XW - PW) {prod[PW-1]}}, prod};
    wire signed [XW-1:0] pshift = sel1 ? (pext <<< SH) : (pext <<< SX);
    /* verilator lint_on UNUSEDSIGNAL */
    wire [RW-1:0] row = row_sum[RW-1:0];
    reg v2;
    reg [RW-1:0] row2;
    reg signed [ACCW-1:0] p2;
    always @(posedge clk) begin
        v2 <= !rst && v1;
        if (v1) begin
            row_prev <= row;
            row2 <= row;
            p2 <= pshift[ACCW-1:0];
        end
    end

    // ---------------------------------------------------------------- accumulators
    reg signed [ACCW-1:0] acc [0:R-1];
    integer i;
    always @(posedge clk) begin
        if (clear) begin
            for (i = 0; i < R; i = i + 1) acc[i] <= {ACCW{1'b0}};
        end else if (v2) begin
            acc[row2] <= acc[row2] + p2;
        end
    end
    genvar g;
    generate
        for (g = 0; g < R; g = g + 1) begin : g_acc
            assign acc_flat[g*ACCW +: ACCW] = acc[g];
        end
    endgenerate

    assign idle = af_empty && !pv && (jq_cnt == {(JQW + 1) {1'b0}}) && !active && !v1 && !v2;
endmodule
`default_nettype wire

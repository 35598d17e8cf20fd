// hg_lstm_pe: one processing element of the sparse LSTM engine (ESE style).
//
// Holds the rows r = pe + k*P of the stacked gate matrix in compressed-column form:
//   WFILE: entries {rel[B-1:0], w[CW-1:0]} in column order; rel = zero rows skipped since the
//          previous entry of the column (fillers have w = 0).  With BOOK = 1 (shared weights,
//          as EIE), w is a CW-bit index into the KN signed WW-bit weights of KV (entry i at
//          bits i*WW), looked up before the multiplier; else CW = WW and w is the weight.
//   PFILE: per block of K columns, K pointers {count[CNTW-1:0], start[ADW-1:0]} (column
//          b*K + i at bits i*(CNTW+ADW)).
// The scanner broadcasts blocks of K activations with a mask of the non-zero ones through the
// activation FIFO (push/space).  The pointer stage reads the block's K pointers; the expander
// then hands the job queue one column per cycle, only the columns whose activation is non-zero
// and whose slice in this PE holds entries (a block with none costs one cycle).  The sequencer
// issues one entry per cycle; the accumulators add w * a, shifted onto the z grid (SX for input
// columns, SH for recurrent ones; with NL stacked layers, layer l's shifts SXV/SHV[l], the
// layer held on `layer` while its MAC phase runs).
// Pipeline: FIFO -> pointer read -> expander -> job queue -> weight read -> multiply -> accumulate.
// `clear` zeroes the accumulators (only while idle).  They are flip-flops read out whole on
// acc_flat (ARAM = 0), or a RAM with a valid bit per row (ARAM = 1: LUTRAM, no reset; `clear`
// drops the valid bits) read through NRD asynchronous ports (rd_addr, rd_data) by the
// element-wise unit.  With DB = 1 (the overlap) the RAM holds two banks: the MAC phase writes
// bank `wbank` (its `clear` empties the other, the next phase's), the reads take bank `rbank`,
// so the next step's pre-scan fills one bank while the element-wise unit reads the other.
// The exact cycle behaviour is replayed by hlsgen/engines/lstm/cycles.py.
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
    parameter integer K     = 1,    // columns per block (the scan width, a power of two)
    parameter integer KW    = 1,    // bits of a column within a block (at least 1)
    parameter integer NB    = 72,   // blocks: ceil(NCOL / K)
    parameter integer BLW   = 7,    // block index width (holds NB)
    parameter integer PCW   = 7,    // pointer memory address width (holds NB - 1)
    parameter integer SX    = 0,    // product shift, input columns
    parameter integer SH    = 0,    // product shift, recurrent columns
    parameter integer NL    = 1,    // stacked layers sharing the PE (NL > 1: shifts per layer)
    parameter integer LYW   = 1,    // bits of a layer index
    parameter [NL*8-1:0] SXV = {NL{8'd0}},  // NL > 1: layer l's input-column shift at bits l*8
    parameter [NL*8-1:0] SHV = {NL{8'd0}},  // NL > 1: layer l's recurrent-column shift
    parameter integer SMX   = (SX > SH) ? SX : SH,  // the largest shift
    parameter integer AFW   = 3,    // log2 of the activation FIFO depth
    parameter integer JQW   = 2,    // log2 of the job queue depth
    parameter integer CW    = WW,   // stored weight code width (BOOK: index bits)
    parameter integer ARAM  = 0,    // 1: accumulators in a RAM read through NRD ports (LUTRAM)
    parameter integer NRD   = 4,    // ARAM: read ports (rd_addr / rd_data)
    parameter integer DB    = 0,    // ARAM: 1 two banks (wbank written, rbank read)
    parameter integer BOOK  = 0,    // 1: codes index the codebook KV
    parameter integer KN    = 1,    // BOOK: codebook entries
    parameter [KN*WW-1:0] KV = {KN*WW{1'b0}},  // BOOK: the codebook
    parameter        WFILE = "w.mem",
    parameter        PFILE = "p.mem"
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              clear,
    input  wire              wbank,      // DB: the bank written (`clear` empties ~wbank, the next)
    input  wire              rbank,      // DB: the bank read
    input  wire [LYW-1:0]    layer,      // the layer whose MAC phase runs (NL > 1)
    input  wire              push,
    input  wire [K*AW-1:0]   push_a,     // the block's activations, column i at bits i*AW
    input  wire [K-1:0]      push_sel,   // 1: recurrent column
    input  wire [K-1:0]      push_mask,  // 1: non-zero activation
    input  wire [BLW-1:0]    push_blk,
    output wire              space,
    output wire              idle,
    output wire [(ARAM != 0 ? 1 : R)*ACCW-1:0] acc_flat,  // ARAM = 0: every row
    input  wire [NRD*RW-1:0]   rd_addr,  // ARAM = 1: the element-wise unit's reads
    output wire [NRD*ACCW-1:0] rd_data
);
    localparam integer AFD = 1 << AFW;
    localparam integer JQD = 1 << JQW;
    localparam integer FW  = K * AW + 2 * K + BLW;  // FIFO word {a, sel, mask, blk}
    localparam integer PTW = ADW + CNTW;            // one pointer {count, start}
    localparam integer JW  = AW + 1 + PTW;          // job {a, sel, count, start}
    localparam integer PW  = WW + AW;               // product width
    localparam integer XW  = ((PW + SMX > ACCW) ? PW + SMX : ACCW) + 1;
    localparam integer RX  = ((RW > B) ? RW : B) + 1;

    // ---------------------------------------------------------------- activation FIFO
    reg [FW-1:0] af_mem [0:AFD-1];
    reg [AFW-1:0] af_wp, af_rp;
    reg [AFW:0] af_cnt;
    wire af_empty = (af_cnt == {(AFW + 1) {1'b0}});
    assign space = (af_cnt != AFD[AFW:0]);
    /* verilator lint_off UNUSEDSIGNAL */
    wire [FW-1:0] af_head = af_mem[af_rp];  // a block index never reaches NB: top bit unused
    /* verilator lint_on UNUSEDSIGNAL */

    // ---------------------------------------------------------------- pointer stage + expander
    reg [K*PTW-1:0] pmem [0:NB-1];
    reg [CW+B-1:0] wmem [0:DEPTH-1];
    initial begin
        $readmemh(PFILE, pmem);
        $readmemh(WFILE, wmem);
    end
    reg pv;                  // the expander holds a block
    reg [K*PTW-1:0] pdata;   // its K pointers
    reg [K*AW-1:0] pa;       // its activations
    reg [K-1:0] psel;        // its recurrent flags
    reg [K-1:0] pm;          // its columns not yet handed on
    reg [JQW:0] jq_cnt;
    wire [K-1:0] cnz;        // columns with entries in this PE
    genvar q;
    generate
        for (q = 0; q < K; q = q + 1) begin : g_cnz
            assign cnz[q] = (pdata[q*PTW+ADW +: CNTW] != {CNTW{1'b0}});
        end
    endgenerate
    wire [K-1:0] eff = pv ? (pm & cnz) : {K{1'b0}};
    // the lowest column left
    reg [KW-1:0] jsel;
    integer m;
    always @(*) begin
        jsel = {KW{1'b0}};
        for (m = K - 1; m >= 0; m = m - 1) if (eff[m]) jsel = m[KW-1:0];
    end
    wire [K-1:0] eff_rest = eff & (eff - 1'b1);  // eff without its lowest column
    wire jpush = (eff != {K{1'b0}}) && (jq_cnt != JQD[JQW:0]);
    wire exp_free = !pv || (eff == {K{1'b0}}) || (jpush && (eff_rest == {K{1'b0}}));
    wire pop_a = !af_empty && exp_free;
    /* verilator lint_off WIDTHEXPAND */
    wire [JW-1:0] jnew = {pa[jsel*AW +: AW], psel[jsel], pdata[jsel*PTW +: PTW]};
    /* verilator lint_on WIDTHEXPAND */

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
    wire src_sel = active ? cur_sel : jq0[PTW];
    wire [ADW-1:0] src_addr = active ? cur_addr : jq0[ADW-1:0];
    wire [CNTW-1:0] src_rem = active ? cur_rem : jq0[PTW-1:ADW];

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
                af_mem[af_wp] <= {push_a, push_sel, push_mask, push_blk};
                af_wp <= af_wp + 1'b1;
            end
            if (pop_a) af_rp <= af_rp + 1'b1;
            af_cnt <= af_cnt + {{AFW{1'b0}}, push} - {{AFW{1'b0}}, pop_a};
            if (pop_a) pv <= 1'b1;
            else if (exp_free) pv <= 1'b0;
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
            pa <= af_head[FW-1 -: K*AW];
            psel <= af_head[2*K+BLW-1 -: K];
            pm <= af_head[K+BLW-1 -: K];
        end else if (jpush) begin
            pm <= eff_rest;
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
    /* verilator lint_on UNUSEDSIGNAL */
    wire [7:0] sx_cur, sh_cur;
    generate
        if (NL == 1) begin : g_one
            assign sx_cur = SX[7:0];
            assign sh_cur = SH[7:0];
            /* verilator lint_off UNUSEDSIGNAL */
            wire unused_layer = ^layer;
            /* verilator lint_on UNUSEDSIGNAL */
        end else begin : g_layers
            assign sx_cur = SXV[layer*8 +: 8];
            assign sh_cur = SHV[layer*8 +: 8];
        end
    endgenerate
    /* verilator lint_off UNUSEDSIGNAL */
    wire signed [XW-1:0] pshift = sel1 ? (pext <<< sh_cur) : (pext <<< sx_cur);
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
    genvar g;
    generate
        if (ARAM == 0) begin : g_ff
            // flip-flops, every row out on acc_flat; `clear` zeroes them in one cycle
            reg signed [ACCW-1:0] acc [0:R-1];
            integer i;
            always @(posedge clk) begin
                if (clear) begin
                    for (i = 0; i < R; i = i + 1) acc[i] <= {ACCW{1'b0}};
                end else if (v2) begin
                    acc[row2] <= acc[row2] + p2;
                end
            end
            for (g = 0; g < R; g = g + 1) begin : g_acc
                assign acc_flat[g*ACCW +: ACCW] = acc[g];
            end
            assign rd_data = {NRD*ACCW{1'b0}};
            /* verilator lint_off UNUSEDSIGNAL */
            wire unused_rd = ^rd_addr ^ wbank ^ rbank;
            /* verilator lint_on UNUSEDSIGNAL */
        end else begin : g_ram
            // a RAM (no reset, asynchronous reads: LUTRAM) and a valid bit per row: `clear`
            // empties the rows by their valid bits; a row not written since reads as zero.
            // DB: bank b's row r at address b*R + r, its valid bits vld[b]
            localparam integer NBK = (DB != 0) ? 2 : 1;
            localparam integer AAW = $clog2(NBK * R);
            reg signed [ACCW-1:0] acc [0:NBK*R-1];
            reg [NBK*R-1:0] vld;
            wire wb = (DB != 0) && wbank;
            wire rb = (DB != 0) && rbank;
            wire cb = (DB != 0) && !wbank;  // the bank `clear` empties
            /* verilator lint_off UNUSEDSIGNAL */
            wire [31:0] wa_w = wb ? R + {{(32 - RW) {1'b0}}, row2} : {{(32 - RW) {1'b0}}, row2};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [AAW-1:0] wa = wa_w[AAW-1:0];
            wire signed [ACCW-1:0] acc_old = vld[wa] ? acc[wa] : {ACCW{1'b0}};
            always @(posedge clk) if (!clear && v2) acc[wa] <= acc_old + p2;
            always @(posedge clk) begin
                if (clear) vld[cb*R +: R] <= {R{1'b0}};
                else if (v2) vld[wa] <= 1'b1;
            end
            for (g = 0; g < NRD; g = g + 1) begin : g_rd
                wire [RW-1:0] a = rd_addr[g*RW +: RW];
                /* verilator lint_off UNUSEDSIGNAL */
                wire [31:0] ra_w = rb ? R + {{(32 - RW) {1'b0}}, a} : {{(32 - RW) {1'b0}}, a};
                /* verilator lint_on UNUSEDSIGNAL */
                wire [AAW-1:0] ra = ra_w[AAW-1:0];
                assign rd_data[g*ACCW +: ACCW] = vld[ra] ? acc[ra] : {ACCW{1'b0}};
            end
            assign acc_flat = {ACCW{1'b0}};
            if (DB == 0) begin : g_one_bank
                /* verilator lint_off UNUSEDSIGNAL */
                wire unused_bank = wbank ^ rbank;
                /* verilator lint_on UNUSEDSIGNAL */
            end
        end
    endgenerate

    assign idle = af_empty && !pv && (jq_cnt == {(JQW + 1) {1'b0}}) && !active && !v1 && !v2;
endmodule
`default_nettype wire

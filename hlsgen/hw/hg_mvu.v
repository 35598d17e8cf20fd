// hg_mvu: folded matrix-vector unit of the streaming CNN engine (Conv, depthwise Conv, Dense).
//
// y = act(x W + b) for an input vector x of N elements (XW bits, signed) and M outputs, with PE
// output lanes and SIMD input lanes: the matrix is cut into PE x SIMD tiles, and the weight
// memory WFILE holds, output group by output group, only the tiles that are not all zero:
// {last, codes[PE][SIMD]} (last: the group's final tile); SFILE which SIMD chunk of x each reads.
// One tile per cycle; all-zero tiles cost nothing.  Datapath (DP): 0 = multipliers (codes are
// signed CW-bit weights), 1 = shifts (codes {e, sign, nonzero}: +-(x << e), no multiplier; CW = 2: no e, ternary),
// 2 = XNOR-popcount (binary weights, code 1 = -1, on inputs that are all +-2^EA: a tile adds
// (2 * popcount(xnor(x >= 0, w > 0)) - SIMD) << EA), 3 = codebook (shared weights, as EIE: a
// code is a CW-bit index into the KN signed KW-bit values of KV (zero first when the layer
// has zeros), looked up in every lane before its multiplier).
// DIAG = 1 (depthwise layers, PE = SIMD over channels): lane p multiplies only element p of
// the chunk, and a tile stores PE codes.  Accumulators are AW bits (exact: sized from the weights); a group's values
// (acc << SA) + (b << SB) on VW bits leave on lane_x (with the group on lane_ch) to PE
// activation lanes outside (latency LAT) and come back on lane_y.
//
// Items are issued back to back: the next vector's tiles follow the previous vector's without
// a gap, and its results go to the next of NB output buffers (used in turn).  A vector starts
// when its buffer is free; the output register takes the buffers in order as they complete.
// NB covers the pipeline latency (hlsgen picks NB = ceil((T + 6 + LAT) / T)).
`default_nettype none
module hg_mvu #(
    parameter integer N     = 9,
    parameter integer M     = 8,
    parameter integer PE    = 1,
    parameter integer SIMD  = 1,
    parameter integer NF    = 8,
    parameter integer SF    = 9,
    parameter integer XW    = 8,
    parameter integer CW    = 8,
    parameter integer DP    = 0,
    parameter integer AW    = 16,
    parameter integer VW    = 16,
    parameter integer BW    = 8,
    parameter integer SA    = 0,
    parameter integer SB    = 0,
    parameter integer OW    = 8,
    parameter integer T     = 72,
    parameter integer TW    = 7,  // bits of a tile address (holds T - 1)
    parameter integer SFW   = 4,  // bits of sf (holds SF - 1)
    parameter integer NFW   = 3,  // bits of the group counter (holds NF - 1)
    parameter integer LAT   = 1,
    parameter integer NB    = 2,
    parameter integer DIAG  = 0,
    parameter integer EA    = 0,
    parameter integer BIW   = 1,  // bits of a buffer index (holds NB - 1)
    parameter integer KN    = 1,  // DP 3: codebook entries
    parameter integer KW    = 1,  // DP 3: bits of a codebook value
    parameter [KN*KW-1:0] KV = {KN*KW{1'b0}},  // DP 3: the codebook, entry i at bits i*KW
    parameter        WFILE = "w.mem",
    parameter        BFILE = "b.mem",
    parameter        SFILE = "s.mem"
) (
    input  wire               clk,
    input  wire               rst,
    input  wire [N*XW-1:0]    s_data,
    input  wire               s_valid,
    output wire               s_ready,
    output reg  [M*OW-1:0]    m_data,
    output reg                m_valid,
    input  wire               m_ready,
    output reg  [PE*VW-1:0]   lane_x,
    output reg  [NFW-1:0]     lane_ch,
    input  wire [PE*OW-1:0]   lane_y
);
    localparam integer CODES = (DIAG != 0 ? PE : PE * SIMD) * CW;
    localparam integer MW = 1 + CODES;
    localparam integer CHUNK = SIMD * XW;
    reg [MW-1:0] wmem [0:T-1];
    reg [SFW-1:0] smem [0:T-1];  // the SIMD chunk of x each tile reads
    reg [PE*BW-1:0] bmem [0:(1 << NFW) - 1];
    initial begin
        $readmemh(WFILE, wmem);
        $readmemh(SFILE, smem);
        $readmemh(BFILE, bmem);
    end

    // ---------------------------------------------------------------- input and issue
    reg [N*XW-1:0] xbuf, work;
    reg xfull;
    wire start;
    assign s_ready = !xfull || start;  // an item may enter as the one held starts: one a cycle at T = 1
    reg iss;
    reg [TW-1:0] a;
    reg [BIW-1:0] np, cp;  // buffer of the next item to start, of the item being issued
    reg [NB-1:0] inuse;    // output buffer q holds, or will hold, an item not yet sent
    wire at_end = (a == T[TW-1:0] - 1'b1);
    assign start = xfull && !inuse[np] && (!iss || at_end);
    reg [MW-1:0] wq;
    reg v1;
    reg [BIW-1:0] p1;
    always @(posedge clk) begin
        wq <= wmem[a];
        if (s_valid && s_ready) xbuf <= s_data;
        if (start) work <= xbuf;
    end

    // ---------------------------------------------------------------- stage 1: tile products
    wire [CHUNK-1:0] chunk [0:(1 << SFW) - 1];
    genvar j, p, s;
    generate
        for (j = 0; j < (1 << SFW); j = j + 1) begin : g_chunk
            if (j < SF) begin : g_real
                assign chunk[j] = work[j*CHUNK +: CHUNK];
            end else begin : g_none
                assign chunk[j] = {CHUNK{1'b0}};
            end
        end
    endgenerate
    reg [CHUNK-1:0] xs;
    always @(posedge clk) xs <= chunk[smem[a]];  // the tile's chunk of x, read with its weights
    wire last1 = wq[MW-1];
    reg [PE*AW-1:0] ts;
    reg v2, l2;
    reg [BIW-1:0] p2;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [AW-1:0] part [0:SIMD];
            assign part[0] = {AW{1'b0}};
            wire [SIMD:0] pc [0:SIMD];  // popcount of the XNORs (DP 2)
            assign pc[0] = {(SIMD + 1){1'b0}};
            for (s = 0; s < SIMD; s = s + 1) begin : g_simd
                // DIAG: only s == p has a weight; the other products are not built
                localparam integer USE = (DIAG == 0 || s == p) ? 1 : 0;
                localparam integer CI = (DIAG != 0) ? p : p * SIMD + s;
                /* verilator lint_off UNUSEDSIGNAL */
                wire [XW-1:0] xv = xs[s*XW +: XW];  // not read off the diagonal (DIAG)
                wire [CW-1:0] cv = wq[CI*CW +: CW];
                /* verilator lint_on UNUSEDSIGNAL */
                wire [AW-1:0] prod;
                if (USE == 0 || DP == 2) begin : g_none  // DP 2: the popcount below is used
                    assign prod = {AW{1'b0}};
                end else if (DP == 0 || DP == 3) begin : g_mul
                    localparam integer WW = (DP == 3) ? KW : CW;
                    wire [WW-1:0] wv;  // the weight: the code itself, or its codebook entry
                    if (DP == 3) begin : g_book
                        wire [KN*KW-1:0] book = KV;
                        assign wv = book[cv*KW +: KW];
                    end else begin : g_code
                        assign wv = cv;
                    end
                    wire signed [XW+WW-1:0] pr = $signed(xv) * $signed(wv);
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [AW+XW+WW-1:0] pe_ = {{AW{pr[XW+WW-1]}}, pr};
                    /* verilator lint_on UNUSEDSIGNAL */
                    assign prod = pe_[AW-1:0];
                end else begin : g_shift
                    /* verilator lint_off UNUSEDSIGNAL */
                    wire [AW+XW-1:0] xe = {{AW{xv[XW-1]}}, xv};
                    /* verilator lint_on UNUSEDSIGNAL */
                    wire [AW-1:0] sh;
                    if (CW > 2) begin : g_exp  // power of two: a shift by the exponent
                        assign sh = xe[AW-1:0] << cv[CW-1:2];
                    end else begin : g_one  // ternary: add, subtract or skip
                        assign sh = xe[AW-1:0];
                    end
                    assign prod = !cv[0] ? {AW{1'b0}} : (cv[1] ? -sh : sh);
                end
                assign part[s+1] = part[s] + prod;
                assign pc[s+1] = pc[s] + {{SIMD{1'b0}}, (xv[XW-1] == cv[0])};  // x >= 0 xnor w >= 0
            end
            if (DP == 2) begin : g_xnor
                /* verilator lint_off UNUSEDSIGNAL */
                wire [AW+SIMD:0] pe2 = {{AW{1'b0}}, pc[SIMD]};
                /* verilator lint_on UNUSEDSIGNAL */
                wire [AW-1:0] two_pc = pe2[AW-1:0] << 1;
                wire [AW-1:0] tsum = (two_pc - SIMD[AW-1:0]) << EA;
                always @(posedge clk) ts[p*AW +: AW] <= tsum;
            end else begin : g_sum
                always @(posedge clk) ts[p*AW +: AW] <= part[SIMD];
            end
        end
    endgenerate

    // ---------------------------------------------------------------- stage 2: accumulate
    reg [PE*AW-1:0] acc, fin;
    reg v3;
    reg [BIW-1:0] p3;
    reg [NFW-1:0] nfc, nf3;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_acc
            wire [AW-1:0] sum = acc[p*AW +: AW] + ts[p*AW +: AW];
            always @(posedge clk) begin
                if (rst) acc[p*AW +: AW] <= {AW{1'b0}};
                else if (v2) acc[p*AW +: AW] <= l2 ? {AW{1'b0}} : sum;
                if (v2) fin[p*AW +: AW] <= sum;
            end
        end
    endgenerate

    // ---------------------------------------------------------------- stage 3: bias, value
    reg v4;
    reg [BIW-1:0] p4;
    reg [NFW-1:0] nf4;
    wire [PE*BW-1:0] bword = bmem[nf3];
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_val
            /* verilator lint_off UNUSEDSIGNAL */
            wire [VW+AW-1:0] ae = {{VW{fin[p*AW+AW-1]}}, fin[p*AW +: AW]};
            wire [VW+BW-1:0] be = {{VW{bword[p*BW+BW-1]}}, bword[p*BW +: BW]};
            /* verilator lint_on UNUSEDSIGNAL */
            wire [VW-1:0] av = ae[VW-1:0] << SA;
            wire [VW-1:0] bv = be[VW-1:0] << SB;
            always @(posedge clk) lane_x[p*VW +: VW] <= av + bv;
        end
    endgenerate

    // ---------------------------------------------------------------- lanes, collection, output
    reg [LAT-1:0] vd;
    reg [BIW*LAT-1:0] pd;
    reg [NFW*LAT-1:0] nd;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [LAT:0] vd_n = {vd, v4};
    wire [BIW*(LAT+1)-1:0] pd_n = {pd, p4};
    wire [NFW*(LAT+1)-1:0] nd_n = {nd, nf4};
    /* verilator lint_on UNUSEDSIGNAL */
    wire v5 = vd[LAT-1];
    wire [BIW-1:0] p5 = pd[BIW*LAT-1 -: BIW];
    wire [NFW-1:0] nf5 = nd[NFW*LAT-1 -: NFW];
    reg [M*OW-1:0] ob [0:NB-1];
    reg [NB-1:0] ofull;
    reg [BIW-1:0] rd;
    genvar q;
    generate
        for (q = 0; q < NB; q = q + 1) begin : g_buf
            for (j = 0; j < NF; j = j + 1) begin : g_slot
                always @(posedge clk)
                    if (v5 && nf5 == j[NFW-1:0] && p5 == q[BIW-1:0]) ob[q][j*PE*OW +: PE*OW] <= lane_y;
            end
        end
    endgenerate
    wire [BIW-1:0] last_buf = NB[BIW-1:0] - 1'b1;
    wire send = ofull[rd] && (!m_valid || m_ready);
    wire gdone = v5 && (nf5 == NF[NFW-1:0] - 1'b1);

    always @(posedge clk) begin
        vd <= rst ? {LAT{1'b0}} : vd_n[LAT-1:0];
        pd <= pd_n[BIW*LAT-1:0];
        nd <= nd_n[NFW*LAT-1:0];
        lane_ch <= nf3;
        if (rst) begin
            xfull <= 1'b0;
            iss <= 1'b0;
            a <= {TW{1'b0}};
            np <= {BIW{1'b0}};
            cp <= {BIW{1'b0}};
            inuse <= {NB{1'b0}};
            v1 <= 1'b0;
            v2 <= 1'b0;
            v3 <= 1'b0;
            v4 <= 1'b0;
            nfc <= {NFW{1'b0}};
            ofull <= {NB{1'b0}};
            rd <= {BIW{1'b0}};
            m_valid <= 1'b0;
        end else begin
            // issue
            if (start) begin
                xfull <= 1'b0;
                iss <= 1'b1;
                a <= {TW{1'b0}};
                np <= (np == last_buf) ? {BIW{1'b0}} : np + 1'b1;
                cp <= np;
            end else if (iss) begin
                if (at_end) iss <= 1'b0;
                else a <= a + 1'b1;
            end
            // input register (after the issue: the item taken as the held one starts stays)
            if (s_valid && s_ready) xfull <= 1'b1;
            v1 <= iss;
            p1 <= cp;
            v2 <= v1;
            l2 <= last1;
            p2 <= p1;
            v3 <= v2 && l2;
            p3 <= p2;
            if (v2 && l2) begin
                nf3 <= nfc;
                nfc <= (nfc == NF[NFW-1:0] - 1'b1) ? {NFW{1'b0}} : nfc + 1'b1;
            end
            v4 <= v3;
            p4 <= p3;
            nf4 <= nf3;
            // collection and output
            if (gdone) ofull[p5] <= 1'b1;
            if (send) begin
                m_data <= ob[rd];
                m_valid <= 1'b1;
                ofull[rd] <= 1'b0;
                inuse[rd] <= 1'b0;
                rd <= (rd == last_buf) ? {BIW{1'b0}} : rd + 1'b1;
            end else if (m_ready) begin
                m_valid <= 1'b0;
            end
            if (start) inuse[np] <= 1'b1;
        end
    end
endmodule
`default_nettype wire

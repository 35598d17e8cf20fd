// hg_vec_out: stream a vector of N values (OW bits, signed) as N AXI4-Stream words of OBW
// bits (sign-extended), tlast on the last word when the vector ends a sequence (last).  `load`
// (only while !busy) takes a snapshot of vec, so the engine may go on computing the next one;
// with IDX = 1 there is no snapshot: word i is read as rd_word while rd_idx = i, from a memory
// the caller holds still until busy falls (hg_ew_io's double-banked output memory).
`default_nettype none
module hg_vec_out #(
    parameter integer N   = 10,  // values per vector
    parameter integer OW  = 8,   // bits of a value
    parameter integer OBW = 8,   // tdata bits (OW rounded up to bytes)
    parameter integer OIW = 4,   // bits of the word counter (holds N - 1)
    parameter integer IDX = 0    // 1: read the words by index (rd_idx, rd_word), no snapshot
) (
    input  wire           clk,
    input  wire           rst,
    input  wire           load,  // take vec (and last) now; only while !busy
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [N*OW-1:0] vec,      // IDX = 0
    input  wire [OW-1:0]  rd_word,   // IDX = 1: word rd_idx
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [OIW-1:0] rd_idx,
    input  wire           last,
    output reg            busy,
    output wire [OBW-1:0] m_axis_tdata,
    output wire           m_axis_tvalid,
    input  wire           m_axis_tready,
    output wire           m_axis_tlast
);
    reg [OIW-1:0] oi;
    reg olast;
    wire o_ready;
    wire o_fire = busy && o_ready;
    wire o_last = (oi == N[OIW-1:0] - 1'b1);
    wire [OW-1:0] oval;
    assign rd_idx = oi;
    generate
        if (IDX != 0) begin : g_idx
            assign oval = rd_word;
        end else begin : g_snap
            reg [N*OW-1:0] obuf;
            always @(posedge clk) if (load && !busy) obuf <= vec;
            assign oval = obuf[oi*OW +: OW];
        end
    endgenerate
    wire [OBW:0] o_word = {o_last && olast, {(OBW - OW) {oval[OW-1]}}, oval};
    wire [OBW:0] m_word;
    hg_skid #(.W(OBW + 1)) u_out (
        .clk(clk), .rst(rst),
        .s_data(o_word), .s_valid(busy), .s_ready(o_ready),
        .m_data(m_word), .m_valid(m_axis_tvalid), .m_ready(m_axis_tready)
    );
    assign m_axis_tdata = m_word[OBW-1:0];
    assign m_axis_tlast = m_word[OBW];
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            oi <= {OIW{1'b0}};
            olast <= 1'b0;
        end else begin
            if (o_fire) begin
                oi <= o_last ? {OIW{1'b0}} : oi + 1'b1;
                if (o_last) busy <= 1'b0;
            end
            if (load && !busy) begin
                busy <= 1'b1;
                olast <= last;
                oi <= {OIW{1'b0}};
            end
        end
    end
endmodule
`default_nettype wire

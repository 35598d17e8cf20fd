// hg_seq_in: the sparse LSTM engine's input side.  AXI4-Stream words (one input feature per
// word) pass a skid register into a double buffer of two F-word slots: while the engine reads
// step t's slot, step t+1's words fill the other.  A slot becomes available when its F-th word
// is written and is released by the controller (release) when the step's MAC phase ends.
`default_nettype none
module hg_seq_in #(
    parameter integer F   = 8,  // features (words per time step)
    parameter integer XW  = 8,  // bits of an input value
    parameter integer IBW = 8,  // tdata bits (XW rounded up to bytes)
    parameter integer FW  = 3,  // bits of the word counter (holds F - 1)
    parameter integer XIW = 4,  // bits of a buffer index (holds 2F - 1)
    parameter integer K   = 1   // read ports
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [IBW-1:0]  s_axis_tdata,
    input  wire            s_axis_tvalid,
    output wire            s_axis_tready,
    input  wire            release_slot,  // the read slot's step is done with it
    output wire            avail,         // the read slot holds a whole step
    input  wire [K*FW-1:0] rd_idx,        // features read from the read slot
    output wire [K*XW-1:0] rd_data
);
    wire [XW-1:0] in_data;
    wire in_valid, in_ready;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [IBW-1:0] s_data_all = s_axis_tdata;
    /* verilator lint_on UNUSEDSIGNAL */
    hg_skid #(.W(XW)) u_in (
        .clk(clk), .rst(rst),
        .s_data(s_data_all[XW-1:0]), .s_valid(s_axis_tvalid), .s_ready(s_axis_tready),
        .m_data(in_data), .m_valid(in_valid), .m_ready(in_ready)
    );
    reg [XW-1:0] xbuf [0:2*F-1];
    reg [1:0] slot_full;
    reg ws, rs;
    reg [FW-1:0] wi;
    assign in_ready = !slot_full[ws];
    assign avail = slot_full[rs];
    wire in_fire = in_valid && in_ready;
    wire load_last = in_fire && (wi == F[FW-1:0] - 1'b1);
    wire [XIW-1:0] wi_x = {{(XIW - FW) {1'b0}}, wi};
    wire [XIW-1:0] xw_idx = ws ? wi_x + F[XIW-1:0] : wi_x;
    genvar i;
    generate
        for (i = 0; i < K; i = i + 1) begin : g_rd
            wire [XIW-1:0] rd_x = {{(XIW - FW) {1'b0}}, rd_idx[i*FW +: FW]};
            wire [XIW-1:0] xr_idx = rs ? rd_x + F[XIW-1:0] : rd_x;
            assign rd_data[i*XW +: XW] = xbuf[xr_idx];
        end
    endgenerate
    always @(posedge clk) if (in_fire) xbuf[xw_idx] <= in_data;
    always @(posedge clk) begin
        if (rst) begin
            slot_full <= 2'b00;
            ws <= 1'b0;
            rs <= 1'b0;
            wi <= {FW{1'b0}};
        end else begin
            if (in_fire) wi <= load_last ? {FW{1'b0}} : wi + 1'b1;
            if (load_last) begin
                slot_full[ws] <= 1'b1;
                ws <= ~ws;
            end
            if (release_slot) begin
                slot_full[rs] <= 1'b0;
                rs <= ~rs;
            end
        end
    end
endmodule
`default_nettype wire

// hg_ew_row: one element-wise lane's pre-activation of one gate row, this cycle (combinational).
// Lane LANE handles units u = j*E + LANE; the gate row GATE of its unit at this cycle is read from
// the accumulators and its bias added on the z grid: z = acc + (bias << BS), ZW bits.
//   ZIN = 0: z_flat holds every gate row, row GATE*U + u at bits (GATE*U + u)*ACCW; the lane's
//            own rows only are multiplexed (an NG:1 read, group kg), not 4U:1.
//   ZIN = 1: the accumulators are in the PEs' RAMs; PE q's read of gate g sits at bits
//            (q*4 + g)*ACCW, and the lane takes PE ej*E + LANE (a P/E:1 read).
// Used by hg_lstm_ew and hg_gru_ew, four rows per lane.
`default_nettype none
module hg_ew_row #(
    parameter integer U    = 16,  // units
    parameter integer E    = 1,   // lanes
    parameter integer LANE = 0,   // this lane
    parameter integer GATE = 0,   // this gate row (0..3)
    parameter integer NG   = 16,  // unit groups: ceil(U / E)
    parameter integer GRW  = 4,   // bits of a group index (holds NG - 1)
    parameter integer ZIN  = 0,   // 1: z_flat holds the PEs' RAM reads
    parameter integer NJ   = 1,   // ZIN: PEs per lane
    parameter integer JW   = 1,   // ZIN: bits of ej (holds NJ - 1)
    parameter integer ZFW  = 64,  // bits of z_flat
    parameter integer ACCW = 24,  // accumulator bits (signed)
    parameter integer BW   = 8,   // bias bits (signed)
    parameter integer BS   = 0,   // bias shift onto the z grid
    parameter integer ZSW  = 26,  // bits of the biased sum (exact)
    parameter integer ZW   = 16   // bits of z
) (
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [ZFW-1:0]  z_flat,  // other lanes' and gates' rows are not read here
    input  wire [JW-1:0]   ej,      // ZIN: the PE this lane reads
    input  wire [GRW-1:0]  kg,      // ZIN = 0: the group this lane handles
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [BW-1:0]   bias,
    output wire [ZW-1:0]   z
);
    localparam integer NZ = (ZIN != 0) ? NJ : NG;
    wire [ACCW-1:0] z_mine [0:NZ-1];
    wire [ACCW-1:0] za;
    genvar j;
    generate
        for (j = 0; j < NZ; j = j + 1) begin : g_mine
            if (ZIN != 0) begin : g_pe  // PE j*E + LANE's read of the gate
                assign z_mine[j] = z_flat[((j*E + LANE)*4 + GATE)*ACCW +: ACCW];
            end else if (j * E + LANE < U) begin : g_unit
                assign z_mine[j] = z_flat[(GATE*U + j*E + LANE)*ACCW +: ACCW];
            end else begin : g_none
                assign z_mine[j] = {ACCW{1'b0}};
            end
        end
        if (ZIN != 0) begin : g_zram
            assign za = z_mine[ej];
        end else begin : g_zff
            assign za = z_mine[kg];
        end
    endgenerate
    /* verilator lint_off UNUSEDSIGNAL */
    wire signed [ZSW-1:0] zs = $signed({{(ZSW - ACCW) {za[ACCW-1]}}, za})
                             + ($signed({{(ZSW - BW) {bias[BW-1]}}, bias}) <<< BS);
    /* verilator lint_on UNUSEDSIGNAL */
    assign z = zs[ZW-1:0];
endmodule
`default_nettype wire

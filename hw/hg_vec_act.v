// hg_vec_act: an element-wise activation over a vector, one element per cycle.
// MODE 0: exact table (hg_step; per-channel when CHW > 0 selects the element's channel)
// MODE 1: relu   MODE 2: linear   MODE 3: requantize (hg_requant, optional relu first)
// start (one cycle) -> done (one cycle) exactly N + LAT + 1 cycles later, LAT = LEVELS + 1
// for tables and 1 otherwise.
`default_nettype none
module hg_vec_act #(
    parameter integer N       = 64,
    parameter integer NW      = 6,
    parameter integer IW      = 16,
    parameter integer OW      = 16,
    parameter integer MODE    = 0,
    parameter integer LEVELS  = 1,
    parameter integer CHW     = 1,
    parameter integer PERCH   = 0,
    parameter integer SHIFT   = 0,
    parameter integer RND     = 0,
    parameter integer OVF     = 1,
    parameter integer OSIGNED = 1,
    parameter integer RELU    = 0,
    parameter        TFILE   = "t.mem",
    parameter        VFILE   = "v.mem"
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            start,
    input  wire [N*IW-1:0] in_flat,
    output reg             done,
    output wire [N*OW-1:0] out_flat
);
    localparam integer LAT = (MODE == 0) ? LEVELS + 1 : 1;
    reg run;
    reg [NW-1:0] i;
    wire signed [IW-1:0] x = in_flat[i*IW +: IW];
    wire [OW-1:0] fx;
    generate
        if (MODE == 0) begin : g_table
            /* verilator lint_off UNUSEDSIGNAL */
            wire [NW-1:0] chi = (PERCH != 0) ? i : {NW{1'b0}};
            /* verilator lint_on UNUSEDSIGNAL */
            hg_step #(.XW(IW), .OW(OW), .LEVELS(LEVELS), .CHW(CHW), .TFILE(TFILE), .VFILE(VFILE))
                u_step (.clk(clk), .x(x), .ch(chi[CHW-1:0]), .y(fx));
        end else begin : g_reg
            wire [OW-1:0] f;
            // x resized to OW bits: sign-extended, or its low bits (the value fits by construction)
            /* verilator lint_off UNUSEDSIGNAL */
            wire [OW-1:0] xe;  // not read in requantize mode
            /* verilator lint_on UNUSEDSIGNAL */
            if (OW > IW) begin : g_ext
                assign xe = {{(OW - IW) {x[IW-1]}}, x};
            end else begin : g_cut
                assign xe = x[OW-1:0];
            end
            if (MODE == 1) begin : g_relu
                assign f = x[IW-1] ? {OW{1'b0}} : xe;
            end else if (MODE == 2) begin : g_lin
                assign f = xe;
            end else begin : g_rq
                wire [IW-1:0] xr = (RELU != 0 && x[IW-1]) ? {IW{1'b0}} : x;
                hg_requant #(.IW(IW), .SHIFT(SHIFT), .OW(OW), .OSIGNED(OSIGNED), .RND(RND), .OVF(OVF))
                    u_rq (.x(xr), .y(f));
            end
            reg [OW-1:0] fr;
            always @(posedge clk) fr <= f;
            assign fx = fr;
        end
    endgenerate
    // index of the element leaving the pipeline: i delayed by LAT cycles
    reg [NW*LAT-1:0] wi_sr;
    reg [LAT-1:0] wv_sr;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [NW*(LAT+1)-1:0] wi_next = {wi_sr, i};
    wire [LAT:0] wv_next = {wv_sr, run};
    /* verilator lint_on UNUSEDSIGNAL */
    always @(posedge clk) begin
        wi_sr <= wi_next[NW*LAT-1:0];
        wv_sr <= rst ? {LAT{1'b0}} : wv_next[LAT-1:0];
    end
    wire [NW-1:0] wi = wi_sr[NW*LAT-1 -: NW];
    wire wv = wv_sr[LAT-1];
    reg [OW-1:0] y [0:N-1];
    always @(posedge clk) if (wv) y[wi] <= fx;
    always @(posedge clk) begin
        if (rst) begin
            run <= 1'b0;
            done <= 1'b0;
        end else begin
            if (start) begin
                run <= 1'b1;
                i <= {NW{1'b0}};
            end else if (run) begin
                i <= i + 1'b1;
                if (i == N[NW-1:0] - 1'b1) run <= 1'b0;
            end
            done <= wv && (wi == N[NW-1:0] - 1'b1);
        end
    end
    genvar g;
    generate
        for (g = 0; g < N; g = g + 1) begin : g_out
            assign out_flat[g*OW +: OW] = y[g];
        end
    endgenerate
endmodule
`default_nettype wire

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
    output wire [NW-1:0]   in_idx,   // the input read this cycle ...
    input  wire [IW-1:0]   in_word,  // ... its value (the caller's memory, read combinationally)
    output reg             done,
    output wire [N*OW-1:0] out_flat
);
    localparam integer LAT = (MODE == 0) ? LEVELS + 1 : 1;
    reg run;
    reg [NW-1:0] i;
    wire signed [IW-1:0] x = in_word;
    assign in_idx = i;
    wire [OW-1:0] fx;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [NW-1:0] chi = (PERCH != 0) ? i : {NW{1'b0}};  // tables only
    /* verilator lint_on UNUSEDSIGNAL */
    // the lane's modes: 0 table, 1 requantize, 2 relu, 3 linear
    localparam integer LMODE = (MODE == 0) ? 0 : (MODE == 1) ? 2 : (MODE == 2) ? 3 : 1;
    hg_act_lane #(.XW(IW), .OW(OW), .TOW(OW), .MODE(LMODE), .LEVELS(LEVELS), .CHW(CHW), .SHIFT(SHIFT),
        .RND(RND), .OVF(OVF), .OSIGNED(OSIGNED), .RELU(RELU), .TFILE(TFILE), .VFILE(VFILE))
        u_lane (.clk(clk), .x(x), .ch(chi[CHW-1:0]), .y(fx));
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

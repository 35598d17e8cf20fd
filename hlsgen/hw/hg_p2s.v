// hg_p2s: send a vector of N elements (EW bits, signed) as N AXI4-Stream words of DW bits
// (sign-extended).  A frame is ITEMS vectors (pixels of a feature map, or one vector); tlast
// marks the frame's last word.  The vector waits in an input register while the previous one
// is sent, so sending never pauses between vectors.
`default_nettype none
module hg_p2s #(
    parameter integer N  = 10,
    parameter integer EW = 8,
    parameter integer DW = 8,
    parameter integer KW = 4,
    parameter integer ITEMS = 1,
    parameter integer IW = 1  // bits of the item counter (holds ITEMS - 1)
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [N*EW-1:0] s_data,
    input  wire            s_valid,
    output wire            s_ready,
    output wire [DW-1:0]   m_data,
    output reg             m_valid,
    output wire            m_last,
    input  wire            m_ready
);
    reg [N*EW-1:0] xbuf, cur;
    reg xfull;
    reg [KW-1:0] k;
    wire done;
    assign s_ready = !xfull || done;  // an item enters as the held one moves on: one a cycle at N = 1
    wire [EW-1:0] elems [0:N-1];
    genvar j;
    generate
        for (j = 0; j < N; j = j + 1) begin : g_el
            assign elems[j] = cur[j*EW +: EW];
        end
    endgenerate
    wire [EW-1:0] e = elems[k];
    /* verilator lint_off UNUSEDSIGNAL */
    wire [DW+EW-1:0] ee = {{DW{e[EW-1]}}, e};
    /* verilator lint_on UNUSEDSIGNAL */
    assign m_data = ee[DW-1:0];
    wire lastk = (k == N[KW-1:0] - 1'b1);
    reg [IW-1:0] it;
    wire lasti = (it == ITEMS[IW-1:0] - 1'b1);
    assign m_last = lastk && lasti;
    assign done = !m_valid || (m_ready && lastk);  // no word pending after this cycle
    always @(posedge clk) begin
        if (rst) begin
            xfull <= 1'b0;
            m_valid <= 1'b0;
            k <= {KW{1'b0}};
            it <= {IW{1'b0}};
        end else begin
            if (m_valid && m_ready && !lastk) k <= k + 1'b1;
            if (m_valid && m_ready && lastk) it <= lasti ? {IW{1'b0}} : it + 1'b1;
            if (done) begin
                if (xfull) begin
                    cur <= xbuf;
                    xfull <= 1'b0;
                    m_valid <= 1'b1;
                    k <= {KW{1'b0}};
                end else begin
                    m_valid <= 1'b0;
                end
            end
            if (s_valid && s_ready) begin  // after the move above: a new item stays held
                xbuf <= s_data;
                xfull <= 1'b1;
            end
        end
    end
endmodule
`default_nettype wire

// hg_proc: the control of a fixed-latency stage.  An item is taken into the input register,
// moved to `work` when the stage is idle, and COST cycles later the stage's result (computed
// outside from `work`, e.g. by hg_pool_reduce or activation lanes) enters the output
// register as soon as it is free.  The next item moves to `work` in the cycle the result
// leaves, and an item may enter as the held one moves on: one item per COST cycles when never
// stalled (one a cycle at COST = 1).
`default_nettype none
module hg_proc #(
    parameter integer IW   = 8,
    parameter integer OW   = 8,
    parameter integer COST = 1,
    parameter integer CNW  = 1  // bits of the cycle counter (holds COST - 1)
) (
    input  wire          clk,
    input  wire          rst,
    input  wire [IW-1:0] s_data,
    input  wire          s_valid,
    output wire          s_ready,
    output reg  [OW-1:0] m_data,
    output reg           m_valid,
    input  wire          m_ready,
    output reg  [IW-1:0] work,
    input  wire [OW-1:0] result
);
    reg [IW-1:0] xbuf;
    reg xfull, busy;
    reg [CNW-1:0] cnt;
    wire fin = busy && (cnt == COST[CNW-1:0] - 1'b1);
    wire put = fin && (!m_valid || m_ready);
    wire start = xfull && (!busy || put);  // the held item starts as the last one's result leaves
    assign s_ready = !xfull || start;
    always @(posedge clk) begin
        if (s_valid && s_ready) xbuf <= s_data;
        if (start) work <= xbuf;
        if (put) m_data <= result;
        if (rst) begin
            xfull <= 1'b0;
            busy <= 1'b0;
            m_valid <= 1'b0;
            cnt <= {CNW{1'b0}};
        end else begin
            if (put) begin
                m_valid <= 1'b1;
                busy <= 1'b0;
            end else if (m_ready) begin
                m_valid <= 1'b0;
            end
            if (start) begin  // after the put: a new item keeps the stage busy
                xfull <= 1'b0;
                busy <= 1'b1;
                cnt <= {CNW{1'b0}};
            end else if (busy && !fin) begin
                cnt <= cnt + 1'b1;
            end
            if (s_valid && s_ready) xfull <= 1'b1;  // after the start, which empties the register
        end
    end
endmodule
`default_nettype wire

"""Which AXI4-Stream drivers the engine testbenches use: hlsgen's own (hlsgen/sim/axis.py, which
waits on value changes during long stalls) or cocotbext-axi's (a coroutine step every clock).
Sends the same 20,000 words through a 16-bit FIFO at full rate and with 30% bubbles and
stalls, and prints the wall time of each.

    python bench/tb_drivers.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(n: int = 20000):
    from hlsgen.assets import hw_file
    from hlsgen.simulate import verilator_runner

    work = Path(tempfile.mkdtemp(prefix="tb_drivers_"))
    top = work / "fifo_axis.v"
    top.write_text(
        """module fifo_axis (input wire clk, input wire rst,
    input wire [15:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready, input wire s_axis_tlast,
    output wire [15:0] m_axis_tdata, output wire m_axis_tvalid, input wire m_axis_tready, output wire m_axis_tlast);
    hg_fifo #(.W(17), .D(4), .AW(2), .NW(3)) u (.clk(clk), .rst(rst), .s_data({s_axis_tlast, s_axis_tdata}),
        .s_valid(s_axis_tvalid), .s_ready(s_axis_tready), .m_data({m_axis_tlast, m_axis_tdata}),
        .m_valid(m_axis_tvalid), .m_ready(m_axis_tready));
endmodule
"""
    )
    sys.path.insert(0, str(HERE))
    runner = verilator_runner()
    runner.build(sources=[hw_file("hg_fifo.v"), top], hdl_toplevel="fifo_axis", build_dir=work / "build")
    job, res = work / "job.json", work / "res.json"
    job.write_text(json.dumps({"n": n}))
    runner.test(
        hdl_toplevel="fifo_axis",
        test_module="tb_drivers_tb",
        build_dir=work / "build",
        test_dir=work,
        extra_env={"HLSGEN_BENCH": str(job), "HLSGEN_BENCH_OUT": str(res)},
    )
    for k, v in json.loads(res.read_text()).items():
        print(f"{k:28s} {v:6.2f} s for {n} words")


if __name__ == "__main__":
    main()

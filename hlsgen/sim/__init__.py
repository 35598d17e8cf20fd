"""cocotb testbenches of the generated engines (run inside the simulator by hlsgen.simulate)."""

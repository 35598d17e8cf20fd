"""Backends: render an engine plan as Verilog, HLS C++, memory images and project files."""

"""Sparse LSTM engine in the style of ESE (Han et al., FPGA 2017)."""

from .cycles import mac_cycles, sequence_cycles
from .plan import LstmPlan, decode, encode, memory_images, plan_lstm

__all__ = ["LstmPlan", "plan_lstm", "encode", "decode", "memory_images", "mac_cycles", "sequence_cycles"]

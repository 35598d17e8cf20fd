"""Compression steps whose result the hardware depends on (pruning for load balance)."""

from .prune import imbalance, lba_mask, magnitude_mask

__all__ = ["lba_mask", "magnitude_mask", "imbalance"]

"""Frontends: model files -> IR.  They never emit code."""

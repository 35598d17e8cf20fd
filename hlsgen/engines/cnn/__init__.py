"""The streaming CNN engine: plan (stages, folding, tiles), cycle model, checks."""

from .plan import CnnPlan, plan_cnn

__all__ = ["CnnPlan", "plan_cnn"]

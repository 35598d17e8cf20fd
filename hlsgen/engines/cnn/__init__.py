"""The streaming CNN engine: plan (stages, folding, tiles), cycle model, checks."""

from .engine import plan_cnn
from .plan import CnnPlan, plan_stages

__all__ = ["CnnPlan", "plan_cnn", "plan_stages"]

"""Analyses on the same engine: each runs its sweeps through the executors.

``refine`` adaptive sampling of a 2-D or 3-D box (one compiled call per
round); ``mesh`` where it samples next.
"""

from .refine import RefineResults, refine

__all__ = ["RefineResults", "refine"]

"""Analyses: the scientist's next step after a sweep, run on the same executors.

``sensitivity`` computes variance-based (Sobol) indices of every output
element from one Saltelli sweep; ``refine`` samples a 2-D or 3-D box
adaptively (one compiled call per round; ``mesh`` says where next). Analyses
build Spaces and run them through the public executors; nothing below the
command line imports them.
"""

from .refine import RefineResults, refine
from .sensitivity import sensitivity

__all__ = ["RefineResults", "refine", "sensitivity"]

"""Analyses: the scientist's next step after a sweep, run on the same executors.

``sensitivity`` computes variance-based (Sobol) indices of every output
element from one Saltelli sweep. Analyses build Spaces and run them through
the public executors; nothing below the command line imports them.
"""

from .sensitivity import sensitivity

__all__ = ["sensitivity"]

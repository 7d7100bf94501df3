"""Executors: run a Program (the model by default) over every combination of a Space.

``core`` the one run sequence and its options (``options``); ``program`` the
Program seam (what one lane computes); ``compiled`` the model as a function
of arrays and the cache of its programs; ``kernel`` the compiled block;
``plan`` the block size (and ``n_vmap="auto"``); ``explain`` the cost preview
of a run, ``executor.explain()``; ``loop`` the loop over blocks; ``errors`` what a
failure reports. ``sequential``, ``parallel`` and ``distributed`` (with
``cluster``, the workers' side) say only how a block is computed. What makes
a run the same run is :mod:`labeled_spaces.results.identity`'s.
"""

from ..results import ParallelResult, SequentialResult
from .distributed import DaskExecution
from .errors import Interrupted, ModelError
from .explain import Explanation
from .parallel import ParallelExecution
from .program import Labels, Program
from .sequential import SequentialExecution

__all__ = [
    "DaskExecution",
    "Explanation",
    "Interrupted",
    "Labels",
    "ModelError",
    "ParallelExecution",
    "ParallelResult",
    "Program",
    "SequentialExecution",
    "SequentialResult",
]

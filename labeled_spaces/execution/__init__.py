"""Executors: run a model over every combination of a Space.

``sequential``, ``parallel`` (and ``distributed``) are the loops' set-ups;
``loop`` the one loop they share; ``compiled`` the model as a function of
arrays and the cache of its programs; ``kernel`` the compiled block;
``plan`` the block size; ``errors`` what a failure reports; ``options``
keyword checks; ``setup`` output labels, sink and progress bar.
"""

from ..results import ParallelResult, SequentialResult
from .distributed import DaskExecution
from .errors import Interrupted, ModelError
from .parallel import ParallelExecution
from .sequential import SequentialExecution

__all__ = [
    "DaskExecution",
    "Interrupted",
    "ModelError",
    "ParallelExecution",
    "ParallelResult",
    "SequentialExecution",
    "SequentialResult",
]

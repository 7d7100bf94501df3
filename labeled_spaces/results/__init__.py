"""Results: where outputs go (sinks) and how they are labeled, held and saved.

``names`` the labels of outputs; ``results`` the Results class; ``sink`` the
Sink protocol and the in-memory sink; ``store`` the zarr sink; ``netcdf``
writing netCDF; ``files`` ``open_results``. Every attrs key they write is in
:mod:`labeled_spaces._schema`.
"""

from .files import open_results
from .names import COMPUTED, Outputs, output_names
from .results import ParallelResult, Results, SequentialResult
from .sink import MemorySink, Sink

__all__ = [
    "COMPUTED",
    "MemorySink",
    "Outputs",
    "ParallelResult",
    "Results",
    "SequentialResult",
    "Sink",
    "open_results",
    "output_names",
]

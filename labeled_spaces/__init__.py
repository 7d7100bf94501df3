"""labeled_spaces: sweep JAX models over parameter spaces, get labeled xarray results back.

Examples
--------
>>> import labeled_spaces as ls
>>> space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 3), "dt": 0.1}, mode="product")
>>> space.sizes
{'coupling': 3}
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labeled_spaces")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from ._caches import clear_caches
from .analysis import FitResults, RefineResults, fit, gradients, refine, sensitivity
from .axes import (
    AbstractAxis,
    DataAxis,
    GridAxis,
    KeyAxis,
    LogGridAxis,
    NumPyroAxis,
    PointKey,
    UniformAxis,
    axis_from_spec,
)
from .execution import (
    DaskExecution,
    Explanation,
    Interrupted,
    Labels,
    ModelError,
    ParallelExecution,
    ParallelResult,
    Program,
    SequentialExecution,
    SequentialResult,
)
from .results import Results, open_results
from .space import SelectionError, Space

__all__ = [
    "AbstractAxis",
    "DaskExecution",
    "DataAxis",
    "Explanation",
    "FitResults",
    "GridAxis",
    "Interrupted",
    "KeyAxis",
    "Labels",
    "LogGridAxis",
    "ModelError",
    "NumPyroAxis",
    "ParallelExecution",
    "ParallelResult",
    "PointKey",
    "Program",
    "RefineResults",
    "Results",
    "SequentialExecution",
    "SequentialResult",
    "SelectionError",
    "Space",
    "UniformAxis",
    "__version__",
    "axis_from_spec",
    "clear_caches",
    "fit",
    "gradients",
    "open_results",
    "refine",
    "sensitivity",
]

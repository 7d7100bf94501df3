"""Analyses: the scientist's next step after a sweep, run on the same executors.

``sensitivity`` computes variance-based (Sobol) indices of every output
element from one Saltelli sweep (``sobol`` holds the estimators);
``refine`` samples a 2-D or 3-D box adaptively (one compiled call per
round; ``mesh`` says where next, ``refined`` holds what it returns);
``gradients`` maps derivatives over a space and ``fit`` runs multi-start
fits. ``gradients`` and ``fit`` are Programs (a lane that calls the model at
axis values of its choosing, and the labels it adds) that the executors run
with ``program=`` (:mod:`.program`); ``parameters`` finds the axes an
analysis can use. Every analysis runs its sweeps through the public
executors, so stores, resume, ``n_vmap``, sharding and dask work as for a
plain run; nothing below the command line imports them.
"""

from .fit import FitResults, fit
from .gradients import gradients
from .refine import RefineResults, refine
from .sensitivity import sensitivity

__all__ = ["FitResults", "RefineResults", "fit", "gradients", "refine", "sensitivity"]

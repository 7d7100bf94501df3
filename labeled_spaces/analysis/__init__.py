"""Analyses on the executors: gradient maps and multi-start fits (and more).

Each analysis turns the model into a lane function of one combination's
state plus the labels it adds (:mod:`.program`), and runs it through the
executors, so stores, resume, ``n_vmap``, sharding and dask work as for a
plain run. ``parameters`` finds the axes an analysis can use.
"""

from .fit import FitResults, fit
from .gradients import gradients

__all__ = ["FitResults", "fit", "gradients"]

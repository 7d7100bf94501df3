"""Real models for demos, notebooks and benchmarks.

``kuramoto``: a stochastic Kuramoto network on a random connectome;
``connectome``: the connectomes of the ``tvb-data`` package;
``delayed_kuramoto``: the same network with conduction delays, on a real
connectome; ``demo``: the settings of the ``labeled-spaces demo`` sweep.

Examples
--------
>>> from labeled_spaces.examples import kuramoto, make_state
>>> out = kuramoto(make_state(n_nodes=8), n_steps=200)
>>> sorted(out)
['R_t', 'order']
"""

from .connectome import Connectome, available_connectomes, load_connectome
from .delayed_kuramoto import (
    delayed_kuramoto,
    functional_connectivity,
    make_demo_state,
    record_times,
)
from .demo import DemoSweep, demo_sweep
from .kuramoto import kuramoto, make_connectome, make_frequencies, make_state, order_parameter

__all__ = [
    "Connectome",
    "DemoSweep",
    "available_connectomes",
    "delayed_kuramoto",
    "demo_sweep",
    "functional_connectivity",
    "kuramoto",
    "load_connectome",
    "make_connectome",
    "make_demo_state",
    "make_frequencies",
    "make_state",
    "order_parameter",
    "record_times",
]

"""Real models for demos, notebooks and benchmarks.

Examples
--------
>>> from labeled_spaces.examples import kuramoto, make_state
>>> out = kuramoto(make_state(n_nodes=8), n_steps=200)
>>> sorted(out)
['R_t', 'order']
"""

from .kuramoto import kuramoto, make_connectome, make_frequencies, make_state, order_parameter

__all__ = ["kuramoto", "make_connectome", "make_frequencies", "make_state", "order_parameter"]

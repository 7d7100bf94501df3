"""The settings of the ``labeled-spaces demo`` sweep: coupling x noise on a real connectome.

The model is :func:`labeled_spaces.examples.delayed_kuramoto.delayed_kuramoto`
on the Desikan-Killiany connectome of ``tvb-data``
(:func:`labeled_spaces.examples.connectome.load_connectome`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .connectome import Connectome
from .delayed_kuramoto import make_demo_state, record_times

__all__ = ["DemoSweep", "demo_sweep"]


@dataclass(frozen=True)
class DemoSweep:
    """The settings of the demo's coupling x noise sweep (see :func:`demo_sweep`).

    Attributes
    ----------
    coupling, noise : tuple of (float, float, int)
        ``(start, stop, num)`` of the evenly spaced grids of ``K`` (rad/ms)
        and ``sigma`` (rad/sqrt(ms)), end points included.
    n_steps, dt, n_record, transient
        Keyword arguments of :func:`delayed_kuramoto`.
    speed : float
        Conduction speed (m/s) for :func:`make_demo_state`.
    """

    coupling: tuple[float, float, int]
    noise: tuple[float, float, int]
    n_steps: int
    dt: float
    n_record: int
    transient: float
    speed: float = 5.0

    @property
    def size(self) -> int:
        """Number of combinations of the product grid."""
        return self.coupling[2] * self.noise[2]

    @property
    def duration(self) -> float:
        """Simulated time per combination, in ms."""
        return self.n_steps * self.dt

    def state(self, connectome: Connectome) -> dict[str, Any]:
        """:func:`make_demo_state` at this speed and ``dt``; put the axes in yourself."""
        return make_demo_state(connectome, speed=self.speed, dt=self.dt)

    def model_kwargs(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of :func:`delayed_kuramoto`, ``max_delay`` from ``state``."""
        delays = state.get("delays")
        return {
            "n_steps": self.n_steps,
            "dt": self.dt,
            "n_record": self.n_record,
            "transient": self.transient,
            "max_delay": None if delays is None else int(np.max(delays)),
        }

    def times(self) -> np.ndarray:
        """Recorded times (ms) of ``R_t``: :func:`record_times` of this schedule."""
        return record_times(self.n_steps, self.dt, self.n_record)


def demo_sweep(small: bool = False) -> DemoSweep:
    """The coupling x noise sweep of ``labeled-spaces demo``, sized for two CPU cores.

    On ``connectivity_68`` with 5 m/s conduction (delays up to 51 ms, 16 ms on
    average over the tracts, 10 ms weighted by strength) and 10 +- 1 Hz
    natural frequencies, ``R`` stays at the finite-size level of incoherence
    (about 0.1) at ``K = 0``, reaches 0.5 near ``K = 0.1`` rad/ms without
    noise and saturates below 1 (about 0.9 at ``K = 0.5``): the delays leave
    phase lags between distant regions. Noise moves the rise to stronger
    coupling (``K`` about 0.4 at ``sigma = 0.5``) and flattens it. The
    default grid is 51 x 11 combinations of 3 s of simulated time;
    ``small=True`` is 21 x 6 combinations of 2 s.

    Parameters
    ----------
    small : bool, default False
        The quick variant (``--small``).

    Returns
    -------
    DemoSweep

    Examples
    --------
    >>> from labeled_spaces.examples.demo import demo_sweep
    >>> sweep = demo_sweep()
    >>> sweep.coupling, sweep.noise, sweep.size, sweep.duration
    ((0.0, 0.5, 51), (0.0, 0.5, 11), 561, 3000.0)
    >>> small = demo_sweep(small=True)
    >>> small.size, small.duration, small.times()[:2].tolist()
    (126, 2000.0, [10.0, 20.0])
    """
    if small:
        return DemoSweep(coupling=(0.0, 0.5, 21), noise=(0.0, 0.5, 6), n_steps=4000, dt=0.5,
                         n_record=200, transient=0.25)
    return DemoSweep(coupling=(0.0, 0.5, 51), noise=(0.0, 0.5, 11), n_steps=6000, dt=0.5,
                     n_record=300, transient=0.25)

"""The ``labeled-spaces demo`` sweep: coupling x noise on a real connectome.

The model is :func:`labeled_spaces.examples.delayed_kuramoto.delayed_kuramoto`
on the Desikan-Killiany connectome of ``tvb-data``
(:func:`labeled_spaces.examples.connectome.load_connectome`). The settings
are :func:`demo_sweep`; :func:`run_demo` runs them into a resumable store,
exports netCDF and draws the figure; the figure and the printed summary are
:mod:`labeled_spaces.examples.figures`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._format import format_duration
from ..axes import GridAxis
from ..execution import ParallelExecution
from ..results import Results, open_results
from ..results.store import DONE
from ..space import Space
from .connectome import Connectome, load_connectome
from .delayed_kuramoto import delayed_kuramoto, make_demo_state, record_times
from .figures import plot_demo, summarize_demo

__all__ = ["DemoRun", "DemoSweep", "demo_sweep", "run_demo"]

logger = logging.getLogger("labeled_spaces")

# units of the model's parameters and outputs (see delayed_kuramoto's docstring)
COUPLING_ATTRS = {"units": "rad/ms", "long_name": "global coupling K"}
NOISE_ATTRS = {"units": "rad/sqrt(ms)", "long_name": "noise amplitude sigma"}
OUTPUT_ATTRS = {
    "order": {"units": "1", "long_name": "Kuramoto order parameter R, mean after the transient"},
    "R_t": {"units": "1", "long_name": "Kuramoto order parameter R(t)"},
    "fc": {"units": "1", "long_name": "functional connectivity (correlation of sin theta)"},
}


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
    def chunk_size(self) -> int:
        """Combinations per block: six blocks, so the progress bar moves and a rerun resumes.

        This model runs as fast in blocks of a sixth of the sweep as in one
        (measured: 5.8 s against 6.1 s for the default grid at 1,200 steps).
        """
        return -(-self.size // 6)

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

    def space(self, connectome: Connectome) -> Space:
        """The product Space: :meth:`state` with the coupling and noise grids as axes.

        Both axes carry ``units`` and ``long_name`` attrs, which end up on the
        coordinates of the results.

        Examples
        --------
        >>> from labeled_spaces.examples.connectome import load_connectome
        >>> from labeled_spaces.examples.demo import demo_sweep
        >>> space = demo_sweep(small=True).space(load_connectome())
        >>> space.sizes, space.coords["coupling"].attrs["units"]
        ({'coupling': 21, 'noise': 6}, 'rad/ms')
        """
        state = self.state(connectome)
        state["coupling"] = GridAxis(*self.coupling, attrs=COUPLING_ATTRS)
        state["noise"] = GridAxis(*self.noise, attrs=NOISE_ATTRS)
        return Space(state, mode="product")

    def output_labels(self, connectome: Connectome) -> dict[str, Any]:
        """``output_dims``, ``output_coords`` and ``output_attrs`` for the executor.

        ``R_t`` runs along ``time`` (ms, :meth:`times`); ``fc`` is
        ``(region, region_to)``, both labeled by the connectome's region names.

        Examples
        --------
        >>> from labeled_spaces.examples.connectome import load_connectome
        >>> from labeled_spaces.examples.demo import demo_sweep
        >>> labels = demo_sweep(small=True).output_labels(load_connectome())
        >>> labels["output_dims"]["fc"], labels["output_coords"]["time"][1]["units"]
        (('region', 'region_to'), 'ms')
        """
        region = {"long_name": f"brain region ({connectome.name})"}
        return {
            "output_dims": {"R_t": ("time",), "fc": ("region", "region_to")},
            "output_coords": {
                "time": (self.times(), {"units": "ms", "long_name": "time"}),
                "region": (connectome.labels, region),
                "region_to": (connectome.labels, region),
            },
            "output_attrs": OUTPUT_ATTRS,
        }


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


@dataclass(frozen=True)
class DemoRun:
    """What :func:`run_demo` made.

    Attributes
    ----------
    sweep : DemoSweep
        The settings that ran.
    connectome : Connectome
        The network it ran on.
    results : Results
        The results, lazily read from the store.
    store, netcdf, figure : pathlib.Path
        ``demo.zarr``, ``demo.nc`` and ``demo.png`` in the output folder.
    stored_before : int
        Combinations the store already held when the run began (0 for a new
        store; ``sweep.size`` when a finished sweep was run again).
    seconds : float
        Wall time of the sweep itself (not the export and the figure).
    """

    sweep: DemoSweep
    connectome: Connectome
    results: Results
    store: Path
    netcdf: Path
    figure: Path
    stored_before: int
    seconds: float

    def summary(self) -> str:
        """The printed summary (:func:`.figures.summarize_demo`), with a title and the files."""
        ran = ("all already in the store" if self.stored_before == self.sweep.size
               else f"swept in {format_duration(self.seconds)}")
        title = (f"delayed Kuramoto model on {self.connectome.name} "
                 f"({self.connectome.n_regions} regions): "
                 f"{self.sweep.size} combinations of {self.sweep.duration:g} ms, {ran}")
        if self.stored_before:
            resumed = (f"resumed: {self.stored_before} of {self.sweep.size} combinations were "
                       "already stored")
        else:
            resumed = "a new store"
        files = {self.store: f"zarr store ({resumed})",
                 self.netcdf: "netCDF (labeled_spaces.open_results or xarray.open_dataset)",
                 self.figure: "figure: order against coupling per noise level, fc"}
        return summarize_demo(self.results.to_xarray(), title=title, files=files)


def _readable(store: Path) -> Results:
    """The results in the demo's store, every value read once, or a ``ValueError``.

    A store damaged on disk (a corrupt chunk, a missing array, garbage
    metadata) fails inside zarr, numcodecs or JSON with their own errors
    (``RuntimeError``, ``KeyError``); reading the whole store (a few MB) and
    looking for every array a resumed run writes into, before resuming, turns
    any of them into one message that names the store and what to do.
    """
    import zarr

    fix = "remove it to run the demo afresh, or give another folder"
    try:
        before = open_results(store)
        before.to_xarray().load()
        # what a resumed run writes into: each output and the done mask, by their own metadata
        group = zarr.open_group(str(store), mode="r", use_consolidated=False)
        missing = [name for name in (*OUTPUT_ATTRS, DONE) if name not in group]
    except (ValueError, TypeError):  # ours already say what is wrong with the store
        raise
    except Exception as err:  # noqa: BLE001 - any failure to read means a damaged store
        what = " ".join(str(err).split()) or "no message"
        raise ValueError(f"{str(store)!r} is damaged and cannot be read "
                         f"({type(err).__name__}: {what}); {fix}") from err
    if missing:
        raise ValueError(f"{str(store)!r} is damaged: it lacks the arrays {missing} that the "
                         f"demo writes; {fix}")
    return before


def run_demo(out: str | os.PathLike = "labeled_spaces_demo", small: bool = False,
             progress: bool = True) -> DemoRun:
    """Run the demo sweep into ``out/demo.zarr``, export ``out/demo.nc``, draw ``out/demo.png``.

    The sweep of :func:`demo_sweep` on ``connectivity_68`` streams into the
    store block by block, so running again resumes where a previous run
    stopped (a finished store is not computed again). The export and the
    figure are made afresh each time.

    Parameters
    ----------
    out : str or path-like, default "labeled_spaces_demo"
        The output folder, created if missing.
    small : bool, default False
        The quick variant of :func:`demo_sweep`.
    progress : bool, default True
        The executor's progress bar (shown for runs of more than one block).

    Returns
    -------
    DemoRun

    Raises
    ------
    ValueError
        If ``out/demo.zarr`` holds another sweep (e.g. the other size), or is
        damaged (cannot be read whole).
    OSError
        If ``out`` cannot be created or written.

    Examples
    --------
    ``labeled-spaces demo --small --out runs`` is (about 15 s on two CPU cores)

    >>> from labeled_spaces.examples.demo import run_demo
    >>> run = run_demo("runs", small=True)  # doctest: +SKIP
    >>> print(run.summary())  # doctest: +SKIP
    delayed Kuramoto model on connectivity_68 (68 regions): 126 combinations of 2000 ms, ...
    """
    folder = Path(os.fspath(out))
    folder.mkdir(parents=True, exist_ok=True)
    sweep = demo_sweep(small)
    connectome = load_connectome("connectivity_68")
    space = sweep.space(connectome)
    store, netcdf, figure = (folder / name for name in ("demo.zarr", "demo.nc", "demo.png"))
    stored_before = 0
    if store.exists():
        before = _readable(store)
        if before.space.sizes != space.sizes:  # the likely mix-up, said in a few words
            twin = demo_sweep(not small)
            other = ("another sweep" if before.space.sizes != {
                "coupling": twin.coupling[2], "noise": twin.noise[2]}
                else "the default demo" if small else "the small demo (--small)")
            raise ValueError(
                f"{str(store)!r} holds {other} ({before.space.sizes}), not this one "
                f"({space.sizes}); give another folder, or remove the store")
        stored_before = len(before) if before.done is None else int(np.sum(before.done))
    if not stored_before:  # a resumed store says so itself ("resuming: K of M blocks ...")
        logger.info("running %d combinations of %g ms into %s", space.N, sweep.duration, store)
    start = time.perf_counter()
    results = ParallelExecution(
        delayed_kuramoto, space, **sweep.model_kwargs(sweep.state(connectome)),
        **sweep.output_labels(connectome), store=str(store), progress=progress,
        chunk_size=sweep.chunk_size,
    ).run()
    seconds = time.perf_counter() - start
    logger.info("sweep done in %s; exporting %s", format_duration(seconds), netcdf)
    results.to_netcdf(netcdf)
    plot_demo(results.to_xarray(), figure)
    logger.info("drew %s", figure)
    return DemoRun(sweep, connectome, results, store, netcdf, figure, stored_before,
                   seconds)

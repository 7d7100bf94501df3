"""Sweep a Kuramoto network over coupling x noise and save the labeled results.

An example script (the main job is ``labeled-spaces demo``, on a real connectome)::

    python examples/sweep.py              # writes ./sweep_results.nc
    python examples/sweep.py --out runs/  # writes runs/sweep_results.nc

It builds a 16 x 8 product Space over the global coupling ``K`` and the noise
amplitude ``sigma`` of a 68-node stochastic Kuramoto network
(:mod:`labeled_spaces.examples.kuramoto`), runs every combination with
:class:`labeled_spaces.ParallelExecution` at its default settings (one
compiled ``jit(vmap(model))`` call per block of combinations), prints a short
summary and saves the results as netCDF. Open them anywhere with::

    import xarray as xr
    ds = xr.open_dataset("sweep_results.nc")
    ds["order"].sel(noise=0.0).plot()

It takes a few seconds on two CPU cores, most of it compiling the model.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from labeled_spaces import GridAxis, ParallelExecution, Results, Space
from labeled_spaces.examples import kuramoto, make_state

logger = logging.getLogger("labeled_spaces.examples.sweep")

FILENAME = "sweep_results.nc"


def build_space(n_coupling: int = 16, n_noise: int = 8, n_nodes: int = 68) -> Space:
    """The coupling x noise product space of the sweep.

    Parameters
    ----------
    n_coupling, n_noise : int
        Grid points of ``K`` in ``[0, 6]`` and of ``sigma`` in ``[0, 2]``.
    n_nodes : int
        Size of the network.

    Returns
    -------
    Space

    Examples
    --------
    >>> build_space(4, 2, n_nodes=8).sizes
    {'coupling': 4, 'noise': 2}
    """
    state = make_state(
        n_nodes=n_nodes,
        coupling=GridAxis(0.0, 6.0, n_coupling, attrs={"long_name": "global coupling K"}),
        noise=GridAxis(0.0, 2.0, n_noise, attrs={"long_name": "noise amplitude sigma"}),
    )
    return Space(state, mode="product")


def summarize(results: Results) -> str:
    """A few lines that describe the sweep's results.

    Parameters
    ----------
    results : Results
        What ``ParallelExecution(kuramoto, build_space()).run()`` returned.

    Returns
    -------
    str
    """
    ds = results.to_xarray()
    order = ds["order"]
    best = order.where(order == order.max(), drop=True)
    lines = [
        f"dims: {dict(order.sizes)}",
        f"outputs: {', '.join(f'{k} {tuple(v.dims)}' for k, v in ds.data_vars.items())}",
        f"highest synchrony R = {float(order.max()):.3f} at coupling = "
        f"{float(best['coupling'][0]):.2f}, noise = {float(best['noise'][0]):.3f}",
        "",
        "coupling that first reaches R >= 0.5, per noise level:",
    ]
    for noise in order["noise"].values:
        # the example results.sel(noise=...) in action: a labeled 1-D slice
        curve = order.sel(noise=noise)
        above = curve["coupling"].where(curve >= 0.5, drop=True)
        critical = f"{float(above[0]):.2f}" if above.size else "not reached"
        lines.append(f"  noise = {noise:.3f}: coupling = {critical}")
    at = results.sel(coupling=3.2, noise=0.0)["order"]
    lines += ["", f"results.sel(coupling=3.2, noise=0.0)['order'] = {float(at):.3f}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, print the summary, save ``sweep_results.nc``; return the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("."),
        help=f"folder to write {FILENAME} into (created if missing; default: .)",
    )
    parser.add_argument("--n-steps", type=int, default=2000,
                        help="Euler-Maruyama steps per simulation (default 2000)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    # progress of this package (and of this script) at INFO; everything else, warnings only
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("labeled_spaces").setLevel(logging.WARNING if args.quiet else logging.INFO)

    space = build_space()
    logger.info("sweeping %d combinations:\n%r", len(space), space)
    start = time.perf_counter()
    results = ParallelExecution(kuramoto, space, n_steps=args.n_steps,
                                output_dims={"R_t": ("time",)}).run()
    logger.info("ran %d simulations in %.1f s", len(results), time.perf_counter() - start)

    if not np.isfinite(results["order"].values).all():
        logger.error("the sweep produced non-finite values")
        return 1
    print(summarize(results))

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / FILENAME
    results.to_netcdf(path)
    print(f"\nsaved {path}  (open with xarray.open_dataset)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What refine returns: the points of every round, their box, and the map onto a grid.

:class:`Box` holds the refined axes (names, bounds, log scales) and maps
axis values to the unit box and back; :class:`RefineResults` are the
Results over one ``point`` dimension, with the round of every point and
:meth:`RefineResults.to_grid`, a linear interpolation onto a regular
labeled grid (``scipy.interpolate.LinearNDInterpolator`` over the Delaunay
mesh of the points).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import Delaunay

from .._checks import check_int, fail, name_list, warn_user
from ..results import Results

__all__ = ["ROUND", "Box", "RefineResults"]

#: the coordinate on ``point`` that holds the round each point was computed in
ROUND = "round"


@dataclasses.dataclass(frozen=True)
class Box:
    """The refined axes: names, bounds and scales, and the map to the unit box."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    log: np.ndarray  # bool per axis

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Axis values ``(n, d)`` as points of the unit box."""
        low, high = self._ends()
        x = np.where(self.log, np.log(np.where(self.log, values, 1.0)), values)
        return (x - low) / (high - low)

    def from_unit(self, points: np.ndarray) -> np.ndarray:
        """Points of the unit box ``(n, d)`` as axis values."""
        low, high = self._ends()
        x = low + np.clip(points, 0.0, 1.0) * (high - low)
        return np.where(self.log, np.exp(x), x)

    def _ends(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.where(self.log, np.log(np.where(self.log, self.low, 1.0)), self.low),
                np.where(self.log, np.log(np.where(self.log, self.high, 1.0)), self.high))


class RefineResults(Results):
    """The Results of :func:`refine`: one ``point`` dimension, and :meth:`to_grid`.

    Besides what every :class:`~labeled_spaces.Results` has, ``box`` holds
    the refined axes (names, bounds, log scales) and ``rounds`` the round
    each point was computed in (0: the space's grid), also the coordinate
    ``round`` on ``point``.
    """

    box: Box
    rounds: np.ndarray

    def to_xarray(self) -> xr.Dataset:
        """As :meth:`Results.to_xarray`, with the coordinate ``round`` on ``point``.

        Where the model has an output named ``round`` the coordinate is left
        out, with a warning (the rounds stay in :attr:`rounds`): it would
        replace that output.
        """
        ds = super().to_xarray()
        if ROUND in ds.variables or ROUND in ds.dims:
            warn_user(f"an output of the model is named {ROUND!r}: the coordinate "
                      f"{ROUND!r} (each point's round) is left out of the Dataset; "
                      "results.rounds holds it")
            return ds
        return ds.assign_coords({ROUND: (self.space.dims[0], self.rounds)})

    def to_grid(self, variables: str | Sequence[str] | None = None, **sizes: int
                ) -> xr.Dataset:
        """The outputs interpolated linearly onto a regular grid spanning the axes' bounds.

        Parameters
        ----------
        variables : str or sequence of str, optional
            The outputs to interpolate, by name (``"edge.step"`` for a nested
            one; default: all). Leave out large ones you do not need: a 68 x 68
            matrix per point makes a 200 x 200 grid of 1.5 GB.
        **sizes : int
            Points per axis, by axis name (at least 2; default 100 for each
            axis not named). A ``LogGridAxis`` gets log-spaced points.

        Returns
        -------
        xarray.Dataset
            One variable per output chosen, dims ``(*axis names, *output dims)``,
            the grid values as coordinates (with the axes' attrs). Interpolation is linear over the
            Delaunay mesh of the points in the unit box (log scale for log
            axes); outside the points' hull (random ``UniformAxis`` draws
            need not reach the bounds) values are NaN.

        Raises
        ------
        ValueError
            ``variables`` is empty or names no output; a size names no axis or
            is below 2.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> from labeled_spaces import GridAxis, Space, refine
        >>> space = Space({"x": GridAxis(-1.0, 1.0, 5), "y": GridAxis(-1.0, 1.0, 5)},
        ...               mode="product")
        >>> def model(s):
        ...     r2 = s["x"] ** 2 + s["y"] ** 2
        ...     return {"edge": jnp.tanh((r2 - 0.5) / 0.05), "r2": r2}
        >>> results = refine(model, space, n=60, batch=16, output="edge")
        >>> grid = results.to_grid(x=30, y=20)
        >>> grid["edge"].dims, grid["edge"].shape, sorted(grid.data_vars)
        (('x', 'y'), (30, 20), ['edge', 'r2'])
        >>> list(results.to_grid("r2", x=30, y=20).data_vars)
        ['r2']
        """
        names = self.box.names
        unknown = sorted(set(sizes) - set(names))
        if unknown:
            fail("sizes", f"keywords naming the refined axes {list(names)}", unknown)
        counts = [check_int(name, sizes.get(name, 100), minimum=2) for name in names]
        ds = self.to_xarray()
        chosen = _chosen(variables, [str(v) for v in ds.data_vars])
        ticks = [np.linspace(0.0, 1.0, c) for c in counts]
        nodes = np.stack(np.meshgrid(*ticks, indexing="ij"), axis=-1).reshape(-1, len(names))
        point = self.space.dims[0]
        mesh = Delaunay(self.box.to_unit(_coordinates(ds, names)))
        data = {}
        for var in chosen:
            array = ds[var]
            values = np.asarray(array.values)
            if values.dtype.kind in "biu":
                values = values.astype(np.float64)
            flat = values.reshape(len(values), -1)
            grid = LinearNDInterpolator(mesh, flat)(nodes)
            data[var] = xr.Variable((*names, *array.dims[1:]),
                                    grid.reshape((*counts, *values.shape[1:])), array.attrs)
        coords: dict[str, Any] = {  # the axes' attrs (units, long_name) label the plots
            name: xr.Variable(name, self.box.from_unit(
                np.repeat(ticks[a][:, None], len(names), axis=1))[:, a], ds.coords[name].attrs)
            for a, name in enumerate(names)}
        used = {d for v in data.values() for d in v.dims}  # no dims of outputs left out
        coords.update({str(c): ds.coords[c].variable for c in ds.coords
                       if point not in ds.coords[c].dims and set(ds.coords[c].dims) <= used})
        return xr.Dataset(data, coords=coords)


def _chosen(variables: str | Sequence[str] | None, outputs: list[str]) -> list[str]:
    """The outputs that ``variables`` names (all for None), in the order given."""
    if variables is None:
        return outputs
    chosen = name_list("variables", variables,
                       "None, an output name or a sequence of output names")
    if not chosen:
        fail("variables", f"None or at least one of the outputs {outputs}", variables)
    unknown = [v for v in chosen if v not in outputs]
    if unknown:
        fail("variables", f"names of the outputs {outputs}", variables,
             detail=f" ({', '.join(map(repr, unknown))} not among them)")
    return list(dict.fromkeys(chosen))


def _coordinates(ds: xr.Dataset, names: Sequence[str]) -> np.ndarray:
    return np.stack([np.asarray(ds.coords[name].values, dtype=np.float64) for name in names],
                    axis=1)

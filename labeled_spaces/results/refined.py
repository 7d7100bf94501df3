"""What refine returns: the points of every round, their box, and the map onto a grid.

:class:`Box` holds the refined axes (names, bounds, log scales) and maps
axis values to the unit box and back; :class:`Refinement` is how a
refinement was asked for (the box, the first round's size, ``batch``,
``n``, the driving output), kept in the ``labeled_spaces:refine`` attr of
its Dataset, so a store or file of refine's results reopens as them
(``open_results``); :class:`RefineResults` are the Results over one
``point`` dimension, with the round of every point and
:meth:`RefineResults.to_grid`, a linear interpolation onto a regular
labeled grid (``scipy.interpolate.LinearNDInterpolator`` over the Delaunay
mesh of the points). They live beside the other Results (not with the
analysis that makes them) so that ``open_results`` can rebuild them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import Delaunay, QhullError

from .._checks import check_int, fail, name_list, warn_user
from .._format import format_count
from .._schema import REFINE_ATTR, REFINE_FORMAT, read_entry
from .results import Results

__all__ = ["POINT", "ROUND", "Box", "RefineResults", "Refinement", "file_rounds"]

#: the dimension of refine's points
POINT = "point"
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


def _bad(what: str, value: Any) -> ValueError:
    return ValueError(f"attrs entry {REFINE_ATTR} must hold {what}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Refinement:
    """How a refinement was asked for: what makes two runs of refine the same.

    Attributes
    ----------
    box : Box
        The refined axes.
    grid : int
        Points of the first round (the space's grid).
    batch : int
        Points per later round (the last may have fewer).
    n : int
        Points in all.
    output : str or None
        The output that drives the refinement (None: the only one).

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.results.refined import Box, Refinement
    >>> box = Box(("x", "y"), np.zeros(2), np.ones(2), np.zeros(2, bool))
    >>> asked = Refinement(box, grid=25, batch=20, n=80, output=None)
    >>> asked.rounds_of(np.array([0, 24, 25, 44, 45, 79])).tolist()
    [0, 0, 1, 1, 2, 3]
    >>> Refinement.from_json(asked.to_json()) == asked
    True
    >>> asked.differences(Refinement(box, grid=25, batch=30, n=80, output=None))
    ['batch: 20 -> 30']
    """

    box: Box
    grid: int
    batch: int
    n: int
    output: str | None

    def fields(self) -> dict[str, Any]:
        """Every field as plain JSON values (names, numbers, flags): how it is saved."""
        return {"axes": list(self.box.names), "low": [float(v) for v in self.box.low],
                "high": [float(v) for v in self.box.high],
                "log": [bool(v) for v in self.box.log], "grid": int(self.grid),
                "batch": int(self.batch), "n": int(self.n), "output": self.output}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Refinement) and self.fields() == other.fields()

    def __hash__(self) -> int:
        return hash(json.dumps(self.fields()))

    def to_json(self) -> str:
        """The ``labeled_spaces:refine`` attr: JSON of plain numbers, names and flags."""
        return json.dumps({"format": REFINE_FORMAT, **self.fields()})

    @classmethod
    def from_json(cls, text: Any) -> Refinement:
        """The Refinement an attr describes, after checking every field (a file is data).

        Raises
        ------
        ValueError
            For an entry that is not such a description, naming what is wrong.
        """
        entry = read_entry({REFINE_ATTR: text}, REFINE_ATTR)
        if not isinstance(entry, Mapping) or entry.get("format") != REFINE_FORMAT:
            raise _bad(f"an object of format {REFINE_FORMAT}", entry)
        names = entry.get("axes")
        if not isinstance(names, list) or len(names) not in (2, 3) or \
                not all(isinstance(n, str) for n in names):
            raise _bad("the names of 2 or 3 axes under 'axes'", names)
        bounds = []
        for key in ("low", "high"):
            values = entry.get(key)
            if not isinstance(values, list) or len(values) != len(names) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in values):
                raise _bad(f"{len(names)} finite numbers under {key!r}", values)
            bounds.append(np.array(values, dtype=np.float64))
        log = entry.get("log")
        if not isinstance(log, list) or len(log) != len(names) or \
                not all(isinstance(v, bool) for v in log):
            raise _bad(f"{len(names)} booleans under 'log'", log)
        counts = []
        for key in ("grid", "batch", "n"):
            value = entry.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _bad(f"a positive integer under {key!r}", value)
            counts.append(value)
        output = entry.get("output")
        if output is not None and not isinstance(output, str):
            raise _bad("None or an output name under 'output'", output)
        box = Box(tuple(names), bounds[0], bounds[1], np.array(log, dtype=bool))
        return cls(box, counts[0], counts[1], counts[2], output)

    def differences(self, other: Refinement) -> list[str]:
        """What ``other`` asks for that this does not, as ``"n: 80 -> 100"``."""
        mine, theirs = self.fields(), other.fields()
        return [f"{key}: {mine[key]!r} -> {theirs[key]!r}" for key in mine
                if mine[key] != theirs[key]]

    def rounds_of(self, positions: np.ndarray) -> np.ndarray:
        """The round of the points at ``positions`` along ``point`` (0: the grid)."""
        positions = np.asarray(positions, dtype=np.int64)
        later = 1 + (positions - self.grid) // self.batch
        return np.where(positions < self.grid, 0, later).astype(np.int64)


def file_rounds(refinement: Refinement, space: Any, ds: xr.Dataset) -> np.ndarray:
    """The round of each point of a file of refine's results, after checking the file holds them.

    ``space`` is the space the file's points rebuild (in its order), ``ds``
    the file. A file refine made holds its points over one ``point``
    dimension, the refined axes as coordinates on it and distinct positions
    from 0 to below ``n``; where it holds the coordinate ``round``, that
    must equal the rounds the attr gives the positions: an attr added to
    other results, or edited, is refused rather than trusted. A subset
    (``isel``) or a file whose ``round`` was dropped opens, its rounds
    following from the positions.

    Raises
    ------
    ValueError
        Naming the attr and what does not hold.
    """
    where = f"attrs entry {REFINE_ATTR}"
    if tuple(space.dims) != (POINT,):
        raise ValueError(f"{where} describes refine's results, over one dimension {POINT!r}; "
                         f"the file holds the dimensions {list(space.dims)}")
    lacking = [name for name in refinement.box.names
               if name not in space.coords or space.coords[name].dims != (POINT,)]
    if lacking:
        raise ValueError(f"{where} names the axes {list(refinement.box.names)}; the file has no "
                         f"coordinates {lacking} on {POINT!r}")
    positions = np.asarray(space.coords[POINT].values)
    grid, n = refinement.grid, refinement.n
    if positions.dtype.kind not in "iu" or len(np.unique(positions)) != len(positions) or (
            len(positions) and (positions.min() < 0 or positions.max() >= n)):
        raise ValueError(f"{where} says n={n}: the file's {POINT!r} must hold distinct "
                         f"positions from 0 to {n - 1}, got {len(positions)} from "
                         f"{positions.min() if len(positions) else None} to "
                         f"{positions.max() if len(positions) else None}")
    if grid > n:
        raise ValueError(f"{where} says grid={grid} (the first round's points) with n={n}: "
                         "the first round is part of the n points")
    rounds = refinement.rounds_of(positions)
    if ROUND in ds.coords:  # a file whose round was dropped gets it back from the positions
        held = ds.coords[ROUND]
        if held.dims != (POINT,) or not np.array_equal(np.asarray(held.values), rounds):
            raise ValueError(f"the coordinate {ROUND!r} must equal the rounds {where} gives "
                             f"the points (grid={grid}, batch={refinement.batch}): the file "
                             "was edited (or a chunk of it lost), and its points would be "
                             "relabelled")
    return rounds


class RefineResults(Results):
    """The Results of :func:`refine`: one ``point`` dimension, and :meth:`to_grid`.

    Besides what every :class:`~labeled_spaces.Results` has, ``refinement``
    says how it was asked for (see :class:`Refinement`; also the attr
    ``labeled_spaces:refine`` of :meth:`to_xarray`), ``box`` holds the
    refined axes (names, bounds, log scales) and ``rounds`` the round each
    point was computed in (0: the space's grid), also the coordinate
    ``round`` on ``point``.
    """

    refinement: Refinement
    rounds: np.ndarray

    @property
    def box(self) -> Box:
        """The refined axes: names, bounds and log scales."""
        return self.refinement.box

    def to_xarray(self) -> xr.Dataset:
        """As :meth:`Results.to_xarray`, with the coordinate ``round`` on ``point``.

        The attr ``labeled_spaces:refine`` (:meth:`Refinement.to_json`) says
        how the refinement was asked for, so that ``open_results`` of a file
        or store of this Dataset gives back RefineResults. Where the model
        has an output named ``round`` the coordinate is left out, with a
        warning (the rounds stay in :attr:`rounds`): it would replace that
        output.
        """
        ds = super().to_xarray().assign_attrs({REFINE_ATTR: self.refinement.to_json()})
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
            is below 2; the points (of results edited down) are fewer than one
            more than the axes, or all on one line (plane, in 3-D).

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
        mesh = _mesh(self.box.to_unit(_coordinates(ds, names)))
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


def _mesh(points: np.ndarray) -> Delaunay:
    """The Delaunay mesh of ``points`` ``(m, d)``, refusing a set that spans no ``d``-D volume.

    refine's results always span their box; results edited down to a few
    points, or to points on one line (plane, in 3-D), have no mesh to
    interpolate over: a ValueError says so (Qhull's own error does not).
    """
    d = points.shape[1]
    flat = "one line" if d == 2 else "one plane"
    needs = (f"to_grid needs a full-dimensional set of points: at least {d + 1}, not all on "
             f"{flat}, to interpolate over the {d}-D box")
    if len(points) < d + 1:
        raise ValueError(f"{needs}; the results hold {format_count(len(points), 'point')}, "
                         "too few")
    try:
        return Delaunay(points)
    except QhullError:
        raise ValueError(f"{needs}; the results' {format_count(len(points), 'point')} all lie "
                         f"on {flat}") from None


def _coordinates(ds: xr.Dataset, names: Sequence[str]) -> np.ndarray:
    return np.stack([np.asarray(ds.coords[name].values, dtype=np.float64) for name in names],
                    axis=1)

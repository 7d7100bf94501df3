"""Files edited with xarray: the points a file holds, found by its labels, never by position.

A results file may have been edited with xarray after it was saved:
``isel``, ``sel``, ``transpose``, ``sortby``, variables added or renamed.
Its attrs still describe the whole space that was run, so the space
rebuilt from them may no longer match what the file holds. Here every
dimension of that space is matched by the file's own labels: the positions
of the file's labels among the space's make a sub-space
(``space.isel(...)``), and every coordinate of that sub-space must then
equal the file's coordinate of the same name. Values are put in the space's
dimension order by name (a transposed file is read as it was saved).
Whatever cannot be matched is a ``ValueError`` that names it: a file is
opened with its labels paired to the right values, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._codec import charge

__all__ = ["file_selection", "same_values"]


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label arrays hold the same values (NaN equal to NaN; str vs object too)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # strings, bytes, objects: no NaN to compare
        return bool(np.array_equal(a, b))


def _loaded(coord: xr.DataArray | xr.Variable, name: str) -> np.ndarray:
    """A file's coordinate, read once its size was drawn from the decode budget."""
    charge(coord.size * max(coord.dtype.itemsize, 8), f"the file's coordinate {name!r}")
    return np.asarray(coord.values)


def _along(space_coords: xr.Coordinates, dim: str) -> list[str]:
    """The space's coordinates that label ``dim`` (first the dimension's own, if any)."""
    names = [str(n) for n, c in space_coords.items() if c.dims and c.dims[0] == dim]
    return sorted(names, key=lambda n: (n != dim, n != names[0]))


def _rows(arrays: list[np.ndarray]) -> list[tuple[str, ...]]:
    """Each position's labels over several coordinates, as hashable rows (NaN equals NaN)."""
    flat = [a.reshape(a.shape[0], -1) for a in arrays]
    return [tuple(repr(f[i].tolist()) for f in flat) for i in range(flat[0].shape[0])]


def _positions(dim: str, names: list[str], space_coords: xr.Coordinates,
               ds: xr.Dataset) -> np.ndarray | int:
    """Positions along ``dim`` of the points the file holds (an int if the file dropped it)."""
    kept = dim in ds.dims
    primary = names[0]
    ours = np.asarray(space_coords[primary].values)
    theirs = _loaded(ds.coords[primary], primary)
    if not kept and theirs.ndim != ours.ndim - 1:
        raise ValueError(f"the file's coordinate {primary!r} does not lie along {dim!r}")
    wanted = np.atleast_1d(theirs) if ours.ndim == 1 else theirs[None] if not kept else theirs
    index = pd.Index(ours) if ours.ndim == 1 else None
    if index is not None and index.is_unique:
        found = index.get_indexer(np.asarray(wanted).ravel())
    else:  # repeated labels or points with their own dims: match on every coordinate at once
        found = _match_rows(dim, names, space_coords, ds, kept)
    missing = np.flatnonzero(found < 0)
    if missing.size:
        shown = np.asarray(wanted).reshape(len(found), -1)[missing[:3]].tolist()
        raise ValueError(
            f"the file holds points along {dim!r} that the space its attrs describe does not: "
            f"{primary}={shown}; it was changed beyond selecting points of that space"
        )
    return found if kept else int(found[0])


def _match_rows(dim: str, names: list[str], space_coords: xr.Coordinates, ds: xr.Dataset,
                kept: bool) -> np.ndarray:
    ours = [np.asarray(space_coords[n].transpose(dim, ...).values) for n in names]
    theirs = []
    for n in names:
        coord = ds.coords[n]
        values = _loaded(coord.transpose(dim, ...) if kept else coord, n)
        theirs.append(values if kept else values[None])
    table: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(_rows(ours)):
        table.setdefault(row, []).append(i)
    found = []
    for row in _rows(theirs):
        hits = table.get(row, [])
        if len(hits) > 1:
            raise ValueError(f"the space's labels along {dim!r} ({', '.join(names)}) repeat, "
                             "so the file's points there cannot be told apart")
        found.append(hits[0] if hits else -1)
    return np.asarray(found, dtype=np.int64)


def file_selection(space: Any, ds: xr.Dataset) -> dict[str, np.ndarray | int]:
    """``{dim: positions}`` that make ``space`` the sub-space a (maybe edited) file holds.

    Empty when the file holds the whole space in its order. Dimensions the
    file dropped (``isel(a=1)``) give an int, found from its scalar
    coordinate. Raises a ``ValueError`` where the file has no labels for a
    dimension of the space, or labels the space does not hold.
    """
    coords = space.coords
    picks: dict[str, np.ndarray | int] = {}
    for dim in space.dims:
        names = [n for n in _along(coords, dim) if n in ds.coords]
        if not names:
            raise ValueError(
                f"the file holds no coordinate that labels the space's dimension {dim!r} "
                f"(expected one of {_along(coords, dim)}); its points cannot be told apart"
            )
        if dim in ds.dims and ds.sizes[dim] == coords.sizes[dim]:
            ours = np.asarray(coords[names[0]].values)
            if same_values(_loaded(ds.coords[names[0]], names[0]), ours):
                continue  # the whole dimension, in its order
        picks[dim] = _positions(dim, names, coords, ds)
    return picks


def check_coordinates(space: Any, ds: xr.Dataset) -> None:
    """Every coordinate of ``space`` that the file holds must equal it (dims by name)."""
    for name, ours in space.coords.items():
        if name not in ds.coords:
            continue  # dropped from the file: the space's own is kept
        theirs = ds.coords[name]
        if set(theirs.dims) != set(ours.dims):
            raise ValueError(f"the file's coordinate {name!r} lies along {theirs.dims}, the "
                             f"space's along {ours.dims}")
        if theirs.dtype.kind == "c" and theirs.dtype != ours.dtype:
            # netCDF4 (1.7.5) reads a complex64 variable beside complex128 ones as complex128
            # garbage (measured); the space's own labels are the ones kept
            continue
        values = _loaded(theirs.transpose(*ours.dims), str(name))
        if not same_values(values, np.asarray(ours.values)):
            raise ValueError(
                f"the file's coordinate {name!r} does not hold the labels of the space its "
                "attrs describe at the points it holds; the file was changed beyond "
                "selecting points, and its values cannot be paired with labels"
            )


def in_space_order(var: xr.Variable, name: str, space_dims: tuple[str, ...],
                   own: tuple[str, ...] | None = None) -> xr.Variable:
    """``var`` with dims ``space_dims`` then ``own`` (its other dims in file order if None)."""
    missing = [d for d in space_dims if d not in var.dims]
    if missing:
        raise ValueError(f"the file's variable {name!r} does not lie along the space's "
                         f"dimensions {missing}")
    rest = tuple(d for d in var.dims if d not in space_dims)
    if own is not None and set(own) != set(rest):
        raise ValueError(f"the file's variable {name!r} lies along {rest} besides the space's "
                         f"dimensions; its attrs name {own}")
    order = (*space_dims, *(rest if own is None else own))
    return var if var.dims == order else var.transpose(*order)


def select_done(done: np.ndarray | None, dims: tuple[str, ...],
                picks: Mapping[str, np.ndarray | int]) -> np.ndarray | None:
    """A completion mask over the whole space, cut to the picked points."""
    if done is None or not picks:
        return done
    return xr.Variable(dims, done).isel(dict(picks)).values

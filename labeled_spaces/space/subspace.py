"""Sub-spaces: positions chosen along dimensions (``isel``/``sel``) or a flat slice.

A sub-space is a new Space whose axes are :class:`DataAxis` over the chosen
points of the original axes (same values, same labels, same attrs), and
whose :class:`Selection` keeps what xarray would keep: the original
positions along shared dimensions and the labels of fixed dimensions as
scalar coordinates. The functions here return the new state, mode and
Selection; the Space builds itself from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._checks import closest, fail, integer_scalar
from .._format import short_repr
from .._memory import refuse_beyond_memory
from ..axes import DataAxis, KeyAxis, value_dims
from .coords import AxisLabels, Selection
from .key_leaves import selected_point_keys, subset_key_axis
from .labels import SelectionError
from .layout import Layout

__all__ = ["MAX_HUGE_SLICE", "derive", "drop_full", "flat_slice", "isel_positions", "select"]

# a flat slice of a space beyond 2**63 combinations is unravelled in Python, up to this size
MAX_HUGE_SLICE = 1_000_000


def isel_positions(sizes: Mapping[str, int], indexers: Mapping[str, Any]
                   ) -> dict[str, int | np.ndarray]:
    """``{dim: int or positions}`` of an ``isel`` query, checked against ``sizes``."""
    unknown = [k for k in indexers if k not in sizes]
    if unknown:
        expected = (f"one of {list(sizes)}" if sizes else
                    "none: a space of a single point has no dimension left to select "
                    "(space[0] is its combination)")
        raise SelectionError(f"isel got {unknown} which are not dimensions of the space; "
                             f"expected {expected}{closest(str(unknown[0]), map(str, sizes))}")
    chosen: dict[str, int | np.ndarray] = {}
    for name, indexer in indexers.items():
        size = sizes[name]
        if isinstance(indexer, (bool, np.bool_)):
            raise TypeError(f"isel: {name}={indexer!r} must be an integer, slice or array")
        position = integer_scalar(indexer)  # a 0-d integer array drops the dim, as in xarray
        if position is None and getattr(indexer, "ndim", None) == 0:
            raise TypeError(f"isel: {name}={indexer!r}: index must be an integer, slice or "
                            "array of integers")
        if position is not None:
            if not -size <= position < size:
                raise IndexError(f"isel: {name}={indexer} is out of range for size {size}")
            chosen[name] = position % size
            continue
        try:
            picked = np.arange(size)[indexer]
        except IndexError as err:
            raise IndexError(f"isel: {name}={short_repr(indexer)}: {err}") from None
        if np.ndim(picked) != 1:  # a 2-D array, a nested list, None (a new axis)
            raise ValueError(
                f"isel: {name}={short_repr(indexer)} must be an integer, a slice or a 1-D array of "
                f"positions (integers or a boolean mask), got one that selects an array of "
                f"shape {np.shape(picked)}"
            )
        if picked.size == 0:
            raise ValueError(f"isel: {name}={short_repr(indexer)} selects no point")
        chosen[name] = picked
    return chosen


def drop_full(chosen: dict[str, int | np.ndarray], sizes: Mapping[str, int],
              query: Mapping[str, Any]) -> dict[str, int | np.ndarray]:
    """``chosen`` without dimensions a ``sel`` keeps whole; an empty pick is an error."""
    out = dict(chosen)
    for d, size in sizes.items():
        pick = out.get(d)
        if isinstance(pick, np.ndarray):
            if pick.size == 0:
                raise SelectionError(f"sel {dict(query)!r} selects no point along {d!r}")
            if pick.size == size and np.array_equal(pick, np.arange(size)):
                del out[d]
    return out


def derive(
    layout: Layout,
    axes: Sequence[AxisLabels],
    picks: Sequence[np.ndarray | int],
    selection: Selection,
    new_dims: Sequence[str] | None = None,
) -> Any:
    """The state over ``table[picks[a]]`` of every axis ``a``; an int pick fixes the axis.

    A fixed axis becomes a 0-d (or point-shaped) array leaf, an argument of
    the compiled model as it was, and its labels scalar coordinates in the
    returned Selection's ``scalars`` (updated in place of a copy). Key
    leaves keep each combination's key: a KeyAxis its replicates and axis
    key (a fixed one becomes its key), a PointKey its original positions,
    which ``new_dims[j]`` (default: the same names) says which dimension of
    the sub-space holds for grid dimension ``j``. When every axis is fixed,
    the state has no axis left: the Space of a single point, with no
    dimension (as xarray's ``sel`` by scalars gives a 0-d Dataset).

    Returns
    -------
    state, scalars, origins
        ``origins``: ``{name: class name}`` of the new DataAxis that hold the
        points of an axis of another kind (see :class:`Selection`).
    """
    new_axes: list[Any] = []
    scalars = dict(selection.scalars)
    origins: dict[str, str] = {}
    for a, (info, pick) in enumerate(zip(axes, picks, strict=True)):
        table = layout.tables[a]
        fixed = isinstance(pick, (int, np.integer))
        if isinstance(info.axis, KeyAxis) and layout.keys is not None:
            # the same keys: a fixed replicate's key, or the replicates picked and their axis key
            new_axes.append(subset_key_axis(layout.keys, layout.axis_positions[a], info.axis,
                                            info.name, table, pick))
        elif fixed:
            new_axes.append(jnp.asarray(table[pick]))  # JAX arrays, as the axes give
        else:
            new_axes.append(DataAxis(
                table[pick],
                labels=info.labels[pick],
                name=info.name,
                group=info.axis.group,
                attrs=info.axis.attrs,
                value_coordinate=None if info.values is None else info.values[pick],
            ))
            origin = (selection.origins.get(info.name) if isinstance(info.axis, DataAxis)
                      else type(info.axis).__name__)
            if origin is not None:
                origins[info.name] = origin
        if fixed:
            scalars[info.name] = xr.Variable((), info.labels[pick], info.axis.attrs)
            if info.values is not None:
                own = value_dims(info.name, info.values.ndim - 1)
                scalars[f"{info.name}_value"] = xr.Variable(own, info.values[pick])
    leaves = None
    if layout.keys is not None:  # a PointKey keeps the positions its combinations had
        dim_picks = [picks[d.members[0]] for d in layout.dims]
        names = [d.name for d in layout.dims] if new_dims is None else new_dims
        leaves = selected_point_keys(layout.keys, len(axes), layout.leaves, dim_picks, names)
    return layout.assemble(new_axes, leaves), scalars, origins


def select(
    layout: Layout,
    axes: Sequence[AxisLabels],
    selection: Selection,
    chosen: Mapping[str, int | np.ndarray],
) -> tuple[Any, Selection]:
    """The state and Selection of the sub-space at ``chosen`` positions per dimension."""
    picks: list[np.ndarray | int] = []
    for a in range(len(axes)):
        d = layout.dims[layout.axis_dim[a]]
        picks.append(chosen.get(d.name, np.arange(d.size)))
    # a shared dim (zip, group) keeps its original positions, as xarray keeps labels;
    # a fixed one keeps its position as a scalar coordinate
    positions: dict[str, np.ndarray] = {}
    fixed: dict[str, xr.Variable] = {}
    for d in layout.dims:
        if d.shared:
            pick = chosen.get(d.name, np.arange(d.size))
            positions[d.name] = selection.dim_coordinate(d)[pick]
            if isinstance(pick, int):
                fixed[d.name] = xr.Variable((), positions[d.name])
    state, scalars, origins = derive(
        layout, axes, picks,
        Selection(selection.positions, {**selection.scalars, **fixed}, selection.origins))
    return state, Selection(positions, scalars, origins)


def flat_slice(
    layout: Layout,
    axes: Sequence[AxisLabels],
    selection: Selection,
    index: slice,
    dim: str,
) -> tuple[Any, Selection]:
    """The state and Selection of ``space[index]``: a zip space over those combinations.

    Its dimension's coordinate holds the original flat indices (or, for a
    zip space that was itself selected, the positions its dimension had), so
    the results of several slices concatenate without clashing labels.
    """
    grid = layout.grid
    if not layout.dims:
        fail("index", "an integer on a space of a single point, which has no dimension to "
             "slice (space[0] is its combination)", index)
    positions = range(grid.N)[index]
    if len(positions) == 0:
        raise ValueError(f"slice {index} selects no combination of a space of {grid.N}")
    refuse_beyond_memory(
        len(positions) * (8 * (1 + len(grid.shape)) + layout.lane_bytes()),
        f"the slice {index} of {len(positions):,} combinations",
        "slice fewer of them, or select by dimension with isel(...)")
    if grid.N < 2**63:
        flat = np.arange(positions.start, positions.stop, positions.step, dtype=np.int64)
        digits = grid.unravel_many(flat)
    elif len(positions) <= MAX_HUGE_SLICE:  # flat indices beyond int64: Python ints
        digits = np.array([grid.unravel(i) for i in positions], dtype=np.int64)
        flat = np.array(list(positions), dtype=np.uint64 if positions[-1] < 2**64 and
                        positions[0] < 2**64 else object)
    else:
        raise ValueError(
            f"slice {index} selects {len(positions):,} combinations of a space beyond "
            f"2**63; slices of such spaces are limited to {MAX_HUGE_SLICE:,}: "
            "select by dimension with isel(...) instead"
        )
    if len(layout.dims) == 1 and layout.dims[0].shared:
        flat = selection.dim_coordinate(layout.dims[0])[np.asarray(flat, dtype=np.int64)]
    picks = [digits[:, layout.axis_dim[a]] for a in range(len(axes))]
    state, scalars, origins = derive(layout, axes, picks, selection, [dim] * len(layout.dims))
    return state, Selection({dim: np.asarray(flat)}, scalars, origins)

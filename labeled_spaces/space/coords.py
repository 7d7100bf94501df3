"""A Space's xarray face: its coordinates, built once (a Space is immutable)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .._codec import decode_array
from .._format import clipped
from .._schema import SELECTED_FROM_ATTR, SELECTION_ATTR
from ..axes import AbstractAxis, value_dims
from ..grid import Dim

__all__ = [
    "MAX_VALUE_COORD", "AxisLabels", "Selection", "build_coords", "check_names",
    "coordinate_names",
]

# a non-index value coordinate is kept only up to this many elements
MAX_VALUE_COORD = 1_000_000


@dataclass(frozen=True)
class AxisLabels:
    """What labels one axis: its name, path, coordinate and (optional) value coordinate."""

    name: str
    path: str
    axis: AbstractAxis
    labels: np.ndarray
    values: np.ndarray | None  # the {name}_value coordinate, or None


def _kept_positions(held: Any) -> np.ndarray:
    """Integer positions as int64: 1.5 is refused, not cut to 1."""
    array = np.asarray(held)
    if array.dtype.kind not in "iu":
        raise ValueError(f"positions must be integers, got {clipped(repr(held))}")
    return array.astype(np.int64)


@dataclass(frozen=True)
class Selection:
    """What a sub-space keeps of the space it was selected from.

    Attributes
    ----------
    positions : dict
        ``{shared dim: original positions}``, the coordinate of a zip or group
        dimension after a selection (as xarray keeps labels).
    scalars : dict
        ``{name: xarray.Variable}``, the scalar coordinates of fixed dimensions.
    origins : dict
        ``{axis name: class name}`` of the axes that the sub-space holds as a
        ``DataAxis`` of the points it kept of an axis of another kind
        (``GridAxis``, ``UniformAxis``, a design's axes, ...): values that were
        sampled, not data the user gave (``fit`` fits them by default).
    """

    positions: Mapping[str, np.ndarray] = field(default_factory=dict)
    scalars: Mapping[str, xr.Variable] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.positions) or bool(self.scalars)

    def check_sizes(self, dims: Sequence[Dim]) -> None:
        """Refuse kept positions that are not one per point of their dimension (a file's)."""
        for d in dims:
            kept = self.positions.get(d.name)
            if kept is not None and np.shape(kept) != (d.size,):
                raise ValueError(f"attrs entry {SELECTION_ATTR} must hold one position per point "
                                 f"along {d.name!r} ({d.size}), got positions of shape "
                                 f"{np.shape(kept)}")

    @classmethod
    def from_entries(cls, kept: Any, origins: Any) -> Selection:
        """The Selection of a file's ``:selection`` and ``:selected_from`` entries (parsed
        JSON, None where absent), or a ``ValueError`` naming the entry."""
        try:
            selection = cls() if kept is None else cls(
                {str(d): _kept_positions(p) for d, p in kept["positions"].items()},
                {str(name): xr.Variable(tuple(v["dims"]), decode_array(v), v["attrs"])
                 for name, v in kept["scalars"].items()})
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as err:
            raise ValueError(f"attrs entry {SELECTION_ATTR} must hold the positions and scalar "
                             f"coordinates of a sub-space, got {clipped(repr(kept), 200)}: "
                             f"{clipped(str(err), 200)}") from None
        if origins is None:
            return selection
        if not (isinstance(origins, Mapping) and all(
                isinstance(v, str) and v.isidentifier() for v in origins.values())):
            raise ValueError(f"attrs entry {SELECTED_FROM_ATTR} must map axis names to the "
                             f"class names of the axes whose points they kept, got "
                             f"{clipped(repr(origins))}")
        return cls(selection.positions, selection.scalars,
                   {str(k): v for k, v in origins.items()})

    def dim_coordinate(self, d: Dim) -> np.ndarray:
        """The coordinate of a shared dim: ``0..size-1``, or the positions it was selected at."""
        return np.asarray(self.positions.get(d.name, np.arange(d.size)))

    def point_labels(self) -> dict[str, object]:
        """``{name: label}`` of the scalar coordinates: where a single point was selected."""
        return {k: v.values.item() for k, v in self.scalars.items() if not v.dims}


def build_coords(dims: Sequence[Dim], axes: Sequence[AxisLabels], selection: Selection
                 ) -> xr.Coordinates:
    """The coordinates of a Space.

    Dimension coordinates (the axis labels, or ``0..size-1`` on zip and
    group dimensions), the labels of zipped and grouped axes as indexed
    coordinates on their shared dimension, the ``{name}_value`` coordinates
    of axes whose labels are not their values (left out beyond
    :data:`MAX_VALUE_COORD` elements), and the scalar coordinates of a
    sub-space's fixed dimensions.

    Returns
    -------
    xarray.Coordinates
    """
    coords: dict[str, Any] = {}
    indexed: list[str] = []
    for d in dims:
        if d.shared:
            coords[d.name] = xr.Variable(d.name, selection.dim_coordinate(d))
        for a in d.members:
            info = axes[a]
            labels = info.labels[: d.size]
            if d.shared:
                coords[info.name] = xr.Variable(d.name, labels, info.axis.attrs)
                indexed.append(info.name)
            else:
                coords[info.name] = xr.Variable(info.name, labels, info.axis.attrs)
            values = info.values
            if values is not None and values[: d.size].size <= MAX_VALUE_COORD:
                extra = value_dims(info.name, values.ndim - 1)
                coords[f"{info.name}_value"] = xr.Variable((d.name, *extra), values[: d.size])
    coords.update(selection.scalars)
    with warnings.catch_warnings():
        # pandas indexes float16 labels as float64 (the coordinate keeps its float16), and
        # says so in a FutureWarning on every Space with such labels
        warnings.filterwarnings("ignore", message=".*does not support the `float16` dtype")
        ds = xr.Dataset(coords=coords)
        for name in indexed:
            ds = ds.set_xindex(name)
    return ds.coords


def coordinate_names(dims: Sequence[Dim], axes: Sequence[AxisLabels], selection: Selection
                     ) -> frozenset[str]:
    """Every name :func:`build_coords` uses (coordinates and dimensions), without xarray.

    Executors check output names against these before a run; building the
    coordinates themselves would import xarray's array backends (dask: 0.4 s
    of a cold run).
    """
    names: set[str] = set()
    for d in dims:
        names.add(d.name)
        for a in d.members:
            info = axes[a]
            names.add(info.name)
            values = info.values
            if values is not None and values[: d.size].size <= MAX_VALUE_COORD:
                names.add(f"{info.name}_value")
                names.update(value_dims(info.name, values.ndim - 1))
    for name, var in selection.scalars.items():
        names.add(name)
        names.update(str(d) for d in var.dims)
    return frozenset(names)


def check_names(dims: Sequence[Dim], axis_dim: Sequence[int], axes: Sequence[AxisLabels]
                ) -> None:
    """Refuse two dimensions or coordinates of one name, saying which axes clash.

    Raises
    ------
    ValueError
        ``duplicate dimension or coordinate name ...: used by ... and by ...``.
    """
    seen: dict[str, str] = {}
    # the one dimension of a zip space or a design is named by the Space's dim=
    named_by_dim = {d.name for d in dims
                    if d.shared and all(axes[a].axis.group is None for a in d.members)}

    def claim(name: str, what: str) -> None:
        if name in seen:
            other = (f", or pass the Space another dim= than {name!r}"
                     if name in named_by_dim else "")
            raise ValueError(
                f"duplicate dimension or coordinate name {name!r}: used by {seen[name]} "
                f"and by {what}; give the axes distinct name= arguments{other}"
            )
        seen[name] = what

    for d in dims:
        members = ", ".join(repr(axes[a].path) for a in d.members)
        claim(d.name, f"dimension {d.name!r} (of the axes at {members})")
    for a, info in enumerate(axes):
        if dims[axis_dim[a]].shared:
            claim(info.name, f"the axis at {info.path!r}")
        if info.values is not None:
            claim(f"{info.name}_value", f"the values of the axis at {info.path!r}")
            for k, dim in enumerate(value_dims(info.name, info.values.ndim - 1)):
                claim(dim, f"dimension {k} of the values of the axis at {info.path!r}")

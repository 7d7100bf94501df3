"""Big DataAxis values that a coordinate of the Space holds: saved once, as that coordinate.

A DataAxis of more than :data:`MAX_INLINE_VALUES` elements is described in the
attrs (:mod:`labeled_spaces.space.attrs`) by a reference to the coordinate
that holds its values, so a file holds them once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..axes import DataAxis
from .coords import AxisLabels
from .layout import Layout

__all__ = ["MAX_INLINE_VALUES", "value_coordinates"]

# DataAxis values beyond this many elements refer to a coordinate of the file when one holds them
MAX_INLINE_VALUES = 10_000


def _holds(coord: xr.DataArray, array: np.ndarray) -> bool:
    """Whether ``coord`` holds ``array`` exactly once cast to its dtype (what decoding does)."""
    values = coord.values
    if values.shape != array.shape or values.dtype.kind not in "biufc":
        return False
    with np.errstate(all="ignore"):
        cast = values.astype(array.dtype)
    return np.array_equal(cast, array, equal_nan=array.dtype.kind in "fc")


def value_coordinates(layout: Layout, axes: Sequence[AxisLabels], coords: xr.Coordinates
                      ) -> dict[str, dict[str, str]]:
    """``{axis name: {field: coordinate}}`` for big DataAxis fields that a coordinate holds.

    A DataAxis of more than :data:`MAX_INLINE_VALUES` elements whose values (or
    value coordinate) a coordinate of the Space holds exactly is described by a
    reference to that coordinate (``"values"``, ``"value_coordinate"``), so a
    file holds them once.
    """
    found: dict[str, dict[str, str]] = {}
    for a, info in enumerate(axes):
        axis = info.axis
        if type(axis) is not DataAxis or axis.data.size <= MAX_INLINE_VALUES:
            continue
        if layout.dims[layout.axis_dim[a]].size != axis.size:
            continue  # a zipped axis cut to a shorter dimension
        refs: dict[str, str] = {}
        for name in (f"{info.name}_value", info.name):
            if name in coords and _holds(coords[name], axis.data):
                refs["values"] = name
                break
        held = axis.value_coordinate()
        name = f"{info.name}_value"
        if held is not None and name in coords and _holds(coords[name], held):
            refs["value_coordinate"] = name
        if refs:
            found[info.name] = refs
    return found

"""What a Dataset holds, as the lines ``labeled-spaces info`` prints: dims, coordinates, variables.

Any Dataset is described, results or not. A coordinate is read only when
the decode budget in force allows it (see
:func:`labeled_spaces._codec.decode_budget`): one that claims more than its
file warrants is listed with its size, not read.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import xarray as xr

from .._codec import charge
from .._format import format_count, format_dims, format_extent, format_sizes, table

__all__ = ["dataset_lines"]


def _extent(coord: Any) -> tuple[str, str]:
    """``(extent, dtype)`` of a coordinate: its range, its first and last label, or why not."""
    try:
        charge(coord.size * max(coord.dtype.itemsize, 8), f"the coordinate {coord.name!r}")
    except ValueError as err:
        return f"not read: {err}", _dtype_name(coord.dtype)
    values = np.asarray(coord.values)
    return format_extent(values, coord.attrs.get("units")), _dtype_name(values.dtype)


def _dtype_name(dtype: Any) -> str:
    """A dtype as a short name: NumPy's variable-width strings (zarr 3's) as ``str``.

    The same labels read from a netCDF file are ``<U26``; ``StringDType()``
    in one summary and ``<U26`` in the other would look like another kind.
    """
    return "str" if getattr(dtype, "kind", "") == "T" else str(dtype)


def _coordinate_row(name: str, coord: Any) -> list[str]:
    extent, dtype = _extent(coord)
    long_name = coord.attrs.get("long_name")
    return [name, format_dims(coord.dims), dtype,
            f"{extent} ({format_count(coord.size, 'value')})", *([long_name] if long_name else [])]


def _variable_row(name: str, var: Any, added: Collection[str]) -> list[str]:
    units = var.attrs.get("units")
    long_name = var.attrs.get("long_name")
    return [name, format_dims(var.dims), _dtype_name(var.dtype),
            *([f"units {units}"] if units is not None else []),
            *([long_name] if long_name else []),
            *(["(added to the file, not made by the run)"] if name in added else [])]


def dataset_lines(ds: xr.Dataset, skip: Collection[str] = (),
                  added: Collection[str] = ()) -> list[str]:
    """Dims and sizes, coordinates with their ranges and units, variables with dims and dtype.

    Parameters
    ----------
    ds : xarray.Dataset
    skip : collection of str
        Data variables not to list (the ``computed`` mask).
    added : collection of str
        Variables marked as added to a file after its run.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import xarray as xr
    >>> from labeled_spaces.results.summary import dataset_lines
    >>> ds = xr.Dataset({"y": ("t", [1.0, 2.0])}, coords={"t": ("t", [0, 5], {"units": "s"})})
    >>> print("\\n".join(dataset_lines(ds)))
    dims: t: 2
    coordinates:
      t  (t)  int64  0 .. 5 s (2 values)
    variables:
      y  (t)  float64
    """
    lines = ["dims: " + format_sizes(ds.sizes)]
    if ds.coords:
        lines.append("coordinates:")
        lines += table([_coordinate_row(str(n), c) for n, c in ds.coords.items()], padded=3)
    variables = {str(n): v for n, v in ds.data_vars.items() if n not in skip}
    if variables:
        lines.append("variables:")
        lines += table([_variable_row(n, v, added) for n, v in variables.items()], padded=2)
    return lines

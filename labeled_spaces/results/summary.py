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

__all__ = ["dataset_lines"]


def _extent(coord: Any) -> tuple[str, str]:
    """``(extent, dtype)`` of a coordinate: its range, its first and last label, or why not."""
    try:
        charge(coord.size * max(coord.dtype.itemsize, 8), f"the coordinate {coord.name!r}")
    except ValueError as err:
        return f"not read: {err}", str(coord.dtype)
    values = np.asarray(coord.values)
    units = coord.attrs.get("units")
    if values.size == 0:
        extent = "empty"
    elif values.dtype.kind in "iuf":
        low, high = np.nanmin(values), np.nanmax(values)
        extent = f"{low:g} .. {high:g}" + (f" {units}" if units else "")
    else:  # labels: strings, dates, objects
        flat = values.reshape(-1).tolist()  # plain str/int, not np.str_('...') reprs
        extent = f"{flat[0]!r}" if len(flat) == 1 else f"{flat[0]!r} .. {flat[-1]!r}"
        extent += f" {units}" if units else ""
    return extent, str(values.dtype)


def _coordinate_line(name: str, coord: Any, width: int) -> str:
    extent, dtype = _extent(coord)
    dims = f"({', '.join(map(str, coord.dims))})" if coord.dims else "()"
    count = "1 value" if coord.size == 1 else f"{coord.size} values"
    long_name = coord.attrs.get("long_name")
    tail = f"  {long_name}" if long_name else ""
    return f"  {name:<{width}}  {dims:<12} {dtype:<8} {extent} ({count}){tail}"


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
      t  (t)          int64    0 .. 5 s (2 values)
    variables:
      y  (t)  float64
    """
    lines = ["dims: " + ", ".join(f"{d}: {n}" for d, n in ds.sizes.items())]
    if ds.coords:
        width = max(len(str(n)) for n in ds.coords)
        lines.append("coordinates:")
        lines += [_coordinate_line(str(n), c, width) for n, c in ds.coords.items()]
    variables = {str(n): v for n, v in ds.data_vars.items() if n not in skip}
    if variables:
        width = max(len(n) for n in variables)
        dims = {n: f"({', '.join(map(str, v.dims))})" for n, v in variables.items()}
        dim_width = max(len(d) for d in dims.values())
        lines.append("variables:")
        for name, var in variables.items():
            units = var.attrs.get("units")
            long_name = var.attrs.get("long_name")
            line = f"  {name:<{width}}  {dims[name]:<{dim_width}}  {var.dtype!s}"
            line += f"  units {units}" if units is not None else ""
            line += f"  {long_name}" if long_name else ""
            line += "  (added to the file, not made by the run)" if name in added else ""
            lines.append(line)
    return lines

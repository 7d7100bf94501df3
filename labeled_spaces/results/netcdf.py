"""netCDF: results written safely, with what netCDF cannot hold adapted and recorded.

netCDF is the export format. A write goes to a temporary file beside the
target, renamed on success, so a failed write never destroys an existing
file. What netCDF cannot hold is adapted and recorded in attributes, so that
:func:`labeled_spaces.open_results` gives back exactly what was saved:

- names netCDF rejects (``[0]`` of a list output, ``a/b``) are saved as
  ``result[0]`` (``state...`` for the space's own names), recorded in
  ``labeled_spaces:netcdf_names``;
- float16 and bfloat16 variables are widened to float32, their dtype kept in
  the variable attribute ``labeled_spaces:dtype``;
- complex variables become netCDF4 compound types (``auto_complex=True``),
  listed in ``labeled_spaces:complex``.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import warnings
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._codec import read_json
from .._format import short_repr
from .._paths import make_temp_beside, remove_stale_leftovers
from .._schema import COMPLEX_ATTR, DTYPE_ATTR, NETCDF_NAMES_ATTR

__all__ = ["netcdf_names", "restore_dtypes", "undo_netcdf_names", "widen_for_netcdf",
           "write_netcdf"]

# netCDF names must start with a letter, digit, underscore or non-ASCII character and
# cannot hold "/"; key paths of list and tuple outputs ("[0]") start with "["
_NETCDF_FIRST = re.compile(r"[A-Za-z0-9_]|[^\x00-\x7f]")
# netCDF4 with auto_complex reads a dimension of length 2 with one of these names as the
# real and imaginary parts of complex numbers, and cannot write one (measured, 1.7.5)
_COMPLEX_DIMS = frozenset({"c", "ri", "complex"})


def netcdf_names(ds: xr.Dataset, space_names: set[str], complex_values: bool = False
                 ) -> dict[str, str]:
    """``{name in the file: name in the Dataset}`` for every name netCDF would reject.

    A rejected name gets the prefix ``state`` (space dimensions and coordinates)
    or ``result`` (outputs and their dimensions): ``[0]`` is saved as
    ``result[0]``; a ``/`` becomes ``_``. With ``complex_values``, dimensions of
    length 2 named ``c``, ``ri`` or ``complex`` (netCDF4's names for the parts of
    complex numbers) get the prefix too.
    """
    taken = {str(n) for n in (*ds.variables, *ds.dims)}
    reserved = {str(d) for d, n in ds.sizes.items() if complex_values and n == 2
                and str(d) in _COMPLEX_DIMS}
    renamed: dict[str, str] = {}
    for name in sorted(taken):
        if _NETCDF_FIRST.match(name) and "/" not in name and name not in reserved:
            continue
        prefix = "state" if name in space_names else "result"
        if name in reserved:
            new = f"{prefix}_{name}"
        else:
            new = name.replace("/", "_")
            if not _NETCDF_FIRST.match(new):
                new = prefix + new
        while new in taken:
            new += "_"
        taken.add(new)
        renamed[new] = name
    return renamed


def _narrow_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" and dtype.itemsize < 4 or str(dtype) == "bfloat16" or (
        dtype.kind == "V" and "float" in str(dtype))


def widen_for_netcdf(ds: xr.Dataset) -> xr.Dataset:
    """float16/bfloat16 variables (data and coordinates) as float32, dtype kept in attrs."""
    changes = {}
    for name, var in ds.variables.items():
        if _narrow_float(var.dtype):
            attrs = {**var.attrs, DTYPE_ATTR: str(var.dtype)}
            changes[name] = xr.Variable(var.dims, var.data.astype(np.float32), attrs,
                                        var.encoding)
    return _with_variables(ds, changes)


def _with_variables(ds: xr.Dataset, changes: dict[Hashable, xr.Variable]) -> xr.Dataset:
    """A shallow copy of ``ds`` with ``changes`` in place (indexes rebuilt, coords kept)."""
    if not changes:
        return ds
    out = ds.copy(deep=False)
    with warnings.catch_warnings():  # see labeled_spaces.space.coords.build_coords
        warnings.filterwarnings("ignore", message=".*does not support the `float16` dtype")
        for name, var in changes.items():
            if name in out.indexes:
                out = out.assign_coords({name: var})
            else:
                out[name] = var
    return out


def restore_dtypes(ds: xr.Dataset) -> xr.Dataset:
    """Undo :func:`widen_for_netcdf`: variables back in the dtype recorded in their attrs."""
    changes = {}
    for name, var in ds.variables.items():
        dtype = var.attrs.get(DTYPE_ATTR)
        if dtype is None:
            continue
        if dtype not in ("float16", "bfloat16"):
            raise ValueError(f"variable {name!r} records dtype {dtype!r}; expected float16 or "
                             "bfloat16")
        attrs = {k: v for k, v in var.attrs.items() if k != DTYPE_ATTR}
        target = np.dtype(jnp.bfloat16) if dtype == "bfloat16" else np.dtype(np.float16)
        # var.data: a store's dask array stays lazy (a netCDF file's is read, as before)
        changes[name] = xr.Variable(var.dims, var.data.astype(target), attrs)
    return _with_variables(ds, changes)


def _refuse_bool_attrs(ds: xr.Dataset) -> None:
    """A ``TypeError`` naming the first attr netCDF cannot hold: a bool, a dict, None, ..."""
    for owner, attrs in [("the Dataset", ds.attrs),
                         *((f"{name!r}", v.attrs) for name, v in ds.variables.items())]:
        for key, value in attrs.items():
            if isinstance(value, (bool, np.bool_)) or (
                    isinstance(value, np.ndarray) and value.dtype == bool):
                raise TypeError(
                    f"the attrs of {owner} must hold no bool for netCDF, which has no bool "
                    f"attrs: got {key}={value!r}; store it as 0/1 or a string, or keep the "
                    "results in a zarr store (store=)")
            if not isinstance(value, (str, bytes, numbers.Number, np.ndarray, list, tuple)):
                raise TypeError(
                    f"the attrs of {owner} must hold strings, numbers, arrays or lists for "
                    f"netCDF: got {key}={short_repr(value)} ({type(value).__name__}); store it "
                    "as a string (json.dumps), or keep the results in a zarr store (store=)")


def write_netcdf(ds: xr.Dataset, path: Any, space_names: set[str], **kwargs: Any) -> None:
    """Write ``ds`` to ``path`` through a temporary file renamed on success.

    Parameters
    ----------
    ds : xarray.Dataset
        Results (``Results.to_xarray()``); dask-backed ones are written block
        by block.
    path : str or path-like
        The target file; an existing one is replaced only once the new file
        is complete.
    space_names : set of str
        The space's own names (for the prefix of renamed ones).
    **kwargs
        Passed to ``xarray.Dataset.to_netcdf`` (not ``mode``: a new file is
        always written).
    """
    if kwargs.get("mode", "w") != "w":
        raise ValueError(f"mode must be 'w' (a new file, renamed into place), got "
                         f"{kwargs['mode']!r}")
    target = Path(os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(f"path must be a file, got the directory {str(target)!r}")
    if not target.parent.exists():
        raise FileNotFoundError(f"path must be in an existing directory, got {str(target)!r}")
    if not {"engine", "auto_complex"} & set(kwargs) and any(
        v.dtype.kind == "c" for v in ds.variables.values()
    ):
        kwargs["auto_complex"] = True
    if kwargs.get("engine") in (None, "netcdf4", "scipy"):
        _refuse_bool_attrs(ds)
    ds = widen_for_netcdf(ds)
    complex_vars = sorted(str(n) for n, v in ds.variables.items() if v.dtype.kind == "c")
    if complex_vars:  # reading needs auto_complex then, and only then (see open_results)
        ds.attrs[COMPLEX_ATTR] = json.dumps(complex_vars)
    renamed = netcdf_names(ds, space_names, complex_values=bool(complex_vars))
    if renamed:
        ds = ds.rename({old: new for new, old in renamed.items()})
        ds.attrs[NETCDF_NAMES_ATTR] = json.dumps(renamed)
    remove_stale_leftovers(target)  # of writes killed before their rename
    tmp = make_temp_beside(target)  # the umask's mode, as open() gives: kept by the rename
    try:
        ds.to_netcdf(tmp, **kwargs)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def undo_netcdf_names(ds: xr.Dataset) -> xr.Dataset:
    """Names back as they were before :func:`write_netcdf` adapted them."""
    raw = ds.attrs.get(NETCDF_NAMES_ATTR)
    if raw is None:
        return ds
    renamed = read_json(raw, NETCDF_NAMES_ATTR)
    if not isinstance(renamed, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in renamed.items()):
        raise ValueError(f"attrs entry {NETCDF_NAMES_ATTR!r} must map names in the file to names, "
                         f"got {raw!r}")
    present = {k: v for k, v in renamed.items() if k in ds.variables or k in ds.dims}
    ds = ds.rename(present)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != NETCDF_NAMES_ATTR}
    return ds

"""Files: results written to netCDF safely, and read back from netCDF or a zarr store.

netCDF is the export format. A write goes to a temporary file beside the
target, renamed on success, so a failed write never destroys an existing
file. What netCDF cannot hold is adapted and recorded in attributes, so that
:func:`open_results` gives back exactly what was saved:

- names netCDF rejects (``[0]`` of a list output, ``a/b``) are saved as
  ``result[0]`` (``state...`` for the space's own names), recorded in
  ``labeled_spaces:netcdf_names``;
- float16 and bfloat16 variables are widened to float32, their dtype kept in
  the variable attribute ``labeled_spaces:dtype``;
- complex variables become netCDF4 compound types (``auto_complex=True``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .names import netcdf_names

__all__ = ["DTYPE_ATTR", "restore_dtypes", "widen_for_netcdf", "write_netcdf"]

DTYPE_ATTR = "labeled_spaces:dtype"
NAMES_ATTR = "labeled_spaces:netcdf_names"


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
    if not changes:
        return ds
    out = ds.copy(deep=False)
    for name, var in changes.items():
        if name in out.indexes:
            out = out.assign_coords({name: var})
        else:
            out[name] = var
    return out


def restore_dtypes(ds: xr.Dataset) -> xr.Dataset:
    """Undo :func:`widen_for_netcdf`: variables back in the dtype recorded in their attrs."""
    import jax.numpy as jnp

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
        changes[name] = xr.Variable(var.dims, np.asarray(var.values).astype(target), attrs)
    if not changes:
        return ds
    out = ds.copy(deep=False)
    for name, var in changes.items():
        if name in out.coords:
            out = out.assign_coords({name: var})
        else:
            out[name] = var
    return out


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
    ds = widen_for_netcdf(ds)
    renamed = netcdf_names(ds, space_names)
    if renamed:
        ds = ds.rename({old: new for new, old in renamed.items()})
        ds.attrs[NAMES_ATTR] = json.dumps(renamed)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, **kwargs)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def undo_netcdf_names(ds: xr.Dataset) -> xr.Dataset:
    """Names back as they were before :func:`write_netcdf` adapted them."""
    raw = ds.attrs.get(NAMES_ATTR)
    if raw is None:
        return ds
    try:
        renamed: Mapping[str, str] = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"attrs entry {NAMES_ATTR!r} is not valid JSON: {err}") from None
    present = {k: v for k, v in renamed.items() if k in ds.variables or k in ds.dims}
    ds = ds.rename(present)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != NAMES_ATTR}
    return ds

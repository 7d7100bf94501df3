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

import dataclasses
import json
import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "DTYPE_ATTR", "netcdf_names", "open_results", "restore_dtypes", "undo_netcdf_names",
    "widen_for_netcdf", "write_netcdf",
]

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
        if name in reserved:
            new = ("state_" if name in space_names else "result_") + name
            while new in taken:
                new += "_"
            taken.add(new)
            renamed[new] = name
            continue
        new = name.replace("/", "_")
        if not _NETCDF_FIRST.match(new):
            new = ("state" if name in space_names else "result") + new
        while new in taken:
            new += "_"
        taken.add(new)
        renamed[new] = name
    return renamed


DTYPE_ATTR = "labeled_spaces:dtype"
NAMES_ATTR = "labeled_spaces:netcdf_names"
COMPLEX_ATTR = "labeled_spaces:complex"


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


def _with_variables(ds: xr.Dataset, changes: dict[str, xr.Variable]) -> xr.Dataset:
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
    return _with_variables(ds, changes)


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
    complex_vars = sorted(str(n) for n, v in ds.variables.items() if v.dtype.kind == "c")
    if complex_vars:  # reading needs auto_complex then, and only then (see open_results)
        ds.attrs[COMPLEX_ATTR] = json.dumps(complex_vars)
    renamed = netcdf_names(ds, space_names, complex_values=bool(complex_vars))
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


def _has_complex(path: Path) -> bool:
    """Whether a netCDF file written here holds complex variables.

    netCDF4's ``auto_complex`` also reads a real variable whose last dimension
    has length 2 and a name like ``c`` as complex, so it is asked for only
    where the file says it holds complex values.
    """
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            return COMPLEX_ATTR in nc.ncattrs()
    except OSError as err:
        raise ValueError(f"path must be a netCDF file or zarr store, got {str(path)!r}: "
                         f"{err}") from None


def _outputs_of(ds: xr.Dataset, space: Any, partial: bool) -> tuple[Any, list[str]]:
    """The Outputs a saved Dataset holds, and their variables in output order."""
    from .names import Outputs, structure_from_json

    attrs = ds.attrs
    try:
        names = json.loads(attrs["labeled_spaces:outputs"])
        output_dims = json.loads(attrs.get("labeled_spaces:output_dims", "{}"))
    except KeyError as err:
        raise ValueError(f"attrs lack the labeled_spaces entry {err}: not saved results") from None
    raw_tree = attrs.get("labeled_spaces:output_tree")
    if raw_tree is not None:
        treedef = structure_from_json(json.loads(raw_tree))
    else:  # an output structure that could not be described: its leaves by name
        import jax

        treedef = jax.tree.structure(dict.fromkeys(names, 0))
    if treedef.num_leaves != len(names):
        raise ValueError(f"labeled_spaces:output_tree holds {treedef.num_leaves} leaves for "
                         f"{len(names)} outputs {names}")
    # the variable names are the ones a run of this space names these outputs
    probe = Outputs.build(space, treedef, [()] * len(names), [np.float32] * len(names),
                          partial=partial)
    variables = list(probe.var_names)
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise ValueError(f"the file lacks the output variables {missing} its attrs name")
    ndim = len(space.dims)
    shapes = [ds[v].shape[ndim:] for v in variables]
    dtypes = [ds[v].dtype for v in variables]
    own_dims = {d for v in variables for d in ds[v].dims[ndim:]}
    coords = {name: ds.coords[name].variable for name in ds.coords
              if set(ds.coords[name].dims) and set(ds.coords[name].dims) <= own_dims}
    out_attrs = {name: {k: val for k, val in ds[v].attrs.items() if k != DTYPE_ATTR}
                 for name, v in zip(names, variables, strict=True)}
    outputs = Outputs.build(space, treedef, shapes, dtypes, output_dims or None, coords or None,
                            out_attrs, partial=partial)
    return outputs, variables


def open_results(path: Any, state: Any = None) -> Any:
    """Results saved to a zarr store or a netCDF file, with their Space rebuilt.

    The Space is rebuilt from the attrs (every axis kind, names, groups,
    attrs, key, mode and the fixed leaves where they could be saved), so
    ``ParallelExecution(model, open_results(path).space)`` runs again.
    Results are lazy (dask-backed): ``sel``/``isel``/reductions read only
    what they need. A store may still be being written: its unfinished
    blocks are NaN (floats) and ``results.complete`` is False.

    Parameters
    ----------
    path : str or path-like
        A ``.zarr`` store, or a netCDF file written by ``Results.to_netcdf``.
    state : pytree, optional
        The original state, for axes the file cannot describe (custom axes,
        some NumPyro distributions) and fixed leaves too large for the attrs.

    Returns
    -------
    Results

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space, open_results
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3), "dt": 0.1}, mode="product")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sweep.nc"
    >>> ParallelExecution(lambda s: s["k"] * s["dt"], space, progress=False).run().to_netcdf(path)
    >>> results = open_results(path)
    >>> results.space.sizes, round(float(results.sel(k=1.0)["result"]), 6)
    ({'k': 3}, 0.1)
    """
    from ..space import Space
    from .identity import recorded_arguments
    from .results import Results
    from .store import done_mask, open_store, store_state

    target = Path(os.fspath(path))
    if not target.exists():
        raise FileNotFoundError(f"path must be an existing zarr store or netCDF file, got "
                                f"{str(target)!r}")
    done = None
    if target.is_dir():
        ds = open_store(target)
        blocks = store_state(target)  # per block: marked done and its chunks there
        if blocks is not None and not blocks.done.all():
            done = done_mask(blocks.blocks, blocks.done)
    else:
        auto_complex = _has_complex(target)  # a ValueError for what is not netCDF
        try:
            ds = xr.open_dataset(target, chunks={}, auto_complex=auto_complex)
        except (OSError, ValueError) as err:
            raise ValueError(f"path must be a netCDF file or zarr store, got {str(target)!r}: "
                             f"{err}") from None
        ds = restore_dtypes(undo_netcdf_names(ds))
        ds.attrs.pop(COMPLEX_ATTR, None)
        if "computed" in ds.data_vars:
            done = np.asarray(ds["computed"].values, dtype=bool)
    space = Space.from_attrs(ds.attrs, state=state, data=ds)
    outputs, variables = _outputs_of(ds, space, partial=done is not None)
    arguments, program = recorded_arguments(ds.attrs)  # how the results were made
    outputs = dataclasses.replace(outputs, arguments=arguments, fingerprint=program)
    arrays = []
    for v, dtype in zip(variables, outputs.dtypes, strict=True):
        data = ds[v].data
        arrays.append(data if data.dtype == dtype else data.astype(dtype))
    return Results.from_outputs(space, outputs, arrays, done)

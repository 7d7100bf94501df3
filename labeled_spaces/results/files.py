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
import warnings
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._codec import read_json
from .._paths import make_temp_beside, remove_stale_leftovers
from .edited import check_coordinates, file_selection, in_space_order, select_done
from .file_safety import COMPLEX_ATTR, open_dataset, reading

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


def _with_variables(ds: xr.Dataset, changes: Mapping[Hashable, xr.Variable]) -> xr.Dataset:
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
    raw = ds.attrs.get(NAMES_ATTR)
    if raw is None:
        return ds
    renamed = read_json(raw, NAMES_ATTR)
    if not isinstance(renamed, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in renamed.items()):
        raise ValueError(f"attrs entry {NAMES_ATTR!r} must map names in the file to names, "
                         f"got {raw!r}")
    present = {k: v for k, v in renamed.items() if k in ds.variables or k in ds.dims}
    ds = ds.rename(present)
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != NAMES_ATTR}
    return ds


def _entry(attrs: Mapping[str, Any], name: str, default: Any = KeyError) -> Any:
    full = f"labeled_spaces:{name}"
    if full not in attrs:
        if default is KeyError:
            raise ValueError(f"attrs lack the labeled_spaces entry {full!r}: not saved results")
        return default
    return read_json(attrs[full], full)


def _outputs_of(ds: xr.Dataset, space: Any, partial: bool
                ) -> tuple[Any, list[str], list[xr.Variable]]:
    """The Outputs a saved Dataset holds, their variables, and these in the space's order."""
    from .names import Outputs
    from .output_tree import structure_from_json

    attrs = ds.attrs
    names = _entry(attrs, "outputs")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"attrs entry labeled_spaces:outputs must be a list of output "
                         f"names, got {names!r}")
    output_dims = _entry(attrs, "output_dims", {})
    if not isinstance(output_dims, Mapping):
        raise ValueError(f"attrs entry labeled_spaces:output_dims must map outputs to "
                         f"dimension names, got {output_dims!r}")
    raw_tree = _entry(attrs, "output_tree", None)
    if raw_tree is not None:
        treedef = structure_from_json(raw_tree)
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
    # the outputs' own dims, named as the attrs name them, then each variable in that order
    rest = [[d for d in ds[v].dims if d not in space.dims] for v in variables]
    named = Outputs.build(space, treedef, [(0,) * len(r) for r in rest],
                          [np.float32] * len(names), output_dims or None, partial=partial)
    ordered = [in_space_order(ds[v].variable, v, space.dims, own)
               for v, own in zip(variables, named.dims, strict=True)]
    ndim = len(space.dims)
    shapes = [var.shape[ndim:] for var in ordered]
    dtypes = [var.dtype for var in ordered]
    own_dims = {d for dims in named.dims for d in dims}
    coords = {name: ds.coords[name].variable for name in ds.coords
              if set(ds.coords[name].dims) and set(ds.coords[name].dims) <= own_dims}
    out_attrs = {name: {k: val for k, val in ds[v].attrs.items() if k != DTYPE_ATTR}
                 for name, v in zip(names, variables, strict=True)}
    outputs = Outputs.build(space, treedef, shapes, dtypes, output_dims or None, coords or None,
                            out_attrs, partial=partial)
    return outputs, variables, ordered


def _store_done(path: Path, ds: xr.Dataset, space: Any) -> Any:
    """The completion mask of a run's store over its whole space (None: every block done).

    A block counts as done only when it is marked done and its chunks are all
    there (:func:`store_state`); the mask is lazy for big spaces.
    """
    from .store_writer import done_mask, store_state

    state = store_state(path)
    if state is None:
        return None  # a plain zarr copy of results: complete
    if list(state.blocks.shape) != list(space.shape):
        raise ValueError(f"attrs entry labeled_spaces:store must describe blocks over the "
                         f"space's shape {list(space.shape)}, got "
                         f"{_entry(ds.attrs, 'store')!r}")
    return None if state.done.all() else done_mask(state.blocks, state.done)


def open_results(path: Any, state: Any = None) -> Any:
    """Results saved to a zarr store or a netCDF file, with their Space rebuilt.

    The Space is rebuilt from the attrs (every axis kind, names, groups,
    attrs, key, mode and the fixed leaves where they could be saved), so
    ``ParallelExecution(model, open_results(path).space)`` runs again.
    Results are lazy (dask-backed): ``sel``/``isel``/reductions read only
    what they need. A store may still be being written: its unfinished
    blocks are NaN (floats) and ``results.complete`` is False.

    A file edited with xarray after it was saved (``isel``, ``sel``,
    ``transpose``, variables added) is matched by its labels: the space
    becomes the sub-space of the points the file holds, and the variables
    the file added are kept in ``to_xarray()``. A file whose labels do not
    match the space its attrs describe is refused. A file is data: it is
    read only if it is a regular file or a store of plain files, keeps all
    its data inside itself (no HDF5 external storage or links), and claims
    no more than its size warrants.

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

    Raises
    ------
    FileNotFoundError
        For a missing path.
    ValueError
        For what is not results, or not only data (see above), naming why.

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
    >>> import xarray as xr
    >>> with xr.open_dataset(path) as ds:
    ...     ds.isel(k=[2, 0]).to_netcdf(path.with_name("edited.nc"))
    >>> open_results(path.with_name("edited.nc")).space.sizes
    {'k': 2}
    """
    from ..space import Space
    from .identity import recorded_arguments
    from .names import COMPUTED
    from .results import Results

    with reading(path) as target:
        ds = open_dataset(target)
        if not target.is_dir():
            ds = restore_dtypes(undo_netcdf_names(ds))
            ds.attrs.pop(COMPLEX_ATTR, None)
        space = Space.from_attrs(ds.attrs, state=state, data=ds)
        done = _store_done(target, ds, space) if target.is_dir() else None
        picks = file_selection(space, ds)
        if picks:  # the file holds some points of the space: the sub-space of these
            done = select_done(done, space.dims, picks)
            space = space.isel(picks)
        check_coordinates(space, ds)
        if COMPUTED in ds.data_vars:
            done = np.asarray(in_space_order(ds[COMPUTED].variable, COMPUTED, space.dims,
                                             ()).values, dtype=bool)
        outputs, variables, ordered = _outputs_of(ds, space, partial=done is not None)
        arguments, program = recorded_arguments(ds.attrs)  # how the results were made
        outputs = dataclasses.replace(outputs, arguments=arguments, fingerprint=program)
        arrays = []
        for var, dtype in zip(ordered, outputs.dtypes, strict=True):
            data = var.data
            arrays.append(data if data.dtype == dtype else data.astype(dtype))
        known = {*variables, COMPUTED, *space.coords, *outputs.coords}
        others = ds.drop_vars([n for n in ds.variables if n in known])
        others.attrs = {}
        added = others if others.variables else None
    return Results.from_outputs(space, outputs, arrays, done, added=added)

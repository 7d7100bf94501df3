"""Reading results back: ``open_results`` of a netCDF file or a zarr store, Space rebuilt.

The Space comes from the file's attrs (:meth:`labeled_spaces.Space.from_attrs`),
the outputs from their ``labeled_spaces:output*`` entries (see
:mod:`labeled_spaces._schema`), what netCDF adapted is undone
(:mod:`labeled_spaces.results.netcdf`), a store's unfinished blocks are
masked (:mod:`labeled_spaces.results.store_writer`), and a file edited with
xarray is matched by its labels (:mod:`labeled_spaces.results.edited`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import jax
import numpy as np
import xarray as xr

from .._format import format_count
from .._schema import (
    ANALYSIS_ATTR,
    COMPLEX_ATTR,
    DTYPE_ATTR,
    IDENTITY_ATTR,
    KEY_ATTR,
    OUTPUT_DIMS_ATTR,
    OUTPUT_TREE_ATTR,
    OUTPUTS_ATTR,
    REFINE_ATTR,
    STORE_ATTR,
    read_entry,
)
from ..space import Space
from .edited import check_coordinates, file_selection, in_space_order, select_done
from .file_keys import key_differences
from .file_safety import open_dataset, reading
from .fitted import FitResults
from .identity import space_differences
from .names import COMPUTED, Outputs
from .netcdf import restore_dtypes, undo_netcdf_names
from .output_tree import structure_from_json
from .recorded import recorded
from .refined import ROUND, Refinement, RefineResults, file_rounds
from .results import Results
from .store_writer import done_mask, store_state

__all__ = ["open_results"]

# the Results class each analysis returns, by the name its results record (ANALYSIS_ATTR):
# a fixed table, so that a file's string picks one of these and never names code to run
_REOPENED = {"fit": FitResults.reopened}


def _fixed_width(var: xr.Variable) -> xr.Variable:
    """A coordinate of strings as fixed-width unicode, as it was given to the run.

    zarr 3 reads strings as NumPy's ``StringDType``; left so, an output
    coordinate (``wrt`` of gradients, ``output_coords`` of labels) would change
    the run identity ``to_xarray()`` records and compare unequal to the saved one.
    """
    if getattr(var.dtype, "kind", "") != "T":
        return var
    values = np.asarray(var.values)
    return xr.Variable(var.dims, np.asarray(values.tolist(), dtype=str).reshape(values.shape),
                       var.attrs, var.encoding)


def _outputs_of(ds: xr.Dataset, space: Any, partial: bool
                ) -> tuple[Any, list[str], list[xr.Variable]]:
    """The Outputs a saved Dataset holds, their variables, and these in the space's order."""
    attrs = ds.attrs
    names = read_entry(attrs, OUTPUTS_ATTR, hint=": not saved results")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"attrs entry {OUTPUTS_ATTR} must be a list of output "
                         f"names, got {names!r}")
    output_dims = read_entry(attrs, OUTPUT_DIMS_ATTR, {})
    if not isinstance(output_dims, Mapping):
        raise ValueError(f"attrs entry {OUTPUT_DIMS_ATTR} must map outputs to "
                         f"dimension names, got {output_dims!r}")
    raw_tree = read_entry(attrs, OUTPUT_TREE_ATTR, None)
    if raw_tree is not None:
        treedef = structure_from_json(raw_tree)
    else:  # an output structure that could not be described: its leaves by name
        treedef = jax.tree.structure(dict.fromkeys(names, 0))
    if treedef.num_leaves != len(names):
        raise ValueError(f"{OUTPUT_TREE_ATTR} holds "
                         f"{format_count(treedef.num_leaves, 'leaf', 'leaves')} for "
                         f"{format_count(len(names), 'output')} {names}")
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
    coords = {name: _fixed_width(ds.coords[name].variable) for name in ds.coords
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
    state = store_state(path)
    if state is None:
        return None  # a plain zarr copy of results: complete
    if list(state.blocks.shape) != list(space.shape):
        raise ValueError(f"attrs entry {STORE_ATTR} must describe blocks over the "
                         f"space's shape {list(space.shape)}, got "
                         f"{read_entry(ds.attrs, STORE_ATTR)!r}")
    return None if state.done.all() else done_mask(state.blocks, state.done)


def _check_state(space: Space, attrs: Any) -> None:
    """Refuse a ``state=`` that rebuilds another space than the run's (fixed leaves, axes)."""
    found = space_differences(attrs, space)
    if found:
        raise ValueError(f"state must be the state the results were computed from; the space it "
                         f"rebuilds differs from the run's: {'; '.join(found)}")


def _check_key(space: Space, attrs: Any) -> None:
    """Refuse a rebuilt space whose keys differ from the run identity's.

    An edited key attr, or a ``KeyAxis`` split under another JAX setting,
    would give a rerun other keys than the run's; the coordinates, checked
    against the data, catch the rest.
    """
    found = key_differences(attrs, space)
    if found:
        raise ValueError(
            f"the space rebuilt from attrs entry {KEY_ATTR} gives other keys than the run's "
            f"own record in {IDENTITY_ATTR} ({'; '.join(found)}): a rerun would not be the "
            "run")


def _refined(results: RefineResults, ds: xr.Dataset) -> RefineResults:
    """Results of refine: how the refinement was asked for, and each point's round.

    The rounds follow from the points' positions along ``point`` (kept by a
    file edited with xarray), the first round's size and ``batch``; a file
    whose attr does not fit its points, or whose ``round`` coordinate
    differs from them, is refused (:func:`~labeled_spaces.results.refined.file_rounds`).
    """
    results.refinement = Refinement.from_json(ds.attrs[REFINE_ATTR])
    results.rounds = file_rounds(results.refinement, results.space, ds)
    return results


def open_results(path: Any, state: Any = None) -> Any:
    """Results saved to a zarr store or a netCDF file, with their Space rebuilt.

    The Space is rebuilt from the attrs (every axis kind, names, groups,
    attrs, key, mode and the fixed leaves where they could be saved), so
    ``ParallelExecution(model, open_results(path).space)`` runs again. A
    state of NamedTuples, dataclasses or other pytree classes comes back as
    an ``OrderedDict`` of its leaves by path, with a warning naming the
    classes (a file names them but is never allowed to import them): pass
    ``state=`` to get them back.
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
        It must be the run's: a fixed leaf or an axis that differs from the one
        the file records (or a leaf missing or added), or a space it rebuilds
        that differs from the run identity the file records (an axis's field or
        size), is a ``ValueError`` naming the difference. (A sub-space's file
        keeps the points it selected; the original state's axes are not
        compared with them.)

    Returns
    -------
    Results
        The class the analysis that made them returns:
        :class:`~labeled_spaces.RefineResults` for the results of ``refine``
        (a file or store whose attrs say how the refinement was asked for:
        ``labeled_spaces:refine``), with ``to_grid`` and ``rounds``;
        :class:`~labeled_spaces.FitResults` (with ``best()``) for a fit, where the
        attrs name it (``labeled_spaces:analysis``); else Results.

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
    with reading(path) as target:
        ds = open_dataset(target)
        if not target.is_dir():
            ds = undo_netcdf_names(ds)
            ds.attrs.pop(COMPLEX_ATTR, None)
        ds = restore_dtypes(ds)  # bfloat16, which netCDF and zarr lack, is stored widened
        space = Space.from_attrs(ds.attrs, state=state, data=ds)
        if state is not None:
            _check_state(space, ds.attrs)
        else:
            _check_key(space, ds.attrs)
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
        how = recorded(ds.attrs)  # how the results were made
        outputs = dataclasses.replace(outputs, arguments=how.arguments,
                                      fingerprint=how.program, settings=how.settings)
        kind = ds.attrs.get(ANALYSIS_ATTR)
        arrays = []
        for var, dtype in zip(ordered, outputs.dtypes, strict=True):
            data = var.data
            arrays.append(data if data.dtype == dtype else data.astype(dtype))
        refined = REFINE_ATTR in ds.attrs
        # the rounds of refine's results come back as RefineResults.rounds, which puts them in
        known = {*variables, COMPUTED, *space.coords, *outputs.coords,
                 *([ROUND] if refined and ROUND not in variables else [])}
        others = ds.drop_vars([n for n in ds.variables if n in known])
        others.attrs = {}
        added = others if others.variables else None
        if refined:  # a fixed class: the attr says how it was asked for, nothing to call
            made = RefineResults.from_outputs(space, outputs, arrays, done, added=added)
            return _refined(cast(RefineResults, made), ds)
    results = Results.from_outputs(space, outputs, arrays, done, added=added)
    reopen = _REOPENED.get(kind) if isinstance(kind, str) else None
    return results if reopen is None else reopen(results)

"""Results: a model's outputs over a Space, as labeled xarray objects.

Every output leaf is one array shaped ``space.shape + leaf.shape`` (C order,
so its flat view follows the space's flat index): NumPy arrays in memory, or
dask arrays over a zarr store (lazy). :class:`Results` keeps the TVB-Optim
flat-index view (``results[i]``, slices, iteration, ``len``) and the labeled
view (``to_xarray``, ``sel``, ``isel``, netCDF), whose Dataset is built once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd
import xarray as xr

from .._checks import closest
from .._format import results_lines
from .._memory import refuse_beyond_memory
from ..space import SelectionError, Space, flat_position, keypath_name
from . import flat_view
from .names import COMPUTED, Outputs, unique_names
from .netcdf import write_netcdf
from .recorded import identity_attrs

__all__ = ["ParallelResult", "Results", "SequentialResult"]


class Results:
    """The outputs of a model at every combination of a Space.

    Parameters
    ----------
    space : Space
        The space that was run.
    treedef : jax tree structure
        Structure of one combination's output.
    arrays : sequence of array
        One per output leaf, shaped ``space.shape + leaf_shape``: NumPy arrays
        (made read-only) or dask arrays (lazy results of a store).
    output_dims : dict, optional
        ``{output name: (dim, ...)}`` names for the outputs' own dimensions
        (default ``{name}_dim_{k}``).
    done : numpy.ndarray of bool, optional
        For partial results (see :class:`labeled_spaces.ModelError`): which
        combinations were computed (shape ``space.shape``); the others hold
        NaN (floats) or 0 (integers), and the Dataset gets a ``computed``
        mask.
    output_coords : dict, optional
        ``{dim: values}`` coordinates of the outputs' own dimensions (arrays,
        ``(values, attrs)`` or DataArrays).
    output_attrs : dict, optional
        ``{output name: attrs}``, e.g. ``{"R_t": {"units": "1"}}``.

    Notes
    -----
    ``results[i]`` is the output pytree of combination ``i`` with JAX arrays
    as leaves, as TVB-Optim's (NumPy where JAX would change the dtype: float64
    values read without ``jax_enable_x64``). Data variables are named by the output's
    key path (see :mod:`labeled_spaces.results.names` for how clashes are
    resolved).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
    >>> results = ParallelExecution(lambda s: {"y": 2 * s["k"]}, space, progress=False).run()
    >>> float(results[1]["y"]), results.to_xarray()["y"].sel(k=1.0).item()
    (1.0, 2.0)
    """

    def __init__(
        self,
        space: Space,
        treedef: Any,
        arrays: Sequence[Any],
        output_dims: Mapping[str, Sequence[str]] | None = None,
        done: np.ndarray | None = None,
        output_coords: Mapping[str, Any] | None = None,
        output_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        ndim = len(space.shape)
        outputs = Outputs.build(
            space, treedef, [a.shape[ndim:] for a in arrays], [a.dtype for a in arrays],
            output_dims, output_coords, output_attrs, partial=done is not None,
        )
        self._setup(space, outputs, arrays, done)

    @classmethod
    def from_outputs(cls, space: Space, outputs: Outputs, arrays: Sequence[Any],
                     done: np.ndarray | None = None, added: xr.Dataset | None = None
                     ) -> Results:
        """Results over arrays whose labels were checked already (what sinks build).

        Parameters
        ----------
        space : Space
        outputs : Outputs
            The labels, e.g. from :meth:`Outputs.build`.
        arrays : sequence of array
            One per output, shaped ``space.shape + outputs.shapes[k]``.
        done : numpy.ndarray of bool, optional
            As for the constructor.
        added : xarray.Dataset, optional
            Variables and coordinates a file holds besides the outputs (added
            with xarray after it was saved), kept in :meth:`to_xarray`; their
            dims must agree with the space's and the outputs' sizes.

        Returns
        -------
        Results
        """
        if done is not None and COMPUTED not in outputs.taken:
            # named apart from COMPUTED, still made by the same run: the identity keeps all
            outputs = dataclasses.replace(
                Outputs.build(space, outputs.treedef, outputs.shapes, outputs.dtypes,
                              outputs.output_dims, outputs.coords,
                              dict(zip(outputs.names, outputs.attrs, strict=True)),
                              partial=True),
                fingerprint=outputs.fingerprint, arguments=outputs.arguments,
                settings=outputs.settings)
        results = cls.__new__(cls)
        cls._setup(results, space, outputs, arrays, done)
        results.added = added
        return results

    def _setup(self, space: Space, outputs: Outputs, arrays: Sequence[Any],
               done: np.ndarray | None) -> None:
        ndim = len(space.shape)
        self.space, self.treedef, self.arrays = space, outputs.treedef, list(arrays)
        self.outputs, self.done = outputs, done
        for array in self.arrays:  # shared with to_xarray() and sinks: kept from being edited
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
        self._flat = [a.reshape((space.N, *a.shape[ndim:])) if isinstance(a, np.ndarray) else None
                      for a in self.arrays]
        self._dataset: xr.Dataset | None = None
        #: variables a file held besides the outputs (see :meth:`from_outputs`), or None
        self.added: xr.Dataset | None = None

    @property
    def names(self) -> list[str]:
        """Key paths of the output leaves (``metrics.mean``, ``result``, ``[0]``)."""
        return list(self.outputs.names)

    @property
    def output_dims(self) -> dict[str, tuple[str, ...]]:
        """The ``output_dims`` given (checked)."""
        return dict(self.outputs.output_dims)

    @property
    def complete(self) -> bool:
        """Whether every combination holds a value (False for partial results)."""
        return self.done is None or bool(np.all(self.done))

    # -- flat-index view (TVB-Optim) --------------------------------------
    @property
    def N(self) -> int:
        """Number of combinations, as TVB-Optim's results and ``Space.N`` (also beyond 2**63)."""
        return self.space.N

    def __len__(self) -> int:
        return len(self.space)

    def _digits(self, i: int) -> Any:
        return self.space.layout.grid.unravel(i)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            return self.to_xarray()[self.outputs.var_name(index)]
        n = self.space.N
        at = functools.partial(flat_view.item, self._flat, self.arrays, self.treedef,
                               self._digits)
        if isinstance(index, slice):
            return [at(i) for i in range(*index.indices(n))]
        return at(flat_position(index, n, f"{n} results"))

    def __iter__(self) -> Iterator[Any]:
        return flat_view.items(self._flat, self.arrays, self.treedef, self._digits,
                               self.space.N)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(results)``: a bare output's ``(N, *shape)`` array, else the items'."""
        held = flat_view.flat_array(self._flat, self.arrays, self.treedef, self.space.N,
                                    len(self.space.shape))
        out = np.asarray(list(self)) if held is None else held
        if dtype is not None and np.dtype(dtype) != out.dtype:
            return out.astype(dtype)
        return out.copy() if copy and held is not None else out  # the results' own: read-only

    def __repr__(self) -> str:
        computed = None if self.done is None else int(np.sum(self.done))
        lazy = not all(isinstance(a, np.ndarray) for a in self.arrays)
        outputs = self.outputs
        rows = [(var, shape, (*self.space.dims, *dims), dtype) for var, dims, shape, dtype
                in zip(outputs.var_names, outputs.dims, outputs.shapes, outputs.dtypes,
                       strict=True)]
        return "\n".join(results_lines(type(self).__name__, self.space.sizes, computed, lazy,
                                        rows))

    # -- labeled view ------------------------------------------------------
    @property
    def attrs(self) -> dict[str, str]:
        """The space's attrs, the description of the outputs and the run identity (JSON strings).

        ``labeled_spaces:arguments`` shows the model's extra arguments and
        ``labeled_spaces:identity`` the run identity (see
        :mod:`labeled_spaces.results.identity`).
        """
        return {**self.space.attrs, **self.outputs.file_attrs(),
                **identity_attrs(self.space, self.outputs)}

    def to_xarray(self) -> xr.Dataset:
        """All outputs as one ``xarray.Dataset`` (no copy of the data; built once).

        One data variable per output leaf, dims ``space.dims`` then the
        output's own, the space's coordinates and the output coordinates,
        each output's attrs, and attrs from which the Space can be rebuilt
        (``Space.from_attrs(ds.attrs)``). Lazy results give a dask-backed
        Dataset. Each call returns a new (shallow) Dataset, so changing it
        leaves the Results as they were.

        Returns
        -------
        xarray.Dataset

        Examples
        --------
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
        >>> ds = ParallelExecution(lambda s: s["k"] ** 2, space, progress=False).run().to_xarray()
        >>> ds["result"].dims
        ('k',)
        """
        if self._dataset is None:
            self._dataset = self._build_dataset()
        return self._dataset.copy(deep=False)

    def _build_dataset(self) -> xr.Dataset:
        outputs = self.outputs
        data = {}
        for var, dims, attrs, array in zip(outputs.var_names, outputs.dims, outputs.attrs,
                                           self.arrays, strict=True):
            data[var] = xr.Variable((*self.space.dims, *dims), array, attrs)
        if self.done is not None:
            data[COMPUTED] = xr.Variable(self.space.dims, self.done)
        coords = ({name: c.variable() for name, c in outputs.coords.items()}
                  if outputs.coords else None)
        ds = xr.Dataset(data, coords=self.space.coords, attrs=self.attrs)
        if coords is not None:
            ds = ds.assign_coords(coords)
        if self.added is not None:  # as Variables: paired by dimension name, never aligned
            added = self.added
            ds = ds.assign_coords({n: added.coords[n].variable for n in added.coords
                                   if n not in ds.coords})
            ds = ds.assign({n: added[n].variable for n in added.data_vars})
        return ds

    def sel(self, indexers: Mapping[str, Any] | None = None, method: str | None = None,
            tolerance: Any = None, drop: bool = False, **labels: Any) -> xr.Dataset:
        """Select by labels, as ``Space.sel`` does: ``results.sel(coupling=0.5)``.

        Labels of the space (dimension coordinates, zipped and grouped axes,
        several members of one group at once, unsorted random draws) are
        found as :meth:`labeled_spaces.Space.sel` finds them; other names
        (output coordinates such as ``time``) go to ``xarray.Dataset.sel``.

        Returns
        -------
        xarray.Dataset

        Examples
        --------
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
        >>> results = ParallelExecution(lambda s: 10 * s["k"], space, progress=False).run()
        >>> results.sel(k=0.4, method="nearest")["result"].item()
        5.0
        """
        query = dict(indexers or {}, **labels)
        # every name of the space (a point's scalar labels, unindexed coordinates too) is
        # answered as Space.sel answers it, never by xarray's own index errors
        space_names = {str(n) for n in (*self.space.coords, *self.space.dims)}
        own = {k: v for k, v in query.items() if k in space_names}
        rest = {k: v for k, v in query.items() if k not in space_names}
        ds = self.to_xarray()
        unknown = [str(k) for k in rest if k not in ds.dims and k not in ds.coords]
        if unknown:  # xarray's KeyError prints a FrozenMappingWarningOnValuesAccess repr
            names = sorted({*map(str, ds.dims), *map(str, ds.coords)})
            raise SelectionError(f"sel got {unknown}, which are not dimensions or coordinates "
                                 f"of the results; expected some of {names}"
                                 f"{closest(unknown[0], names)}")
        if own:
            ds = ds.isel(self.space.label_positions(own, method, tolerance), drop=drop)
        if rest:
            ds = ds.sel(rest, method=method, tolerance=tolerance, drop=drop)
        return ds

    def isel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> xr.Dataset:
        """``to_xarray().isel(...)``; a name of the space that is not a dimension is refused as
        ``Space.isel`` refuses it (a single point's ``sample``)."""
        options = ("drop", "missing_dims")  # xarray's own keywords of isel
        query = dict(indexers or {}, **{k: v for k, v in kwargs.items() if k not in options})
        ds = self.to_xarray()
        strict = kwargs.get("missing_dims", "raise") == "raise"
        space_names = {*map(str, self.space.coords), *self.space.dims}
        stray = {k: v for k, v in query.items() if strict and k not in ds.dims
                 and k in space_names}
        if stray:
            self.space.isel(stray)  # raises its SelectionError naming the dimensions left
        unknown = [str(k) for k in query if strict and k not in ds.dims]
        if unknown:  # xarray's ValueError prints a FrozenMappingWarningOnValuesAccess repr
            dims = list(map(str, ds.dims))
            raise SelectionError(f"isel got {unknown}, which are not dimensions of the "
                                 f"results; expected some of {dims}{closest(unknown[0], dims)}")
        return ds.isel(indexers, **kwargs)

    def to_netcdf(self, path: Any, **kwargs: Any) -> None:
        """Write the results to a netCDF file, safely.

        Written to a temporary file beside ``path`` and renamed on success, so
        a failed write never destroys an existing file; lazy results stream
        block by block with bounded memory. See
        :func:`labeled_spaces.results.netcdf.write_netcdf` for how names, complex,
        float16 and bfloat16 values are saved; :func:`labeled_spaces.open_results`
        reads the file back as it was.

        Parameters
        ----------
        path : str or path-like
            Where to write.
        **kwargs
            Passed to ``xarray.Dataset.to_netcdf``.

        Examples
        --------
        >>> import tempfile, pathlib, xarray as xr
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
        >>> results = ParallelExecution(lambda s: s["k"] ** 2, space, progress=False).run()
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sweep.nc"
        >>> results.to_netcdf(path)
        >>> xr.open_dataset(path)["result"].sel(k=0.5).item()
        0.25
        """
        write_netcdf(self.to_xarray(), path, {str(n) for n in (*self.space.coords,
                                                               *self.space.dims)}, **kwargs)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per combination: the space's columns, then one per output (as TVB-Optim).

        Output columns are named by key path (``value`` for a bare array, as
        TVB-Optim names it); a name that is also a parameter column becomes
        ``result.{name}``.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
        >>> ParallelExecution(lambda s: s["k"] + 1, space, progress=False).run().to_dataframe()
             k  value
        0  0.0    1.0
        1  0.5    1.5
        2  1.0    2.0
        """
        n = self.space.N
        refuse_beyond_memory(
            n * (self.outputs.lane_bytes() + 8 * (len(self.arrays) + len(self.space.axes))),
            f"to_dataframe of {n:,} results", "select first (results.sel(...)) or use "
            "to_xarray(), which holds the results without copying them")
        df = self.space.to_dataframe()
        dummy = self.treedef.unflatten([0] * self.treedef.num_leaves)
        paths = [keypath_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(dummy)[0]]
        columns = unique_names(paths, df.columns)
        for column, flat, array in zip(columns, self._flat, self.arrays, strict=True):
            if flat is None:
                flat = np.asarray(array).reshape((n, *array.shape[len(self.space.shape):]))
            df[column] = flat if flat.ndim == 1 else list(flat)
        return df


class ParallelResult(Results):
    """The Results of :class:`labeled_spaces.ParallelExecution` (TVB-Optim's name)."""


class SequentialResult(Results):
    """The Results of :class:`labeled_spaces.SequentialExecution` (TVB-Optim's name)."""


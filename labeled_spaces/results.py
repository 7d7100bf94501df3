"""Results: a model's outputs over a Space, as labeled xarray objects.

Every output leaf is one array shaped ``space.shape + leaf.shape`` (C order,
so its flat view follows the space's flat index). :class:`Results` keeps the
TVB-Optim flat-index view (``results[i]``, slices, iteration, ``len``) and
turns the arrays into an ``xarray.Dataset`` without copying them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd
import xarray as xr

from .axes import value_dims
from .space import Space, _flat_position, keypath_name

__all__ = ["Results", "output_names"]


def output_names(treedef: Any) -> list[str]:
    """Names of a model output's leaves by key path: ``metrics.mean``, ``[0]``, ``result``.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.results import output_names
    >>> output_names(jax.tree.structure({"a": 1, "m": {"mean": 2}}))
    ['a', 'm.mean']
    >>> output_names(jax.tree.structure(1.0))
    ['result']
    """
    dummy = treedef.unflatten([0] * treedef.num_leaves)
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(dummy)[0]]
    return [keypath_name(p) if p else "result" for p in paths]


def _check_output_dims(
    output_dims: Mapping[str, Sequence[str]] | None,
    names: Sequence[str],
    shapes: Sequence[tuple[int, ...]],
    space: Space,
) -> dict[str, tuple[str, ...]]:
    """Checked ``output_dims``: each output's own dims, named once, apart from the space's."""
    if output_dims is None:
        return {}
    if not isinstance(output_dims, Mapping):
        raise TypeError(
            f"output_dims must be a dict {{output name: dimension names}}, got {output_dims!r}"
        )
    # the space's dims and coordinates, and the own dims of value coordinates ({name}_dim_k)
    taken = {str(n) for n in (*space.dims, *space.coords, *space.coords.dims)}
    lengths: dict[str, tuple[int, str]] = {}  # dim -> (length, the output that set it)
    checked: dict[str, tuple[str, ...]] = {}
    for name, dims in output_dims.items():
        if name not in names:
            raise ValueError(
                f"output_dims names {name!r}, which is not an output of the model; "
                f"expected one of {list(names)}"
            )
        if isinstance(dims, str):
            dims = (dims,)
        elif not isinstance(dims, Sequence):
            raise TypeError(
                f"output_dims[{name!r}] must be a tuple of dimension names, got {dims!r}"
            )
        dims = tuple(dims)
        shape = shapes[list(names).index(name)]
        if len(dims) != len(shape) or not all(isinstance(d, str) and d for d in dims):
            raise ValueError(
                f"output_dims[{name!r}] must name the {len(shape)} dimension(s) of that "
                f"output (shape {shape}) with non-empty strings, got {dims!r}"
            )
        if len(set(dims)) != len(dims):
            raise ValueError(f"output_dims[{name!r}] names a dimension twice: {dims!r}")
        clash = [d for d in dims if d in taken]
        if clash:
            raise ValueError(
                f"output_dims[{name!r}] = {dims!r} reuses the space's dimension or "
                f"coordinate name(s) {clash}"
            )
        for d, length in zip(dims, shape, strict=True):
            if d in lengths and lengths[d][0] != length:
                other, first = lengths[d][1], lengths[d][0]
                raise ValueError(
                    f"output_dims gives dimension {d!r} length {first} (output {other!r}) "
                    f"and length {length} (output {name!r}); one name, one length"
                )
            lengths.setdefault(d, (length, name))
        checked[name] = dims
    return checked


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``result.{name}`` (then with ``_`` appended) where that is taken."""
    if name not in taken:
        return name
    new = f"result.{name}"
    while new in taken:
        new += "_"
    return new


def _renamed(names: Sequence[str], taken: Any) -> list[str]:
    """``names`` made distinct from ``taken``, from each other and from the names after them."""
    taken = {str(n) for n in taken}
    out: list[str] = []
    for k, name in enumerate(names):
        out.append(_unique(name, taken | set(names[k + 1:])))
        taken.add(out[-1])
    return out


# netCDF names must start with a letter, digit, underscore or non-ASCII character and
# cannot hold "/"; key paths of list and tuple outputs ("[0]") start with "["
_NETCDF_FIRST = re.compile(r"[A-Za-z0-9_]|[^\x00-\x7f]")


def _netcdf_names(ds: xr.Dataset, space_names: set[str]) -> dict[str, str]:
    """``{name in the file: name in the Dataset}`` for every name netCDF would reject.

    A rejected name gets the prefix ``state`` (space dimensions and coordinates)
    or ``result`` (outputs and their dimensions): ``[0]`` is saved as
    ``result[0]``; a ``/`` becomes ``_``.
    """
    taken = {str(n) for n in (*ds.variables, *ds.dims)}
    renamed: dict[str, str] = {}
    for name in sorted(taken):
        if _NETCDF_FIRST.match(name) and "/" not in name:
            continue
        new = name.replace("/", "_")
        if not _NETCDF_FIRST.match(new):
            new = ("state" if name in space_names else "result") + new
        while new in taken:
            new += "_"
        taken.add(new)
        renamed[new] = name
    return renamed


class Results:
    """The outputs of a model at every combination of a Space.

    Parameters
    ----------
    space : Space
        The space that was run.
    treedef : jax tree structure
        Structure of one combination's output.
    arrays : sequence of numpy.ndarray
        One per output leaf, shaped ``space.shape + leaf_shape``.
    output_dims : dict, optional
        ``{output name: (dim, ...)}`` names for the outputs' own dimensions
        (default ``{name}_dim_{k}``).
    done : numpy.ndarray of bool, optional
        For partial results (see :class:`labeled_spaces.ModelError`): which
        combinations were computed (shape ``space.shape``); the others hold
        NaN (floats) or 0 (integers).

    Notes
    -----
    ``results[i]`` is the output pytree of combination ``i`` with NumPy leaves
    (read-only views, not copies: the arrays are made read-only). Data
    variables are named by the output's key path; a name that is already a
    coordinate of the space, a dimension named in ``output_dims`` (or, in
    partial results, ``computed``, the mask of finished combinations) becomes
    ``result.{name}``, with ``_`` appended while that is taken too.

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
        arrays: Sequence[np.ndarray],
        output_dims: Mapping[str, Sequence[str]] | None = None,
        done: np.ndarray | None = None,
    ) -> None:
        self.space = space
        self.treedef = treedef
        self.arrays = list(arrays)
        self.names = output_names(treedef)
        self.output_dims = _check_output_dims(
            output_dims, self.names, [a.shape[len(space.shape):] for a in self.arrays], space
        )
        self.done = done
        for array in self.arrays:  # results[i] hands out views: keep them from being edited
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
        self._flat = [a.reshape((space.N, *a.shape[len(space.shape):])) for a in self.arrays]

    # -- flat-index view (TVB-Optim) --------------------------------------
    def __len__(self) -> int:
        return self.space.N

    def _at(self, i: int) -> Any:
        return self.treedef.unflatten([f[i] for f in self._flat])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            return self.to_xarray()[self._var_name(index)]
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(self.space.N))]
        n = self.space.N
        return self._at(_flat_position(index, n, f"{n} results"))

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.space.N):
            yield self._at(i)

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}: {s}" for d, s in self.space.sizes.items())
        state = "" if self.done is None else f", partial ({int(self.done.sum())} computed)"
        outputs = ", ".join(
            f"{n} {a.shape[len(self.space.shape):]}" for n, a in zip(self.names, self.arrays,
                                                                     strict=True)
        )
        return f"<labeled_spaces.Results> ({dims}){state}\nOutputs: {outputs}"

    # -- labeled view ------------------------------------------------------
    def _var_names(self) -> list[str]:
        # coordinates (and the "computed" mask of partial results) keep their names;
        # an output that would clash with one, or with a renamed output, is renamed
        taken = {str(n) for n in (*self.space.coords, *self.space.dims)}
        taken.update(d for dims in self.output_dims.values() for d in dims)
        if self.done is not None:
            taken.add("computed")
        return _renamed(self.names, taken)

    def _var_name(self, name: str) -> str:
        names = self._var_names()
        if name in names:
            return name
        if name in self.names:
            return names[self.names.index(name)]
        raise KeyError(f"{name!r} is not an output; the outputs are {names}")

    @property
    def attrs(self) -> dict[str, str]:
        """The space's attrs plus the output names and dims (JSON strings)."""
        attrs = dict(self.space.attrs)
        attrs["labeled_spaces:outputs"] = json.dumps(self.names)
        attrs["labeled_spaces:output_dims"] = json.dumps(self.output_dims)
        return attrs

    def to_xarray(self) -> xr.Dataset:
        """All outputs as one ``xarray.Dataset`` (no copy of the data).

        One data variable per output leaf, dims ``space.dims`` then the
        output's own (``output_dims`` or ``{name}_dim_{k}``), the space's
        coordinates, and attrs from which the Space can be rebuilt
        (``Space.from_attrs(ds.attrs)``).

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
        data = {}
        for name, var, array in zip(self.names, self._var_names(), self.arrays, strict=True):
            own = array.ndim - len(self.space.shape)
            extra = self.output_dims.get(name) or value_dims(var, own)
            data[var] = ((*self.space.dims, *extra), array)
        if self.done is not None:
            data["computed"] = (self.space.dims, self.done)
        return xr.Dataset(data, coords=self.space.coords, attrs=self.attrs)

    def sel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> xr.Dataset:
        """``to_xarray().sel(...)``, e.g. ``results.sel(coupling=0.5)``."""
        return self.to_xarray().sel(indexers, **kwargs)

    def isel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> xr.Dataset:
        """``to_xarray().isel(...)``."""
        return self.to_xarray().isel(indexers, **kwargs)

    def to_netcdf(self, path: Any, **kwargs: Any) -> Any:
        """Write the Dataset to netCDF (``to_xarray().to_netcdf(path)``).

        Parameters
        ----------
        path : str or path-like
            Where to write.
        **kwargs
            Passed to ``xarray.Dataset.to_netcdf``.

        Notes
        -----
        netCDF rejects names that start with ``[`` (the outputs of a model that
        returns a tuple or list) or contain ``/``; those are saved as
        ``result[0]`` (``state[0]`` for the space's own names), and the attribute
        ``labeled_spaces:netcdf_names`` (JSON ``{saved name: name}``) records
        every such change so that it can be undone on reading. Complex outputs
        are written with ``auto_complex=True`` (netCDF4 compound types) unless
        ``engine`` or ``auto_complex`` is given; read them with
        ``xarray.open_dataset(path, auto_complex=True)``.

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
        ds = self.to_xarray()
        if not {"engine", "auto_complex"} & set(kwargs) and any(
            np.iscomplexobj(a) for a in self.arrays
        ):
            kwargs["auto_complex"] = True
        renamed = _netcdf_names(ds, {str(n) for n in (*self.space.coords, *self.space.dims)})
        if renamed:
            ds = ds.rename({old: new for new, old in renamed.items()})
            ds.attrs["labeled_spaces:netcdf_names"] = json.dumps(renamed)
        return ds.to_netcdf(path, **kwargs)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per combination: the space's columns, then one per output (as TVB-Optim).

        An output name that is also a parameter column becomes ``result.{name}``.

        Returns
        -------
        pandas.DataFrame
        """
        df = self.space.to_dataframe()
        columns = _renamed(self.names, df.columns)
        for column, flat in zip(columns, self._flat, strict=True):
            df[column] = flat if flat.ndim == 1 else list(flat)
        return df

"""Space: axes found in a pytree, composed into named dimensions.

The Space is the one place that knows the product/zip/group arithmetic. It
samples every axis once (small per-axis value tables), assigns each axis to a
dimension, and maps a flat index, or a block of them inside ``jit``, to the
parameter pytree by integer arithmetic on those tables. The product itself is
never built unless a caller explicitly asks for all of it (``to_xarray``,
``to_dataframe``, ``collect``).
"""

from __future__ import annotations

import json
import numbers
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .axes import (
    AbstractAxis,
    DataAxis,
    _BoundedAxis,
    _decode,
    _encode,
    _jsonable,
    axis_from_spec,
    value_dims,
)
from .grid_index import GridIndex

__all__ = ["Space", "keypath_name", "SelectionError"]

MODES = ("product", "zip")
# a non-index value coordinate is kept only up to this many elements
_MAX_VALUE_COORD = 1_000_000
# a flat slice of a space beyond 2**63 combinations is unravelled in Python, up to this size
_MAX_HUGE_SLICE = 1_000_000


class SelectionError(KeyError, ValueError):
    """A label or dimension that ``sel``/``isel`` cannot find.

    A ``KeyError`` (as in xarray) and a ``ValueError`` (as for any bad argument).
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _is_axis(x: Any) -> bool:
    return isinstance(x, AbstractAxis)


def keypath_name(path: Sequence[Any]) -> str:
    """Name a pytree key path as TVB-Optim does: ``coupling.strength``, ``[0].gain``.

    Parameters
    ----------
    path : sequence of jax key entries
        As given by ``jax.tree_util.tree_flatten_with_path``.

    Returns
    -------
    str
        ``"value"`` for the root itself.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.space import keypath_name
    >>> [keypath_name(p) for p, _ in jax.tree_util.tree_flatten_with_path({"a": [1, {"b": 2}]})[0]]
    ['a[0]', 'a[1].b']
    """
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(f".{key.key}")
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(f"[{key.idx}]")
        elif isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(f".{key.name}")
        elif isinstance(key, jax.tree_util.FlattenedIndexKey):  # a node without key paths
            parts.append(f".{key.key}")
        else:
            parts.append(f".{key}")
    name = "".join(parts).lstrip(".")
    return name or "value"


def _check_key(key: Any) -> jax.Array:
    if key is None:
        return jax.random.key(0)
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
    raise TypeError(
        "key must be a jax.random.key(...) or jax.random.PRNGKey(...), "
        f"got {key!r} ({type(key).__name__})"
    )


def _key_data(key: jax.Array) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).ravel().tolist()


def _key_impl(key: jax.Array) -> str:
    """Name of the PRNG implementation of a checked key (raw uint32[2] keys are threefry)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(key))
    return "threefry2x32"


def _as_index(index: Any) -> int:
    if isinstance(index, (bool, np.bool_)):
        raise TypeError(f"index must be an integer or a slice, got {index!r}")
    if isinstance(index, numbers.Integral):
        return int(index)
    if isinstance(index, (np.ndarray, jax.Array)) and index.ndim == 0:
        if np.issubdtype(index.dtype, np.integer):
            return int(index)
    raise TypeError(
        f"index must be an integer or a slice, got {index!r} ({type(index).__name__})"
    )


def _flat_position(index: Any, n: int, of_what: str) -> int:
    """``index`` (negative counts from the end) as a position in ``range(n)``."""
    i = _as_index(index)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"index {index} is out of range for {of_what}")
    return i


@dataclass(frozen=True)
class _Dim:
    """One dimension: its name, size and the axes (by position) that vary along it."""

    name: str
    size: int
    members: tuple[int, ...]
    shared: bool  # a zip or group dim: members are coordinates, not the dim itself


class Space:
    """Every combination of the axes found in a parameter pytree, as a labeled grid.

    Parameters
    ----------
    state : pytree
        Any JAX pytree (dicts, lists, tuples, NamedTuples, registered
        dataclasses, equinox modules). Leaves that are axes vary; all others
        stay fixed. Axes are taken in ``jax.tree`` leaf order (dict keys sorted).
    mode : {"zip", "product"}, default "zip"
        ``"product"``: one dimension per ungrouped axis and per group (groups
        first, in the order their first axis appears, then the ungrouped axes,
        as TVB-Optim orders them); the flat index runs in C order over them.
        ``"zip"``: one shared dimension named ``dim``, as long as the shortest
        axis (a warning when sizes differ).
    key : jax.Array, optional
        Axis ``i`` samples with ``jax.random.split(key, n_axes + 1)[i + 1]``;
        ``None`` means ``jax.random.key(0)``.
    dim : str, default "sample"
        Name of the shared dimension in zip mode.

    Notes
    -----
    Naming: an ungrouped axis in product mode gives a dimension named
    ``axis.name`` (default: its key path, ``coupling.strength``). A group gives
    a dimension named ``str(group)`` with coordinate ``0..size-1``; each of
    its axes (and in zip mode every axis) is an indexed coordinate on that
    dimension named ``axis.name`` or its key path, so ``sel`` works by value
    there too. ``space[i]`` returns the fixed leaves as given and the varying
    ones as NumPy values (bit-identical to TVB-Optim's); nothing of size N is
    built to answer it.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import GridAxis, UniformAxis, Space
    >>> state = {"coupling": GridAxis(0.0, 1.0, 5), "noise": UniformAxis(0.0, 0.1, 3), "dt": 0.1}
    >>> space = Space(state, mode="product", key=jax.random.key(1))
    >>> len(space), space.dims, space.shape
    (15, ('coupling', 'noise'), (5, 3))
    >>> float(space[4]["coupling"]), space[4]["dt"]
    (0.25, 0.1)
    >>> space.sel(coupling=0.5).sizes
    {'noise': 3}
    """

    def __init__(
        self,
        state: Any,
        mode: str = "zip",
        key: jax.Array | None = None,
        dim: str = "sample",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'product' or 'zip', got {mode!r}")
        if not isinstance(dim, str) or not dim:
            raise TypeError(f"dim must be a non-empty string, got {dim!r}")
        self.state = state
        self.mode = mode
        self.key = _check_key(key)
        self.dim = dim

        flat, self._treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_axis)
        self._leaves = [leaf for _, leaf in flat]
        self._axis_pos = tuple(k for k, leaf in enumerate(self._leaves) if _is_axis(leaf))
        if not self._axis_pos:
            raise ValueError(
                "state must contain at least one axis (GridAxis, UniformAxis, ...), "
                f"got none in {state!r}"
            )
        self.axes: tuple[AbstractAxis, ...] = tuple(self._leaves[k] for k in self._axis_pos)
        self.paths: tuple[str, ...] = tuple(keypath_name(flat[k][0]) for k in self._axis_pos)
        self.names: tuple[str, ...] = tuple(
            a.name if a.name is not None else p for a, p in zip(self.axes, self.paths, strict=True)
        )

        keys = jax.random.split(self.key, len(self.axes) + 1)[1:]
        self._tables: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._value_coords: list[np.ndarray | None] = []
        for axis, axis_key in zip(self.axes, keys, strict=True):
            table = np.asarray(axis.generate_values(axis_key))
            if isinstance(axis, _BoundedAxis) and not np.isfinite(table).all():
                raise ValueError(
                    f"the axis at {self.paths[len(self._tables)]!r}, {axis!r}, "
                    f"gives values beyond the range of {table.dtype}; narrow its bounds "
                    "or enable jax_enable_x64"
                )
            table.flags.writeable = False  # space[i] hands out views of it
            self._tables.append(table)
            self._labels.append(np.asarray(axis.coordinate(axis_key)))
            self._value_coords.append(axis.value_coordinate(axis_key))

        self._dims = self._assign_dims()
        self._axis_dim = tuple(
            next(j for j, d in enumerate(self._dims) if a in d.members)
            for a in range(len(self.axes))
        )
        self.index = GridIndex([d.size for d in self._dims])
        self._check_names()
        self._device_tables: tuple[jax.Array, ...] | None = None
        # what a sub-space keeps of the space it was selected from (see _derived)
        self._positions: dict[str, np.ndarray] = {}
        self._scalar_coords: dict[str, xr.Variable] = {}

    # ------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------
    def _assign_dims(self) -> list[_Dim]:
        groups: dict[Hashable, list[int]] = {}
        ungrouped: list[int] = []
        for a, axis in enumerate(self.axes):
            if axis.group is not None:
                groups.setdefault(axis.group, []).append(a)
            else:
                ungrouped.append(a)
        effective: list[_Dim] = []
        for label, members in groups.items():
            sizes = [self.axes[a].size for a in members]
            if len(set(sizes)) > 1:
                warnings.warn(
                    f"axes in group {label!r} have different sizes {sizes}; "
                    f"using the smallest, {min(sizes)}",
                    stacklevel=3,
                )
            effective.append(_Dim(str(label), min(sizes), tuple(members), True))
        for a in ungrouped:
            effective.append(_Dim(self.names[a], self.axes[a].size, (a,), False))
        if self.mode == "product":
            return effective
        sizes = [d.size for d in effective]
        if len(set(sizes)) > 1:
            warnings.warn(
                f"in zip mode the axes have different sizes {sizes}; using the smallest, "
                f"{min(sizes)}, and dropping {sum(s - min(sizes) for s in sizes)} values",
                stacklevel=3,
            )
        return [_Dim(self.dim, min(sizes), tuple(range(len(self.axes))), True)]

    def _check_names(self) -> None:
        seen: dict[str, str] = {}

        def claim(name: str, what: str) -> None:
            if name in seen:
                raise ValueError(
                    f"duplicate dimension or coordinate name {name!r}: used by {seen[name]} "
                    f"and by {what}; give the axes distinct name= arguments"
                )
            seen[name] = what

        for d in self._dims:
            claim(d.name, f"dimension {d.name!r}")
        for a, name in enumerate(self.names):
            if self._dims[self._axis_dim[a]].shared:
                claim(name, f"axis at {self.paths[a]!r}")
            values = self._value_coords[a]
            if values is not None:
                claim(f"{name}_value", f"the values of axis {self.paths[a]!r}")
                for k, dim in enumerate(value_dims(name, values.ndim - 1)):
                    claim(dim, f"dimension {k} of the values of {self.paths[a]!r}")

    # ------------------------------------------------------------------
    # shape and labels
    # ------------------------------------------------------------------
    @property
    def N(self) -> int:
        """Number of combinations."""
        return self.index.N

    def __len__(self) -> int:
        return self.index.N

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimension names, slowest first."""
        return tuple(d.name for d in self._dims)

    @property
    def sizes(self) -> dict[str, int]:
        """``{dim: size}``, as ``xarray.Dataset.sizes``."""
        return {d.name: d.size for d in self._dims}

    @property
    def shape(self) -> tuple[int, ...]:
        """Size of every dimension, slowest first."""
        return self.index.shape

    @property
    def coords(self) -> xr.Coordinates:
        """The coordinates that ``to_xarray()`` and every Results carry.

        Dimension coordinates (the axis labels, or ``0..size-1`` on zip and
        group dimensions), the labels of zipped and grouped axes as indexed
        coordinates on their shared dimension, and the ``{name}_value``
        coordinates of axes whose labels are not their values (left out, to
        keep every Results light, where they would exceed 1e6 elements; the
        values are then in the axis itself). Sub-spaces made by
        :meth:`sel`/:meth:`isel` also carry the scalar labels of the
        dimensions they fixed.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(1.0, 2.0, 3)})
        >>> list(space.coords)
        ['sample', 'a', 'b']
        """
        coords: dict[str, Any] = {}
        indexed: list[str] = []
        for d in self._dims:
            if d.shared:
                coords[d.name] = xr.Variable(d.name, self._dim_positions(d))
            for a in d.members:
                name, axis = self.names[a], self.axes[a]
                if d.shared:
                    coords[name] = xr.Variable(d.name, self._labels[a][: d.size], axis.attrs)
                    indexed.append(name)
                else:
                    coords[name] = xr.Variable(name, self._labels[a][: d.size], axis.attrs)
                values = self._value_coords[a]
                if values is not None and values[: d.size].size <= _MAX_VALUE_COORD:
                    extra = value_dims(name, values.ndim - 1)
                    coords[f"{name}_value"] = xr.Variable((d.name, *extra), values[: d.size])
        coords.update(self._scalar_coords)
        ds = xr.Dataset(coords=coords)
        for name in indexed:
            ds = ds.set_xindex(name)
        return ds.coords

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}: {s}" for d, s in self.sizes.items())
        lines = [f"<labeled_spaces.Space> mode={self.mode!r}, {self.N:,} combinations",
                 f"Dimensions:  ({dims})", "Axes:"]
        width = max(len(n) for n in self.names)
        for a, axis in enumerate(self.axes):
            where = self._dims[self._axis_dim[a]].name
            lines.append(f"    {self.names[a]:<{width}}  ({where})  {axis!r}")
        return "\n".join(lines)

    # ------------------------------------------------------------------
    # flat-index access (host side: NumPy tables, nothing of size N)
    # ------------------------------------------------------------------
    def _assemble(self, axis_values: Sequence[Any], leaves: Sequence[Any] | None = None) -> Any:
        """The state with every axis replaced by the matching entry of ``axis_values``."""
        leaves = list(self._leaves if leaves is None else leaves)
        for pos, value in zip(self._axis_pos, axis_values, strict=True):
            leaves[pos] = value
        return self._treedef.unflatten(leaves)

    def _at_digits(self, digits: Sequence[int]) -> Any:
        return self._assemble(
            [t[digits[j]] for t, j in zip(self._tables, self._axis_dim, strict=True)]
        )

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._slice(index)
        n = self.index.N
        i = _flat_position(index, n, f"a space of {n} combinations")
        return self._at_digits(self.index.unravel(i))

    def __iter__(self) -> Iterator[Any]:
        """A fresh iterator over all combinations in flat order (nested loops work)."""
        unravel, at = self.index.unravel, self._at_digits
        for i in range(self.index.N):
            yield at(unravel(i))

    def _slice(self, index: slice) -> Space:
        positions = range(self.index.N)[index]
        if len(positions) == 0:
            raise ValueError(f"slice {index} selects no combination of a space of {self.N}")
        if self.index.N < 2**63:
            digits = self.index.unravel_many(np.arange(positions.start, positions.stop,
                                                       positions.step))
        elif len(positions) <= _MAX_HUGE_SLICE:  # flat indices beyond int64: Python ints
            digits = np.array([self.index.unravel(i) for i in positions], dtype=np.int64)
        else:
            raise ValueError(
                f"slice {index} selects {len(positions):,} combinations of a space beyond "
                f"2**63; slices of such spaces are limited to {_MAX_HUGE_SLICE:,}: "
                "select by dimension with isel(...) instead"
            )
        picks = [digits[:, self._axis_dim[a]] for a in range(len(self.axes))]
        return self._derived("zip", picks)

    def _derived(
        self,
        mode: str,
        picks: Sequence[np.ndarray | int],
        positions: dict[str, np.ndarray] | None = None,
        scalars: dict[str, xr.Variable] | None = None,
    ) -> Space:
        """A Space over ``table[picks[a]]`` of every axis ``a``; an int pick fixes the axis.

        A fixed axis becomes a 0-d array leaf (an argument of the compiled
        model, as it was, not a constant baked into it) and a scalar coordinate
        of the sub-space. ``positions`` keeps the original positions along
        shared dims (a slice numbers its new ``dim`` from 0); ``scalars`` are
        further scalar coordinates (the positions of fixed shared dims).
        """
        new_axes = []
        scalars = {**self._scalar_coords, **(scalars or {})}
        for a, (axis, pick) in enumerate(zip(self.axes, picks, strict=True)):
            if isinstance(pick, (int, np.integer)):
                new_axes.append(np.array(self._tables[a][pick]))
                scalars[self.names[a]] = xr.Variable((), self._labels[a][pick], axis.attrs)
                values = self._value_coords[a]
                if values is not None:
                    own = value_dims(self.names[a], values.ndim - 1)
                    scalars[f"{self.names[a]}_value"] = xr.Variable(own, values[pick])
                continue
            values = self._value_coords[a]
            derived = DataAxis(
                self._tables[a][pick],
                labels=self._labels[a][pick],
                name=self.names[a],
                group=axis.group,
                attrs=axis.attrs,
            )
            derived._value_override = None if values is None else values[pick]
            new_axes.append(derived)
        if not any(_is_axis(x) for x in new_axes):
            raise ValueError(
                "the selection fixes every dimension, which leaves no axis to vary; "
                "select with a list (e.g. isel(x=[2])) to keep a dimension of size 1, "
                "or use space[i] for a single combination"
            )
        derived = Space(self._assemble(new_axes), mode=mode, key=self.key, dim=self.dim)
        derived._set_selection(positions or {}, scalars)
        return derived

    def _set_selection(
        self, positions: dict[str, np.ndarray], scalars: dict[str, xr.Variable]
    ) -> None:
        """Coordinates a sub-space keeps from the space it was selected from."""
        shared = {d.name for d in self._dims if d.shared}
        self._positions = {d: np.asarray(p) for d, p in positions.items() if d in shared}
        taken = set(self.names) | set(self.dims)
        self._scalar_coords = {k: v for k, v in scalars.items() if k not in taken}

    # ------------------------------------------------------------------
    # labeled selection
    # ------------------------------------------------------------------
    def isel(self, indexers: dict[str, Any] | None = None, **dims: Any) -> Space:
        """Sub-space by position along named dimensions, as ``xarray.Dataset.isel``.

        An integer fixes the dimension's axes at that point and drops the
        dimension, keeping their labels as scalar coordinates (the fixed
        values reach the model as 0-d array leaves); a slice, list or array
        keeps it. Zip and group dimensions keep their original positions as
        their coordinate, as xarray keeps labels, and the sub-space's
        :attr:`attrs` record these kept coordinates. (A flat slice,
        ``space[2:5]``, is TVB-Optim's: a new zip space numbered from 0.)

        Parameters
        ----------
        indexers : dict, optional
            ``{dim: positions}``; or give them as keywords.

        Returns
        -------
        Space

        Raises
        ------
        SelectionError
            For a name that is not a dimension.
        IndexError
            For a position out of range.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 5), "b": GridAxis(0, 1, 3)}, mode="product")
        >>> space.isel(a=slice(0, 2)).sizes
        {'a': 2, 'b': 3}
        """
        positions = dict(indexers or {}, **dims)
        unknown = [k for k in positions if k not in self.sizes]
        if unknown:
            raise SelectionError(
                f"isel got {unknown} which are not dimensions of the space; "
                f"expected one of {list(self.dims)}"
            )
        chosen: dict[str, np.ndarray | int] = {}
        for name, indexer in positions.items():
            size = self.sizes[name]
            if isinstance(indexer, (bool, np.bool_)):
                raise TypeError(f"isel: {name}={indexer!r} must be an integer, slice or array")
            if isinstance(indexer, (np.ndarray, jax.Array)) and indexer.ndim == 0:
                indexer = _as_index(indexer)  # a 0-d integer array drops the dim, as in xarray
            if isinstance(indexer, (numbers.Integral, np.integer)):
                if not -size <= int(indexer) < size:
                    raise IndexError(f"isel: {name}={indexer} is out of range for size {size}")
                chosen[name] = int(indexer) % size
            else:
                try:
                    picked = np.arange(size)[indexer]
                except IndexError as err:
                    raise IndexError(f"isel: {name}={indexer!r}: {err}") from None
                picked = np.atleast_1d(picked)
                if picked.size == 0:
                    raise ValueError(f"isel: {name}={indexer!r} selects no point")
                chosen[name] = picked
        return self._select(chosen)

    def _select(self, chosen: dict[str, np.ndarray | int]) -> Space:
        picks: list[np.ndarray | int] = []
        for a in range(len(self.axes)):
            d = self._dims[self._axis_dim[a]]
            picks.append(chosen.get(d.name, np.arange(d.size)))
        # a shared dim (zip, group) keeps its original positions, as xarray keeps labels;
        # a fixed one keeps its position as a scalar coordinate
        positions: dict[str, np.ndarray] = {}
        fixed: dict[str, xr.Variable] = {}
        for d in self._dims:
            if d.shared:
                pick = chosen.get(d.name, np.arange(d.size))
                positions[d.name] = self._dim_positions(d)[pick]
                if isinstance(pick, int):
                    fixed[d.name] = xr.Variable((), positions[d.name])
        return self._derived(self.mode, picks, positions, fixed)

    def _dim_positions(self, d: _Dim) -> np.ndarray:
        """The coordinate of a shared dim: ``0..size-1``, or the positions it was selected at."""
        return self._positions.get(d.name, np.arange(d.size))

    def sel(
        self,
        indexers: dict[str, Any] | None = None,
        method: str | None = None,
        tolerance: Any = None,
        **labels: Any,
    ) -> Space:
        """Sub-space by coordinate label, as ``xarray.Dataset.sel``.

        Any dimension or indexed coordinate can be used, e.g. ``coupling=0.5``
        on a zipped dimension. ``method="nearest"`` (with ``tolerance``) picks
        the closest label. A scalar label drops the dimension and keeps the
        labels there as scalar coordinates (see :meth:`isel`). In zip mode a
        scalar label would fix the only dimension, which is an error: select
        with a list (``sel(a=[0.3])``) to keep a dimension of size 1.

        Parameters
        ----------
        indexers : dict, optional
            ``{name: labels}``; or give them as keywords.
        method : {None, "nearest", "pad", "ffill", "backfill", "bfill"}
            As in xarray.
        tolerance : optional
            Largest distance for inexact matches.

        Returns
        -------
        Space

        Raises
        ------
        SelectionError
            For an unknown name or a label that is not found.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 5), "b": GridAxis(0, 1, 3)}, mode="product")
        >>> space.sel(a=0.26, method="nearest").sizes
        {'b': 3}
        """
        query = dict(indexers or {}, **labels)
        coords = self.coords
        known = [name for name in coords if name in coords.xindexes]
        unknown = [k for k in query if k not in known]
        if unknown:
            raise SelectionError(
                f"sel got {unknown} which are not dimensions or indexed coordinates of the "
                f"space; expected some of {known}"
            )
        positions = xr.Dataset(
            {f"_pos_{d}": (d, np.arange(s)) for d, s in self.sizes.items()}, coords=coords
        )
        try:
            picked = positions.sel(query, method=method, tolerance=tolerance)
        except KeyError as err:
            raise SelectionError(f"sel could not find {query!r}: {err}") from None
        except TypeError as err:  # e.g. method="nearest" on string labels
            raise TypeError(f"sel {query!r} with method={method!r}: {err}") from None
        except (ValueError, pd.errors.InvalidIndexError) as err:  # repeated labels, ...
            raise SelectionError(f"sel {query!r} with method={method!r}: {err}") from None
        chosen: dict[str, np.ndarray | int] = {}
        for d, size in self.sizes.items():
            pos = picked[f"_pos_{d}"].values
            if pos.ndim == 0:
                chosen[d] = int(pos)
            elif pos.size != size or not np.array_equal(pos, np.arange(size)):
                if pos.size == 0:
                    raise SelectionError(f"sel {query!r} selects no point along {d!r}")
                chosen[d] = pos
        return self._select(chosen)

    # ------------------------------------------------------------------
    # explicit materialisation (size N, on request only)
    # ------------------------------------------------------------------
    def _flat_digits(self) -> np.ndarray:
        return self.index.unravel_many(np.arange(self.index.N, dtype=np.int64))

    def _flat_values(self) -> list[np.ndarray]:
        digits = self._flat_digits()
        return [t[digits[:, j]] for t, j in zip(self._tables, self._axis_dim, strict=True)]

    def _data_var_names(self) -> list[str]:
        taken = set(self.coords)
        return [p if p not in taken else f"{p}_values" for p in self.paths]

    def to_xarray(self) -> xr.Dataset:
        """The parameter values the model receives, on the labeled grid.

        One data variable per axis, named by its key path (``{path}_values``
        where a coordinate already has that name, as by default), with the
        space's dimensions followed by the value's own, ``{name}_dim_k`` with
        the axis name (the dims of its ``{name}_value`` coordinate, so both
        line up). Builds arrays of size N.

        Returns
        -------
        xarray.Dataset

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> ds = Space({"a": GridAxis(0, 1, 3), "b": GridAxis(0, 1, 2)}, mode="product").to_xarray()
        >>> ds["a_values"].dims, ds["a_values"].shape
        (('a', 'b'), (3, 2))
        """
        data = {}
        for a, (var, values) in enumerate(
            zip(self._data_var_names(), self._flat_values(), strict=True)
        ):
            extra = value_dims(self.names[a], values.ndim - 1)
            data[var] = ((*self.dims, *extra), values.reshape(self.shape + values.shape[1:]))
        return xr.Dataset(data, coords=self.coords, attrs=self.attrs)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per combination, one column per axis named by key path (as TVB-Optim).

        Scalar values become scalar cells; array values become object cells.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> Space({"a": GridAxis(0, 1, 3)}).to_dataframe()["a"].tolist()
        [0.0, 0.5, 1.0]
        """
        columns = {}
        for path, values in zip(self.paths, self._flat_values(), strict=True):
            columns[path] = values.tolist() if values.ndim == 1 else list(values)
        return pd.DataFrame(columns)

    def collect(
        self,
        n_vmap: int | None = None,
        n_pmap: int | None = None,
        fill_value: float = jnp.nan,
        combine: bool = True,
    ) -> Any:
        """All combinations batched as ``(n_pmap, n_vmap, n_map, ...)``, as TVB-Optim.

        Leading dimensions appear only for the arguments given; the last run is
        padded with ``fill_value`` (with a warning). Builds arrays of size N;
        executors never call it.

        Parameters
        ----------
        n_vmap, n_pmap : int, optional
            Batch sizes.
        fill_value : float, default NaN
            Padding value.
        combine : bool, default True
            Return the whole state; else ``(axis_tree, static_tree)``.

        Returns
        -------
        pytree or tuple

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> Space({"a": GridAxis(0, 1, 4)}).collect(n_vmap=2)["a"].shape
        (2, 2)
        """
        shape: tuple[int, ...] = ()
        nv = 1 if n_vmap is None else _positive("n_vmap", n_vmap)
        npm = 1 if n_pmap is None else _positive("n_pmap", n_pmap)
        if n_vmap is not None:
            shape = (nv,)
        if n_pmap is not None:
            shape = (npm, *shape)
        n_map = -(-self.N // (nv * npm))
        shape = (*shape, n_map)
        total = nv * npm * n_map
        if total > self.N:
            warnings.warn(
                f"collect: {total} slots for {self.N} combinations; padding with {fill_value}",
                stacklevel=2,
            )
        batched = []
        for values in self._flat_values():
            flat = jnp.full((total, *values.shape[1:]), fill_value, dtype=values.dtype)
            flat = flat.at[: self.N].set(values)
            batched.append(flat.reshape(shape + values.shape[1:]))
        if combine:
            return self._assemble(batched)
        none = [None] * len(self._leaves)
        statics = list(self._leaves)
        for pos in self._axis_pos:
            statics[pos] = None
        return self._assemble(batched, none), self._treedef.unflatten(statics)

    # ------------------------------------------------------------------
    # what executors need (inside jit)
    # ------------------------------------------------------------------
    def device_tables(self) -> tuple[jax.Array, ...]:
        """The per-axis value tables as device arrays (made once)."""
        if self._device_tables is None:
            self._device_tables = tuple(jnp.asarray(t) for t in self._tables)
        return self._device_tables

    def gather(self, tables: Sequence[jax.Array], digits: jax.Array) -> list[jax.Array]:
        """Per-axis values at a block of grid positions ``digits`` (``(B, ndim)``), traceable."""
        return [t[digits[:, j]] for t, j in zip(tables, self._axis_dim, strict=True)]

    def block_params(
        self,
        tables: Sequence[jax.Array],
        origin: jax.Array,
        n_valid: jax.Array,
        block: int,
        leaves: Sequence[Any] | None = None,
    ) -> Any:
        """The batched parameter pytree of ``block`` combinations from a flat start.

        For use inside ``jit``: ``origin`` is ``space.index.origin(start)``
        (int32 digits, safe beyond 2**31 combinations) and ``n_valid`` the
        number of real lanes; padding lanes repeat the last combination.
        Fixed leaves are taken from ``leaves`` (the state's flat leaves) if
        given, else as in the state, unbatched.

        Examples
        --------
        >>> import jax
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 5), "b": 2.0})
        >>> f = jax.jit(lambda t, o, n: space.block_params(t, o, n, 4))
        >>> f(space.device_tables(), space.index.origin(3), 2)["a"].tolist()
        [0.75, 1.0, 1.0, 1.0]
        """
        digits = self.index.flat_block(origin, n_valid, block)
        return self._assemble(self.gather(tables, digits), leaves)

    def grid_block_params(
        self,
        tables: Sequence[jax.Array],
        origin: jax.Array,
        block_shape: Sequence[int],
        leaves: Sequence[Any] | None = None,
    ) -> Any:
        """As :meth:`block_params` for the N-D block ``origin + [0, block_shape)`` (C order)."""
        digits = self.index.grid_block(origin, block_shape)
        return self._assemble(self.gather(tables, digits), leaves)

    @property
    def leaves(self) -> list[Any]:
        """The state's flat leaves, axes included (in ``jax.tree`` order)."""
        return list(self._leaves)

    @property
    def axis_positions(self) -> tuple[int, ...]:
        """Positions of the axes among :attr:`leaves`."""
        return self._axis_pos

    @property
    def treedef(self) -> Any:
        """The state's tree structure, axes as leaves."""
        return self._treedef

    # ------------------------------------------------------------------
    # description (for saved files)
    # ------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, str]:
        """JSON strings that describe the space (netCDF attributes can hold only these)."""
        from . import __version__

        axes = [dict(a.spec(), path=p) for a, p in zip(self.axes, self.paths, strict=True)]
        attrs = {
            "labeled_spaces:mode": self.mode,
            "labeled_spaces:dim": self.dim,
            "labeled_spaces:key": json.dumps(_key_data(self.key)),
            "labeled_spaces:axes": json.dumps(axes),
            "labeled_spaces:versions": json.dumps(_versions(__version__)),
        }
        impl = _key_impl(self.key)
        if impl != "threefry2x32":  # e.g. jax.random.key(0, impl="rbg")
            attrs["labeled_spaces:key_impl"] = impl
        if self._positions or self._scalar_coords:  # a sub-space's kept coordinates
            attrs["labeled_spaces:selection"] = json.dumps({
                "positions": {d: p.tolist() for d, p in self._positions.items()},
                "scalars": {
                    name: {"dims": list(v.dims), "attrs": _jsonable(v.attrs), **_encode(v.values)}
                    for name, v in self._scalar_coords.items()
                },
            })
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], state: Any = None) -> Space:
        """Rebuild a Space from :attr:`attrs` (e.g. a saved Dataset's ``attrs``).

        Parameters
        ----------
        attrs : dict
            Holding the ``labeled_spaces:*`` entries.
        state : pytree, optional
            The original state's structure with its fixed leaves; its axes are
            replaced by the rebuilt ones in leaf order. Without it, the state is an
            ``OrderedDict`` ``{path: axis}`` in the saved axis order. Axes of
            classes defined outside this package (custom axes and subclasses)
            are taken from this state, as they cannot be rebuilt from attrs.

        Returns
        -------
        Space

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 3)}, mode="product")
        >>> Space.from_attrs(space.attrs).sizes
        {'a': 3}
        """
        try:
            specs = json.loads(attrs["labeled_spaces:axes"])
            mode = attrs["labeled_spaces:mode"]
            dim = attrs.get("labeled_spaces:dim", "sample")
            key_data = json.loads(attrs["labeled_spaces:key"])
        except KeyError as err:
            raise ValueError(f"attrs lack the labeled_spaces entry {err}") from None
        key = jax.random.wrap_key_data(
            jnp.asarray(key_data, dtype=jnp.uint32),
            impl=attrs.get("labeled_spaces:key_impl", "threefry2x32"),
        )
        given: list[Any] = [None] * len(specs)
        if state is not None:
            leaves, treedef = jax.tree_util.tree_flatten(state, is_leaf=_is_axis)
            given = [x for x in leaves if _is_axis(x)]
            if len(given) != len(specs):
                raise ValueError(
                    f"state must hold as many axes as were saved ({len(specs)}), "
                    f"got {len(given)}"
                )
        axes = []
        for spec, own in zip(specs, given, strict=True):
            spec = dict(spec)
            spec.pop("path", None)
            custom = own is not None and type(own).__module__ != "labeled_spaces.axes"
            if custom and spec.get("type") == type(own).__name__:
                axes.append(own)  # a custom axis (or subclass): the state's own
            else:
                axes.append(axis_from_spec(spec))
        if state is None:
            # an OrderedDict keeps the saved axis order (a dict would sort the paths,
            # e.g. "b-c" before "b.x", changing the product order and the keys)
            rebuilt = OrderedDict(
                (spec["path"], axis) for spec, axis in zip(specs, axes, strict=True)
            )
        else:
            it = iter(axes)
            rebuilt = treedef.unflatten([next(it) if _is_axis(x) else x for x in leaves])
        space = cls(rebuilt, mode=mode, key=key, dim=dim)
        if "labeled_spaces:selection" in attrs:
            kept = json.loads(attrs["labeled_spaces:selection"])
            space._set_selection(
                {d: np.asarray(p, dtype=np.int64) for d, p in kept["positions"].items()},
                {
                    name: xr.Variable(tuple(v["dims"]), _decode(v), v["attrs"])
                    for name, v in kept["scalars"].items()
                },
            )
        return space


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _versions(own: str) -> dict[str, str]:
    import numpyro

    return {
        "labeled_spaces": own,
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "xarray": xr.__version__,
        "numpy": np.__version__,
    }

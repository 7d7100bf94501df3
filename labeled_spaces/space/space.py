"""Space: axes found in a pytree, composed into named dimensions.

The Space samples every axis once (small value tables), assigns each axis to a
dimension (:mod:`labeled_spaces.grid`) and answers ``space[i]`` by integer arithmetic
on those tables. Executors use its :attr:`Space.layout`; its xarray face (``coords``,
``attrs``) is built once (a Space is immutable). The product is never built unless
asked for (``to_xarray``, ``to_dataframe``, ``collect``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np
import xarray as xr

from .._checks import check_label
from .._format import format_count, short_repr, space_lines
from ..axes import AbstractAxis
from . import attrs as attrs_module
from . import export, subspace
from .coords import Selection, build_coords, check_names, coordinate_names
from .design import DESIGNS
from .discovery import discover, rebuilding
from .labels import indexed_coordinates, resolve
from .layout import check_key, flat_position

__all__ = ["MODES", "Space"]

MODES = ("product", "zip", *DESIGNS)

class Space(export.TVBOptimViews):
    """Every combination of the axes found in a parameter pytree, as a labeled grid.

    Parameters
    ----------
    state : pytree
        Any JAX pytree (dicts, lists, tuples, NamedTuples, registered
        dataclasses, equinox modules). Leaves that are axes vary; all others
        stay fixed. Axes are taken in ``jax.tree`` leaf order (dict keys sorted).
    mode : {"zip", "product", "sobol", "halton", "lhs"}, default "zip"
        ``"product"``: one dimension per ungrouped axis and per group (groups
        first, in the order their first axis appears, then the ungrouped axes,
        as TVB-Optim orders them); the flat index runs in C order over them.
        ``"zip"``: one shared dimension named ``dim``, as long as the shortest
        axis (a warning when sizes differ).
        ``"sobol"``, ``"halton"``, ``"lhs"``: as zip, over the points of one joint
        quasi-random design seeded from ``key`` (:mod:`labeled_spaces.space.design`).
    key : jax.Array, optional
        Axis ``i`` samples with ``jax.random.split(key, n_axes + 1)[i + 1]``;
        ``None`` means ``jax.random.key(0)``.
    dim : str, default "sample"
        Name of the shared dimension in zip mode and the quasi-random modes.

    Notes
    -----
    Naming: an ungrouped axis in product mode gives a dimension named
    ``axis.name`` (default: its key path, ``coupling.strength``). A group gives
    a dimension named ``str(group)`` with coordinate ``0..size-1``; each of its
    axes (in zip mode every axis) is an indexed coordinate on that dimension
    named ``axis.name`` or its key path, so ``sel`` works by value there too.
    ``space[i]`` gives the fixed leaves as given, the varying ones as JAX arrays
    (bit-identical to TVB-Optim's), building nothing of size N; the repr's first
    line is TVB-Optim's (``N=6, mode='product', axes=2``). A sub-space (``isel``,
    ``sel``, a slice) holds the points it kept as ``DataAxis``; its ``selected_from``
    (``{name: class name}``, saved in files) names those that were points of another
    kind of axis (``fit`` fits them).

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

    def __init__(self, state: Any, mode: str = "zip", key: jax.Array | None = None,
                 dim: str = "sample") -> None:
        self._setup(state, mode, key, dim, Selection())

    @classmethod
    def _with_selection(cls, state: Any, mode: str, key: jax.Array, dim: str,
                        selection: Selection) -> Space:
        space = cls.__new__(cls)
        cls._setup(space, state, mode, key, dim, selection)
        return space

    def _setup(self, state: Any, mode: str, key: Any, dim: str, selection: Selection) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'product' or 'zip', got {short_repr(mode)}; or a "
                             "quasi-random design: 'sobol', 'halton' or 'lhs'")
        check_label("dim", dim)
        self.state, self.mode, self.key, self.dim = state, mode, check_key(key), dim
        # a selection that fixed every dimension leaves a single point: no axis, no dim
        self.layout, labels = discover(state, mode, dim, self.key, bool(selection.scalars))
        self._axis_labels = labels
        self.axes: tuple[AbstractAxis, ...] = tuple(info.axis for info in labels)
        self.paths: tuple[str, ...] = tuple(info.path for info in labels)
        self.names: tuple[str, ...] = tuple(info.name for info in labels)
        shared = {d.name for d in self.layout.dims if d.shared}
        taken = set(self.names) | {d.name for d in self.layout.dims}
        self._selection = Selection(
            {d: np.asarray(p) for d, p in selection.positions.items() if d in shared},
            {k: v for k, v in selection.scalars.items() if k not in taken},
            {k: v for k, v in selection.origins.items() if k in self.names},
        )
        self._selection.check_sizes(self.layout.dims)  # a file's positions, one per point
        self.selected_from: dict[str, str] = dict(self._selection.origins)  # Selection.origins
        check_names(self.layout.dims, self.layout.axis_dim, self._axis_labels)
        self._coords: xr.Coordinates | None = None
        self._attrs: dict[str, str] | None = None

    @property
    def N(self) -> int:
        """Number of combinations (also beyond 2**63, where ``len`` cannot answer)."""
        return self.layout.N

    def __len__(self) -> int:
        n = self.layout.N
        if n >= 2**63:
            raise OverflowError(f"the space has {n:,} combinations, more than len() can "
                                "return (2**63 - 1); use space.N")
        return n

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimension names, slowest first."""
        return tuple(d.name for d in self.layout.dims)

    @property
    def sizes(self) -> dict[str, int]:
        """``{dim: size}``, as ``xarray.Dataset.sizes``."""
        return {d.name: d.size for d in self.layout.dims}

    @property
    def shape(self) -> tuple[int, ...]:
        """Size of every dimension, slowest first."""
        return self.layout.shape

    @property
    def coords(self) -> xr.Coordinates:
        """The coordinates that ``to_xarray()`` and every Results carry (built once).

        See :func:`labeled_spaces.space.coords.build_coords` for what they hold.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(1.0, 2.0, 3)})
        >>> list(space.coords)
        ['sample', 'a', 'b']
        """
        if self._coords is None:
            self._coords = build_coords(self.layout.dims, self._axis_labels, self._selection)
        return self._coords

    @property
    def coord_names(self) -> frozenset[str]:
        """The names of :attr:`coords` and their dimensions, known without building them."""
        return coordinate_names(self.layout.dims, self._axis_labels, self._selection)

    def __repr__(self) -> str:
        axes = [(self.names[a], self.layout.dims[d].name, repr(self.axes[a]))
                for a, d in enumerate(self.layout.axis_dim)]
        point = None if axes else self._selection.point_labels()  # where a point was selected
        groups = len({self.axes[a].group for a in range(len(axes))} - {None})
        return "\n".join(space_lines(self.mode, self.N, self.sizes, axes, point, groups))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            state, selection = subspace.flat_slice(self.layout, self._axis_labels,
                                                   self._selection, index, self.dim)
            return self._with_selection(state, "zip", self.key, self.dim, selection)
        n = self.layout.N
        i = flat_position(index, n, f"a space of {format_count(n, 'combination')}")
        return self.layout.device_point(i)

    def __iter__(self) -> Iterator[Any]:
        """A fresh iterator over all combinations in flat order (nested loops work)."""
        point = self.layout.device_point
        for i in range(self.layout.N):
            yield point(i)

    def isel(self, indexers: Mapping[str, Any] | None = None, **dims: Any) -> Space:
        """Sub-space by position along named dimensions, as ``xarray.Dataset.isel``.

        An integer fixes the dimension's axes at that point and drops the
        dimension, keeping their labels as scalar coordinates (the fixed
        values reach the model as 0-d array leaves); a slice, list or array
        keeps it. Zip and group dimensions keep their original positions as
        their coordinate, as xarray keeps labels, and the sub-space's
        :attr:`attrs` record these kept coordinates. Integers on every
        dimension (in zip mode, on its one) leave a single point, as xarray's
        0-d Dataset: a Space with no dimension, ``len`` 1, whose ``space[0]``
        is that combination; executors run it to a 0-d Dataset with the labels
        as scalar coordinates (``isel(a=[2])`` keeps a dimension of size 1).

        Parameters
        ----------
        indexers : dict, optional
            ``{dim: positions}``; or give them as keywords.

        Returns
        -------
        Space
            (``SelectionError`` for an unknown dimension, ``IndexError`` out of range.)

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 5), "b": GridAxis(0, 1, 3)}, mode="product")
        >>> space.isel(a=slice(0, 2)).sizes
        {'a': 2, 'b': 3}
        """
        chosen = subspace.isel_positions(self.sizes, dict(indexers or {}, **dims))
        return self._select(chosen)

    def _select(self, chosen: Mapping[str, int | np.ndarray]) -> Space:
        state, selection = subspace.select(self.layout, self._axis_labels, self._selection,
                                           chosen)
        mode = "zip" if self.mode in DESIGNS else self.mode  # a design's points are data
        return self._with_selection(state, mode, self.key, self.dim, selection)

    def label_positions(self, query: Mapping[str, Any], method: str | None = None,
                        tolerance: Any = None) -> dict[str, int | np.ndarray]:
        """``{dim: positions}`` that a ``sel`` query (``{coordinate: labels}``) picks.

        What ``sel`` does, on a Space and on its Results; ``method`` and
        ``tolerance`` as in :meth:`sel`.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0.0, 1.0, 3, group="g"),
        ...                "b": GridAxis(10.0, 30.0, 3, group="g")}, mode="product")
        >>> space.label_positions({"a": 0.5, "b": 20.0})
        {'g': 1}
        """
        return resolve(query, indexed_coordinates(self.coords), method, tolerance)

    def sel(self, indexers: Mapping[str, Any] | None = None, method: str | None = None,
            tolerance: Any = None, **labels: Any) -> Space:
        """Sub-space by coordinate label, as ``xarray.Dataset.sel``.

        Any dimension or indexed coordinate can be used, e.g. ``coupling=0.5``
        on a zipped dimension, or several members of one group at once when
        they agree. ``method="nearest"`` (with ``tolerance``) picks the closest
        label; label slices and ``method`` also work on labels that are not
        sorted (random draws keep their draw order). A scalar label drops the
        dimension and keeps the labels there as scalar coordinates (see
        :meth:`isel`), also down to a single point; a label that repeats keeps
        the dimension with all its points, as xarray does (a list with such a
        label picks them all, where xarray refuses a list on repeated labels).

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
            (``SelectionError`` for an unknown name or a label not found.)

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 5), "b": GridAxis(0, 1, 3)}, mode="product")
        >>> space.sel(a=0.26, method="nearest").sizes
        {'b': 3}
        """
        query = dict(indexers or {}, **labels)
        chosen = self.label_positions(query, method, tolerance)
        return self._select(subspace.drop_full(chosen, self.sizes, query))

    def _data_var_names(self) -> list[str]:
        taken = {str(n) for n in self.coords}
        return [p if p not in taken else f"{p}_values" for p in self.paths]

    def to_xarray(self) -> xr.Dataset:
        """The parameter values the model receives, on the labeled grid.

        One data variable per axis, named by its key path (``{path}_values``
        where a coordinate already has that name), dims the space's then the
        value's own (``{name}_dim_k``, as its ``{name}_value`` coordinate).
        Builds arrays of size N (a ``MemoryError`` up front where they would
        not fit).

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> ds = Space({"a": GridAxis(0, 1, 3), "b": GridAxis(0, 1, 2)}, mode="product").to_xarray()
        >>> ds["a_values"].dims, ds["a_values"].shape
        (('a', 'b'), (3, 2))
        """
        return export.to_xarray(self.layout, self.names, self._data_var_names(), self.dims,
                                self.coords, self.attrs)

    @property
    def attrs(self) -> dict[str, str]:
        """JSON strings that describe the space (netCDF attributes can hold only these).

        ``labeled_spaces:mode``, ``:dim`` (zip mode only), ``:key`` (and
        ``:key_impl``), ``:axes`` (each axis's spec and path), ``:state`` (the
        state's structure and fixed leaves, where they can be encoded),
        ``:selection`` (a sub-space's kept coordinates) and ``:versions``.
        Built once.
        """
        if self._attrs is None:
            self._attrs = attrs_module.space_attrs(
                self.mode, self.dim, self.key, self.layout, list(self._axis_labels),
                self._selection, attrs_module.value_coordinates(self.layout, self._axis_labels,
                                                                self.coords))
        return dict(self._attrs)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], state: Any = None,
                   data: xr.Dataset | None = None) -> Space:
        """Rebuild a Space from :attr:`attrs` (e.g. a saved Dataset's ``attrs``).

        Only registered axis classes and loaded NumPyro distributions are
        called (a file is data, never code); anything else named in the attrs
        is a ``ValueError`` that says what was named.

        Parameters
        ----------
        attrs : dict
            Holding the ``labeled_spaces:*`` entries.
        state : pytree, optional
            The original state (or that of a sub-space): its structure and its
            leaves are used, and axes that cannot be rebuilt from the attrs
            (custom axes, distributions the attrs could not describe) are taken
            from it. Without it, the saved structure and fixed leaves are used.
        data : xarray.Dataset, optional
            The saved Dataset, whose coordinates hold large DataAxis values
            the attrs refer to (``open_results`` passes it).

        Returns
        -------
        Space

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 3), "dt": 0.1}, mode="product")
        >>> rebuilt = Space.from_attrs(space.attrs)
        >>> rebuilt.sizes, rebuilt[0]["dt"]
        ({'a': 3}, 0.1)
        """
        parsed, rebuilt = attrs_module.read_attrs(attrs, data, state)
        with rebuilding():  # its warnings were given when it was built
            return cls._with_selection(rebuilt, parsed["mode"], parsed["key"], parsed["dim"],
                                       parsed["selection"])

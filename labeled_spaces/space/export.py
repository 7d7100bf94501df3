"""A whole Space at once: ``to_xarray``, and TVB-Optim's ``to_dataframe`` and ``collect``.

These build arrays of size N (every combination), the only place where a
Space does. Each refuses up front, naming the size, when that would not fit
in memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .._checks import check_positive_int, warn_user
from .._format import format_count
from .._memory import refuse_beyond_memory
from ..axes import value_dims
from .layout import Layout

__all__ = ["TVBOptimViews", "collect", "flat_values", "partition", "to_dataframe", "to_xarray"]


def _point_bytes(layout: Layout) -> int:
    return max(1, layout.lane_bytes())


def flat_values(layout: Layout, what: str, lanes: bool = False) -> list[np.ndarray]:
    """Every axis's values at every combination, in flat order, shape ``(N, *value_shape)``.

    With ``lanes``, every lane value (the key leaves' positions after the axes).
    """
    refuse_beyond_memory(
        layout.N * (_point_bytes(layout) + 8 * len(layout.shape)),
        f"{what} of {layout.N:,} combinations",
        "select a sub-space first (space.isel(...) or space.sel(...))",
    )
    digits = layout.grid.unravel_many(np.arange(layout.N, dtype=np.int64))
    tables, dims = (layout.lane_tables, layout.lane_dims) if lanes else (layout.tables,
                                                                         layout.axis_dim)
    return [t[digits[:, j]] for t, j in zip(tables, dims, strict=True)]


def to_xarray(layout: Layout, names: Sequence[str], var_names: Sequence[str],
              dims: Sequence[str], coords: xr.Coordinates, attrs: dict[str, str]) -> xr.Dataset:
    """The parameter values on the labeled grid (see :meth:`labeled_spaces.Space.to_xarray`)."""
    data = {}
    for name, var, values in zip(names, var_names, flat_values(layout, "to_xarray"),
                                 strict=True):
        extra = value_dims(name, values.ndim - 1)
        data[var] = ((*dims, *extra), values.reshape(layout.shape + values.shape[1:]))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def to_dataframe(layout: Layout, paths: Sequence[str]) -> pd.DataFrame:
    """One row per combination, one column per axis (see ``Space.to_dataframe``)."""
    columns = {}
    for path, values in zip(paths, flat_values(layout, "to_dataframe"), strict=True):
        # scalar columns in the Python number types (float64, int64), as TVB-Optim's lists
        # of numbers give them, without building those lists
        columns[path] = values.astype(_PYTHON_TYPES.get(values.dtype.kind, values.dtype)) \
            if values.ndim == 1 else list(values)
    return pd.DataFrame(columns, index=pd.RangeIndex(layout.N))  # a point: one row


_PYTHON_TYPES = {"f": np.float64, "i": np.int64, "u": np.int64, "c": np.complex128,
                 "b": np.bool_}


def _padded_as(fill_value: Any, dtypes: Sequence[np.dtype]) -> str:
    """What ``fill_value`` becomes in the axes' dtypes where it changes (NaN: 0 in int32).

    The value ``jnp.full`` really writes (NaN is 0 in int32 and True in bool,
    infinities saturate to the integer's limits), so the warning shows what the
    padded slots hold.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space.export import _padded_as
    >>> _padded_as(float("nan"), [np.dtype("float32"), np.dtype("int32"), np.dtype("bool")])
    ' (as 0 in the int32 axes, True in the bool axes)'
    """
    changed = []
    for dtype in dict.fromkeys(dtypes):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the cast's own warnings say less than this one
            padded = np.asarray(jnp.full((), fill_value, dtype=dtype)).item()
        same = padded == fill_value or padded != padded and fill_value != fill_value
        if not same or type(padded) is not type(fill_value) and dtype.kind in "biu":
            changed.append(f"{padded!r} in the {dtype} axes")
    return f" (as {', '.join(changed)})" if changed else ""


def collect(
    layout: Layout,
    n_vmap: Any = None,
    n_pmap: Any = None,
    fill_value: float = jnp.nan,
    combine: bool = True,
) -> Any:
    """All combinations batched as ``(n_pmap, n_vmap, n_map, ...)`` (see ``Space.collect``)."""
    if not layout.tables:
        raise ValueError("collect: the space must have at least one dimension to batch, got "
                         "a single point (no dimension); space[0] is its combination")
    shape: tuple[int, ...] = ()
    nv = 1 if n_vmap is None else check_positive_int("n_vmap", n_vmap)
    npm = 1 if n_pmap is None else check_positive_int("n_pmap", n_pmap)
    if n_vmap is not None:
        shape = (nv,)
    if n_pmap is not None:
        shape = (npm, *shape)
    n_map = -(-layout.N // (nv * npm))
    shape = (*shape, n_map)
    total = nv * npm * n_map
    values_list = flat_values(layout, "collect", lanes=True)
    n_axes = len(layout.axis_positions)
    if total > layout.N:
        warn_user(
            f"collect: {format_count(total, 'slot')} for "
            f"{format_count(layout.N, 'combination')}; padding with "
            f"{fill_value}{_padded_as(fill_value, [v.dtype for v in values_list[:n_axes]])}")
    batched = []
    for values in values_list:
        flat = jnp.full((total, *values.shape[1:]), fill_value, dtype=values.dtype)
        flat = flat.at[: layout.N].set(values)
        batched.append(flat.reshape(shape + values.shape[1:]))
    # key leaves (KeyAxis, PointKey) get their keys, batched like the values
    if combine:
        return layout.state(batched)
    none = [None] * len(layout.leaves)
    return layout.state(batched, none), partition(layout)[1]


def partition(layout: Layout) -> tuple[Any, Any]:
    """``(axis_state, static_state)``: the state's varying leaves, then its fixed ones.

    Each is the state with ``None`` in place of the other kind of leaf, as
    ``equinox.partition`` splits it; the varying leaves are the axes and the
    ``PointKey`` leaves.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.space.export import partition
    >>> partition(Space({"a": GridAxis(0, 1, 3), "dt": 0.1}).layout)
    ({'a': GridAxis(low=0, high=1, n=3), 'dt': None}, {'a': None, 'dt': 0.1})
    """
    varying = set(layout.axis_positions)
    if layout.keys is not None:
        varying |= {leaf.position for leaf in layout.keys.leaves}
    leaves = layout.leaves
    return (layout.treedef.unflatten([x if k in varying else None for k, x in enumerate(leaves)]),
            layout.treedef.unflatten([None if k in varying else x for k, x in enumerate(leaves)]))


class TVBOptimViews:
    """A whole Space as TVB-Optim gives it: ``to_dataframe``, ``collect`` and the partition.

    A base of :class:`~labeled_spaces.Space`, whose ``layout`` and ``paths``
    these read.
    """

    layout: Layout
    paths: tuple[str, ...]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per combination, one column per axis named by key path (as TVB-Optim).

        Scalar values become scalar cells; array values become object cells.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> Space({"a": GridAxis(0, 1, 3)}).to_dataframe()["a"].tolist()
        [0.0, 0.5, 1.0]
        """
        return to_dataframe(self.layout, self.paths)

    def collect(self, n_vmap: int | None = None, n_pmap: int | None = None,
                fill_value: float = jnp.nan, combine: bool = True) -> Any:
        """All combinations batched as ``(n_pmap, n_vmap, n_map, ...)``, as TVB-Optim.

        Leading dimensions appear only for the arguments given; the last run is
        padded with ``fill_value`` (a warning says what integer axes pad with).

        ``n_vmap``, ``n_pmap``: batch sizes; ``fill_value``: the padding;
        ``combine=False`` returns ``(axis_tree, static_tree)`` instead of the
        whole state.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> Space({"a": GridAxis(0, 1, 4)}).collect(n_vmap=2)["a"].shape
        (2, 2)
        """
        return collect(self.layout, n_vmap, n_pmap, fill_value, combine)

    @property
    def axis_state(self) -> Any:
        """The state with the axes (and ``PointKey`` leaves) and ``None`` elsewhere, as TVB-Optim.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, Space
        >>> space = Space({"a": GridAxis(0, 1, 3), "dt": 0.1})
        >>> space.axis_state["dt"], space.static_state["dt"]
        (None, 0.1)
        """
        return partition(self.layout)[0]

    @property
    def static_state(self) -> Any:
        """The state with its fixed leaves and ``None`` at the axes, as TVB-Optim."""
        return partition(self.layout)[1]

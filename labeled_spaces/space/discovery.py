"""Discovery: the axes in a state pytree, their values and labels, and the Layout they make."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

from .._checks import silenced
from .._format import clipped, elided
from ..axes import AbstractAxis, PointKey
from ..grid import SIZE_WARNINGS, Grid, assign_dims
from .coords import AxisLabels
from .design import DESIGNS, SOBOL_BALANCE, design_tables
from .key_leaves import plan_keys
from .layout import Layout
from .shared_keys import SHARED_KEYS, warn_shared_keys

__all__ = ["describe_fixed", "discover", "is_axis", "keypath_name", "rebuilding"]


@contextlib.contextmanager
def rebuilding() -> Iterator[None]:
    """Silence a space's own warnings while it is rebuilt from a file: they are not news.

    A Space warns when built of a Sobol ``n`` that is not a power of two, of
    zipped axes of different sizes and of key leaves that give the same keys;
    its user saw that then.

    Examples
    --------
    >>> import warnings
    >>> from labeled_spaces import Space, UniformAxis
    >>> from labeled_spaces.space.discovery import rebuilding
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error")
    ...     with rebuilding():
    ...         Space({"a": UniformAxis(0, 1, 3)}, mode="sobol").N
    3
    """
    with silenced(SOBOL_BALANCE, *SIZE_WARNINGS, SHARED_KEYS):
        yield


def is_axis(x: Any) -> bool:
    """Whether a pytree leaf is an axis (the ``is_leaf`` of every flattening here).

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> from labeled_spaces.space import is_axis
    >>> is_axis(GridAxis(0.0, 1.0, 2)), is_axis(0.5)
    (True, False)
    """
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


def _is_value_list(x: Any) -> bool:
    """A list or tuple of two or more plain numbers: values a user may have meant to sweep."""
    return (type(x) in (list, tuple) and len(x) > 1
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in x))


def _leaf_text(leaf: Any) -> str:
    shape = getattr(leaf, "shape", None)
    if shape is not None and getattr(leaf, "dtype", None) is not None and shape != ():
        return f"{leaf.dtype} array {tuple(shape)}"
    return clipped(repr(leaf), 40)


def describe_fixed(state: Any) -> str:
    """Why a state has no axis: its leaves in short, with a hint where one hides or was meant.

    Each leaf by key path (an array by dtype and shape, never its values); a
    list of numbers is named as values that stay fixed, with the axis that
    sweeps them; a dataclass JAX does not flatten is named with its axes.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space.discovery import describe_fixed
    >>> print(describe_fixed({"k": [0.0, 1.0, 2.0], "w": np.zeros((68, 68))}))
    {k: [0.0, 1.0, 2.0], w: float64 array (68, 68)}; a list of values stays fixed: ...
    >>> print(describe_fixed({"k": np.linspace(0.0, 1.0, 3)}))
    {k: float64 array (3,)}; a list or array stays fixed: to sweep a leaf, make it an axis, ...
    """
    flat = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_value_list)[0]
    shown = [f"{keypath_name(p)}: {_leaf_text(leaf)}" for p, leaf in flat]
    text = f"{{{elided(shown, edge=4)[1:-1]}}}"
    for leaf in jax.tree_util.tree_leaves(state):
        if dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
            inside = [f.name for f in dataclasses.fields(leaf)
                      if is_axis(getattr(leaf, f.name, None))]
            if inside:
                return (f"{text}: the dataclass {type(leaf).__name__} holds axes in "
                        f"{inside}, but JAX treats it as a leaf; register it as a pytree "
                        "(jax.tree_util.register_dataclass) or use an equinox Module")
    listed = [(keypath_name(p), leaf) for p, leaf in flat if _is_value_list(leaf)]
    if listed:
        path, values = listed[0]
        return (f"{text}; a list of values stays fixed: to sweep {path!r} over them, make it "
                f"an axis, DataAxis({clipped(repr(list(values)), 40)}), or "
                "GridAxis(low, high, n) for an even grid")
    keys = [keypath_name(p) for p, leaf in flat if isinstance(leaf, PointKey)]
    if keys:
        return (f"{text}; a PointKey ({keys[0]!r}) is no axis: it gives each combination of "
                "the axes its own key, so it needs an axis to vary, e.g. a KeyAxis(n) of n "
                "replicate keys, or GridAxis(low, high, n)")
    return (f"{text}; a list or array stays fixed: to sweep a leaf, make it an axis, "
            "GridAxis(low, high, n), or DataAxis(values) for values you have")


def _refuse_classes(flat: Sequence[tuple[Any, Any]]) -> None:
    """Refuse an axis class or ``PointKey`` itself (not an instance) as a leaf.

    ``{"noise": PointKey}`` (the parentheses forgotten) would otherwise be a
    fixed leaf, and the model would fail on it at combination 0 with JAX's
    "unexpected PRNG key type".
    """
    for path, leaf in flat:
        if isinstance(leaf, type) and issubclass(leaf, (AbstractAxis, PointKey)):
            made = "PointKey()" if issubclass(leaf, PointKey) else f"{leaf.__name__}(...)"
            raise TypeError(
                f"state must hold instances of axes and PointKey, got the class "
                f"{leaf.__name__} itself at {keypath_name(path)!r}: write {made}")


def discover(state: Any, mode: str, dim: str, key: jax.Array, point: bool = False
             ) -> tuple[Layout, tuple[AxisLabels, ...]]:
    """The Layout of a state's axes and each axis's labels.

    Axes are the leaves that are :class:`~labeled_spaces.axes.AbstractAxis`
    instances, in ``jax.tree`` order; axis ``i`` samples with
    ``jax.random.split(key, n_axes + 1)[i + 1]``. Each axis's values are
    generated once and checked (:meth:`~labeled_spaces.axes.AbstractAxis.check_values`).
    A state without axes is a ``ValueError``, unless ``point`` (a sub-space
    selected down to one combination): then the Layout has no dimension.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import GridAxis
    >>> from labeled_spaces.space.discovery import discover
    >>> layout, labels = discover({"a": GridAxis(0, 1, 3)}, "product", "sample",
    ...                           jax.random.key(0))
    >>> layout.shape, labels[0].name
    ((3,), 'a')
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=is_axis)
    leaves = tuple(leaf for _, leaf in flat)
    _refuse_classes(flat)
    axis_pos = tuple(k for k, leaf in enumerate(leaves) if is_axis(leaf))
    if not axis_pos and not point:
        raise ValueError(
            "state must contain at least one axis (GridAxis, UniformAxis, ...), "
            f"got none in {describe_fixed(state)}"
        )
    axes: Sequence[AbstractAxis] = [leaves[k] for k in axis_pos]
    paths = [keypath_name(flat[k][0]) for k in axis_pos]
    if mode in DESIGNS and axes:
        return _design_layout(treedef, leaves, axis_pos, axes, paths, mode, dim, key,
                              [keypath_name(p) for p, _ in flat])
    keys = jax.random.split(key, len(axes) + 1)[1:]
    tables, labels = [], []
    for axis, path, axis_key in zip(axes, paths, keys, strict=True):
        table = np.asarray(axis.generate_values(axis_key))
        problem = axis.check_values(table)
        if problem:
            raise ValueError(
                f"the axis at {path!r}, {axis!r}, {problem}; narrow its bounds or enable "
                "jax_enable_x64"
            )
        table.flags.writeable = False  # the layout hands out views of it
        tables.append(table)
        name = axis.name if axis.name is not None else path
        labels.append(AxisLabels(name, path, axis, np.asarray(axis.coordinate(axis_key)),
                                 axis.value_coordinate(axis_key)))
    dims, axis_dim = assign_dims(mode, dim, [info.name for info in labels],
                                 [a.size for a in axes], [a.group for a in axes])
    # the key leaves (KeyAxis, PointKey): their keys are folded from positions in the lanes
    leaf_paths = [keypath_name(p) for p, _ in flat]
    plan = plan_keys(leaves, leaf_paths, axis_pos, list(keys), dims, key)
    warn_shared_keys(leaves, leaf_paths)
    layout = Layout(treedef, leaves, axis_pos, tuple(tables), dims, axis_dim,
                    Grid([d.size for d in dims]), plan)
    return layout, tuple(labels)


def _design_layout(treedef: Any, leaves: tuple[Any, ...], axis_pos: tuple[int, ...],
                   axes: Sequence[AbstractAxis], paths: Sequence[str], mode: str, dim: str,
                   key: jax.Array, leaf_paths: Sequence[str]
                   ) -> tuple[Layout, tuple[AxisLabels, ...]]:
    """The Layout of a quasi-random design: every axis's design values on one zip dimension."""
    names = [axis.name if axis.name is not None else path for axis, path in zip(axes, paths,
                                                                                 strict=True)]
    mapped = design_tables(axes, names, mode, key)
    tables, labels = [], []
    for axis, path, name, point in zip(axes, paths, names, mapped, strict=True):
        table = np.array(point.values)  # an own, read-only copy: the layout hands out views
        problem = axis.check_values(table)
        if problem:
            raise ValueError(f"the axis at {path!r}, {axis!r}, {problem} at the design's points")
        table.flags.writeable = False
        tables.append(table)
        labels.append(AxisLabels(name, path, axis, point.labels, point.value_coordinate))
    dims, axis_dim = assign_dims("zip", dim, names, [len(t) for t in tables],
                                 [None] * len(axes))
    # a PointKey folds the design's position along its one dimension, as in a zip space
    plan = plan_keys(leaves, leaf_paths, axis_pos, [key] * len(axes), dims, key)
    warn_shared_keys(leaves, leaf_paths)
    layout = Layout(treedef, leaves, axis_pos, tuple(tables), dims, axis_dim,
                    Grid([d.size for d in dims]), plan)
    return layout, tuple(labels)

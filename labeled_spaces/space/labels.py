"""Label → position: what ``sel`` means on a Space and on its Results.

Each indexed coordinate of a Space lies along one dimension. A query names
coordinates (dimension coordinates, or the zipped and grouped axes on a
shared dimension) and gives labels: a scalar, a list or array, or a slice.
Labels need not be sorted: random draws keep their draw order, and label
slices and ``method="nearest"`` work on them (a slice keeps the points whose
labels lie between its ends, in their order). Several coordinates of one
dimension may be given at once when they pick the same positions.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._checks import closest
from .._format import clipped, short_repr

__all__ = ["SelectionError", "indexed_coordinates", "positions_for", "resolve"]

METHODS = (None, "nearest", "pad", "ffill", "backfill", "bfill")


class SelectionError(KeyError, ValueError):
    """A label or dimension that ``sel``/``isel`` cannot find.

    A ``KeyError`` (as in xarray) and a ``ValueError`` (as for any bad argument).
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _as_label(value: Any, labels: np.ndarray) -> Any:
    """A query value in the labels' own type (dates from strings, bytes from str)."""
    if labels.dtype.kind in "mM":
        return np.asarray(value, dtype=labels.dtype)
    if labels.dtype.kind == "S" and isinstance(value, str):
        return value.encode()
    return value


def _numeric(labels: np.ndarray) -> bool:
    return labels.dtype.kind in "biufcmM"


def _shown(label: Any) -> str:
    return repr(label.item() if isinstance(label, np.generic) else label)


def nearest_labels(labels: np.ndarray, value: Any, count: int = 2) -> list[Any]:
    """Up to ``count`` labels closest to ``value``: by distance for numbers and dates,
    by spelling for strings (none when nothing is alike)."""
    if labels.size == 0:
        return []
    if _numeric(labels) and labels.dtype.kind != "c":
        try:
            distance = np.abs(labels - np.asarray(value, dtype=labels.dtype))
        except (TypeError, ValueError):
            return []
        measured = np.flatnonzero(~np.isnan(distance))  # None, NaN or NaT is near nothing
        order = measured[np.argsort(distance[measured], kind="stable")[:count]]
        return [labels[i] for i in sorted(order)]
    if labels.dtype.kind in "SUO":
        text = value.decode() if isinstance(value, bytes) else str(value)
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in labels.tolist()]
        return list(difflib.get_close_matches(text, names, n=count))
    return []


def miss_hint(labels: np.ndarray, values: list[Any], name: str) -> str:
    """What to say of labels not found along ``name``: the nearest labels, and
    ``method="nearest"`` where the labels have an order."""
    near: list[str] = []
    for value in values:
        for label in nearest_labels(labels, _as_label(value, labels)):
            if _shown(label) not in near:
                near.append(_shown(label))
    if near and _numeric(labels) and labels.dtype.kind != "c":
        return (f"; nearest labels of {name!r}: {', '.join(near)} (to pick the closest "
                "label, pass method=\"nearest\")")
    if near:
        return f"; labels of {name!r} spelled alike: {', '.join(near)}"
    some = ", ".join(_shown(x) for x in labels[:5].tolist())
    return f"; labels of {name!r} are {some}{', ...' if labels.size > 5 else ''}"


def _one(labels: np.ndarray, value: Any, method: str | None, tolerance: Any,
         name: str = "labels") -> int | np.ndarray:
    """The position of ``value``; of a label that repeats, all its positions (as xarray)."""
    value = _as_label(value, labels)
    if method is None:
        hits = np.flatnonzero(labels == value)
        if hits.size == 0:
            raise KeyError(f"{_shown(value)} is not a label of {name!r}"
                           f"{miss_hint(labels, [value], name)}")
        return int(hits[0]) if hits.size == 1 else hits.astype(np.int64)
    if not _numeric(labels) or labels.dtype.kind == "c":
        raise TypeError(f"method={method!r} needs real-valued labels, got dtype {labels.dtype}")
    numbers = labels.astype(np.float64) if labels.dtype.kind not in "mM" else labels
    if len(np.unique(labels)) != len(labels):
        raise ValueError("repeated labels have no nearest one")
    if method == "nearest":
        distance = np.abs(numbers - value)
        candidates = np.arange(len(labels))
    elif method in ("pad", "ffill"):
        candidates = np.flatnonzero(numbers <= value)
        distance = (value - numbers)[candidates]
    else:  # backfill
        candidates = np.flatnonzero(numbers >= value)
        distance = (numbers - value)[candidates]
    if candidates.size == 0:
        raise KeyError(f"no label for {value!r} with method={method!r}")
    best = int(np.argmin(distance))
    if tolerance is not None and not distance[best] <= tolerance:
        raise KeyError(f"no label within tolerance {tolerance!r} of {value!r}")
    return int(candidates[best])


def _slice(labels: np.ndarray, query: slice) -> np.ndarray:
    index = pd.Index(labels)
    if index.is_monotonic_increasing or index.is_monotonic_decreasing:
        start, stop = index.slice_locs(query.start, query.stop)
        return np.arange(start, stop)[:: query.step or 1]
    # unsorted labels (random draws): the points between the ends, in their own order
    keep = np.ones(len(labels), dtype=bool)
    lo, hi = query.start, query.stop
    if lo is not None and hi is not None and hi < lo:
        lo, hi = hi, lo
    if lo is not None:
        keep &= labels >= _as_label(lo, labels)
    if hi is not None:
        keep &= labels <= _as_label(hi, labels)
    return np.flatnonzero(keep)[:: query.step or 1]


def _refuse_nested(query: Any, name: str) -> None:
    raise ValueError(
        f"{name}={query!r} must be a label, a 1-D list or array of labels, or a slice; got "
        "a nested or multi-dimensional query (one position per label is all a dimension "
        "takes)"
    )


def positions_for(labels: np.ndarray, query: Any, method: str | None = None,
                  tolerance: Any = None, name: str = "labels") -> int | np.ndarray:
    """Positions along a coordinate of ``labels`` that ``query`` selects.

    Parameters
    ----------
    labels : numpy.ndarray
        The coordinate's 1-D labels.
    query : scalar, list, array or slice
        A scalar gives one position (an int), or all of them (an array) for
        a label that repeats, as xarray's ``sel`` does; anything else an array.
    method : {None, "nearest", "pad", "ffill", "backfill", "bfill"}
        Inexact matches, as in xarray (not for slices).
    tolerance : optional
        Largest distance of an inexact match.
    name : str
        The coordinate's name, for messages.

    Returns
    -------
    int or numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space import positions_for
    >>> draws = np.array([0.7, 0.1, 0.4])
    >>> positions_for(draws, 0.35, method="nearest"), positions_for(draws, slice(0.2, 0.8))
    (2, array([0, 2]))
    """
    if isinstance(query, slice):
        if method is not None:
            raise TypeError(f"method={method!r} does not apply to a slice")
        return _slice(labels, query)
    if isinstance(query, (list, tuple, np.ndarray, pd.Index)) or (
        hasattr(query, "ndim") and query.ndim > 0
    ):
        if not isinstance(query, (list, tuple)) and np.ndim(query) > 1:
            _refuse_nested(query, name)
        found: list[Any] = []
        missing = []
        items = query if isinstance(query, (list, tuple)) else list(np.asarray(query).ravel())
        if any(isinstance(q, (list, tuple, slice)) or np.ndim(q) > 0 for q in items):
            _refuse_nested(query, name)  # not a label each: xarray's vectorised indexing
        for q in items:
            try:
                found.append(_one(labels, q, method, tolerance, name))
            except KeyError:
                missing.append(q)
        if missing:
            hint = miss_hint(labels, missing, name) if method is None else ""
            raise KeyError(f"not all values found in index {name!r}: {missing}{hint}")
        # a label that repeats picks each of its points, in order
        return np.concatenate([np.atleast_1d(f) for f in found]).astype(np.int64) \
            if found else np.zeros(0, np.int64)
    if hasattr(query, "ndim") and query.ndim == 0:
        query = np.asarray(query).item() if np.asarray(query).dtype.kind != "M" else query
    return _one(labels, query, method, tolerance, name)


def resolve(
    query: Mapping[str, Any],
    coordinates: Mapping[str, tuple[str, np.ndarray]],
    method: str | None = None,
    tolerance: Any = None,
) -> dict[str, int | np.ndarray]:
    """``{dim: positions}`` for a ``sel`` query over the given coordinates.

    Parameters
    ----------
    query : mapping
        ``{coordinate name: labels}``.
    coordinates : mapping
        ``{name: (dim, labels)}`` of every indexed coordinate.
    method, tolerance
        See :func:`positions_for`.

    Raises
    ------
    SelectionError
        For an unknown name, a label not found, or two coordinates of one
        dimension that pick different points.
    TypeError
        For ``method`` on labels that have no order (strings).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    unknown = [k for k in query if k not in coordinates]
    if unknown:
        expected = (f"some of {list(coordinates)}" if coordinates else
                    "none: a space of a single point has no dimension left to select "
                    "(space[0] is its combination)")
        raise SelectionError(
            f"sel got {unknown} which are not dimensions or indexed coordinates of the "
            f"space; expected {expected}{closest(str(unknown[0]), map(str, coordinates))}"
        )
    chosen: dict[str, int | np.ndarray] = {}
    by: dict[str, str] = {}
    for name, labels in query.items():
        dim, values = coordinates[name]
        try:
            picked = positions_for(values, labels, method, tolerance, name)
        except KeyError as err:
            reason = err.args[0] if err.args else err
            raise SelectionError(f"sel could not find {short_repr(dict(query))}: "
                                 f"{clipped(' '.join(str(reason).split()), 200)}") from None
        except TypeError as err:
            raise TypeError(f"sel {dict(query)!r} with method={method!r}: {err}") from None
        except ValueError as err:
            raise SelectionError(f"sel {dict(query)!r} with method={method!r}: {err}") from None
        if dim in chosen:
            before = chosen[dim]
            same = (np.ndim(before) == np.ndim(picked)
                    and np.array_equal(np.asarray(before), np.asarray(picked)))
            if not same:
                raise SelectionError(
                    f"sel {by[dim]}={query[by[dim]]!r} and {name}={labels!r} pick different "
                    f"points of dimension {dim!r} (positions {np.asarray(before).tolist()} "
                    f"and {np.asarray(picked).tolist()}); give one of them, or labels that "
                    "agree"
                )
            continue
        chosen[dim] = picked
        by[dim] = name
    return chosen


def indexed_coordinates(coords: Any) -> dict[str, tuple[str, np.ndarray]]:
    """``{name: (dim, labels)}`` of the 1-D indexed coordinates of xarray ``coords``."""
    return {str(name): (coord.dims[0], np.asarray(coord.values))
            for name, coord in coords.items()
            if coord.ndim == 1 and name in coords.xindexes}

"""The prefix rule: when a run may grow a store instead of being refused.

A store records its run's identity (:mod:`labeled_spaces.results.identity`).
A later run whose identity differs is refused, except in one case: its
space extends the stored one along exactly one dimension, the stored labels
being a prefix of the new ones, and nothing else differs. That run grows
the store in place (:mod:`labeled_spaces.results.store_growth`): the stored
combinations keep their positions, so their results stay valid, and only
the new ones are computed.

The rule is decided on the identities alone: the new run's identity is cut
back to the stored length along the grown dimension (every axis table and
coordinate along it sliced, each described as the identity describes it)
and must then equal the stored identity exactly. The grown axes' own
specification (``n``, ``high``, even their class: a ``GridAxis`` grown as
a ``DataAxis``) may differ, since their values are what the run computes
with. Labels compare bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from ..axes import DataAxis, PointKey
from ..space import Space, is_axis, keypath_name
from .identity import SPACE_KEYS, RunIdentity, summarise
from .values import array_summary

__all__ = ["Growth", "find_growth"]


@dataclass(frozen=True)
class Growth:
    """A store grown along one dimension.

    Attributes
    ----------
    dim : str
        The dimension's name.
    axis : int
        Its position among the space's dimensions.
    old, new : int
        Its length in the store, and in the run that grows it.

    Examples
    --------
    >>> from labeled_spaces.results.growth import Growth
    >>> str(Growth("coupling", 0, 11, 21))
    'coupling: 11 -> 21'
    """

    dim: str
    axis: int
    old: int
    new: int

    def __str__(self) -> str:
        return f"{self.dim}: {self.old} -> {self.new}"


def _prefix(values: Any, axis: int, n: int) -> np.ndarray:
    """The first ``n`` entries of ``values`` along ``axis``."""
    array = np.asarray(values)
    return array[(slice(None),) * axis + (slice(0, n),)]


def _as_stored(values: np.ndarray, stored: Any) -> np.ndarray:
    """Text labels in the stored width: ``'<U3'`` labels extended by longer ones are ``'<U5'``."""
    if values.dtype.kind not in "US" or not isinstance(stored, dict) or "array" not in stored:
        return values
    try:
        dtype = np.dtype(stored["array"])
    except TypeError:
        return values
    if dtype.kind != values.dtype.kind:
        return values
    narrowed = values.astype(dtype)
    return narrowed if np.array_equal(narrowed, values) else values


def _cut_back(now: dict[str, Any], stored: dict[str, Any], space: Space, growth: Growth
              ) -> dict[str, Any]:
    """``now`` (the new run's inputs) as it would read with the stored length along the dim."""
    expected = copy.deepcopy(now)
    axes, stored_axes = expected.get("axes", {}), stored.get("axes") or {}
    layout = space.layout
    for path, table, j in zip(space.paths, layout.tables, layout.axis_dim, strict=True):
        if j != growth.axis or path not in axes or not isinstance(stored_axes.get(path), dict):
            continue
        entry, held = axes[path], stored_axes[path]
        entry["values"] = array_summary(_prefix(table, 0, _held_length(held, table, growth)))
        for key in ("class", "spec", "fields"):  # the grown axis's own specification
            entry[key] = held.get(key)
    coords, stored_coords = expected.get("coords", {}), stored.get("coords") or {}
    for name, coord in space.coords.items():
        name = str(name)
        if growth.dim not in coord.dims or name not in coords:
            continue
        held = stored_coords.get(name)
        values = _prefix(coord.values, coord.dims.index(growth.dim), growth.old)
        if isinstance(held, dict):
            values = _as_stored(values, held.get("values"))
        coords[name]["values"] = array_summary(values)
    _cut_back_positions(expected, space, growth)
    return expected


def _stored_length(held: Any) -> int:
    """The length of an axis's stored table, from its identity (0 where not recorded)."""
    summary = held.get("values") if isinstance(held, dict) else None
    shape = summary.get("shape") if isinstance(summary, dict) else None
    return shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else 0


def _held_length(held: dict[str, Any], table: Any, growth: Growth) -> int:
    """How much of an axis's new table along the grown dim compares with its stored table.

    The stored length, except where the stored table was longer than the
    dimension (a zip or group of axes of unequal sizes takes the shortest's
    length): then the whole stored table, which the new one must start with.
    """
    length = _stored_length(held)
    return min(length, len(table)) if length > growth.old else growth.old


def _cut_back_positions(expected: dict[str, Any], space: Space, growth: Growth) -> None:
    """A sub-space's original positions along the grown dim, cut back to the stored length.

    A sub-space (a slice, ``isel``, ``sel``) records where its combinations were
    in the space it was selected from, in its selection and in each PointKey;
    grown along a dimension, those positions gain entries after the stored ones.
    """
    selection = expected.get("selection")
    if isinstance(selection, dict) and isinstance(selection.get("positions"), dict):
        held = selection["positions"].get(growth.dim)
        if isinstance(held, list):
            selection["positions"][growth.dim] = held[:growth.old]
    fixed = expected.get("fixed")
    if not isinstance(fixed, dict):
        return
    flat, _ = jax.tree_util.tree_flatten_with_path(space.state, is_leaf=is_axis)
    for path, leaf in flat:
        name = keypath_name(path)
        if not isinstance(leaf, PointKey) or leaf.positions is None or name not in fixed:
            continue
        cut = [entry if isinstance(entry, int) or entry[0] != growth.dim
               else (entry[0], entry[1][:growth.old]) for entry in leaf.positions]
        fixed[name] = summarise(PointKey(positions=cut))


def _stored_values(expected: RunIdentity, stored: RunIdentity, space: Space, growth: Growth
                   ) -> RunIdentity:
    """``expected`` with the stored values of the axes along the grown dim (their labels kept)."""
    inputs = copy.deepcopy(expected.inputs)
    axes, held = inputs.get("axes"), stored.inputs.get("axes")
    if isinstance(axes, dict) and isinstance(held, dict):
        for path, j in zip(space.paths, space.layout.axis_dim, strict=True):
            if j == growth.axis and isinstance(axes.get(path), dict) and isinstance(
                    held.get(path), dict):
                axes[path]["values"] = held[path].get("values")
    return RunIdentity(inputs, expected.program)


def _only_along(differences: list[str], space: Space, growth: Growth) -> bool:
    """Whether every difference named is in an axis or coordinate along the grown dim."""
    along = [f"axes.{path}." for path, j in zip(space.paths, space.layout.axis_dim, strict=True)
             if j == growth.axis]
    along += [f"coords.{name}." for name, coord in space.coords.items()
              if growth.dim in coord.dims]
    return bool(differences) and all(d.startswith(tuple(along)) for d in differences)


def _why_not(stored: RunIdentity, expected: RunIdentity, space: Space, growth: Growth) -> str:
    """Why a run one dimension longer does not grow the store, after the cut-back refusal."""
    if stored.inputs.get("mode") == space.mode == "lhs":
        return (f" (a Latin hypercube, mode='lhs', draws a new design for each n: its "
                f"{growth.old} stored points are not the first of {growth.new}, so its store "
                "does not grow; a Sobol or Halton design, mode='sobol' or 'halton', grows by "
                "its next points)")
    data = [path for path, axis in zip(space.paths, space.axes, strict=True)
            if isinstance(axis, DataAxis)]
    if stored.inputs.get("mode") == space.mode and space.mode in ("sobol", "halton") and data:
        return (f" (a {space.mode} design with a DataAxis ({', '.join(data)}) does not grow: "
                "the axis's size is the design's n, and each point takes the value at "
                "floor(u * size), so more values move every stored point: a larger design "
                "needs a new store)")
    recorded = stored.inputs.get("axes")
    held: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    shortened = [f"{path} held {_stored_length(held.get(path))} values, now {len(table)}"
                 for path, table, j in zip(space.paths, space.layout.tables,
                                           space.layout.axis_dim, strict=True)
                 if j == growth.axis and len(table) < _stored_length(held.get(path))]
    if shortened:
        return (f" (an axis zipped with shorter ones keeps all its values in the store's "
                f"record, and grows only where they are the first of its new ones: "
                f"{'; '.join(shortened)})")
    if not stored.differences(expected, SPACE_KEYS):
        return (f" (the {growth.old} stored labels along {growth.dim} are the first of the new "
                f"ones: but for the differences named, it would grow along {growth})")
    if not stored.differences(_stored_values(expected, stored, space, growth), SPACE_KEYS):
        return (f" (the {growth.old} stored labels along {growth.dim} are the first of the new "
                "ones, but the values the model received there differ in their last bits: a "
                "GridAxis computes its points in float32, so another grid, or the same labels "
                "given as data, may round them otherwise. A store grows only along the values "
                "it was computed with, bit for bit, so this one cannot grow to these: keep a "
                "grid whose first points round alike, or sweep a DataAxis from the first run "
                "of a sweep you mean to grow)")
    hint = ""
    if space.mode in ("product", "zip") and _only_along(
            stored.differences(expected, SPACE_KEYS), space, growth):
        hint = ("; a store grows only by labels after its own: a GridAxis grows when its new "
                "points repeat the old ones (the same low and step), and to add points "
                "anywhere else, sweep a DataAxis from the first run of a sweep you mean to "
                "grow and append to its values")
    return (f" (it would grow along {growth} only if its {growth.old} stored labels were the "
            "first of the new ones, bit for bit, and nothing else changed; the differences "
            f"named are those of this run cut back to its first {growth.old} labels{hint})")


def find_growth(stored: RunIdentity, now: RunIdentity, stored_shape: Sequence[int],
                space: Space, where: str = "the store") -> tuple[Growth | None, str]:
    """Whether the run ``now`` over ``space`` grows a store of ``stored`` (of ``stored_shape``).

    Returns ``(growth, refusal)``: ``(None, "")`` when ``now`` is the stored
    run; the :class:`Growth` and ``""`` when the prefix rule holds (one
    dimension longer, the stored labels a prefix of the new ones, everything
    else equal); else None and the message that refuses the run (``where``
    names the store). A run one dimension longer
    is refused naming what differs once it is cut back to the stored labels
    along it (a model argument changed with the growth is named alone, not
    the grown axes), and saying why it does not grow.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces import DataAxis, Space
    >>> from labeled_spaces.results import Outputs
    >>> from labeled_spaces.results.growth import find_growth
    >>> from labeled_spaces.results.identity import run_identity
    >>> def identity(space):
    ...     outputs = Outputs.build(space, jax.tree.structure(0.0), [()], [np.float32])
    ...     return run_identity(space, outputs)
    >>> small = Space({"k": DataAxis(np.arange(3.0))}, mode="product")
    >>> big = Space({"k": DataAxis(np.arange(5.0))}, mode="product")
    >>> str(find_growth(identity(small), identity(big), (3,), big)[0])
    'k: 3 -> 5'
    >>> other = Space({"k": DataAxis(np.arange(5.0) + 1)}, mode="product")
    >>> find_growth(identity(small), identity(other), (3,), other)[0] is None
    True
    """
    refusal = stored.refusal(now, where)
    if not refusal:  # the same run: it resumes
        return None, ""
    shape, old_shape = tuple(space.shape), tuple(int(s) for s in stored_shape)
    if len(shape) != len(old_shape):
        return None, refusal
    changed = [j for j, (a, b) in enumerate(zip(old_shape, shape, strict=True)) if a != b]
    if len(changed) > 1:
        grown = ", ".join(f"{space.dims[j]}: {old_shape[j]} -> {shape[j]}" for j in changed)
        shrunk = any(shape[j] < old_shape[j] for j in changed)
        return None, (f"{refusal} (a store grows along one dimension at a time, and this run "
                      f"changes {len(changed)}: {grown}; "
                      + ("a store never shrinks)" if shrunk else
                         "grow them one run after another)"))
    if not changed:
        return None, refusal
    j = changed[0]
    growth = Growth(space.dims[j], j, old_shape[j], shape[j])
    if growth.new < growth.old:
        return None, (f"{refusal} (a store grows, it never shrinks: {growth.dim} holds "
                      f"{growth.old} labels, this run {growth.new})")
    expected = RunIdentity(_cut_back(now.inputs, stored.inputs, space, growth), now.program)
    cut = stored.refusal(expected, where)
    if cut:
        return None, f"{cut}{_why_not(stored, expected, space, growth)}"
    return growth, ""

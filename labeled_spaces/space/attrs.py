"""Space ⇄ attrs: a Space described by JSON strings, and rebuilt from them.

netCDF and zarr attributes hold strings and numbers, so every entry is a
namespaced JSON string (``labeled_spaces:axes``, ...). The description
holds the mode, the key, every axis's specification and path, the state's
structure with its fixed leaves (where they can be encoded, see
:mod:`labeled_spaces.space.state_codec`), a sub-space's kept coordinates
and the package versions. Large DataAxis values are not repeated in the
attrs when a coordinate of the same file holds them: the spec refers to it,
and ``Space.from_attrs(attrs, data=dataset)`` reads them from there.

Rebuilding calls only registered axis classes and loaded NumPyro
distributions (see :mod:`labeled_spaces.axes`): a file is data, never code.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import xarray as xr

from .._codec import (
    charge,
    decode_budget,
    encode_array,
    jsonable,
    key_data,
    key_from_data,
    key_impl,
    versions,
)
from .._format import clipped
from .._schema import (
    AXES_ATTR,
    DIM_ATTR,
    KEY_ATTR,
    KEY_IMPL_ATTR,
    KEY_KIND_ATTR,
    LEAVES_ATTR,
    MODE_ATTR,
    NODES_ATTR,
    SELECTED_FROM_ATTR,
    SELECTION_ATTR,
    STATE_ATTR,
    VERSIONS_ATTR,
    read_entry,
)
from ..axes import AbstractAxis, DataAxis, NotRebuildable, PointKey, axis_from_spec
from ..axes.keys import typed_key
from .coords import AxisLabels, Selection
from .design import DESIGNS
from .discovery import is_axis, keypath_name
from .layout import Layout
from .state_codec import (
    decode_leaf,
    decode_tree,
    encode_leaf,
    encode_tree,
    same_leaf,
    saved_leaves,
)
from .state_nodes import describe_nodes, warn_rebuilt
from .value_refs import MAX_INLINE_VALUES, value_coordinates

__all__ = [
    "MAX_INLINE_VALUES", "charge_axis", "parse_attrs", "rebuild_state", "space_attrs",
    "value_coordinates",
]

def _axis_spec(info: AxisLabels, references: Mapping[str, Mapping[str, str]]
               ) -> dict[str, Any]:
    refs = references.get(info.name)
    axis = info.axis
    if refs and type(axis) is DataAxis:
        spec = axis.spec_with_references(refs)  # big values: once, as the coordinate
    else:
        spec = axis.spec()
    return dict(spec, path=info.path)


def space_attrs(
    mode: str,
    dim: str,
    key: jax.Array,
    layout: Layout,
    axes: list[AxisLabels],
    selection: Selection,
    value_coords: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The ``labeled_spaces:*`` attrs of a Space (see :attr:`labeled_spaces.Space.attrs`).

    ``value_coords`` maps an axis name to ``{field: coordinate}`` for the
    fields of a big DataAxis (``values``, ``value_coordinate``) that a
    coordinate of the Space holds exactly (see :func:`value_coordinates`), so
    big values are saved once.
    """
    attrs = {MODE_ATTR: mode}
    if mode != "product":  # zip and the designs have one shared dimension
        attrs[DIM_ATTR] = dim
    attrs[KEY_ATTR] = json.dumps(key_data(key))
    impl = key_impl(key)
    if impl != "threefry2x32":  # e.g. jax.random.key(0, impl="rbg")
        attrs[KEY_IMPL_ATTR] = impl
    if not typed_key(key):  # a PRNGKey: its key leaves give raw keys, rebuilt too
        attrs[KEY_KIND_ATTR] = "raw"
    attrs[AXES_ATTR] = json.dumps([_axis_spec(info, value_coords) for info in axes])
    axis_ids = {id(layout.leaves[p]): k for k, p in enumerate(layout.axis_positions)}
    state = layout.assemble([layout.leaves[p] for p in layout.axis_positions])
    tree = encode_tree(state, axis_ids)
    if tree is not None:
        attrs[STATE_ATTR] = json.dumps(tree)
    else:  # a NamedTuple, a dataclass: its fixed leaves by path, to check a state against
        flat, _ = jax.tree_util.tree_flatten_with_path(state, is_leaf=is_axis)
        attrs[LEAVES_ATTR] = json.dumps({keypath_name(path): encode_leaf(leaf)
                                         for path, leaf in flat if not is_axis(leaf)})
        attrs[NODES_ATTR] = json.dumps(describe_nodes(state))  # what they were, by name
    if selection:
        attrs[SELECTION_ATTR] = json.dumps({
            "positions": {d: np.asarray(p).tolist() for d, p in selection.positions.items()},
            "scalars": {
                name: {"dims": list(v.dims), "attrs": jsonable(v.attrs), **encode_array(v.values)}
                for name, v in selection.scalars.items()
            },
        })
    if selection.origins:
        attrs[SELECTED_FROM_ATTR] = json.dumps(dict(selection.origins))
    attrs[VERSIONS_ATTR] = json.dumps(versions())
    return attrs


def _resolve(held: Mapping[str, Any], data: xr.Dataset | None, path: Any, field: str) -> Any:
    """The array a ``{"coordinate": name}`` reference names in ``data``, else the reference."""
    name = held.get("coordinate")
    if not isinstance(name, str):
        raise ValueError(f"the {field} of the axis at {path!r} must refer to a coordinate by "
                         f"its name, got {name!r}")
    if data is None or name not in data.coords:
        return held  # the axis is taken from the state, or refused naming open_results
    coord = data.coords[name]
    charge(coord.size * max(coord.dtype.itemsize, 8), f"the coordinate {name!r}")
    array = np.asarray(coord.values)
    shape = held.get("shape")
    if shape is not None and list(array.shape) != list(shape):
        raise ValueError(
            f"data's coordinate {name!r} must hold the {field} of the axis at {path!r} "
            f"(shape {tuple(shape)}), got shape {array.shape}"
        )
    return array


def parse_attrs(attrs: Mapping[str, Any], data: xr.Dataset | None = None) -> dict[str, Any]:
    """The checked entries of Space attrs: mode, dim, key, axis specs, state tree, selection.

    ``data`` (a Dataset holding the Space's coordinates) provides the DataAxis
    values that the attrs refer to. Nothing named in the attrs is imported or
    called here: they are data.
    """
    if not isinstance(attrs, Mapping):
        raise TypeError(f"attrs must be a mapping, got {type(attrs).__name__}")
    mode = attrs.get(MODE_ATTR)
    if MODE_ATTR not in attrs:
        raise ValueError(f"attrs lack the labeled_spaces entry {MODE_ATTR!r}")
    if mode not in ("product", "zip", *DESIGNS):
        raise ValueError(f"attrs entry {MODE_ATTR} must be 'product', 'zip', 'sobol', 'halton' "
                         f"or 'lhs', got {clipped(repr(mode))}")
    # a copy: references to coordinates are replaced below, never in the caller's attrs
    specs = copy.deepcopy(read_entry(attrs, AXES_ATTR))
    if not isinstance(specs, list) or not all(isinstance(s, Mapping) for s in specs):
        raise ValueError(f"attrs entry {AXES_ATTR} must be a JSON list of axis specs")
    impl = attrs.get(KEY_IMPL_ATTR, "threefry2x32")
    if not isinstance(impl, str):
        raise ValueError(f"attrs entry {KEY_IMPL_ATTR} must be the name of a JAX PRNG "
                         f"implementation (a string), got {clipped(repr(impl))}")
    try:
        key = key_from_data(read_entry(attrs, KEY_ATTR), impl)
    except ValueError as err:  # name the entries: the data, and the implementation it is of
        raise ValueError(f"attrs entries {KEY_ATTR} and {KEY_IMPL_ATTR}: {err}") from None
    if key.shape != ():
        raise ValueError(f"attrs entry {KEY_ATTR} must hold one PRNG key's data, got the data "
                         f"of {key.shape} keys")
    kind = attrs.get(KEY_KIND_ATTR)
    if kind is not None:
        if kind != "raw":
            raise ValueError(f"attrs entry {KEY_KIND_ATTR} must be 'raw' (a PRNGKey's data) "
                             f"or absent (a typed key), got {clipped(repr(kind))}")
        key = jax.random.key_data(key)
    for spec in specs:
        for field in ("values", "value_coordinate"):
            held = spec.get(field)
            if isinstance(held, Mapping) and "coordinate" in held:
                array = _resolve(held, data, spec.get("path"), field)
                if isinstance(array, np.ndarray):
                    spec[field] = array if field == "values" else {
                        "values": array, "dtype": held.get("dtype", str(array.dtype))}
    selection = Selection.from_entries(read_entry(attrs, SELECTION_ATTR, None),
                                       read_entry(attrs, SELECTED_FROM_ATTR, None))
    tree = read_entry(attrs, STATE_ATTR, None)
    if tree is not None and not isinstance(tree, Mapping):
        raise ValueError(f"attrs entry {STATE_ATTR} must be a JSON object, got {tree!r}")
    leaves = read_entry(attrs, LEAVES_ATTR, None)
    if leaves is not None and not isinstance(leaves, Mapping):
        raise ValueError(f"attrs entry {LEAVES_ATTR} must be a JSON object, got {leaves!r}")
    return {
        "mode": mode,
        "dim": attrs.get(DIM_ATTR, "sample"),
        "key": key,
        "specs": specs,
        "tree": tree,
        "leaves": dict(leaves or {}),
        "nodes": read_entry(attrs, NODES_ATTR, None),  # only shown (state_nodes.warn_rebuilt)
        "selection": selection,
    }


def _normalised(spec: Mapping[str, Any]) -> Any:
    """A spec as read back from JSON, without its path and the reprs that only show things.

    A distribution's ``repr`` describes what cannot be rebuilt; it may read
    differently under another numpyro version, so it does not tell axes apart.
    """
    def strip(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: strip(v) for k, v in node.items() if k not in ("path", "repr")}
        return [strip(v) for v in node] if isinstance(node, list) else node

    return strip(json.loads(json.dumps(spec, default=lambda x: "<array>")))


def _own_matches(spec: Mapping[str, Any], own: AbstractAxis) -> bool:
    """Whether the state's axis is the one the spec describes (as far as the spec tells)."""
    if type(own) is DataAxis:  # values held by a coordinate: compare everything else
        refs = {field: held["coordinate"] for field in ("values", "value_coordinate")
                if isinstance(held := spec.get(field), Mapping) and "coordinate" in held}
        return _normalised(own.spec_with_references(refs)) == _normalised(spec)
    return _normalised(own.spec()) == _normalised(spec)


def _rebuild_axis(spec: Mapping[str, Any], own: Any) -> AbstractAxis:
    """The axis of ``spec``; the state's own axis where the spec cannot be rebuilt."""
    try:
        return axis_from_spec(spec)
    except NotRebuildable as err:
        if not (is_axis(own) and spec.get("type") == type(own).__name__):
            raise NotRebuildable(f"the axis at {spec.get('path')!r}: {err}") from None
        if not _own_matches(spec, own):
            raise NotRebuildable(
                f"{err}; the state's axis at {spec.get('path')!r}, {own!r}, is not the one "
                "the attrs describe"
            ) from None
        return own  # a custom axis (or one whose distribution is not described): the state's


def charge_axis(axis: AbstractAxis, path: Any) -> None:
    """Draw what a Space would build for ``axis`` from the decode budget (before building it).

    The values' shape and dtype come from ``jax.eval_shape`` (nothing is
    computed); labels and value coordinates count as much again. An axis
    whose values cannot be traced counts 8 bytes a point.
    """
    try:
        shape = jax.eval_shape(axis.generate_values, jax.random.key(0))
        nbytes = float(np.prod(shape.shape, dtype=float)) * shape.dtype.itemsize
    except Exception:  # noqa: BLE001 - an axis that cannot be traced: count its points
        nbytes = 8.0 * axis.size
    charge(2 * nbytes + 8 * axis.size, f"the axis at {path!r} ({axis.size:,} points)")


def rebuild_state(parsed: Mapping[str, Any], state: Any = None) -> Any:
    """The state with rebuilt axes from :func:`parse_attrs` entries.

    Without ``state``: the saved structure with its fixed leaves, or, for a
    structure that could not be saved, an ``OrderedDict`` ``{path: axis}`` in
    the saved axis order, then ``{path: leaf}`` of the fixed leaves (one that
    could not be saved: ``NotRebuildable``, as in a saved structure), with a
    warning naming the classes the state was made of (never imported).
    With ``state``: its structure; axes at the saved paths are rebuilt (or
    taken from the state where they cannot be), and
    the state's leaves elsewhere are kept, except where the saved space
    fixed an axis of the given state (a sub-space), whose fixed value is
    taken from the attrs.
    """
    specs = parsed["specs"]
    by_path = {spec.get("path"): spec for spec in specs}
    if state is None:
        axes = [_rebuild_axis(spec, None) for spec in specs]
        for spec, axis in zip(specs, axes, strict=True):
            charge_axis(axis, spec.get("path"))
        if parsed["tree"] is not None:
            return decode_tree(parsed["tree"], axes)
        # an OrderedDict keeps the saved axis order (a dict would sort the paths,
        # e.g. "b-c" before "b.x", changing the product order and the keys); the fixed
        # leaves (PointKeys too) follow, by path: one that could not be saved asks for the
        # state (NotRebuildable), as in a saved structure
        rebuilt = OrderedDict((spec["path"], axis) for spec, axis in zip(specs, axes, strict=True))
        rebuilt.update((path, decode_leaf(node, path)) for path, node in parsed["leaves"].items())
        warn_rebuilt(parsed.get("nodes"), list(rebuilt))  # once per file opened
        return rebuilt
    flat, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=is_axis)
    paths = [keypath_name(p) for p, _ in flat]
    missing = [p for p in by_path if p not in paths]
    if missing:
        raise ValueError(
            f"state must hold the saved axes at their paths {list(by_path)}, got a state "
            f"without {missing}"
        )
    # the fixed leaves by path: from the saved structure, else as saved beside it
    fixed = saved_leaves(parsed["tree"]) if parsed["tree"] is not None else parsed["leaves"]
    leaves = []
    for path, (_, leaf) in zip(paths, flat, strict=True):
        if path in by_path:
            axis = _rebuild_axis(by_path[path], leaf)
            if axis is not leaf:  # built from the attrs, not the caller's own
                charge_axis(axis, path)
            # the run's own axis (a sub-space keeps points of the state's axes: not compared)
            selected = parsed["selection"]
            if (axis is not leaf and is_axis(leaf) and not selected and not selected.origins
                    and not _own_matches(by_path[path], leaf)):
                raise ValueError(
                    f"state must hold the axes the results were made with: at {path!r} the "
                    f"file holds {axis!r}, got {leaf!r}; pass the original state, or none "
                    "where the file describes it")
            leaves.append(axis)
        elif is_axis(leaf):  # fixed in the saved (sub-)space
            if path not in fixed:
                raise ValueError(
                    f"state holds an axis at {path!r}, which the saved space does not vary, "
                    "and the attrs do not hold its fixed value"
                )
            leaves.append(decode_leaf(fixed[path], path))
        elif (isinstance(leaf, PointKey) and isinstance(fixed.get(path), Mapping)
              and "point_key" in fixed[path]):
            # a sub-space's PointKey holds its combinations' original positions: the saved one
            leaves.append(decode_leaf(fixed[path], path))
        else:
            if path in fixed and not same_leaf(fixed[path], leaf):
                _refuse_leaf(path, fixed[path], leaf)
            leaves.append(leaf)
    # the file's own record of its leaves: a state without one of them made another run
    absent = [p for p in fixed if p not in paths and p not in by_path]
    extra = ([p for p in paths if p not in fixed and p not in by_path]
             if parsed["tree"] is not None else [])
    if absent or extra:
        raise ValueError(f"state must hold the fixed leaves the results were made with, got a "
                         f"state {f'without {absent}' if absent else f'with {extra} too'}")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _refuse_leaf(path: str, node: Any, leaf: Any) -> None:
    try:
        saved: Any = decode_leaf(node, path)
    except ValueError:
        saved = node
    raise ValueError(
        f"state must hold the fixed leaves the results were made with: at {path!r} the file "
        f"holds {saved!r}, got {leaf!r}; pass the original state, or none where the file "
        "describes it"
    )


def read_attrs(attrs: Mapping[str, Any], data: xr.Dataset | None = None,
               state: Any = None) -> tuple[dict[str, Any], Any]:
    """:func:`parse_attrs` then :func:`rebuild_state`, under a decode budget for the attrs.

    A reader's budget already in force (the file's size) stays in force.
    """
    with decode_budget(None, "attrs"):
        parsed = parse_attrs(attrs, data)
        return parsed, rebuild_state(parsed, state)


"""Space ⇄ attrs: a Space described by JSON strings, and rebuilt from them.

netCDF and zarr attributes hold strings and numbers, so every entry is a
namespaced JSON string (``labeled_spaces:axes``, ...). The description
holds the mode, the key, every axis's specification and path, the state's
structure with its fixed leaves (where they can be encoded: dicts, lists
and tuples of numbers, strings and arrays), a sub-space's kept
coordinates and the package versions. Large DataAxis values are not
repeated in the attrs when a coordinate of the same file holds them (see
``data=`` in :func:`space_from_attrs`).

Rebuilding calls only registered axis classes and loaded NumPyro
distributions (see :mod:`labeled_spaces.axes`): a file is data, never code.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import xarray as xr

from .._codec import (
    decode_array,
    encode_array,
    jsonable,
    key_data,
    key_from_data,
    key_impl,
    versions,
)
from ..axes import AbstractAxis, DataAxis, NotRebuildable, axis_from_spec
from .coords import AxisLabels, Selection
from .discovery import is_axis, keypath_name
from .layout import Layout

__all__ = [
    "MAX_FIXED_ELEMENTS", "PREFIX", "parse_attrs", "rebuild_state", "space_attrs",
    "value_coordinates",
]

PREFIX = "labeled_spaces:"
# fixed arrays up to this many elements are kept in the attrs
MAX_FIXED_ELEMENTS = 100_000
# DataAxis values beyond this many elements refer to a coordinate of the file when one holds them
MAX_INLINE_VALUES = 10_000


def _encode_leaf(leaf: Any) -> dict[str, Any]:
    if isinstance(leaf, bool) or leaf is None:
        return {"value": leaf}
    if isinstance(leaf, (int, float, str)) and type(leaf) in (int, float, str):
        return {"value": leaf}
    if isinstance(leaf, complex) and type(leaf) is complex:
        return {"complex": [leaf.real, leaf.imag]}
    if isinstance(leaf, (np.ndarray, jax.Array, np.generic)):
        array = np.asarray(leaf)
        if array.size > MAX_FIXED_ELEMENTS:
            return {"missing": f"an array of shape {array.shape} ({array.dtype}), too large "
                               "for the attrs"}
        try:
            encoded = encode_array(array)
        except TypeError:
            return {"missing": f"an array of dtype {array.dtype}"}
        kind = "scalar" if isinstance(leaf, np.generic) else "array"
        return {kind: encoded}
    return {"missing": f"a {type(leaf).__name__}"}


def _decode_leaf(node: Mapping[str, Any], path: str) -> Any:
    if "value" in node:
        return node["value"]
    if "complex" in node:
        return complex(*node["complex"])
    if "array" in node:
        return decode_array(node["array"])
    if "scalar" in node:
        return decode_array(node["scalar"])[()]
    raise NotRebuildable(
        f"the fixed leaf at {path!r} of the saved state ({node.get('missing')}) could not be "
        "saved in the attrs; pass the original state: state=..."
    )


def _encode_tree(node: Any, axis_ids: dict[int, int]) -> dict[str, Any] | None:
    """The state's structure as JSON, or None where a node is not a dict, list or tuple."""
    if is_axis(node):
        return {"axis": axis_ids[id(node)]}
    if node is None:
        return {"none": True}
    if type(node) in (dict, OrderedDict):
        items = []
        for key, child in node.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                return None
            encoded = _encode_tree(child, axis_ids)
            if encoded is None:
                return None
            items.append([key, encoded])
        return {"dict": items, **({"ordered": True} if type(node) is OrderedDict else {})}
    if type(node) in (list, tuple):
        children = [_encode_tree(child, axis_ids) for child in node]
        if any(c is None for c in children):
            return None
        return {type(node).__name__: children}
    leaves = jax.tree_util.tree_leaves(node, is_leaf=is_axis)
    if len(leaves) == 1 and leaves[0] is node:  # a leaf
        return {"leaf": _encode_leaf(node)}
    return None


def _decode_tree(node: Mapping[str, Any], axes: list[Any], path: str = "") -> Any:
    if "axis" in node:
        return axes[node["axis"]]
    if "none" in node:
        return None
    if "dict" in node:
        out = OrderedDict() if node.get("ordered") else {}
        for key, child in node["dict"]:
            out[key] = _decode_tree(child, axes, f"{path}.{key}" if path else str(key))
        return out
    for kind in ("list", "tuple"):
        if kind in node:
            children = [_decode_tree(c, axes, f"{path}[{k}]") for k, c in enumerate(node[kind])]
            return children if kind == "list" else tuple(children)
    if "leaf" in node:
        return _decode_leaf(node["leaf"], path or "value")
    raise ValueError(f"labeled_spaces:state holds an unknown node {sorted(node)!r}")


def _axis_spec(info: AxisLabels, coords_with_values: Mapping[str, str]) -> dict[str, Any]:
    spec = dict(info.axis.spec(), path=info.path)
    ref = coords_with_values.get(info.name)
    if ref is not None and isinstance(spec.get("values"), list):
        if np.asarray(spec["values"], dtype=object).size > MAX_INLINE_VALUES:
            spec["values"] = {"coordinate": ref}
    return spec


def space_attrs(
    mode: str,
    dim: str,
    key: jax.Array,
    layout: Layout,
    axes: list[AxisLabels],
    selection: Selection,
    value_coords: Mapping[str, str],
) -> dict[str, str]:
    """The ``labeled_spaces:*`` attrs of a Space (see :attr:`labeled_spaces.Space.attrs`).

    ``value_coords`` maps an axis name to the coordinate of the Space that
    holds its values exactly (as given), so big values are saved once.
    """
    attrs = {f"{PREFIX}mode": mode}
    if mode == "zip":
        attrs[f"{PREFIX}dim"] = dim
    attrs[f"{PREFIX}key"] = json.dumps(key_data(key))
    impl = key_impl(key)
    if impl != "threefry2x32":  # e.g. jax.random.key(0, impl="rbg")
        attrs[f"{PREFIX}key_impl"] = impl
    attrs[f"{PREFIX}axes"] = json.dumps([_axis_spec(info, value_coords) for info in axes])
    axis_ids = {id(layout.leaves[p]): k for k, p in enumerate(layout.axis_positions)}
    tree = _encode_tree(layout.assemble([layout.leaves[p] for p in layout.axis_positions]),
                        axis_ids)
    if tree is not None:
        attrs[f"{PREFIX}state"] = json.dumps(tree)
    if selection:
        attrs[f"{PREFIX}selection"] = json.dumps({
            "positions": {d: np.asarray(p).tolist() for d, p in selection.positions.items()},
            "scalars": {
                name: {"dims": list(v.dims), "attrs": jsonable(v.attrs), **encode_array(v.values)}
                for name, v in selection.scalars.items()
            },
        })
    attrs[f"{PREFIX}versions"] = json.dumps(versions())
    return attrs


def _load(attrs: Mapping[str, Any], name: str, default: Any = KeyError) -> Any:
    full = PREFIX + name
    if full not in attrs:
        if default is KeyError:
            raise ValueError(f"attrs lack the labeled_spaces entry {full!r}")
        return default
    raw = attrs[full]
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as err:
        raise ValueError(f"attrs entry {full!r} is not valid JSON: {err}") from None


def parse_attrs(attrs: Mapping[str, Any], data: xr.Dataset | None = None) -> dict[str, Any]:
    """The checked entries of Space attrs: mode, dim, key, axis specs, state tree, selection.

    ``data`` (a Dataset holding the Space's coordinates) provides the DataAxis
    values that the attrs refer to.
    """
    if not isinstance(attrs, Mapping):
        raise TypeError(f"attrs must be a mapping, got {type(attrs).__name__}")
    mode = attrs.get(f"{PREFIX}mode")
    if f"{PREFIX}mode" not in attrs:
        raise ValueError(f"attrs lack the labeled_spaces entry {PREFIX + 'mode'!r}")
    specs = _load(attrs, "axes")
    if not isinstance(specs, list) or not all(isinstance(s, Mapping) for s in specs):
        raise ValueError(f"attrs entry {PREFIX}axes must be a JSON list of axis specs")
    key = key_from_data(_load(attrs, "key"), attrs.get(f"{PREFIX}key_impl", "threefry2x32"))
    for spec in specs:
        values = spec.get("values")
        if isinstance(values, Mapping) and "coordinate" in values:
            name = values["coordinate"]
            if data is None or name not in data.coords:
                raise NotRebuildable(
                    f"the values of axis {spec.get('path')!r} are stored in the coordinate "
                    f"{name!r} of the file, not in its attrs; open the file with "
                    "labeled_spaces.open_results(path), or pass data=the Dataset"
                )
            spec["values"] = np.asarray(data.coords[name].values).tolist()
    selection = Selection()
    kept = _load(attrs, "selection", None)
    if kept is not None:
        selection = Selection(
            {d: np.asarray(p) for d, p in kept["positions"].items()},
            {name: xr.Variable(tuple(v["dims"]), decode_array(v), v["attrs"])
             for name, v in kept["scalars"].items()},
        )
    return {
        "mode": mode,
        "dim": attrs.get(f"{PREFIX}dim", "sample"),
        "key": key,
        "specs": specs,
        "tree": _load(attrs, "state", None),
        "selection": selection,
    }


def _rebuild_axis(spec: Mapping[str, Any], own: Any) -> AbstractAxis:
    """The axis of ``spec``; the state's own axis where the spec cannot be rebuilt."""
    try:
        return axis_from_spec(spec)
    except NotRebuildable:
        if is_axis(own) and spec.get("type") == type(own).__name__:
            return own  # a custom axis (or one whose distribution is not described): the state's
        raise


def rebuild_state(parsed: Mapping[str, Any], state: Any = None) -> Any:
    """The state with rebuilt axes from :func:`parse_attrs` entries.

    Without ``state``: the saved structure with its fixed leaves, or, for a
    structure that could not be saved, an ``OrderedDict`` ``{path: axis}`` in
    the saved axis order. With ``state``: its structure; axes at the saved
    paths are rebuilt (or taken from the state where they cannot be), and
    the state's leaves elsewhere are kept, except where the saved space
    fixed an axis of the given state (a sub-space), whose fixed value is
    taken from the attrs.
    """
    specs = parsed["specs"]
    by_path = {spec.get("path"): spec for spec in specs}
    if state is None:
        axes = [_rebuild_axis(spec, None) for spec in specs]
        if parsed["tree"] is not None:
            return _decode_tree(parsed["tree"], axes)
        # an OrderedDict keeps the saved axis order (a dict would sort the paths,
        # e.g. "b-c" before "b.x", changing the product order and the keys)
        return OrderedDict((spec["path"], axis) for spec, axis in zip(specs, axes, strict=True))
    flat, treedef = jax.tree_util.tree_flatten_with_path(state, is_leaf=is_axis)
    paths = [keypath_name(p) for p, _ in flat]
    missing = [p for p in by_path if p not in paths]
    if missing:
        raise ValueError(
            f"state must hold the saved axes at their paths {list(by_path)}, got a state "
            f"without {missing}"
        )
    saved_leaves = _saved_leaves(parsed["tree"])
    leaves = []
    for path, (_, leaf) in zip(paths, flat, strict=True):
        if path in by_path:
            leaves.append(_rebuild_axis(by_path[path], leaf))
        elif is_axis(leaf):  # fixed in the saved (sub-)space
            if path not in saved_leaves:
                raise ValueError(
                    f"state holds an axis at {path!r}, which the saved space does not vary, "
                    "and the attrs do not hold its fixed value"
                )
            leaves.append(_decode_leaf(saved_leaves[path], path))
        else:
            leaves.append(leaf)
    return treedef.unflatten(leaves)


def _saved_leaves(tree: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{path: encoded leaf}`` of a saved state's fixed leaves."""
    if tree is None:
        return {}
    found: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], path: str) -> None:
        if "dict" in node:
            for key, child in node["dict"]:
                walk(child, f"{path}.{key}" if path else str(key))
        for kind in ("list", "tuple"):
            for k, child in enumerate(node.get(kind, ())):
                walk(child, f"{path}[{k}]")
        if "leaf" in node:
            found[path or "value"] = node["leaf"]

    walk(tree, "")
    return found


def value_coordinates(layout: Layout, axes: list[AxisLabels], coords: xr.Coordinates
                      ) -> dict[str, str]:
    """``{axis name: coordinate}`` for DataAxis values that a coordinate holds exactly."""
    found = {}
    for a, info in enumerate(axes):
        axis = info.axis
        if not isinstance(axis, DataAxis):
            continue
        if layout.dims[layout.axis_dim[a]].size != axis.size:
            continue  # a zipped axis cut to a shorter dimension
        for name in (f"{info.name}_value", info.name):
            if name in coords and coords[name].dtype == axis.data.dtype and np.array_equal(
                    coords[name].values, axis.data):
                found[info.name] = name
                break
    return found

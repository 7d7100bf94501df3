"""The state's structure and fixed leaves as JSON: what makes a saved Space self-contained.

A state is encoded node by node: dicts (also ``OrderedDict``, keys str or
int), lists, tuples and None, with the axes as references to their position
among the saved axis specs, and the fixed leaves as numbers, strings, bools,
None, bytes, complex numbers, NumPy scalars and arrays (up to
:data:`MAX_FIXED_ELEMENTS` elements) and JAX arrays (read back as JAX
arrays), and PointKeys (their positions, see
:class:`~labeled_spaces.PointKey`). A leaf that cannot be encoded is
written as ``{"missing": what}``: rebuilding then needs the original
state. A structure of other nodes (NamedTuples, dataclasses) is not encoded
at all. Decoding checks every node and builds only these containers, arrays
and PointKeys: the state is data.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._codec import decode_array, encode_array, key_from_data, key_impl
from .._format import format_count
from .._schema import STATE_ATTR
from ..axes import NotRebuildable, PointKey
from .discovery import is_axis

__all__ = ["MAX_FIXED_ELEMENTS", "decode_leaf", "decode_tree", "encode_leaf", "encode_tree",
           "rebuilt", "same_leaf", "saved_leaves"]

# fixed arrays up to this many elements are kept in the attrs
MAX_FIXED_ELEMENTS = 100_000


def encode_leaf(leaf: Any) -> dict[str, Any]:
    """A fixed leaf as JSON (``{"missing": what}`` where it cannot be encoded).

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.space.state_codec import decode_leaf, encode_leaf
    >>> encode_leaf(np.float32(0.5))
    {'scalar': {'values': 0.5, 'dtype': 'float32'}}
    >>> decode_leaf(encode_leaf(1 + 2j), "z"), encode_leaf(object())
    ((1+2j), {'missing': 'a object'})
    >>> import jax
    >>> decode_leaf(encode_leaf(jax.random.key(7)), "key").dtype
    key<fry>
    """
    if isinstance(leaf, bool) or leaf is None:
        return {"value": leaf}
    if isinstance(leaf, (int, float, str)) and type(leaf) in (int, float, str):
        return {"value": leaf}
    if isinstance(leaf, complex) and type(leaf) is complex:
        return {"complex": [leaf.real, leaf.imag]}
    if type(leaf) is bytes:
        return {"bytes": leaf.decode("latin-1")}
    if type(leaf) is PointKey:
        return {"point_key": leaf.spec()}
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        # a typed PRNG key has no NumPy form: its data and the name of its implementation
        return {"key": encode_array(np.asarray(jax.random.key_data(leaf))),
                "impl": key_impl(leaf)}
    if isinstance(leaf, (np.ndarray, jax.Array, np.generic)):
        array = np.asarray(leaf)
        if array.size > MAX_FIXED_ELEMENTS:
            return {"missing": f"an array of shape {array.shape} ({array.dtype}), too large "
                               "for the attrs"}
        try:
            encoded = encode_array(array)
        except TypeError:
            return {"missing": f"an array of dtype {array.dtype}"}
        if isinstance(leaf, np.generic):
            return {"scalar": encoded}
        if isinstance(leaf, jax.Array):  # given as a JAX array: read back as one
            if getattr(leaf, "weak_type", False):  # promotes like a Python number: kept
                return {"array": encoded, "jax": True, "weak": True}
            return {"array": encoded, "jax": True}
        return {"array": encoded}
    return {"missing": f"a {type(leaf).__name__}"}


def decode_leaf(node: Any, path: str) -> Any:
    """The leaf :func:`encode_leaf` encoded (``path`` names it in errors).

    Raises
    ------
    NotRebuildable
        For a leaf that could not be encoded (pass the original state).
    ValueError
        For anything that is not an encoded leaf.
    """
    if not isinstance(node, Mapping):
        raise ValueError(f"{STATE_ATTR} holds a leaf at {path!r} that is not an "
                         f"encoded value, got {node!r}")
    if "value" in node:
        value = node["value"]
        if isinstance(value, (list, dict)):
            raise ValueError(f"{STATE_ATTR} holds a leaf at {path!r} that is not a "
                             f"number, string, bool or None, got {value!r}")
        return value
    if "complex" in node:
        pair = node["complex"]
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, (int, float)) for x in pair)):
            raise ValueError(f"{STATE_ATTR} holds a complex leaf at {path!r} that is "
                             f"not a [real, imag] pair, got {pair!r}")
        return complex(*pair)
    if "bytes" in node and isinstance(node["bytes"], str):
        return node["bytes"].encode("latin-1")
    if "array" in node:
        array = decode_array(node["array"])
        if node.get("jax") is not True:
            return array
        return _weakly_typed(array) if node.get("weak") is True else jnp.asarray(array)
    if "scalar" in node:
        return decode_array(node["scalar"])[()]
    if "key" in node:
        return key_from_data(decode_array(node["key"]), node.get("impl"))
    if "point_key" in node:
        return PointKey.from_spec(node["point_key"])
    if "missing" in node:
        raise NotRebuildable(
            f"the fixed leaf at {path!r} of the saved state ({node['missing']}) could not be "
            "saved in the attrs; pass the original state: Space.from_attrs(attrs, state=...) "
            "or open_results(path, state=...)"
        )
    raise ValueError(f"{STATE_ATTR} holds a leaf at {path!r} of an unknown encoding "
                     f"{sorted(node)!r}")


def _weakly_typed(array: np.ndarray) -> jax.Array:
    """``array`` as a weakly typed JAX array, as ``jnp.asarray(2.0)`` is.

    A JAX array made from Python numbers promotes like them (``x_bf16 * w``
    stays bfloat16); only the numbers' kinds can be weak, in JAX's default
    precision, so that is the dtype the array gets.
    """
    zero = {"i": 0, "f": 0.0, "c": 0j}.get(array.dtype.kind)
    if zero is None:  # no weak form: as the strong array
        return jnp.asarray(array)
    return jax.lax.full(array.shape, zero).at[...].set(array)


def rebuilt(node: Any) -> bool:
    """Whether the codec rebuilds ``node`` as the container it is.

    A list, a tuple, or a dict (also ``OrderedDict``) whose keys are str or
    int; any other node comes back from a file as an ``OrderedDict``.

    Examples
    --------
    >>> from collections import OrderedDict
    >>> from labeled_spaces.space.state_codec import rebuilt
    >>> rebuilt({"a": 1}), rebuilt(OrderedDict(b=2)), rebuilt({(1, 2): 3}), rebuilt({True: 1})
    (True, True, False, False)
    """
    if type(node) in (list, tuple):
        return True
    return type(node) in (dict, OrderedDict) and all(
        isinstance(k, (str, int)) and not isinstance(k, bool) for k in node)


def encode_tree(node: Any, axis_ids: dict[int, int]) -> dict[str, Any] | None:
    """The state's structure as JSON, or None where a node is not a dict, list or tuple.

    ``axis_ids`` maps ``id(axis)`` to the axis's position among the saved specs.

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> from labeled_spaces.space.state_codec import decode_tree, encode_tree
    >>> axis = GridAxis(0.0, 1.0, 3)
    >>> tree = encode_tree({"a": axis, "dt": [0.1, None]}, {id(axis): 0})
    >>> tree
    {'dict': [['a', {'axis': 0}], ['dt', {'list': [{'leaf': {'value': 0.1}}, {'none': True}]}]]}
    >>> decode_tree(tree, ["the axis"])
    {'a': 'the axis', 'dt': [0.1, None]}
    """
    if is_axis(node):
        return {"axis": axis_ids[id(node)]}
    if node is None:
        return {"none": True}
    if type(node) in (dict, OrderedDict):
        if not rebuilt(node):
            return None
        items = []
        for key, child in node.items():
            encoded = encode_tree(child, axis_ids)
            if encoded is None:
                return None
            items.append([key, encoded])
        return {"dict": items, **({"ordered": True} if type(node) is OrderedDict else {})}
    if type(node) in (list, tuple):
        children = [encode_tree(child, axis_ids) for child in node]
        if any(c is None for c in children):
            return None
        return {type(node).__name__: children}
    leaves = jax.tree_util.tree_leaves(node, is_leaf=is_axis)
    if len(leaves) == 1 and leaves[0] is node:  # a leaf
        return {"leaf": encode_leaf(node)}
    return None


def decode_tree(node: Any, axes: list[Any], path: str = "") -> Any:
    """The state :func:`encode_tree` encoded, with ``axes[k]`` for the axis references."""
    if not isinstance(node, Mapping):
        raise ValueError(f"{STATE_ATTR} must hold encoded nodes, got {node!r} at "
                         f"{path or 'the root'!r}")
    if "axis" in node:
        k = node["axis"]
        if not (isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(axes)):
            raise ValueError(f"{STATE_ATTR} refers to axis {k!r} at {path!r}; the "
                             f"attrs describe {format_count(len(axes), 'axis', 'axes')}")
        return axes[k]
    if "none" in node:
        return None
    if "dict" in node:
        items = node["dict"]
        if not isinstance(items, list) or not all(
                isinstance(i, list) and len(i) == 2 and isinstance(i[0], (str, int))
                for i in items):
            raise ValueError(f"{STATE_ATTR} holds a dict at {path!r} that is not a "
                             f"list of [key, node] pairs, got {items!r}")
        out = OrderedDict() if node.get("ordered") else {}
        for key, child in items:
            out[key] = decode_tree(child, axes, f"{path}.{key}" if path else str(key))
        return out
    for kind in ("list", "tuple"):
        if kind in node:
            if not isinstance(node[kind], list):
                raise ValueError(f"{STATE_ATTR} holds a {kind} at {path!r} that is "
                                 f"not a list of nodes, got {node[kind]!r}")
            children = [decode_tree(c, axes, f"{path}[{k}]") for k, c in enumerate(node[kind])]
            return children if kind == "list" else tuple(children)
    if "leaf" in node:
        return decode_leaf(node["leaf"], path or "value")
    raise ValueError(f"{STATE_ATTR} holds an unknown node {sorted(node)!r}")


def saved_leaves(tree: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{path: encoded leaf}`` of a saved state's fixed leaves (paths as ``keypath_name``)."""
    if tree is None:
        return {}
    found: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        # malformed nodes hold no leaf (decode_leaf checks the leaves themselves)
        if not isinstance(node, Mapping):
            return
        items = node.get("dict")
        for item in items if isinstance(items, list) else ():
            if isinstance(item, list) and len(item) == 2:
                walk(item[1], f"{path}.{item[0]}" if path else str(item[0]))
        for kind in ("list", "tuple"):
            children = node.get(kind)
            for k, child in enumerate(children if isinstance(children, list) else ()):
                walk(child, f"{path}[{k}]")
        if "leaf" in node:
            found[path or "value"] = node["leaf"]

    walk(tree, "")
    return found


def same_leaf(node: Any, leaf: Any) -> bool:
    """Whether ``leaf`` (a caller's state) is the fixed leaf a file encoded as ``node``.

    True where the file recorded nothing to compare with (a leaf it could not
    encode, or a node it does not describe); else the encodings, or the
    values, must be equal.

    Examples
    --------
    >>> from labeled_spaces.space.state_codec import encode_leaf, same_leaf
    >>> same_leaf(encode_leaf(0.2), 0.2), same_leaf(encode_leaf(0.2), 0.5)
    (True, False)
    >>> same_leaf({"missing": "a function"}, print)
    True
    """
    if not isinstance(node, Mapping) or "missing" in node:
        return True
    given = encode_leaf(leaf)
    if json.loads(json.dumps(given, default=str)) == json.loads(json.dumps(node, default=str)):
        return True
    try:
        saved = decode_leaf(node, "")
    except ValueError:
        return True  # a node this version cannot read: nothing to hold the state against
    if "missing" in given or isinstance(saved, PointKey) or isinstance(leaf, PointKey):
        return False
    if any(isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
           for x in (saved, leaf)):
        return False  # typed keys: their encodings (data and implementation) differ
    try:
        a, b = np.asarray(saved), np.asarray(leaf)
        nan = a.dtype.kind in "fc" and b.dtype.kind in "fc"  # a NaN leaf is the same NaN
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=nan))
    except (TypeError, ValueError):
        return False

"""An output's tree structure as JSON, and back: a file names its outputs' nesting as data.

``labeled_spaces:output_tree`` records how a model's outputs nest (dicts,
lists, tuples, None, leaves) so that a file rebuilds the same pytree; what
is read back is checked node by node and never names code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from .._format import clipped
from .._schema import OUTPUT_TREE_ATTR

__all__ = ["structure_from_json", "structure_to_json"]


def structure_to_json(treedef: Any) -> dict[str, Any] | None:
    """An output structure of dicts, lists, tuples and None as JSON; None for other nodes.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces.results.output_tree import structure_from_json, structure_to_json
    >>> tree = jax.tree.structure({"a": 1, "b": [2, 3]})
    >>> structure_from_json(structure_to_json(tree)) == tree
    True
    """
    dummy = treedef.unflatten(list(range(treedef.num_leaves)))

    def encode(node: Any) -> dict[str, Any] | None:
        if type(node) is int:
            return {"leaf": node}
        if node is None:
            return {"none": True}
        if type(node) is dict:
            if not all(isinstance(k, str) for k in node):
                return None
            items = [[k, encode(v)] for k, v in node.items()]
            return None if any(v is None for _, v in items) else {"dict": items}
        if type(node) in (list, tuple):
            children = [encode(v) for v in node]
            return None if any(c is None for c in children) else {type(node).__name__: children}
        return None

    return encode(dummy)


def structure_from_json(encoded: Any) -> Any:
    """The tree structure :func:`structure_to_json` described; a ValueError for anything else."""

    def decode(node: Any) -> Any:
        kind = next((k for k in ("leaf", "none", "dict", "list", "tuple")
                     if isinstance(node, Mapping) and k in node), None)
        items = node.get(kind) if kind else None
        if kind in ("dict", "list", "tuple") and not (isinstance(items, list) and (
                kind != "dict" or all(isinstance(i, list) and len(i) == 2
                                      and isinstance(i[0], str) for i in items))):
            kind = None
        if kind is None:
            raise ValueError(f"{OUTPUT_TREE_ATTR} must describe an output structure of "
                             "leaves, None, dicts ([key, node] pairs), lists and tuples, got "
                             f"{clipped(repr(node))}")
        if kind in ("leaf", "none"):
            return 0 if kind == "leaf" else None
        assert isinstance(items, list)  # checked above for dict, list and tuple
        if kind == "dict":
            return {k: decode(v) for k, v in items}
        children = [decode(v) for v in items]
        return children if kind == "list" else tuple(children)

    return jax.tree.structure(decode(encoded))

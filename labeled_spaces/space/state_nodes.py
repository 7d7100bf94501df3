"""The nodes of a state that a file cannot rebuild, described so that a reader can say so.

The state codec (:mod:`labeled_spaces.space.state_codec`) rebuilds dicts,
lists, tuples and None. Any other node (a NamedTuple, a dataclass, an
equinox Module, another registered pytree node, a ``defaultdict``, a dict
with keys other than str and int) is a class that a file may name but never
imports (a file is data), so ``open_results(path)`` gives such a state back
as an ``OrderedDict`` of its leaves by path, and a model that reads the
state's attributes fails on it. The attrs record what each node was
(:func:`describe_nodes`: its kind, class name and fields), so that
reopening says what was lost and how to get it back (:func:`warn_rebuilt`):
``open_results(path, state=P(...))``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import jax

from .._checks import warn_user
from .._format import clipped, elided
from .discovery import is_axis, keypath_name
from .state_codec import rebuilt

__all__ = ["REBUILT_AS_DICT", "describe_nodes", "warn_rebuilt"]

#: the beginning of the warning
REBUILT_AS_DICT = "the state saved in the file "

_SHOWN = 4  # nodes named in the warning


def _kind(node: Any) -> str:
    if isinstance(node, tuple) and hasattr(type(node), "_fields"):
        return "NamedTuple"
    if isinstance(node, defaultdict):
        return "defaultdict"
    if isinstance(node, dict):
        return "dict with keys other than str and int"
    if any(c.__module__.partition(".")[0] == "equinox" for c in type(node).__mro__[1:]):
        return "equinox Module"
    if dataclasses.is_dataclass(node):
        return "dataclass"
    return "pytree node"


def describe_nodes(state: Any) -> list[dict[str, Any]]:
    """Every node of ``state`` that the codec does not rebuild, in leaf order.

    Each as ``{"path", "kind", "type", "fields"}``: its key path (``""`` for
    the root), what it is (``"NamedTuple"``, ``"dataclass"``, ...), its
    class's name and its children's keys.

    Examples
    --------
    >>> from typing import NamedTuple
    >>> from labeled_spaces import GridAxis
    >>> from labeled_spaces.space.state_nodes import describe_nodes
    >>> class P(NamedTuple):
    ...     a: object
    ...     dt: float
    >>> describe_nodes({"p": P(GridAxis(0, 1, 3), 0.1)})
    [{'path': 'p', 'kind': 'NamedTuple', 'type': 'P', 'fields': ['a', 'dt']}]
    """
    found: list[dict[str, Any]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if is_axis(node) or node is None:
            return
        children = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[0]
        if len(children) == 1 and children[0][0] == () and children[0][1] is node:
            return  # a leaf
        if not rebuilt(node):
            found.append({"path": keypath_name(path) if path else "", "kind": _kind(node),
                          "type": type(node).__qualname__,
                          "fields": [keypath_name(p) for p, _ in children]})
        for p, child in children:
            walk(child, path + tuple(p))

    walk(state, ())
    return found


def _text(value: Any) -> str | None:
    return clipped(value, 60) if isinstance(value, str) else None


def _read(nodes: Any) -> list[tuple[str, str, str, list[str]]]:
    """The well-formed entries of a file's node descriptions (they are only shown)."""
    out = []
    for node in nodes if isinstance(nodes, list) else ():
        if not isinstance(node, Mapping):
            continue
        path, kind, name = (_text(node.get(k)) for k in ("path", "kind", "type"))
        fields = node.get("fields")
        if path is None or kind is None or name is None or not isinstance(fields, list):
            continue
        out.append((path, kind, name, [clipped(str(f), 30) for f in fields]))
    return out


def _fields(fields: list[str]) -> str:
    if not fields:
        return "no fields"
    return "fields " + ", ".join(fields[:8]) + (", ..." if len(fields) > 8 else "")


def warn_rebuilt(nodes: Any, paths: list[str]) -> None:
    """Warn that a saved state comes back as an ``OrderedDict`` of ``paths``.

    ``nodes``: what :func:`describe_nodes` recorded (None for a file written
    before it was; a malformed entry names nothing).

    Examples
    --------
    >>> import warnings
    >>> from labeled_spaces.space.state_nodes import warn_rebuilt
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_rebuilt([{"path": "", "kind": "NamedTuple", "type": "P",
    ...                    "fields": ["a", "k"]}], ["a", "k"])
    >>> print(str(caught[0].message).split(";")[0])
    the state saved in the file was a NamedTuple 'P' (fields a, k)
    """
    read = _read(nodes)
    shown = [f"a{'n' if kind[:1] in tuple('aeiouAEIOU') else ''} {kind} {name!r} "
             f"({_fields(fields)})" + (f" at {path!r}" if path else "")
             for path, kind, name, fields in read]
    if not shown:
        what = "held a node other than a dict, list or tuple (a NamedTuple, a dataclass, ...)"
    elif len(read) == 1 and not read[0][0]:
        what = f"was {shown[0]}"
    else:
        what = "held " + ", ".join(shown[:_SHOWN]) + (", ..." if len(shown) > _SHOWN else "")
    root = read[0][2] if read and not read[0][0] else None
    warn_user(f"{REBUILT_AS_DICT}{what}; rebuilt as an OrderedDict of its leaves by path "
              f"({elided([repr(p) for p in paths], edge=4)[1:-1]}), since opening a file never "
              f"imports the classes it names: a model that reads the state's fields as "
              f"attributes fails on it. Pass the state to get it back: open_results(path, "
              f"state={root + '(...)' if root else '...'}) (or Space.from_attrs(attrs, "
              f"state=...))")

"""Key leaves that give a model the same key: warned of when a Space is built.

A :class:`~labeled_spaces.PointKey` is one key per combination, not per
leaf: two PointKeys of a state give the same key at every combination, so
a model that draws two "independent" streams from them draws the same
numbers twice. Two :class:`~labeled_spaces.KeyAxis` never coincide: each
folds its replicate numbers into its own axis key.

Only a state as the user wrote it is checked (PointKeys without
``positions``): sub-spaces and spaces rebuilt from a file do not repeat it
(:data:`SHARED_KEYS` is the message's beginning, silenced there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._checks import warn_user
from ..axes import PointKey

__all__ = ["SHARED_KEYS", "warn_shared_keys"]

#: the beginning of the warning
SHARED_KEYS = "PointKeys at "


def warn_shared_keys(leaves: Sequence[Any], paths: Sequence[str]) -> None:
    """Warn where a new Space's state holds more than one PointKey (``paths``: the leaves').

    Examples
    --------
    >>> import warnings
    >>> from labeled_spaces import GridAxis, PointKey, Space
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = Space({"a": GridAxis(0, 1, 3), "k": PointKey(), "k2": PointKey()})
    >>> str(caught[0].message).split(":")[0]
    "PointKeys at 'k' and 'k2' give the same key at every combination"
    """
    points = [k for k, leaf in enumerate(leaves)
              if isinstance(leaf, PointKey) and leaf.positions is None]
    if len(points) < 2:
        return
    named = ", ".join(repr(paths[k]) for k in points[:-1]) + f" and {paths[points[-1]]!r}"
    warn_user(f"{SHARED_KEYS}{named} give the same key at every combination: a PointKey is "
              "one key per combination, not per leaf. For independent streams keep one "
              "PointKey and derive them in the model: jax.random.split(key) or "
              "jax.random.fold_in(key, j), one j per stream")

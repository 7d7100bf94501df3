"""Where a Space is expected: one check, with one hint, for every executor and analysis."""

from __future__ import annotations

from typing import Any

import jax

from .._format import short_repr
from .discovery import is_axis
from .space import Space

__all__ = ["check_space"]

_BUILD = ('Space({state}) (zip mode) or Space({state}, mode="product")')


def check_space(space: Any, argname: str = "space") -> Space:
    """``space`` if it is a Space, else a ``TypeError`` naming ``argname`` and how to make one.

    A state (a dict, list, tuple or any pytree that holds an axis) or a bare
    axis given where a Space belongs is the usual slip; the message says
    which Space to build from it.

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> from labeled_spaces.space.expected import check_space
    >>> check_space(GridAxis(0.0, 1.0, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: space must be a labeled_spaces.Space, got GridAxis(...) (GridAxis); build a ...
    """
    if isinstance(space, Space):
        return space
    if is_axis(space):
        hint = ("; build a Space from a state that holds the axis first: "
                + _BUILD.format(state='{"x": axis}'))
    elif isinstance(space, (dict, list, tuple)) or any(
            is_axis(leaf) for leaf in jax.tree.leaves(space, is_leaf=is_axis)):
        hint = "; build a Space from the state first: " + _BUILD.format(state="state")
    else:
        hint = ""
    raise TypeError(f"{argname} must be a labeled_spaces.Space, got {short_repr(space)} "
                    f"({type(space).__name__}){hint}")

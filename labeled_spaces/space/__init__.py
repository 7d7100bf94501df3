"""The Space: axes found in a pytree, composed into a labeled grid of combinations.

``space`` holds the Space itself; ``discovery`` finds the axes in a pytree;
``layout`` what it hands to executors;
``coords`` its xarray face; ``labels`` label → position (``sel``);
``subspace`` ``isel``/``sel``/flat slices; ``attrs`` Space ⇄ file attributes;
``export`` the whole-space views (``to_xarray``, ``to_dataframe``, ``collect``);
``expected`` the check where a Space is expected (``check_space``).
"""

from .coords import Selection
from .discovery import is_axis, keypath_name
from .expected import check_space
from .labels import SelectionError, positions_for
from .layout import Layout, check_key, flat_position
from .space import MODES, Space

__all__ = [
    "Layout",
    "MODES",
    "Selection",
    "SelectionError",
    "Space",
    "check_key",
    "check_space",
    "flat_position",
    "is_axis",
    "keypath_name",
    "positions_for",
]

"""Whether a file's space gives the keys its run used: its key, and each KeyAxis's.

``open_results`` rebuilds a space from a file's attrs. Its key attr could have
been edited, and a ``KeyAxis``'s keys fold from a key that JAX's split gives,
whose rule is a setting (``jax_threefry_partitionable``): either would give a
rerun other keys than the run's, while the coordinates still read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..space import Space
from .identity import RunIdentity, axis_keys, describe_key

__all__ = ["key_differences"]


def key_differences(attrs: Mapping[str, Any], space: Space) -> list[str]:
    """Where ``space``'s keys differ from those of the run identity recorded in ``attrs``.

    Only the keys are described (the space's key and each ``KeyAxis``'s, not
    the axes' values): ``open_results`` without ``state=`` checks that the
    space it rebuilds gives a rerun the run's keys.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results.file_keys import key_differences
    >>> space = Space({"k": GridAxis(0.0, 1.0, 2)}, key=jax.random.PRNGKey(3))
    >>> attrs = {"labeled_spaces:identity": '{"inputs": {"key": [0, 4]}}'}
    >>> key_differences(attrs, space)
    ['key[1]: 4 -> 3']
    """
    recorded = RunIdentity.from_attrs(attrs)
    if recorded is None:
        return []
    axes = recorded.inputs.get("axes")
    held = {p: a["axis_key"] for p, a in axes.items() if isinstance(a, dict) and "axis_key" in a
            } if isinstance(axes, dict) else {}
    now = {p: k for p, k in axis_keys(space).items() if p in held}
    return recorded.differences(RunIdentity(describe_key(space.attrs)),
                                [k for k in ("key", "key_impl") if k in recorded.inputs]) + [
        f"the KeyAxis {p!r} folds its keys from {now[p]}, the run from {held[p]} (JAX's "
        "jax_threefry_partitionable setting differs from the run's?)"
        for p in now if now[p] != held[p]]

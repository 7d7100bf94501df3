"""Turning ``model(state, *args, **kwargs)`` into a function of arrays only.

A state (and the extra arguments) may mix arrays with Python values that a
model uses as constants (``dt=0.1``, ``n_steps=2000``, a string). Arrays are
passed to the compiled function as arguments, so that large fixed data (a
connectome) is not baked into the program as a constant; everything else is
closed over, as the model would see it without ``jit``. The token of the
closed-over part keys the cache of compiled functions, so the same model over
a space of the same structure reuses one compiled function.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["split_arrays", "static_token", "signature"]


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def split_arrays(leaves: Sequence[Any]) -> tuple[list[Any], Callable[[Sequence[Any]], list[Any]]]:
    """Separate array leaves from the rest.

    Returns the arrays and a function that, given replacement arrays (traced
    or not), rebuilds the full leaf list with the non-array leaves as they were.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.compile import split_arrays
    >>> arrays, rebuild = split_arrays([np.ones(2), 0.1, "euler"])
    >>> len(arrays), rebuild([np.zeros(2)])[1:]
    (1, [0.1, 'euler'])
    """
    leaves = list(leaves)
    where = [k for k, x in enumerate(leaves) if _is_array(x)]

    def rebuild(arrays: Sequence[Any]) -> list[Any]:
        out = list(leaves)
        for k, a in zip(where, arrays, strict=True):
            out[k] = a
        return out

    return [leaves[k] for k in where], rebuild


def static_token(leaves: Sequence[Any]) -> tuple[Hashable, ...]:
    """A hashable token of leaves: arrays by shape and dtype, the rest by value (or identity)."""
    token: list[Hashable] = []
    for x in leaves:
        if _is_array(x):
            # shape, dtype and weak type: a weakly typed scalar promotes differently
            token.append(("array", jax.typeof(x)))
        elif isinstance(x, (float, complex, np.inexact)):
            # by repr: 0.0 and -0.0 are equal but not the same constant, and NaN != NaN
            token.append(("float", type(x).__name__, repr(x)))
        else:
            try:
                hash(x)
                token.append(("value", type(x).__name__, x))
            except TypeError:
                token.append(("id", id(x)))
    return tuple(token)


def signature(leaves: Sequence[Any]) -> tuple[Hashable, ...]:
    """What a compiled executable was built for: each argument's type and placement.

    The type is JAX's view of the value (shape, dtype, weak type; NumPy values
    as ``jit`` would canonicalise them); the placement is the sharding of a
    JAX array (None for host values, which go where the executable runs).

    Examples
    --------
    >>> import jax.numpy as jnp, numpy as np
    >>> from labeled_spaces.compile import signature
    >>> signature([np.zeros(2, np.float32)])[0][0]
    ShapedArray(float32[2])
    >>> signature([jnp.asarray(1.0)]) == signature([jnp.float32(1.0)])  # weak vs strong
    False
    """
    return tuple((jax.typeof(x), getattr(x, "sharding", None)) for x in leaves)

"""TVB-Optim's flat view of results: combination ``i``'s outputs as JAX arrays.

``results[i]``, slices and iteration hand out the output pytree of a
combination with JAX arrays as leaves, as TVB-Optim does (and as
``space[i]`` does here). Making one JAX array from Python costs about 15 us a
leaf; ``np.asarray(results)`` of a bare output reads the array itself
instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["as_jax", "flat_array", "item", "items"]


def _held(dtype: np.dtype) -> bool:
    """Whether JAX holds ``dtype`` as it is (float64 needs ``jax_enable_x64``)."""
    numeric = dtype.kind in "biufc" or dtype.name == "bfloat16"
    return numeric and jax.dtypes.canonicalize_dtype(dtype) == dtype


def as_jax(value: Any) -> Any:
    """``value`` as a JAX array where JAX holds its dtype as it is, else as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.results.flat_view import as_jax
    >>> type(as_jax(np.float32(1.5))).__name__, as_jax(np.array(["a"])).dtype.kind
    ('ArrayImpl', 'U')
    """
    return jax.numpy.asarray(value) if _held(np.asarray(value).dtype) else value


def item(flats: Sequence[np.ndarray | None], arrays: Sequence[Any], treedef: Any,
         digits: Any, i: int) -> Any:
    """Combination ``i``'s outputs; ``digits()`` gives its grid position for lazy arrays.

    ``flats[k]`` is output ``k`` as ``(N, *shape)`` NumPy, or None where
    ``arrays[k]`` is lazy (a dask array of the grid): only that combination
    is read.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.results.flat_view import item
    >>> item([np.arange(3, dtype=np.float32)], [None], jax.tree.structure(0), None, 2)
    Array(2., dtype=float32)
    >>> item([np.arange(3.0)], [None], jax.tree.structure(0), None, 2)  # float64 without x64
    np.float64(2.0)
    """
    leaves, at = [], None
    for flat, array in zip(flats, arrays, strict=True):
        if flat is not None:
            leaves.append(as_jax(flat[i]))
        else:
            at = at or tuple(digits(i))
            leaves.append(as_jax(np.asarray(array[at])))
    return treedef.unflatten(leaves)


def items(flats: Sequence[np.ndarray | None], arrays: Sequence[Any], treedef: Any,
          digits: Any, n: int) -> Iterator[Any]:
    """Every combination's outputs in flat order, as :func:`item` gives them.

    One combination at a time: converting a run of rows at once (``list`` of
    a JAX array) is faster per row, but compiles a split for every new
    length (about 0.5 s), more than a small sweep's whole iteration.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.results.flat_view import items
    >>> [float(x) for x in items([np.arange(3.0)], [None], jax.tree.structure(0), None, 3)]
    [0.0, 1.0, 2.0]
    """
    return (item(flats, arrays, treedef, digits, i) for i in range(n))


def flat_array(flats: Sequence[np.ndarray | None], arrays: Sequence[Any], treedef: Any,
               n: int, ndim: int) -> np.ndarray | None:
    """A bare output as ``(N, *shape)`` NumPy (what ``np.asarray(results)`` gives), else None.

    None for an output pytree of several leaves, whose rows are items.
    ``ndim`` is the number of the space's dimensions (a lazy array's first).

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.results.flat_view import flat_array
    >>> flat_array([np.arange(3.0)], [None], jax.tree.structure(0), 3, 1).shape
    (3,)
    """
    if len(arrays) != 1 or treedef != jax.tree.structure(0):
        return None
    if flats[0] is not None:
        return flats[0]
    array = np.asarray(arrays[0])  # lazy: read whole, as iterating would
    return array.reshape((n, *array.shape[ndim:]))

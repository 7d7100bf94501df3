"""Whether two NumPyro distributions are the same: what a description in a file must rebuild.

Two distributions are the same when they are of one class with the same
batch and event shapes and the same stored fields: arrays bit for bit in the
same dtypes, numbers of the same type, nested distributions, transforms and
constraints field by field. A field only one of them holds must be a cached
(lazily computed) property. Where some field cannot be compared (a function),
the draws for a fixed key decide.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import types
import weakref
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

__all__ = ["distribution_base", "is_distribution", "same_distribution"]


def distribution_base() -> type:
    """``numpyro.distributions.Distribution`` (numpyro is imported when first needed)."""
    from numpyro.distributions import Distribution

    return Distribution


def is_distribution(obj: Any) -> bool:
    """Whether ``obj`` is a NumPyro distribution (numpyro is imported only when asked).

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces.axes.distribution_identity import is_distribution
    >>> is_distribution(dist.Normal(0.0, 1.0)), is_distribution(dist.Normal)
    (True, False)
    """
    return isinstance(obj, distribution_base())


def _lazy(cls: type, name: str) -> bool:
    """Whether ``name`` is a lazily computed (cached) property of a distribution class."""
    from numpyro.distributions.util import lazy_property

    return isinstance(inspect.getattr_static(cls, name, None), lazy_property)


def _compare(x: Any, y: Any, depth: int = 0) -> bool | None:
    """Whether two stored parameters are equal; None where they cannot be compared."""
    if is_distribution(x) or is_distribution(y):
        if not (is_distribution(x) and is_distribution(y)):
            return False
        return _compare_fields(x, y)
    if isinstance(x, (np.ndarray, jax.Array, np.generic)) or isinstance(
            y, (np.ndarray, jax.Array, np.generic)):
        a, b = np.asarray(x), np.asarray(y)
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(
                a, b, equal_nan=a.dtype.kind in "fc"):
            return False
        # a weak-typed JAX scalar promotes differently from a NumPy one: let the draws decide
        return None if getattr(x, "weak_type", False) != getattr(y, "weak_type", False) \
            else True
    if isinstance(x, (bool, numbers.Number, str)) or x is None:
        return type(x) is type(y) and (x == y or x != x and y != y)
    if isinstance(x, weakref.ReferenceType):  # a transform's link back to its inverse
        return isinstance(y, weakref.ReferenceType) and type(x()) is type(y())
    if isinstance(x, (list, tuple)):
        if type(x) is not type(y) or len(x) != len(y):
            return False
        return _all_same(_compare(u, v, depth + 1) for u, v in zip(x, y, strict=True))
    if depth < 8 and type(x) is type(y) and hasattr(x, "__dict__") and not isinstance(
            x, (types.FunctionType, types.MethodType, functools.partial, type)):
        # transforms and constraints: their class and their fields
        mine, theirs = vars(x), vars(y)
        if mine.keys() != theirs.keys():
            return None
        return _all_same(_compare(mine[k], theirs[k], depth + 1) for k in mine)
    return None  # functions and other objects: compared through the draws


def _all_same(verdicts: Iterable[bool | None]) -> bool | None:
    """False if any is False, else None if any is None, else True."""
    verdict: bool | None = True
    for same in verdicts:
        if same is False:
            return False
        if same is None:
            verdict = None
    return verdict


def _compare_fields(a: Any, b: Any) -> bool | None:
    """Whether two distributions hold the same fields (None: some cannot be compared)."""
    if type(a) is not type(b) or a.batch_shape != b.batch_shape or (
        a.event_shape != b.event_shape
    ):
        return False
    # whether arguments are validated changes no draw and no density
    mine, theirs = ({k: v for k, v in vars(d).items() if k != "_validate_args"} for d in (a, b))
    # a field one of them lacks must be a cached property, computed from the others
    if any(not _lazy(type(a), k) for k in mine.keys() ^ theirs.keys()):
        return False
    return _all_same(_compare(mine[k], theirs[k]) for k in mine.keys() & theirs.keys())


def same_distribution(a: Any, b: Any) -> bool:
    """Whether ``b`` is ``a`` again: class, shapes and fields, or draws for a fixed key.

    Equal fields (arrays bit for bit, in the same dtypes) make an identical
    distribution: the class's methods read nothing else. Where a field cannot
    be compared (a transform), the draws for a fixed key decide.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces.axes.distribution_identity import same_distribution
    >>> same_distribution(dist.Normal(0.0, 1.0), dist.Normal(0.0, 1.0))
    True
    >>> same_distribution(dist.Normal(0.0, 1.0), dist.Normal(0.0, 2.0))
    False
    """
    verdict = _compare_fields(a, b)
    if verdict is not None:
        return verdict
    key = jax.random.key(0)
    try:
        x, y = np.asarray(a.sample(key, (2,))), np.asarray(b.sample(key, (2,)))
    except Exception:  # noqa: BLE001 - a distribution that cannot sample is not comparable
        return False
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)

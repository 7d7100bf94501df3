"""Axes given by bounds and a number of points: GridAxis, LogGridAxis, UniformAxis.

The model receives exactly what TVB-Optim 0.4.0 gives for the same
arguments (``jnp.linspace``, ``jnp.geomspace``, ``jax.random.uniform``); the
coordinate labels are float64 and exact to the decimals the user typed, so
``sel(coupling=0.45)`` finds the point a user asked for.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_real, check_shape, fail
from .._codec import jsonable
from .._format import call_repr
from ..grid import MAX_SIZE
from .base import AbstractAxis

__all__ = ["BoundedAxis", "GridAxis", "LogGridAxis", "UniformAxis", "check_size", "broadcast"]


def check_size(name: str, value: Any) -> int:
    """A number of points: an integer in ``[1, 2**30)`` (what a grid dimension can hold).

    Examples
    --------
    >>> from labeled_spaces.axes.bounded import check_size
    >>> check_size("n", 2**30)
    Traceback (most recent call last):
    ...
    ValueError: n must be below 2**30 (the largest dimension a grid holds), got 1073741824
    """
    n = check_int(name, value)
    if n >= MAX_SIZE:
        fail(name, "below 2**30 (the largest dimension a grid holds)", n)
    return n


def _check_bound(name: str, value: Any) -> Any:
    """A finite real bound of a type JAX takes (Python and NumPy numbers, 0-d arrays)."""
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        if np.ndim(value) != 0:
            fail(name, "a real number", value, TypeError)
    elif isinstance(value, numbers.Real) and not isinstance(value, (int, float)):
        # Fraction, Decimal-like numbers: JAX cannot take them
        fail(name, "a float or an int", value, TypeError,
             f" ({type(value).__name__}); give float(...) of it instead")
    checked = check_real(name, value)
    integral = isinstance(checked, numbers.Integral) or (
        hasattr(value, "dtype") and np.issubdtype(np.asarray(value).dtype, np.integer)
    )
    # jax's Config stub lacks its options (jax_enable_x64)
    if integral and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        info = np.iinfo(np.int32)
        if not info.min <= float(checked) <= info.max:  # exact: a float64 holds int32
            fail(name, f"an integer that fits in int32 ({info.min}..{info.max}: JAX's "
                 "integer without x64)", value, ValueError,
                 f"; give it as a float ({float(checked):g}) or enable jax_enable_x64")
    return checked


def _check_bounds(low: Any, high: Any) -> tuple[Any, Any]:
    low = _check_bound("low", low)
    high = _check_bound("high", high)
    if not low < high:
        raise ValueError(f"low must be less than high, got low={low!r}, high={high!r}")
    # the model receives JAX's default float (float32 unless x64 is enabled)
    dtype = jnp.result_type(float)
    largest = float(jnp.finfo(dtype).max)
    for name, bound in (("low", low), ("high", high)):
        if abs(bound) > largest:
            raise ValueError(
                f"{name} must fit in {dtype} (the dtype the model receives, at most "
                f"{largest:.6g} in magnitude), got {name}={bound!r}"
            )
    return low, high


def broadcast(values: jax.Array, n: int, shape: tuple[int, ...] | None) -> jax.Array:
    """Broadcast ``(n,)`` values to ``(n, *shape)`` (TVB-Optim's rule: only a non-empty shape).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces.axes.bounded import broadcast
    >>> broadcast(jnp.arange(2.0), 2, (3,)).tolist()
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    if shape:
        values = jnp.broadcast_to(values.reshape(n, *([1] * len(shape))), (n, *shape))
    return values


def _linspace_labels(low: float, high: float, n: int) -> np.ndarray:
    """The float64 nearest to each exact point ``low + i * (high - low) / (n - 1)``.

    ``low`` and ``high`` are read as the decimals they print as (what the user
    typed), so ``GridAxis(0.1, 0.8, 5)`` is labelled 0.45 (``np.linspace`` gives
    0.44999999999999996) and ``GridAxis(0, 1, 4)`` is labelled ``1 / 3`` exactly.
    Each point is a ratio of integers below 2**53, whose float division IEEE
    rounds correctly; bounds too fine for that fall back to ``np.linspace``.
    """
    if n == 1:
        return np.array([float(low)])
    lo, hi = Fraction(repr(float(low))), Fraction(repr(float(high)))
    den = math.lcm(lo.denominator, hi.denominator)
    # point i is (start * (n - 1) + i * span) / (den * (n - 1))
    start, span = int(lo * den), int((hi - lo) * den)
    if max(abs(start), abs(start + span)) * (n - 1) >= 2**53 or den * (n - 1) >= 2**53:
        return np.linspace(float(low), float(high), n)
    numerators = start * (n - 1) + span * np.arange(n, dtype=np.int64)
    return numerators.astype(np.float64) / float(den * (n - 1))


def _tidy(grid: np.ndarray) -> np.ndarray:
    """Snap float64 grid labels that sit a few ulps off a short decimal onto it.

    ``np.geomspace(0.003, 30.0, 5)[2]`` is 0.3000000000000001; as a label it
    should be the 0.3 a user types into ``.sel``. A label moves to its value
    rounded to 12 significant digits only where that is within 4 ulps (the
    arithmetic's noise); other labels, such as the ``sqrt(2)`` of
    ``geomspace(1, 2, 3)``, stay the float64 that ``np.geomspace`` computed.
    """
    short = np.array([float(f"{x:.12g}") for x in grid])
    return np.where(np.abs(short - grid) <= 4 * np.spacing(np.abs(grid)), short, grid)


class BoundedAxis(AbstractAxis):
    """An axis given by ``low, high, n`` and an optional broadcast ``shape``.

    The base of :class:`GridAxis`, :class:`LogGridAxis` and
    :class:`UniformAxis`; see those for the parameters.
    """

    def __init__(
        self,
        low: float,
        high: float,
        n: int,
        shape: tuple[int, ...] | None = None,
        group: Hashable | None = None,
        *,
        name: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name, group=group, attrs=attrs)
        self.low, self.high = _check_bounds(low, high)
        # values are made from the bounds as given: a bfloat16 bound keeps a bfloat16 grid,
        # as in TVB-Optim; labels and the spec use the checked Python/NumPy numbers
        self._bounds = (low, high)
        # the dtype of the values when the bounds set it (bfloat16), for the spec
        self._dtype = jnp.result_type(low, high, float)
        self.n = check_size("n", n)
        self.shape = check_shape("shape", shape)

    @property
    def size(self) -> int:
        return self.n

    def check_values(self, values: np.ndarray) -> str | None:
        if np.issubdtype(values.dtype, np.inexact) and not np.isfinite(values).all():
            return f"gives values beyond the range of {values.dtype}"
        return None

    def spec_values(self) -> dict[str, Any]:
        # NumPy scalar bounds (np.float32(0.1)) become Python numbers: JSON takes only these
        spec: dict[str, Any] = {"low": jsonable(self.low), "high": jsonable(self.high),
                                "n": self.n}
        if self.shape is not None:
            spec["shape"] = list(self.shape)
        if self._dtype != jnp.result_type(float):  # bounds given as bfloat16, float16, ...
            spec["dtype"] = str(self._dtype)
        return spec

    @classmethod
    def from_spec_values(cls, values: Mapping[str, Any], common: Mapping[str, Any]
                         ) -> BoundedAxis:
        low, high = values["low"], values["high"]
        if "dtype" in values:  # the bounds' own dtype, which sets the values' dtype
            dtype = values["dtype"]
            if dtype not in ("bfloat16", "float16", "float32", "float64"):
                fail("spec['dtype']", "a float dtype", dtype)
            low, high = (jnp.asarray(b, dtype=dtype) for b in (low, high))
        shape = values.get("shape")
        return cls(low, high, values["n"], tuple(shape) if shape is not None else None,
                   **common)

    def __repr__(self) -> str:
        shape = {} if self.shape is None else {"shape": self.shape}
        return call_repr(type(self).__name__, low=self.low, high=self.high, n=self.n, **shape,
                         **self._repr_fields())


class GridAxis(BoundedAxis):
    """``n`` evenly spaced values from ``low`` to ``high`` (both included).

    Parameters
    ----------
    low, high : float
        Finite bounds, ``low < high``.
    n : int
        Number of points, ``1 <= n < 2**30``.
    shape : tuple of int, optional
        Broadcast every value to this shape (one scalar per point).
    name, group, attrs
        See :class:`AbstractAxis`.

    Notes
    -----
    The model receives ``jnp.linspace(low, high, n)`` (float32 unless x64 is
    enabled, bit-identical to TVB-Optim; a bfloat16 or float16 bound keeps
    its dtype). The coordinate is float64: point ``i`` is the float64 nearest
    to ``low + i * (high - low) / (n - 1)`` computed exactly from the decimals
    typed, so ``GridAxis(0.1, 0.8, 5)`` is labelled 0.45 where ``np.linspace``
    gives 0.44999999999999996, and ``.sel(x=0.45)`` finds it. A value the
    model received (``space[i]["x"]``, float32) differs from its label in the
    last digits: select it with ``method="nearest"``.

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> GridAxis(0.0, 1.0, 5).generate_values()
    Array([0.  , 0.25, 0.5 , 0.75, 1.  ], dtype=float32)
    >>> GridAxis(0.0, 1.0, 2, shape=(3,)).generate_values().shape
    (2, 3)
    """

    spec_fields = ("low", "high", "n", "shape")

    def __init__(self, low: float, high: float, n: int, shape: tuple[int, ...] | None = None,
                 group: Hashable | None = None, *, name: str | None = None,
                 attrs: Mapping[str, Any] | None = None) -> None:
        # its own __init__, so that Python's errors for a wrong keyword or a missing
        # argument name this class (GridAxis.__init__()), not BoundedAxis
        super().__init__(low, high, n, shape, group, name=name, attrs=attrs)

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        return broadcast(jnp.linspace(*self._bounds, self.n), self.n, self.shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        return _linspace_labels(self.low, self.high, self.n)


class LogGridAxis(BoundedAxis):
    """``n`` logarithmically spaced values from ``low`` to ``high``; ``0 < low < high``.

    Parameters
    ----------
    low, high : float
        Finite positive bounds, ``low < high``.
    n : int
        Number of points.
    shape : tuple of int, optional
        Broadcast every value to this shape.
    name, group, attrs
        See :class:`AbstractAxis`.

    Notes
    -----
    The model receives ``jnp.geomspace(low, high, n)`` (as TVB-Optim). The
    coordinate is ``np.geomspace`` in float64, with labels a few ulps off a
    short decimal (0.3000000000000001) snapped onto it (0.3).

    Examples
    --------
    >>> from labeled_spaces import LogGridAxis
    >>> LogGridAxis(0.001, 1.0, 4).coordinate()
    array([0.001, 0.01 , 0.1  , 1.   ])
    """

    spec_fields = ("low", "high", "n", "shape")

    def __init__(self, low: float, high: float, n: int, shape: tuple[int, ...] | None = None,
                 group: Hashable | None = None, *, name: str | None = None,
                 attrs: Mapping[str, Any] | None = None) -> None:
        super().__init__(low, high, n, shape, group, name=name, attrs=attrs)
        if self.low <= 0:
            raise ValueError(f"low must be positive for a log scale, got low={self.low!r}")

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        return broadcast(jnp.geomspace(*self._bounds, self.n), self.n, self.shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        return _tidy(np.geomspace(float(self.low), float(self.high), self.n))


class UniformAxis(BoundedAxis):
    """``n`` values drawn uniformly from ``[low, high)``.

    Parameters
    ----------
    low, high : float
        Finite bounds, ``low < high``.
    n : int
        Number of draws.
    shape : tuple of int, optional
        Broadcast every draw to this shape (one draw per point).
    name, group, attrs
        See :class:`AbstractAxis`.

    Notes
    -----
    ``jax.random.uniform(key, (n,), minval=low, maxval=high)``; ``key=None``
    means ``jax.random.key(0)``. The coordinate holds the draws themselves,
    in the order they were drawn (not sorted).

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import UniformAxis
    >>> UniformAxis(0.0, 1.0, 3).generate_values(jax.random.key(42)).shape
    (3,)
    """

    spec_fields = ("low", "high", "n", "shape")

    def __init__(self, low: float, high: float, n: int, shape: tuple[int, ...] | None = None,
                 group: Hashable | None = None, *, name: str | None = None,
                 attrs: Mapping[str, Any] | None = None) -> None:
        # its own __init__, so that Python's errors for a wrong keyword or a missing
        # argument name this class (UniformAxis.__init__()), not BoundedAxis
        super().__init__(low, high, n, shape, group, name=name, attrs=attrs)

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        if key is None:
            key = jax.random.key(0)
        values = jax.random.uniform(key, (self.n,), minval=self.low, maxval=self.high)
        return broadcast(values, self.n, self.shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        values = np.asarray(self.generate_values(key))
        return values.reshape(self.n, -1)[:, 0] if self.shape else values

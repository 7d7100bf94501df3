"""Axes: one varying parameter each, its values and its coordinate labels.

An axis replaces a leaf of a parameter pytree. It knows how many points it has
(``size``), how to produce their values (``generate_values(key)``, exactly as
TVB-Optim 0.4.0 does for the same arguments and key) and how to label them
(``coordinate(key)``, a 1-D array kept in the precision the user declared).
Axes know nothing about spaces or execution.
"""

from __future__ import annotations

import importlib
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "AbstractAxis",
    "GridAxis",
    "LogGridAxis",
    "UniformAxis",
    "DataAxis",
    "NumPyroAxis",
    "axis_from_spec",
]


# ---------------------------------------------------------------------------
# argument checks (shared by every axis)
# ---------------------------------------------------------------------------


def _check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0 and np.issubdtype(
            np.asarray(value).dtype, np.integer
        ):
            value = int(value)
        else:
            raise TypeError(
                f"{name} must be an integer, got {value!r} ({type(value).__name__})"
            )
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r} (bool)")
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        value = np.asarray(value).item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_shape(name: str, shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise TypeError(f"{name} must be None or a tuple of positive integers, got {shape!r}")
    return tuple(_check_int(f"{name}[{k}]", s) for k, s in enumerate(shape))


def _check_bounds(low: Any, high: Any) -> tuple[float, float]:
    low = _check_real("low", low)
    high = _check_real("high", high)
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


def _check_fits(values: np.ndarray, device: jax.Array) -> None:
    """Refuse data that JAX's default dtypes cannot hold (they would wrap or overflow)."""
    if np.issubdtype(values.dtype, np.integer):
        if device.dtype != values.dtype and not np.array_equal(
            np.asarray(device).astype(values.dtype), values
        ):
            info = np.iinfo(device.dtype)
            raise ValueError(
                f"values must fit in {device.dtype} (JAX's integer without x64: "
                f"{info.min}..{info.max}), got values from {values.min()} to {values.max()}; "
                "enable jax_enable_x64 or give floats"
            )
    elif np.issubdtype(values.dtype, np.inexact):
        lost = np.isfinite(values) & ~np.isfinite(np.asarray(device))
        if lost.any():
            raise ValueError(
                f"values must fit in {device.dtype} (the dtype the model receives), got "
                f"{values[lost].ravel()[0].item()!r} which overflows to infinity; enable "
                "jax_enable_x64 or rescale the values"
            )


def _broadcast(values: jax.Array, n: int, shape: tuple[int, ...] | None) -> jax.Array:
    """Broadcast ``(n,)`` values to ``(n, *shape)`` (TVB-Optim's rule: only a non-empty shape)."""
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


# ---------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------


class AbstractAxis(ABC):
    """One varying leaf of a parameter pytree.

    Parameters
    ----------
    name : str, optional
        Name of the axis's coordinate (and of its dimension when the axis has
        one of its own). Default: the axis's key path in the state (see
        :class:`labeled_spaces.Space`).
    group : hashable, optional
        Axes sharing a group label are zipped into one dimension named
        ``str(group)`` before the Space's mode applies (TVB-Optim semantics).
    attrs : mapping, optional
        Attributes of the coordinate, e.g. ``{"units": "ms"}``.

    Notes
    -----
    Subclasses implement :meth:`generate_values` and :attr:`size`; they may
    override :meth:`coordinate` to give better labels than ``0..size-1``.

    Examples
    --------
    >>> from labeled_spaces import GridAxis
    >>> axis = GridAxis(0.0, 1.0, 3, name="coupling", attrs={"units": "a.u."})
    >>> axis.size, axis.name, axis.attrs["units"]
    (3, 'coupling', 'a.u.')
    """

    def __init__(
        self,
        name: str | None = None,
        group: Hashable | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty string or None, got {name!r}")
        if group is not None:
            try:
                hash(group)
            except TypeError:
                raise TypeError(f"group must be hashable, got {group!r}") from None
        if attrs is not None and not isinstance(attrs, Mapping):
            raise TypeError(f"attrs must be a mapping or None, got {attrs!r}")
        self.name = name
        self.group = group
        self.attrs = dict(attrs) if attrs is not None else {}

    @abstractmethod
    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        """All values of the axis, shape ``(size, *value_shape)``.

        Parameters
        ----------
        key : jax.Array, optional
            Random key; ignored by deterministic axes.

        Returns
        -------
        jax.Array
        """

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of points on the axis."""

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        """The 1-D coordinate labels of the axis (length :attr:`size`).

        The values themselves for scalar axes, the broadcast scalar for
        ``shape=`` axes, and ``0..size-1`` where no scalar describes a point.

        Parameters
        ----------
        key : jax.Array, optional
            The key the axis samples with (stochastic axes label by their draws).

        Returns
        -------
        numpy.ndarray

        Examples
        --------
        >>> from labeled_spaces import GridAxis
        >>> GridAxis(0.0, 0.3, 4).coordinate()
        array([0. , 0.1, 0.2, 0.3])
        """
        return np.arange(self.size)

    def value_coordinate(self, key: jax.Array | None = None) -> np.ndarray | None:
        """The values, where :meth:`coordinate` does not already show them; else None.

        A Space keeps them as the non-index coordinate ``{name}_value`` (with
        the point's own dimensions ``{name}_dim_k``), so that labels such as
        ``0..size-1`` or ``"subject-01"`` do not hide what the model received.
        By default: the values where :meth:`coordinate` is the default
        ``0..size-1``, else None.
        """
        if type(self).coordinate is AbstractAxis.coordinate:
            return np.asarray(self.generate_values(key))
        return None

    def _base_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": type(self).__name__}
        if self.name is not None:
            spec["name"] = self.name
        if self.group is not None:
            spec["group"] = self.group if isinstance(self.group, (str, int)) else str(self.group)
        if self.attrs:
            spec["attrs"] = {k: _jsonable(v) for k, v in self.attrs.items()}
        return spec

    def spec(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :func:`axis_from_spec` rebuilds the axis.

        The axes of this package describe all their arguments. A custom axis
        that does not override this method is described by its class and
        common arguments only: a saved Space holding it is rebuilt by
        ``Space.from_attrs(attrs, state=...)``, which takes the axis from the
        given state.

        Returns
        -------
        dict

        Examples
        --------
        >>> from labeled_spaces import GridAxis
        >>> GridAxis(0.0, 1.0, 3, name="g").spec()
        {'type': 'GridAxis', 'name': 'g', 'low': 0.0, 'high': 1.0, 'n': 3}
        """
        cls = type(self)
        return dict(self._base_spec(), **{"class": f"{cls.__module__}.{cls.__qualname__}"})

    def _kw_repr(self) -> str:
        parts = []
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        if self.group is not None:
            parts.append(f"group={self.group!r}")
        if self.attrs:
            parts.append(f"attrs={self.attrs!r}")
        return "".join(", " + p for p in parts)


def _encode(array: Any) -> dict[str, Any]:
    """An array as JSON-ready ``{"values", "dtype"}`` (dates as their int64 counts)."""
    array = np.asarray(array)
    values = array.view(np.int64) if array.dtype.kind in "mM" else array
    return {"values": values.tolist(), "dtype": str(array.dtype)}


def _decode(encoded: Mapping[str, Any]) -> np.ndarray:
    """The array that :func:`_encode` described."""
    dtype = np.dtype(encoded["dtype"])
    if dtype.kind in "mM":
        return np.asarray(encoded["values"], dtype=np.int64).view(dtype)
    return np.asarray(encoded["values"], dtype=dtype)


def value_dims(name: str, ndim: int) -> tuple[str, ...]:
    """Names ``{name}_dim_k`` of the own dimensions of an axis's ``ndim``-D points.

    Examples
    --------
    >>> from labeled_spaces.axes import value_dims
    >>> value_dims("w", 2)
    ('w_dim_0', 'w_dim_1')
    """
    return tuple(f"{name}_dim_{k}" for k in range(ndim))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class _BoundedAxis(AbstractAxis):
    """An axis given by ``low, high, n`` and an optional broadcast ``shape``."""

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
        self.n = _check_int("n", n)
        self.shape = _check_shape("shape", shape)

    @property
    def size(self) -> int:
        return self.n

    def spec(self) -> dict[str, Any]:
        spec = self._base_spec()
        # NumPy scalar bounds (np.float32(0.1)) become Python numbers: JSON takes only these
        spec.update(low=_jsonable(self.low), high=_jsonable(self.high), n=self.n)
        if self.shape is not None:
            spec["shape"] = list(self.shape)
        if self._dtype != jnp.result_type(float):  # bounds given as bfloat16, float16, ...
            spec["dtype"] = str(self._dtype)
        return spec

    def __repr__(self) -> str:
        shape = f", shape={self.shape}" if self.shape is not None else ""
        return (
            f"{type(self).__name__}(low={self.low!r}, high={self.high!r}, n={self.n}"
            f"{shape}{self._kw_repr()})"
        )


class GridAxis(_BoundedAxis):
    """``n`` evenly spaced values from ``low`` to ``high`` (both included).

    Parameters
    ----------
    low, high : float
        Finite bounds, ``low < high``.
    n : int
        Number of points, ``n >= 1``.
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

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        return _broadcast(jnp.linspace(*self._bounds, self.n), self.n, self.shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        return _linspace_labels(self.low, self.high, self.n)


class LogGridAxis(_BoundedAxis):
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

    def __init__(self, low, high, n, shape=None, group=None, *, name=None, attrs=None) -> None:
        super().__init__(low, high, n, shape, group, name=name, attrs=attrs)
        if self.low <= 0:
            raise ValueError(f"low must be positive for a log scale, got low={self.low!r}")

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        return _broadcast(jnp.geomspace(*self._bounds, self.n), self.n, self.shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        return _tidy(np.geomspace(float(self.low), float(self.high), self.n))


class UniformAxis(_BoundedAxis):
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
    means ``jax.random.key(0)``. The coordinate holds the draws themselves.

    Examples
    --------
    >>> import jax
    >>> from labeled_spaces import UniformAxis
    >>> UniformAxis(0.0, 1.0, 3).generate_values(jax.random.key(42)).shape
    (3,)
    """

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        if key is None:
            key = jax.random.key(0)
        values = jax.random.uniform(key, (self.n,), minval=self.low, maxval=self.high)
        return _broadcast(values, self.n, self.shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        values = np.asarray(self.generate_values(key))
        return values.reshape(self.n, -1)[:, 0] if self.shape else values


class DataAxis(AbstractAxis):
    """Predefined values; the first dimension of ``values`` is the axis.

    Parameters
    ----------
    values : array-like
        At least one point; points may be arrays (e.g. connectivity matrices).
    labels : sequence, optional
        One label per point (strings, numbers, dates); becomes the coordinate.
    name, group, attrs
        See :class:`AbstractAxis`.

    Notes
    -----
    The model receives ``jnp.asarray(values)``. The coordinate is ``labels``
    if given; else the values themselves in the precision they were given
    (for scalar points); else ``0..size-1``. Where the coordinate is not the
    values (``labels`` given, or array points), a Space also keeps the values
    as the non-index coordinate ``{name}_value``.

    Examples
    --------
    >>> from labeled_spaces import DataAxis
    >>> axis = DataAxis([0.01, 0.02, 0.05])
    >>> axis.size, axis.coordinate().dtype
    (3, dtype('float64'))
    >>> DataAxis([[1.0, 0.5], [0.5, 1.0]], labels=["a", "b"]).coordinate()
    array(['a', 'b'], dtype='<U1')
    """

    def __init__(
        self,
        values: Any,
        labels: Sequence[Any] | None = None,
        *,
        name: str | None = None,
        group: Hashable | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name, group=group, attrs=attrs)
        try:
            data = np.asarray(values)
        except (TypeError, ValueError) as err:
            raise TypeError(f"values must be a numeric array-like, got {values!r}: {err}") from None
        if data.dtype == object or not (
            np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.bool_)
        ):
            raise TypeError(f"values must be numeric, got dtype {data.dtype} from {values!r}")
        if data.ndim == 0:
            raise ValueError(
                f"values must have a first dimension (the axis), got a scalar {values!r}"
            )
        if data.size == 0:
            raise ValueError(f"values must hold at least one value, got {values!r}")
        with warnings.catch_warnings():  # the check below says what a silent cast would lose
            warnings.simplefilter("ignore")
            self.values = jnp.asarray(values if isinstance(values, jax.Array) else data)
        _check_fits(data, self.values)
        self._data = data
        if labels is not None:
            label_array = np.asarray(labels)
            if label_array.ndim != 1 or len(label_array) != len(data):
                raise ValueError(
                    f"labels must be 1-D with one label per value ({len(data)}), "
                    f"got {labels!r} of shape {label_array.shape}"
                )
            self.labels: np.ndarray | None = label_array
        else:
            self.labels = None
        # a sub-space's DataAxis carries the value coordinate of the axis it came from
        self._value_override: np.ndarray | None | bool = False

    @property
    def size(self) -> int:
        return len(self._data)

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        return self.values

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        if self.labels is not None:
            return self.labels
        if self._data.ndim == 1:
            return self._data
        return np.arange(self.size)

    def value_coordinate(self, key: jax.Array | None = None) -> np.ndarray | None:
        if self._value_override is not False:
            return self._value_override
        if self.labels is not None or self._data.ndim > 1:
            return self._data
        return None

    def spec(self) -> dict[str, Any]:
        spec = self._base_spec()
        spec["values"] = self._data.tolist()
        spec["dtype"] = str(self._data.dtype)
        if self.labels is not None:
            if self.labels.dtype.kind in "mM":  # dates and durations: JSON has no type for them
                encoded = _encode(self.labels)
                spec["labels"], spec["labels_dtype"] = encoded["values"], encoded["dtype"]
            else:
                spec["labels"] = _jsonable(self.labels)
        if self._value_override is not False:  # a sub-space's axis keeps its value coordinate
            override = self._value_override
            spec["value_coordinate"] = None if override is None else _encode(override)
        return spec

    def __repr__(self) -> str:
        # one line, whatever the size: long value and label lists are elided
        if self._data.ndim == 1:
            values = np.array2string(self._data, threshold=6, separator=", ")
        else:
            values = f"<{self.size} points of shape {self._data.shape[1:]}, {self._data.dtype}>"
        labels = ""
        if self.labels is not None:
            shown = [repr(x) for x in self.labels.tolist()]
            if len(shown) > 6:
                shown = [*shown[:3], "...", *shown[-3:]]
            labels = f", labels=[{', '.join(shown)}]"
        return f"DataAxis({values}{labels}{self._kw_repr()})"


def _is_distribution(obj: Any) -> bool:
    try:
        from numpyro.distributions import Distribution
    except ImportError:  # pragma: no cover - numpyro is a dependency
        return hasattr(obj, "sample") and hasattr(obj, "batch_shape")
    return isinstance(obj, Distribution)


class NumPyroAxis(AbstractAxis):
    """``n`` draws from a NumPyro distribution.

    Parameters
    ----------
    distribution : numpyro.distributions.Distribution
        The distribution to sample.
    n : int
        Number of points on the axis.
    sample_shape : tuple of int, optional
        Extra shape of every point.
    broadcast_mode : bool, default False
        False: every element of a point is drawn independently,
        ``distribution.sample(key, (n, *sample_shape))``. True: one draw per
        point, broadcast to ``sample_shape`` (with a ``sample_shape``, the
        distribution must draw scalars; otherwise a ``ValueError``).
    name, group, attrs
        See :class:`AbstractAxis`.

    Examples
    --------
    >>> import jax
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces import NumPyroAxis
    >>> axis = NumPyroAxis(dist.Normal(0.0, 1.0), n=3, sample_shape=(2,))
    >>> axis.generate_values(jax.random.key(0)).shape
    (3, 2)
    """

    def __init__(
        self,
        distribution: Any,
        n: int,
        sample_shape: tuple[int, ...] | None = None,
        broadcast_mode: bool = False,
        group: Hashable | None = None,
        *,
        name: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name, group=group, attrs=attrs)
        if not _is_distribution(distribution):
            raise TypeError(
                "distribution must be a numpyro.distributions.Distribution instance, "
                f"got {distribution!r} ({type(distribution).__name__})"
            )
        if not isinstance(broadcast_mode, (bool, np.bool_)):
            raise TypeError(f"broadcast_mode must be a bool, got {broadcast_mode!r}")
        self.distribution = distribution
        self.n = _check_int("n", n)
        checked = _check_shape("sample_shape", sample_shape)
        self.sample_shape: tuple[int, ...] = checked if checked is not None else ()
        self.broadcast_mode = bool(broadcast_mode)
        draw_shape = (*distribution.batch_shape, *distribution.event_shape)
        if self.broadcast_mode and self.sample_shape and draw_shape:
            raise ValueError(
                "broadcast_mode=True broadcasts one scalar draw per point to sample_shape, "
                f"but the distribution draws shape {draw_shape}; got sample_shape="
                f"{self.sample_shape}. Use broadcast_mode=False, or a scalar distribution"
            )

    @property
    def size(self) -> int:
        return self.n

    def generate_values(self, key: jax.Array | None = None) -> jax.Array:
        if key is None:
            key = jax.random.key(0)
        if self.broadcast_mode and self.sample_shape:
            samples = self.distribution.sample(key, sample_shape=(self.n,))
            samples = samples.reshape(samples.shape + (1,) * len(self.sample_shape))
            return jnp.broadcast_to(samples, (self.n, *self.sample_shape))
        return self.distribution.sample(key, sample_shape=(self.n, *self.sample_shape))

    @property
    def _scalar_points(self) -> bool:
        """Whether one scalar describes each point (then it is the coordinate)."""
        scalar_draws = not self.distribution.batch_shape and not self.distribution.event_shape
        return scalar_draws and (self.broadcast_mode or not self.sample_shape)

    def coordinate(self, key: jax.Array | None = None) -> np.ndarray:
        if self._scalar_points:
            values = np.asarray(self.generate_values(key))
            return values.reshape(self.n, -1)[:, 0]
        return np.arange(self.n)

    def value_coordinate(self, key: jax.Array | None = None) -> np.ndarray | None:
        return None if self._scalar_points else np.asarray(self.generate_values(key))

    def spec(self) -> dict[str, Any]:
        dist = self.distribution
        cls = type(dist)
        params = {
            p: _jsonable(getattr(dist, p)) for p in dist.arg_constraints if hasattr(dist, p)
        }
        spec = self._base_spec()
        spec.update(
            distribution={"class": f"{cls.__module__}.{cls.__qualname__}", "params": params},
            n=self.n,
            sample_shape=list(self.sample_shape),
            broadcast_mode=self.broadcast_mode,
        )
        return spec

    def __repr__(self) -> str:
        return (
            f"NumPyroAxis({self.distribution!r}, n={self.n}, sample_shape={self.sample_shape}, "
            f"broadcast_mode={self.broadcast_mode}{self._kw_repr()})"
        )


def axis_from_spec(spec: Mapping[str, Any]) -> AbstractAxis:
    """Rebuild an axis from :meth:`AbstractAxis.spec` (e.g. read from a saved file).

    Parameters
    ----------
    spec : mapping
        What ``axis.spec()`` returned (after a JSON round trip).

    Returns
    -------
    AbstractAxis

    Examples
    --------
    >>> import json
    >>> from labeled_spaces import GridAxis, axis_from_spec
    >>> axis = GridAxis(0.0, 1.0, 3, name="g")
    >>> axis_from_spec(json.loads(json.dumps(axis.spec())))
    GridAxis(low=0.0, high=1.0, n=3, name='g')
    """
    spec = dict(spec)
    kind = spec.pop("type", None)
    common = {k: spec.pop(k) for k in ("name", "group", "attrs") if k in spec}
    if kind in ("GridAxis", "LogGridAxis", "UniformAxis"):
        cls = {"GridAxis": GridAxis, "LogGridAxis": LogGridAxis, "UniformAxis": UniformAxis}[kind]
        shape = tuple(spec["shape"]) if spec.get("shape") is not None else None
        low, high = spec["low"], spec["high"]
        if "dtype" in spec:  # the bounds' own dtype, which sets the values' dtype
            low, high = (jnp.asarray(b, dtype=spec["dtype"]) for b in (low, high))
        return cls(low, high, spec["n"], shape, **common)
    if kind == "DataAxis":
        values = np.asarray(spec["values"], dtype=spec.get("dtype"))
        labels = spec.get("labels")
        if labels is not None and spec.get("labels_dtype") is not None:
            labels = _decode({"values": labels, "dtype": spec["labels_dtype"]})
        axis = DataAxis(values, labels=labels, **common)
        if "value_coordinate" in spec:
            override = spec["value_coordinate"]
            axis._value_override = None if override is None else _decode(override)
        return axis
    if kind == "NumPyroAxis":
        module, _, cls_name = spec["distribution"]["class"].rpartition(".")
        dist_cls = getattr(importlib.import_module(module), cls_name)
        # scalars stay Python numbers, as most were given: the rebuilt spec then equals the saved
        params = {
            k: v if isinstance(v, (int, float)) else jnp.asarray(v)
            for k, v in spec["distribution"]["params"].items()
        }
        return NumPyroAxis(
            dist_cls(**params),
            spec["n"],
            tuple(spec["sample_shape"]) or None,
            spec["broadcast_mode"],
            **common,
        )
    raise ValueError(
        f"spec['type'] must name an axis class of labeled_spaces, got {kind!r}; a custom "
        "axis is rebuilt from the state that holds it (Space.from_attrs(attrs, state=...))"
    )

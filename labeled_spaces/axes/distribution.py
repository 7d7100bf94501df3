"""NumPyroAxis: draws from a NumPyro distribution, and how a distribution is described in a file.

A distribution is described by its class (``module.qualname``) and the
arguments of its constructor, read back from the attributes of the same
name: numbers, strings, arrays, shapes and nested distributions
(``Normal(...).expand(...)``, ``TruncatedNormal``, ``MixtureSameFamily``).
A description is kept only if rebuilding it gives an identical
distribution (same class, shapes, parameters and draws for a fixed key);
otherwise (transforms, callables, parameters the constructor does not
expose) it is marked as not rebuildable, and a Space read from the file
needs the original state. Rebuilding never imports anything: the class is
looked up among the subclasses of ``numpyro.distributions.Distribution``
already loaded.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_shape, fail
from .._codec import decode_array, encode_array
from .base import AbstractAxis, NotRebuildable
from .bounded import check_size

__all__ = [
    "NumPyroAxis",
    "describe_distribution",
    "distribution_from_spec",
    "distribution_spec",
]


def _distribution_base() -> type:
    from numpyro.distributions import Distribution

    return Distribution


def _is_distribution(obj: Any) -> bool:
    return isinstance(obj, _distribution_base())


def _known_classes() -> dict[str, type]:
    """Every loaded subclass of numpyro's Distribution, by ``module.qualname``."""
    found: dict[str, type] = {}
    todo = [_distribution_base()]
    while todo:
        cls = todo.pop()
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        todo.extend(cls.__subclasses__())
    return found


def _encode_param(value: Any) -> Any:
    """A constructor argument as JSON, or raise TypeError for what cannot be described."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, np.generic):
        if isinstance(value, complex):
            raise TypeError("complex scalar")
        return value
    if _is_distribution(value):
        return {"distribution": _describe(value)}
    if isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value):
        return {"shape": [int(v) for v in value]}
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return {"array": encode_array(value)}
    raise TypeError(type(value).__name__)


def _decode_param(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "distribution" in value:
            return distribution_from_spec(value["distribution"])
        if "shape" in value:
            return tuple(int(v) for v in value["shape"])
        if "array" in value:
            return decode_array(value["array"])
        raise NotRebuildable(f"a distribution parameter must be a number, array, shape or "
                             f"distribution, got {value!r}")
    return value


def _candidates(cls: type, dist: Any) -> list[dict[str, Any]]:
    """Argument sets to try: all readable ones, then one optional at a time, then the required."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return []
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for name, p in parameters.items():
        if name in ("self", "validate_args") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        missing = not hasattr(dist, name)
        value = None if missing else getattr(dist, name)
        if missing or callable(value) and not _is_distribution(value):
            if p.default is p.empty:
                return []  # a required argument the object does not expose
            continue
        try:
            encoded = _encode_param(value)
        except TypeError:
            if p.default is p.empty:
                return []
            continue
        (required if p.default is p.empty else optional)[name] = encoded
    sets = [{**required, **optional}]
    sets += [{**required, name: value} for name, value in optional.items()]
    sets.append(dict(required))
    unique: list[dict[str, Any]] = []
    for s in sets:
        if s not in unique:
            unique.append(s)
    return unique


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a.batch_shape != b.batch_shape or (
        a.event_shape != b.event_shape
    ):
        return False
    key = jax.random.key(0)
    try:
        x, y = np.asarray(a.sample(key, (2,))), np.asarray(b.sample(key, (2,)))
    except Exception:  # noqa: BLE001 - a distribution that cannot sample is not comparable
        return False
    return x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)


def _describe(dist: Any) -> dict[str, Any]:
    cls = type(dist)
    path = f"{cls.__module__}.{cls.__qualname__}"
    for params in _candidates(cls, dist):
        spec = {"class": path, "params": params}
        try:
            rebuilt = distribution_from_spec(spec)
        except Exception:  # noqa: BLE001 - any failure means: not this argument set
            continue
        if _same(rebuilt, dist):
            return spec
    return {"class": path, "rebuildable": False, "repr": describe_distribution(dist)}


def distribution_spec(dist: Any) -> dict[str, Any]:
    """A JSON-ready description of a NumPyro distribution.

    ``{"class": "module.qualname", "params": {...}}`` when rebuilding it gives
    an identical distribution, else ``{"class", "rebuildable": False, "repr"}``.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces.axes.distribution import distribution_spec
    >>> distribution_spec(dist.Normal(0.0, 2.0))["params"]
    {'loc': 0.0, 'scale': 2.0}
    >>> distribution_spec(dist.GaussianRandomWalk(num_steps=5))["params"]
    {'scale': 1.0, 'num_steps': 5}
    """
    if not _is_distribution(dist):
        fail("distribution", "a numpyro.distributions.Distribution instance", dist, TypeError)
    return _describe(dist)


def distribution_from_spec(spec: Mapping[str, Any]) -> Any:
    """The distribution :func:`distribution_spec` described.

    Only subclasses of ``numpyro.distributions.Distribution`` that are already
    loaded are called; anything else named is a ``ValueError``.

    Raises
    ------
    NotRebuildable
        For a description marked as not rebuildable.
    ValueError
        For a class that is not a loaded NumPyro distribution.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("class"), str):
        raise ValueError(f"a distribution spec must name its class, got {spec!r}")
    if spec.get("rebuildable") is False:
        raise NotRebuildable(
            f"the distribution {spec.get('repr', spec['class'])} cannot be rebuilt from its "
            "description in the file"
        )
    cls = _known_classes().get(spec["class"])
    if cls is None:
        raise ValueError(
            f"a distribution spec must name a subclass of numpyro.distributions.Distribution, "
            f"got {spec['class']!r}"
        )
    params = spec.get("params", {})
    if not isinstance(params, Mapping):
        raise ValueError(f"a distribution spec's params must be a mapping, got {params!r}")
    return cls(**{k: _decode_param(v) for k, v in params.items()})


def _short(value: Any) -> str:
    if _is_distribution(value):
        return describe_distribution(value)
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        array = np.asarray(value)
        if array.ndim == 0:
            return repr(array.item())
        if array.size <= 4:
            return repr(array.tolist())
        return f"<{array.dtype}{list(array.shape)}>"
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"<{len(value)} items>"
    return repr(value)


def describe_distribution(dist: Any) -> str:
    """A short repr of a distribution with its parameters: ``LogNormal(loc=0.0, scale=0.5)``.

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces.axes.distribution import describe_distribution
    >>> describe_distribution(dist.LogNormal(0.0, 0.5))
    'LogNormal(loc=0.0, scale=0.5)'
    """
    cls = type(dist)
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    shown = []
    for name, p in parameters.items():
        if name in ("self", "validate_args") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = getattr(dist, name, None)
        if value is None or callable(value) and not _is_distribution(value):
            continue
        shown.append(f"{name}={_short(value)}")
    return f"{cls.__name__}({', '.join(shown)})"


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

    Notes
    -----
    The coordinate holds the draws themselves (in the order they were
    drawn) where one scalar describes a point, else ``0..n-1`` with the
    draws kept as ``{name}_value``. A saved Space rebuilds the distribution
    from the file where its description is exact (see
    :func:`distribution_spec`), else it needs ``state=``.

    Examples
    --------
    >>> import jax
    >>> import numpyro.distributions as dist
    >>> from labeled_spaces import NumPyroAxis
    >>> axis = NumPyroAxis(dist.Normal(0.0, 1.0), n=3, sample_shape=(2,))
    >>> axis.generate_values(jax.random.key(0)).shape
    (3, 2)
    >>> NumPyroAxis(dist.LogNormal(0.0, 0.5), n=10)
    NumPyroAxis(LogNormal(loc=0.0, scale=0.5), n=10, sample_shape=(), broadcast_mode=False)
    """

    spec_fields = ("distribution", "n", "sample_shape", "broadcast_mode")

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
            fail("distribution", "a numpyro.distributions.Distribution instance", distribution,
                 TypeError, f" ({type(distribution).__name__})")
        if not isinstance(broadcast_mode, (bool, np.bool_)):
            fail("broadcast_mode", "a bool", broadcast_mode, TypeError)
        self.distribution = distribution
        self.n = check_size("n", n)
        checked = check_shape("sample_shape", sample_shape)
        self.sample_shape: tuple[int, ...] = checked if checked is not None else ()
        self.broadcast_mode = bool(broadcast_mode)
        draw_shape = (*distribution.batch_shape, *distribution.event_shape)
        if self.broadcast_mode and self.sample_shape and draw_shape:
            raise ValueError(
                "broadcast_mode=True broadcasts one scalar draw per point to sample_shape, "
                f"but the distribution draws shape {draw_shape}; got sample_shape="
                f"{self.sample_shape}. Use broadcast_mode=False, or a scalar distribution"
            )
        self._spec: dict[str, Any] | None = None

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

    def spec_values(self) -> dict[str, Any]:
        if self._spec is None:  # describing a distribution samples it: once per axis
            self._spec = distribution_spec(self.distribution)
        return {
            "distribution": self._spec,
            "n": self.n,
            "sample_shape": list(self.sample_shape),
            "broadcast_mode": self.broadcast_mode,
        }

    @classmethod
    def from_spec_values(cls, values: Mapping[str, Any], common: Mapping[str, Any]
                         ) -> NumPyroAxis:
        try:
            distribution = distribution_from_spec(values["distribution"])
        except NotRebuildable as err:
            raise NotRebuildable(
                f"{err}; rebuild the space with the original state: "
                "Space.from_attrs(attrs, state=...) or open_results(path, state=...)"
            ) from None
        sample_shape = values.get("sample_shape") or None
        return cls(distribution, values["n"], tuple(sample_shape) if sample_shape else None,
                   values.get("broadcast_mode", False), **common)

    def __repr__(self) -> str:
        return (
            f"NumPyroAxis({describe_distribution(self.distribution)}, n={self.n}, "
            f"sample_shape={self.sample_shape}, broadcast_mode={self.broadcast_mode}"
            f"{self._kw_repr()})"
        )

"""NumPyroAxis: draws from a NumPyro distribution.

How a distribution is described in a file (and rebuilt from it, never by
importing anything) is :mod:`labeled_spaces.axes.distribution_spec`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_shape, fail
from .._format import call_repr
from .base import AbstractAxis, NotRebuildable
from .bounded import check_size
from .distribution_identity import is_distribution
from .distribution_spec import describe_distribution, distribution_from_spec, distribution_spec

__all__ = [
    "NumPyroAxis",
    "describe_distribution",
    "distribution_from_spec",
    "distribution_spec",
]


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
        if not is_distribution(distribution):
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
        return call_repr("NumPyroAxis", describe_distribution(self.distribution), n=self.n,
                         sample_shape=self.sample_shape, broadcast_mode=self.broadcast_mode,
                         **self._repr_fields())

"""The Layout: what a Space hands to executors, stores and dask tasks.

Executors need no labels and no xarray: only the state's structure, which
of its leaves are axes, each axis's table of values, which grid dimension
each axis varies along, and the grid itself. A :class:`Layout` holds
exactly that, built once per Space (a Space is immutable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._caches import ProgramCache, hold_cache
from .._checks import integer_scalar
from .._format import short_repr
from ..grid import Blocks, Dim, Grid, block_positions, block_values
from .key_leaves import KeyPlan

__all__ = ["Layout", "check_key", "flat_position"]

# a jitted gather of every axis's value at one grid position, per axis -> dim map
_GATHERS = ProgramCache("space point gather")


def _point_values(tables: Sequence[Any], axis_dim: Sequence[int], digits: Sequence[Any]
                  ) -> list[Any]:
    """Every axis's value at one grid point (host tables and ints, or traced ones)."""
    return [t[digits[j]] for t, j in zip(tables, axis_dim, strict=True)]


def check_key(key: Any) -> jax.Array:
    """A PRNG key: typed (``jax.random.key``) or raw (``PRNGKey``); None means ``key(0)``.

    Anything else is a ``TypeError`` that says how to make a key of it: an
    integer seed, a NumPy generator, a batch of keys from ``jax.random.split``.

    Examples
    --------
    >>> from labeled_spaces.space import check_key
    >>> try:
    ...     check_key(42)
    ... except TypeError as err:
    ...     print(str(err).split("; ")[-1])
    for the seed 42, pass key=jax.random.key(42)
    """
    if key is None:
        return jax.random.key(0)
    hint, shown = "", short_repr(key)
    if isinstance(key, jax.Array):
        typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        if typed and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return key
        if typed and key.ndim == 1 or key.dtype == jnp.uint32 and key.ndim == 2 and \
                key.shape[-1] == 2:
            hint = (f"; it holds {key.shape[0]} keys (from jax.random.split?): pass one of "
                    "them, key=keys[0]")
        article = "an" if str(key.dtype).startswith("int") else "a"
        shown = f"{article} {key.dtype} array of shape {key.shape}"  # never a whole batch's
    elif isinstance(key, np.ndarray) and key.dtype == np.uint32 and key.shape == (2,):
        hint = "; this NumPy copy of a raw key becomes one again with key=jnp.asarray(key)"
    elif isinstance(key, np.random.Generator | np.random.RandomState):
        hint = "; a NumPy generator cannot seed JAX: pass key=jax.random.key(seed)"
    seed = integer_scalar(key)  # an int, np.int64(3), jnp.int32(3) (typed keys returned above)
    if seed is not None:
        hint = f"; for the seed {seed}, pass key=jax.random.key({seed})"
    raise TypeError(
        "key must be a jax.random.key(...) or jax.random.PRNGKey(...), "
        f"got {shown} ({type(key).__name__}){hint}"
    )


def flat_position(index: Any, n: int, of_what: str) -> int:
    """``index`` (negative counts from the end) as a position in ``range(n)``.

    Examples
    --------
    >>> from labeled_spaces.space import flat_position
    >>> flat_position(-1, 10, "a space of 10 combinations")
    9
    """
    i = integer_scalar(index)
    if i is None:
        raise TypeError(
            f"index must be an integer or a slice, got {index!r} ({type(index).__name__})"
        )
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"index {index} is out of range for {of_what}")
    return i


@dataclass(frozen=True, eq=False)
class Layout:
    """A Space as executors see it: structure, value tables and the grid.

    Attributes
    ----------
    treedef : jax tree structure
        The state's structure, axes as leaves.
    leaves : tuple
        The state's flat leaves, axes included (``jax.tree`` order).
    axis_positions : tuple of int
        Where the axes are among :attr:`leaves`.
    tables : tuple of numpy.ndarray
        Per axis, the read-only values ``(points, *value_shape)`` the model
        receives (only the points its dimension uses).
    dims : tuple of Dim
        The grid's dimensions.
    axis_dim : tuple of int
        Per axis, the index of its dimension in :attr:`dims`.
    grid : Grid
        Flat index arithmetic over :attr:`shape`.
    keys : KeyPlan or None
        The state's key leaves (KeyAxis, PointKey) and the position tables
        their keys are folded from; None where it has none. Executors see
        them through the *lane* tables: :attr:`lane_tables` (the axes'
        tables, then the position tables), gathered along :attr:`lane_dims`,
        whose values :meth:`state` turns into the model's state.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> layout = Space({"a": GridAxis(0.0, 1.0, 3), "dt": 0.1}, mode="product").layout
    >>> layout.shape, layout.point(2)
    ((3,), {'a': np.float32(1.0), 'dt': 0.1})
    """

    treedef: Any
    leaves: tuple[Any, ...]
    axis_positions: tuple[int, ...]
    tables: tuple[np.ndarray, ...]
    dims: tuple[Dim, ...]
    axis_dim: tuple[int, ...]
    grid: Grid
    keys: KeyPlan | None = None
    _device: dict[Any, tuple[jax.Array, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        hold_cache(self)  # labeled_spaces.clear_caches() empties the device tables too

    def clear_cache(self) -> None:
        """Forget the tables put on the device (:meth:`device_tables` makes them again)."""
        self._device.clear()

    @property
    def shape(self) -> tuple[int, ...]:
        """Size of every dimension, slowest first."""
        return self.grid.shape

    @property
    def N(self) -> int:
        """Number of combinations."""
        return self.grid.N

    @property
    def fixed_leaves(self) -> list[Any]:
        """The leaves that are not axes, in order."""
        axes = set(self.axis_positions)
        return [x for k, x in enumerate(self.leaves) if k not in axes]

    def assemble(self, axis_values: Sequence[Any], leaves: Sequence[Any] | None = None) -> Any:
        """The state with every axis replaced by the matching entry of ``axis_values``.

        ``leaves`` replaces the state's flat leaves (e.g. by traced arrays);
        the axes among them are ignored.
        """
        out = list(self.leaves if leaves is None else leaves)
        for pos, value in zip(self.axis_positions, axis_values, strict=True):
            out[pos] = value
        return self.treedef.unflatten(out)

    @property
    def lane_tables(self) -> tuple[np.ndarray, ...]:
        """What one lane gathers: every axis's table, then the key leaves' position tables."""
        return self.tables if self.keys is None else (*self.tables, *self.keys.tables)

    @property
    def lane_dims(self) -> tuple[int, ...]:
        """The grid dimension each of :attr:`lane_tables` varies along."""
        return self.axis_dim if self.keys is None else (*self.axis_dim, *self.keys.dims)

    def state(self, values: Sequence[Any], leaves: Sequence[Any] | None = None) -> Any:
        """The state a model receives from one lane's values (see :attr:`lane_tables`).

        The axes get their values (as :meth:`assemble`) and the key leaves
        their keys, folded from the lane's positions (traceable; batched
        values, as ``collect`` gives, make batched keys), or, where
        ``values`` go on past the lane tables' (as :meth:`block_values`
        gives), each key leaf's keys already folded.
        """
        n = len(self.axis_positions)
        if self.keys is None:
            return self.assemble(values[:n], leaves)
        out = list(self.leaves if leaves is None else leaves)
        for pos, value in zip(self.axis_positions, values[:n], strict=True):
            out[pos] = value
        lanes = len(self.lane_tables)
        self.keys.make(values[:lanes], out, values[lanes:] if len(values) > lanes else None)
        return self.treedef.unflatten(out)

    def values_at(self, digits: Sequence[int]) -> list[np.ndarray]:
        """Every lane value (read-only NumPy views) at grid position ``digits``."""
        return _point_values(self.lane_tables, self.lane_dims, digits)

    def point(self, i: int) -> Any:
        """The state at flat index ``i`` (``0 <= i < N``) with NumPy values (keys as keys)."""
        return self.state(self.values_at(self.grid.unravel(i)))

    def device_point(self, i: int) -> Any:
        """The state at flat index ``i`` with JAX arrays for the axes (as TVB-Optim gives).

        One compiled gather of every axis's value (about 10 µs): indexing JAX
        arrays one by one from Python costs about 100 µs per access.
        """
        axis_dim = self.lane_dims
        gather = _GATHERS.get(None, axis_dim, lambda: jax.jit(
            lambda tables, digits: _point_values(tables, axis_dim, digits)))
        digits = np.asarray(self.grid.unravel(i), dtype=np.int32)
        return self.state(gather(self.device_tables(), digits))

    def device_tables(self, sharding: Any = None) -> tuple[jax.Array, ...]:
        """The lane tables as device arrays, placed by ``sharding`` (made once per placement)."""
        if sharding not in self._device:
            tables = tuple(jnp.asarray(t) for t in self.lane_tables)
            self._device[sharding] = tables if sharding is None else jax.device_put(
                tables, sharding)
        return self._device[sharding]

    def block_values(self, tables: Sequence[jax.Array], origin: jax.Array,
                     block: Sequence[int]) -> list[jax.Array]:
        """Every lane value over the N-D block at ``origin`` as lanes (traceable).

        ``tables`` are the :attr:`lane_tables` (on a device); see
        :func:`labeled_spaces.grid.block_values`. With key leaves, their keys'
        data over the block follow (:meth:`KeyPlan.block_keys`: folded once per
        point of their dimensions, not once per lane), which :meth:`state`
        wraps.
        """
        values = block_values(tables, self.lane_dims, self.shape, origin, block)
        if self.keys is None:
            return values
        positions = block_positions(origin, block, self.shape)
        points = [jnp.asarray(t)[positions[j]] for t, j in zip(tables, self.lane_dims,
                                                                strict=True)]
        return [*values, *self.keys.block_keys(points, self.lane_dims, block)]

    def blocks(self, lanes: int, multiple: int = 1) -> Blocks:
        """The grid tiled by blocks of about ``lanes`` points (see :class:`Blocks`)."""
        return Blocks.plan(self.shape, lanes, multiple)

    def lane_bytes(self) -> int:
        """Bytes of the lane values of one combination."""
        return sum(int(np.prod(t.shape[1:])) * t.dtype.itemsize for t in self.lane_tables)

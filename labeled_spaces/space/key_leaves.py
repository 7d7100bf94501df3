"""Key leaves: which leaves of a state become PRNG keys, and how one lane makes them.

A :class:`~labeled_spaces.KeyAxis` or a :class:`~labeled_spaces.PointKey`
in a state is a *key leaf*: the model receives a key folded
(``jax.random.fold_in``) from a base key with positions of the combination.
A :class:`KeyPlan` says, for every key leaf, its base key (as data: a
hashable part of the compiled programs' cache key) and where each position
comes from: a lane value (the KeyAxis's replicate number, or a position
table of a PointKey gathered along a grid dimension like an axis's values)
or a fixed number (a dimension a sub-space fixed). So the keys are computed
inside the compiled block from the combination's position; the only tables
are one position per point of a dimension, never one key per combination.

The Layout hands the position tables to executors after the axes' tables
(its *lane* tables) and makes the keys in :meth:`Layout.state`. A compiled
block folds its keys before its lanes run (:meth:`KeyPlan.block_keys`): each
fold once per point of the dimensions folded so far, so a ``KeyAxis`` costs
a hash per replicate of the block and a ``PointKey`` about one per lane,
where folding in every lane costs one per fold and lane.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._codec import key_data, key_impl
from .._format import format_count
from ..axes import KeyAxis, PointKey
from ..axes.keys import check_fold_key, typed_key
from ..grid import Dim

__all__ = ["KeyLeaf", "KeyPlan", "fold", "plan_keys", "selected_point_keys", "subset_key_axis"]


@dataclass(frozen=True)
class KeyLeaf:
    """One leaf that becomes a key: ``fold_in(base, p)`` for each position ``p`` in order.

    Attributes
    ----------
    position : int
        Where the leaf is among the state's flat leaves.
    key, impl, typed
        The base key's data, its implementation, and whether the model gets
        typed keys (``jax.random.key``) or raw ``uint32`` data (``PRNGKey``).
    sources : tuple
        Per fold, ``(lane, None)``: the lane value at index ``lane`` (the axes'
        values, then the position tables), or ``(None, p)``: the fixed ``p``.
    """

    position: int
    key: tuple[int, ...]
    impl: str
    typed: bool
    sources: tuple[tuple[int | None, int | None], ...]

    def base(self) -> jax.Array:
        """The base key (typed or raw, as the Space's key was)."""
        data = jnp.asarray(self.key, dtype=jnp.uint32)
        return jax.random.wrap_key_data(data, impl=self.impl) if self.typed else data


@dataclass(frozen=True)
class KeyPlan:
    """Every key leaf of a Layout, and the position tables its lanes gather.

    ``tables[k]`` (int32) varies along grid dimension ``dims[k]`` and is lane
    value ``n_axes + k``. Equality and hash leave the tables out: they reach
    the compiled programs as arguments, the rest as constants.
    """

    leaves: tuple[KeyLeaf, ...]
    dims: tuple[int, ...]
    tables: tuple[np.ndarray, ...] = field(compare=False, hash=False, repr=False)

    def leaf_at(self, position: int) -> KeyLeaf:
        """The key leaf at a leaf position."""
        return next(leaf for leaf in self.leaves if leaf.position == position)

    def make(self, values: Sequence[Any], leaves: list[Any],
             made: Sequence[Any] | None = None) -> None:
        """Put every key leaf's keys into ``leaves``, from lane ``values`` (traceable).

        ``values`` may be batched alike (``collect``): then the keys are too.
        ``made`` holds, per key leaf, its keys' data already folded
        (:meth:`block_keys`), which is only wrapped, not folded again, or None:
        that leaf is folded from ``values``.
        """
        for k, leaf in enumerate(self.leaves):
            if made is not None and made[k] is not None:
                data = jnp.asarray(made[k], dtype=jnp.uint32)
                leaves[leaf.position] = jax.random.wrap_key_data(
                    data, impl=leaf.impl) if leaf.typed else data
                continue
            positions = [values[lane] if lane is not None else fixed
                         for lane, fixed in leaf.sources]
            leaves[leaf.position] = fold(leaf.base(), positions)

    def for_other_values(self, made: Sequence[Any], n_axes: int) -> list[Any]:
        """``made`` (:meth:`block_keys`) for lanes whose axis values may be others.

        A key folded from an axis's value (a ``KeyAxis``'s replicate number,
        lane ``< n_axes``) becomes None, so that :meth:`make` folds it from the
        value given; a ``PointKey``'s positions are no axis values and keep theirs.
        """
        return [None if any(lane is not None and lane < n_axes for lane, _ in leaf.sources)
                else data for leaf, data in zip(self.leaves, made, strict=True)]

    def block_keys(self, points: Sequence[Any], dims: Sequence[int], block: Sequence[int]
                   ) -> list[jax.Array]:
        """Per key leaf, its keys' data over an N-D block, as ``(prod(block), width)`` lanes.

        ``points[k]`` holds lane table ``k``'s values at the block's
        ``block[dims[k]]`` points of its dimension. The folds are hoisted:
        a key's first fold runs once per point of its dimension, the next
        once per point of the two dimensions so far, and so on, where folding
        lane by lane costs one hash per fold and lane (a ``PointKey`` of a 2-D
        block of 32 x 32: 1,056 hashes instead of 2,048; a ``KeyAxis``: 32
        instead of 1,024). The keys are bit for bit those of :meth:`make`
        (``fold_in`` casts every position to ``uint32`` either way).
        Traceable.
        """
        lanes = math.prod(block)
        out = []
        for leaf in self.leaves:
            data = jnp.asarray(leaf.key, dtype=jnp.uint32).reshape((1,) * len(block) + (-1,))
            for lane, fixed in leaf.sources:
                if lane is None:
                    positions = jnp.asarray(fixed)
                else:
                    along = [1] * len(block)
                    along[dims[lane]] = block[dims[lane]]
                    positions = jnp.asarray(points[lane]).reshape(along)
                data = _fold_data(data, positions)
            width = data.shape[-1]
            out.append(jnp.broadcast_to(data, (*block, width)).reshape((lanes, width)))
        return out


def _fold_data(data: jax.Array, positions: jax.Array) -> jax.Array:
    """Keys' data ``(*shape, 2)`` each folded with ``positions``, broadcast against them.

    Bit for bit ``jax.random.fold_in`` of a Threefry key (the only kind
    folded: :func:`~labeled_spaces.axes.keys.check_fold_key`), computed on
    the two words of the keys as separate arrays: XLA:CPU vectorises that
    about 5x faster than ``vmap(fold_in)``, whose ``(lanes, 2)`` key data
    interleave the words (measured: 1.8 ns against 10.8 ns a key).
    """
    # fold_in casts a position to uint32 and hashes the counters (0, position)
    low = jnp.asarray(positions).astype(jnp.uint32)
    words = _threefry2x32(data[..., 0], data[..., 1], jnp.zeros_like(low), low)
    return jnp.stack(jnp.broadcast_arrays(*words), axis=-1)


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


@jax.jit  # one named call in a traced program: tests count the keys it hashes
def _threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 (20 rounds, as JAX's) of the counters ``(x0, x1)`` under key ``(k0, k1)``."""
    keys = (k0, k1, k0 ^ k1 ^ jnp.uint32(0x1BD11BDA))
    x0, x1 = x0 + keys[0], x1 + keys[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = x0 ^ ((x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r)))
        x0 = x0 + keys[(i + 1) % 3]
        x1 = x1 + keys[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


def fold(base: jax.Array, positions: Sequence[Any]) -> jax.Array:
    """``base`` folded in with each of ``positions`` in order; batched positions give batched keys.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.space.key_leaves import fold
    >>> key = jax.random.key(0)
    >>> bool(fold(key, [2, 3]) == jax.random.fold_in(jax.random.fold_in(key, 2), 3))
    True
    >>> fold(key, [np.arange(4).reshape(2, 2), 1]).shape
    (2, 2)
    """
    def one(*ps: Any) -> jax.Array:
        k = base
        for p in ps:
            k = jax.random.fold_in(k, p)
        return k

    shape = np.broadcast_shapes(*(np.shape(p) for p in positions)) if positions else ()
    if shape == ():
        return one(*positions)
    flat = [jnp.broadcast_to(jnp.asarray(p), shape).reshape(-1) for p in positions]
    keys = jax.vmap(one)(*flat)
    return keys.reshape(shape + keys.shape[1:])


def _leaf(position: int, key: jax.Array, sources: Sequence[tuple[int | None, int | None]]
          ) -> KeyLeaf:
    check_fold_key("key", key)  # the Space's key, or the one a KeyAxis was selected with
    return KeyLeaf(position, tuple(key_data(key)), key_impl(key), typed_key(key),
                   tuple(sources))


def plan_keys(leaves: Sequence[Any], paths: Sequence[str], axis_positions: Sequence[int],
              axis_keys: Sequence[jax.Array], dims: Sequence[Dim], key: jax.Array
              ) -> KeyPlan | None:
    """The KeyPlan of a state's key leaves (None where it has none).

    ``leaves`` and ``paths`` are the state's flat leaves and their key paths,
    ``axis_keys`` each axis's key from the Space's split, ``dims`` the grid's
    dimensions and ``key`` the Space's key (a PointKey's base).

    Raises
    ------
    ValueError
        For a PointKey whose ``positions`` do not match the space's dimensions,
        and for a key other than Threefry (see
        :func:`~labeled_spaces.axes.keys.check_fold_key`).
    """
    n_axes = len(axis_positions)
    found: list[KeyLeaf] = []
    tables: list[np.ndarray] = []
    table_dims: list[int] = []
    along: dict[int, int] = {}  # a dimension's own positions 0..size-1: one table, shared

    def lane(table: np.ndarray, j: int) -> int:
        table = np.asarray(table, dtype=np.int32)
        table.flags.writeable = False
        tables.append(table)
        table_dims.append(j)
        return n_axes + len(tables) - 1

    for a, pos in enumerate(axis_positions):
        axis = leaves[pos]
        if isinstance(axis, KeyAxis):
            found.append(_leaf(pos, axis.axis_key(axis_keys[a]), [(a, None)]))
    names = [d.name for d in dims]
    for pos, leaf in enumerate(leaves):
        if not isinstance(leaf, PointKey):
            continue
        sources: list[tuple[int | None, int | None]] = []
        if leaf.positions is None:
            for j, d in enumerate(dims):
                if j not in along:
                    along[j] = lane(np.arange(d.size), j)
                sources.append((along[j], None))
        else:
            used = set()
            for entry in leaf.positions:
                if isinstance(entry, int):
                    sources.append((None, entry))
                    continue
                name, original = entry
                if name not in names:
                    raise ValueError(
                        f"the PointKey at {paths[pos]!r} holds positions along dimension "
                        f"{name!r}, which the space does not have; its dimensions are {names}")
                j = names.index(name)
                if len(original) != dims[j].size:
                    raise ValueError(
                        f"the PointKey at {paths[pos]!r} holds "
                        f"{format_count(len(original), 'position')} along dimension {name!r}, "
                        f"which has {format_count(dims[j].size, 'point')}")
                used.add(name)
                sources.append((lane(original, j), None))
            unused = [n for n in names if n not in used]
            if unused:
                raise ValueError(
                    f"the PointKey at {paths[pos]!r} holds no positions along the dimensions "
                    f"{unused}: its combinations there would share keys; use PointKey() "
                    "(its positions are set by sub-spaces)")
        found.append(_leaf(pos, key, sources))
    if not found:
        return None
    return KeyPlan(tuple(found), tuple(table_dims), tuple(tables))


def subset_key_axis(plan: KeyPlan, position: int, axis: KeyAxis, name: str,
                    numbers: np.ndarray, pick: int | np.ndarray) -> Any:
    """A KeyAxis's part of a sub-space: the key at an int ``pick``, else a KeyAxis.

    ``numbers`` are the axis's replicate numbers (its table); the sub-space's
    KeyAxis keeps the picked ones and the axis key, so each keeps its key.
    """
    base = plan.leaf_at(position).base()
    if isinstance(pick, (int, np.integer)):
        return fold(base, [int(numbers[pick])])
    return KeyAxis(axis.n, name=name, group=axis.group, attrs=axis.attrs,
                   replicates=numbers[pick], key=base)


def selected_point_keys(plan: KeyPlan, n_axes: int, leaves: Sequence[Any],
                        dim_picks: Sequence[int | np.ndarray], new_dims: Sequence[str]
                        ) -> list[Any]:
    """``leaves`` with each PointKey keeping its original positions in a sub-space.

    ``dim_picks[j]`` is what the sub-space takes of grid dimension ``j`` (an
    int fixes it) and ``new_dims[j]`` the name of the sub-space's dimension
    that holds those points.
    """
    out = list(leaves)
    for leaf in plan.leaves:
        if not isinstance(leaves[leaf.position], PointKey):
            continue
        entries: list[Any] = []
        for lane, fixed in leaf.sources:
            if lane is None:
                entries.append(fixed)
                continue
            table, j = plan.tables[lane - n_axes], plan.dims[lane - n_axes]
            pick = dim_picks[j]
            if isinstance(pick, (int, np.integer)):
                entries.append(int(table[pick]))
            else:
                entries.append((new_dims[j], table[np.asarray(pick, dtype=np.int64)]))
        out[leaf.position] = PointKey(positions=entries)
    return out

"""The grid of a Space and its blocks: all the index arithmetic, in one place.

A Space's combinations form an N-D grid (one dimension per product axis or
group, a single one in zip mode, none for a single point: shape ``()``,
``N == 1``, one block of no extent) walked in C order. This module knows

- which dimensions a set of axes makes (:func:`assign_dims`);
- flat index ⇄ grid position ("digits"), on the host with Python integers of
  any size (:class:`Grid`);
- the tiling of the grid into N-D blocks, their origins, regions and the
  done mask (:class:`Blocks`, :class:`Block`): one compiled call, zarr chunk
  and dask task each;
- the parameter values of a block inside ``jit``, from int32 digits only
  (:func:`block_values`), so grids beyond 2**31 combinations never overflow.

Nothing here is ever of size N.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import warn_user
from ._format import call_repr, format_count

__all__ = ["Block", "Blocks", "Dim", "Grid", "MAX_SIZE", "SIZE_WARNINGS", "assign_dims",
           "block_shape", "block_values"]

# a digit plus an offset plus a carry must fit int32
MAX_SIZE = 2**30
# how the warnings about zipped axes of different sizes begin
SIZE_WARNINGS = ("axes in group ", "in zip mode the axes have different sizes")


@dataclass(frozen=True)
class Dim:
    """One dimension of the grid: its name, size, the axes (by position) that vary along it,
    and whether it is shared (a zip or group dimension, whose axes are coordinates on it)."""

    name: str
    size: int
    members: tuple[int, ...]
    shared: bool


def assign_dims(
    mode: str,
    dim: str,
    names: Sequence[str],
    sizes: Sequence[int],
    groups: Sequence[Hashable | None],
) -> tuple[tuple[Dim, ...], tuple[int, ...]]:
    """The dimensions that axes make, and each axis's dimension.

    Grouped axes are zipped into one dimension per group (named
    ``str(group)``, in the order the groups first appear), then the
    ungrouped axes follow, one dimension each (TVB-Optim's order). In
    ``"zip"`` mode all of them share one dimension named ``dim``. Zipped
    axes of different sizes are cut to the smallest, with a warning.

    ``names``, ``sizes`` and ``groups`` (None for no group) hold one entry
    per axis; ``dim`` names the shared dimension in zip mode. Returns the
    dimensions and, for each axis, the index of its dimension.

    Examples
    --------
    >>> from labeled_spaces.grid import assign_dims
    >>> dims, axis_dim = assign_dims("product", "sample", ["a", "b", "c"], [3, 3, 2],
    ...                              ["g", "g", None])
    >>> [(d.name, d.size) for d in dims], axis_dim
    ([('g', 3), ('c', 2)], (0, 0, 1))
    """
    grouped: dict[Hashable, list[int]] = {}
    ungrouped: list[int] = []
    for a, group in enumerate(groups):
        if group is not None:
            grouped.setdefault(group, []).append(a)
        else:
            ungrouped.append(a)
    effective: list[Dim] = []
    for label, members in grouped.items():
        member_sizes = [sizes[a] for a in members]
        if len(set(member_sizes)) > 1:
            warn_user(f"{SIZE_WARNINGS[0]}{label!r} have different sizes {member_sizes} "
                      f"({', '.join(names[a] for a in members)}); using the smallest, "
                      f"{min(member_sizes)}")
        effective.append(Dim(str(label), min(member_sizes), tuple(members), True))
    for a in ungrouped:
        effective.append(Dim(names[a], sizes[a], (a,), False))
    if mode == "zip" and effective:
        dim_sizes = [d.size for d in effective]
        if len(set(dim_sizes)) > 1:
            smallest = min(dim_sizes)
            dropped = format_count(sum(s - smallest for s in dim_sizes), "value")
            warn_user(f"{SIZE_WARNINGS[1]} {dim_sizes} ({', '.join(d.name for d in effective)}"
                      f"); using the smallest, {smallest}, and dropping {dropped}; zip mode "
                      "pairs the i-th values of the axes: for every combination of them, "
                      'use mode="product"')
        effective = [Dim(dim, min(dim_sizes), tuple(range(len(names))), True)]
    dims = tuple(effective)
    axis_dim = tuple(
        next(j for j, d in enumerate(dims) if a in d.members) for a in range(len(names))
    )
    return dims, axis_dim


class Grid:
    """Flat index ⇄ digits of a grid of a given ``shape`` (C order, first dimension slowest).

    Every size is in ``[1, 2**30)``, so that a digit plus an offset plus a
    carry fits int32.

    Examples
    --------
    >>> from labeled_spaces.grid import Grid
    >>> grid = Grid((4, 3))
    >>> grid.N, grid.unravel(7), grid.ravel((2, 1))
    (12, (2, 1), 7)
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(s) for s in shape)
        if any(s < 1 or s >= MAX_SIZE for s in self.shape):
            raise ValueError(f"shape must hold sizes in [1, 2**30), got {self.shape}")
        self.N = math.prod(self.shape)
        strides = []
        acc = 1
        for s in reversed(self.shape):
            strides.append(acc)
            acc *= s
        self.strides = tuple(reversed(strides))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grid) and other.shape == self.shape

    def __hash__(self) -> int:
        return hash(("Grid", self.shape))

    def __repr__(self) -> str:
        return call_repr("Grid", shape=self.shape)

    def unravel(self, flat: int) -> tuple[int, ...]:
        """Digits of flat index ``flat`` (``0 <= flat < N``), exact for any N."""
        digits = []
        for stride in self.strides:
            q, flat = divmod(flat, stride)
            digits.append(q)
        return tuple(digits)

    def ravel(self, digits: Sequence[int]) -> int:
        """Flat index of the given digits."""
        return sum(int(d) * s for d, s in zip(digits, self.strides, strict=True))

    def unravel_many(self, flat: np.ndarray) -> np.ndarray:
        """Digits of an int64 array of flat indices, shape ``(len(flat), ndim)``."""
        flat = np.asarray(flat, dtype=np.int64)
        if self.N > np.iinfo(np.int64).max:
            raise OverflowError(f"a space of {self.N} combinations exceeds int64 indexing")
        if not self.shape:  # a single point: no digits (numpy has no 0-d unravel)
            return np.zeros((flat.size, 0), dtype=np.int64)
        return np.stack(np.unravel_index(flat, self.shape), axis=-1)

    def origin(self, flat: int) -> np.ndarray:
        """Digits of flat index ``flat`` as the int32 array a compiled call takes."""
        return np.asarray(self.unravel(flat), dtype=np.int32)


def block_shape(shape: Sequence[int], lanes: int, multiple: int = 1
                ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tile a grid with N-D blocks of about ``lanes`` points.

    Fills the fastest dimensions first and balances each dimension's blocks
    so the ragged last one wastes little. A block is then always a contiguous
    run of the flat index: once a dimension is split, its step exceeds half
    the room left, so every slower dimension gets a step of 1.

    Returns the step between block origins and the compiled block shape,
    whose first entry may be larger so that the block's size is a multiple
    of ``multiple`` (devices sharing it); the extra rows are real points of
    the next block, computed and dropped.

    Examples
    --------
    >>> from labeled_spaces.grid import block_shape
    >>> block_shape((5, 3), 7, 4)
    ((2, 3), (4, 3))
    """
    if not shape:  # a single point (a 0-dimensional grid) is one block of no extent
        return (), ()
    step = [1] * len(shape)
    room = max(1, lanes)
    for j in reversed(range(len(shape))):
        take = min(shape[j], room)
        nblocks = -(-shape[j] // take)
        step[j] = -(-shape[j] // nblocks)
        room = max(1, room // step[j])
    compiled = list(step)
    inner = math.prod(step[1:])
    unit = multiple // math.gcd(inner, multiple)
    compiled[0] = -(-step[0] // unit) * unit
    return tuple(step), tuple(compiled)


@dataclass(frozen=True)
class Block:
    """One block of the grid: its number, origin and extent (cut at the grid's edge).

    Examples
    --------
    >>> from labeled_spaces.grid import Blocks
    >>> block = Blocks((5, 3), (2, 3))[2]
    >>> block.origin, block.extent, block.region, block.start, block.size
    ((4, 0), (1, 3), (slice(4, 5, None), slice(0, 3, None)), 12, 3)
    """

    index: int
    origin: tuple[int, ...]
    extent: tuple[int, ...]
    start: int  # flat index of the first point (blocks are contiguous runs of it)

    @property
    def region(self) -> tuple[slice, ...]:
        """The block's slices of the grid."""
        return tuple(slice(o, o + e) for o, e in zip(self.origin, self.extent, strict=True))

    @property
    def size(self) -> int:
        """Number of grid points in the block."""
        return math.prod(self.extent)


class Blocks:
    """The tiling of a grid of ``shape`` by blocks of ``step`` (ragged at the far edges).

    ``step`` is the block shape (the last block along a dimension may be
    shorter); ``compiled`` the shape a compiled call computes (at least
    ``step``, default ``step``). Blocks are numbered in C order of their
    origins, the flat order of the grid: laid out by :func:`block_shape`,
    block ``k`` holds flat indices ``start .. start + size - 1``.

    Examples
    --------
    >>> from labeled_spaces.grid import Blocks
    >>> blocks = Blocks.plan((10, 4), lanes=8)
    >>> blocks.step, len(blocks), [b.origin for b in blocks][:3]
    ((2, 4), 5, [(0, 0), (2, 0), (4, 0)])
    >>> blocks.done_mask([0, 4]).sum(axis=1).tolist()
    [4, 4, 0, 0, 0, 0, 0, 0, 4, 4]
    """

    def __init__(self, shape: Sequence[int], step: Sequence[int],
                 compiled: Sequence[int] | None = None) -> None:
        self.grid = Grid(shape)
        self.shape = self.grid.shape
        self.step = tuple(int(s) for s in step)
        if len(self.step) != len(self.shape) or any(
            not 1 <= b <= s for b, s in zip(self.step, self.shape, strict=True)
        ):
            raise ValueError(
                f"step must hold one block size in [1, size] per dimension of {self.shape}, "
                f"got {self.step}"
            )
        self.compiled = self.step if compiled is None else tuple(int(b) for b in compiled)
        self.counts = tuple(-(-s // b) for s, b in zip(self.shape, self.step, strict=True))

    @classmethod
    def plan(cls, shape: Sequence[int], lanes: int, multiple: int = 1) -> Blocks:
        """Blocks of about ``lanes`` points laid out by :func:`block_shape`."""
        step, compiled = block_shape(tuple(shape), lanes, multiple)
        return cls(shape, step, compiled)

    def __len__(self) -> int:
        return math.prod(self.counts)

    def __repr__(self) -> str:
        return call_repr("Blocks", f"shape={self.shape}, step={self.step}",
                         format_count(len(self), "block"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Blocks) and (other.shape, other.step) == (self.shape, self.step)

    def __hash__(self) -> int:
        return hash(("Blocks", self.shape, self.step))

    def __getitem__(self, index: int) -> Block:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"block {index} is out of range for {format_count(n, 'block')}")
        index %= n
        position = np.unravel_index(index, self.counts)
        origin = tuple(int(p) * b for p, b in zip(position, self.step, strict=True))
        return self._block(index, origin)

    def _block(self, index: int, origin: tuple[int, ...]) -> Block:
        extent = tuple(
            min(b, s - o) for o, b, s in zip(origin, self.step, self.shape, strict=True)
        )
        return Block(index, origin, extent, self.grid.ravel(origin))

    def __iter__(self) -> Iterator[Block]:
        ranges = [range(0, s, b) for s, b in zip(self.shape, self.step, strict=True)]
        for index, origin in enumerate(itertools.product(*ranges)):
            yield self._block(index, origin)

    def index_of(self, origin: Sequence[int]) -> int:
        """Number of the block that starts at ``origin``."""
        position = [o // b for o, b in zip(origin, self.step, strict=True)]
        return int(np.ravel_multi_index(position, self.counts)) if position else 0

    def flat_indices(self, block: Block) -> list[int]:
        """Flat indices of a block's points, in flat order."""
        ranges = [range(o, o + e) for o, e in zip(block.origin, block.extent, strict=True)]
        return [self.grid.ravel(d) for d in itertools.product(*ranges)]

    def done_mask(self, done: Sequence[int] | np.ndarray) -> np.ndarray:
        """Grid-shaped boolean mask of the points in blocks ``done``.

        ``done`` holds block numbers, or is a boolean array of shape
        :attr:`counts` (one entry per block).
        """
        per_block = np.asarray(done)
        if per_block.dtype != bool:
            mask = np.zeros(len(self), dtype=bool)
            mask[per_block.astype(np.int64)] = True
            per_block = mask.reshape(self.counts)
        if not self.shape:  # a single point: its one block's mark, 0-d
            return per_block.copy()
        full = per_block
        for axis, b in enumerate(self.step):
            full = np.repeat(full, b, axis=axis)
        return np.ascontiguousarray(full[tuple(slice(0, s) for s in self.shape)])


def block_positions(origin: jax.Array, block: Sequence[int], shape: Sequence[int]
                    ) -> list[jax.Array]:
    """Per-dimension grid positions of the N-D block at ``origin`` (traceable, int32).

    Positions past the grid's edge (a ragged block) are clipped to the edge,
    so they repeat real points.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.grid import block_positions
    >>> [p.tolist() for p in block_positions(np.array([4, 2], np.int32), (2, 3), (5, 4))]
    [[4, 4], [2, 3, 3]]
    """
    return [
        jnp.minimum(origin[j].astype(jnp.int32) + jnp.arange(b, dtype=jnp.int32), s - 1)
        for j, (b, s) in enumerate(zip(block, shape, strict=True))
    ]


def block_values(
    tables: Sequence[jax.Array],
    axis_dim: Sequence[int],
    shape: Sequence[int],
    origin: jax.Array,
    block: Sequence[int],
) -> list[jax.Array]:
    """Every axis's values over the N-D block at ``origin``, as ``(prod(block), ...)`` lanes.

    Traceable; ``origin`` holds int32 digits (:meth:`Grid.origin`), safe beyond
    2**31 points. Each axis gathers only its own dimension's ``block[j]``
    points, broadcast over the others (XLA fuses that into the model). Lanes
    run in C order of the block; points past the grid's edge repeat the edge.

    Examples
    --------
    >>> import numpy as np
    >>> from labeled_spaces.grid import block_values
    >>> a, b = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    >>> [v.tolist() for v in block_values([a, b], [0, 1], (3, 2), np.array([1, 0]), (2, 2))]
    [[1.0, 1.0, 2.0, 2.0], [10.0, 20.0, 10.0, 20.0]]
    """
    positions = block_positions(origin, block, shape)
    lanes = math.prod(block)
    out = []
    for table, j in zip(tables, axis_dim, strict=True):
        small = jnp.asarray(table)[positions[j]]
        vshape = small.shape[1:]
        expand = [1] * len(block)
        expand[j] = block[j]
        small = small.reshape((*expand, *vshape))
        out.append(jnp.broadcast_to(small, (*block, *vshape)).reshape((lanes, *vshape)))
    return out

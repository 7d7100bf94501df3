"""Mixed-radix arithmetic between flat indices and grid positions.

A Space's combinations form an N-D grid (one dimension per product axis or
group; a single dimension in zip mode) walked in C order. :class:`GridIndex`
converts between a flat index and the per-dimension positions ("digits"), on
the host with Python integers of any size, and inside ``jit`` with int32 only:
a block of combinations is given by the digits of its origin and the offsets
are added with carry, so spaces beyond 2**31 combinations never overflow.
Nothing here is ever of size N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GridIndex"]

_INT32_MAX = 2**31 - 1


class GridIndex:
    """The flat-index arithmetic of a grid of a given ``shape``.

    Parameters
    ----------
    shape : sequence of int
        Size of every dimension, slowest first. Each must be below 2**30 so
        that a digit plus an offset plus a carry fits int32.

    Examples
    --------
    >>> from labeled_spaces.grid_index import GridIndex
    >>> grid = GridIndex((4, 3))
    >>> grid.N, grid.unravel(7), grid.ravel((2, 1))
    (12, (2, 1), 7)
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or any(s < 1 or s >= 2**30 for s in self.shape):
            raise ValueError(f"shape must hold sizes in [1, 2**30), got {self.shape}")
        self.N = math.prod(self.shape)
        strides = []
        acc = 1
        for s in reversed(self.shape):
            strides.append(acc)
            acc *= s
        self.strides = tuple(reversed(strides))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GridIndex) and other.shape == self.shape

    def __hash__(self) -> int:
        return hash(("GridIndex", self.shape))

    def __repr__(self) -> str:
        return f"GridIndex(shape={self.shape})"

    # -- host side, exact Python integers --------------------------------
    def unravel(self, flat: int) -> tuple[int, ...]:
        """Digits of flat index ``flat`` (``0 <= flat < N``)."""
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
        return np.stack(np.unravel_index(flat, self.shape), axis=-1)

    def origin(self, flat: int) -> np.ndarray:
        """Digits of a block's flat start, as the int32 array a compiled call takes."""
        return np.asarray(self.unravel(flat), dtype=np.int32)

    # -- inside jit, int32 only ------------------------------------------
    def flat_block(self, origin: jax.Array, n_valid: jax.Array, block: int) -> jax.Array:
        """Digits of ``block`` consecutive combinations from ``origin``, shape ``(block, ndim)``.

        ``origin`` holds the digits of the first combination (int32, see
        :meth:`origin`), ``n_valid`` how many of the ``block`` lanes are real;
        the others repeat the last combination of the grid, a real point, so
        that padding never feeds invented values to a model.
        """
        if block > _INT32_MAX:
            raise ValueError(f"block must be below 2**31, got {block}")
        offsets = jnp.arange(block, dtype=jnp.int32)
        carry = jnp.zeros((block,), jnp.int32)
        digits = [None] * len(self.shape)
        for j in reversed(range(len(self.shape))):
            size, stride = self.shape[j], self.strides[j]
            d = origin[j].astype(jnp.int32) + carry
            if stride <= block - 1:  # offsets reach this digit (stride fits int32 then)
                d = d + (offsets // jnp.int32(stride)) % jnp.int32(size)
            carry = d // jnp.int32(size)
            digits[j] = d - carry * jnp.int32(size)
        out = jnp.stack(digits, axis=-1)
        last = jnp.asarray([s - 1 for s in self.shape], jnp.int32)
        return jnp.where((offsets < n_valid)[:, None], out, last)

    def grid_block(self, origin: jax.Array, block_shape: Sequence[int]) -> jax.Array:
        """Digits of the N-D block ``origin + [0, block_shape)``, C order, ``(prod, ndim)``.

        Positions past the grid's edge (a ragged last block) are clipped to
        the edge, so they repeat real points.
        """
        if len(block_shape) != len(self.shape):
            raise ValueError(f"block_shape must have {len(self.shape)} entries, got {block_shape}")
        axes = [
            jnp.minimum(origin[j].astype(jnp.int32) + jnp.arange(b, dtype=jnp.int32), s - 1)
            for j, (b, s) in enumerate(zip(block_shape, self.shape, strict=True))
        ]
        mesh = jnp.meshgrid(*axes, indexing="ij")
        return jnp.stack([m.reshape(-1) for m in mesh], axis=-1)

"""GridIndex: exact flat <-> grid arithmetic on the host and int32-only inside jit."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labeled_spaces import GridAxis, Space
from labeled_spaces.grid_index import GridIndex

BIG = (10**5, 10**5)  # 1e10 combinations, far beyond int32


def test_basic_properties():
    grid = GridIndex((4, 3, 2))
    assert grid.N == 24
    assert grid.strides == (6, 2, 1)
    assert grid.shape == (4, 3, 2)
    assert grid == GridIndex([4, 3, 2])
    assert grid != GridIndex((4, 6))
    assert hash(grid) == hash(GridIndex((4, 3, 2)))
    assert repr(grid) == "GridIndex(shape=(4, 3, 2))"


@pytest.mark.parametrize("shape", [(1,), (7,), (4, 3), (2, 1, 5), (3, 4, 2, 2)])
def test_unravel_ravel_round_trip_matches_numpy(shape):
    grid = GridIndex(shape)
    for flat in range(grid.N):
        digits = grid.unravel(flat)
        assert digits == tuple(int(d) for d in np.unravel_index(flat, shape))
        assert grid.ravel(digits) == flat
    # C order: the last dimension runs fastest
    assert [grid.unravel(i) for i in range(grid.N)] == list(
        itertools.product(*(range(s) for s in shape))
    )
    many = grid.unravel_many(np.arange(grid.N))
    assert many.shape == (grid.N, len(shape))
    assert np.array_equal(many, np.stack(np.unravel_index(np.arange(grid.N), shape), -1))


def test_host_arithmetic_is_exact_for_huge_grids():
    grid = GridIndex((2**29, 2**29, 2**29))  # 2**87 combinations
    assert grid.N == 2**87
    flat = 2**87 - 12345
    digits = grid.unravel(flat)
    assert digits == (2**29 - 1, 2**29 - 1, 2**29 - 12345)
    assert grid.ravel(digits) == flat
    assert grid.origin(2**58 + 3).tolist() == [1, 0, 3]
    assert grid.origin(2**58 + 3).dtype == np.int32
    with pytest.raises(OverflowError, match="exceeds int64"):
        grid.unravel_many(np.array([0]))


@pytest.mark.parametrize("shape", [(), (0, 3), (3, -1), (2**30,)])
def test_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape must hold sizes in"):
        GridIndex(shape)


def test_flat_block_under_jit_matches_numpy_for_random_starts():
    shape = (5, 7, 3)
    grid = GridIndex(shape)
    block = 16
    fn = jax.jit(lambda o, n: grid.flat_block(o, n, block))
    rng = np.random.default_rng(0)
    starts = [0, grid.N - block, grid.N - 1, *rng.integers(0, grid.N, 20).tolist()]
    for start in starts:
        n_valid = min(block, grid.N - start)
        got = np.asarray(fn(grid.origin(start), n_valid))
        assert got.dtype == np.int32
        assert got.shape == (block, 3)
        flat = np.arange(start, start + n_valid)
        want = np.stack(np.unravel_index(flat, shape), -1)
        assert np.array_equal(got[:n_valid], want)
        # padding lanes repeat the last combination of the grid
        assert np.array_equal(got[n_valid:], np.tile([4, 6, 2], (block - n_valid, 1)))


def test_flat_block_with_block_larger_than_inner_strides():
    shape = (3, 2, 2)
    grid = GridIndex(shape)
    got = np.asarray(jax.jit(lambda o: grid.flat_block(o, 12, 12))(grid.origin(0)))
    assert got.tolist() == [list(d) for d in itertools.product(range(3), range(2), range(2))]


def test_flat_block_beyond_int32_exact_with_x64_off():
    assert not jax.config.jax_enable_x64
    grid = GridIndex(BIG)
    assert grid.N == 10**10
    block = 8
    fn = jax.jit(lambda o, n: grid.flat_block(o, n, block))
    starts = [2**31 - 3, 2**31, 2**32 + 99_999, 2**33 + 12345, 10**10 - 5, 10**10 - block]
    for start in starts:
        n_valid = min(block, grid.N - start)
        got = np.asarray(fn(grid.origin(start), n_valid))
        flat = np.arange(start, start + n_valid, dtype=np.int64)
        want = np.stack(np.unravel_index(flat, BIG), -1)
        assert np.array_equal(got[:n_valid], want)
        assert np.array_equal(got[n_valid:], np.tile([10**5 - 1] * 2, (block - n_valid, 1)))
        assert [grid.ravel(d) for d in got[:n_valid].tolist()] == list(
            range(start, start + n_valid)
        )


def test_flat_block_carry_across_row_boundary():
    grid = GridIndex(BIG)
    start = 3 * 10**5 - 2  # last two points of row 2, then row 3
    got = np.asarray(grid.flat_block(jnp.asarray(grid.origin(start)), 4, 4))
    assert got.tolist() == [[2, 99_998], [2, 99_999], [3, 0], [3, 1]]


def test_grid_block_under_jit_and_ragged_edges():
    shape = (5, 4)
    grid = GridIndex(shape)
    fn = jax.jit(lambda o: grid.grid_block(o, (2, 3)))
    full = np.asarray(fn(np.asarray([1, 0], np.int32)))
    assert full.tolist() == [[1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]]
    ragged = np.asarray(fn(np.asarray([4, 2], np.int32)))
    # rows past 4 and columns past 3 are clipped to the edge: they repeat real points
    assert ragged.tolist() == [[4, 2], [4, 3], [4, 3], [4, 2], [4, 3], [4, 3]]
    with pytest.raises(ValueError, match="block_shape must have 2 entries"):
        grid.grid_block(np.zeros(2, np.int32), (2,))


def test_grid_block_under_jit_matches_numpy_for_random_origins():
    shape, block_shape = (5, 7, 3), (2, 3, 2)
    grid = GridIndex(shape)
    fn = jax.jit(lambda o: grid.grid_block(o, block_shape))
    rng = np.random.default_rng(1)
    for _ in range(15):
        origin = np.array([rng.integers(0, s) for s in shape], np.int32)
        got = np.asarray(fn(origin))
        want = [
            [min(int(o) + d, s - 1) for o, d, s in zip(origin, offset, shape, strict=True)]
            for offset in itertools.product(*(range(b) for b in block_shape))
        ]
        assert got.tolist() == want
        flat = np.ravel_multi_index(got.T, shape)
        assert flat.tolist() == [grid.ravel(d) for d in want]


def test_grid_block_beyond_int32():
    grid = GridIndex(BIG)
    origin = grid.origin(99_998 * 10**5 + 99_999)  # row 99998, last column
    assert origin.tolist() == [99_998, 99_999]
    got = np.asarray(grid.grid_block(jnp.asarray(origin), (3, 2)))
    assert got.tolist() == [[99_998, 99_999]] * 2 + [[99_999, 99_999]] * 4
    flat = [grid.ravel(d) for d in got.tolist()]
    assert flat[0] == 9_999_899_999 and flat[-1] == 10**10 - 1


def test_space_of_1e10_combinations_indexes_exactly():
    space = Space({"a": GridAxis(0.0, 1.0, 10**5), "b": GridAxis(-1.0, 0.0, 10**5)}, mode="product")
    assert len(space) == space.N == 10**10
    a = np.asarray(jnp.linspace(0.0, 1.0, 10**5))
    b = np.asarray(jnp.linspace(-1.0, 0.0, 10**5))
    for i in [2**31 + 7, 2**33 + 12345, 10**10 - 1, -1, -(2**32)]:
        j = i % 10**10
        point = space[i]
        assert point["a"] == a[j // 10**5] and point["b"] == b[j % 10**5]
    start, block = 85_899 * 10**5 + 99_997, 6  # > 2**33, crosses a row
    fn = jax.jit(lambda t, o, n: space.block_params(t, o, n, block))
    out = fn(space.device_tables(), space.index.origin(start), block)
    rows, cols = np.unravel_index(np.arange(start, start + block, dtype=np.int64), BIG)
    assert np.array_equal(np.asarray(out["a"]), a[rows])
    assert np.array_equal(np.asarray(out["b"]), b[cols])
    assert rows.tolist() == [85899, 85899, 85899, 85900, 85900, 85900]

"""The grid: exact flat <-> grid arithmetic on the host, blocks, and int32-only block values."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labeled_spaces import GridAxis, Space
from labeled_spaces.grid import Blocks, assign_dims, block_positions, block_shape, block_values
from labeled_spaces.grid import Grid as GridIndex

BIG = (10**5, 10**5)  # 1e10 combinations, far beyond int32


def test_basic_properties():
    grid = GridIndex((4, 3, 2))
    assert grid.N == 24
    assert grid.strides == (6, 2, 1)
    assert grid.shape == (4, 3, 2)
    assert grid == GridIndex([4, 3, 2])
    assert grid != GridIndex((4, 6))
    assert hash(grid) == hash(GridIndex((4, 3, 2)))
    assert repr(grid) == "Grid(shape=(4, 3, 2))"


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


@pytest.mark.parametrize("shape", [(0, 3), (3, -1), (2**30,)])
def test_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape must hold sizes in"):
        GridIndex(shape)


def test_the_grid_of_a_single_point():
    # shape (): a space selected down to one combination (issue 16; () was refused before)
    grid = GridIndex(())
    assert (grid.N, grid.unravel(0), grid.ravel(()), grid.origin(0).shape) == (1, (), 0, (0,))
    assert grid.unravel_many(np.array([0])).shape == (1, 0)
    assert block_shape((), 100, 4) == ((), ())
    blocks = Blocks.plan((), lanes=100, multiple=4)
    assert len(blocks) == 1 and list(blocks) == [blocks[0]] and blocks.index_of(()) == 0
    block = blocks[0]
    assert (block.origin, block.extent, block.region, block.start, block.size) == (
        (), (), (), 0, 1)
    assert blocks.flat_indices(block) == [0]
    for done, want in (([0], True), ([], False), (np.array(True), True)):
        mask = blocks.done_mask(done)
        assert mask.shape == () and bool(mask) is want
    assert block_values([], [], (), np.zeros(0, np.int32), ()) == []
    assert assign_dims("zip", "sample", [], [], []) == ((), ())


def _digits(positions):
    """Lane digits of an N-D block from its per-dimension positions (C order)."""
    mesh = np.meshgrid(*[np.asarray(p) for p in positions], indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=-1)


def test_block_positions_under_jit_and_ragged_edges():
    shape = (5, 4)
    fn = jax.jit(lambda o: block_positions(o, (2, 3), shape))
    full = _digits(fn(np.asarray([1, 0], np.int32)))
    assert full.tolist() == [[1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]]
    ragged = _digits(fn(np.asarray([4, 2], np.int32)))
    # rows past 4 and columns past 3 are clipped to the edge: they repeat real points
    assert ragged.tolist() == [[4, 2], [4, 3], [4, 3], [4, 2], [4, 3], [4, 3]]
    assert all(p.dtype == jnp.int32 for p in fn(np.asarray([4, 2], np.int32)))


def test_block_positions_under_jit_match_numpy_for_random_origins():
    shape, block_shape_ = (5, 7, 3), (2, 3, 2)
    grid = GridIndex(shape)
    fn = jax.jit(lambda o: block_positions(o, block_shape_, shape))
    rng = np.random.default_rng(1)
    for _ in range(15):
        origin = np.array([rng.integers(0, s) for s in shape], np.int32)
        got = _digits(fn(origin))
        want = [
            [min(int(o) + d, s - 1) for o, d, s in zip(origin, offset, shape, strict=True)]
            for offset in itertools.product(*(range(b) for b in block_shape_))
        ]
        assert got.tolist() == want
        flat = np.ravel_multi_index(got.T, shape)
        assert flat.tolist() == [grid.ravel(d) for d in want]


def test_block_positions_beyond_int32():
    grid = GridIndex(BIG)
    origin = grid.origin(99_998 * 10**5 + 99_999)  # row 99998, last column
    assert origin.tolist() == [99_998, 99_999]
    got = _digits(block_positions(jnp.asarray(origin), (3, 2), BIG))
    assert got.tolist() == [[99_998, 99_999]] * 2 + [[99_999, 99_999]] * 4
    flat = [grid.ravel(d) for d in got.tolist()]
    assert flat[0] == 9_999_899_999 and flat[-1] == 10**10 - 1


@pytest.mark.parametrize("shape", [(1,), (7,), (4, 3), (2, 1, 5), (3, 4, 2, 2), (10, 10)])
@pytest.mark.parametrize("lanes", [1, 2, 3, 7, 8, 25, 1000])
def test_blocks_tile_the_grid_once_as_contiguous_runs(shape, lanes):
    blocks = Blocks.plan(shape, lanes)
    cover = np.zeros(shape, dtype=int)
    starts = []
    for k, block in enumerate(blocks):
        assert block.index == k == blocks.index_of(block.origin)
        assert blocks[k] == block
        cover[block.region] += 1
        # a block is a contiguous run of the flat index, starting at block.start
        flat = blocks.flat_indices(block)
        assert flat == list(range(block.start, block.start + block.size))
        starts.append(block.start)
    assert (cover == 1).all()
    assert starts == sorted(starts)  # blocks come in flat order
    assert blocks.done_mask(list(range(len(blocks)))).all()
    assert not blocks.done_mask([]).any()


def test_done_mask_and_block_lookup():
    blocks = Blocks((5, 3), (2, 3))
    assert len(blocks) == 3 and blocks.counts == (3, 1)
    mask = blocks.done_mask([1])
    assert mask.tolist() == [[False] * 3] * 2 + [[True] * 3] * 2 + [[False] * 3]
    per_block = np.array([[True], [False], [True]])
    assert blocks.done_mask(per_block)[:, 0].tolist() == [True, True, False, False, True]
    assert blocks[-1].origin == (4, 0) and blocks[-1].extent == (1, 3)
    with pytest.raises(IndexError, match="block 3 is out of range for 3 blocks"):
        blocks[3]
    with pytest.raises(ValueError, match="step must hold one block size"):
        Blocks((5, 3), (2, 4))


def test_block_values_gather_each_axis_along_its_dimension():
    a, b = np.arange(5.0), np.array([10.0, 20.0, 30.0])
    fn = jax.jit(lambda o: block_values([a, b, a], [0, 1, 0], (5, 3), o, (2, 3)))
    va, vb, va2 = (np.asarray(v) for v in fn(np.asarray([3, 0], np.int32)))
    assert va.tolist() == [3.0, 3.0, 3.0, 4.0, 4.0, 4.0] == va2.tolist()
    assert vb.tolist() == [10.0, 20.0, 30.0] * 2


def test_space_of_1e10_combinations_indexes_exactly():
    space = Space({"a": GridAxis(0.0, 1.0, 10**5), "b": GridAxis(-1.0, 0.0, 10**5)}, mode="product")
    assert len(space) == space.N == 10**10
    a = np.asarray(jnp.linspace(0.0, 1.0, 10**5))
    b = np.asarray(jnp.linspace(-1.0, 0.0, 10**5))
    for i in [2**31 + 7, 2**33 + 12345, 10**10 - 1, -1, -(2**32)]:
        j = i % 10**10
        point = space[i]
        assert point["a"] == a[j // 10**5] and point["b"] == b[j % 10**5]
    start = 85_899 * 10**5 + 99_997  # > 2**33, at the end of a row: the block is ragged
    layout = space.layout
    fn = jax.jit(lambda t, o: layout.assemble(layout.block_values(t, o, (2, 3))))
    out = fn(layout.device_tables(), layout.grid.origin(start))
    rows = np.array([85899, 85899, 85899, 85900, 85900, 85900])
    cols = np.array([99_997, 99_998, 99_999] * 2)
    assert np.array_equal(np.asarray(out["a"]), a[rows])
    assert np.array_equal(np.asarray(out["b"]), b[cols])
    assert [layout.grid.ravel(d) for d in zip(rows, cols, strict=True)][:3] == [
        start, start + 1, start + 2]

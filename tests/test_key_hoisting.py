"""A block's keys are folded once per point of their dimensions, bit for bit as lane by lane.

``Layout.block_values`` hands the compiled block each key leaf's keys
already folded (``KeyPlan.block_keys``): a ``KeyAxis`` once per replicate of
the block, a ``PointKey``'s first fold once per point of its first
dimension. These tests hold them to the keys folded lane by lane from the
lane's positions (``KeyPlan.make``), over random grids, blocks, origins,
sub-spaces and both kinds of key, and count the hashes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labeled_spaces as ls


def _keys_of_both_ways(layout: ls.space.Layout, origin, block) -> tuple[list, list]:
    """Per key leaf, its keys over the block: hoisted, and folded lane by lane."""
    values = layout.block_values(layout.device_tables(), np.asarray(origin, np.int32), block)
    n_lanes = len(layout.lane_tables)
    assert len(values) == n_lanes + len(layout.keys.leaves)
    hoisted, by_lane = list(layout.leaves), list(layout.leaves)
    layout.keys.make(values[:n_lanes], hoisted, values[n_lanes:])
    layout.keys.make(values[:n_lanes], by_lane)
    positions = [leaf.position for leaf in layout.keys.leaves]
    return [hoisted[p] for p in positions], [by_lane[p] for p in positions]


def _data(key: jax.Array) -> np.ndarray:
    return np.asarray(jax.random.key_data(key) if jnp.issubdtype(
        key.dtype, jax.dtypes.prng_key) else key)


@st.composite
def _spaces_and_blocks(draw):
    ndim = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 5)) for _ in range(ndim)]
    state: dict = {f"x{j}": ls.GridAxis(0.0, 1.0, n) for j, n in enumerate(sizes)}
    replicate_dim = draw(st.integers(0, ndim - 1))
    state[f"x{replicate_dim}"] = ls.KeyAxis(sizes[replicate_dim], name=f"x{replicate_dim}")
    state["noise"] = ls.PointKey()
    raw = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    key = jax.random.PRNGKey(seed) if raw else jax.random.key(seed)
    space = ls.Space(state, mode="product", key=key)
    block = tuple(draw(st.integers(1, n)) for n in sizes)
    # ragged blocks too: positions past the edge repeat it
    origin = tuple(draw(st.integers(0, n - 1)) for n in sizes)
    return space, origin, block


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spaces_and_blocks())
def test_hoisted_keys_are_the_keys_folded_lane_by_lane(case):
    space, origin, block = case
    hoisted, by_lane = _keys_of_both_ways(space.layout, origin, block)
    for a, b in zip(hoisted, by_lane, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.shape[0] == math.prod(block)
        np.testing.assert_array_equal(_data(a), _data(b))


@pytest.mark.parametrize("select", [
    {"a": 1},                              # a fixed dimension: a fixed fold
    {"a": slice(1, 3), "b": [4, 0, 2]},    # positions kept from the full space
    {"b": np.array([3, 1])},
])
def test_hoisted_keys_of_a_sub_space_are_its_keys_folded_lane_by_lane(select):
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 4), "b": ls.KeyAxis(5, name="b"),
                      "k": ls.PointKey()}, mode="product", key=jax.random.key(7))
    sub = space.isel(**select)
    shape = sub.layout.shape
    hoisted, by_lane = _keys_of_both_ways(sub.layout, (0,) * len(shape), shape)
    for a, b in zip(hoisted, by_lane, strict=True):
        np.testing.assert_array_equal(_data(a), _data(b))


def test_hoisted_keys_of_a_zip_space_and_a_single_point():
    zipped = ls.Space({"a": ls.GridAxis(0.0, 1.0, 6), "k": ls.PointKey()}, mode="zip")
    hoisted, by_lane = _keys_of_both_ways(zipped.layout, (2,), (4,))
    np.testing.assert_array_equal(_data(hoisted[0]), _data(by_lane[0]))
    point = ls.Space({"a": 1.0, "k": ls.PointKey(), "r": ls.KeyAxis(1)}, mode="product")
    hoisted, by_lane = _keys_of_both_ways(point.layout, (0,), (1,))
    for a, b in zip(hoisted, by_lane, strict=True):
        np.testing.assert_array_equal(_data(a), _data(b))


def _folded(jaxpr) -> list[int]:
    """The number of keys each fold of a (nested) jaxpr hashes.

    A fold is JAX's ``fold_in`` (its key's shape counts) or the package's own
    Threefry of the hoisted keys (one named call; its output's shape counts).
    """
    sizes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "random_fold_in":
            sizes.append(math.prod(eqn.invars[0].aval.shape))
            continue
        if eqn.params.get("name") == "_threefry2x32":
            sizes.append(math.prod(eqn.outvars[0].aval.shape))
            continue
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", None)
            if inner is not None:
                sizes += _folded(getattr(inner, "jaxpr", inner))
    return sizes


def test_a_block_hashes_each_fold_once_per_point_of_its_dimensions_so_far():
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 8), "r": ls.KeyAxis(16, name="rep"),
                      "k": ls.PointKey()}, mode="product")
    layout = space.layout
    jaxpr = jax.make_jaxpr(lambda tables, origin: layout.block_values(tables, origin, (8, 16)))(
        layout.device_tables(), np.zeros(2, np.int32))
    # the KeyAxis: its 16 replicates; the PointKey: 8 points of "a", then all 128 lanes
    # (lane by lane: 128 for the KeyAxis and 2 x 128 for the PointKey)
    assert sorted(_folded(jaxpr.jaxpr)) == [8, 16, 128]


def test_a_run_gives_the_keys_of_the_combinations_whatever_the_block():
    def model(state):
        return {"bits": jax.random.bits(state["k"], (2,)), "draw": jax.random.bits(state["r"])}

    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "r": ls.KeyAxis(5, name="rep"),
                      "k": ls.PointKey()}, mode="product", key=jax.random.key(3))
    ds = ls.ParallelExecution(model, space, chunk_size=4, n_vmap=2, progress=False).run() \
        .to_xarray()
    for i in range(space.N):
        point = space[i]
        a, r = np.unravel_index(i, space.layout.shape)
        np.testing.assert_array_equal(ds["bits"].values[a, r], jax.random.bits(point["k"], (2,)))
        assert int(ds["draw"].values[a, r]) == int(jax.random.bits(point["r"]))


def test_a_program_that_passes_other_replicate_numbers_gets_their_keys_in_every_executor():
    from labeled_spaces.execution.program import Labels, Program

    def first_replicate(call, axis_values, state_arrays, extra_arrays):
        values = list(axis_values)
        values[1] = jnp.zeros_like(values[1])  # the KeyAxis: replicate 0 for every lane
        return call(values, state_arrays, extra_arrays)

    program = Program(first_replicate, lambda names, shapes: Labels())
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 2), "r": ls.KeyAxis(3, name="rep"),
                      "k": ls.PointKey()}, mode="product")

    def model(state):
        return {"draw": jax.random.bits(state["r"]), "point": jax.random.bits(state["k"])}

    runs = [ex(model, space, program=program, progress=False).run().to_xarray()
            for ex in (ls.ParallelExecution, ls.SequentialExecution)]
    for ds in runs:
        assert (ds["draw"].values == ds["draw"].values[0, 0]).all()
        assert len(np.unique(ds["point"].values)) == space.N
    np.testing.assert_array_equal(runs[0]["point"].values, runs[1]["point"].values)


def test_the_compiled_block_folds_its_keys_before_its_lanes_run():
    from labeled_spaces.execution.compiled import PreparedModel
    from labeled_spaces.execution.kernel import block_program

    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 8), "r": ls.KeyAxis(16, name="rep"),
                      "k": ls.PointKey()}, mode="product")
    prepared = PreparedModel(
        lambda s: jax.random.bits(s["r"]) + jax.random.bits(s["k"]), space.layout, (), {})
    program = block_program(prepared.call, space.layout, (8, 16), None, 1)
    jaxpr = jax.make_jaxpr(program)(space.layout.device_tables(), prepared.state_arrays,
                                    prepared.extra_arrays, np.zeros(2, np.int32))
    # folded lane by lane, the lanes' program would hold folds of one key each
    assert sorted(_folded(jaxpr.jaxpr)) == [8, 16, 128]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
                      min_size=1, max_size=4),
       positions=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=5))
def test_the_hoisted_fold_is_jax_fold_in_bit_for_bit(words, positions):
    # the hoisted folds hash the two words of the keys as separate arrays; every key data
    # and every int32 position (negative ones wrap to uint32 in fold_in) must agree
    from labeled_spaces.space.key_leaves import _fold_data

    data = np.asarray(words, np.uint32).reshape(-1, 1, 2)
    ps = np.asarray(positions, np.int32).reshape(1, -1)
    got = np.asarray(_fold_data(jnp.asarray(data), jnp.asarray(ps)))
    want = np.asarray(jax.vmap(jax.vmap(
        lambda d, p: jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(d), p)),
        (None, 0)), (0, None))(data[:, 0], ps[0]))
    assert got.shape == (len(words), len(positions), 2)
    np.testing.assert_array_equal(got, want)
    # a position that is a Python int (a dimension a sub-space fixed) folds the same way
    np.testing.assert_array_equal(
        np.asarray(_fold_data(jnp.asarray(data[:1]), jnp.asarray(positions[0]))),
        want[:1, :1])

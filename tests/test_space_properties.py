"""Property tests: space[i], to_xarray() and block_params agree on random spaces."""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeled_spaces import DataAxis, GridAxis, Space, UniformAxis

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def axis_specs(draw, k: int):
    """One axis description: (kind, size, value shape, group)."""
    kind = draw(st.sampled_from(["grid", "uniform", "data-float", "data-int", "data-labels"]))
    size = draw(st.integers(1, 6))
    # few distinct value shapes: JAX compiles its eager ops once per shape
    shape = draw(st.sampled_from([(), (), (2,), (3, 2)]))
    group = draw(st.sampled_from([None, None, "g0", "g1"]))
    return kind, size, shape, group, k


def make_axis(kind: str, size: int, shape: tuple[int, ...], group: str | None, k: int):
    if kind == "grid":
        return GridAxis(float(k), float(k) + 1.0, size, shape=shape or None, group=group)
    if kind == "uniform":
        return UniformAxis(-1.0, float(k) + 1.0, size, shape=shape or None, group=group)
    count = size * math.prod(shape)
    # device arrays (device_put compiles nothing; jnp.asarray of a new shape would)
    if kind == "data-int":
        values = (np.arange(count, dtype=np.int32) + 100 * k).reshape(size, *shape)
        return DataAxis(jax.device_put(values), group=group)
    values = jax.device_put((np.arange(count, dtype=np.float32) / 7 + k).reshape(size, *shape))
    if kind == "data-labels":
        return DataAxis(values, labels=[f"p{k}-{j}" for j in range(size)], group=group)
    return DataAxis(values, group=group)


@st.composite
def spaces(draw):
    n_axes = draw(st.integers(1, 4))
    specs = [draw(axis_specs(k)) for k in range(n_axes)]
    mode = draw(st.sampled_from(["product", "zip"]))
    state = {f"a{k}": make_axis(*spec) for k, spec in enumerate(specs)}
    if draw(st.booleans()):
        state["fixed"] = 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unequal sizes in zip mode / groups
        space = Space(state, mode=mode)
    return space, specs, mode


def expected_len(specs, mode: str) -> int:
    groups: dict[str, list[int]] = {}
    effective = []
    for _, size, _, group, _ in specs:
        if group is None:
            effective.append(size)
        else:
            groups.setdefault(group, []).append(size)
    effective += [min(sizes) for sizes in groups.values()]
    return math.prod(effective) if mode == "product" else min(effective)


@SETTINGS
@given(spaces())
def test_len_and_shape(drawn):
    space, specs, mode = drawn
    assert len(space) == space.N == expected_len(specs, mode)
    assert math.prod(space.shape) == len(space)
    assert tuple(space.sizes.values()) == space.shape
    if mode == "zip":
        assert space.dims == ("sample",)
    else:
        n_groups = len({g for *_, g, _ in specs if g is not None})
        assert len(space.dims) == n_groups + sum(g is None for *_, g, _ in specs)


@SETTINGS
@given(spaces())
def test_getitem_agrees_with_to_xarray(drawn):
    space, specs, _ = drawn
    ds = space.to_xarray()
    assert tuple(ds.sizes[d] for d in space.dims) == space.shape
    paths = [f"a{k}" for k in range(len(specs))]
    for i in range(len(space)):
        point = space[i]
        digits = np.unravel_index(i, space.shape)
        at = dict(zip(space.dims, (int(d) for d in digits), strict=True))
        for path, (_, _, shape, _, _) in zip(paths, specs, strict=True):
            var = ds[f"{path}_values" if path in ds.coords else path]
            label_value = var.isel(at).values
            assert label_value.shape == shape == np.shape(point[path])
            assert label_value.dtype == np.asarray(point[path]).dtype
            assert np.array_equal(label_value, point[path])
        if "fixed" in point:
            assert point["fixed"] == 0.25
    # iteration gives the same points in the same order
    for i, point in enumerate(space):
        if i in (0, len(space) - 1):
            for path in paths:
                assert np.array_equal(point[path], space[i][path])


@SETTINGS
@given(spaces(), st.data())
def test_block_values_agree_with_getitem(drawn, data):
    space, specs, _ = drawn
    layout = space.layout
    blocks = layout.blocks(data.draw(st.integers(1, 6)))
    block = blocks[data.draw(st.integers(0, len(blocks) - 1))]
    values = layout.block_values(layout.device_tables(), layout.grid.origin(block.start),
                                 blocks.compiled)
    out = layout.assemble([np.asarray(v) for v in values])  # index on the host, not per op
    for k in range(block.size):
        want = space[block.start + k]  # a block is a contiguous run of the flat index
        for j in range(len(specs)):
            path = f"a{j}"
            assert np.array_equal(out[path][k], want[path])
    if "fixed" in out:
        assert out["fixed"] == 0.25

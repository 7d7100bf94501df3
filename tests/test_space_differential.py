"""Differential tests: our Space against TVB-Optim 0.4.0's on the same states and keys.

TVB-Optim prints its warnings to stdout; that is expected here.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import tvboptim.types.spaces as tv

import labeled_spaces as ls


class Params(NamedTuple):
    gain: Any
    offset: Any


KEY = jax.random.key(11)

# name -> (state factory taking the axis module, mode). Most spaces have 6 combinations:
# TVB-Optim's arrays then share shapes, and JAX compiles each eager op only once.
STATES = {
    "flat-dict-product": (
        lambda m: {"a": m.GridAxis(0.0, 1.0, 3), "b": m.UniformAxis(-1.0, 1.0, 2), "dt": 0.01},
        "product",
    ),
    "nested-dict": (
        lambda m: {
            "coupling": {"G": m.GridAxis(0.0, 2.0, 3), "delay": m.DataAxis([1.0, 2.0])},
            "model": {"tau": m.UniformAxis(5.0, 10.0, 1), "n": 3},
            "noise": {"sigma": m.NumPyroAxis(dist.LogNormal(0.0, 1.0), 1)},
        },
        "product",
    ),
    "groups-product": (
        lambda m: {
            "a": m.GridAxis(0.0, 1.0, 3, group="g"),
            "b": m.UniformAxis(0.0, 1.0, 4, group="g"),
            "c": m.GridAxis(10.0, 20.0, 1),
            "d": m.DataAxis([7.0, 8.0], group="h"),
            "e": m.GridAxis(-1.0, 0.0, 2, group="h"),
        },
        "product",
    ),
    "groups-zip": (
        lambda m: {
            "a": m.GridAxis(0.0, 1.0, 6, group="g"),
            "b": m.UniformAxis(0.0, 1.0, 6, group="g"),
            "c": m.LogGridAxis(0.1, 10.0, 6),
        },
        "zip",
    ),
    "zip-unequal": (
        lambda m: {
            "a": m.GridAxis(0.0, 1.0, 6),
            "b": m.UniformAxis(0.0, 1.0, 8),
            "c": m.DataAxis([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        },
        "zip",
    ),
    "groups-zip-unequal": (
        lambda m: {
            "a": m.GridAxis(0.0, 1.0, 7, group="g"),
            "b": m.GridAxis(1.0, 2.0, 8, group="g"),
            "c": m.GridAxis(5.0, 6.0, 6),
        },
        "zip",
    ),
    "shape-axes-zip": (
        lambda m: {
            "g": m.GridAxis(0.0, 1.0, 4, shape=(2,)),
            "u": m.UniformAxis(0.0, 1.0, 4, shape=(2, 3)),
            "l": m.LogGridAxis(0.01, 1.0, 4, shape=(3,)),
            "w": m.DataAxis(np.arange(16.0).reshape(4, 2, 2)),
        },
        "zip",
    ),
    "numpyro-zip": (
        lambda m: {
            "x": m.NumPyroAxis(dist.Normal(0.0, 1.0), 3, sample_shape=(2,)),
            "y": m.NumPyroAxis(dist.Uniform(0.0, 2.0), 3, sample_shape=(2, 2), broadcast_mode=True),
            "z": m.NumPyroAxis(dist.Normal(jnp.array([0.0, 5.0]), 1.0), 3),
        },
        "zip",
    ),
    "lists": (
        lambda m: [m.GridAxis(0.0, 1.0, 3), {"gain": m.UniformAxis(0.0, 1.0, 2)}, 5.0],
        "product",
    ),
    "tuples-mixed": (
        lambda m: (
            Params(gain=m.GridAxis(0.5, 1.5, 3), offset=-1.0),
            [m.DataAxis([1, 2]), (1, m.GridAxis(0.0, 1.0, 1))],
            {"k": m.LogGridAxis(1.0, 100.0, 1), "s": "label"},
        ),
        "product",
    ),
    "loggrid": (
        lambda m: {"lr": m.LogGridAxis(1e-4, 1e-1, 3), "reg": m.LogGridAxis(0.01, 100.0, 2)},
        "product",
    ),
}

UNEQUAL_ZIP = {"zip-unequal", "groups-zip-unequal"}


def build(name: str) -> tuple[ls.Space, tv.Space]:
    make, mode = STATES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = ls.Space(make(ls), mode=mode, key=KEY)
    theirs = tv.Space(make(tv), mode=mode, key=KEY)
    return ours, theirs


def _frames_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in got.columns:
        if got[col].dtype == object:
            for a, b in zip(got[col], want[col], strict=True):
                assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
        else:
            pd.testing.assert_series_equal(got[col], want[col])


@pytest.mark.parametrize("name", list(STATES))
def test_len_indices_iteration_dataframe(name, assert_tree_equal):
    ours, theirs = build(name)
    n = len(ours)
    assert n == len(theirs) == ours.N == theirs.N
    # every index, and the negative ends
    for i in [*range(n), -1, -n]:
        assert_tree_equal(ours[i], theirs[i])
    # iteration order
    got, want = list(ours), list(theirs)
    assert len(got) == len(want) == n
    for a, b in zip(got, want, strict=True):
        assert_tree_equal(a, b)
    # to_dataframe
    if name in UNEQUAL_ZIP:
        with pytest.raises(ValueError):  # TVB-Optim's columns have different lengths here
            theirs.to_dataframe()
        assert len(ours.to_dataframe()) == n
    else:
        df_ours, df_theirs = ours.to_dataframe(), theirs.to_dataframe()
        if all(np.ndim(v) == 0 for v in jax.tree.leaves(ours[0])):
            pd.testing.assert_frame_equal(df_ours, df_theirs)
        _frames_equal(df_ours, df_theirs)


def slices_for(name: str, n: int) -> list[slice]:
    if name in UNEQUAL_ZIP:  # see test_zip_unequal_negative_slices_diverge_from_tvboptim
        return [slice(1, n + 5, 2), slice(None, 2)]
    return [slice(1, n + 5, 2), slice(-3, None), slice(n - 2, None, -3)]


@pytest.mark.parametrize("name", list(STATES))
def test_slices(name, assert_tree_equal):
    ours, theirs = build(name)
    for sl in slices_for(name, len(ours)):
        sub_ours, sub_theirs = ours[sl], theirs[sl]
        assert len(sub_ours) == len(sub_theirs) == len(range(len(ours))[sl])
        for a, b in zip(sub_ours, list(sub_theirs), strict=True):
            assert_tree_equal(a, b)


@pytest.mark.parametrize("name", ["groups-product", "tuples-mixed", "numpyro-zip"])
def test_collect(name, assert_tree_equal):
    ours, theirs = build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_tree_equal(ours.collect(), theirs.collect())
        kwargs = {"n_vmap": 2, "n_pmap": 2, "fill_value": -7.0, "combine": False}
        assert_tree_equal(ours.collect(**kwargs), theirs.collect(**kwargs))


def test_zip_unequal_dataframe_ours_works():
    ours, theirs = build("zip-unequal")
    df = ours.to_dataframe()
    assert len(df) == 6
    assert df["a"].tolist() == np.asarray(jnp.linspace(0.0, 1.0, 6)).tolist()
    assert df["c"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    with pytest.raises(ValueError):
        theirs.to_dataframe()


@pytest.mark.parametrize("name", sorted(UNEQUAL_ZIP))
def test_zip_unequal_negative_slices_diverge_from_tvboptim(name, assert_tree_equal):
    """Documented divergence: zip spaces whose axes have unequal sizes.

    TVB-Optim slices every axis table separately, so a slice with a negative
    bound or step pairs values that were never a combination (``a[-2:]`` with
    ``b[-2:]`` of different lengths). Ours selects the combinations
    ``range(N)[slice]``, as for every other space.
    """
    ours, theirs = build(name)
    n = len(ours)
    for sl in (slice(-2, None), slice(None, None, -1)):
        sub = ours[sl]
        positions = range(n)[sl]
        assert len(sub) == len(positions)
        for k, i in enumerate(positions):
            assert_tree_equal(sub[k], ours[i])
        # TVB-Optim's combinations here are not combinations of the original space
        original = [jax.tree.leaves(theirs[i]) for i in range(n)]
        sliced = [jax.tree.leaves(p) for p in theirs[sl]]
        assert any(
            not any(all(np.array_equal(a, b) for a, b in zip(s, o, strict=True)) for o in original)
            for s in sliced
        )


def test_product_over_shape_axes_fails_in_tvboptim_not_here(assert_tree_equal):
    state = {"g": ls.GridAxis(0.0, 1.0, 2, shape=(2,)), "u": ls.UniformAxis(0.0, 1.0, 3)}
    ours = ls.Space(state, mode="product", key=KEY)
    theirs = tv.Space(
        {"g": tv.GridAxis(0.0, 1.0, 2, shape=(2,)), "u": tv.UniformAxis(0.0, 1.0, 3)},
        mode="product",
        key=KEY,
    )
    with pytest.raises((ValueError, TypeError)):
        theirs[0]
    assert len(ours) == 6
    g = np.asarray(jnp.linspace(0.0, 1.0, 2))
    u = np.asarray(ls.UniformAxis(0.0, 1.0, 3).generate_values(jax.random.split(KEY, 3)[2]))
    for i in range(6):
        assert ours[i]["g"].tolist() == [g[i // 3]] * 2 and ours[i]["u"] == u[i % 3]


def test_getitem_accepts_numpy_integers_unlike_tvboptim(assert_tree_equal):
    ours, theirs = build("flat-dict-product")
    assert_tree_equal(ours[np.int64(5)], theirs[5])
    with pytest.raises(TypeError):
        theirs[np.int64(5)]

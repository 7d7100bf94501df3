"""Acceptance checks of API.md, "Designs (beyond the grid)": quasi-random designs and keys.

Written black-box from the contract, one group of tests per clause of the two
bullets "Quasi-random designs" and "Random keys per combination", then a few
things a user tries in their first hour with these features.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr
from scipy.stats import qmc

import labeled_spaces as ls

DESIGN_MODES = ("sobol", "halton", "lhs")


def kd(key) -> np.ndarray:
    """The integers of a key, typed or raw."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key))
    return np.asarray(key)


def same_key(a, b) -> bool:
    return np.array_equal(kd(a), kd(b))


def sobol_unit(n: int, d: int, key) -> np.ndarray:
    """scipy's scrambled Sobol' seeded as the package documents: a NumPy generator
    seeded by the key's integers (``Space.__doc__`` -> ``space.design.unit_design``)."""
    rng = np.random.default_rng(kd(key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return qmc.Sobol(d, scramble=True, rng=rng).random(n)


def unit_space(mode: str, n: int, d: int, key=None, **kw) -> ls.Space:
    """d UniformAxis(0, 1) axes: their design values are the unit columns (as float32)."""
    state = {f"u{j}": ls.UniformAxis(0.0, 1.0, n) for j in range(d)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ls.Space(state, mode=mode, key=key, **kw)


def columns(space: ls.Space, d: int) -> np.ndarray:
    return np.stack([np.asarray(space.coords[f"u{j}"].values, dtype=np.float64)
                     for j in range(d)], axis=1)


def one_per_stratum(col: np.ndarray, m: int) -> bool:
    """Exactly one of the first m values in each [k/m, (k+1)/m)."""
    cells = np.floor(np.asarray(col[:m], dtype=np.float64) * m).astype(int)
    return sorted(cells.tolist()) == list(range(m))


# ---------------------------------------------------------------- quasi-random designs


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_design_is_one_shared_dimension_named_sample_by_default(mode):
    space = unit_space(mode, 8, 3)
    assert space.dims == ("sample",)
    assert space.sizes == {"sample": 8}
    assert space.shape == (8,)
    assert len(space) == space.N == 8
    # as zip mode: every scalar axis is an indexed coordinate on the shared dimension
    for j in range(3):
        assert space.coords[f"u{j}"].dims == ("sample",)
    ds = space.to_xarray()
    assert ds.sizes["sample"] == 8
    for j in range(3):
        assert ds.indexes[f"u{j}"] is not None


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_design_dimension_named_by_dim(mode):
    space = unit_space(mode, 4, 2, dim="point")
    assert space.dims == ("point",)
    assert space.sizes == {"point": 4}
    res = ls.ParallelExecution(lambda s: s["u0"] + s["u1"], space, progress=False).run()
    assert res.to_xarray()["result"].dims == ("point",)


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_design_values_lie_in_bounds_and_are_not_a_grid(mode):
    space = ls.Space({"a": ls.GridAxis(2.0, 5.0, 16), "b": ls.UniformAxis(-1.0, 1.0, 16)},
                     mode=mode, key=jax.random.key(4))
    a = np.asarray(space.coords["a"].values)
    b = np.asarray(space.coords["b"].values)
    assert ((a >= 2.0) & (a <= 5.0)).all() and ((b >= -1.0) & (b <= 1.0)).all()
    # not the GridAxis's linspace nor the UniformAxis's own draws
    assert not np.allclose(np.sort(a), np.linspace(2.0, 5.0, 16))
    zipped = ls.Space({"a": ls.GridAxis(2.0, 5.0, 16), "b": ls.UniformAxis(-1.0, 1.0, 16)},
                      mode="zip", key=jax.random.key(4))
    assert not np.array_equal(b, np.asarray(zipped.coords["b"].values))


def test_sobol_points_are_scipy_scrambled_sobol_seeded_from_key():
    key = jax.random.key(11)
    space = unit_space("sobol", 16, 3, key=key)
    got = columns(space, 3)
    want = sobol_unit(16, 3, key).astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(got, want)


def test_sobol_points_are_a_scrambled_net():
    # scrambled Sobol' with n = 2**m: each column has one point per 1/n interval and the
    # first two columns form a (0, m, 2)-net (one point in every elementary box)
    n, m = 16, 4
    u = columns(unit_space("sobol", n, 3, key=jax.random.key(2)), 3)
    for j in range(3):
        assert one_per_stratum(u[:, j], n)
    for m1 in range(m + 1):
        cells = set(zip(np.floor(u[:, 0] * 2**m1).astype(int).tolist(),
                        np.floor(u[:, 1] * 2 ** (m - m1)).astype(int).tolist(), strict=True))
        assert len(cells) == n


def test_halton_points_are_scrambled_halton():
    # column j runs in the j-th prime base: the first b**k points fill each 1/b**k interval
    u = columns(unit_space("halton", 27, 3, key=jax.random.key(3)), 3)
    assert one_per_stratum(u[:, 0], 16)
    assert one_per_stratum(u[:, 1], 27)
    assert one_per_stratum(u[:, 1], 9)
    assert one_per_stratum(u[:, 2], 25)
    assert one_per_stratum(u[:, 2], 5)
    # scrambled: not the plain (unscrambled) Halton sequence, which starts at 0
    plain = qmc.Halton(3, scramble=False).random(27)
    assert not np.allclose(u, plain)
    assert not (u[0] == 0).all()


def test_lhs_points_are_a_latin_hypercube():
    n = 13
    u = columns(unit_space("lhs", n, 4, key=jax.random.key(5)), 4)
    for j in range(4):
        assert one_per_stratum(u[:, j], n)
    # not centred on the strata (scipy's default LatinHypercube jitters within them)
    assert not np.allclose((u * n) % 1, 0.5)


def test_design_beats_random_draws_on_discrepancy():
    # a low-discrepancy design has a lower discrepancy than the UniformAxis draws it replaces
    n, d = 256, 3
    for mode in DESIGN_MODES:
        u = columns(unit_space(mode, n, d, key=jax.random.key(1)), d)
        r = columns(unit_space("zip", n, d, key=jax.random.key(1)), d)
        assert qmc.discrepancy(u) < 0.5 * qmc.discrepancy(r)


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_design_is_one_joint_design_not_independent_columns(mode):
    # two axes of the same bounds must not get the same column (one joint design)
    space = unit_space(mode, 16, 2, key=jax.random.key(0))
    u = columns(space, 2)
    assert not np.array_equal(u[:, 0], u[:, 1])


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_same_key_same_points_bit_for_bit(mode):
    key = jax.random.key(42)
    state = {"a": ls.UniformAxis(0.0, 1.0, 8), "b": ls.LogGridAxis(1e-3, 1e2, 8),
             "z": ls.NumPyroAxis(dist.Normal(0.0, 1.0), 8, sample_shape=(2,)),
             "d": ls.DataAxis(np.arange(8.0) * 3)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        one = ls.Space(state, mode=mode, key=key)
        two = ls.Space(state, mode=mode, key=jax.random.key(42))
    for i in range(len(one)):
        for name in state:
            got, want = np.asarray(one[i][name]), np.asarray(two[i][name])
            assert got.dtype == want.dtype and np.array_equal(got, want)
    xr.testing.assert_identical(one.to_xarray(), two.to_xarray())


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_different_key_different_points(mode):
    one = columns(unit_space(mode, 8, 2, key=jax.random.key(1)), 2)
    two = columns(unit_space(mode, 8, 2, key=jax.random.key(2)), 2)
    assert not np.array_equal(one, two)
    # and key=None is jax.random.key(0)
    default = columns(unit_space(mode, 8, 2), 2)
    zero = columns(unit_space(mode, 8, 2, key=jax.random.key(0)), 2)
    np.testing.assert_array_equal(default, zero)


def test_one_column_per_axis_in_leaf_order():
    key = jax.random.key(9)
    state = {"b": ls.UniformAxis(0.0, 1.0, 8), "a": ls.GridAxis(0.0, 1.0, 8),
             "c": ls.LogGridAxis(1.0, 10.0, 8)}
    space = ls.Space(state, mode="sobol", key=key)
    u = sobol_unit(8, 3, key)
    # dict keys sorted: a, b, c take columns 0, 1, 2
    np.testing.assert_array_equal(np.asarray(space.coords["a"].values), np.float32(u[:, 0]))
    np.testing.assert_array_equal(np.asarray(space.coords["b"].values), np.float32(u[:, 1]))


def test_numpyro_sample_shape_takes_one_column_per_component():
    key = jax.random.key(6)
    n = 8
    state = {"a": ls.UniformAxis(0.0, 1.0, n),
             "z": ls.NumPyroAxis(dist.Normal(1.0, 2.0), n, sample_shape=(2, 3))}
    space = ls.Space(state, mode="sobol", key=key)
    u = sobol_unit(n, 1 + 6, key)
    want = np.asarray(dist.Normal(1.0, 2.0).icdf(jnp.asarray(u[:, 1:], jnp.float32)))
    for i in range(n):
        z = np.asarray(space[i]["z"])
        assert z.shape == (2, 3)
        np.testing.assert_allclose(z.reshape(6), want[i], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(space[i]["a"]), np.float32(u[i, 0]))
    # the components are not one column broadcast
    assert len(np.unique(np.asarray(space[0]["z"]))) == 6


def test_shape_axis_stays_one_column_broadcast():
    key = jax.random.key(7)
    n = 8
    state = {"a": ls.GridAxis(1.0, 3.0, n, shape=(3, 2)), "b": ls.UniformAxis(0.0, 1.0, n)}
    space = ls.Space(state, mode="sobol", key=key)
    u = sobol_unit(n, 2, key)  # two columns in all, not 7
    a_scalar = np.float32(1.0 + 2.0 * u[:, 0])
    np.testing.assert_array_equal(np.asarray(space.coords["a"].values), a_scalar)
    np.testing.assert_array_equal(np.asarray(space.coords["b"].values), np.float32(u[:, 1]))
    for i in range(n):
        a = np.asarray(space[i]["a"])
        assert a.shape == (3, 2)
        assert (a == a_scalar[i]).all()


def test_length_is_the_common_n_and_data_axis_counts_its_size():
    state = {"a": ls.UniformAxis(0.0, 1.0, 6), "d": ls.DataAxis(np.arange(6.0) * 10)}
    for mode in DESIGN_MODES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            space = ls.Space(state, mode=mode)
        assert len(space) == 6


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_different_n_is_a_value_error(mode):
    with pytest.raises(ValueError, match=r"\bn\b|size"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "b": ls.GridAxis(0.0, 1.0, 4)}, mode=mode)
    with pytest.raises(ValueError, match=r"\bn\b|size"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "d": ls.DataAxis(np.arange(5.0))}, mode=mode)


def test_uniform_and_grid_map_linearly():
    key = jax.random.key(12)
    state = {"g": ls.GridAxis(-2.0, 6.0, 16), "u": ls.UniformAxis(10.0, 11.0, 16)}
    space = ls.Space(state, mode="sobol", key=key)
    u = sobol_unit(16, 2, key)
    np.testing.assert_array_equal(np.asarray(space.coords["g"].values),
                                  np.float32(-2.0 + 8.0 * u[:, 0]))
    np.testing.assert_allclose(np.asarray(space.coords["u"].values),
                               np.float32(10.0 + 1.0 * u[:, 1]), rtol=1e-7)
    for i in (0, 5, 15):
        assert float(space[i]["g"]) == float(np.float32(-2.0 + 8.0 * u[i, 0]))


def test_log_grid_maps_in_log_space():
    key = jax.random.key(13)
    space = ls.Space({"k": ls.LogGridAxis(1e-3, 1e3, 16)}, mode="sobol", key=key)
    u = sobol_unit(16, 1, key)[:, 0]
    want = np.exp(np.log(1e-3) + (np.log(1e3) - np.log(1e-3)) * u)
    np.testing.assert_allclose(np.asarray(space.coords["k"].values), want, rtol=2e-7)
    # i.e. uniform in log10 between -3 and 3, not linear in value
    logs = np.log10(np.asarray(space.coords["k"].values, dtype=np.float64))
    assert one_per_stratum((logs + 3) / 6, 16)


def test_numpyro_axis_maps_through_icdf():
    key = jax.random.key(14)
    d = dist.Exponential(3.0)
    space = ls.Space({"e": ls.NumPyroAxis(d, 16)}, mode="halton", key=key)
    values = np.asarray(space.coords["e"].values, dtype=np.float64)
    # invert with the cdf: the unit points are a stratified scrambled Halton column
    u = 1.0 - np.exp(-3.0 * values)
    assert one_per_stratum(u, 16)
    key = jax.random.key(15)
    space = ls.Space({"e": ls.NumPyroAxis(d, 8)}, mode="sobol", key=key)
    want = np.asarray(d.icdf(jnp.asarray(sobol_unit(8, 1, key)[:, 0], jnp.float32)))
    np.testing.assert_allclose(np.asarray(space.coords["e"].values), want, rtol=1e-6)


class _NoIcdf(dist.Normal):
    def icdf(self, value):
        raise NotImplementedError


class _FailingIcdf(dist.Normal):
    def icdf(self, value):
        raise RuntimeError("boom")


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_distribution_without_icdf_is_a_value_error_naming_it(mode):
    # a distribution numpyro gives no icdf
    with pytest.raises(ValueError, match="Poisson"):
        ls.Space({"p": ls.NumPyroAxis(dist.Poisson(3.0), 8)}, mode=mode)


@pytest.mark.parametrize("cls", [_NoIcdf, _FailingIcdf])
def test_distribution_whose_icdf_fails_is_a_value_error_naming_it(cls):
    with pytest.raises(ValueError, match=cls.__name__):
        ls.Space({"p": ls.NumPyroAxis(cls(0.0, 1.0), 8), "a": ls.UniformAxis(0.0, 1.0, 8)},
                 mode="sobol")


def test_data_axis_takes_value_at_floor_u_times_size():
    key = jax.random.key(16)
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], dtype=np.float32)
    # a DataAxis of 8 rows, a UniformAxis of 8: the design has 8 points
    data = np.concatenate([values, values + 10])
    state = {"a": ls.UniformAxis(0.0, 1.0, 8), "d": ls.DataAxis(data)}
    space = ls.Space(state, mode="sobol", key=key)
    u = sobol_unit(8, 2, key)
    rows = np.floor(u[:, 1] * 8).astype(int)
    for i in range(8):
        np.testing.assert_array_equal(np.asarray(space[i]["d"]), data[rows[i]])


def test_data_axis_floor_is_equal_weights():
    # a Latin hypercube picks every row of a DataAxis exactly once (equal weights)
    data = np.arange(10.0) * 7
    space = ls.Space({"d": ls.DataAxis(data), "a": ls.UniformAxis(0.0, 1.0, 10)},
                     mode="lhs", key=jax.random.key(1))
    picked = sorted(float(space[i]["d"]) for i in range(10))
    assert picked == sorted(data.tolist())


def test_data_axis_labels_follow_the_picked_rows():
    data = np.arange(8.0) * 2
    labels = [f"s{k}" for k in range(8)]
    space = ls.Space({"d": ls.DataAxis(data, labels=labels), "a": ls.UniformAxis(0.0, 1.0, 8)},
                     mode="sobol", key=jax.random.key(3))
    coord = [str(v) for v in space.coords["d"].values]
    for i in range(8):
        assert coord[i] == f"s{int(float(space[i]['d']) / 2)}"


def test_sobol_n_not_power_of_two_warns():
    with pytest.warns(UserWarning, match="power of 2|power of two"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 10)}, mode="sobol")


def test_sobol_power_of_two_and_other_modes_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 16)}, mode="sobol")
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 10)}, mode="halton")
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 10)}, mode="lhs")


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_getitem_negative_and_out_of_range(mode):
    space = unit_space(mode, 8, 2, key=jax.random.key(1))
    assert float(space[-1]["u0"]) == float(space[7]["u0"])
    assert float(space[-8]["u1"]) == float(space[0]["u1"])
    with pytest.raises(IndexError):
        space[8]
    with pytest.raises(IndexError):
        space[-9]


def test_getitem_of_a_large_design_is_answered_without_size_n_work():
    # 2**20 points: every item equals the labels (built once); no per-item work of size N
    space = unit_space("halton", 2**20, 2, key=jax.random.key(1))
    coord = space.coords["u0"].values
    for i in (0, 12345, 2**20 - 1, -1):
        assert float(space[i]["u0"]) == float(coord[i])


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_space_items_equal_labels_and_to_xarray(mode):
    key = jax.random.key(21)
    state = {"a": ls.UniformAxis(0.0, 1.0, 8), "k": ls.LogGridAxis(0.1, 10.0, 8), "fixed": 3.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        space = ls.Space(state, mode=mode, key=key)
    ds = space.to_xarray()
    for i in range(8):
        item = space[i]
        assert item["fixed"] == 3.0
        assert float(item["a"]) == float(space.coords["a"].values[i])
        assert float(item["k"]) == float(space.coords["k"].values[i])
        assert isinstance(item["a"], jax.Array)
    assert set(ds.coords) >= {"sample", "a", "k"}


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_results_of_a_design_label_each_point(mode):
    space = unit_space(mode, 8, 2, key=jax.random.key(8))
    res = ls.ParallelExecution(lambda s: {"sum": s["u0"] + s["u1"]}, space, progress=False).run()
    ds = res.to_xarray()
    assert ds["sum"].dims == ("sample",)
    np.testing.assert_array_equal(ds["sum"].values,
                                  (ds["u0"].values + ds["u1"].values).astype(np.float32))
    # a scalar axis is an indexed coordinate on the shared dimension: sel by value works
    a3 = float(ds["u0"].values[3])
    assert float(res.sel(u0=a3)["sum"]) == float(ds["sum"].values[3])
    assert len(res) == 8
    assert float(res[5]["sum"]) == float(ds["sum"].values[5])


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_design_slice_is_zip_over_the_same_points_with_original_indices(mode):
    space = unit_space(mode, 8, 2, key=jax.random.key(8))
    sub = space[2:7:2]
    assert len(sub) == 3
    assert sub.coords["sample"].values.tolist() == [2, 4, 6]
    for j, i in enumerate((2, 4, 6)):
        assert float(sub[j]["u0"]) == float(space[i]["u0"])
        assert float(sub[j]["u1"]) == float(space[i]["u1"])
    with pytest.raises(ValueError):
        space[5:2]


def test_design_isel_and_sel_keep_points():
    space = unit_space("lhs", 8, 2, key=jax.random.key(8))
    sub = space.isel(sample=[1, 5])
    assert float(sub[1]["u1"]) == float(space[5]["u1"])
    label = float(space.coords["u0"].values[6])
    picked = space.sel(u0=label)
    assert float(picked[0]["u1"]) == float(space[6]["u1"])
    near = space.sel(u0=label + 1e-6, method="nearest")
    assert float(near[0]["u1"]) == float(space[6]["u1"])


def _design_state():
    return {"a": ls.UniformAxis(0.0, 2.0, 8, attrs={"units": "mV"}),
            "k": ls.LogGridAxis(1e-2, 1e2, 8, shape=(2,)),
            "z": ls.NumPyroAxis(dist.Normal(0.0, 1.0), 8, sample_shape=(2,)),
            "d": ls.DataAxis(np.arange(8.0) * 3, labels=[f"r{k}" for k in range(8)]),
            "dt": 0.1}


def _design_model(s, scale):
    return {"y": s["a"] * scale + s["k"].sum() + s["z"].sum() + s["d"] * s["dt"]}


@pytest.mark.parametrize("mode", DESIGN_MODES)
@pytest.mark.parametrize("fmt", ["zarr", "nc"])
def test_design_saved_and_rebuilt_by_open_results(tmp_path, mode, fmt):
    space = ls.Space(_design_state(), mode=mode, key=jax.random.key(31), dim="pt")
    if fmt == "zarr":
        path = tmp_path / "run.zarr"
        res = ls.ParallelExecution(_design_model, space, 2.0, store=str(path),
                                   progress=False, chunk_size=3).run()
    else:
        res = ls.ParallelExecution(_design_model, space, 2.0, progress=False).run()
        path = tmp_path / "run.nc"
        res.to_netcdf(str(path))
    back = ls.open_results(str(path))
    xr.testing.assert_equal(back.to_xarray().load(), res.to_xarray().load())
    rebuilt = back.space
    assert rebuilt.dims == ("pt",) and len(rebuilt) == 8
    for i in range(8):
        for name in ("a", "k", "z", "d"):
            got, want = np.asarray(rebuilt[i][name]), np.asarray(space[i][name])
            assert got.dtype == want.dtype and np.array_equal(got, want), (name, i)
        assert float(rebuilt[i]["dt"]) == 0.1
    assert rebuilt.coords["a"].attrs.get("units") == "mV"
    xr.testing.assert_identical(rebuilt.to_xarray(), space.to_xarray())


def test_design_store_resumes_and_refuses_another_key(tmp_path):
    path = str(tmp_path / "run.zarr")
    space = unit_space("sobol", 8, 2, key=jax.random.key(1))

    def model(s):
        return s["u0"] * s["u1"]

    first = ls.ParallelExecution(model, space, store=path, progress=False).run()
    again = ls.ParallelExecution(model, unit_space("sobol", 8, 2, key=jax.random.key(1)),
                                 store=path, progress=False).run()
    np.testing.assert_array_equal(first.to_xarray()["result"].values,
                                  again.to_xarray()["result"].values)
    with pytest.raises(ValueError):
        ls.ParallelExecution(model, unit_space("sobol", 8, 2, key=jax.random.key(2)),
                             store=path, progress=False).run()
    with pytest.raises(ValueError):
        ls.ParallelExecution(model, unit_space("halton", 8, 2, key=jax.random.key(1)),
                             store=path, progress=False).run()


def test_design_runs_the_same_under_sequential_and_parallel():
    space = ls.Space(_design_state(), mode="halton", key=jax.random.key(2))
    seq = ls.SequentialExecution(_design_model, space, 1.5, progress=False).run()
    par = ls.ParallelExecution(_design_model, space, 1.5, n_vmap=3, progress=False).run()
    np.testing.assert_array_equal(seq.to_xarray()["y"].values, par.to_xarray()["y"].values)


def test_group_is_one_column_shared_by_its_members():
    # a group is zipped into one dimension before the mode applies: its members move together
    state = {"a": ls.GridAxis(0.0, 1.0, 8, group="g"), "b": ls.GridAxis(10.0, 20.0, 8, group="g"),
             "c": ls.UniformAxis(0.0, 1.0, 8)}
    space = ls.Space(state, mode="sobol", key=jax.random.key(3))
    a = np.asarray(space.coords["a"].values, dtype=np.float64)
    b = np.asarray(space.coords["b"].values, dtype=np.float64)
    np.testing.assert_allclose(b, 10.0 + 10.0 * a, rtol=1e-5)


@pytest.mark.parametrize("bad", ["Sobol", "random", "grid", ""])
def test_unknown_mode_is_a_value_error_naming_mode(bad):
    with pytest.raises(ValueError, match="mode"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8)}, mode=bad)


# ---------------------------------------------------------------- KeyAxis


def test_key_axis_is_a_dimension_of_n_replicates():
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(4)}, mode="product")
    assert space.dims == ("k", "seed")
    assert space.sizes == {"k": 3, "seed": 4}
    assert len(space) == 12
    assert space.coords["seed"].values.tolist() == [0, 1, 2, 3]


def test_key_axis_name():
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "s": ls.KeyAxis(3, name="replicate")},
                     mode="product")
    assert space.dims == ("k", "replicate")
    assert space.coords["replicate"].values.tolist() == [0, 1, 2]
    positional = ls.Space({"s": ls.KeyAxis(2, "rep")}, mode="product")
    assert positional.dims == ("rep",)


@pytest.mark.parametrize("key", [None, jax.random.key(5)])
def test_key_r_is_fold_in_of_the_axis_key_from_the_split(key):
    # axes in leaf order: a (0), k (1), seed (2); axis i gets split(key, n_axes + 1)[i + 1]
    state = {"a": ls.UniformAxis(0.0, 1.0, 2), "k": ls.GridAxis(0.0, 1.0, 2),
             "seed": ls.KeyAxis(3)}
    space = ls.Space(state, mode="product", key=key)
    base = jax.random.key(0) if key is None else key
    axis_key = jax.random.split(base, 4)[3]
    for i in range(len(space)):
        r = i % 3
        assert same_key(space[i]["seed"], jax.random.fold_in(axis_key, r)), i
    # the UniformAxis draws with its own split key, as without the KeyAxis
    draws = jax.random.uniform(jax.random.split(base, 4)[1], (2,), minval=0.0, maxval=1.0)
    np.testing.assert_array_equal(np.asarray(space.coords["a"].values), np.asarray(draws))


def test_key_axis_with_raw_prng_key():
    key = jax.random.PRNGKey(9)
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "seed": ls.KeyAxis(3)}, mode="product",
                     key=key)
    axis_key = jax.random.split(key, 3)[2]
    for i in range(6):
        assert same_key(space[i]["seed"], jax.random.fold_in(axis_key, i % 3))


def test_key_axis_keys_do_not_depend_on_n():
    key = jax.random.key(3)
    small = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "seed": ls.KeyAxis(2)}, mode="product",
                     key=key)
    large = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "seed": ls.KeyAxis(7)}, mode="product",
                     key=key)
    for ik in range(2):
        for r in range(2):
            assert same_key(small[ik * 2 + r]["seed"], large[ik * 7 + r]["seed"])


def test_key_axis_is_shared_by_other_dimensions_common_random_numbers():
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(2),
                      "w": ls.UniformAxis(0.0, 1.0, 2)}, mode="product", key=jax.random.key(1))
    by_replicate: dict[int, list] = {}
    sizes = space.shape
    for i in range(len(space)):
        ik, r, iw = np.unravel_index(i, sizes)
        by_replicate.setdefault(int(r), []).append(kd(space[i]["seed"]))
    for keys in by_replicate.values():
        assert all(np.array_equal(keys[0], k) for k in keys)
    assert not np.array_equal(by_replicate[0][0], by_replicate[1][0])


def test_key_axis_in_zip_mode():
    key = jax.random.key(4)
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(3)}, key=key)
    axis_key = jax.random.split(key, 3)[2]
    for i in range(3):
        assert same_key(space[i]["seed"], jax.random.fold_in(axis_key, i))


@pytest.mark.parametrize("bad", [0, -2])
def test_key_axis_bad_n_is_a_value_error(bad):
    with pytest.raises(ValueError, match="n"):
        ls.KeyAxis(bad)


@pytest.mark.parametrize("bad", [2.5, "3", None])
def test_key_axis_non_integer_n_is_refused(bad):
    with pytest.raises((TypeError, ValueError), match="n"):
        ls.KeyAxis(bad)


# ---------------------------------------------------------------- PointKey


@pytest.mark.parametrize("key", [None, jax.random.key(7)])
def test_point_key_one_dimension_is_fold_in_of_the_space_key(key):
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 5), "noise": ls.PointKey()}, key=key)
    base = jax.random.key(0) if key is None else key
    assert space.dims == ("sample",) and len(space) == 5
    for i in range(5):
        assert same_key(space[i]["noise"], jax.random.fold_in(base, i))


def test_point_key_has_no_dimension_of_its_own_and_is_not_an_axis():
    key = jax.random.key(2)
    with_pk = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 3), "b": ls.GridAxis(0.0, 1.0, 2),
                        "noise": ls.PointKey()}, mode="product", key=key)
    without = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 3), "b": ls.GridAxis(0.0, 1.0, 2)},
                       mode="product", key=key)
    assert with_pk.dims == without.dims == ("a", "b")
    assert len(with_pk) == 6
    assert "noise" not in with_pk.dims
    # the random axis draws the same values: the PointKey takes no part in the split
    np.testing.assert_array_equal(with_pk.coords["a"].values, without.coords["a"].values)


def test_point_key_product_folds_positions_in_dimension_order():
    key = jax.random.key(8)
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(0.0, 1.0, 4),
                      "noise": ls.PointKey()}, mode="product", key=key)
    for i in range(12):
        ia, ib = divmod(i, 4)
        want = jax.random.fold_in(jax.random.fold_in(key, ia), ib)
        assert same_key(space[i]["noise"], want), i


def test_point_key_with_raw_prng_key():
    key = jax.random.PRNGKey(4)
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "noise": ls.PointKey()}, key=key)
    for i in range(3):
        assert same_key(space[i]["noise"], jax.random.fold_in(key, i))


def test_point_key_every_combination_differs():
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 4), "b": ls.GridAxis(0.0, 1.0, 4),
                      "noise": ls.PointKey()}, mode="product")
    keys = {tuple(kd(space[i]["noise"]).tolist()) for i in range(16)}
    assert len(keys) == 16


@pytest.mark.parametrize("mode", DESIGN_MODES)
def test_point_key_in_a_design_space(mode):
    key = jax.random.key(6)
    state = {"a": ls.UniformAxis(0.0, 1.0, 8), "noise": ls.PointKey()}
    space = ls.Space(state, mode=mode, key=key)
    plain = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8)}, mode=mode, key=key)
    np.testing.assert_array_equal(space.coords["a"].values, plain.coords["a"].values)
    for i in range(8):
        assert same_key(space[i]["noise"], jax.random.fold_in(key, i))


def test_point_key_nested_in_a_pytree():
    key = jax.random.key(3)
    state = {"model": {"noise": [ls.PointKey()], "g": ls.GridAxis(0.0, 1.0, 3)}}
    space = ls.Space(state, key=key)
    for i in range(3):
        assert same_key(space[i]["model"]["noise"][0], jax.random.fold_in(key, i))


def test_point_key_folds_group_and_axis_positions_in_dimension_order():
    key = jax.random.key(12)
    state = {"a": ls.GridAxis(0.0, 1.0, 3, group="g"), "b": ls.GridAxis(5.0, 6.0, 3, group="g"),
             "w": ls.UniformAxis(0.0, 1.0, 2), "noise": ls.PointKey()}
    space = ls.Space(state, mode="product", key=key)
    assert len(space.dims) == 2
    for i in range(len(space)):
        first, second = np.unravel_index(i, space.shape)
        want = jax.random.fold_in(jax.random.fold_in(key, int(first)), int(second))
        assert same_key(space[i]["noise"], want), i


def test_point_key_of_a_single_point_sub_space():
    key = jax.random.key(1)
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(0.0, 1.0, 4),
                      "noise": ls.PointKey()}, mode="product", key=key)
    point = space.isel(a=2, b=1)
    assert len(point) == 1
    assert same_key(point[0]["noise"], space[2 * 4 + 1]["noise"])
    ds = ls.SequentialExecution(lambda s: jax.random.key_data(s["noise"]), point,
                                progress=False).run().to_xarray()
    np.testing.assert_array_equal(ds["result"].values, kd(space[9]["noise"]))


def test_key_axis_in_a_group_zips_its_replicates():
    key = jax.random.key(2)
    state = {"k": ls.GridAxis(0.0, 1.0, 3, group="g"), "seed": ls.KeyAxis(3, group="g"),
             "w": ls.GridAxis(0.0, 1.0, 2)}
    space = ls.Space(state, mode="product", key=key)
    axis_key = jax.random.split(key, 4)[2]
    for i in range(6):
        ig, _ = np.unravel_index(i, space.shape)
        assert same_key(space[i]["seed"], jax.random.fold_in(axis_key, int(ig)))


# ---------------------------------------------------------------- original positions


def _keys_space(key=None):
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(2),
                     "noise": ls.PointKey()}, mode="product", key=key)


def test_slice_keeps_original_positions():
    space = _keys_space(jax.random.key(1))
    sub = space[1:6:2]
    for j, i in enumerate(range(1, 6, 2)):
        assert same_key(sub[j]["noise"], space[i]["noise"])
        assert same_key(sub[j]["seed"], space[i]["seed"])


def test_isel_and_sel_keep_original_positions():
    space = _keys_space(jax.random.key(1))
    sub = space.isel(k=[2, 0], seed=1)
    assert sub.sizes == {"k": 2}
    assert same_key(sub[0]["noise"], space[2 * 2 + 1]["noise"])
    assert same_key(sub[1]["noise"], space[0 * 2 + 1]["noise"])
    assert same_key(sub[0]["seed"], space[1]["seed"])
    sel = space.sel(k=1.0)
    assert sel.sizes == {"seed": 2}
    assert same_key(sel[1]["noise"], space[2 * 2 + 1]["noise"])
    assert same_key(sel[0]["seed"], space[0]["seed"])
    # a slice of a sub-space still keeps them
    again = sub[1:]
    assert same_key(again[0]["noise"], space[1]["noise"])


# ---------------------------------------------------------------- same keys whatever runs them


def keys_model(s, shift):
    return {
        "bits": jax.random.bits(s["noise"], (3,)),
        "normal": jax.random.normal(s["noise"], (2,)) * s["k"] + shift,
        "rep": jax.random.bits(s["seed"], ()),
        "key": jax.random.key_data(s["noise"]),
    }


def _expected(space):
    out = []
    for i in range(len(space)):
        st = space[i]
        out.append({"bits": np.asarray(jax.random.bits(st["noise"], (3,))),
                    "rep": np.asarray(jax.random.bits(st["seed"], ())),
                    "key": kd(st["noise"])})
    return out


def _values(res) -> dict[str, np.ndarray]:
    ds = res.to_xarray().load()
    return {name: ds[name].values for name in ("bits", "normal", "rep", "key")}


def _assert_same(a: dict, b: dict) -> None:
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def reference():
    space = _keys_space(jax.random.key(11))
    res = ls.SequentialExecution(keys_model, space, 0.5, progress=False).run()
    return space, _values(res)


def test_results_use_the_documented_keys(reference):
    space, ref = reference
    exp = _expected(space)
    for i in range(len(space)):
        ik, r = divmod(i, 2)
        np.testing.assert_array_equal(ref["bits"][ik, r], exp[i]["bits"])
        np.testing.assert_array_equal(ref["rep"][ik, r], exp[i]["rep"])
        np.testing.assert_array_equal(ref["key"][ik, r], exp[i]["key"])


@pytest.mark.parametrize("options", [
    {}, {"n_vmap": 1}, {"n_vmap": 4}, {"chunk_size": 1}, {"chunk_size": 4, "n_vmap": 2},
    {"chunk_size": 5, "n_vmap": 3},
])
def test_parallel_gives_the_same_keys_and_results(reference, options):
    space, ref = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ls.ParallelExecution(keys_model, space, 0.5, progress=False, **options).run()
    _assert_same(_values(res), ref)


def test_sequential_without_jit_gives_the_same_keys(reference):
    space, ref = reference
    res = ls.SequentialExecution(keys_model, space, 0.5, jit=False, progress=False).run()
    got = _values(res)
    for name in ("bits", "rep", "key"):
        np.testing.assert_array_equal(got[name], ref[name])


def test_slices_give_the_same_results(reference):
    space, ref = reference
    flat = {name: v.reshape(6, *v.shape[2:]) for name, v in ref.items()}
    for sub, idx in ((space[1:5], [1, 2, 3, 4]), (space[::3], [0, 3])):
        res = ls.ParallelExecution(keys_model, sub, 0.5, progress=False, n_vmap=2).run()
        got = _values(res)
        for name in flat:
            np.testing.assert_array_equal(got[name], flat[name][idx], err_msg=name)
        for j, i in enumerate(idx):
            np.testing.assert_array_equal(np.asarray(res[j]["bits"]), flat["bits"][i])
    sub = space.isel(k=[2, 1])
    got = _values(ls.ParallelExecution(keys_model, sub, 0.5, progress=False).run())
    for name in ref:
        np.testing.assert_array_equal(got[name], ref[name][[2, 1]], err_msg=name)


def test_keys_rebuilt_from_store_and_netcdf(tmp_path, reference):
    space, ref = reference
    path = tmp_path / "keys.zarr"
    res = ls.ParallelExecution(keys_model, space, 0.5, store=str(path), progress=False).run()
    _assert_same(_values(res), ref)
    res.to_netcdf(str(tmp_path / "keys.nc"))
    for p in (path, tmp_path / "keys.nc"):
        back = ls.open_results(str(p))
        _assert_same(_values(back), ref)
        assert back.space.dims == ("k", "seed")
        for i in range(len(space)):
            assert same_key(back.space[i]["noise"], space[i]["noise"])
            assert same_key(back.space[i]["seed"], space[i]["seed"])


def _chunk_files(store, name):
    """The chunk files of variable ``name`` of a zarr store, in order."""
    return sorted(p for p in (store / name).rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.name != "zarr.json")


def test_resume_after_a_deleted_block_gives_the_same_keys(tmp_path, reference, caplog):
    space, ref = reference
    path = tmp_path / "keys.zarr"
    ls.ParallelExecution(keys_model, space, 0.5, store=str(path), progress=False,
                         chunk_size=2, n_vmap=2).run()
    # lose the data of one finished block: a resume recomputes it
    chunk_files = _chunk_files(path, "bits")
    assert len(chunk_files) >= 2
    chunk_files[-1].unlink()
    res = ls.ParallelExecution(keys_model, space, 0.5, store=str(path), progress=False,
                               chunk_size=2, n_vmap=2).run()
    assert res.complete
    _assert_same(_values(res), ref)


_CALLS = {"n": 0, "stop_at": None}


def interrupted_model(s, shift):
    _CALLS["n"] += 1
    if _CALLS["stop_at"] is not None and _CALLS["n"] == _CALLS["stop_at"]:
        raise KeyboardInterrupt
    return keys_model(s, shift)


def test_resume_after_an_interruption_gives_the_same_keys(tmp_path, reference):
    space, ref = reference
    path = str(tmp_path / "keys.zarr")
    _CALLS.update(n=0, stop_at=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(KeyboardInterrupt) as info:
            ls.SequentialExecution(interrupted_model, space, 0.5, jit=False, store=path,
                                   progress=False).run()
        assert info.value.partial is not None
        _CALLS.update(n=0, stop_at=None)
        res = ls.SequentialExecution(interrupted_model, space, 0.5, jit=False, store=path,
                                     progress=False).run()
    assert 0 < _CALLS["n"] < len(space)  # only what had not finished ran again
    got = _values(res)
    for name in ("bits", "rep", "key"):
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)


def test_grown_store_keeps_original_positions(tmp_path):
    key = jax.random.key(5)

    def space_of(labels):
        return ls.Space({"k": ls.DataAxis(np.asarray(labels, dtype=np.float32)),
                         "seed": ls.KeyAxis(2), "noise": ls.PointKey()},
                        mode="product", key=key)

    path = str(tmp_path / "grow.zarr")
    ls.ParallelExecution(keys_model, space_of([0.0, 1.0]), 0.5, store=path,
                         progress=False).run()
    grown = ls.ParallelExecution(keys_model, space_of([0.0, 1.0, 2.0, 3.0]), 0.5, store=path,
                                 progress=False).run()
    fresh = ls.ParallelExecution(keys_model, space_of([0.0, 1.0, 2.0, 3.0]), 0.5,
                                 progress=False).run()
    _assert_same(_values(grown), _values(fresh))
    for i in range(8):
        ik, r = divmod(i, 2)
        want = jax.random.fold_in(jax.random.fold_in(key, ik), r)
        np.testing.assert_array_equal(_values(grown)["key"][ik, r], kd(want))


@pytest.mark.parametrize("fmt", ["zarr", "nc"])
def test_sub_space_runs_saved_and_rebuilt_keep_keys(tmp_path, fmt):
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(4),
                      "noise": ls.PointKey()}, mode="product", key=jax.random.key(3))
    for n, sub in enumerate((space[3:9], space.isel(k=[2, 0], seed=slice(1, 3)),
                             space.sel(seed=[3, 1]))):
        path = str(tmp_path / f"sub{n}.{fmt}")
        if fmt == "zarr":
            res = ls.ParallelExecution(keys_model, sub, 0.5, store=path, progress=False).run()
        else:
            res = ls.ParallelExecution(keys_model, sub, 0.5, progress=False).run()
            res.to_netcdf(path)
        back = ls.open_results(path)
        assert len(back.space) == len(sub)
        for i in range(len(sub)):
            assert same_key(back.space[i]["noise"], sub[i]["noise"])
            assert same_key(back.space[i]["seed"], sub[i]["seed"])
            np.testing.assert_array_equal(np.asarray(res[i]["key"]), kd(sub[i]["noise"]))
        # running the rebuilt space gives the same results bit for bit
        again = ls.ParallelExecution(keys_model, back.space, 0.5, progress=False).run()
        _assert_same(_values(again), _values(res))


def test_design_with_point_key_saved_and_rebuilt(tmp_path):
    key = jax.random.key(4)
    space = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "noise": ls.PointKey()}, mode="lhs",
                     key=key)

    def model(s):
        return {"y": s["a"] + jax.random.normal(s["noise"]),
                "key": jax.random.key_data(s["noise"])}

    path = str(tmp_path / "d.zarr")
    res = ls.ParallelExecution(model, space, store=path, progress=False, n_vmap=3).run()
    for i in range(8):
        np.testing.assert_array_equal(np.asarray(res[i]["key"]),
                                      kd(jax.random.fold_in(key, i)))
    back = ls.open_results(path)
    seq = ls.SequentialExecution(model, back.space, progress=False).run()
    np.testing.assert_array_equal(seq.to_xarray()["y"].values, res.to_xarray()["y"].values)


def test_large_sobol_design_is_scipys_sequence():
    # more points than one block of whatever the package draws at a time
    key = jax.random.key(17)
    n = 2**17
    space = unit_space("sobol", n, 2, key=key)
    np.testing.assert_array_equal(columns(space, 2),
                                  sobol_unit(n, 2, key).astype(np.float32).astype(np.float64))


def test_numpyro_broadcast_mode_is_one_column():
    key = jax.random.key(18)
    state = {"a": ls.UniformAxis(0.0, 1.0, 8),
             "z": ls.NumPyroAxis(dist.Normal(0.0, 1.0), 8, sample_shape=(3,),
                                 broadcast_mode=True)}
    space = ls.Space(state, mode="sobol", key=key)
    u = sobol_unit(8, 2, key)
    want = np.asarray(dist.Normal(0.0, 1.0).icdf(jnp.asarray(u[:, 1], jnp.float32)))
    for i in range(8):
        z = np.asarray(space[i]["z"])
        assert z.shape == (3,)
        np.testing.assert_allclose(z, want[i], rtol=1e-6)


def test_results_sel_by_several_design_coordinates_at_once():
    space = unit_space("halton", 8, 2, key=jax.random.key(3))
    res = ls.ParallelExecution(lambda s: s["u0"] * 10 + s["u1"], space, progress=False).run()
    ds = res.to_xarray()
    a, b = float(ds["u0"].values[4]), float(ds["u1"].values[4])
    assert float(res.sel(u0=a, u1=b)["result"]) == float(ds["result"].values[4])


def test_raw_prng_key_space_gives_the_same_keys_in_every_executor():
    key = jax.random.PRNGKey(5)
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(2),
                      "noise": ls.PointKey()}, mode="product", key=key)

    def model(s):
        return {"b": jax.random.bits(s["noise"], (2,)), "r": jax.random.bits(s["seed"], ()),
                "n": jax.random.normal(s["noise"])}

    seq = ls.SequentialExecution(model, space, progress=False).run().to_xarray()
    par = ls.ParallelExecution(model, space, progress=False, n_vmap=4).run().to_xarray()
    for name in ("b", "r", "n"):
        np.testing.assert_array_equal(seq[name].values, par[name].values, err_msg=name)
    axis_key = jax.random.split(key, 3)[2]
    for ik in range(3):
        for r in range(2):
            want = jax.random.fold_in(jax.random.fold_in(key, ik), r)
            np.testing.assert_array_equal(seq["b"].values[ik, r],
                                          np.asarray(jax.random.bits(want, (2,))))
            np.testing.assert_array_equal(
                seq["r"].values[ik, r],
                np.asarray(jax.random.bits(jax.random.fold_in(axis_key, r), ())))


def test_resume_with_another_n_vmap_gives_the_same_keys(tmp_path, reference):
    space, ref = reference
    path = tmp_path / "keys.zarr"
    ls.ParallelExecution(keys_model, space, 0.5, store=str(path), progress=False,
                         chunk_size=2, n_vmap=1).run()
    chunk_files = _chunk_files(path, "normal")
    chunk_files[0].unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = ls.ParallelExecution(keys_model, space, 0.5, store=str(path), progress=False,
                                   chunk_size=2, n_vmap=2).run()
    _assert_same(_values(res), ref)


def test_growing_along_a_key_axis_keeps_the_replicates(tmp_path):
    def space_of(n):
        return ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "seed": ls.KeyAxis(n),
                         "noise": ls.PointKey()}, mode="product", key=jax.random.key(1))

    path = str(tmp_path / "g.zarr")
    ls.ParallelExecution(keys_model, space_of(2), 0.5, store=path, progress=False).run()
    grown = ls.ParallelExecution(keys_model, space_of(4), 0.5, store=path, progress=False).run()
    fresh = ls.ParallelExecution(keys_model, space_of(4), 0.5, progress=False).run()
    _assert_same(_values(grown), _values(fresh))


def test_growing_a_sobol_design_keeps_its_points(tmp_path):
    def space_of(n):
        return ls.Space({"a": ls.UniformAxis(0.0, 1.0, n), "noise": ls.PointKey()},
                        mode="sobol", key=jax.random.key(1))

    def model(s):
        return s["a"] + jax.random.normal(s["noise"])

    # scipy's Sobol sequence: the first 8 of 16 points are the 8-point design
    np.testing.assert_array_equal(space_of(8).coords["a"].values,
                                  space_of(16).coords["a"].values[:8])
    path = str(tmp_path / "s.zarr")
    ls.ParallelExecution(model, space_of(8), store=path, progress=False).run()
    grown = ls.ParallelExecution(model, space_of(16), store=path, progress=False).run()
    fresh = ls.ParallelExecution(model, space_of(16), progress=False).run()
    np.testing.assert_array_equal(grown.to_xarray()["result"].values,
                                  fresh.to_xarray()["result"].values)


@pytest.mark.slow
def test_dask_gives_the_same_keys(reference):
    from distributed import Client, LocalCluster

    space, ref = reference
    # worker processes, as client=None would start: the keys cross a process boundary
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        res = ls.DaskExecution(keys_model, space, 0.5, client=client, chunk_size=2,
                               progress=False).run()
        _assert_same(_values(res), ref)
        sub = ls.DaskExecution(keys_model, space[1:5], 0.5, client=client, chunk_size=3,
                               progress=False).run()
        for name, values in _values(sub).items():
            np.testing.assert_array_equal(values, ref[name].reshape(6, *ref[name].shape[2:])[1:5])


_PMAP_SCRIPT = textwrap.dedent("""
    import sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[2])
    import labeled_spaces as ls
    from test_acceptance_designs_keys import _keys_space, keys_model
    assert jax.device_count() == 4, jax.devices()
    space = _keys_space(jax.random.key(11))
    out = {}
    for n_pmap, n_vmap in ((1, None), (2, 1), (4, 1), (2, 3)):
        ds = ls.ParallelExecution(keys_model, space, 0.5, n_pmap=n_pmap, n_vmap=n_vmap,
                                  progress=False).run().to_xarray()
        for name in ("bits", "normal", "rep", "key"):
            out[f"{name}-{n_pmap}-{n_vmap}"] = ds[name].values
    store = sys.argv[1] + ".zarr"
    ds = ls.ParallelExecution(keys_model, space, 0.5, n_pmap=4, chunk_size=2, store=store,
                              progress=False).run().to_xarray().load()
    for name in ("bits", "normal", "rep", "key"):
        out[f"{name}-store"] = ds[name].values
    np.savez(sys.argv[1], **out)
""")


@pytest.mark.slow
def test_n_pmap_gives_the_same_keys(tmp_path, reference):
    _, ref = reference
    script = tmp_path / "pmap.py"
    script.write_text(_PMAP_SCRIPT)
    out = tmp_path / "out.npz"
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(script), str(out), str(Path(__file__).parent)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as data:
        for name, values in data.items():
            var = name.split("-")[0]
            np.testing.assert_array_equal(values, ref[var], err_msg=name)


# ---------------------------------------------------------------- first hour with a design


def test_user_sel_by_sample_and_iterate():
    space = unit_space("sobol", 8, 2, key=jax.random.key(0))
    assert len(space) == 8
    items = list(space)
    assert len(items) == 8
    for i, item in enumerate(items):
        assert float(item["u0"]) == float(space[i]["u0"])
    assert list(iter(space))[3]["u1"] == items[3]["u1"]
    res = ls.ParallelExecution(lambda s: s["u0"] - s["u1"], space, progress=False).run()
    point = res.sel(sample=3)
    assert float(point["result"]) == float(res[3])
    assert len(list(res)) == 8


def test_user_space_coords_and_dataframe():
    space = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "b": ls.GridAxis(5.0, 6.0, 8),
                      "dt": 0.01}, mode="lhs", key=jax.random.key(1))
    assert {"sample", "a", "b"} <= set(space.coords)
    df = space.to_dataframe()
    assert len(df) == 8
    assert {"a", "b"} <= set(df.columns) | set(df.index.names)


def test_user_netcdf_round_trip_with_plain_xarray(tmp_path):
    space = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "b": ls.LogGridAxis(1.0, 100.0, 8)},
                     mode="halton", key=jax.random.key(2))
    res = ls.ParallelExecution(lambda s: {"y": s["a"] * s["b"]}, space, progress=False).run()
    ds = res.to_xarray()
    path = tmp_path / "plain.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_allclose(back.load(), ds)
        # a file written by plain xarray opens as results too, with the design rebuilt
    again = ls.open_results(str(path))
    np.testing.assert_array_equal(again.to_xarray()["y"].values, ds["y"].values)
    assert float(again.space[5]["b"]) == float(space[5]["b"])


def test_user_plots_a_design(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    space = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 16), "b": ls.UniformAxis(0.0, 1.0, 16)},
                     mode="sobol", key=jax.random.key(0))
    res = ls.ParallelExecution(lambda s: {"y": s["a"] + s["b"]}, space, progress=False).run()
    ds = res.to_xarray()
    ds.plot.scatter(x="a", y="b", hue="y")
    plt.savefig(tmp_path / "design.png")
    plt.close("all")
    assert (tmp_path / "design.png").stat().st_size > 0


def test_user_key_axis_replicates_in_a_dataset():
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "rep": ls.KeyAxis(4)}, mode="product")
    res = ls.ParallelExecution(lambda s: s["k"] + jax.random.normal(s["rep"]), space,
                               progress=False).run()
    ds = res.to_xarray()
    assert ds["result"].dims == ("k", "rep")
    mean = ds["result"].mean("rep")
    assert mean.dims == ("k",)
    # common random numbers: the noise is the same at every k
    noise = ds["result"] - ds["k"]
    np.testing.assert_allclose(noise.values - noise.values[0], 0.0, atol=1e-6)
    assert float(res.sel(rep=2, k=0.5)["result"]) == float(ds["result"].values[1, 2])


def test_user_key_axis_in_a_design_is_a_clear_error():
    # a KeyAxis has no values to place on a design: refused with a clear ValueError
    with pytest.raises(ValueError, match="KeyAxis"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "seed": ls.KeyAxis(8)}, mode="sobol")


def test_user_passes_a_seed_as_key():
    with pytest.raises(TypeError, match="key"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "noise": ls.PointKey()}, mode="lhs", key=42)


def test_user_returns_a_key_from_the_model_gets_a_clear_error():
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2), "noise": ls.PointKey()})
    with pytest.raises((TypeError, ValueError), match="key"):
        ls.ParallelExecution(lambda s: s["noise"], space, progress=False).run()


def test_user_key_axis_attrs_and_numpy_n(tmp_path):
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 2),
                      "seed": ls.KeyAxis(np.int64(3), attrs={"long_name": "replicate"})},
                     mode="product")
    assert space.sizes == {"k": 2, "seed": 3}
    assert space.coords["seed"].attrs["long_name"] == "replicate"
    path = str(tmp_path / "a.zarr")
    ls.ParallelExecution(lambda s: jax.random.uniform(s["seed"]) + s["k"], space, store=path,
                         progress=False).run()
    assert ls.open_results(path).to_xarray()["seed"].attrs["long_name"] == "replicate"


def test_user_only_a_point_key_is_a_space_without_axis():
    with pytest.raises(ValueError, match="axis|axes"):
        ls.Space({"noise": ls.PointKey(), "dt": 0.1})


def test_user_bad_dim_is_refused_naming_dim():
    with pytest.raises((TypeError, ValueError), match="dim"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8)}, mode="sobol", dim=3)
    with pytest.raises(ValueError, match="dim|name"):
        ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8)}, mode="sobol", dim="a")


def test_user_design_of_one_point():
    # n=1 is a valid (if dull) design; Sobol's 1 is a power of two
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 1)}, mode="sobol")
    assert len(space) == 1
    assert 0.0 <= float(space[0]["a"]) <= 1.0
    assert math.isfinite(float(space[0]["a"]))

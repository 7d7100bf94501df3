"""Quasi-random spaces: Space(state, mode="sobol" | "halton" | "lhs")."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy.stats import qmc

from labeled_spaces import (
    DataAxis,
    GridAxis,
    KeyAxis,
    LogGridAxis,
    NumPyroAxis,
    ParallelExecution,
    PointKey,
    Space,
    UniformAxis,
    open_results,
)
from labeled_spaces.axes import AbstractAxis
from labeled_spaces.space.design import map_unit, unit_columns, unit_design

MODES = ["sobol", "halton", "lhs"]


def _state(n=16):
    return {
        "a": UniformAxis(-1.0, 3.0, n),
        "b": GridAxis(0.0, 10.0, n, shape=(2,)),
        "c": LogGridAxis(1e-3, 1e1, n),
        "d": NumPyroAxis(dist.Normal(1.0, 2.0), n),
        "dt": 0.5,
    }


@pytest.mark.parametrize("mode", MODES)
def test_design_space_is_one_shared_dimension_of_the_common_n(mode):
    space = Space(_state(), mode=mode, key=jax.random.key(4), dim="point")
    assert space.mode == mode
    assert space.dims == ("point",) and len(space) == 16
    assert set(space.coords) >= {"point", "a", "b", "c", "d"}
    point = space[3]
    assert point["dt"] == 0.5 and isinstance(point["a"], jax.Array)
    assert point["b"].shape == (2,) and point["b"][0] == point["b"][1]
    # the label of a shape= axis is its broadcast scalar
    assert float(space.coords["b"].values[3]) == float(point["b"][0])


@pytest.mark.parametrize("engine, atol", [(qmc.Sobol, 0.0), (qmc.Halton, 2.0**-51)])
@pytest.mark.parametrize("n, d, seed", [(1024, 1, 0), (4096, 8, 7), (2**17, 3, 12345)])
def test_sobol_and_halton_are_scipys_engines_seeded_from_the_key(engine, atol, n, d, seed):
    # the generator scipy is handed is NumPy's, seeded with the key's integers; Halton's
    # columns are our own sums of the same digit permutations (2**-51 at most)
    key = jax.random.key(seed)
    mode = "sobol" if engine is qmc.Sobol else "halton"
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs = engine(d, scramble=True, rng=rng).random(n)
    np.testing.assert_allclose(unit_design(mode, n, d, key), theirs, rtol=0, atol=atol)


@pytest.mark.parametrize("mode", MODES)
def test_same_key_same_points_bit_for_bit_other_key_other_points(mode):
    one = Space(_state(), mode=mode, key=jax.random.key(7))
    two = Space(_state(), mode=mode, key=jax.random.key(7))
    other = Space(_state(), mode=mode, key=jax.random.key(8))
    for t1, t2, t3 in zip(one.layout.tables, two.layout.tables, other.layout.tables,
                          strict=True):
        assert t1.tobytes() == t2.tobytes()
        assert not np.array_equal(t1, t3)
    # the default key is jax.random.key(0)
    default = Space(_state(), mode=mode)
    zero = Space(_state(), mode=mode, key=jax.random.key(0))
    assert all(np.array_equal(a, b) for a, b in zip(default.layout.tables, zero.layout.tables,
                                                    strict=True))


@pytest.mark.parametrize("mode", MODES)
def test_columns_map_onto_each_axis_from_one_joint_design(mode):
    key = jax.random.key(2)
    space = Space(_state(), mode=mode, key=key)
    u = unit_design(mode, 16, 4, key)  # a, b, c, d: one column each, in leaf order
    a, b, c, d = (np.asarray(t, dtype=np.float64) for t in space.layout.tables)
    np.testing.assert_allclose(a, -1.0 + 4.0 * u[:, 0], rtol=1e-6)
    np.testing.assert_allclose(b[:, 0], 10.0 * u[:, 1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.log(c), np.log(1e-3) + np.log(1e4) * u[:, 2], rtol=1e-5)
    np.testing.assert_allclose(d, np.asarray(dist.Normal(1.0, 2.0).icdf(u[:, 3])),
                               rtol=1e-5, atol=1e-5)
    assert a.dtype == np.float64 and space.layout.tables[0].dtype == jnp.result_type(float)


def test_discrepancy_is_lower_than_random_draws():
    n, d = 512, 4
    random = qmc.discrepancy(np.random.default_rng(0).random((n, d)))
    for mode in MODES:
        assert qmc.discrepancy(unit_design(mode, n, d, jax.random.key(1))) < 0.5 * random, mode


def test_latin_hypercube_stratifies_every_column_and_component():
    n = 32
    state = {"w": NumPyroAxis(dist.Uniform(0.0, 1.0), n, sample_shape=(3,)),
             "k": UniformAxis(0.0, 1.0, n)}
    space = Space(state, mode="lhs", key=jax.random.key(5))
    assert unit_columns(state["w"]) == 3
    w = np.asarray(space.layout.tables[1])  # leaf order: k, w
    for column in (*w.T, np.asarray(space.layout.tables[0])):
        assert sorted(np.floor(column * n).astype(int).tolist()) == list(range(n))
    # its components are separate columns, not one draw repeated
    assert not np.array_equal(w[:, 0], w[:, 1])
    assert space.coords["w_value"].shape == (n, 3)


def test_broadcast_mode_is_one_column():
    axis = NumPyroAxis(dist.Normal(0.0, 1.0), 8, sample_shape=(3,), broadcast_mode=True)
    assert unit_columns(axis) == 1
    space = Space({"w": axis}, mode="sobol")
    table = space.layout.tables[0]
    assert table.shape == (8, 3) and (table == table[:, :1]).all()


def test_data_axis_takes_the_point_at_floor_u_times_size():
    values = np.arange(4) * 10.0
    mapped = map_unit(DataAxis(values, labels=["w", "x", "y", "z"]),
                      np.array([[0.0], [0.24], [0.25], [0.99]]))
    assert mapped.values.tolist() == [0.0, 0.0, 10.0, 30.0]
    assert mapped.labels.tolist() == ["w", "w", "x", "z"]
    space = Space({"k": DataAxis(values, labels=["w", "x", "y", "z"]),
                   "g": GridAxis(0.0, 1.0, 4)}, mode="lhs")
    # a latin hypercube of 4 points over 4 values: each value exactly once
    assert sorted(space.layout.tables[1].tolist()) == values.tolist()
    assert sorted(space.coords["k"].values.tolist()) == ["w", "x", "y", "z"]


def test_group_members_share_one_column():
    state = {"a": UniformAxis(0.0, 1.0, 16, group="g"), "b": GridAxis(10.0, 30.0, 16, group="g"),
             "c": UniformAxis(0.0, 1.0, 16)}
    space = Space(state, mode="halton", key=jax.random.key(9))
    a, b, c = (np.asarray(t, dtype=np.float64) for t in space.layout.tables)
    np.testing.assert_allclose((b - 10.0) / 20.0, a, atol=1e-6)
    assert not np.allclose(a, c)
    assert space.dims == ("sample",)


def test_sizes_that_differ_are_refused():
    with pytest.raises(ValueError, match="sizes.*'a': 8.*'b': 4"):
        Space({"a": GridAxis(0, 1, 8), "b": DataAxis([1.0, 2.0, 3.0, 4.0])}, mode="sobol")


def test_sobol_warns_unless_n_is_a_power_of_two():
    with pytest.warns(UserWarning, match="power of 2") as caught:
        Space({"a": GridAxis(0, 1, 10)}, mode="sobol")
    assert caught[0].filename == __file__  # raised where the Space is built
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Space({"a": GridAxis(0, 1, 16)}, mode="sobol")
        Space({"a": GridAxis(0, 1, 10)}, mode="halton")
        Space({"a": GridAxis(0, 1, 10)}, mode="lhs")


@pytest.mark.parametrize("distribution,what", [
    (dist.Poisson(3.0), "Poisson.*has none"),
    (dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2)), "MultivariateNormal"),
])
def test_distribution_without_icdf_is_refused_naming_it(distribution, what):
    with pytest.raises(ValueError, match=what):
        Space({"p": NumPyroAxis(distribution, 8)}, mode="lhs")


def test_an_icdf_that_returns_nan_is_refused_naming_the_distribution():
    class Broken(dist.Normal):  # its icdf gives NaN above the median
        def icdf(self, q):
            return jnp.where(q > 0.5, jnp.nan, super().icdf(q))

    with pytest.raises(ValueError, match=r"Broken.*icdf returned NaN at \d+ of 8 unit points "
                                         r"\(the first at u=0\.[5-9]"):
        Space({"p": NumPyroAxis(Broken(0.0, 1.0), 8)}, mode="sobol")
    for mode in ("halton", "lhs"):
        with pytest.raises(ValueError, match=r"Broken.*icdf returned NaN"):
            Space({"p": NumPyroAxis(Broken(0.0, 1.0), 64)}, mode=mode)


def test_axis_without_a_mapping_is_refused():
    class Custom(AbstractAxis):
        @property
        def size(self):
            return 4

        def generate_values(self, key=None):
            return jnp.arange(4.0)

    with pytest.raises(ValueError, match=r"maps a unit column onto .* \(Custom\)"):
        Space({"x": Custom()}, mode="sobol")


@pytest.mark.filterwarnings("ignore:The balance properties:UserWarning")
@pytest.mark.parametrize("mode", ["sobol", "halton"])
def test_distribution_axes_of_n_points_are_the_first_of_more_bit_for_bit(mode):
    """XLA's exp gave a LogNormal's icdf other last bits in arrays of 7 and 5000 points."""
    def state(n):
        return {"d": NumPyroAxis(dist.LogNormal(0.0, 1.0), n),
                "c": NumPyroAxis(dist.Cauchy(0.0, 1.0), n, sample_shape=(3,)),
                "b": LogGridAxis(1e-3, 1e3, n)}

    longer = Space(state(5000), mode=mode, key=jax.random.key(2))
    for n in (3, 7, 15, 17):
        shorter = Space(state(n), mode=mode, key=jax.random.key(2))
        for name, t1, t2 in zip(shorter.names, shorter.layout.tables, longer.layout.tables,
                                strict=True):
            assert t1.tobytes() == t2[:n].tobytes(), (n, name)


def test_a_key_axis_in_a_design_points_to_point_key():
    # the advice 'use mode=zip or product' dropped the design; a key per point keeps it
    state = {"x": UniformAxis(0.0, 1.0, 4), "key": KeyAxis(4)}
    with pytest.raises(ValueError, match=r"got KeyAxis\(n=4\) \(KeyAxis\); a KeyAxis has no "
                       r"values to place on a design: for noise at every design point, put a "
                       r"PointKey\(\) in the state instead"):
        Space(state, mode="sobol")
    # named first, also where its size differs: fixing the size would only meet this error
    for mode in ("sobol", "halton", "lhs"):
        with pytest.raises(ValueError, match=r"got KeyAxis\(n=3\) \(KeyAxis\); a KeyAxis"):
            Space({**state, "key": KeyAxis(3)}, mode=mode)
    state["key"] = PointKey()  # the advice, followed
    space = Space(state, mode="sobol")
    assert space.sizes == {"sample": 4}
    assert not bool((jax.random.key_data(space[0]["key"]) ==
                     jax.random.key_data(space[1]["key"])).all())


def test_a_sobol_design_wider_than_scipy_s_direction_numbers_names_its_columns():
    """scipy said only 'Maximum supported dimensionality is 21201.'"""
    wide = {"w": NumPyroAxis(dist.Normal(0.0, 1.0), 4, sample_shape=(30000,)),
            "a": UniformAxis(0.0, 1.0, 4)}
    with pytest.raises(ValueError, match=r"a 'sobol' design has at most 21201 columns .* this "
                       r"space needs 30001 \(w: 30000, a: 1\); use mode='halton' or 'lhs'$"):
        Space(wide, mode="sobol")
    assert Space(wide, mode="lhs").layout.tables[1].shape == (4, 30000)  # leaf order: a, w


def test_indexing_slicing_and_selection_serve_the_design_points():
    space = Space(_state(), mode="sobol", key=jax.random.key(1))
    ds = space.to_xarray()
    for i in (0, 5, -1):
        assert float(space[i]["a"]) == float(ds["a_values"].values[i])
    sliced = space[2:6]
    assert sliced.mode == "zip" and sliced.coords["sample"].values.tolist() == [2, 3, 4, 5]
    assert float(sliced[0]["a"]) == float(space[2]["a"])
    picked = space.isel(sample=[7, 1])
    assert picked.mode == "zip" and float(picked[1]["c"]) == float(space[1]["c"])
    label = space.coords["a"].values[4]
    assert space.sel(a=[label]).coords["sample"].values.tolist() == [4]


@pytest.mark.parametrize("mode", MODES)
def test_attrs_and_stores_rebuild_the_same_points(mode, tmp_path):
    space = Space(_state(8), mode=mode, key=jax.random.key(11))
    assert space.attrs["labeled_spaces:mode"] == mode
    rebuilt = Space.from_attrs(space.attrs)
    assert rebuilt.mode == mode and rebuilt.dims == space.dims
    for t1, t2 in zip(space.layout.tables, rebuilt.layout.tables, strict=True):
        assert t1.tobytes() == t2.tobytes()

    def model(s):
        return {"y": s["a"] * s["b"].sum() + s["c"] - s["d"] * s["dt"]}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sobol with n = 8 is fine; be safe
        results = ParallelExecution(model, space, progress=False,
                                    store=tmp_path / "design.zarr").run()
    opened = open_results(tmp_path / "design.zarr")
    assert opened.space.mode == mode
    np.testing.assert_array_equal(opened.to_xarray()["y"].values, results.to_xarray()["y"].values)
    assert opened.to_xarray()["a"].values.tobytes() == space.coords["a"].values.tobytes()
    again = ParallelExecution(model, opened.space, progress=False).run()
    np.testing.assert_array_equal(again.to_xarray()["y"].values, results.to_xarray()["y"].values)


@pytest.mark.parametrize("mode", [*MODES, "zip"])
def test_a_dimension_named_like_an_axis_points_at_dim_as_well_as_name(mode):
    """The shared dimension of a design (or zip space) is named by dim=: a clash with an axis
    says so, not only "give the axes distinct name= arguments"."""
    with pytest.raises(ValueError, match=r"duplicate dimension or coordinate name 'a': .*; give "
                       r"the axes distinct name= arguments, or pass the Space another dim= "
                       r"than 'a'$"):
        Space({"a": UniformAxis(0.0, 1.0, 4), "b": GridAxis(0.0, 1.0, 4)}, mode=mode, dim="a")
    # a group's dimension is named by its label, not by dim=: no dim= hint there
    with pytest.raises(ValueError, match=r"distinct name= arguments$"):
        Space({"g": GridAxis(0, 1, 3), "h": GridAxis(0, 1, 3, group="g")}, mode="product")


@pytest.mark.parametrize("mode", MODES)
def test_low_precision_bounds_keep_the_axis_dtype_and_store(mode, tmp_path):
    """bfloat16 bounds: a UniformAxis gives the model what it gives in zip mode (JAX's default
    float, as jax.random.uniform draws), a GridAxis its bfloat16 values; the labels are
    exact float32 (zarr has no bfloat16), so the design runs into a store and reopens."""
    state = {"u": UniformAxis(jnp.bfloat16(0), jnp.bfloat16(1), 4),
             "g": GridAxis(jnp.bfloat16(1), jnp.bfloat16(2), 4)}
    space = Space(state, mode=mode, key=jax.random.key(2))
    zipped = Space(state, mode="zip", key=jax.random.key(2))
    assert space[0]["u"].dtype == zipped[0]["u"].dtype == jnp.result_type(float)
    assert space[0]["g"].dtype == zipped[0]["g"].dtype == jnp.bfloat16
    assert space.coords["g"].dtype == np.float32
    assert float(space.coords["g"].values[1]) == float(space[1]["g"])
    results = ParallelExecution(lambda s: s["u"] * s["g"], space, progress=False,
                                store=tmp_path / "low.zarr").run()
    opened = open_results(tmp_path / "low.zarr")
    assert opened.to_xarray()["g"].values.tobytes() == space.coords["g"].values.tobytes()
    np.testing.assert_array_equal(opened.to_xarray()["result"].values,
                                  results.to_xarray()["result"].values)
    assert float(opened.space[3]["g"]) == float(space[3]["g"])

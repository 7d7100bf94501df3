"""Space: axis discovery, dimensions and labels, indexing, selection, export, blocks."""

from __future__ import annotations

import dataclasses
import itertools
import json
import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces import (
    DataAxis,
    GridAxis,
    LogGridAxis,
    NumPyroAxis,
    SelectionError,
    Space,
    UniformAxis,
)
from labeled_spaces.space import keypath_name

KEY = jax.random.key(7)


def grid(low: float, high: float, n: int) -> np.ndarray:
    """What the model receives from GridAxis(low, high, n)."""
    return np.asarray(jnp.linspace(low, high, n))


def product_space() -> Space:
    return Space(
        {"x": GridAxis(0.1, 0.8, 5), "y": GridAxis(0.0, 1.0, 3), "dt": 0.1}, mode="product"
    )


def no_warnings(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return make()


# ---------------------------------------------------------------------------
# axis discovery in pytrees
# ---------------------------------------------------------------------------


class Params(NamedTuple):
    gain: Any
    offset: Any


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Config:
    rate: Any
    weight: Any
    label: str = dataclasses.field(default="cfg", metadata={"static": True})


@jax.tree_util.register_pytree_node_class
class Node:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def tree_flatten(self):
        return (self.a, self.b), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


class Model(eqx.Module):
    coupling: Any
    noise: Any
    n_nodes: int = eqx.field(static=True, default=4)


def test_discovery_in_nested_dicts():
    state = {"b": {"c": UniformAxis(0.0, 1.0, 2), "k": 3}, "a": GridAxis(0.0, 1.0, 3), "z": "s"}
    space = no_warnings(lambda: Space(state, mode="product", key=KEY))
    assert space.paths == ("a", "b.c") and space.dims == ("a", "b.c")
    assert space.shape == (3, 2) and len(space) == 6
    uniform = np.asarray(UniformAxis(0.0, 1.0, 2).generate_values(jax.random.split(KEY, 3)[2]))
    point = space[3]
    assert point == {"a": np.float32(0.5), "b": {"c": uniform[1], "k": 3}, "z": "s"}
    assert point["b"]["c"] == uniform[1] and point["a"] == np.float32(0.5)


def test_discovery_in_lists_tuples_and_none():
    state = [GridAxis(0.0, 1.0, 2), {"gain": DataAxis([5, 6, 7])}, (None, 2.0, GridAxis(1, 2, 2))]
    space = Space(state, mode="product")
    assert space.paths == ("[0]", "[1].gain", "[2][2]")
    assert space.sizes == {"[0]": 2, "[1].gain": 3, "[2][2]": 2}
    point = space[7]  # digits (1, 0, 1)
    assert isinstance(point, list) and isinstance(point[2], tuple)
    assert point[0] == 1.0 and point[1]["gain"] == 5 and point[2] == (None, 2.0, 2.0)
    assert point[1]["gain"].dtype == np.int32


def test_discovery_in_namedtuple():
    space = Space(Params(gain=GridAxis(0.0, 2.0, 3), offset=-1.0), mode="product")
    assert space.paths == ("gain",)
    point = space[2]
    assert isinstance(point, Params)
    assert point.gain == 2.0 and point.offset == -1.0


def test_discovery_in_registered_dataclass():
    state = Config(rate=LogGridAxis(0.1, 10.0, 3), weight=DataAxis([[1.0], [2.0]]), label="x")
    space = Space(state, mode="product")
    assert space.paths == ("rate", "weight")
    assert space.shape == (3, 2)
    point = space[5]
    assert isinstance(point, Config) and point.label == "x"
    assert point.rate == np.asarray(jnp.geomspace(0.1, 10.0, 3))[2]
    assert point.weight.tolist() == [2.0]


def test_discovery_in_pytree_node_class():
    space = Space(Node(GridAxis(0.0, 1.0, 2), Node(3.0, GridAxis(5.0, 6.0, 3))), mode="product")
    assert space.paths == ("0", "1.1")  # flattened index keys, named as TVB-Optim names them
    point = space[4]
    assert isinstance(point, Node) and isinstance(point.b, Node)
    assert (point.a, point.b.a, point.b.b) == (1.0, 3.0, 5.5)


def test_discovery_in_equinox_module():
    state = Model(coupling=GridAxis(0.0, 1.0, 4), noise=UniformAxis(0.0, 0.1, 2))
    space = Space(state, mode="product", key=KEY)
    assert space.dims == ("coupling", "noise")
    point = space[5]
    assert isinstance(point, Model) and point.n_nodes == 4
    assert point.coupling == grid(0.0, 1.0, 4)[2]
    keys = jax.random.split(KEY, 3)
    assert point.noise == np.asarray(UniformAxis(0.0, 0.1, 2).generate_values(keys[2]))[1]


def test_axes_sample_with_split_keys_in_leaf_order():
    state = {"b": UniformAxis(0.0, 1.0, 3), "a": UniformAxis(0.0, 1.0, 3)}
    space = Space(state, mode="zip", key=KEY)
    keys = jax.random.split(KEY, 3)
    a = np.asarray(UniformAxis(0.0, 1.0, 3).generate_values(keys[1]))
    b = np.asarray(UniformAxis(0.0, 1.0, 3).generate_values(keys[2]))
    assert [(p["a"], p["b"]) for p in space] == list(zip(a, b, strict=True))
    default = Space(state)  # key=None means jax.random.key(0)
    assert (
        default[0]["a"]
        == np.asarray(
            UniformAxis(0.0, 1.0, 3).generate_values(jax.random.split(jax.random.key(0), 3)[1])
        )[0]
    )
    legacy = Space(state, key=jax.random.PRNGKey(7))
    assert len(legacy) == 3


# ---------------------------------------------------------------------------
# dimensions, sizes, coordinates
# ---------------------------------------------------------------------------


def test_product_dims_sizes_coords():
    space = product_space()
    assert space.dims == ("x", "y") and space.shape == (5, 3)
    assert space.sizes == {"x": 5, "y": 3}
    assert len(space) == space.N == 15
    coords = space.coords
    assert list(coords) == ["x", "y"]
    assert coords["x"].values.tolist() == [0.1, 0.275, 0.45, 0.625, 0.8]
    assert coords["y"].values.tolist() == [0.0, 0.5, 1.0]
    # C order, first dimension slowest
    x, y = grid(0.1, 0.8, 5), grid(0.0, 1.0, 3)
    for i, (j, k) in enumerate(itertools.product(range(5), range(3))):
        assert space[i] == {"x": x[j], "y": y[k], "dt": 0.1}


def test_zip_dims_and_indexed_coords():
    state = {
        "coupling": GridAxis(0.0, 1.0, 3, attrs={"units": "a.u."}),
        "delay": DataAxis([1.0, 2.0, 4.0], labels=["short", "mid", "long"]),
    }
    space = Space(state, mode="zip", dim="trial")
    assert space.dims == ("trial",) and space.sizes == {"trial": 3} and len(space) == 3
    coords = space.coords
    assert coords["trial"].values.tolist() == [0, 1, 2]
    assert coords["coupling"].dims == ("trial",)
    assert coords["coupling"].attrs == {"units": "a.u."}
    assert coords["delay"].values.tolist() == ["short", "mid", "long"]
    assert coords["delay_value"].values.tolist() == [1.0, 2.0, 4.0]
    assert set(coords.xindexes) == {"trial", "coupling", "delay"}
    ds = space.to_xarray()
    assert float(ds.sel(coupling=0.5)["coupling_values"]) == 0.5
    assert float(ds.sel(delay="long")["delay_values"]) == 4.0
    assert space[1] == {"coupling": np.float32(0.5), "delay": np.float32(2.0)}


def test_groups_in_product_mode():
    state = {
        "a": GridAxis(0.0, 1.0, 3, group="g"),
        "b": DataAxis([10.0, 20.0, 30.0], group="g"),
        "c": GridAxis(5.0, 6.0, 2),
    }
    space = Space(state, mode="product")
    assert space.dims == ("g", "c") and space.shape == (3, 2) and len(space) == 6
    coords = space.coords
    assert coords["g"].values.tolist() == [0, 1, 2]
    assert coords["a"].dims == ("g",) and coords["b"].dims == ("g",)
    ds = space.to_xarray()
    picked = ds.sel(a=0.5)
    assert picked["b_values"].values.tolist() == [20.0, 20.0]
    assert picked["c_values"].values.tolist() == [5.0, 6.0]
    expected = [
        (a, b, c)
        for (a, b), c in itertools.product(
            zip(grid(0, 1, 3), [10.0, 20.0, 30.0], strict=True), grid(5, 6, 2)
        )
    ]
    assert [(p["a"], p["b"], p["c"]) for p in space] == expected
    assert space.sel(b=30.0).sizes == {"c": 2}


def test_groups_in_zip_mode_and_named_axes():
    state = {
        "a": GridAxis(0.0, 1.0, 4, group=1, name="alpha"),
        "b": GridAxis(1.0, 2.0, 4, group=1),
        "c": GridAxis(5.0, 6.0, 4, name="gamma"),
    }
    space = Space(state, mode="zip")
    assert space.dims == ("sample",) and len(space) == 4
    assert set(space.coords) == {"sample", "alpha", "b", "gamma"}
    product = Space(state, mode="product")
    assert product.dims == ("1", "gamma")
    assert set(product.coords) == {"1", "alpha", "b", "gamma"}
    assert product.to_xarray()["c"].dims == ("1", "gamma")  # path not taken by a coordinate
    sub = product.sel(alpha=[1.0], gamma=[5.0])
    assert len(sub) == 1 and sub[0] == {"a": 1.0, "b": 2.0, "c": 5.0}


def test_value_coordinates_for_array_points():
    matrices = np.arange(8.0).reshape(2, 2, 2)
    state = {"w": DataAxis(matrices), "n": NumPyroAxis(dist.Normal(0.0, 1.0), 3, sample_shape=(2,))}
    space = Space(state, mode="product", key=KEY)
    coords = space.coords
    assert coords["w"].values.tolist() == [0, 1]
    assert coords["w_value"].dims == ("w", "w_dim_0", "w_dim_1")
    assert np.array_equal(coords["w_value"].values, matrices)
    keys = jax.random.split(KEY, 3)
    draws = np.asarray(dist.Normal(0.0, 1.0).sample(keys[1], (3, 2)))
    assert np.array_equal(coords["n_value"].values, draws)
    assert np.array_equal(space[4]["n"], draws[2])  # n is dimension 0: digits (2, 0)


def test_shape_axes_label_by_their_scalar():
    space = Space({"g": GridAxis(0.0, 1.0, 3, shape=(2, 2))}, mode="product")
    assert space.coords["g"].values.tolist() == [0.0, 0.5, 1.0]
    assert "g_value" not in space.coords
    assert space[1]["g"].tolist() == [[0.5, 0.5], [0.5, 0.5]]


# ---------------------------------------------------------------------------
# space[i] and slices
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index, flat",
    [
        (4, 4),
        (np.int64(4), 4),
        (np.int32(-1), 14),
        (jnp.int32(7), 7),
        (jnp.array(-15), 0),
        (np.array(3), 3),
        (-2, 13),
        (np.uint8(14), 14),
    ],
)
def test_getitem_integer_scalars(index, flat):
    space = product_space()
    x, y = grid(0.1, 0.8, 5), grid(0.0, 1.0, 3)
    assert space[index] == {"x": x[flat // 3], "y": y[flat % 3], "dt": 0.1}


@pytest.mark.parametrize(
    "index",
    [
        3.0,
        np.float32(1.0),
        jnp.array(1.0),
        "3",
        [1],
        (1,),
        True,
        np.bool_(False),
        np.array([1]),
        None,
    ],
)
def test_getitem_rejects_non_integers(index):
    with pytest.raises(TypeError, match="index must be an integer or a slice"):
        product_space()[index]


@pytest.mark.parametrize("index", [15, -16, 10**20, np.int64(15)])
def test_getitem_out_of_range(index):
    with pytest.raises(IndexError, match=f"index {index} is out of range for a space of 15"):
        product_space()[index]


@pytest.mark.parametrize(
    "sl",
    [
        slice(2, 11, 3),
        slice(None, None, -1),
        slice(-4, None),
        slice(10, 2, -2),
        slice(0, 100),
        slice(None, None, 7),
    ],
)
def test_slices(sl, assert_tree_equal):
    space = product_space()
    sub = space[sl]
    positions = range(15)[sl]
    assert sub.mode == "zip" and sub.dims == ("sample",)
    assert len(sub) == len(positions)
    for k, i in enumerate(positions):
        assert_tree_equal(sub[k], space[i])
    assert sub.coords["x"].values.tolist() == [space.coords["x"].values[i // 3] for i in positions]


def test_slice_of_a_slice_and_empty_slice():
    space = product_space()
    sub = space[1:14][::4]
    assert [p["x"] for p in sub] == [space[i]["x"] for i in range(1, 14, 4)]
    with pytest.raises(ValueError, match="selects no combination"):
        space[5:5]
    with pytest.raises(ValueError, match="selects no combination"):
        space[20:]


def test_getitem_hands_out_jax_arrays_that_cannot_change_the_space():
    # TVB-Optim code checks isinstance(x, jax.Array) and updates with .at[]
    space = Space({"w": DataAxis(np.ones((2, 3))), "fixed": np.zeros(2)})
    point = space[0]
    assert isinstance(point["w"], jax.Array) and isinstance(next(iter(space))["w"], jax.Array)
    with pytest.raises(TypeError, match="immutable"):
        point["w"][0] = 5.0
    assert point["w"].at[0].set(5.0).tolist() == [5.0, 1.0, 1.0]
    assert space[0]["w"].tolist() == [1.0, 1.0, 1.0]
    assert point["fixed"] is space.state["fixed"]  # fixed leaves as given


# ---------------------------------------------------------------------------
# isel / sel
# ---------------------------------------------------------------------------


def _without_attrs(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs = {}
    return ds


def test_isel_keeps_dims_and_coords():
    state = {
        "x": GridAxis(0.1, 0.8, 5, attrs={"units": "ms"}),
        "d": DataAxis([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], labels=["a", "b", "c"]),
    }
    space = Space(state, mode="product")
    sub = space.isel(x=[0, 2], d=slice(1, None))
    assert sub.mode == "product" and sub.sizes == {"d": 2, "x": 2}
    xr.testing.assert_identical(
        _without_attrs(sub.to_xarray()),
        _without_attrs(space.to_xarray().isel(x=[0, 2], d=slice(1, None))),
    )
    assert sub.coords["x"].attrs == {"units": "ms"}
    assert sub[3]["x"] == space[2 * 5 + 2]["x"]
    assert space.isel({"x": -1}).sizes == {"d": 3}
    fixed = space.isel(x=1)
    assert fixed.dims == ("d",)
    assert [p["x"] for p in fixed] == [np.float32(grid(0.1, 0.8, 5)[1])] * 3


@pytest.mark.parametrize(
    "select",
    [
        lambda s: s.isel(x=1),
        lambda s: s.isel(d=2),
        lambda s: s.isel(x=[0, 3], d=0),
        lambda s: s.sel(x=0.45),
        lambda s: s.sel(d="b", x=[0.1, 0.8]),
    ],
    ids=["isel-x", "isel-d-with-values", "isel-mixed", "sel-x", "sel-mixed"],
)
def test_selection_keeps_coordinates_as_xarray(select):
    state = {
        "x": GridAxis(0.1, 0.8, 5, attrs={"units": "ms"}),
        "d": DataAxis([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], labels=["a", "b", "c"]),
    }
    space = Space(state, mode="product")
    sub = select(space)
    # a fixed dim leaves its labels behind as scalar coordinates, with their attrs
    # (its axis is now a fixed leaf, so its values are no longer a data variable)
    ours, want = sub.to_xarray(), select(space.to_xarray())
    xr.testing.assert_identical(xr.Dataset(coords=ours.coords), xr.Dataset(coords=want.coords))
    assert list(ours.data_vars) == ["d_values"] * ("d" in sub.dims) + ["x_values"] * (
        "x" in sub.dims
    )
    for var in ours.data_vars:
        xr.testing.assert_identical(ours[var], want[var])
    if "x" not in sub.dims:
        assert sub.coords["x"].attrs == {"units": "ms"}
    # and they survive a round trip through attrs (e.g. a saved file)
    rebuilt = Space.from_attrs(json.loads(json.dumps(sub.attrs)), state=sub.state)
    xr.testing.assert_identical(xr.Dataset(coords=rebuilt.coords), xr.Dataset(coords=sub.coords))


@pytest.mark.parametrize("mode", ["zip", "group"])
def test_selection_keeps_positions_on_shared_dims(mode):
    group = "g" if mode == "group" else None
    state = {
        "a": GridAxis(0.0, 1.0, 5, group=group),
        "b": DataAxis([10.0, 20.0, 30.0, 40.0, 50.0], group=group),
        "c": GridAxis(0.0, 1.0, 2) if mode == "group" else GridAxis(5.0, 6.0, 5),
    }
    space = Space(state, mode="product" if mode == "group" else "zip")
    dim = "g" if mode == "group" else "sample"
    ds = space.to_xarray()
    for pick in ([1, 3], slice(2, None), [4, 0]):
        sub = space.isel({dim: pick})
        xr.testing.assert_identical(_without_attrs(sub.to_xarray()),
                                    _without_attrs(ds.isel({dim: pick})))
        # selecting again picks by the new positions and keeps the original labels
        again = sub.isel({dim: [1]})
        want = ds.isel({dim: pick}).isel({dim: [1]})
        xr.testing.assert_identical(_without_attrs(again.to_xarray()), _without_attrs(want))
    by_label = space.sel(b=[20.0, 40.0])
    assert by_label.coords[dim].values.tolist() == [1, 3]
    if mode == "group":  # fixing the group dim keeps its position and its axes' labels
        fixed = space.isel(g=3)
        xr.testing.assert_identical(_without_attrs(fixed.to_xarray()),
                                    _without_attrs(ds.isel(g=3)[["c_values"]]))
        assert fixed.coords["g"].item() == 3 and fixed.coords["b"].item() == 40.0
    # a flat slice is a new zip space, numbered from 0 (TVB-Optim's slicing)
    # a flat slice keeps the original flat indices, so slices concatenate cleanly
    assert space[2:4].coords["sample"].values.tolist() == [2, 3]


def test_selection_keeps_date_labels_through_attrs():
    dates = pd.date_range("2021-03-01", periods=3)
    space = Space(
        {"v": DataAxis([1.0, 2.0, 3.0], labels=dates, name="day"), "x": GridAxis(0, 1, 2)},
        mode="product",
    )
    sub = space.isel(day=1)
    assert sub.coords["day"].values == dates.values[1]
    rebuilt = Space.from_attrs(json.loads(json.dumps(sub.attrs)), state=sub.state)
    assert rebuilt.coords["day"].values == dates.values[1]


def test_isel_with_array_scalars_drops_the_dim_as_xarray():
    space = product_space()
    assert dict(space.to_xarray().isel(x=np.array(1)).sizes) == {"y": 3}
    for indexer in (np.array(1), jnp.int32(1), np.int64(1)):
        assert space.isel(x=indexer).sizes == {"y": 3}
        assert space.isel(x=indexer)[2] == space[1 * 3 + 2]
    assert space.isel(x=np.array([1])).sizes == {"x": 1, "y": 3}
    mask = np.array([True, False, True, False, False])
    assert space.isel(x=mask).coords["x"].values.tolist() == [0.1, 0.45]


def test_isel_errors():
    space = product_space()
    with pytest.raises(SelectionError, match=r"isel got \['z'\] .* expected one of \['x', 'y'\]"):
        space.isel(z=1)
    with pytest.raises(IndexError, match="x=5 is out of range for size 5"):
        space.isel(x=5)
    with pytest.raises(IndexError, match="x=\\[7\\]"):
        space.isel(x=[7])
    with pytest.raises(ValueError, match="selects no point"):
        space.isel(x=slice(3, 3))
    # integers on every dimension leave a single point, as xarray's isel leaves a 0-d
    # Dataset (issue 16 made this work; it was a "fixes every dimension" ValueError)
    point = space.isel(x=0, y=0)
    assert point.dims == () and len(point) == 1 and point[0] == space[0]
    with pytest.raises(TypeError, match="isel: x=True must be an integer, slice or array"):
        space.isel(x=True)
    with pytest.raises(TypeError, match="index must be an integer"):
        space.isel(x=np.array(1.0))


def test_sel_by_label():
    space = product_space()
    assert space.sel(x=0.45).sizes == {"y": 3}
    assert [p["x"] for p in space.sel(x=0.45)] == [grid(0.1, 0.8, 5)[2]] * 3
    listed = space.sel(x=[0.1, 0.8])
    assert listed.sizes == {"x": 2, "y": 3}
    assert listed.coords["x"].values.tolist() == [0.1, 0.8]
    near = space.sel(x=0.3, method="nearest")
    assert near.dims == ("y",) and near[0]["x"] == grid(0.1, 0.8, 5)[1]
    within = space.sel({"y": [0.4, 0.9]}, method="nearest", tolerance=0.2)
    assert within.coords["y"].values.tolist() == [0.5, 1.0]
    ranged = space.sel(x=slice(0.2, 0.7))
    assert ranged.coords["x"].values.tolist() == [0.275, 0.45, 0.625]


def test_sel_on_zip_and_group_coordinates():
    state = {"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(1.0, 2.0, 3)}
    space = Space(state, mode="zip")
    sub = space.sel(a=[0.5])
    assert len(sub) == 1 and sub[0] == {"a": np.float32(0.5), "b": np.float32(1.5)}
    # a scalar on the zip dimension leaves a single point, as results.sel does (issue 16;
    # it was a "fixes every dimension" ValueError)
    point = space.sel(a=0.5)
    assert point.dims == () and len(point) == 1 and point[0] == sub[0]
    assert {k: v.item() for k, v in point.coords.items()} == {"sample": 1, "a": 0.5, "b": 1.5}


def test_sel_errors_are_key_and_value_errors():
    space = product_space()
    with pytest.raises(SelectionError, match=r"sel got \['z'\] .*expected some of \['x', 'y'\]"):
        space.sel(z=1.0)
    with pytest.raises(KeyError):
        space.sel(z=1.0)
    with pytest.raises(ValueError, match=r"sel could not find \{'x': 0.3\}"):
        space.sel(x=0.3)
    with pytest.raises(SelectionError, match="not all values found"):
        space.sel(x=[0.1, 0.3])
    assert issubclass(SelectionError, KeyError) and issubclass(SelectionError, ValueError)
    assert str(SelectionError("plain message")) == "plain message"


# ---------------------------------------------------------------------------
# iteration
# ---------------------------------------------------------------------------


def test_iteration_is_fresh_per_iter():
    space = Space({"a": GridAxis(0.0, 1.0, 4)}, mode="product")
    pairs = [(float(p["a"]), float(q["a"])) for p in space for q in space]
    assert len(pairs) == 16
    values = grid(0.0, 1.0, 4).tolist()
    assert pairs == list(itertools.product(values, values))
    it1, it2 = iter(space), iter(space)
    assert float(next(it1)["a"]) == 0.0 and float(next(it1)["a"]) == float(values[1])
    assert float(next(it2)["a"]) == 0.0
    assert [float(p["a"]) for p in space] == values


# ---------------------------------------------------------------------------
# to_xarray, to_dataframe, collect
# ---------------------------------------------------------------------------


def test_to_xarray_value_dims_follow_the_axis_name():
    # a named axis: data variable (by path) and value coordinate (by name) share dims
    matrices = np.arange(12.0).reshape(3, 2, 2)
    space = Space({"net": {"w": DataAxis(matrices, name="weights")}}, mode="product")
    ds = space.to_xarray()
    assert ds["net.w"].dims == ("weights", "weights_dim_0", "weights_dim_1")
    assert ds["weights_value"].dims == ds["net.w"].dims
    assert np.array_equal(ds["net.w"].values, ds["weights_value"].values)
    assert ds.sizes == {"weights": 3, "weights_dim_0": 2, "weights_dim_1": 2}


def test_to_xarray_values_and_attrs():
    state = {"x": GridAxis(0.0, 1.0, 3), "m": DataAxis(np.arange(8.0).reshape(2, 2, 2)), "c": 1.0}
    space = Space(state, mode="product")
    ds = space.to_xarray()
    assert ds["m_values"].dims == ("m", "x", "m_dim_0", "m_dim_1")
    assert ds["x_values"].dims == ("m", "x")
    assert ds["x_values"].dtype == np.float32
    assert ds["x_values"].values.tolist() == [[0.0, 0.5, 1.0]] * 2
    assert np.array_equal(ds["m_values"].values[1, 2], [[4.0, 5.0], [6.0, 7.0]])
    assert ds.attrs["labeled_spaces:mode"] == "product"
    assert json.loads(ds.attrs["labeled_spaces:key"]) == [0, 0]
    assert [a["path"] for a in json.loads(ds.attrs["labeled_spaces:axes"])] == ["m", "x"]
    versions = json.loads(ds.attrs["labeled_spaces:versions"])
    assert versions["jax"] == jax.__version__
    xr.testing.assert_identical(xr.Dataset(coords=ds.coords), xr.Dataset(coords=space.coords))


def test_to_dataframe():
    space = Space({"b": {"x": GridAxis(0.0, 1.0, 3)}, "w": DataAxis(np.eye(2))}, mode="product")
    df = space.to_dataframe()
    assert list(df.columns) == ["b.x", "w"]
    assert len(df) == 6
    assert df["b.x"].tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert df["w"].iloc[3].tolist() == [0.0, 1.0]
    zipped = Space({"a": GridAxis(0.0, 1.0, 3), "b": DataAxis([4, 5, 6])}).to_dataframe()
    pd.testing.assert_frame_equal(zipped, pd.DataFrame({"a": [0.0, 0.5, 1.0], "b": [4, 5, 6]}))


def test_collect_shapes_and_padding(capsys):
    space = Space({"a": GridAxis(0.0, 1.0, 6), "k": 2.0, "i": DataAxis([1, 2, 3, 4, 5, 6])})
    values = grid(0.0, 1.0, 6)
    full = no_warnings(space.collect)
    assert full["a"].shape == (6,) and np.array_equal(full["a"], values) and full["k"] == 2.0
    exact = no_warnings(lambda: space.collect(n_vmap=3))
    assert exact["a"].shape == (3, 2)
    assert np.array_equal(exact["a"], values.reshape(3, 2))
    with pytest.warns(UserWarning, match="8 slots for 6 combinations; padding with nan"):
        padded = space.collect(n_vmap=4)
    assert padded["a"].shape == (4, 2)
    assert np.array_equal(np.asarray(padded["a"]).ravel()[:6], values)
    assert np.isnan(np.asarray(padded["a"]).ravel()[6:]).all()
    assert np.asarray(padded["i"]).ravel()[:6].tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.warns(UserWarning, match="8 slots"):
        axes, static = space.collect(n_vmap=2, n_pmap=2, fill_value=-1.0, combine=False)
    assert axes["a"].shape == (2, 2, 2) and axes["k"] is None
    assert np.asarray(axes["a"]).ravel()[6:].tolist() == [-1.0, -1.0]
    assert static == {"a": None, "i": None, "k": 2.0}
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="n_vmap must be a positive integer, got 0"):
        space.collect(n_vmap=0)
    with pytest.raises(TypeError, match="n_pmap must be a positive integer, got 1.5"):
        space.collect(n_pmap=1.5)


# ---------------------------------------------------------------------------
# repr, warnings, errors
# ---------------------------------------------------------------------------


def test_repr_shows_dims_and_sizes():
    text = repr(
        Space({"x": GridAxis(0.0, 1.0, 5), "n": {"s": UniformAxis(0.0, 1.0, 1000)}}, mode="product")
    )
    lines = text.splitlines()
    assert lines[0] == "<labeled_spaces.Space> N=5000, mode='product', axes=2"
    assert lines[1] == "Dimensions:  (n.s: 1000, x: 5)"
    assert lines[2] == "Axes:"
    assert lines[3] == "    n.s  (n.s)  UniformAxis(low=0.0, high=1.0, n=1000)"
    assert lines[4] == "    x    (x)  GridAxis(low=0.0, high=1.0, n=5)"


@pytest.mark.parametrize("mode", ["product", "zip"])
@pytest.mark.parametrize("groups", [False, True])
def test_repr_first_line_reads_as_tvboptims(mode, groups):
    """Code written for TVB-Optim looks for ``N=``, ``mode``, ``axes=`` and ``groups=``."""
    tv = pytest.importorskip("tvboptim.types.spaces")

    def state(module):
        group = {"group": "g"} if groups else {}
        return {"a": module.DataAxis(jnp.array([1.0, 2.0, 3.0]), **group),
                "b": module.DataAxis(jnp.array([4.0, 5.0, 6.0]), **group),
                "x": module.GridAxis(0.0, 1.0, 3), "fixed": 1.0}

    theirs = repr(tv.Space(state(tv), mode=mode))
    ours = repr(Space(state(ls), mode=mode)).splitlines()[0]
    assert theirs.startswith("Space(") and theirs.endswith(")")
    assert ours == f"<labeled_spaces.Space> {theirs[len('Space('):-1]}"


def test_axis_state_and_static_state_partition_the_state_as_tvboptims():
    tv = pytest.importorskip("tvboptim.types.spaces")

    def state(module):
        return {"a": module.GridAxis(0.0, 1.0, 3), "n": {"u": module.UniformAxis(0.0, 1.0, 3),
                                                         "w": jnp.ones(2)}, "dt": 0.1}

    theirs, ours = tv.Space(state(tv), mode="product"), Space(state(ls), mode="product")
    for name in ("axis_state", "static_state"):
        mine, ref = getattr(ours, name), getattr(theirs, name)
        assert jax.tree.structure(mine, is_leaf=ls.space.is_axis) == jax.tree.structure(
            ref, is_leaf=lambda x: isinstance(x, tv.AbstractAxis)), name
    assert isinstance(ours.axis_state["n"]["u"], UniformAxis) and ours.axis_state["dt"] is None
    assert ours.static_state["dt"] == 0.1 and ours.static_state["a"] is None
    np.testing.assert_array_equal(ours.static_state["n"]["w"], np.ones(2))
    # a key per combination varies too; a sub-space holds the points it kept as axes
    keyed = Space({"a": GridAxis(0.0, 1.0, 3), "k": ls.PointKey(), "dt": 0.1}, mode="product")
    assert isinstance(keyed.axis_state["k"], ls.PointKey) and keyed.static_state["k"] is None
    assert isinstance(keyed.isel(a=[0, 2]).axis_state["a"], DataAxis)


def test_zip_unequal_sizes_warns_not_prints(capsys):
    state = {"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(0.0, 1.0, 5)}
    with pytest.warns(UserWarning,
                      match=r"different sizes \[3, 5\] \(a, b\); using the smallest, 3"):
        space = Space(state)
    assert len(space) == 3
    assert [float(p["b"]) for p in space] == grid(0.0, 1.0, 5)[:3].tolist()
    assert capsys.readouterr().out == ""


def test_group_unequal_sizes_warns_not_prints(capsys):
    state = {
        "a": GridAxis(0.0, 1.0, 3, group="g"),
        "b": GridAxis(0.0, 1.0, 4, group="g"),
        "c": GridAxis(0.0, 1.0, 2),
    }
    with pytest.warns(UserWarning, match=r"axes in group 'g' have different sizes \[3, 4\]"):
        space = Space(state, mode="product")
    assert space.sizes == {"g": 3, "c": 2}
    assert space.coords["b"].values.tolist() == [0.0, 1 / 3, 2 / 3]  # truncated to 3
    assert capsys.readouterr().out == ""


def test_zip_unequal_sizes_names_the_axes_and_suggests_product():
    state = {"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(0.0, 1.0, 2)}
    with pytest.warns(UserWarning) as caught:
        Space(state)
    message = str(caught[0].message)
    assert message.startswith("in zip mode the axes have different sizes [3, 2] (a, b); using "
                              "the smallest, 2, and dropping 1 value;")  # not "1 values"
    assert message.endswith('for every combination of them, use mode="product"')
    with pytest.warns(UserWarning, match=r"\[3, 4\] \(a, b\); using the smallest, 3$"):
        Space({"a": GridAxis(0, 1, 3, group="g"), "b": GridAxis(0, 1, 4, group="g")},
              mode="product")  # a group is zipped whatever the mode: no mode to suggest


def test_equal_sizes_do_not_warn():
    no_warnings(lambda: Space({"a": GridAxis(0, 1, 3), "b": UniformAxis(0, 1, 3, group=2)}))


@pytest.mark.parametrize(
    "state, mode",
    [
        ({"a": GridAxis(0, 1, 3, name="x"), "b": GridAxis(0, 1, 2, name="x")}, "product"),
        ({"g": GridAxis(0, 1, 3), "h": GridAxis(0, 1, 3, group="g")}, "product"),
        ({"a": GridAxis(0, 1, 3, name="sample")}, "zip"),
        ({"a": DataAxis(np.ones((2, 2)), name="w"), "w_value": GridAxis(0, 1, 2)}, "product"),
    ],
)
def test_duplicate_names_raise(state, mode):
    with pytest.raises(ValueError, match="duplicate dimension or coordinate name"):
        Space(state, mode=mode)


@pytest.mark.parametrize("state", [{"a": 1.0, "b": [2, 3]}, {}, [], None, 3.0])
def test_no_axis_raises(state):
    with pytest.raises(ValueError, match="state must contain at least one axis"):
        Space(state)


def test_no_axis_names_a_list_meant_as_values_and_never_prints_arrays():
    # a TVB-Optim user writes the values to sweep as a list; the message printed the whole
    # state, a 68 x 68 connectome included, and no way to sweep them
    state = {"coupling": [0.0, 0.5, 1.0], "weights": np.ones((68, 68), np.float32)}
    with pytest.raises(ValueError) as info:
        Space(state, mode="product")
    message = str(info.value)
    assert message == (
        "state must contain at least one axis (GridAxis, UniformAxis, ...), got none in "
        "{coupling: [0.0, 0.5, 1.0], weights: float32 array (68, 68)}; a list of values stays "
        "fixed: to sweep 'coupling' over them, make it an axis, DataAxis([0.0, 0.5, 1.0]), or "
        "GridAxis(low, high, n) for an even grid")
    state["coupling"] = DataAxis([0.0, 0.5, 1.0])  # the hint works as written
    assert Space(state, mode="product").sizes == {"coupling": 3}
    with pytest.raises(ValueError, match=r"got none in \{coupling: float64 array \(3,\)\}; a "
                       r"list or array stays fixed: to sweep a leaf, make it an axis"):
        Space({"coupling": np.linspace(0.0, 1.0, 3)})


@pytest.mark.parametrize("mode", ["grid", "Product", None, 1])
def test_bad_mode_raises(mode):
    with pytest.raises(ValueError, match=f"mode must be 'product' or 'zip', got {mode!r}"):
        Space({"a": GridAxis(0, 1, 3)}, mode=mode)


def test_bad_key_and_dim_raise():
    with pytest.raises(TypeError, match="key must be a jax.random.key"):
        Space({"a": GridAxis(0, 1, 3)}, key=42)


@pytest.mark.parametrize("key, hint", [
    (42, "got 42 (int); for the seed 42, pass key=jax.random.key(42)"),
    (np.random.default_rng(0), "a NumPy generator cannot seed JAX: pass key=jax.random.key(seed)"),
    (jax.random.split(jax.random.key(0), 3), "got a key<fry> array of shape (3,) (PRNGKeyArray); "
     "it holds 3 keys (from jax.random.split?): pass one of them, key=keys[0]"),
    (jax.random.split(jax.random.PRNGKey(0), 3), "got a uint32 array of shape (3, 2) "
     "(ArrayImpl); it holds 3 keys"),
    (np.asarray(jax.random.PRNGKey(1)), "becomes one again with key=jnp.asarray(key)"),
    (jnp.arange(10, dtype=jnp.int32)[7], "got an int32 array of shape () (ArrayImpl); for the "
     "seed 7, pass key=jax.random.key(7)"),
], ids=["int-seed", "numpy-generator", "split-keys", "split-raw-keys", "numpy-raw-key",
        "jax-int-seed"])
def test_a_bad_key_says_how_to_make_one(key, hint):
    # a seed, a NumPy generator or a batch of keys is what users pass; each says what to write
    with pytest.raises(TypeError, match="key must be a jax.random.key") as info:
        Space({"a": UniformAxis(0, 1, 3)}, mode="sobol", key=key)
    assert hint in str(info.value)
    if isinstance(key, np.ndarray):  # the hint works as written
        assert Space({"a": UniformAxis(0, 1, 3)}, key=jnp.asarray(key)).N == 3
    # an empty name is the right kind of value with a bad value; a number is the wrong kind
    with pytest.raises(ValueError, match="dim must be a non-empty string, got ''"):
        Space({"a": GridAxis(0, 1, 3)}, dim="")
    with pytest.raises(TypeError, match="dim must be a non-empty string, got 3"):
        Space({"a": GridAxis(0, 1, 3)}, mode="zip", dim=3)
    with pytest.raises(TypeError, match="dim must be a non-empty string, got array"):
        Space({"a": GridAxis(0, 1, 3)}, mode="zip", dim=np.array(["x", "y"]))


# ---------------------------------------------------------------------------
# attrs / from_attrs
# ---------------------------------------------------------------------------

REBUILD_STATES = {
    "product-mixed": (
        {
            "coupling": {"strength": GridAxis(0.0, 1.0, 3, attrs={"units": "a.u."})},
            "noise": UniformAxis(0.0, 0.1, 2, group="g"),
            "prior": NumPyroAxis(dist.Normal(1.0, 0.5), 2, sample_shape=(2,), group="g"),
            "subject": DataAxis(np.eye(2)[None].repeat(2, 0), labels=["s1", "s2"]),
            "dt": 0.1,
        },
        "product",
    ),
    "zip-dates": (
        [
            LogGridAxis(0.01, 1.0, 3, name="rate"),
            DataAxis([1.0, 2.0, 3.0], labels=pd.date_range("2021-03-01", periods=3)),
        ],
        "zip",
    ),
    "order-sensitive-paths": (
        {"b": {"x": UniformAxis(0.0, 1.0, 3)}, "b-c": UniformAxis(5.0, 6.0, 2)},
        "product",
    ),
}


@pytest.mark.parametrize("case", list(REBUILD_STATES))
def test_from_attrs_rebuilds_an_identical_space(case, assert_tree_equal):
    state, mode = REBUILD_STATES[case]
    space = Space(state, mode=mode, key=jax.random.key(3), dim="run")
    attrs = json.loads(json.dumps(space.attrs))  # as read back from a file
    assert all(isinstance(v, str) for v in attrs.values())
    rebuilt = Space.from_attrs(attrs, state=state)
    assert (rebuilt.mode, rebuilt.dims, rebuilt.sizes) == (space.mode, space.dims, space.sizes)
    xr.testing.assert_identical(xr.Dataset(coords=rebuilt.coords), xr.Dataset(coords=space.coords))
    for i in range(len(space)):
        assert_tree_equal(rebuilt[i], space[i])
    assert rebuilt.attrs == space.attrs
    # without the state: the saved structure with its fixed leaves, so it runs again as is
    bare = Space.from_attrs(attrs)
    assert bare.paths == space.paths and bare.dims == space.dims
    for i in range(len(space)):
        point, want = bare[i], space[i]
        assert_tree_equal(point, want)
        for path, leaf in zip(space.paths, [want_leaf(want, p) for p in space.paths], strict=True):
            assert np.array_equal(want_leaf(point, path), leaf)


def want_leaf(tree: Any, path: str) -> Any:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return next(leaf for p, leaf in flat if keypath_name(p) == path)


def test_from_attrs_rebuilds_sub_spaces(assert_tree_equal):
    state = {
        "x": GridAxis(0.1, 0.8, 5),
        "w": DataAxis(np.arange(12.0).reshape(3, 2, 2)),
        "u": UniformAxis(0.0, 1.0, 2),
    }
    space = Space(state, mode="product", key=KEY)
    for sub in (space.isel(x=[1, 3], w=[0, 2]), space.sel(x=0.45), space[3:20:4]):
        rebuilt = Space.from_attrs(json.loads(json.dumps(sub.attrs)), state=sub.state)
        xr.testing.assert_identical(
            xr.Dataset(coords=rebuilt.coords), xr.Dataset(coords=sub.coords)
        )
        assert rebuilt.dims == sub.dims and len(rebuilt) == len(sub)
        for i in range(len(sub)):
            assert_tree_equal(rebuilt[i], sub[i])


@pytest.mark.parametrize(
    "key", [jax.random.PRNGKey(5), jax.random.key(5, impl="rbg")], ids=["raw-uint32", "rbg"]
)
def test_from_attrs_keeps_the_key_and_its_implementation(key, assert_tree_equal):
    state = {"u": UniformAxis(0.0, 1.0, 3), "v": UniformAxis(2.0, 3.0, 3)}
    space = Space(state, mode="product", key=key)
    rebuilt = Space.from_attrs(json.loads(json.dumps(space.attrs)), state=state)
    for i in range(len(space)):
        assert_tree_equal(rebuilt[i], space[i])
    keys = jax.random.split(key, 3)
    assert space[0]["u"] == np.asarray(UniformAxis(0.0, 1.0, 3).generate_values(keys[1]))[0]


def test_from_attrs_needs_the_entries():
    with pytest.raises(ValueError, match="attrs lack the labeled_spaces entry"):
        Space.from_attrs({"labeled_spaces:mode": "zip"})


# ---------------------------------------------------------------------------
# block values inside jit (the layout executors use)
# ---------------------------------------------------------------------------


def _lane(space: Space, batched: Any, k: int) -> Any:
    """Lane ``k`` of an assembled block, fixed leaves as they are."""
    leaves = jax.tree.leaves(batched, is_leaf=lambda x: x is None)
    axis_pos = set(space.layout.axis_positions)
    # index NumPy copies: indexing a JAX array compiles a slice per shape
    picked = [np.asarray(leaf)[k] if j in axis_pos else leaf for j, leaf in enumerate(leaves)]
    return jax.tree.unflatten(jax.tree.structure(batched, is_leaf=lambda x: x is None), picked)


def _block_fn(space: Space, block: tuple[int, ...], with_leaves: bool = False):
    layout = space.layout
    if with_leaves:
        return jax.jit(lambda t, o, lv: layout.assemble(layout.block_values(t, o, block), lv))
    return jax.jit(lambda t, o: layout.assemble(layout.block_values(t, o, block)))


def nonscalar_state() -> dict:
    return {
        "fixed": 1.5,
        "g": GridAxis(0.0, 1.0, 3, shape=(3,)),
        "m": DataAxis(np.arange(8.0).reshape(2, 2, 2)),
        "n": NumPyroAxis(dist.Normal(0.0, 1.0), 2, sample_shape=(2, 2)),
    }


def test_product_over_nonscalar_axes_matches_itertools():
    space = Space(nonscalar_state(), mode="product", key=KEY)
    assert space.shape == (3, 2, 2) and len(space) == 12
    keys = jax.random.split(KEY, 4)[1:]
    axes = [nonscalar_state()[k] for k in ("g", "m", "n")]
    tables = [np.asarray(a.generate_values(k)) for a, k in zip(axes, keys, strict=True)]
    expected = list(itertools.product(*tables))
    for i, (g, m, n) in enumerate(expected):
        point = space[i]
        assert point["fixed"] == 1.5
        assert np.array_equal(point["g"], g) and point["g"].shape == (3,)
        assert np.array_equal(point["m"], m) and point["m"].dtype == np.float32
        assert np.array_equal(point["n"], n) and point["n"].shape == (2, 2)
    ds = space.to_xarray()
    assert ds["n_values"].shape == (3, 2, 2, 2, 2)
    assert np.array_equal(ds["n_values"].values[2, 1, 0], tables[2][0])


def test_block_values_under_jit_equal_getitem(assert_tree_equal):
    space = Space(nonscalar_state(), mode="product", key=KEY)
    blocks = space.layout.blocks(5)
    assert blocks.step == (1, 2, 2)
    fn = _block_fn(space, blocks.compiled)
    for block in blocks:
        out = fn(space.layout.device_tables(), space.layout.grid.origin(block.start))
        assert out["g"].shape == (4, 3) and out["n"].shape == (4, 2, 2)
        assert out["fixed"] == 1.5
        for k in range(block.size):
            want = space[block.start + k]  # a block is a contiguous run of the flat index
            assert_tree_equal(_lane(space, out, k), want, check_dtype=False)


def test_block_values_with_leaves_and_groups(assert_tree_equal):
    state = {
        "a": GridAxis(0.0, 1.0, 3, group="g"),
        "b": UniformAxis(0.0, 1.0, 3, group="g"),
        "c": LogGridAxis(1.0, 100.0, 3),
        "k": 2.0,
    }
    space = Space(state, mode="product", key=KEY)
    layout = space.layout
    leaves = [
        None if j in layout.axis_positions else jnp.asarray(x)
        for j, x in enumerate(layout.leaves)
    ]
    out = _block_fn(space, (3, 3), with_leaves=True)(
        layout.device_tables(), layout.grid.origin(0), leaves
    )
    for k in range(9):
        assert_tree_equal(_lane(space, out, k), space[k], check_dtype=False)


def test_block_values_at_the_edge(assert_tree_equal):
    space = Space(nonscalar_state(), mode="product", key=KEY)
    out = _block_fn(space, (2, 2, 2))(
        space.layout.device_tables(), np.asarray([2, 0, 0], np.int32)
    )
    # rows past the edge (3) are clipped: the block is rows 2, 2 of the grid
    digits = [(2, m, n) for _ in range(2) for m in range(2) for n in range(2)]
    for k, d in enumerate(digits):
        want = space[space.layout.grid.ravel(d)]
        assert_tree_equal(_lane(space, out, k), want, check_dtype=False)


def test_zip_block_values_unequal_sizes(assert_tree_equal):
    with pytest.warns(UserWarning):
        space = Space({"a": GridAxis(0.0, 1.0, 4), "b": DataAxis([[1, 2], [3, 4], [5, 6]])})
    out = _block_fn(space, (3,))(space.layout.device_tables(), space.layout.grid.origin(1))
    assert np.asarray(out["b"]).tolist() == [[3, 4], [5, 6], [5, 6]]
    for k in range(3):
        assert_tree_equal(_lane(space, out, k), space[min(1 + k, 2)], check_dtype=False)


def test_large_value_coordinates_are_left_out(monkeypatch):
    import labeled_spaces.space.coords as space_module

    state = {"w": DataAxis(np.arange(24.0).reshape(6, 2, 2)), "x": GridAxis(0.0, 1.0, 2)}
    assert "w_value" in Space(state, mode="product").coords
    monkeypatch.setattr(space_module, "MAX_VALUE_COORD", 23)  # 24 elements: too many
    space = Space(state, mode="product")
    assert "w_value" not in space.coords and "w" in space.coords
    # the values themselves are all still there
    assert space.to_xarray()["w_values"].shape == (6, 2, 2, 2)


def test_sel_errors_from_pandas_name_the_query():
    space = Space(
        {"d": DataAxis([1.0, 2.0, 3.0], labels=["a", "b", "c"]),
         "r": DataAxis([1.0, 1.0, 2.0], name="rep")},
        mode="product",
    )
    with pytest.raises(TypeError, match=r"sel \{'d': 'b'\} with method='nearest': "):
        space.sel(d="b", method="nearest")
    with pytest.raises(SelectionError, match=r"sel \{'rep': 1.0\} with method='nearest': "):
        space.sel(rep=1.0, method="nearest")  # repeated labels have no nearest one
    zipped = Space({"a": GridAxis(0.0, 1.0, 3), "b": GridAxis(0.0, 1.0, 3)})
    # several coordinates of one dimension: fine where they agree, named where they don't
    assert len(zipped.sel(a=[0.5], b=[0.5])) == 1
    with pytest.raises(SelectionError, match=r"a=\[0.5\] and b=\[1.0\] pick different"):
        zipped.sel(a=[0.5], b=[1.0])


def test_value_dims_may_not_clash_with_other_names():
    state = {"w": DataAxis(np.zeros((3, 2))), "v": GridAxis(0.0, 1.0, 2, name="w_dim_0")}
    with pytest.raises(ValueError, match=r"duplicate dimension or coordinate name 'w_dim_0'"):
        Space(state, mode="product")


def test_slicing_beyond_2_63_combinations(monkeypatch, assert_tree_equal):
    import labeled_spaces.space.subspace as space_module

    huge = Space({f"a{k}": GridAxis(0.0, 1.0, 10_000) for k in range(5)}, mode="product")
    assert huge.N == 10**20  # len() is limited to 2**63 by Python itself
    for piece, first in ((huge[5:8], 5), (huge[-3:], 10**20 - 3), (huge[2**64::2**64], 2**64)):
        for k in range(len(piece)):
            assert_tree_equal(piece[k], huge[first + k * (2**64 if first == 2**64 else 1)])
    monkeypatch.setattr(space_module, "MAX_HUGE_SLICE", 2)
    with pytest.raises(ValueError, match=r"selects 3 combinations of a space beyond 2\*\*63"):
        huge[-3:]
    assert huge.isel(a0=[9999], a1=[9999]).sizes["a2"] == 10_000


# ---------------------------------------------------------------------------
# hardening and labels (issue 9)
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Unregistered:
    rate: Any
    weight: float = 1.0


@pytest.mark.parametrize("state", [Unregistered(GridAxis(0.0, 1.0, 2)),
                                   {"p": Unregistered(GridAxis(0.0, 1.0, 2))}],
                         ids=["root", "nested"])
def test_an_axis_in_an_unregistered_dataclass_gets_a_hint(state):
    with pytest.raises(ValueError, match=r"state must contain at least one axis .*: the "
                       r"dataclass Unregistered holds axes in \['rate'\], but JAX treats it as "
                       r"a leaf; register it as a pytree \(jax\.tree_util\.register_dataclass\)"):
        Space(state)


@pytest.mark.parametrize(
    "state, mode, clash",
    [
        ({"a": GridAxis(0, 1, 3, name="x"), "b": {"c": GridAxis(0, 1, 2, name="x")}}, "product",
         "'x': used by dimension 'x' (of the axes at 'a') and by dimension 'x' (of the axes at "
         "'b.c')"),
        ({"a": GridAxis(0, 1, 3, name="x"), "b": {"c": GridAxis(0, 1, 3, name="x")}}, "zip",
         "'x': used by the axis at 'a' and by the axis at 'b.c'"),
        ({"g": GridAxis(0, 1, 3), "h": GridAxis(0, 1, 3, group="g")}, "product",
         "'g': used by dimension 'g' (of the axes at 'h') and by dimension 'g' (of the axes at "
         "'g')"),
        ({"a": DataAxis(np.ones((2, 2)), name="w"), "w_value": GridAxis(0, 1, 2)}, "product",
         "'w_value': used by dimension 'w_value' (of the axes at 'w_value') and by the values "
         "of the axis at 'a'"),
    ],
    ids=["product", "zip", "group", "value-coordinate"],
)
def test_duplicate_names_say_which_axes_clash(state, mode, clash):
    with pytest.raises(ValueError) as info:
        Space(state, mode=mode)
    assert str(info.value) == (f"duplicate dimension or coordinate name {clash}; give the axes "
                               "distinct name= arguments")


def test_len_beyond_2_63_says_to_use_N():
    huge = Space({f"a{k}": GridAxis(0.0, 1.0, 10_000) for k in range(5)}, mode="product")
    assert huge.N == 10**20
    with pytest.raises(OverflowError, match=r"^the space has 100,000,000,000,000,000,000 "
                       r"combinations, more than len\(\) can return \(2\*\*63 - 1\); "
                       r"use space\.N$"):
        len(huge)


def test_collect_padding_warns_with_the_value_the_padding_really_holds():
    space = Space({"f": GridAxis(0.0, 1.0, 3), "i": DataAxis(np.array([1, 2, 3], np.int32)),
                   "m": DataAxis([True, False, True])})
    with pytest.warns(UserWarning) as record:
        padded = space.collect(n_vmap=2)
    assert str(record[0].message) == (
        "collect: 4 slots for 3 combinations; padding with nan (as 0 in the int32 axes, True "
        "in the bool axes)")
    assert np.asarray(padded["i"]).ravel().tolist() == [1, 2, 3, 0]
    assert np.asarray(padded["m"]).ravel().tolist() == [True, False, True, True]
    with pytest.warns(UserWarning, match=r"padding with inf \(as 2147483647 in the int32 axes, "
                      r"True in the bool axes\)$"):
        assert np.asarray(space.collect(n_vmap=2, fill_value=np.inf)["i"]).ravel()[3] \
            == 2**31 - 1
    with pytest.warns(UserWarning, match=r"padding with -1 \(as True in the bool axes\)$"):
        assert np.asarray(space.collect(n_vmap=2, fill_value=-1)["i"]).ravel()[3] == -1


def test_complex_and_bytes_data_axes_through_coords_sel_and_attrs(assert_tree_equal):
    state = {
        "c": DataAxis(np.array([1 + 2j, 3 - 1j, 0.5j], np.complex64)),
        "b": DataAxis([1.0, 2.0, 3.0], labels=[b"x", b"y", b"\xff"]),
        "z": DataAxis([10.0, 20.0], labels=np.array([1 + 1j, -2j])),
        "s": DataAxis(np.array([b"ab", b"cd"]).view(np.uint8).reshape(2, 2)),
    }
    space = Space(state, mode="product", key=KEY)
    coords = space.coords
    assert coords["c"].dtype == np.complex64 and coords["c"].values.tolist() == [1 + 2j, 3 - 1j,
                                                                                 0.5j]
    assert coords["b"].dtype == np.dtype("S1") and coords["b"].values.tolist() == [b"x", b"y",
                                                                                   b"\xff"]
    assert coords["z"].dtype == np.complex128
    ds = space.to_xarray()
    assert ds["c_values"].dtype == np.complex64 and ds["c_values"].dims == ("b", "c", "s", "z")
    assert ds["c_values"].values[0, 1, 0, 0] == np.complex64(3 - 1j)
    assert ds["b"].values.tolist() == [b"x", b"y", b"\xff"]
    picked = space.sel(c=3 - 1j, b=b"\xff", z=-2j)
    assert picked.sizes == {"s": 2}
    assert complex(picked.coords["c"]) == 3 - 1j and picked.coords["b"].item() == b"\xff"
    assert_tree_equal(picked[1], space[space.layout.grid.ravel((2, 1, 1, 1))])
    assert space.sel(b="y").sizes == {"c": 3, "s": 2, "z": 2}  # a str finds its bytes label
    assert space.sel(z=[-2j, 1 + 1j]).coords["z"].values.tolist() == [-2j, 1 + 1j]
    rebuilt = Space.from_attrs(json.loads(json.dumps(space.attrs)))
    xr.testing.assert_identical(xr.Dataset(coords=rebuilt.coords), xr.Dataset(coords=coords))
    for i in range(len(space)):
        assert_tree_equal(rebuilt[i], space[i])


def test_clear_caches_forgets_the_tables_a_space_put_on_the_device():
    import gc
    import weakref

    import labeled_spaces

    space = Space({"a": GridAxis(0.0, 1.0, 4), "b": GridAxis(0.0, 1.0, 3)}, mode="product")
    first = space.layout.device_tables()
    assert space.layout.device_tables() is first  # made once per placement
    point = space[5]
    tables = weakref.ref(first[0])
    del first
    labeled_spaces.clear_caches()
    gc.collect()
    assert tables() is None  # nothing holds the device copy any more
    again = space.layout.device_tables()
    np.testing.assert_array_equal(np.asarray(again[0]), space.layout.tables[0])
    assert space[5] == point
    # a Space that is gone is not kept alive by the registry
    gone = weakref.ref(Space({"c": GridAxis(0.0, 1.0, 2)}).layout)
    gc.collect()
    assert gone() is None

"""Results: the flat TVB-Optim view, the labeled xarray view, DataFrames and netCDF.

A few runs through the executors (compared with TVB-Optim 0.4.0); most labeled-view
tests build Results directly from arrays, which needs no compilation.
"""

from __future__ import annotations

import functools
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tvboptim import execution as tvb_exec
from tvboptim.types import spaces as tvb_spaces

import labeled_spaces as ls
from labeled_spaces import Results

KEY = jax.random.key(5)


def sweep_state(m):
    return {"coupling": m.GridAxis(0.0, 1.0, 5), "noise": m.UniformAxis(0.0, 0.1, 3), "dt": 0.1}


def model(state):
    ts = state["coupling"] * jnp.arange(6.0) + state["noise"] / state["dt"]
    return {"metrics": {"mean": jnp.mean(ts), "peak": jnp.max(ts)}, "activity": ts,
            "params": state}


@functools.cache
def product_space() -> ls.Space:
    return ls.Space(sweep_state(ls), mode="product", key=KEY)


@functools.cache
def product_results() -> Results:
    return ls.ParallelExecution(model, product_space(), n_vmap=4, progress=False).run()


@functools.cache
def tvb_results():
    space = tvb_spaces.Space(sweep_state(tvb_spaces), mode="product", key=KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tvb_exec.ParallelExecution(model, space, n_vmap=4).run()


def trees_close(x, y, rtol=1e-6) -> bool:
    lx, tx = jax.tree.flatten(x)
    ly, ty = jax.tree.flatten(y)
    return tx == ty and all(np.allclose(np.asarray(p), np.asarray(q), rtol=rtol, atol=0)
                            for p, q in zip(lx, ly, strict=True))


def zip_space() -> ls.Space:
    return ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 4), "noise": ls.UniformAxis(0.0, 1.0, 4),
                     "dt": 0.1}, key=KEY)


def group_space() -> ls.Space:
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 4, group="g"),
                     "b": ls.GridAxis(10.0, 20.0, 4, group="g"),
                     "c": ls.GridAxis(0.0, 1.0, 3)}, mode="product")


def direct(space: ls.Space, outputs, **kwargs) -> Results:
    """Results built from arrays: ``outputs`` is a pytree of functions of space[i]."""
    per_point = [jax.tree.map(lambda f, p=p: np.asarray(f(p)), outputs) for p in space]
    leaves = [jax.tree.leaves(x) for x in per_point]
    treedef = jax.tree.structure(per_point[0])
    arrays = [np.stack([lv[k] for lv in leaves]).reshape(space.shape + leaves[0][k].shape)
              for k in range(len(leaves[0]))]
    return Results(space, treedef, arrays, **kwargs)


# ---------------------------------------------------------------------------
# flat view: the same as TVB-Optim's ParallelResult
# ---------------------------------------------------------------------------


def test_flat_view_matches_tvboptim():
    ours, ref = product_results(), tvb_results()
    assert len(ours) == len(ref) == 15 and ours.N == ref.N == 15
    for i in range(-15, 15):
        assert trees_close(ours[i], ref[i]), i
    assert trees_close(ours[-1], ours[14]) and trees_close(ours[-15], ours[0])
    assert trees_close(ours[np.int64(4)], ref[4])
    for s in [slice(2, 11, 3), slice(None, None, -4), slice(13, 100), slice(5, 2)]:
        a, b = ours[s], ref[s]
        assert isinstance(a, list) and len(a) == len(b)
        assert all(trees_close(x, y) for x, y in zip(a, b, strict=True))
    items = list(ours)
    assert len(items) == 15
    assert all(trees_close(x, y) for x, y in zip(items, ref, strict=True))
    # values, not just agreement: combination 7 is coupling[2] x noise[1]
    p = product_space()[7]
    assert float(p["coupling"]) == 0.5
    np.testing.assert_allclose(items[7]["activity"],
                               0.5 * np.arange(6.0) + float(p["noise"]) / np.float32(0.1),
                               rtol=1e-6)


def test_flat_view_hands_out_jax_arrays_as_tvboptim(tmp_path):
    """``results[i]``, slices and iteration give JAX arrays, as TVB-Optim's do."""
    ref = tvb_results()
    stored = ls.ParallelExecution(model, product_space(), n_vmap=4, progress=False,
                                  store=tmp_path / "r.zarr").run()
    sequential = ls.SequentialExecution(model, product_space(), progress=False).run()
    for results in (product_results(), stored, ls.open_results(tmp_path / "r.zarr"),
                    sequential):
        for tree in (results[3], results[-1], results[1:3][1], next(iter(results))):
            leaves, theirs = jax.tree.leaves(tree), jax.tree.leaves(ref[3])
            assert all(isinstance(leaf, jax.Array) for leaf in leaves + theirs)
            assert [leaf.dtype for leaf in leaves] == [leaf.dtype for leaf in theirs]
            assert [leaf.shape for leaf in leaves] == [leaf.shape for leaf in theirs]
    # values JAX cannot hold as they are stay NumPy, exact: float64 without x64
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    wide = np.array([0.1, 1 / 3, 2.0]) + 1e-12
    results = Results(space, jax.tree.structure({"y": 0}), [wide])
    if not jax.config.jax_enable_x64:
        assert isinstance(results[1]["y"], np.float64) and results[1]["y"] == wide[1]


@pytest.mark.parametrize("outputs", ["bare", "vector", "tuple", "dict"])
def test_np_asarray_of_results_is_tvboptims_and_reads_the_array_itself(tmp_path, outputs):
    def f(s):
        return {"bare": s["a"] * 2, "vector": jnp.ones(3) * s["a"], "tuple": (s["a"], s["a"] * 2),
                "dict": {"y": s["a"], "v": jnp.ones(2) * s["a"]}}[outputs]

    ours = ls.ParallelExecution(f, ls.Space({"a": ls.GridAxis(0.0, 1.0, 4)}),
                                progress=False).run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tvb_exec.ParallelExecution(f, tvb_spaces.Space({"a": tvb_spaces.GridAxis(
            0.0, 1.0, 4)})).run()
    mine, theirs = np.asarray(ours), np.asarray(ref)
    assert (mine.shape, mine.dtype) == (theirs.shape, theirs.dtype)
    if mine.dtype != object:
        np.testing.assert_array_equal(mine, theirs)
    if outputs in ("bare", "vector"):  # the results' own array, read-only; np.array copies
        assert np.shares_memory(mine, ours.arrays[0]) and not mine.flags.writeable
        assert np.array(ours).flags.writeable and np.asarray(ours, dtype=np.float64).dtype == float
        stored = ls.ParallelExecution(f, ls.Space({"a": ls.GridAxis(0.0, 1.0, 4)}),
                                      progress=False, store=tmp_path / "r.zarr").run()
        np.testing.assert_array_equal(np.asarray(ls.open_results(tmp_path / "r.zarr")), theirs)
        assert np.asarray(stored).shape == theirs.shape


def test_flat_view_errors():
    results = product_results()
    with pytest.raises(IndexError):
        results[15]
    with pytest.raises(IndexError):
        results[-16]
    with pytest.raises(TypeError):
        results[1.0]
    with pytest.raises(KeyError, match="metrics.mean"):
        results["nope"]


def test_to_dataframe_matches_tvboptim():
    ours, ref = product_results().to_dataframe(), tvb_results().to_dataframe()
    assert list(ours.columns) == list(ref.columns) == [
        "coupling", "noise", "activity", "metrics.mean", "metrics.peak", "params.coupling",
        "params.dt", "params.noise"]
    array_cols = ["activity"]
    pd.testing.assert_frame_equal(ours.drop(columns=array_cols), ref.drop(columns=array_cols),
                                  check_dtype=False, rtol=1e-6)
    for a, b in zip(ours["activity"], ref["activity"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# ---------------------------------------------------------------------------
# labeled view
# ---------------------------------------------------------------------------


def test_string_key_is_a_labeled_dataarray():
    results, space = product_results(), product_space()
    mean = results["metrics.mean"]
    assert isinstance(mean, xr.DataArray)
    assert mean.name == "metrics.mean"
    assert mean.dims == ("coupling", "noise")
    np.testing.assert_array_equal(mean.coords["coupling"].values, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(mean.coords["noise"].values,
                                  [float(space[i]["noise"]) for i in range(3)])
    flat = [float(r["metrics"]["mean"]) for r in results]
    np.testing.assert_array_equal(mean.values.ravel(), flat)
    # select by label
    assert float(mean.sel(coupling=0.75).isel(noise=2)) == flat[3 * 3 + 2]


def test_to_xarray_layout_product():
    results, space = product_results(), product_space()
    ds = results.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert sorted(ds.data_vars) == ["activity", "metrics.mean", "metrics.peak",
                                    "params.coupling", "params.dt", "params.noise"]
    assert ds["activity"].dims == ("coupling", "noise", "activity_dim_0")
    assert ds["activity"].shape == (5, 3, 6)
    assert ds["metrics.peak"].dims == ("coupling", "noise")
    # coords are the space's coords
    assert set(ds.coords) == set(space.coords)
    for name in space.coords:
        xr.testing.assert_identical(ds.coords[name].variable, space.coords[name].variable)
    # values on the grid follow the flat index
    for i in range(space.N):
        c, n = np.unravel_index(i, space.shape)
        np.testing.assert_array_equal(ds["activity"].values[c, n], results[i]["activity"])
        assert ds["params.noise"].values[c, n] == space[i]["noise"]
    # a product dim selects by value
    sel = results.sel(coupling=0.5)
    assert isinstance(sel, xr.Dataset)
    np.testing.assert_array_equal(sel["metrics.mean"].values,
                                  [results[6 + k]["metrics"]["mean"] for k in range(3)])
    isel = results.isel(noise=1)
    assert isinstance(isel, xr.Dataset) and isel["activity"].dims == ("coupling",
                                                                       "activity_dim_0")
    np.testing.assert_array_equal(isel["activity"].values[4], results[13]["activity"])
    # attrs: all strings, enough to rebuild the space
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in ds.attrs.items())
    assert json.loads(ds.attrs["labeled_spaces:outputs"]) == results.names


@pytest.mark.parametrize("make", [product_space, zip_space, group_space])
def test_attrs_rebuild_the_space(make):
    space = make()
    results = direct(space, {"s": lambda p: sum(float(x) for x in jax.tree.leaves(p))})
    attrs = results.to_xarray().attrs
    rebuilt = ls.Space.from_attrs(attrs, state=space.state)
    assert len(rebuilt) == len(space) and rebuilt.dims == space.dims
    for i in range(len(space)):
        a, b = jax.tree.flatten(rebuilt[i]), jax.tree.flatten(space[i])
        assert a[1] == b[1]
        assert all(np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype
                   for x, y in zip(a[0], b[0], strict=True))
    # without the state: the axes by key path, same values
    bare = ls.Space.from_attrs(attrs)
    for i in range(len(space)):
        by_path = dict(bare[i])
        for path, name in zip(space.paths, space.names, strict=True):
            assert np.array_equal(by_path[path], space[i][name]), (i, path)


def test_zip_dim_selects_by_coordinate():
    space = zip_space()
    results = direct(space, {"y": lambda p: 2 * p["coupling"] + p["noise"]})
    ds = results.to_xarray()
    assert ds["y"].dims == ("sample",)
    assert "coupling" in ds.xindexes and "noise" in ds.xindexes
    one = results.sel(coupling=2 / 3, method="nearest")
    assert isinstance(one, xr.Dataset)
    assert int(one["sample"]) == 2
    np.testing.assert_allclose(float(one["y"]), 2 * float(space[2]["coupling"])
                               + float(space[2]["noise"]), rtol=1e-6)
    exact = ds.sel(coupling=1.0)
    assert int(exact["sample"]) == 3
    noise = float(space[1]["noise"])
    assert int(ds.sel(noise=ds["noise"].values[1])["sample"]) == 1
    assert float(ds["noise"].values[1]) == noise
    assert results.isel(sample=[0, 3])["y"].values.tolist() == [
        float(results[0]["y"]), float(results[3]["y"])]


def test_group_dim_selects_by_coordinate():
    space = group_space()
    results = direct(space, {"y": lambda p: p["a"] + p["b"] * p["c"]})
    ds = results.to_xarray()
    assert ds["y"].dims == ("g", "c")
    row = results.sel(b=20.0)
    assert row["y"].dims == ("c",)
    assert float(row["a"]) == 1.0 and int(row["g"]) == 3
    np.testing.assert_allclose(row["y"].values, 1.0 + 20.0 * np.array([0.0, 0.5, 1.0]))
    point = results.sel(a=1 / 3, c=0.5, method="nearest")
    np.testing.assert_allclose(float(point["y"]), float(results[1 * 3 + 1]["y"]), rtol=0)


def test_output_names_for_bare_tuple_and_list_outputs():
    space = zip_space()
    bare = direct(space, lambda p: p["coupling"] * np.ones(3, dtype=np.float32))
    ds = bare.to_xarray()
    assert list(ds.data_vars) == ["result"]
    assert ds["result"].dims == ("sample", "result_dim_0")
    assert bare["result"].shape == (4, 3)

    pair = direct(space, (lambda p: p["coupling"], lambda p: np.full((2, 2), p["noise"])))
    ds = pair.to_xarray()
    assert list(ds.data_vars) == ["[0]", "[1]"]
    assert ds["[1]"].dims == ("sample", "[1]_dim_0", "[1]_dim_1")
    np.testing.assert_array_equal(pair["[0]"].values, [float(p["coupling"]) for p in space])
    assert isinstance(pair[1], tuple) and pair[1][1].shape == (2, 2)

    listed = direct(space, [lambda p: p["noise"], {"m": lambda p: p["coupling"]}])
    assert list(listed.to_xarray().data_vars) == ["[0]", "[1].m"]
    assert isinstance(listed[0], list)


def test_output_name_colliding_with_a_coordinate():
    space = zip_space()
    results = direct(space, {"coupling": lambda p: 10 * p["coupling"],
                             "sample": lambda p: p["noise"], "other": lambda p: p["noise"]})
    ds = results.to_xarray()
    assert sorted(ds.data_vars) == ["other", "result.coupling", "result.sample"]
    # the coordinates are untouched
    np.testing.assert_array_equal(ds["coupling"].values, space.coords["coupling"].values)
    np.testing.assert_allclose(ds["result.coupling"].values, 10 * ds["coupling"].values,
                               rtol=1e-6)
    # both the output's own name and the renamed one find it
    xr.testing.assert_identical(results["coupling"], ds["result.coupling"])
    xr.testing.assert_identical(results["result.coupling"], ds["result.coupling"])
    # the flat view keeps the model's own names
    assert set(results[0]) == {"coupling", "sample", "other"}
    df = results.to_dataframe()
    assert "result.coupling" in df.columns and "coupling" in df.columns


def test_renamed_outputs_never_overwrite_one_another():
    space = zip_space()
    results = direct(space, {"coupling": lambda p: 10 * p["coupling"],
                             "result.coupling": lambda p: 0 * p["noise"]})
    ds = results.to_xarray()
    # "coupling" is a coordinate; its renamed form is another output's own name
    assert sorted(ds.data_vars) == ["result.coupling", "result.coupling_"]
    np.testing.assert_allclose(ds["result.coupling_"].values, 10 * ds["coupling"].values,
                               rtol=1e-6)
    assert (ds["result.coupling"].values == 0).all()
    xr.testing.assert_identical(results["coupling"], ds["result.coupling_"])
    df = results.to_dataframe()
    assert (df["result.coupling"] == 0).all()
    np.testing.assert_allclose(df["result.coupling_"], 10 * df["coupling"], rtol=1e-6)


def test_partial_results_keep_an_output_named_computed():
    space = product_space()
    arrays = [np.arange(15.0).reshape(5, 3)]
    done = np.zeros((5, 3), dtype=bool)
    done[:2] = True
    results = Results(space, jax.tree.structure({"computed": 0}), arrays, done=done)
    ds = results.to_xarray()
    np.testing.assert_array_equal(ds["computed"].values, done)
    np.testing.assert_array_equal(ds["result.computed"].values, arrays[0])
    # complete results have no mask: the output keeps its name
    whole = Results(space, jax.tree.structure({"computed": 0}), [np.arange(15.0).reshape(5, 3)])
    assert list(whole.to_xarray().data_vars) == ["computed"]


def test_output_dims():
    space = product_space()
    outputs = {"ts": lambda p: p["coupling"] * np.arange(4.0),
               "img": lambda p: np.zeros((2, 3)) + p["noise"]}
    results = direct(space, outputs, output_dims={"ts": ("time",), "img": ["row", "col"]})
    ds = results.to_xarray()
    assert ds["ts"].dims == ("coupling", "noise", "time")
    assert ds["img"].dims == ("coupling", "noise", "row", "col")
    assert json.loads(ds.attrs["labeled_spaces:output_dims"]) == {
        "ts": ["time"], "img": ["row", "col"]}
    # partly named: the others keep {name}_dim_{k}
    ds = direct(space, outputs, output_dims={"ts": "time"}).to_xarray()
    assert ds["img"].dims == ("coupling", "noise", "img_dim_0", "img_dim_1")
    assert ds["ts"].dims == ("coupling", "noise", "time")


@pytest.mark.parametrize("output_dims,error,match", [
    ({"nope": ("t",)}, ValueError, "nope"),
    ({"ts": ("t", "u")}, ValueError, "ts"),
    ({"ts": ()}, ValueError, "ts"),
    ({"ts": ("noise",)}, ValueError, "noise"),
    ({"ts": (3,)}, ValueError, "ts"),
    ({"ts": ("",)}, ValueError, r"non-empty strings, got \(''"),
    ({"ts": 4}, TypeError, r"output_dims\['ts'\] must be a tuple of dimension names, got 4"),
    ({"img": ("t", "t")}, ValueError, r"names a dimension twice: \('t', 't'\)"),
    ({"ts": ("t",), "img": ("t", "u")}, ValueError,
     r"dimension 't' length 4 \(output 'ts'\) and length 2 \(output 'img'\)"),
    ([("ts", ("t",))], TypeError, "output_dims"),
])
def test_output_dims_errors(output_dims, error, match):
    with pytest.raises(error, match=match):
        direct(product_space(), {"ts": lambda p: p["coupling"] * np.arange(4.0),
                                 "img": lambda p: np.zeros((2, 2)) + p["noise"]},
               output_dims=output_dims)


def test_output_dims_may_not_reuse_the_dims_of_value_coordinates():
    space = ls.Space({"x": ls.GridAxis(0.0, 1.0, 3),
                      "m": ls.DataAxis(np.ones((3, 4)), labels=list("abc"))}, mode="product")
    assert space.coords["m_value"].dims == ("m", "m_dim_0")
    with pytest.raises(ValueError, match=r"reuses the space's dimension or coordinate .*m_dim_0"):
        ls.ParallelExecution(lambda s: jnp.zeros(5), space, output_dims={"result": ("m_dim_0",)},
                             progress=False).run()


def test_an_output_named_like_an_output_dim_is_renamed():
    results = direct(product_space(), {"y": lambda p: np.zeros(5) + p["noise"],
                                       "t": lambda p: p["coupling"]},
                     output_dims={"y": ("t",)})
    ds = results.to_xarray()
    assert ds["y"].dims == ("coupling", "noise", "t") and "t" not in ds.coords
    assert ds["result.t"].dims == ("coupling", "noise")


def test_output_dims_may_not_reuse_a_zip_coordinate():
    with pytest.raises(ValueError, match=r"reuses the space's dimension or coordinate .*'noise'"):
        direct(zip_space(), {"ts": lambda p: p["coupling"] * np.arange(4.0)},
               output_dims={"ts": ("noise",)})
    # the same length under one name in two outputs is one shared dimension
    ds = direct(zip_space(), {"ts": lambda p: p["coupling"] * np.arange(4.0),
                              "vs": lambda p: p["noise"] * np.arange(4.0)},
                output_dims={"ts": ("t",), "vs": ("t",)}).to_xarray()
    assert ds["ts"].dims == ds["vs"].dims == ("sample", "t")


def test_repr_names_dims_and_outputs():
    text = repr(product_results())
    assert "coupling: 5" in text and "noise: 3" in text
    assert "metrics.mean" in text and "activity (6,)" in text


# ---------------------------------------------------------------------------
# netCDF
# ---------------------------------------------------------------------------


def test_netcdf_round_trip(tmp_path):
    results = product_results()
    ds = results.to_xarray()
    path = tmp_path / "sweep.nc"
    results.to_netcdf(path)
    with xr.open_dataset(path) as loaded:
        loaded.load()
    xr.testing.assert_identical(loaded, ds)
    assert loaded.attrs == ds.attrs
    rebuilt = ls.Space.from_attrs(loaded.attrs, state=product_space().state)
    assert all(np.array_equal(rebuilt[i]["noise"], product_space()[i]["noise"])
               for i in range(15))


def test_netcdf_round_trip_zip_and_tuple_outputs(tmp_path):
    space = zip_space()
    results = direct(space, (lambda p: p["coupling"], lambda p: np.full(2, p["noise"])))
    ds = results.to_xarray()
    path = tmp_path / "pair.nc"
    results.to_netcdf(path)  # "[0]" is not a legal netCDF name
    with xr.open_dataset(path) as loaded:
        loaded.load()
    renamed = json.loads(loaded.attrs.pop("labeled_spaces:netcdf_names"))
    assert renamed == {"result[0]": "[0]", "result[1]": "[1]",
                       "result[1]_dim_0": "[1]_dim_0"}
    restored = loaded.rename(renamed)
    # netCDF keeps the values of the zip coordinates, not their indexes
    xr.testing.assert_equal(restored, ds.drop_indexes(["coupling", "noise"]))
    assert restored.attrs == ds.attrs
    np.testing.assert_array_equal(restored["[1]"].values[:, 0],
                                  [float(p["noise"]) for p in space])


def test_netcdf_round_trip_of_complex_outputs(tmp_path):
    space = zip_space()
    results = direct(space, {"z": lambda p: np.complex64(p["coupling"] + 1j * p["noise"]),
                             "r": lambda p: p["noise"]})
    path = tmp_path / "complex.nc"
    results.to_netcdf(path)  # xarray alone refuses complex data without auto_complex=True
    with xr.open_dataset(path, auto_complex=True) as loaded:
        loaded.load()
    xr.testing.assert_equal(loaded["z"], results.to_xarray()["z"])
    assert loaded["z"].dtype == np.complex64


def test_partial_results_are_labeled():
    space = product_space()
    arrays = [np.arange(15.0).reshape(5, 3)]
    done = np.zeros((5, 3), dtype=bool)
    done[:2] = True
    arrays[0][~done] = np.nan
    results = Results(space, jax.tree.structure({"y": 0}), arrays, done=done)
    ds = results.to_xarray()
    np.testing.assert_array_equal(ds["computed"].values, done)
    assert "partial (6 computed)" in repr(results)
    assert float(results[4]["y"]) == 4.0 and np.isnan(results[6]["y"])


def test_netcdf_names_of_a_list_state(tmp_path):
    # a list-rooted state names its dimensions "[0]", "[1].g": saved as "state[0]", ...
    space = ls.Space([ls.GridAxis(0.0, 1.0, 3), {"g": ls.GridAxis(0.0, 1.0, 2)}],
                     mode="product")
    assert space.dims == ("[0]", "[1].g")
    results = direct(space, (lambda p: p[0] + p[1]["g"], lambda p: np.ones(2) * p[0]))
    ds = results.to_xarray()
    assert list(ds.data_vars) == ["result.[0]", "[1]"]  # "[0]" is taken by a coordinate
    results.to_netcdf(tmp_path / "list.nc")
    with xr.open_dataset(tmp_path / "list.nc") as loaded:
        loaded.load()
    renamed = json.loads(loaded.attrs.pop("labeled_spaces:netcdf_names"))
    assert renamed == {"state[0]": "[0]", "state[1].g": "[1].g", "result[1]": "[1]",
                       "result[1]_dim_0": "[1]_dim_0"}
    xr.testing.assert_identical(loaded.rename(renamed), ds)


def test_isel_of_an_unknown_name_says_which_dims_there_are_on_results_and_space():
    # xarray's own ValueError printed "Expected one or more of
    # FrozenMappingWarningOnValuesAccess({'coupling': 4, 't': 2})", with no suggestion
    space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    results = ls.ParallelExecution(lambda s: {"y": s["coupling"] * jnp.ones(2)}, space,
                                   output_dims={"y": ("t",)}, progress=False).run()
    with pytest.raises(ls.SelectionError, match=r"^\"?isel got \['couplng'\], which are not "
                                                r"dimensions of the results; expected some of "
                                                r"\['coupling', 't'\]; did you mean coupling\?"):
        results.isel(couplng=1)
    with pytest.raises(ValueError, match=r"isel got \['zzz'\]"):  # a ValueError, as xarray's
        results.isel(zzz=0)
    assert dict(results.isel(couplng=1, missing_dims="ignore").sizes) == {"coupling": 4, "t": 2}
    assert results.isel(coupling=3, t=1)["y"].item() == 1.0
    with pytest.raises(ls.SelectionError, match=r"isel got \['couplng'\].*did you mean coupling"):
        space.isel(couplng=1)
    with pytest.raises(ls.SelectionError, match=r"sel got \['couplng'\].*did you mean coupling"):
        space.sel(couplng=0.5)


def test_sel_of_an_unknown_name_says_which_names_there_are():
    # xarray's own KeyError printed "FrozenMappingWarningOnValuesAccess({'coupling': 4})"
    space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    results = ls.ParallelExecution(lambda s: {"y": s["coupling"] * jnp.ones(2)}, space,
                                   output_dims={"y": ("t",)}, progress=False).run()
    with pytest.raises(ls.SelectionError, match=r"sel got \['couplng'\].*expected some of "
                                                r"\['coupling', 't'\]; did you mean coupling\?"):
        results.sel(couplng=0.3)
    with pytest.raises(KeyError):  # a SelectionError is a KeyError, as xarray's
        results.sel(tme=0)
    assert results.sel(coupling=1.0, t=1)["y"].item() == 1.0

"""Output labels: names, own dimensions, coordinates and attributes, in memory and in files."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import labeled_spaces as ls

T = np.linspace(0.0, 0.9, 4)


def space():
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 3), "s": ls.GridAxis(1.0, 2.0, 2)},
                    mode="product")


def model(state):
    return {"R_t": state["k"] * jnp.arange(4.0), "order": state["k"] + state["s"]}


EXECUTORS = [ls.ParallelExecution, ls.SequentialExecution]
LABELS = dict(
    output_dims={"R_t": ("time",)},
    output_coords={"time": (T, {"units": "ms", "long_name": "time"})},
    output_attrs={"R_t": {"units": "1", "long_name": "order parameter"},
                  "order": {"units": "1"}},
)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_output_coords_and_attrs_reach_the_dataset(executor):
    results = executor(model, space(), progress=False, **LABELS).run()
    ds = results.to_xarray()
    assert ds["R_t"].dims == ("k", "s", "time")
    np.testing.assert_array_equal(ds["time"].values, T)
    assert ds["time"].attrs == {"units": "ms", "long_name": "time"}
    assert ds["R_t"].attrs == {"units": "1", "long_name": "order parameter"}
    assert ds["order"].attrs == {"units": "1"}
    # a real time axis: select and plot by it
    assert float(ds["R_t"].sel(k=1.0, s=1.0, time=0.6)) == 2.0
    assert results["R_t"].attrs["long_name"] == "order parameter"


@pytest.mark.parametrize("coord", [
    T,
    xr.DataArray(T, dims="time", attrs={"units": "ms"}),
    (T, {"units": "ms"}),
], ids=["array", "dataarray", "values-attrs"])
def test_output_coords_forms(coord):
    results = ls.ParallelExecution(model, space(), progress=False,
                                   output_dims={"R_t": ("time",)},
                                   output_coords={"time": coord}).run()
    np.testing.assert_array_equal(results.to_xarray()["time"].values, T)


def test_non_index_output_coordinates_and_default_dims():
    labels = xr.DataArray(["a", "b", "c", "d"], dims="R_t_dim_0")
    results = ls.ParallelExecution(model, space(), progress=False,
                                   output_coords={"step": labels}).run()
    ds = results.to_xarray()
    assert ds["step"].dims == ("R_t_dim_0",) and ds["step"].values.tolist() == list("abcd")


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("options, exc, match", [
    ({"output_dims": {"R_t": ("time",)}, "output_coords": {"time": np.arange(5.0)}},
     ValueError, r"output_coords\['time'\] has 5 values along 'time', but the outputs have 4"),
    ({"output_coords": {"nope": np.arange(4.0)}}, ValueError,
     r"output_coords\['nope'\] lies along \['nope'\], which are not dimensions of any output"),
    ({"output_coords": {"k": np.arange(4.0)}}, ValueError,
     r"output_coords\['k'\] reuses a name of the space"),
    ({"output_coords": [1, 2]}, TypeError, r"output_coords must be a dict"),
    ({"output_coords": {"": np.arange(4.0)}}, ValueError,
     r"output_coords key must be a non-empty string, got ''"),
    ({"output_coords": {3: np.arange(4.0)}}, TypeError,
     r"output_coords key must be a non-empty string, got 3"),
    ({"output_attrs": {"nope": {}}}, ValueError, r"output_attrs names 'nope', which is not"),
    ({"output_attrs": {"order": "1"}}, TypeError, r"output_attrs\['order'\] must be a mapping"),
    ({"output_dims": {"R_t": ("k",)}}, ValueError, r"reuses the space's dimension"),
])
def test_bad_output_labels_are_refused_before_running(executor, options, exc, match):
    calls = []

    def counted(state):
        calls.append(1)
        return model(state)

    with pytest.raises(exc, match=match):
        executor(counted, space(), progress=False, **options).run()
    assert len(calls) <= 1  # traced once at most, never run over the space


def test_a_coordinate_for_an_unnamed_dimension_says_how_to_name_it():
    # output_coords={"time": t} without output_dims is the first thing users write
    with pytest.raises(ValueError, match=r"the outputs' dimensions are \{'R_t_dim_0': 4\}; to "
                       r"give 'R_t_dim_0' this coordinate, name it in output_dims: "
                       r"output_dims=\{'R_t': \('time',\)\}$"):
        ls.ParallelExecution(model, space(), progress=False,
                             output_coords={"time": np.arange(4.0)}).run()
    with pytest.raises(ValueError, match=r"dimensions are \{'time': 4\}; did you mean time\?$"):
        ls.ParallelExecution(model, space(), progress=False, output_dims={"R_t": ("time",)},
                             output_coords={"tme": np.arange(4.0)}).run()
    ds = ls.ParallelExecution(model, space(), progress=False, output_dims={"R_t": ("time",)},
                              output_coords={"time": np.arange(4.0)}).run().to_xarray()
    assert ds["R_t"].dims[-1] == "time"  # the hint, followed


@pytest.mark.parametrize("executor", EXECUTORS)
def test_default_output_dims_never_collide(executor):
    # an output named like another's default dim stays a data variable
    sp = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    ds = executor(lambda s: {"v": jnp.ones(2) * s["k"], "v_dim_0": s["k"]}, sp,
                  progress=False).run().to_xarray()
    assert list(ds.data_vars) == ["v", "v_dim_0"]
    assert ds["v_dim_0"].dims == ("k",) and "v_dim_0" not in ds.coords
    assert ds["v"].dims == ("k", "v_dim_0_")
    # an axis named like an output's default dim
    named = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3, name="y_dim_0")}, mode="product")
    ds = executor(lambda s: {"y": jnp.ones(2) * s["k"]}, named, progress=False).run().to_xarray()
    assert ds["y"].dims == ("y_dim_0", "y_dim_0_")
    np.testing.assert_allclose(ds["y"].values, [[0, 0], [0.5, 0.5], [1, 1]])


def test_results_are_the_names_tvboptim_code_imports():
    from labeled_spaces.execution import ParallelResult, SequentialResult

    assert ls.ParallelResult is ParallelResult and ls.SequentialResult is SequentialResult
    sp = space()
    par = ls.ParallelExecution(lambda s: s["k"], sp, progress=False).run()
    seq = ls.SequentialExecution(lambda s: s["k"], sp, progress=False).run()
    assert isinstance(par, ls.ParallelResult) and isinstance(par, ls.Results)
    assert isinstance(seq, ls.SequentialResult) and isinstance(seq, ls.Results)


def test_dataframe_names_a_bare_output_value_as_tvboptim():
    from tvboptim.execution import ParallelExecution as TvbParallel
    from tvboptim.types.spaces import GridAxis as TvbGrid
    from tvboptim.types.spaces import Space as TvbSpace

    ours = ls.ParallelExecution(lambda s: s["k"] * 2, ls.Space({"k": ls.GridAxis(0, 1, 3)}),
                                progress=False).run().to_dataframe()
    theirs = TvbParallel(lambda s: s["k"] * 2, TvbSpace({"k": TvbGrid(0, 1, 3)})).run()
    assert list(ours.columns) == list(theirs.to_dataframe().columns) == ["k", "value"]
    np.testing.assert_allclose(ours["value"], [0.0, 1.0, 2.0])


def test_repr_lists_outputs_with_dims():
    text = repr(ls.ParallelExecution(model, space(), progress=False, **LABELS).run())
    assert text.splitlines()[0] == "<labeled_spaces.ParallelResult> (k: 3, s: 2)"
    assert "    R_t (4,)  (k, s, time) float32" in text
    assert "    order ()  (k, s) float32" in text


def test_list_outputs_keep_their_names_on_disk(tmp_path):
    results = ls.ParallelExecution(lambda s: [s["k"], s["k"] * jnp.ones(2)], space(),
                                   progress=False).run()
    assert results.names == ["[0]", "[1]"]
    path = tmp_path / "list.nc"
    results.to_netcdf(path)
    back = ls.open_results(path)
    assert back.names == ["[0]", "[1]"]
    xr.testing.assert_identical(back.to_xarray().compute(), results.to_xarray())
    assert back[4][1].tolist() == results[4][1].tolist()
    assert isinstance(back[4], list)


def test_group_member_coordinates_come_back_indexed(tmp_path):
    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3, group="g"),
                   "b": ls.GridAxis(10.0, 30.0, 3, group="g"), "c": ls.GridAxis(0, 1, 2)},
                  mode="product")
    results = ls.ParallelExecution(lambda s: s["a"] + s["c"], sp, progress=False).run()
    path = tmp_path / "groups.nc"
    results.to_netcdf(path)
    with xr.open_dataset(path) as plain:  # netCDF keeps no index for a non-dim coordinate
        assert "b" not in plain.xindexes
    back = ls.open_results(path)
    assert "b" in back.to_xarray().xindexes
    assert float(back.sel(b=20.0, c=1.0)["result"]) == 1.5
    assert pd.Index(back.to_xarray().indexes["a"]).tolist() == [0.0, 0.5, 1.0]


def test_results_view_is_built_once(monkeypatch):
    import labeled_spaces.space.attrs as attrs_module

    calls = []
    encode = attrs_module.space_attrs

    def counted(*args, **kwargs):
        calls.append(1)
        return encode(*args, **kwargs)

    monkeypatch.setattr(attrs_module, "space_attrs", counted)
    sp = ls.Space({"w": ls.DataAxis(np.random.default_rng(0).random((200, 68, 68))),
                   "k": ls.GridAxis(0.0, 1.0, 2)}, mode="product")
    results = ls.ParallelExecution(lambda s: jnp.sum(s["w"]) * s["k"], sp, progress=False).run()
    for _ in range(3):
        results["result"]
        results.sel(k=1.0)
        results.to_xarray()
    assert len(calls) == 1  # the attrs (with the 925,000 DataAxis values) were made once
    # and the values are not repeated as JSON in the attrs: they are the w_value coordinate
    assert len(results.attrs["labeled_spaces:axes"]) < 10_000
    first, second = results.to_xarray(), results.to_xarray()
    first["extra"] = first["result"] * 2  # a returned Dataset is the caller's to change
    assert "extra" not in second and "extra" not in results.to_xarray()


def test_dataframe_of_1e7_results_peaks_under_3x_its_size():
    import tracemalloc

    sp = ls.Space({"a": ls.GridAxis(0.0, 1.0, 10_000), "b": ls.GridAxis(0.0, 1.0, 1000)},
                  mode="product")
    arrays = [np.arange(sp.N, dtype=np.float32).reshape(sp.shape)]
    results = ls.Results(sp, jax.tree.structure(0.0), arrays)
    tracemalloc.start()
    try:
        df = results.to_dataframe()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = int(df.memory_usage(deep=True).sum())
    assert len(df) == 10**7 and list(df.columns) == ["a", "b", "value"]
    assert df["value"].iloc[-1] == np.float32(10**7 - 1)
    assert peak <= 3 * size, (peak / 1e6, size / 1e6)

"""netCDF files: written safely, read back as they were (also the dtypes netCDF lacks)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import labeled_spaces as ls


def small():
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")


def test_a_failed_write_never_destroys_the_existing_file(tmp_path):
    path = tmp_path / "sweep.nc"
    good = ls.ParallelExecution(lambda s: s["k"], small(), progress=False).run()
    good.to_netcdf(path)
    before = path.read_bytes()
    bad = ls.ParallelExecution(lambda s: s["k"] * 2, small(), progress=False).run()
    with pytest.raises(ValueError):
        bad.to_netcdf(path, engine="no-such-engine")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.nc"]  # no temporary file left
    with pytest.raises(ValueError, match="mode must be 'w'"):
        bad.to_netcdf(path, mode="a")
    bad.to_netcdf(path)  # a good write replaces it
    with xr.open_dataset(path) as ds:
        assert ds["result"].values.tolist() == [0.0, 1.0, 2.0]


def test_float16_and_bfloat16_outputs_and_axes_round_trip(tmp_path):
    space = ls.Space({"h": ls.DataAxis(np.array([0.5, 1.5], np.float16)),
                      "g": ls.GridAxis(jnp.bfloat16(0.0), jnp.bfloat16(1.0), 3),
                      "w": ls.DataAxis(np.ones((2, 2), np.float16), labels=["a", "b"])},
                     mode="product")

    def model(s):
        return {"bf": s["g"].astype(jnp.bfloat16) * 2, "f16": s["h"] + s["w"].sum()}

    results = ls.ParallelExecution(model, space, progress=False).run()
    path = tmp_path / "narrow.nc"
    results.to_netcdf(path)
    with xr.open_dataset(path) as plain:  # widened where netCDF lacks the type
        assert plain["bf"].dtype == np.float32 and plain["bf"].attrs["labeled_spaces:dtype"] \
            == "bfloat16"
        assert plain["f16"].dtype == np.float32 and plain["h"].dtype == np.float32
    back = ls.open_results(path)
    ds, want = back.to_xarray().compute(), results.to_xarray()
    for name in ("bf", "f16", "h", "w_value"):
        assert ds[name].dtype == want[name].dtype, name
        # xarray's identical() cannot compare bfloat16: compare the values
        assert np.array_equal(ds[name].values.astype(np.float32),
                              want[name].values.astype(np.float32)), name
        assert ds[name].attrs == want[name].attrs
    assert back.space.axes[back.space.names.index("g")].generate_values().dtype == jnp.bfloat16


def test_a_stores_bfloat16_outputs_open_as_bfloat16_lazily(tmp_path):
    """zarr lacks bfloat16 too: a store holds it widened, and open_results narrows it back."""
    space = ls.Space({"g": ls.GridAxis(0.0, 1.0, 5)}, mode="product")

    def model(s):
        return {"bf": (s["g"] / 3).astype(jnp.bfloat16), "f16": s["g"].astype(jnp.float16)}

    path = tmp_path / "narrow.zarr"
    ran = ls.ParallelExecution(model, space, progress=False, store=path, chunk_size=2).run()
    back = ls.open_results(path)
    got, want = back.to_xarray(), ran.to_xarray()
    assert got["bf"].chunks is not None  # still lazy
    for name in ("bf", "f16"):
        assert got[name].dtype == want[name].dtype, name
        assert got[name].values.tobytes() == want[name].values.tobytes(), name
        assert got[name].attrs == want[name].attrs
    assert back[3]["bf"].dtype == jnp.bfloat16
    back.to_netcdf(tmp_path / "narrow.nc")  # and the export keeps it
    assert ls.open_results(tmp_path / "narrow.nc").to_xarray()["bf"].dtype == jnp.bfloat16


def test_complex_and_bytes_axes_and_outputs_round_trip(tmp_path):
    space = ls.Space({
        "z": ls.DataAxis(np.array([1 + 2j, 3 - 1j], np.complex64),
                         labels=np.array([b"p", b"q"])),
        "c": ls.DataAxis(np.array([0.5j, 1.5j])),
    }, mode="product")
    results = ls.ParallelExecution(lambda s: {"y": s["z"] * s["c"]}, space, progress=False).run()
    ds = results.to_xarray()
    assert ds["z"].dtype == np.dtype("S1") and ds["c"].dtype == np.complex128
    assert complex(results.sel(z=b"q", c=1.5j)["y"]) == pytest.approx((3 - 1j) * 1.5j)
    assert complex(results.sel(z="q", c=0.5j)["y"]) == pytest.approx((3 - 1j) * 0.5j)
    path = tmp_path / "complex.nc"
    results.to_netcdf(path)
    back = ls.open_results(path)
    xr.testing.assert_identical(back.to_xarray().compute(), ds)
    assert complex(back.sel(z=b"q", c=1.5j)["y"]) == pytest.approx((3 - 1j) * 1.5j)


def test_a_real_output_with_a_length_two_dimension_is_not_read_as_complex(tmp_path):
    # netCDF4's auto_complex would take any (..., 2) variable along a dim named "c" for
    # complex numbers: it is asked for only where the file holds complex values
    space = ls.Space({"a": ls.GridAxis(0, 1, 3), "c": ls.GridAxis(0, 1, 2)}, mode="product")
    results = ls.ParallelExecution(lambda s: s["a"] + s["c"], space, progress=False).run()
    results.to_netcdf(tmp_path / "real.nc")
    back = ls.open_results(tmp_path / "real.nc").to_xarray()
    assert back["result"].dtype == np.float32 and back["result"].shape == (3, 2)


def test_netcdf_files_open_back_with_their_space(tmp_path):
    state = {"k": ls.GridAxis(0.0, 1.0, 3, attrs={"units": "a.u."}),
             "u": ls.UniformAxis(0.0, 1.0, 2), "dt": 0.1, "w": np.eye(2, dtype=np.float32)}
    space = ls.Space(state, mode="product")

    def model(s):
        return {"y": s["k"] * s["u"] / s["dt"] + s["w"].sum()}

    results = ls.ParallelExecution(model, space, progress=False,
                                   output_attrs={"y": {"units": "1"}}).run()
    path = tmp_path / "sweep.nc"
    results.to_netcdf(path)
    back = ls.open_results(path)
    xr.testing.assert_identical(back.to_xarray().compute(), results.to_xarray())
    assert isinstance(back.to_xarray()["y"].data, type(back.arrays[0]))  # lazy (dask)
    # the space runs again from the file alone: fixed leaves included
    again = ls.ParallelExecution(model, back.space, progress=False).run()
    np.testing.assert_array_equal(again.arrays[0], results.arrays[0])
    with xr.open_dataset(path) as plain:  # and plain xarray reads the same data
        np.testing.assert_array_equal(plain["y"].values, results.arrays[0])


def test_a_mistyped_path_names_the_file_beside_it(tmp_path):
    # 'sweep.zar' or a missing folder: the error said only that the path does not exist
    ls.ParallelExecution(lambda s: s["k"], small(), progress=False).run().to_netcdf(
        tmp_path / "sweep.nc")
    with pytest.raises(FileNotFoundError, match=r"got '.*sweep\.cn'; did you mean 'sweep\.nc'\?$"):
        ls.open_results(tmp_path / "sweep.cn")
    with pytest.raises(FileNotFoundError, match=r"; there is no folder '.*results'$"):
        ls.open_results(tmp_path / "results" / "sweep.nc")
    with pytest.raises(FileNotFoundError, match=r"got '.*other\.nc'$"):  # nothing close: no hint
        ls.open_results(tmp_path / "other.nc")


def test_open_results_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path must be an existing"):
        ls.open_results(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_text("not a netCDF file")
    with pytest.raises(ValueError, match="path must be a netCDF file or zarr store"):
        ls.open_results(junk)
    plain = tmp_path / "plain.nc"
    xr.Dataset({"x": ("i", np.arange(3))}).to_netcdf(plain)
    with pytest.raises(ValueError, match="attrs lack the labeled_spaces entry"):
        ls.open_results(plain)


def test_a_state_given_to_open_results_must_be_the_one_the_file_was_made_with(tmp_path):
    # state= fills in what a file cannot describe (a function); it replaced the fixed leaves
    # the file did record, so the opened space claimed dt=0.5 for results made with dt=0.2
    def scale(x):
        return 2 * x

    state = {"k": ls.GridAxis(0.0, 1.0, 3), "dt": 0.2, "noise": ls.PointKey(), "f": scale}
    space = ls.Space(state, mode="product")
    path = tmp_path / "sweep.nc"
    ls.ParallelExecution(lambda s: s["f"](s["k"]) * s["dt"], space, progress=False
                         ).run().to_netcdf(path)
    opened = ls.open_results(path, state=state)
    assert opened.space[1]["dt"] == 0.2 and opened.space[1]["f"] is scale
    # the same NaN is the same leaf
    nan = {**state, "dt": float("nan"), "gap": jnp.array([1.0, jnp.nan])}
    ls.ParallelExecution(lambda s: s["k"], ls.Space(nan, mode="product"), progress=False
                         ).run().to_netcdf(tmp_path / "nan.nc")
    assert np.isnan(ls.open_results(tmp_path / "nan.nc", state=nan).space[0]["dt"])
    for other, match in [
        ({**state, "dt": 0.5}, r"at 'dt' the file holds 0.2, got 0.5"),
        ({**state, "noise": 0.0}, r"at 'noise' the file holds PointKey\(\), got 0.0"),
        ({k: v for k, v in state.items() if k != "dt"}, r"state without \['dt'\]"),
        ({**state, "extra": 1.0}, r"with \['extra'\] too"),
    ]:
        with pytest.raises(ValueError, match=r"state must hold the fixed leaves the results "
                                             r"were made with.*" + match):
            ls.open_results(path, state=other)


@pytest.mark.parametrize("mode", ["product", "zip", "halton"])
def test_a_state_whose_axis_differs_from_the_files_is_refused(tmp_path, mode):
    # the file's own axes were used and the state's silently ignored: a user who reopened
    # with the wrong state got no word of it
    import numpyro.distributions as dist

    state = {"u": ls.UniformAxis(0.0, 1.0, 4), "n": ls.NumPyroAxis(dist.Normal(0.0, 1.0), 4),
             "d": ls.DataAxis(jnp.arange(4.0)), "dt": 0.1}
    space = ls.Space(state, mode=mode)
    path = tmp_path / "r.nc"
    ls.ParallelExecution(lambda s: s["u"] + s["n"] + s["d"] * s["dt"], space, progress=False
                         ).run().to_netcdf(path)
    assert ls.open_results(path, state=state).space.N == space.N
    for other, match in [
        ({**state, "u": ls.UniformAxis(0.0, 5.0, 4)}, r"at 'u' the file holds UniformAxis\("
                                                      r"low=0.0, high=1.0, n=4\), got "),
        ({**state, "n": ls.NumPyroAxis(dist.Normal(0.0, 2.0), 4)}, r"at 'n' the file holds"),
        ({**state, "d": ls.DataAxis(jnp.arange(4.0) + 1)}, r"at 'd' the file holds"),
    ]:
        with pytest.raises(ValueError, match=r"state must hold the axes the results were "
                                             r"made with: " + match):
            ls.open_results(path, state=other)


@pytest.mark.parametrize("attrs", [{"nest": {"x": 1}}, {"none": None}])
def test_an_attr_netcdf_cannot_hold_is_refused_naming_it(tmp_path, attrs):
    # xarray's own TypeError named no variable
    (key, value), = attrs.items()
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3, attrs=attrs)}, mode="product")
    results = ls.ParallelExecution(lambda s: s["k"] * 2, space, progress=False).run()
    with pytest.raises(TypeError, match=rf"the attrs of 'k' must hold strings, numbers, arrays "
                                        rf"or lists for netCDF: got {key}=.*"
                                        rf"\({type(value).__name__}\)"):
        results.to_netcdf(tmp_path / "r.nc")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["axis", "output_attrs", "output_coords"])
@pytest.mark.parametrize("value", [object(), {1, 2}, {"deep": [1, object()]}])
def test_an_attr_no_file_can_hold_is_refused_where_it_is_given(tmp_path, where, value):
    # it failed once the run wrote its attrs, with json's "Object of type object is not
    # JSON serializable", naming nothing; now where it is given, before anything runs
    def run():
        axis = ls.GridAxis(0.0, 1.0, 3, attrs={"bad": value} if where == "axis" else None)
        options = {"output_attrs": {"result": {"bad": value}}} if where == "output_attrs" else {
            "output_coords": {"t": (np.arange(2), {"bad": value})}} if where == "output_coords" \
            else {}
        return ls.ParallelExecution(lambda s: s["k"] * jnp.ones(2), ls.Space({"k": axis}),
                                    progress=False, output_dims={"result": ("t",)},
                                    store=tmp_path / "r.zarr", **options).run()

    named = {"axis": r"attrs\['bad'\]", "output_attrs": r"output_attrs\['result'\]\['bad'\]",
             "output_coords": r"the attrs of output_coords\['t'\]\['bad'\]"}[where]
    with pytest.raises(TypeError, match=named + r" must be a string, number, array, or a list "
                                                r"or dict of these, got .* \((object|set|dict)\)"):
        run()
    assert not (tmp_path / "r.zarr").exists()


@pytest.mark.parametrize("attrs", [{"flag": True}, {"flags": np.array([True, False])},
                                   {"flag": np.bool_(False)}])
def test_a_bool_attr_is_refused_for_netcdf_naming_it_and_no_file_is_left(tmp_path, attrs):
    space = ls.Space({"k": ls.GridAxis(0.0, 1.0, 3)}, mode="product")
    results = ls.ParallelExecution(lambda s: s["k"] * 2, space, progress=False,
                                   output_attrs={"result": {"units": "1", **attrs}}).run()
    (key, value), = attrs.items()
    with pytest.raises(TypeError, match=rf"the attrs of 'result' must hold no bool for netCDF, "
                                        rf"which has no bool attrs: got {key}="):
        results.to_netcdf(tmp_path / "r.nc")
    assert list(tmp_path.iterdir()) == []
    # the same results keep their bool attr in a zarr store
    store = ls.ParallelExecution(lambda s: s["k"] * 2, space, progress=False,
                                 store=tmp_path / "r.zarr",
                                 output_attrs={"result": {"units": "1", **attrs}}).run()
    np.testing.assert_array_equal(ls.open_results(tmp_path / "r.zarr").to_xarray()["result"]
                                  .attrs[key], value)
    assert store.to_xarray()["result"].attrs["units"] == "1"

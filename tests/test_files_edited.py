"""Files edited with xarray after they were saved: labels stay paired with their values.

``open_results`` matches every dimension of the space its attrs describe by
the file's own labels, so an ``isel``/``sel``/``transpose``/``sortby`` of a
saved file opens as the sub-space it holds, variables added with xarray are
kept, and a file whose labels were changed is refused. ``labeled-spaces
info`` summarises any such file, and any other file xarray opens.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces.cli import main


def model(s):
    return {"y": s["a"] * 100 + s["b"], "trace": s["a"] + s["b"] * np.arange(4.0)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 3 x 3 product space (square: a transposed file has the same shape)."""
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.DataAxis([10.0, 20.0, 30.0]),
                      "dt": 0.1}, mode="product")
    results = ls.ParallelExecution(model, space, progress=False,
                                   output_dims={"trace": ("time",)}).run()
    path = tmp_path_factory.mktemp("edited") / "sweep.nc"
    results.to_netcdf(path)
    return path, results.to_xarray()


def check_paired(back: xr.Dataset, original: xr.Dataset) -> None:
    """Every value of ``back`` is the original's at the same labels."""
    for name in ("y", "trace"):
        if name not in back:
            continue
        var = back[name]
        labels = {d: var[d].values for d in ("a", "b") if d in var.coords}
        want = original[name].sel({d: xr.DataArray(v, dims=var[d].dims) if np.ndim(v) else v
                                   for d, v in labels.items()})
        np.testing.assert_array_equal(var.transpose(*want.dims).values, want.values)


def reopen(path, edit, tmp_path, name="edited.nc"):
    with xr.open_dataset(path) as ds:
        edit(ds.load()).to_netcdf(tmp_path / name)
    return ls.open_results(tmp_path / name)


@pytest.mark.parametrize("edit", [
    lambda d: d.isel(a=[2, 1, 0]),               # same size, other order
    lambda d: d.transpose("b", "a", "time"),     # same shape (square)
    lambda d: d.transpose("time", "b", "a"),     # the outputs' own dims first
    lambda d: d.isel(a=[2, 0], b=slice(1, None)),
    lambda d: d.sel(b=[30.0, 10.0]),
    lambda d: d.sortby("b", ascending=False),
    lambda d: d.isel(a=1),                       # a dropped dimension: a scalar label
    lambda d: d.sel(b=20.0).transpose("time", "a"),
], ids=["reorder", "transpose", "transpose-own", "subset", "sel", "sortby", "scalar",
        "scalar-transposed"])
def test_an_edited_file_keeps_its_labels_paired(saved, tmp_path, edit):
    path, original = saved
    back = reopen(path, edit, tmp_path)
    with xr.open_dataset(tmp_path / "edited.nc") as edited:
        assert back.space.sizes == {d: edited.sizes[d] for d in ("a", "b") if d in edited.dims}
    ds = back.to_xarray().compute()
    check_paired(ds, original)
    # the flat view follows the rebuilt sub-space: results[i] is the point space[i]
    for i in range(len(back)):
        point = back.space[i]
        want = original["y"].sel(a=float(point["a"]), b=float(point["b"])).item()
        assert float(back[i]["y"]) == want
    # and the sub-space runs the model again to the same values
    again = ls.ParallelExecution(model, back.space, progress=False,
                                 output_dims={"trace": ("time",)}).run()
    np.testing.assert_array_equal(again.to_xarray()["y"].values, ds["y"].values)


def test_variables_and_coordinates_added_with_xarray_are_kept(saved, tmp_path):
    path, original = saved
    back = reopen(path, lambda d: d.assign(
        ratio=d["y"] / d["a"].max(), note=("time", list("wxyz"))).assign_coords(
        a_label=("a", ["low", "mid", "high"])).isel(a=[2, 0]), tmp_path)
    ds = back.to_xarray().compute()
    check_paired(ds, original)
    assert set(ds.data_vars) == {"y", "trace", "ratio", "note"}
    np.testing.assert_array_equal(ds["ratio"].values, ds["y"].values / 1.0)
    assert ds["a_label"].values.tolist() == ["high", "low"]
    assert set(back.added.data_vars) == {"ratio", "note"}
    # kept through sel and through a second save
    assert back.sel(a=0.0)["ratio"].values.tolist() == (original["y"].sel(a=0.0).values
                                                        ).tolist()
    back.to_netcdf(tmp_path / "again.nc")
    assert "ratio" in ls.open_results(tmp_path / "again.nc").to_xarray()


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.assign_coords(a=[0.0, 0.7, 1.0]), "holds points along 'a'"),
    (lambda d: d.drop_vars("a"), "no coordinate that labels"),
    (lambda d: d.rename(y="z"), "lacks the output variables"),
    (lambda d: d.rename(a="alpha"), "no coordinate that labels"),
    (lambda d: d.isel(a=[0, 0]).assign_coords(a=[0.0, 0.5]), "y"),
], ids=["relabelled", "no-labels", "renamed-output", "renamed-dim",
        "relabelled-values"])
def test_a_file_whose_labels_changed_is_refused(saved, tmp_path, edit, match):
    path, original = saved
    if match == "y":  # labels of the space put on other values: the file's pairing is kept
        back = reopen(path, edit, tmp_path)
        ds = back.to_xarray().compute()
        # the file says y(a=0.5) = y(a=0); opened as the file holds it, labels as written
        assert ds["y"].sel(a=0.5).values.tolist() == original["y"].sel(a=0.0).values.tolist()
        return
    with pytest.raises(ValueError, match=match):
        reopen(path, edit, tmp_path)


@pytest.mark.filterwarnings("ignore:Consolidated metadata")  # zarr's, about xarray's copy
def test_a_zip_space_and_a_store_copy_edited_with_xarray(tmp_path):
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 4), "b": ls.UniformAxis(0.0, 1.0, 4)},
                     mode="zip")
    results = ls.ParallelExecution(lambda s: s["a"] + 10 * s["b"], space, progress=False,
                                   store=str(tmp_path / "run.zarr")).run()
    original = results.to_xarray().compute()
    with xr.open_zarr(tmp_path / "run.zarr") as ds:
        ds.isel(sample=[3, 1]).to_zarr(tmp_path / "copy.zarr")
    back = ls.open_results(tmp_path / "copy.zarr").to_xarray().compute()
    assert back["sample"].values.tolist() == [3, 1]
    np.testing.assert_array_equal(back["result"].values,
                                  original["result"].isel(sample=[3, 1]).values)
    np.testing.assert_array_equal(back["b"].values, original["b"].isel(sample=[3, 1]).values)


def info(path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["info", str(path)])
    return code, out.getvalue(), err.getvalue()


def test_info_summarises_a_subset_saved_with_xarray(saved, tmp_path):
    path, _ = saved
    reopen(path, lambda d: d.isel(a=[2, 0]).assign(extra=d["y"] * 2), tmp_path)
    code, out, err = info(tmp_path / "edited.nc")
    assert code == 0 and err == "", err
    assert "labeled_spaces results, netCDF file" in out
    assert "dims: a: 2, b: 3, time: 4" in out
    assert "extra" in out and "added to the file" in out
    assert "complete: 6 of 6 combinations" in out


def test_info_summarises_any_file_xarray_opens(saved, tmp_path):
    plain = tmp_path / "plain.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}, coords={"t": [1, 2, 3]}).to_netcdf(plain)
    code, out, err = info(plain)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"{plain}: netCDF file, not labeled_spaces results"
    assert "t  (t)" in out and "x  (t)  float64" in out
    assert "not traced back to a run: attrs lack the labeled_spaces entry" in out
    # a results file relabelled beyond a subset: summarised, and said why it cannot be traced
    path, _ = saved
    with xr.open_dataset(path) as ds:
        ds.load().assign_coords(a=[5.0, 6.0, 7.0]).to_netcdf(tmp_path / "relabelled.nc")
    code, out, err = info(tmp_path / "relabelled.nc")
    assert code == 0 and "not traced back to a run: the file holds points along 'a'" in out

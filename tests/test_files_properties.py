"""Property test: a saved file edited with xarray opens with every label paired to its value.

For random edits of a saved file (``isel`` with random indexers, ``sel`` of
random labels, ``transpose``, ``sortby``, renamed and added variables, and
chains of them), ``open_results`` either refuses the file with a
``ValueError`` or gives results whose every value is the original's at the
same labels, with the variables the edit added kept as the file holds them.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labeled_spaces as ls

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
OWN = ("time",)  # the own dim of output "v"; "y" has "y_dim_0" (c's points are 2-vectors)


def model(s):
    # every combination gives other values: a value found at the wrong labels shows
    y = s["a"] * 1000 + s["b"] * 10 + s["c"] * 0.5
    return {"y": y, "v": y + np.arange(2.0)}


def spaces() -> dict[str, ls.Space]:
    return {
        "product": ls.Space({"a": ls.GridAxis(0.0, 2.0, 3),
                             "b": ls.DataAxis([1.0, 2.0, 3.0, 4.0], labels=list("pqrs")),
                             "c": ls.DataAxis(np.arange(4.0).reshape(2, 2))}, mode="product"),
        "zip": ls.Space({"a": ls.GridAxis(0.0, 2.0, 5), "b": ls.UniformAxis(0.0, 1.0, 5),
                         "c": 1.0}, mode="zip"),
        "group": ls.Space({"a": ls.GridAxis(0.0, 2.0, 3, group="g"),
                           "b": ls.GridAxis(5.0, 6.0, 3, group="g"),
                           "c": ls.DataAxis([7.0, 8.0])}, mode="product"),
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("properties")
    files = {}
    for name, space in spaces().items():
        results = ls.ParallelExecution(model, space, progress=False,
                                       output_dims={"v": OWN}).run()
        path = folder / f"{name}.nc"
        results.to_netcdf(path)
        files[name] = (path, results.to_xarray().compute())
    return folder, files


@st.composite
def edits(draw):
    """A chain of one to three edits, each a function of the Dataset and a random source."""
    kinds = st.sampled_from(["isel", "isel-int", "sel", "transpose", "sortby", "add",
                             "rename-added", "rename-output"])
    return [(draw(kinds), draw(st.integers(0, 2**31 - 1)))
            for _ in range(draw(st.integers(1, 3)))]


def apply(ds: xr.Dataset, kind: str, seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    # dims with labels (the outputs' own dims here have none: there xarray itself is positional)
    dims = [d for d in ds.dims if d in ds.coords]
    if not dims:
        return ds
    dim = dims[rng.integers(len(dims))]
    n = ds.sizes[dim]
    if kind == "isel":
        count = int(rng.integers(1, n + 1))
        return ds.isel({dim: rng.choice(n, size=count, replace=bool(rng.integers(2)))})
    if kind == "isel-int":
        return ds.isel({dim: int(rng.integers(n))})
    if kind == "sel" and dim in ds.coords and ds.indexes[dim].is_unique:
        # (xarray cannot select by label among repeated labels, which an isel with
        # replacement makes: that chain says nothing about our files)
        labels = ds[dim].values
        return ds.sel({dim: labels[rng.permutation(n)[: int(rng.integers(1, n + 1))]]})
    if kind == "transpose":
        order = list(ds.dims)
        rng.shuffle(order)
        return ds.transpose(*order)
    if kind == "sortby" and dim in ds.coords and ds[dim].ndim == 1:
        return ds.sortby(dim, ascending=bool(rng.integers(2)))
    if kind == "add":
        some = [d for d in ds.dims if rng.integers(2)]
        shape = [ds.sizes[d] for d in some]
        return ds.assign({f"added{seed % 1000}": (some, rng.normal(size=shape))})
    if kind == "rename-added":
        added = [v for v in ds.data_vars if str(v).startswith("added")]
        return ds.rename({added[0]: f"renamed{seed % 1000}"}) if added else ds
    if kind == "rename-output" and "y" in ds:
        return ds.rename({"y": "y_renamed"})
    return ds


def check(back: xr.Dataset, original: xr.Dataset, edited: xr.Dataset) -> None:
    """Every output value in ``back`` is the original's at ``back``'s labels."""
    for name in ("y", "v"):
        var = back[name]
        labels = {}
        for dim in original[name].dims:
            if dim not in original.coords:  # the outputs' own dims (no labels)
                continue
            label = var[dim] if dim in var.dims else back.coords[dim]
            labels[dim] = xr.DataArray(label.values, dims=label.dims) if label.ndim else \
                label.item()
        want = original[name].sel(labels)
        np.testing.assert_array_equal(var.transpose(*want.dims).values, want.values,
                                      err_msg=f"{name} at {labels}")
    for name in back.coords:  # the space's labels too, at the points the file holds
        if name in edited.coords and edited[name].dtype.kind != "c":
            np.testing.assert_array_equal(
                back[name].transpose(*edited[name].dims).values, edited[name].values)
    for name in edited.data_vars:  # added variables, as the file holds them
        assert name in back.data_vars, name
        np.testing.assert_array_equal(back[name].transpose(*edited[name].dims).values,
                                      edited[name].values)


COUNTER = itertools.count()


@pytest.mark.parametrize("kind", ["product", "zip", "group"])
@SETTINGS
@given(chain=edits())
def test_an_edited_file_opens_paired_or_not_at_all(saved, kind, chain):
    folder, files = saved
    path, original = files[kind]
    with xr.open_dataset(path) as ds:
        edited = ds.load()
    for step, seed in chain:
        edited = apply(edited, step, seed)
    target = folder / f"edited-{next(COUNTER)}.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edited.to_netcdf(target)
        try:
            back = ls.open_results(target).to_xarray().compute()
        except ValueError:
            return  # refused: never relabelled
    with xr.open_dataset(target) as written:
        check(back, original, written.load())

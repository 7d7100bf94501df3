"""A space selected down to one point: no dimension, len 1, run to a 0-d Dataset.

``space.sel``/``isel`` with scalars on every dimension (a zip space's only one, every
dimension of a product, a group's members) gives what xarray's ``sel`` gives a Dataset:
0-dimensional, with the point's labels as scalar coordinates. Every executor runs it, a
store holds it in one block and resumes it, and a file round trip rebuilds it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from distributed import Client

import labeled_spaces as ls
from labeled_spaces.cli import describe
from labeled_spaces.execution.cluster import local_cluster

ROOT = Path(__file__).resolve().parents[1]
T = np.array([0.0, 0.5, 1.0])
LABELS = dict(output_dims={"trace": ("time",)}, output_coords={"time": (T, {"units": "s"})},
              output_attrs={"total": {"units": "mV"}})


def zipped():
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(10.0, 30.0, 3),
                     "w": np.arange(3.0, dtype=np.float32)})


def product():
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.UniformAxis(-1.0, 2.0, 4),
                     "w": np.arange(3.0, dtype=np.float32)}, mode="product",
                    key=jax.random.key(3))


def grouped():
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 3, group="g"),
                     "b": ls.GridAxis(10.0, 30.0, 3, group="g"),
                     "c": ls.GridAxis(0.5, 1.5, 2, attrs={"units": "Hz"}),
                     "w": np.arange(3.0, dtype=np.float32)}, mode="product")


def model(state, scale=1.0, *, offset=0.0):
    trace = jnp.sin(state["a"] * state["w"]) * state["b"] * scale + offset
    return {"trace": trace, "total": state["a"] + 10 * state["b"], "n": jnp.int32(7)}


# (space, the point selected, the same selection as a query on the full results)
CASES = {
    "zip sel": (zipped, lambda s: s.sel(a=0.5), dict(a=0.5)),
    "zip isel": (zipped, lambda s: s.isel(sample=-1), dict(b=30.0)),
    "product isel": (product, lambda s: s.isel(a=1, b=2), None),
    "product sel twice": (product, lambda s: s.sel(a=1.0).isel(b=0), None),
    "group sel": (grouped, lambda s: s.sel(a=0.5, b=20.0, c=1.5), dict(a=0.5, b=20.0, c=1.5)),
}


def selected(case):
    make, pick, _ = CASES[case]
    return make(), pick(make())


def full_at_point(full, space, point):
    """The full run's Dataset at the point (what xarray's isel by the point's positions gives)."""
    ds = full.to_xarray()
    positions = {}
    for dim in space.dims:
        if dim in point.coords and dim in ds.indexes:
            positions[dim] = int(np.flatnonzero(
                ds.indexes[dim] == point.coords[dim].values)[0])
    return ds.isel(positions)


# ---------------------------------------------------------------------------
# the Space
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_a_point_has_no_dimension_and_is_the_selected_combination(case, assert_tree_equal):
    space, point = selected(case)
    assert point.dims == () and point.sizes == {} and point.shape == ()
    assert len(point) == point.N == 1
    # space[0] of the point is the original combination, bit for bit
    index = next(i for i in range(len(space)) if all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(space[i]),
                                             jax.tree.leaves(point[0]), strict=True)))
    assert_tree_equal(point[0], space[index])
    assert_tree_equal(point[-1], point[0])
    assert_tree_equal(list(point), [point[0]])
    with pytest.raises(IndexError, match="out of range for a space of 1 combination$"):
        point[1]
    # every label is a scalar coordinate, as xarray's sel leaves them
    assert all(c.ndim == 0 for c in point.coords.values())
    assert set(point.coords) >= {"a", "b"}
    assert "Dimensions:  ()" in repr(point) and "Point:" in repr(point)


def test_zip_point_is_what_xarray_sel_gives():
    space = zipped()
    point = space.sel(a=0.5)
    ds = space.to_xarray().sel(a=0.5)
    assert {k: v.item() for k, v in point.coords.items()} == {"sample": 1, "a": 0.5,
                                                             "b": 20.0}
    xr.testing.assert_identical(point.to_xarray().drop_attrs(),
                                ds.drop_vars(list(ds.data_vars)).drop_attrs())
    assert point.isel().coords.equals(point.coords) and point.sel().N == 1
    # a list keeps a dimension of size 1, as in xarray
    assert space.sel(a=[0.5]).sizes == {"sample": 1}
    assert list(point.to_dataframe().index) == [0]  # one row: the one combination
    assert point.coords["a"].attrs == space.coords["a"].attrs


def test_a_point_keeps_units_and_value_coordinates():
    space = ls.Space({"m": ls.DataAxis(np.arange(12.0).reshape(3, 2, 2), labels=["x", "y", "z"]),
                      "g": ls.GridAxis(0.0, 1.0, 2, attrs={"units": "ms"})}, mode="product")
    point = space.isel(m=1, g=1)
    assert point.coords["m"].item() == "y" and point.coords["g"].attrs == {"units": "ms"}
    assert point.coords["m_value"].dims == ("m_dim_0", "m_dim_1")
    np.testing.assert_array_equal(point.coords["m_value"].values, [[4.0, 5.0], [6.0, 7.0]])
    np.testing.assert_array_equal(point[0]["m"], [[4.0, 5.0], [6.0, 7.0]])


def test_a_quasi_random_point():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sobol with n not a power of two
        space = ls.Space({"a": ls.UniformAxis(0.0, 1.0, 6), "b": ls.UniformAxis(0.0, 1.0, 6)},
                         mode="sobol")
    point = space.isel(sample=4)
    assert point.dims == () and point.coords["sample"].item() == 4
    assert float(point[0]["a"]) == float(space[4]["a"])
    assert point.coords["a"].item() == float(space.coords["a"][4])


@pytest.mark.parametrize("case", CASES)
def test_a_point_is_rebuilt_from_its_attrs(case, assert_tree_equal):
    _, point = selected(case)
    rebuilt = ls.Space.from_attrs(point.attrs)
    assert rebuilt.dims == () and rebuilt.attrs == point.attrs
    assert rebuilt.coords.equals(point.coords)
    assert_tree_equal(rebuilt[0], point[0])


def test_what_a_point_cannot_do_is_a_clear_value_error():
    point = zipped().sel(a=0.5)
    with pytest.raises(ValueError, match=r"index must be an integer on a space of a single "
                                         r"point, .* got slice\(0, 1, None\)"):
        point[0:1]
    with pytest.raises(ValueError, match="collect: the space must have at least one dimension "
                                         "to batch, got a single point"):
        point.collect(n_vmap=2)
    with pytest.raises(ls.SelectionError, match=r"isel got \['sample'\]"):
        point.isel(sample=0)
    with pytest.raises(ls.SelectionError, match=r"sel got \['a'\]"):
        point.sel(a=0.5)
    # a state without axes is still refused: only a selection makes a point
    with pytest.raises(ValueError, match="state must contain at least one axis"):
        ls.Space({"a": 0.5})
    # the analyses that need an axis say so
    with pytest.raises(ValueError, match="found no axis"):
        ls.gradients(model, point, progress=False)
    with pytest.raises(ValueError, match="found no axis"):
        ls.fit(lambda s: jnp.sum(s["a"] ** 2), point, steps=2, progress=False)
    with pytest.raises(ValueError, match="space must be a space of 2 or 3 axes"):
        ls.refine(lambda s: s["a"], point, n=8, progress=False)


# ---------------------------------------------------------------------------
# the executors
# ---------------------------------------------------------------------------


def _check_point_results(results, space, point, full):
    ds = results.to_xarray()
    assert ds["total"].dims == () and ds["trace"].dims == ("time",)
    assert ds["time"].attrs == {"units": "s"} and ds["total"].attrs == {"units": "mV"}
    assert len(results) == 1 and results.space.dims == ()
    xr.testing.assert_identical(ds.drop_attrs(), full_at_point(full, space, point).drop_attrs())
    for name in ("trace", "total", "n"):
        np.testing.assert_array_equal(results[0][name], full_at_point(full, space, point)[name])


EXECUTORS = {
    "sequential": lambda space, **kw: ls.SequentialExecution(model, space, 2.0, offset=1.0,
                                                             progress=False, **LABELS, **kw),
    "sequential jit=False": lambda space, **kw: ls.SequentialExecution(
        model, space, 2.0, offset=1.0, jit=False, progress=False, **LABELS, **kw),
    "parallel": lambda space, **kw: ls.ParallelExecution(model, space, 2.0, offset=1.0,
                                                         progress=False, **LABELS, **kw),
    "parallel n_vmap=1": lambda space, **kw: ls.ParallelExecution(
        model, space, 2.0, offset=1.0, n_vmap=1, chunk_size=4, progress=False, **LABELS, **kw),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_executor_runs_a_point_to_a_0d_dataset(case, executor):
    space, point = selected(case)
    full = ls.ParallelExecution(model, space, 2.0, offset=1.0, progress=False, **LABELS).run()
    _check_point_results(EXECUTORS[executor](point).run(), space, point, full)


def test_a_point_equals_results_sel():
    for make, pick, query in CASES.values():
        if query is None:
            continue
        space = make()
        full = ls.ParallelExecution(model, space, progress=False).run()
        got = ls.ParallelExecution(model, pick(space), progress=False).run().to_xarray()
        xr.testing.assert_identical(got.drop_attrs(), full.sel(query).drop_attrs())


def test_sel_and_isel_on_point_results_refuse_as_the_point_space_does():
    # a point's labels are scalars: Results.sel/isel answered with xarray's own index errors
    # ("Could not automatically create PandasIndex ...") where Space.sel names the dimensions
    point = zipped().sel(a=0.5)
    results = ls.ParallelExecution(model, point, progress=False, **LABELS).run()
    left = r"expected none: a space of a single point has no dimension left to select"
    for query in ({"a": 0.5}, {"sample": 1}, {"a": 0.5, "time": 0.5}):
        with pytest.raises(ls.SelectionError, match=r"sel got \[.*" + left):
            results.sel(query)
        with pytest.raises(ls.SelectionError, match=r"sel got \[.*" + left):
            point.sel({k: v for k, v in query.items() if k != "time"})
    with pytest.raises(ls.SelectionError, match=r"isel got \['sample'\] .*" + left):
        results.isel(sample=0)
    # xarray's own keywords keep their meaning
    kept = results.isel(sample=0, missing_dims="ignore")
    xr.testing.assert_identical(kept, results.to_xarray())
    # the output's own dimensions still select as on the Dataset
    assert float(results.sel(time=0.5)["trace"]) == float(results.isel(time=1)["trace"])


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution])
def test_a_failing_point_names_it_and_keeps_an_empty_partial(executor, tmp_path):
    point = zipped().sel(a=0.5)

    def fail(x):
        raise RuntimeError("no convergence")

    def broken(state):  # fails when it runs, as a wrapped external simulator would
        return jax.pure_callback(fail, jax.ShapeDtypeStruct((), jnp.float32), state["a"])

    with pytest.raises(ls.ModelError, match="combination 0 with parameters") as caught:
        executor(broken, point, progress=False).run()
    err = caught.value
    assert err.index == 0 and float(err.params["a"]) == 0.5
    partial = err.partial
    assert partial.done.shape == () and not partial.done
    assert np.isnan(partial.to_xarray()["result"].item())
    partial.to_netcdf(tmp_path / "partial.nc")  # what finished (nothing) is saved as such
    opened = ls.open_results(tmp_path / "partial.nc")
    assert opened.done.shape == () and not opened.done and opened.space.dims == ()


@pytest.fixture(scope="module")
def client():
    with local_cluster(1) as cluster, Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(1)
        yield c


@pytest.mark.parametrize("case", ["zip sel", "group sel"])
def test_dask_runs_a_point_in_memory_and_into_a_store(case, client, tmp_path):
    space, point = selected(case)
    full = ls.ParallelExecution(model, space, 2.0, offset=1.0, progress=False, **LABELS).run()
    run = lambda **kw: ls.DaskExecution(model, point, 2.0, offset=1.0, client=client,  # noqa: E731
                                        progress=False, **LABELS, **kw).run()
    _check_point_results(run(), space, point, full)
    stored = run(store=tmp_path / "point.zarr")  # the worker writes the one block itself
    assert stored.complete
    _check_point_results(stored, space, point, full)


# ---------------------------------------------------------------------------
# the store and files
# ---------------------------------------------------------------------------


def test_a_point_store_is_one_block_resumed_and_checked(tmp_path, caplog):
    space, point = selected("group sel")
    path = tmp_path / "point.zarr"
    full = ls.ParallelExecution(model, space, 2.0, offset=1.0, progress=False, **LABELS).run()
    stored = EXECUTORS["parallel"](point, store=path).run()
    assert stored.complete
    _check_point_results(stored, space, point, full)
    plain = xr.open_zarr(path)  # laid out as to_xarray(): no dimension of the space
    assert plain["total"].dims == () and plain["trace"].dims == ("time",)
    assert float(plain["total"]) == float(stored.to_xarray()["total"])
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        again = EXECUTORS["sequential"](point, store=path).run()
    assert "resuming: 1 of 1 blocks already stored" in caplog.text
    _check_point_results(again, space, point, full)
    # another point, or the whole space, is another run: refused, the store untouched
    with pytest.raises(ValueError, match="was made for another space"):
        EXECUTORS["parallel"](space.sel(a=1.0, b=30.0, c=1.5), store=path).run()
    with pytest.raises(ValueError, match="was made for another space"):
        EXECUTORS["parallel"](space, store=path).run()
    with pytest.raises(ValueError, match=r"offset: 1.0 -> 3.0"):
        ls.ParallelExecution(model, point, 2.0, offset=3.0, progress=False, store=path,
                             **LABELS).run()
    # a lost chunk: not complete, and recomputed on resume
    os.remove(path / "total" / "c")
    assert not ls.open_results(path).complete
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        fixed = EXECUTORS["parallel"](point, store=path).run()
    assert "resuming: 0 of 1 blocks" in caplog.text
    assert fixed.complete
    _check_point_results(fixed, space, point, full)
    info = describe(path)
    assert "complete: 1 of 1 block done" in info and "Point:" in info


@pytest.mark.parametrize("case", ["zip sel", "product isel", "group sel"])
def test_a_point_survives_a_file_round_trip(case, tmp_path, assert_tree_equal):
    space, point = selected(case)
    results = EXECUTORS["parallel"](point).run()
    path = tmp_path / "point.nc"
    results.to_netcdf(path)
    opened = ls.open_results(path)
    xr.testing.assert_identical(opened.to_xarray().compute(), results.to_xarray())
    assert opened.space.dims == () and opened.space.coords.equals(point.coords)
    assert_tree_equal(opened.space[0], point[0])
    assert_tree_equal(opened[0], results[0])
    assert "Point:" in describe(path)
    # the store's results export the same file
    stored = EXECUTORS["parallel"](point, store=tmp_path / "p.zarr").run()
    stored.to_netcdf(tmp_path / "from_store.nc")
    xr.testing.assert_identical(ls.open_results(tmp_path / "from_store.nc").to_xarray(),
                                opened.to_xarray())


@pytest.mark.parametrize("labels", [np.array(["x", "yy", "z"]), np.array([b"x", b"yy", b"z"])],
                         ids=["text", "bytes"])
@pytest.mark.parametrize("fixed", [True, False], ids=["0-d", "1-d"])
def test_a_store_of_text_or_bytes_labels_writes_no_warning(tmp_path, labels, fixed):
    # a fixed label is a 0-d coordinate: text is written as zarr's variable-length strings
    # like every text coordinate (numpy's fixed-width text has no zarr v3 specification:
    # zarr warned UnstableSpecificationWarning at every such store); bytes have no stable
    # zarr form at all, and are read back all the same
    space = ls.Space({"b": ls.DataAxis(np.arange(3), labels=labels),
                      "a": ls.GridAxis(0.0, 1.0, 2)}, mode="product")
    sub = space.sel(b=labels[1]) if fixed else space
    path = tmp_path / "s.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored = ls.ParallelExecution(lambda s: s["a"] + s["b"], sub, store=path,
                                      progress=False).run()
        again = ls.ParallelExecution(lambda s: s["a"] + s["b"], sub, store=path,
                                     progress=False).run()
    opened = ls.open_results(path)
    assert opened.space.coords.equals(sub.coords)
    assert opened.to_xarray()["b"].values.tolist() == sub.coords["b"].values.tolist()
    xr.testing.assert_identical(again.to_xarray(), stored.to_xarray())


def test_a_file_selected_to_a_point_with_xarray_opens_with_its_labels(tmp_path):
    space = grouped()
    full = ls.ParallelExecution(model, space, progress=False).run()
    full.to_netcdf(tmp_path / "full.nc")
    with xr.open_dataset(tmp_path / "full.nc") as ds:
        ds.sel(a=0.5).isel(c=1).to_netcdf(tmp_path / "edited.nc")
    opened = ls.open_results(tmp_path / "edited.nc")
    assert opened.space.dims == ()
    want = full.to_xarray().isel(g=1, c=1)
    xr.testing.assert_identical(opened.to_xarray().drop_attrs(), want.drop_attrs())
    assert float(opened.space[0]["b"]) == 20.0 and float(opened.space[0]["c"]) == 1.5


def test_a_point_over_several_devices():
    script = textwrap.dedent("""
        import jax.numpy as jnp
        import numpy as np
        import labeled_spaces as ls
        space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.GridAxis(1.0, 2.0, 3)})
        model = lambda s: {"y": s["a"] * s["b"], "v": jnp.arange(3.0) * s["a"]}
        want = ls.ParallelExecution(model, space, progress=False).run().sel(a=0.5)
        for kw in ({"n_pmap": 2}, {"n_pmap": 2, "n_vmap": 1}):
            got = ls.ParallelExecution(model, space.sel(a=0.5), progress=False, **kw).run()
            assert float(got.to_xarray()["y"]) == float(want["y"]), kw
            np.testing.assert_array_equal(got[0]["v"], want["v"].values)
        print("ok")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(
                   [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]

"""Acceptance checks of API.md, "Designs (beyond the grid)": Growing a sweep and Cost preview.

Written black-box from the contract. Every model here reports the combinations
it computes through a host callback that appends the values it sees to a file
(``LS_ACCEPT_RECORD``), so "only the new combinations are computed" is checked
on what actually ran, on every executor (dask workers included).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import labeled_spaces as ls

RECORD = "LS_ACCEPT_RECORD"
FAIL_AT = "LS_ACCEPT_FAIL_AT"
KINDS = ("sequential", "parallel", "dask")


# ---------------------------------------------------------------- helpers

def _record(x):
    """Host side of every model: note the values computed, fail where asked."""
    values = np.asarray(x)
    path = os.environ.get(RECORD)
    if path:
        with open(path, "a") as f:
            f.write("".join(f"{float(v)!r}\n" for v in values.ravel()))
    fail_at = os.environ.get(FAIL_AT)
    if fail_at is not None and np.any(values == np.float32(float(fail_at))):
        raise RuntimeError(f"asked to fail at {fail_at}")
    return values


def seen(x):
    """``x`` unchanged, after the host has noted it."""
    x = jnp.asarray(x)
    return jax.pure_callback(_record, jax.ShapeDtypeStruct(x.shape, x.dtype), x,
                             vmap_method="expand_dims")


def model(s):
    c = seen(s["coupling"])
    return {"y": jnp.sin(c) * s["g"] + s["offset"], "z": jnp.cos(c + jnp.arange(3.0))}


def model_other_output(s):
    c = seen(s["coupling"])
    return {"y": jnp.sin(c) * s["g"] + s["offset"]}


def model_1d(s):
    c = seen(s["coupling"])
    return {"y": jnp.sin(c) + s["offset"]}


def model_keys(s):
    c = seen(s["coupling"])
    noise = jax.random.normal(s["noise"], (2,))
    return {"y": c + s["u"] + noise, "r": jax.random.uniform(s["rep"], ())}


def model_zip(s):
    a = seen(s["a"])
    return {"y": a * s["b"]}


def model_big(s, width=128):
    """A temporary of ``width**2`` floats per combination (for ``n_vmap='auto'``)."""
    v = s["coupling"] + jnp.arange(width, dtype=jnp.float32)
    m = jnp.outer(v, v)
    return {"y": jnp.sum(jnp.sin(m) @ jnp.cos(m))}  # a product XLA must materialise


@pytest.fixture
def record(tmp_path, monkeypatch):
    """A function returning the set of values computed since the last call."""
    path = tmp_path / "record.txt"
    monkeypatch.setenv(RECORD, str(path))
    monkeypatch.delenv(FAIL_AT, raising=False)

    def take() -> set[float]:
        if not path.exists():
            return set()
        values = {float(line) for line in path.read_text().split()}
        path.unlink()
        return values

    return take


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=":0")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


def make(kind, fn, space, client=None, **options):
    options.setdefault("progress", False)
    if kind == "sequential":
        options.pop("chunk_size", None)
        return ls.SequentialExecution(fn, space, **options)
    if kind == "parallel":
        return ls.ParallelExecution(fn, space, **options)
    return ls.DaskExecution(fn, space, client=client, **options)


def space_cg(n=11, g=3, offset=0.5, **extra):
    state = {"coupling": ls.DataAxis(jnp.arange(n, dtype=jnp.float32) / 4),
             "g": ls.GridAxis(0.0, 1.0, g), "offset": offset, **extra}
    return ls.Space(state, mode="product")


def labels(n):
    return {float(v) for v in np.arange(n, dtype=np.float32) / 4}


def snapshot(path) -> dict:
    """Every file and folder of a store: bytes (hashed), size and mtime."""
    found = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            found[os.path.relpath(os.path.join(root, d), path) + "/"] = None
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            found[os.path.relpath(p, path)] = (digest, st.st_size, st.st_mtime_ns)
    return found


def disk_size(path) -> int:
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def stored(path) -> xr.Dataset:
    return ls.open_results(path).to_xarray().load()


def assert_bitwise(a: xr.Dataset, b: xr.Dataset) -> None:
    xr.testing.assert_identical(a, b)
    for name in a.data_vars:
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
    for name in a.coords:
        assert np.asarray(a[name].values).tobytes() == np.asarray(b[name].values).tobytes()


def first_recomputed(n_old: int, step: int) -> int:
    """Index where a grown dimension's computation starts: a ragged last block is redone."""
    return (n_old // step) * step


def kept_chunk_files(path, start: int) -> set[str]:
    """The data chunk files of a zarr v3 store holding only rows before ``start`` (dim 0)."""
    kept = set()
    for name in ("y", "z"):
        meta = json.loads((path / name / "zarr.json").read_text())
        rows = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
        for f in (path / name / "c").glob("*"):
            if (int(f.name) + 1) * rows <= start:
                kept |= {str(g.relative_to(path)) for g in f.rglob("*") if g.is_file()}
                if f.is_file():
                    kept.add(str(f.relative_to(path)))
    return kept


def grow_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "labeled_spaces"
            and r.levelno == logging.INFO and "growing" in r.getMessage()]


# ---------------------------------------------------------------- growing

@pytest.mark.parametrize("kind,chunk_size", [("sequential", None), ("parallel", 12),
                                             ("parallel", 33), ("dask", 12), ("dask", 33)])
def test_grow_keeps_stored_results_and_computes_only_new_ones(
        tmp_path, kind, client, record, caplog, chunk_size):
    path = tmp_path / "sweep.zarr"
    first = make(kind, model, space_cg(11), client, store=str(path), chunk_size=chunk_size)
    step = first.explain().block_shape[0]
    record()
    first.run()
    assert record() == labels(11)
    before = stored(path)
    start = first_recomputed(11, step)
    files_before = snapshot(path)
    kept_files = kept_chunk_files(path, start)
    assert kept_files or start == 0

    caplog.set_level(logging.INFO, logger="labeled_spaces")
    grown = make(kind, model, space_cg(21), client, store=str(path), chunk_size=chunk_size).run()
    files_after = snapshot(path)  # grown in place: the kept blocks' chunk files are not rewritten
    assert {f: files_after.get(f) for f in kept_files} == {f: files_before[f] for f in kept_files}
    assert record() == labels(21) - labels(start)  # only new ones (and a filled-up block)
    assert any("growing coupling: 11 -> 21" in m for m in grow_log(caplog))

    after = stored(path)
    assert after.sizes["coupling"] == 21
    kept = after.isel(coupling=slice(0, 11))
    for name in before.data_vars:  # stored results kept, bit for bit
        assert np.asarray(kept[name]).tobytes() == np.asarray(before[name]).tobytes()
    fresh_path = tmp_path / "fresh.zarr"
    make(kind, model, space_cg(21), client, store=str(fresh_path), chunk_size=chunk_size).run()
    assert_bitwise(after, stored(fresh_path))
    assert_bitwise(grown.to_xarray().load(), stored(fresh_path))


def test_grow_recomputes_a_block_the_new_labels_fill_up(tmp_path, record, caplog):
    """Blocks of 4 along coupling: stored 11 leave block 8..11 ragged; growing fills it."""
    path = tmp_path / "sweep.zarr"

    def space(n):
        return ls.Space({"coupling": ls.DataAxis(jnp.arange(n, dtype=jnp.float32) / 4),
                         "offset": 0.5}, mode="product")

    make("parallel", model_1d, space(11), store=str(path), chunk_size=4).run()
    assert ls.ParallelExecution(model_1d, space(11), store=str(path), chunk_size=4,
                                progress=False).explain().block_shape == (4,)
    record()
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    make("parallel", model_1d, space(21), store=str(path), chunk_size=4).run()
    assert record() == labels(21) - labels(8)
    fresh = tmp_path / "fresh.zarr"
    make("parallel", model_1d, space(21), store=str(fresh), chunk_size=4).run()
    assert_bitwise(stored(path), stored(fresh))


@pytest.mark.parametrize("grown_dim", ["first", "last"])
def test_grow_a_product_space_with_keys_and_random_axes(tmp_path, record, grown_dim):
    """PointKey, a KeyAxis and a random UniformAxis ride along; the grown run is bit-identical."""
    def space(n):
        c = ls.DataAxis(jnp.arange(n if grown_dim == "first" else 4, dtype=jnp.float32) / 4)
        rep = ls.KeyAxis(n if grown_dim == "last" else 3)
        # dims in leaf order: coupling, noise (no dim), rep, u
        return ls.Space({"coupling": c, "noise": ls.PointKey(), "rep": rep,
                         "u": ls.UniformAxis(0.0, 1.0, 2)}, mode="product",
                        key=jax.random.key(7))

    assert space(5).dims[0] == "coupling" and "rep" in space(5).dims
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model_keys, space(5), store=str(path), chunk_size=6).run()
    record()
    make("parallel", model_keys, space(9), store=str(path), chunk_size=6).run()
    new = record()
    if grown_dim == "first":
        assert new <= labels(9) and labels(9) - labels(5) <= new
        assert not new & labels(4)  # the block starting at 0 (rows 0..3 at most) is kept
    make("parallel", model_keys, space(9), store=str(fresh), chunk_size=6).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_keyaxis_dim_keeps_the_stored_replicates(tmp_path, record, caplog):
    """KeyAxis keys do not depend on n: KeyAxis(3) -> KeyAxis(6) is a growth of `rep`."""
    def space(n):
        return ls.Space({"coupling": ls.DataAxis(jnp.arange(2, dtype=jnp.float32)),
                         "noise": ls.PointKey(), "rep": ls.KeyAxis(n),
                         "u": ls.UniformAxis(0.0, 1.0, 2)}, mode="product")

    path = tmp_path / "sweep.zarr"
    make("sequential", model_keys, space(3), store=str(path)).run()
    before = stored(path)
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    make("sequential", model_keys, space(6), store=str(path)).run()
    assert any("growing rep: 3 -> 6" in m for m in grow_log(caplog))
    after = stored(path)
    for name in before.data_vars:
        assert (np.asarray(after[name].isel(rep=slice(0, 3))).tobytes()
                == np.asarray(before[name]).tobytes())
    fresh = tmp_path / "fresh.zarr"
    make("sequential", model_keys, space(6), store=str(fresh)).run()
    assert_bitwise(after, stored(fresh))


def test_grow_a_random_uniform_axis_only_where_its_draws_are_a_prefix(tmp_path, record):
    """Labels compare exactly: UniformAxis(n=5) -> n=9 grows iff the 5 draws repeat bit for bit."""
    def space(n):
        return ls.Space({"coupling": ls.UniformAxis(0.0, 1.0, n), "g": ls.GridAxis(0.0, 1.0, 2),
                         "offset": 0.5}, mode="product", key=jax.random.key(3))

    old = np.asarray(space(5).coords["coupling"])
    new = np.asarray(space(9).coords["coupling"])
    prefix = old.tobytes() == new[:5].tobytes()
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space(5), store=str(path)).run()
    if not prefix:
        before = snapshot(path)
        with pytest.raises(ValueError, match="coupling"):
            make("parallel", model, space(9), store=str(path)).run()
        assert snapshot(path) == before
        return
    record()
    make("parallel", model, space(9), store=str(path)).run()
    assert not record() & {float(v) for v in old}
    fresh = tmp_path / "fresh.zarr"
    make("parallel", model, space(9), store=str(fresh)).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_a_zip_space(tmp_path, record, caplog):

    def space(n):
        a = jnp.arange(n, dtype=jnp.float32)
        return ls.Space({"a": ls.DataAxis(a), "b": ls.DataAxis(a * 10 + 1)}, mode="zip")

    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model_zip, space(11), store=str(path), chunk_size=11).run()
    record()
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    make("parallel", model_zip, space(21), store=str(path), chunk_size=11).run()
    assert record() == {float(v) for v in range(11, 21)}
    assert any("growing sample: 11 -> 21" in m for m in grow_log(caplog))
    make("parallel", model_zip, space(21), store=str(fresh), chunk_size=11).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_a_grid_axis_whose_points_repeat_bit_for_bit(tmp_path, record):
    old, new = ls.GridAxis(0.0, 10.0, 11), ls.GridAxis(0.0, 20.0, 21)
    assert (np.asarray(old.generate_values()).tobytes()
            == np.asarray(new.generate_values())[:11].tobytes())

    def sp(axis):
        return ls.Space({"coupling": axis, "g": ls.GridAxis(0.0, 1.0, 2),
                         "offset": 0.5}, mode="product")

    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model, sp(old), store=str(path)).run()
    record()
    make("parallel", model, sp(new), store=str(path)).run()
    assert record() == {float(v) for v in range(11, 21)}
    make("parallel", model, sp(new), store=str(fresh)).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grid_axis_whose_points_do_not_repeat_is_refused_and_a_data_axis_grows(tmp_path, record):
    old, new = ls.GridAxis(0.1, 0.9, 5), ls.GridAxis(0.1, 1.7, 9)
    old_v, new_v = np.asarray(old.generate_values()), np.asarray(new.generate_values())
    assert np.allclose(old_v, new_v[:5]) and old_v.tobytes() != new_v[:5].tobytes()

    def sp(axis):
        return ls.Space({"coupling": axis, "g": ls.GridAxis(0.0, 1.0, 2),
                         "offset": 0.5}, mode="product")

    path = tmp_path / "sweep.zarr"
    make("parallel", model, sp(old), store=str(path)).run()
    before = snapshot(path)
    with pytest.raises(ValueError, match="coupling") as err:
        make("parallel", model, sp(new), store=str(path)).run()
    assert "overwrite=True" in str(err.value) and "bit for bit" in str(err.value)
    assert snapshot(path) == before
    # the contract's advice: a sweep over those points as a DataAxis grows by its next points
    data_path, fresh = tmp_path / "data.zarr", tmp_path / "fresh.zarr"
    grown = jnp.concatenate([jnp.asarray(old_v), jnp.asarray(new_v[5:])])
    make("parallel", model, sp(ls.DataAxis(grown[:5])), store=str(data_path)).run()
    record()
    make("parallel", model, sp(ls.DataAxis(grown)), store=str(data_path)).run()
    assert record() == {float(v) for v in new_v[5:]}
    make("parallel", model, sp(ls.DataAxis(grown)), store=str(fresh)).run()
    assert_bitwise(stored(data_path), stored(fresh))


def test_a_grid_axis_store_grows_as_a_data_axis_of_the_same_labels(tmp_path, record):

    def sp(axis):
        return ls.Space({"coupling": axis, "g": ls.GridAxis(0.0, 1.0, 2),
                         "offset": 0.5}, mode="product")

    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model, sp(ls.GridAxis(0.0, 10.0, 11)), store=str(path)).run()
    record()
    data = ls.DataAxis(np.arange(21.0))  # float64 labels, as the grid's; float32 values, as its
    make("parallel", model, sp(data), store=str(path)).run()
    assert record() == {float(v) for v in range(11, 21)}
    make("parallel", model, sp(data), store=str(fresh)).run()
    assert_bitwise(stored(path), stored(fresh))


def test_data_axis_grows_with_values_that_are_not_a_grid(tmp_path, record):
    values = np.asarray([0.0, 0.1, 0.3, 0.7, 1.1, 1.7, 2.3], np.float32)

    def sp(n):
        return ls.Space({"coupling": ls.DataAxis(jnp.asarray(values[:n])),
                         "g": ls.GridAxis(0.0, 1.0, 2), "offset": 0.5}, mode="product")

    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model, sp(4), store=str(path)).run()
    record()
    make("parallel", model, sp(7), store=str(path)).run()
    assert record() == {float(v) for v in values[4:]}
    make("parallel", model, sp(7), store=str(fresh)).run()
    assert_bitwise(stored(path), stored(fresh))


def model_m1(s):
    return {"y": seen(s["c"]) * 2.0 + s["v"]}


def model_vec(s):
    return {"y": jnp.sum(seen(s["c"]))}


def model_ab(s):
    return {"y": seen(s["a"]) + s["b"] * s["g"]}


def model_qmc(s):
    return {"y": seen(s["a"]) + s["b"]}


GROWS = {  # old space, new space, model, values of the recorded leaf computed by the growth
    "DataAxis with string labels": (
        lambda: ls.Space({"c": ls.DataAxis(jnp.arange(2.0), labels=["a", "b"]), "v": 0.0}),
        lambda: ls.Space({"c": ls.DataAxis(jnp.arange(3.0), labels=["a", "b", "c"]), "v": 0.0}),
        model_m1, {2.0}),
    "DataAxis of vectors": (
        lambda: ls.Space({"c": ls.DataAxis(jnp.arange(6.0).reshape(3, 2))}),
        lambda: ls.Space({"c": ls.DataAxis(jnp.arange(10.0).reshape(5, 2))}),
        model_vec, {6.0, 7.0, 8.0, 9.0}),
    "a group": (
        lambda: ls.Space({"a": ls.DataAxis(jnp.arange(3.0), group="ab"),
                          "b": ls.DataAxis(jnp.arange(3.0) * 2, group="ab"),
                          "g": ls.GridAxis(0.0, 1.0, 2)}, mode="product"),
        lambda: ls.Space({"a": ls.DataAxis(jnp.arange(5.0), group="ab"),
                          "b": ls.DataAxis(jnp.arange(5.0) * 2, group="ab"),
                          "g": ls.GridAxis(0.0, 1.0, 2)}, mode="product"),
        model_ab, {3.0, 4.0}),
    "a dimension of size 1": (
        lambda: ls.Space({"c": ls.DataAxis(jnp.arange(1.0)), "v": 0.0}, mode="product"),
        lambda: ls.Space({"c": ls.DataAxis(jnp.arange(4.0)), "v": 0.0}, mode="product"),
        model_m1, {1.0, 2.0, 3.0}),
    "sobol (its points are a prefix)": (
        lambda: ls.Space({"a": ls.UniformAxis(0.0, 1.0, 8), "b": ls.GridAxis(0.0, 1.0, 8)},
                         mode="sobol"),
        lambda: ls.Space({"a": ls.UniformAxis(0.0, 1.0, 16), "b": ls.GridAxis(0.0, 1.0, 16)},
                         mode="sobol"),
        model_qmc, None),
}


@pytest.mark.parametrize("case", sorted(GROWS))
def test_grow_other_kinds_of_dimension(tmp_path, record, caplog, case):
    old, new, fn, computed = GROWS[case]
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", fn, old(), store=str(path)).run()
    first = record()
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    make("parallel", fn, new(), store=str(path)).run()
    assert grow_log(caplog)
    grown = record()
    if computed is not None:
        assert grown == computed
    assert not grown & first
    make("parallel", fn, new(), store=str(fresh)).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_a_middle_dimension_with_ragged_blocks(tmp_path, record):

    def space(n):
        return ls.Space({"a": ls.GridAxis(0.0, 1.0, 3), "b": ls.DataAxis(jnp.arange(float(n))),
                         "c": ls.GridAxis(0.0, 1.0, 2)}, mode="product")

    def fn(s):
        return {"y": seen(s["b"]) + s["a"] * s["c"]}

    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    ex = make("parallel", fn, space(5), store=str(path), chunk_size=4)
    step = ex.explain().block_shape[1]
    ex.run()
    record()
    make("parallel", fn, space(9), store=str(path), chunk_size=4).run()
    assert record() == {float(v) for v in range(first_recomputed(5, step), 9)}
    make("parallel", fn, space(9), store=str(fresh), chunk_size=4).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_keeps_the_stores_blocks_whatever_chunk_size_the_growth_asks(tmp_path, record):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    make("parallel", model, space_cg(21), store=str(path), n_vmap=5).run()
    make("parallel", model, space_cg(21), store=str(fresh), chunk_size=12).run()
    assert_bitwise(stored(path), stored(fresh))


def test_a_failed_growth_keeps_what_was_stored_and_a_rerun_finishes_it(tmp_path, record):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    before = stored(path)
    os.environ[FAIL_AT] = "4.25"
    try:
        with pytest.raises(ls.ModelError):
            make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    finally:
        del os.environ[FAIL_AT]
    opened = ls.open_results(path)
    assert not opened.complete
    kept = opened.to_xarray().load().isel(coupling=slice(0, 8))  # blocks 0..7 never recomputed
    for name in before.data_vars:
        assert (np.asarray(kept[name]).tobytes()
                == np.asarray(before[name].isel(coupling=slice(0, 8))).tobytes())
    record()
    make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    assert not record() & labels(8)
    make("parallel", model, space_cg(21), store=str(fresh), chunk_size=12).run()
    assert_bitwise(stored(path), stored(fresh))


REFUSED = {
    "another dim": (model, lambda: space_cg(21, h=ls.GridAxis(0.0, 1.0, 2)), "h"),
    "changed fixed leaf": (model, lambda: space_cg(21, offset=0.75), "offset"),
    "different output": (model_other_output, lambda: space_cg(21), "z"),
    "shrunk axis": (model, lambda: space_cg(6), "coupling"),
    "reordered axis": (model, lambda: ls.Space(
        {"coupling": ls.DataAxis(jnp.arange(21, dtype=jnp.float32)[::-1] / 4),
         "g": ls.GridAxis(0.0, 1.0, 3), "offset": 0.5}, mode="product"), "coupling"),
    "prefix changed": (model, lambda: ls.Space(
        {"coupling": ls.DataAxis(jnp.arange(21, dtype=jnp.float32).at[3].set(3.5) / 4),
         "g": ls.GridAxis(0.0, 1.0, 3), "offset": 0.5}, mode="product"), "coupling"),
    "two dims grown": (model, lambda: space_cg(21, g=5), "g"),
    "grown axis of another dtype": (model, lambda: ls.Space(
        {"coupling": ls.DataAxis(np.arange(21, dtype=np.float64) / 4),
         "g": ls.GridAxis(0.0, 1.0, 3), "offset": 0.5}, mode="product"), "float64"),
    "grown axis with other attrs": (model, lambda: ls.Space(
        {"coupling": ls.DataAxis(jnp.arange(21, dtype=jnp.float32) / 4, attrs={"units": "s"}),
         "g": ls.GridAxis(0.0, 1.0, 3), "offset": 0.5}, mode="product"), "units"),
    "grown with another key": (model, lambda: ls.Space(
        {"coupling": ls.DataAxis(jnp.arange(21, dtype=jnp.float32) / 4),
         "g": ls.GridAxis(0.0, 1.0, 3), "offset": 0.5}, mode="product",
        key=jax.random.key(1)), "key"),
    "grown with another model argument": (lambda s, extra=1.0: model(s), lambda: space_cg(21),
                                          "extra"),
    "latin hypercube (its points are no prefix)": (model, lambda: ls.Space(
        {"coupling": ls.UniformAxis(0.0, 1.0, 21), "g": ls.GridAxis(0.0, 1.0, 21),
         "offset": 0.5}, mode="lhs"), "mode"),
    "grown, and zip instead of product": (model, lambda: ls.Space(
        {"coupling": ls.DataAxis(jnp.arange(21, dtype=jnp.float32) / 4),
         "g": ls.DataAxis(jnp.arange(21, dtype=jnp.float32)), "offset": 0.5}, mode="zip"),
        "mode"),
}


@pytest.mark.parametrize("change", sorted(REFUSED))
def test_any_other_change_is_refused_and_leaves_the_store_untouched(tmp_path, record, change):
    fn, new_space, named = REFUSED[change]
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    before = snapshot(path)
    record()
    kwargs = {"extra": 2.0} if "argument" in change else {}
    executor = make("parallel", fn, new_space(), store=str(path), chunk_size=12, **kwargs)
    with pytest.raises(ValueError, match=re.escape(named)) as err:
        executor.explain()
    with pytest.raises(ValueError, match=re.escape(named)) as err:
        executor.run()
    message = str(err.value)
    assert "overwrite=True" in message and str(path) in message
    assert snapshot(path) == before
    assert record() == set()
    assert_bitwise(stored(path), stored(path))  # still opens


def test_labels_a_prefix_but_stored_values_changed_is_refused(tmp_path, record):
    """Labels compare exactly, and everything else must be equal: the values under them too."""
    old = ls.Space({"c": ls.DataAxis(jnp.arange(3.0), labels=[10, 20, 30]), "v": 0.0},
                   mode="product")
    new = ls.Space({"c": ls.DataAxis(jnp.asarray([0.0, 1.0, 9.0, 3.0]), labels=[10, 20, 30, 40]),
                    "v": 0.0}, mode="product")
    path = tmp_path / "sweep.zarr"
    make("parallel", model_m1, old, store=str(path)).run()
    before = snapshot(path)
    with pytest.raises(ValueError, match="c"):
        make("parallel", model_m1, new, store=str(path)).run()
    assert snapshot(path) == before


def test_two_dims_grown_names_both(tmp_path, record):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path)).run()
    with pytest.raises(ValueError, match="coupling") as err:
        make("parallel", model, space_cg(21, g=5), store=str(path)).run()
    assert "g" in str(err.value)


def test_a_netcdf_path_is_no_store(tmp_path):
    """The contract's stores are `.zarr` directories; a `.nc` store is refused, naming `store`."""
    with pytest.raises(ValueError, match="store"):
        ls.ParallelExecution(model, space_cg(11), store=str(tmp_path / "s.nc"), progress=False)


@pytest.mark.slow
def test_grow_with_dask_own_local_cluster(tmp_path, record, caplog):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    ls.DaskExecution(model, space_cg(11), store=str(path), chunk_size=12, progress=False).run()
    record()
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    ls.DaskExecution(model, space_cg(21), store=str(path), chunk_size=12, progress=False).run()
    assert record() == labels(21) - labels(8)  # blocks of (4, 3): 8..11 filled up
    assert any("growing coupling: 11 -> 21" in m for m in grow_log(caplog))
    ls.ParallelExecution(model, space_cg(21), store=str(fresh), chunk_size=12,
                         progress=False).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_a_half_done_store_computes_its_missing_blocks_too(tmp_path, record, caplog):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    half_done(path)
    done = make("parallel", model, space_cg(11), store=str(path), chunk_size=12).explain()
    assert 0 < done.blocks_done < done.blocks
    record()
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    assert any("growing coupling: 11 -> 21" in m for m in grow_log(caplog))
    assert not record() & labels(4 * done.blocks_done)  # finished blocks are kept
    assert ls.open_results(path).complete
    make("parallel", model, space_cg(21), store=str(fresh), chunk_size=12).run()
    assert_bitwise(stored(path), stored(fresh))


# ---------------------------------------------------------------- cost preview

LANE_BYTES = 4 + 3 * 4  # y float32, z float32[3]


def half_done(path, client=None, kind="parallel"):
    """A store whose run failed at coupling=2.0 (blocks of (4, 3): the third block)."""
    os.environ[FAIL_AT] = "2.0"
    try:
        with pytest.raises(ls.ModelError):
            make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).run()
    finally:
        del os.environ[FAIL_AT]


def test_explain_fields_before_anything_runs(tmp_path, kind, client, record):
    path = tmp_path / "sweep.zarr"
    ex = make(kind, model, space_cg(11), client, store=str(path), chunk_size=12)
    e = ex.explain()
    assert not path.exists()  # nothing written, not even an empty store
    assert e.combinations == 33
    assert dict(e.dims) == {"coupling": 11, "g": 3}
    shape = e.block_shape
    assert len(shape) == 2
    assert e.blocks == math.prod(math.ceil(n / b) for n, b in zip((11, 3), shape, strict=True))
    if kind == "sequential":
        assert math.prod(shape) == 1 and e.blocks == 33
    else:
        assert shape == (4, 3) and e.blocks == 3
        assert e.n_vmap in (None, 12) and e.n_pmap == 1
    for name in ("argument_bytes", "output_bytes", "temp_bytes", "peak_bytes"):
        value = getattr(e, name)
        assert isinstance(value, int) and value >= 0, name
    lanes = 1 if kind == "sequential" else 12
    assert e.output_bytes >= lanes * LANE_BYTES  # the block's results, and whatever XLA adds
    assert e.peak_bytes >= max(e.argument_bytes, e.output_bytes, e.temp_bytes)
    assert e.peak_bytes <= e.argument_bytes + e.output_bytes + e.temp_bytes
    assert e.bytes_per_block == math.prod(shape) * LANE_BYTES
    assert e.total_bytes == 33 * LANE_BYTES
    assert e.blocks_done == 0 and e.size_on_disk in (0, None)
    assert e.seconds is None
    assert record() == set()  # compiled, not run
    if kind == "parallel":
        e = make(kind, model, space_cg(11), n_vmap=5, chunk_size=12).explain()
        assert e.n_vmap == 5 and e.block_shape == (4, 3)


def test_explain_reports_xla_memory_of_the_compiled_block():
    """Temporaries grow with the lanes of a block: they come from XLA, not from a formula."""
    space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 64)}, mode="product")
    small = ls.ParallelExecution(model_big, space, chunk_size=8, progress=False).explain()
    large = ls.ParallelExecution(model_big, space, chunk_size=64, progress=False).explain()
    assert small.block_shape == (8,) and large.block_shape == (64,)
    assert large.temp_bytes > small.temp_bytes >= 8 * 128 * 4
    assert large.output_bytes == 64 * 4 and small.output_bytes == 8 * 4
    reference = jax.jit(jax.vmap(model_big)).lower(
        {"coupling": jnp.zeros(64, jnp.float32)}).compile().memory_analysis()
    if reference is not None:
        assert large.output_bytes == reference.output_size_in_bytes
        assert 0.5 <= large.temp_bytes / reference.temp_size_in_bytes <= 2


def test_explain_store_states_fresh_half_done_complete(tmp_path, kind, client, record, caplog):
    path = tmp_path / "sweep.zarr"
    fresh = make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).explain()
    assert fresh.blocks_done == 0 and not path.exists()

    half_done(path, client, kind)
    before = snapshot(path)
    e = make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).explain()
    assert snapshot(path) == before
    assert 0 < e.blocks_done < e.blocks
    assert e.size_on_disk == disk_size(path)
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).run()
    assert any(f"resuming: {e.blocks_done} of {e.blocks} blocks" in r.getMessage()
               for r in caplog.records)

    done = make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).explain()
    assert done.blocks_done == done.blocks and done.blocks_to_run == 0
    assert done.size_on_disk == disk_size(path) > 0
    assert str(path) in repr(done)


def test_explain_time_estimates_from_one_block_and_writes_nothing(tmp_path, kind, client, record):
    path = tmp_path / "sweep.zarr"
    e = make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).explain(time=True)
    assert not path.exists()
    assert e.seconds is not None and math.isfinite(e.seconds) and e.seconds > 0
    assert e.seconds_per_block is not None and e.seconds_per_block > 0
    assert record()  # a block really ran
    half_done(path, client, kind)
    before = snapshot(path)
    e = make(kind, model, space_cg(11), client, store=str(path), chunk_size=12).explain(time=True)
    assert snapshot(path) == before
    assert e.seconds > 0


def test_explain_repr_is_a_short_readable_table(tmp_path):
    e = ls.ParallelExecution(model, space_cg(11), store=str(tmp_path / "s.zarr"),
                             chunk_size=12, progress=False).explain(time=True)
    text = repr(e)
    lines = text.splitlines()
    assert 3 <= len(lines) <= 12
    assert all(len(line.replace(str(tmp_path), "")) <= 100 for line in lines)
    for part in ("33", "coupling", "g", "(4, 3)", "s.zarr"):
        assert part in text
    assert str(e) == text or "33" in str(e)


def test_explain_with_overwrite_leaves_the_store_until_the_run(tmp_path, record):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    before = snapshot(path)
    e = make("parallel", model_other_output, space_cg(5), store=str(path),
             overwrite=True).explain(time=True)
    assert snapshot(path) == before
    assert e.blocks_done == 0 and e.blocks_to_run == e.blocks


def test_explain_counts_a_done_block_whose_chunk_went_missing_as_not_done(tmp_path, record):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    chunk = path / "y" / "c" / "1" / "0"
    assert chunk.is_file()
    chunk.unlink()
    e = make("parallel", model, space_cg(11), store=str(path), chunk_size=12).explain()
    assert e.blocks_done == e.blocks - 1
    record()
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    assert record() == labels(8) - labels(4)


def test_explain_on_a_growing_store_plans_it_without_growing(tmp_path, record):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    before = snapshot(path)
    e = make("parallel", model, space_cg(21), store=str(path), chunk_size=12).explain(time=True)
    assert snapshot(path) == before
    assert "growing coupling: 11 -> 21" in e.store_state
    assert e.combinations == 63 and e.blocks == 6 and e.blocks_done == 2


def test_n_vmap_auto_fits_max_memory_and_gives_the_same_results():
    space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 64)}, mode="product")
    whole = ls.ParallelExecution(model_big, space, chunk_size=64, progress=False)
    full = whole.explain()
    assert full.peak_bytes > 64 * 128 * 128 * 4  # 64 lanes of 64 kB temporaries

    default = ls.ParallelExecution(model_big, space, chunk_size=64, n_vmap="auto",
                                   progress=False).explain()
    assert default.n_vmap in (None, 64)  # a few MB fit in a quarter of any machine's memory

    chosen = {}
    for budget in (full.peak_bytes // 2, full.peak_bytes // 8):
        ex = ls.ParallelExecution(model_big, space, chunk_size=64, n_vmap="auto",
                                  max_memory=budget, progress=False)
        e = ex.explain()
        assert isinstance(e.n_vmap, int) and 1 <= e.n_vmap < 64
        assert e.peak_bytes <= budget
        if 2 * e.n_vmap <= 64:  # the largest batch: twice as many does not fit
            bigger = ls.ParallelExecution(model_big, space, chunk_size=64, n_vmap=2 * e.n_vmap,
                                          progress=False).explain()
            assert bigger.peak_bytes > budget
        chosen[budget] = e.n_vmap
        np.testing.assert_array_equal(np.asarray(ex.run().to_xarray()["y"]),
                                      np.asarray(whole.run().to_xarray()["y"]))
    assert chosen[full.peak_bytes // 8] <= chosen[full.peak_bytes // 2]


def test_n_vmap_auto_default_budget_is_a_quarter_of_available_memory():
    """Compiled only (never run): 256 lanes of 2 x 64 MB temporaries, 32 GB for the whole block."""
    psutil = pytest.importorskip("psutil")
    width = 4096

    def huge(s):
        v = s["coupling"] + jnp.arange(width, dtype=jnp.float32)
        m = jnp.outer(v, v)
        return {"y": jnp.sum(jnp.sin(m) @ jnp.cos(m))}

    space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 256)}, mode="product")
    e = ls.ParallelExecution(huge, space, chunk_size=256, n_vmap="auto",
                             progress=False).explain()
    quarter = psutil.virtual_memory().available / 4
    if e.n_vmap in (None, 256):
        assert e.peak_bytes <= 1.25 * quarter
        return
    assert e.peak_bytes <= 1.25 * quarter
    twice = ls.ParallelExecution(huge, space, chunk_size=256, n_vmap=2 * e.n_vmap,
                                 progress=False).explain()
    assert twice.peak_bytes > 0.8 * quarter


@pytest.mark.parametrize("name,value", [
    ("max_memory", -1), ("max_memory", 0), ("max_memory", "lots"), ("max_memory", 1.5),
    ("max_memory", True), ("n_vmap", "fast"), ("n_vmap", 0), ("n_vmap", -2), ("n_vmap", 2.5),
])
def test_bad_n_vmap_or_max_memory_names_the_argument(name, value):
    options = {"n_vmap": "auto", name: value}
    with pytest.raises((ValueError, TypeError), match=name):
        ls.ParallelExecution(model_big, space_cg(11), progress=False, **options).explain()


def test_auto_with_a_budget_nothing_fits_in_says_so_and_runs_one_at_a_time():
    """The contract is silent; the package warns, naming max_memory, and takes n_vmap=1."""
    space = ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 8)}, mode="product")
    with pytest.warns(UserWarning, match="max_memory"):
        e = ls.ParallelExecution(model_big, space, n_vmap="auto", max_memory=1000,
                                 progress=False).explain()
    assert e.n_vmap == 1


def test_explain_time_false_rejects_non_bools():
    with pytest.raises((TypeError, ValueError), match="time"):
        ls.ParallelExecution(model, space_cg(3), progress=False).explain(time="no")


# ---------------------------------------------------------------- a user's first hour

def test_rerun_the_same_sweep_recomputes_nothing(tmp_path, record, caplog):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    record()
    before = stored(path)
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    again = make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    assert record() == set()
    assert not grow_log(caplog)
    assert any("resuming: 6 of 6 blocks" in r.getMessage() for r in caplog.records)
    assert_bitwise(again.to_xarray().load(), before)


def test_grow_twice_in_a_row(tmp_path, kind, client, record, caplog):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    caplog.set_level(logging.INFO, logger="labeled_spaces")
    for n in (11, 16, 21):
        make(kind, model, space_cg(n), client, store=str(path), chunk_size=12).run()
    messages = grow_log(caplog)
    assert any("11 -> 16" in m for m in messages) and any("16 -> 21" in m for m in messages)
    make(kind, model, space_cg(21), client, store=str(fresh), chunk_size=12).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_then_open_results(tmp_path):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path)).run()
    make("parallel", model, space_cg(21), store=str(path)).run()
    opened = ls.open_results(path)
    assert opened.complete
    assert len(opened) == 63 and opened.space.sizes == {"coupling": 21, "g": 3}
    np.testing.assert_array_equal(np.asarray(opened.space.coords["coupling"]),
                                  np.asarray(space_cg(21).coords["coupling"]))
    assert float(opened[62]["y"]) == float(model(space_cg(21)[62])["y"])
    # and the reopened space runs as the same run: nothing to grow, nothing to redo
    e = ls.ParallelExecution(model, opened.space, store=str(path), progress=False).explain()
    assert e.blocks_to_run == 0


@pytest.mark.slow
def test_explain_on_dask_with_its_own_cluster(tmp_path, record):
    path = tmp_path / "sweep.zarr"
    e = ls.DaskExecution(model, space_cg(11), store=str(path), chunk_size=12,
                         progress=False).explain(time=True)
    assert not path.exists()
    assert e.blocks == 3 and e.block_shape == (4, 3) and e.seconds > 0
    assert e.output_bytes >= 12 * LANE_BYTES


def test_explain_then_run_gives_the_plan_it_showed(tmp_path, record, caplog):
    path = tmp_path / "sweep.zarr"
    ex = make("parallel", model, space_cg(11), store=str(path), chunk_size=12)
    e = ex.explain(time=True)
    record()
    results = ex.run()
    assert record() == labels(11)
    assert results.to_xarray()["y"].encoding.get("chunks", e.block_shape) == e.block_shape
    assert ls.open_results(path).complete
    assert ex.explain().blocks_done == e.blocks


def test_grow_then_export_to_netcdf(tmp_path):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    grown = make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    grown.to_netcdf(tmp_path / "grown.nc")
    make("parallel", model, space_cg(21), store=str(fresh), chunk_size=12).run().to_netcdf(
        tmp_path / "fresh.nc")
    a = ls.open_results(tmp_path / "grown.nc").to_xarray().load()
    b = ls.open_results(tmp_path / "fresh.nc").to_xarray().load()
    assert_bitwise(a, b)
    assert a.sizes["coupling"] == 21


@pytest.mark.parametrize("first,then", [("parallel", "sequential"), ("sequential", "parallel"),
                                        ("parallel", "dask")])
def test_grow_a_store_with_another_executor(tmp_path, client, record, first, then):
    path, fresh = tmp_path / "sweep.zarr", tmp_path / "fresh.zarr"
    make(first, model, space_cg(11), client, store=str(path), chunk_size=12).run()
    record()
    make(then, model, space_cg(21), client, store=str(path), chunk_size=12).run()
    assert not record() & labels(8)
    make(first, model, space_cg(21), client, store=str(fresh), chunk_size=12).run()
    assert_bitwise(stored(path), stored(fresh))


def test_grow_a_slice_and_a_sub_space(tmp_path, record):
    """Slices and isel sub-spaces keep each combination's position: they grow as the rest."""
    def fn(s):
        return {"y": seen(s["a"]) + jax.random.uniform(s["k"], ()) + jax.random.uniform(s["n"], ())}

    full = ls.Space({"a": ls.DataAxis(jnp.arange(6.0)), "b": ls.GridAxis(0.0, 1.0, 3),
                     "n": ls.PointKey(), "k": ls.KeyAxis(2)}, mode="product")
    for name, old, new, computed in [("slice", full[0:10], full[0:16], {1.0, 2.0}),
                                     ("isel", full.isel(a=slice(0, 3)),
                                      full.isel(a=slice(0, 5)), {3.0, 4.0})]:
        path, fresh = tmp_path / f"{name}.zarr", tmp_path / f"{name}_fresh.zarr"
        make("parallel", fn, old, store=str(path)).run()
        record()
        make("parallel", fn, new, store=str(path)).run()
        assert record() == computed, name
        make("parallel", fn, new, store=str(fresh)).run()
        assert_bitwise(stored(path), stored(fresh))


def test_old_results_still_read_after_their_store_grew(tmp_path):
    path = tmp_path / "sweep.zarr"
    small = make("parallel", model, space_cg(11), store=str(path), chunk_size=12).run()
    values = np.asarray(small["y"].values).copy()
    make("parallel", model, space_cg(21), store=str(path), chunk_size=12).run()
    assert small.to_xarray()["y"].shape == (11, 3) and len(small) == 33
    np.testing.assert_array_equal(np.asarray(small["y"].values), values)


def test_explain_refuses_a_path_that_is_no_store(tmp_path):
    junk = tmp_path / "junk.zarr"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="store"):
        make("parallel", model, space_cg(3), store=str(junk)).explain()
    assert (junk / "notes.txt").read_text() == "mine"


def test_print_explain(capsys):
    print(ls.SequentialExecution(model, space_cg(3), progress=False).explain())
    out = capsys.readouterr().out
    assert "9" in out and "coupling" in out


def test_grow_with_overwrite_replaces_the_store(tmp_path, record):
    path = tmp_path / "sweep.zarr"
    make("parallel", model, space_cg(11), store=str(path)).run()
    record()
    make("parallel", model, space_cg(21), store=str(path), overwrite=True).run()
    assert record() == labels(21)

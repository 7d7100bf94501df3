"""refine's store: one zarr store of every point (open_results, xarray), its rounds inside."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import labeled_spaces as ls
from labeled_spaces import GridAxis, Space, open_results, refine
from labeled_spaces.cli import UsageError, describe
from labeled_spaces.results.store import store_state

WIDTH = 0.05


def square(width=WIDTH, high=1.0):
    return Space({"x": GridAxis(-1.0, high, 5), "y": GridAxis(-1.0, 1.0, 5), "width": width},
                 mode="product")


def circle(s):
    return jnp.tanh((jnp.sqrt(s["x"] ** 2 + s["y"] ** 2) - 0.5) / s["width"])


def counting(computed):
    def model(s):
        jax.debug.callback(lambda x: computed.append(float(x)), s["x"])
        return circle(s)
    return model


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def root_files(store):
    return [p for p in store.iterdir() if not p.name.startswith("round_")]


def test_the_store_reopens_as_the_results_refine_returned(tmp_path):
    store = tmp_path / "refined.zarr"
    # 330 points in rounds of 40: the root's chunks of 256 points are appended to
    results = refine(circle, square(), n=330, batch=40, store=store)
    want = results.to_xarray()
    opened = open_results(store)
    assert isinstance(opened, ls.RefineResults) and opened.complete
    xr.testing.assert_identical(opened.to_xarray().compute(), want)
    np.testing.assert_array_equal(opened.rounds, results.rounds)
    assert opened.refinement == results.refinement
    xr.testing.assert_identical(opened.to_grid(x=30, y=20), results.to_grid(x=30, y=20))
    with xr.open_zarr(store) as plain:  # xarray alone: every point, the axes as coordinates
        assert plain.sizes == {"point": 330}
        xr.testing.assert_identical(plain.drop_attrs().compute(), want.drop_attrs())
        assert set(plain.attrs) - set(want.attrs) == {"labeled_spaces:store"}
        assert all(plain.attrs[k] == v for k, v in want.attrs.items())
    text = describe(store)
    assert "labeled_spaces results, zarr store" in text and "complete" in text
    assert "330 of 330 combinations" in text
    # what a rerun must match to resume it
    assert ("refine: n=330, batch=40, first round 25 points, output=None; "
            "x -1 .. 1, y -1 .. 1") in text


def test_a_netcdf_file_of_refine_results_reopens_as_them(tmp_path):
    results = refine(circle, square(), n=40, batch=5)
    results.to_netcdf(tmp_path / "refined.nc")
    opened = open_results(tmp_path / "refined.nc")
    assert isinstance(opened, ls.RefineResults)
    xr.testing.assert_identical(opened.to_xarray().compute(), results.to_xarray())
    # an edited file keeps each point's round
    with xr.open_dataset(tmp_path / "refined.nc") as ds:
        ds.isel(point=[39, 3, 30]).to_netcdf(tmp_path / "some.nc")
    some = open_results(tmp_path / "some.nc")
    assert sorted(some.rounds.tolist()) == sorted(results.rounds[[39, 3, 30]].tolist())


def test_a_finished_refinement_reruns_without_computing_or_writing(tmp_path):
    computed = []
    store = tmp_path / "refined.zarr"
    first = refine(counting(computed), square(), n=80, batch=20, store=store)
    before = snapshot(store)
    computed.clear()
    again = refine(counting(computed), square(), n=80, batch=20, store=store)
    assert computed == []
    assert snapshot(store) == before
    xr.testing.assert_identical(again.to_xarray(), first.to_xarray())


def test_an_interrupted_round_is_resumed_and_the_root_holds_the_finished_rounds(tmp_path):
    failing = {"on": True}

    calls = []

    def check(x):  # round 2 (after 45 points) fails from its 11th point on
        calls.append(1)
        if failing["on"] and len(calls) > 45 + 10:
            raise ValueError("stopped")
        return np.asarray(x, np.float32)

    seen = []

    def model(s):
        jax.debug.callback(lambda x: seen.append(float(x)), s["x"])
        x = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), s["x"],
                              vmap_method="sequential")
        return circle({**s, "x": x})

    store = tmp_path / "refined.zarr"
    with pytest.raises(ls.ModelError):
        refine(model, square(), n=80, batch=20, store=store, chunk_size=2)
    # the root holds the rounds that finished, and reads as their results
    partial = open_results(store)
    assert isinstance(partial, ls.RefineResults) and len(partial) == 45
    with xr.open_zarr(store) as plain:
        assert plain.sizes == {"point": 45}
    state = store_state(store / "round_002.zarr")
    finished = 2 * int(state.done.sum())  # blocks of 2 points
    assert 0 < finished < 20
    failing["on"] = False
    seen.clear()
    results = refine(model, square(), n=80, batch=20, store=store, chunk_size=2)
    # only the points of round 2 whose blocks did not finish, and round 3, are computed
    # (the last round's 15 points run in blocks of 2: one padding lane)
    assert 20 - finished + 15 <= len(seen) <= 20 - finished + 16
    fresh = refine(model, square(), n=80, batch=20, chunk_size=2)
    xr.testing.assert_identical(results.to_xarray(), fresh.to_xarray())
    xr.testing.assert_identical(open_results(store).to_xarray().compute(), fresh.to_xarray())


def test_a_crash_while_the_root_is_written_leaves_it_whole(tmp_path, monkeypatch):
    import labeled_spaces.results.refine_store as refine_store

    store = tmp_path / "refined.zarr"
    computed = []
    model = counting(computed)
    writes = {"root": 0}
    replace = refine_store.replace_file

    def crashing(path, data):
        if path == str(store / "zarr.json"):
            writes["root"] += 1
            if writes["root"] == 3:  # after round 2's chunks and arrays, before its root
                raise KeyboardInterrupt
        replace(path, data)

    monkeypatch.setattr(refine_store, "replace_file", crashing)
    with pytest.raises(KeyboardInterrupt):
        refine(model, square(), n=80, batch=20, store=store)
    monkeypatch.undo()
    # readers still see rounds 0 and 1 (45 points), whole
    before = open_results(store)
    first_two = refine(model, square(), n=45, batch=20)
    xr.testing.assert_identical(before.to_xarray().compute().drop_attrs(),
                                first_two.to_xarray().drop_attrs())
    computed.clear()
    again = refine(model, square(), n=80, batch=20, store=store)
    assert len(computed) == 15  # round 2 was stored: only the last round is computed
    xr.testing.assert_identical(open_results(store).to_xarray().compute(), again.to_xarray())


@pytest.mark.parametrize(("change", "named"), [
    ({"n": 60}, "n: 80 -> 60"),  # a store never shrinks (a larger n grows it)
    ({"batch": 30}, "batch: 20 -> 30"),
    ({"space": square(high=2.0)}, "high: [1.0, 1.0] -> [2.0, 1.0]"),
    ({"space": square(width=0.1)}, "width: 0.05 -> 0.1"),
])
def test_another_refinement_is_refused_and_the_store_left_untouched(tmp_path, change, named):
    store = tmp_path / "refined.zarr"
    refine(circle, square(), n=80, batch=20, store=store)
    before = snapshot(store)
    arguments = {"space": square(), "n": 80, "batch": 20, **change}
    with pytest.raises(ValueError, match="give a new path") as caught:
        refine(circle, arguments.pop("space"), **arguments, store=store)
    assert named in str(caught.value)
    assert snapshot(store) == before


def test_overwrite_replaces_the_refinement(tmp_path):
    store = tmp_path / "refined.zarr"
    refine(circle, square(), n=80, batch=20, store=store)
    results = refine(circle, square(), n=60, batch=10, store=store, overwrite=True)
    xr.testing.assert_identical(open_results(store).to_xarray().compute(), results.to_xarray())
    # nothing of the old refinement is left (its rounds 3 to 6 would be read back later)
    assert sorted(p.name for p in store.glob("round_*")) == [f"round_{k:03d}.zarr"
                                                            for k in range(5)]
    assert not list(tmp_path.glob(".*replaced*"))
    grown = refine(circle, square(), n=70, batch=10, store=store)
    xr.testing.assert_identical(grown.to_xarray(),
                                refine(circle, square(), n=70, batch=10).to_xarray())


def test_an_overwrite_that_fails_puts_the_stored_refinement_back(tmp_path):
    store = tmp_path / "refined.zarr"
    refine(circle, square(), n=80, batch=20, store=store)
    before = snapshot(store)

    def failing(s):
        def check(x):
            if x > 0.5:
                raise RuntimeError("diverges")
            return np.float32(x)
        bad = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), s["x"],
                                vmap_method="sequential")
        return circle(s) + 0 * bad

    with pytest.raises(ls.ModelError, match="diverges"):
        refine(failing, square(), n=60, batch=10, store=store, overwrite=True)
    assert snapshot(store) == before
    assert not list(tmp_path.glob(".*replaced*"))


@pytest.mark.parametrize("name", ["refined.nc", "refined"])
def test_a_new_refine_store_is_a_zarr_path(tmp_path, name):
    with pytest.raises(ValueError, match=r"store must be .*\.zarr directory"):
        refine(circle, square(), n=30, batch=10, store=tmp_path / name)
    assert not (tmp_path / name).exists()


def test_a_folder_that_refine_did_not_make_is_refused(tmp_path):
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="refine did not make"):
            refine(circle, square(), n=30, batch=10, store=folder, overwrite=overwrite)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_a_store_of_another_kind_is_refused(tmp_path):
    store = tmp_path / "sweep.zarr"
    ls.ParallelExecution(circle, square(), progress=False, store=store).run()
    before = snapshot(store)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="refine did not make"):
            refine(circle, square(), n=40, batch=5, store=store, overwrite=overwrite)
    assert snapshot(store) == before


def test_a_store_of_rounds_only_says_how_to_complete_it(tmp_path):
    # the layout of earlier versions: the rounds' stores, no results over all points
    made = tmp_path / "refined.zarr"
    computed = []
    first = refine(counting(computed), square(), n=80, batch=20, store=made)
    for path in root_files(made):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    store = made.rename(tmp_path / "refined")  # any name: a store's name had no rule then
    with pytest.raises(ValueError, match="earlier version.*run refine again"):
        open_results(store)
    with pytest.raises(UsageError, match="run refine again"):
        describe(store)
    computed.clear()
    again = refine(counting(computed), square(), n=80, batch=20, store=store)
    assert computed == []  # the rounds are read back; the root is written from them
    xr.testing.assert_identical(again.to_xarray(), first.to_xarray())
    xr.testing.assert_identical(open_results(store).to_xarray().compute(), first.to_xarray())


def test_a_model_output_named_round_keeps_its_rounds_in_the_store(tmp_path):
    def model(s):
        return {"round": circle(s), "other": s["x"]}

    store = tmp_path / "refined.zarr"
    with pytest.warns(UserWarning, match="named 'round'"):
        results = refine(model, square(), n=40, batch=5, output="round", store=store)
        want = results.to_xarray()
    with pytest.warns(UserWarning, match="named 'round'"):
        opened = open_results(store)
        got = opened.to_xarray().compute()
    np.testing.assert_array_equal(opened.rounds, results.rounds)
    xr.testing.assert_identical(got, want)


@pytest.mark.parametrize("more", [100, 80])  # more rounds; the last round (15 points) grows
def test_a_larger_n_computes_only_the_points_it_adds(tmp_path, more):
    store = tmp_path / "refined.zarr"
    computed = []
    made = refine(counting(computed), square(), n=75, batch=20, store=store)
    computed.clear()
    grown = refine(counting(computed), square(), n=more, batch=20, store=store)
    # fewer than recomputing the last round's 15 points too (a compiled block may pad its lanes)
    assert more - 75 <= len(computed) < more - 75 + 15
    fresh = refine(counting([]), square(), n=more, batch=20)
    xr.testing.assert_identical(grown.to_xarray(), fresh.to_xarray())
    xr.testing.assert_identical(open_results(store).to_xarray().compute(), fresh.to_xarray())
    xr.testing.assert_identical(grown.to_xarray().isel(point=slice(0, 75)).drop_attrs(),
                                made.to_xarray().drop_attrs())


@pytest.mark.parametrize("damage", ["result/c/0", "x/c/1", "round/c/0", "point/c/1",
                                    "labeled_spaces/done/c/1", "truncated y/c/0"])
def test_a_damaged_root_is_rewritten_from_the_rounds(tmp_path, damage):
    # a chunk of any of the root's arrays lost or damaged: a rerun reads the rounds back and
    # writes the root again from point 0 (it used to write only what the root lacked)
    store = tmp_path / "refined.zarr"
    computed = []
    first = refine(counting(computed), square(), n=300, batch=40, store=store)
    name = damage.split()[-1]
    if damage.startswith("truncated"):
        (store / name).write_bytes((store / name).read_bytes()[:5])
    else:
        (store / name).unlink()
    computed.clear()
    again = refine(counting(computed), square(), n=300, batch=40, store=store)
    assert computed == []  # every round read back
    xr.testing.assert_identical(again.to_xarray(), first.to_xarray())
    opened = open_results(store)
    assert opened.complete
    xr.testing.assert_identical(opened.to_xarray().compute(), first.to_xarray())
    before = snapshot(store)  # whole again: a further rerun writes nothing
    refine(counting(computed), square(), n=300, batch=40, store=store)
    assert snapshot(store) == before


def edited_attr(ds, **changes):
    import json
    entry = json.loads(ds.attrs["labeled_spaces:refine"])
    return ds.assign_attrs({"labeled_spaces:refine": json.dumps({**entry, **changes})})


def test_a_refine_attr_that_does_not_fit_the_file_is_refused(tmp_path):
    # an attr added to other results, or edited, made up rounds (and axes the file lacked)
    results = refine(circle, square(), n=40, batch=5)
    ds = results.to_xarray()
    run = ls.ParallelExecution(circle, square(), progress=False).run().to_xarray()
    zipped = Space({"x": ls.DataAxis(np.linspace(-1, 1, 30)),
                    "y": ls.DataAxis(np.linspace(-1, 1, 30)), "width": WIDTH},
                   mode="zip", dim="point")
    on_points = ls.ParallelExecution(circle, zipped, progress=False).run().to_xarray()
    cases = {
        "product": (run.assign_attrs({"labeled_spaces:refine": ds.attrs[
            "labeled_spaces:refine"]}), "one dimension 'point'.*\\['x', 'y'\\]"),
        "axes": (edited_attr(ds, axes=["x", "z"]), "no coordinates \\['z'\\]"),
        "small_n": (edited_attr(ds, n=30), "n=30.*40 from 0 to 39"),
        "big_grid": (edited_attr(ds, grid=41, n=50), "grid=41"),
        "grid": (edited_attr(ds, grid=20), "'round' must equal.*grid=20"),
        "batch": (edited_attr(ds, batch=3), "'round' must equal.*batch=3"),
        "rounds": (ds.assign_coords(round=("point", np.zeros(40, int))), "'round' must equal"),
    }
    for name, (edited, match) in cases.items():
        edited.to_netcdf(tmp_path / f"{name}.nc")
        with pytest.raises(ValueError, match="labeled_spaces:refine") as err:
            open_results(tmp_path / f"{name}.nc")
        assert err.match(match), name
    # what fits is opened: the file as saved, some of its points (also only the first
    # round's), and the file without its round coordinate (the positions give the rounds)
    for name, part, rounds in (("some", ds.isel(point=[39, 3, 30]), results.rounds[[39, 3, 30]]),
                               ("first", ds.isel(point=slice(0, 10)), results.rounds[:10]),
                               ("dropped", ds.drop_vars("round"), results.rounds),
                               ("unindexed", ds.isel(point=slice(30, 40)).drop_vars("point"),
                                results.rounds[30:40])):
        part.to_netcdf(tmp_path / f"{name}.nc")
        np.testing.assert_array_equal(open_results(tmp_path / f"{name}.nc").rounds, rounds)
    # refine-shaped results with the attr added: labels as they are, rounds from positions
    added = on_points.assign_attrs({"labeled_spaces:refine": ds.attrs["labeled_spaces:refine"]})
    added.to_netcdf(tmp_path / "added.nc")
    opened = open_results(tmp_path / "added.nc")
    np.testing.assert_array_equal(opened.to_xarray()["x"].values, on_points["x"].values)


def test_a_store_stopped_in_its_first_round_says_so(tmp_path):
    # only round 0's store, no root yet: the message named only an earlier version's layout
    def failing(s):  # plain Python: fails at the 10th point of the grid
        if float(s["x"]) > 0.9 and float(s["y"]) > -0.1:
            raise RuntimeError("boom")
        return float(s["x"]) * float(s["y"])
    store = tmp_path / "refined.zarr"
    with pytest.raises(ls.ModelError):
        refine(failing, square(), n=40, batch=5, store=store,
               executor=ls.SequentialExecution, jit=False)
    assert (store / "round_000.zarr").is_dir() and not (store / "zarr.json").exists()
    with pytest.raises(ValueError, match="still running or stopped in its first round.*"
                                         "earlier version; run refine again"):
        open_results(store)


def test_to_grid_of_too_few_or_collinear_points_says_so(tmp_path):
    # scipy's QhullError came through raw
    results = refine(circle, square(), n=40, batch=5)
    ds = results.to_xarray()
    for name, points, match in [("line", [0, 6, 12, 18, 24], "5 points all lie on one line"),
                                ("few", [0, 24], "2 points, too few")]:
        ds.isel(point=points).to_netcdf(tmp_path / f"{name}.nc")
        with pytest.raises(ValueError, match="full-dimensional.*at least 3") as err:
            open_results(tmp_path / f"{name}.nc").to_grid(x=5, y=5)
        assert err.match(match)


def test_an_overwrite_that_fails_otherwise_keeps_both_stores(tmp_path, monkeypatch):
    import sys

    refining = sys.modules["labeled_spaces.analysis.refine"]
    store = tmp_path / "refined.zarr"
    refine(circle, square(), n=40, batch=10, store=store)
    before = snapshot(store)
    real, calls = refining.next_points, {"n": 0}

    def full_disk(*args, **kwargs):  # an error that carries no partial results
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(refining, "next_points", full_disk)
    with pytest.raises(OSError) as caught:
        refine(circle, square(), n=100, batch=10, store=store, overwrite=True)
    note = " ".join(caught.value.__notes__)
    kept = [p for p in tmp_path.iterdir() if ".replaced-" in p.name]
    assert len(kept) == 1 and str(kept[0]) in note and snapshot(kept[0]) == before
    assert (store / "round_002.zarr").is_dir()  # the new rounds stay, to resume from
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="set aside and never put back"):
        resumed = refine(circle, square(), n=100, batch=10, store=store)
    xr.testing.assert_identical(resumed.to_xarray(),
                                refine(circle, square(), n=100, batch=10).to_xarray())


def test_ctrl_c_while_the_results_are_gathered_keeps_them(tmp_path, monkeypatch):
    import sys

    refining = sys.modules["labeled_spaces.analysis.refine"]
    store = tmp_path / "refined.zarr"
    refine(circle, square(), n=40, batch=10, store=store)
    real, calls = refining._combine, {"n": 0}

    def gathering(*args, **kwargs):  # Ctrl-C while the last results are gathered
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(refining, "_combine", gathering)
    with pytest.raises(ls.Interrupted) as caught:
        refine(circle, square(), n=60, batch=10, store=store, overwrite=True)
    assert len(caught.value.partial) == 60
    monkeypatch.undo()
    # the store was whole before the Ctrl-C: it is the new one, and nothing is left aside
    assert open_results(store).refinement.n == 60
    assert not [p for p in tmp_path.iterdir() if ".replaced-" in p.name]


def test_an_overwrite_through_a_link_replaces_the_store_it_points_to(tmp_path):
    real = tmp_path / "data" / "refined.zarr"
    real.parent.mkdir()
    refine(circle, square(), n=40, batch=10, store=real)
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    refine(circle, square(), n=60, batch=10, store=link, overwrite=True)
    assert link.is_symlink() and open_results(real).refinement.n == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.zarr"]
    assert [p.name for p in real.parent.iterdir()] == ["refined.zarr"]

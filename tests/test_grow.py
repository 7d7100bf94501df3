"""Growing a store along one dimension: the prefix rule, in place, crash-safe, refused otherwise."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
import zarr

import labeled_spaces as ls
from labeled_spaces.results import store_growth

T = np.linspace(0.0, 0.3, 3)
LABELS = dict(output_dims={"y": ("time",)}, output_coords={"time": T})
NAMES = [f"region {i}" for i in range(40)]


def space(n=11, b=5, dt=0.5, mode="product"):
    """Grid axes in steps of 0.1 and 0.25, whose new points repeat the old ones bit for bit."""
    return ls.Space({"coupling": ls.GridAxis(0.0, (n - 1) / 10, n),
                     "b": ls.GridAxis(1.0, 1.0 + (b - 1) / 4, b), "dt": dt}, mode=mode)


def model(state):
    c, b = state["coupling"], state["b"]
    return {"y": jnp.sin(c * b * jnp.arange(1.0, 4.0)) * state["dt"], "m": c * b + 1.0}


def run(path, sp, executor=ls.ParallelExecution, fn=model, **options):
    options = {"progress": False, **LABELS, **options}
    return executor(fn, sp, store=path, **options).run()


def fresh(sp, chunk_size, fn=model):
    return ls.ParallelExecution(fn, sp, progress=False, chunk_size=chunk_size, **LABELS).run()


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``path`` with its bytes and modification time."""
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def step_of(path: Path) -> list[int]:
    return json.loads(zarr.open_group(str(path), mode="r").attrs["labeled_spaces:store"])["step"]


def test_a_grown_store_keeps_its_blocks_computes_the_new_ones_and_equals_a_fresh_run(
        tmp_path, caplog):
    path = tmp_path / "sweep.zarr"
    run(path, space(11), chunk_size=22)  # blocks of (2, 11): b is the slowest dimension
    assert step_of(path) == [2, 11]
    before = snapshot(path)
    stored_chunks = {k: v for k, v in before.items() if k.startswith(("m/c/", "y/c/"))}
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        grown = run(path, space(21))
    assert "growing coupling: 11 -> 21" in caplog.text
    assert "resuming: 3 of 6 blocks already stored" in caplog.text
    after = snapshot(path)
    assert all(after[k] == v for k, v in stored_chunks.items())  # not rewritten, not recomputed
    want = fresh(space(21), chunk_size=22)
    assert grown.complete
    xr.testing.assert_identical(grown.to_xarray().compute(), want.to_xarray())
    # on disk: coordinates, attrs and identity of the grown space, as a fresh store has them
    reopened = ls.open_results(path)
    xr.testing.assert_identical(reopened.to_xarray().compute(), want.to_xarray())
    assert reopened.space.sizes == {"b": 5, "coupling": 21}
    with xr.open_zarr(path) as plain:
        np.testing.assert_array_equal(plain["coupling"].values, want.to_xarray()["coupling"])
        assert plain.attrs["labeled_spaces:identity"] == \
            want.to_xarray().attrs["labeled_spaces:identity"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        run(path, space(21))  # the grown store is the grown run's: resumed, complete
    assert "resuming: 6 of 6 blocks" in caplog.text and "growing" not in caplog.text


@pytest.mark.parametrize("executor", [ls.ParallelExecution, ls.SequentialExecution])
def test_a_stored_block_the_new_labels_fill_up_is_computed_again(executor, tmp_path, caplog):
    path = tmp_path / "sweep.zarr"
    # blocks of (1, 4): 11 labels of coupling leave a partial block of 3 at position 2
    run(path, space(11), chunk_size=4)
    assert step_of(path) == [1, 4]
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        grown = run(path, space(21), executor)
    assert "growing coupling: 11 -> 21" in caplog.text
    assert "at position 2 along coupling are computed again" in caplog.text
    assert "resuming: 10 of 30 blocks already stored" in caplog.text
    xr.testing.assert_identical(grown.to_xarray().compute(),
                                fresh(space(21), chunk_size=4).to_xarray())


def test_grown_blocks_that_are_not_runs_of_the_flat_index_and_a_grown_slowest_dim(tmp_path):
    # blocks of (2, 11) over a grown coupling (the fastest dimension) are no longer contiguous
    # runs of the flat index, which SequentialExecution must follow; over a grown b they are
    path = tmp_path / "sweep.zarr"
    run(path, space(11), chunk_size=22)
    grown = run(path, space(21), ls.SequentialExecution)
    xr.testing.assert_identical(grown.to_xarray().compute(),
                                fresh(space(21), chunk_size=22).to_xarray())
    other = tmp_path / "b.zarr"
    run(other, space(11, b=5), chunk_size=22)
    grown = run(other, space(11, b=8))
    xr.testing.assert_identical(grown.to_xarray().compute(),
                                fresh(space(11, b=8), chunk_size=22).to_xarray())


def labelled(n, mode="product"):
    """Text labels that grow wider (``region 9`` -> ``region 10``), in zip or product mode."""
    state = {"k": ls.DataAxis(np.arange(n) * 0.1, labels=NAMES[:n]),
             "b": ls.DataAxis(1.0 + np.arange(n) / 7) if mode == "zip" else ls.GridAxis(1, 2, 3),
             "dt": 0.5}
    return ls.Space(state, mode=mode)


def labelled_model(state):
    return {"y": jnp.cos(state["k"] * state["b"] * jnp.arange(1.0, 4.0)), "m": state["k"]}


@pytest.mark.parametrize("mode", ["product", "zip"])
def test_a_store_grows_again_and_again_with_text_labels(mode, tmp_path):
    path = tmp_path / "sweep.zarr"
    run(path, labelled(7, mode), fn=labelled_model, chunk_size=3)
    for n in (9, 13, 25):
        grown = run(path, labelled(n, mode), fn=labelled_model)
        want = fresh(labelled(n, mode), chunk_size=3, fn=labelled_model).to_xarray()
        xr.testing.assert_identical(grown.to_xarray().compute(), want)
        xr.testing.assert_identical(ls.open_results(path).to_xarray().compute(), want)
    with xr.open_zarr(path) as plain:
        assert list(plain["k"].values) == NAMES[:25]


def test_a_data_axis_grows_by_appended_values(tmp_path):
    path = tmp_path / "sweep.zarr"
    values = np.random.default_rng(0).normal(size=(12, 2, 3)).astype(np.float32)

    def data_space(n):
        return ls.Space({"w": ls.DataAxis(values[:n]), "g": ls.GridAxis(0.5, 1.0, 2)},
                        mode="product")

    fn = lambda s: {"m": s["w"].sum() * s["g"]}  # noqa: E731
    ls.ParallelExecution(fn, data_space(5), progress=False, store=path, chunk_size=2).run()
    grown = ls.ParallelExecution(fn, data_space(12), progress=False, store=path).run()
    want = ls.ParallelExecution(fn, data_space(12), progress=False, chunk_size=2).run()
    xr.testing.assert_identical(grown.to_xarray().compute(), want.to_xarray())
    rebuilt = ls.open_results(path).space
    np.testing.assert_array_equal(rebuilt.layout.tables[1], values)


@pytest.mark.filterwarnings("ignore:in zip mode", "ignore:axes in group")  # unequal sizes
@pytest.mark.parametrize("sizes", [((5, 8), (7, 8)), ((5, 8), (9, 9)), ((5, 8), (8, 8))],
                         ids=["the short one grows", "both grow", "up to the long one"])
@pytest.mark.parametrize("kind", ["zip", "group", "key"])
def test_zipped_axes_of_unequal_sizes_grow_by_the_prefix_rule(tmp_path, sizes, kind):
    # the dimension is as long as the shortest axis; the longer ones' stored tables are
    # longer than it, and the new tables must start with them, not only with their first 5
    a = np.arange(10, dtype=np.float32)

    def sweep(na, nb):
        if kind == "zip":
            return ls.Space({"a": ls.DataAxis(a[:na]), "b": ls.DataAxis(10 * a[:nb])})
        if kind == "group":
            return ls.Space({"a": ls.DataAxis(a[:na], group="g"),
                             "b": ls.DataAxis(10 * a[:nb], group="g"),
                             "c": ls.DataAxis(np.float32([0.0, 100.0]))}, mode="product")
        return ls.Space({"a": ls.DataAxis(a[:na]), "b": ls.KeyAxis(nb)})

    def fn(s):
        extra = jax.random.uniform(s["b"]) if kind == "key" else s["b"] + s.get("c", 0.0)
        return {"m": s["a"] + extra}

    (na, nb), (ma, mb) = sizes
    path = tmp_path / "sweep.zarr"
    ls.ParallelExecution(fn, sweep(na, nb), progress=False, store=path, chunk_size=2).run()
    # the longer axis cut shorter than it was (8 -> 6, the dimension 5 -> 6): the store's
    # record holds all its values, so the refusal says so, not that a grid rounds otherwise
    stored = snapshot(path)
    with pytest.raises(ValueError, match=rf"b held {nb} values, now {nb - 2}") as info:
        ls.ParallelExecution(fn, sweep(nb - 1, nb - 2), progress=False, store=path).run()
    assert "GridAxis" not in str(info.value) and snapshot(path) == stored
    grown = ls.ParallelExecution(fn, sweep(ma, mb), progress=False, store=path).run()
    want = ls.ParallelExecution(fn, sweep(ma, mb), progress=False, chunk_size=2).run()
    xr.testing.assert_identical(grown.to_xarray().compute(), want.to_xarray())
    # a longer axis whose stored points changed is another run: refused, store untouched
    before = snapshot(path)
    if kind != "key":
        longer = sweep(ma + 1, mb + 1)
        changed = ls.Space({**longer.state, "b": ls.DataAxis(10 * a[:mb + 1] + 1,
                                                             group=longer.state["b"].group)},
                           mode=longer.mode)
        with pytest.raises(ValueError, match=r"axes\.b\.values"):
            ls.ParallelExecution(fn, changed, progress=False, store=path).run()
        assert snapshot(path) == before


@pytest.mark.parametrize("change, match", [
    # 21 points from 0 to 1: the stored 11 are not their first ones
    (lambda: ls.Space({"coupling": ls.GridAxis(0.0, 1.0, 21), "b": ls.GridAxis(1.0, 2.0, 5),
                       "dt": 0.5}, mode="product"), r"grow along coupling: 11 -> 21 only if"),
    (lambda: space(21, b=6), r"another space.*grows along one dimension at a time, and this run "
                             r"changes 2: b: 5 -> 6, coupling: 11 -> 21; grow them one run"),
    (lambda: space(21, dt=0.25), r"dt: 0\.5 -> 0\.25"),  # and a fixed leaf changed
    (lambda: space(7), r"never shrinks"),
])
def test_any_other_change_is_refused_and_leaves_the_store_untouched(tmp_path, change, match):
    path = tmp_path / "sweep.zarr"
    run(path, space(11), chunk_size=4)
    before = snapshot(path)
    with pytest.raises(ValueError, match=match) as info:
        run(path, change())
    assert "overwrite=True" in str(info.value) and "new path" in str(info.value)
    assert snapshot(path) == before  # bytes and modification times


@pytest.mark.parametrize("refined", [
    lambda: ls.GridAxis(0.0, 1.0, 21),  # points between the stored ones
    lambda: ls.GridAxis(0.05, 2.05, 21),  # the same step, from another low
    lambda: ls.DataAxis(np.insert(np.asarray(space(11).state["coupling"].generate_values()), 3,
                                  np.float32(0.25))),  # one point inserted
])
def test_labels_that_are_no_prefix_are_refused_with_the_advice_to_append_to_a_data_axis(
        tmp_path, refined):
    path = tmp_path / "sweep.zarr"
    run(path, space(11, b=2))
    before = snapshot(path)
    grown = ls.Space({**space(11, b=2).state, "coupling": refined()}, mode="product")
    with pytest.raises(ValueError, match=r"grow along coupling: 11 -> \d+ only if") as info:
        run(path, grown)
    assert ("a GridAxis grows when its new points repeat the old ones (the same low and step), "
            "and to add points anywhere else, sweep a DataAxis from the first run of a sweep "
            "you mean to grow and append to its values" in str(info.value))
    assert snapshot(path) == before
    # another change beside the labels along coupling: that change is named, with no advice
    with pytest.raises(ValueError, match=r"dt: 0\.5 -> 0\.25") as info:
        run(path, ls.Space({**space(11, b=2, dt=0.25).state, "coupling": refined()},
                           mode="product"))
    assert "append to its values" not in str(info.value)
    assert snapshot(path) == before


@pytest.mark.parametrize("change, named", [
    ({"scale": 2.0}, r"was made with other model arguments: scale: 1\.0 -> 2\.0\. "),
    ({"fn": lambda state, scale=1.0: {k: v.astype(jnp.float16) for k, v in model(state).items()}},
     r"holds other outputs than this run makes .*: outputs\['m'\]\.dtype: float32 -> float16"),
])
def test_a_growth_refused_for_another_change_names_that_change_alone(tmp_path, change, named):
    """The space grows by the prefix rule; what refuses the run is named, not the grown axes."""
    def scaled(state, scale=1.0):
        return {k: v * scale for k, v in model(state).items()}

    path = tmp_path / "sweep.zarr"
    run(path, space(11), fn=scaled, chunk_size=4, scale=1.0)
    before = snapshot(path)
    options = {"fn": scaled, "scale": 1.0, **change}
    with pytest.raises(ValueError, match=named) as info:
        run(path, space(21), chunk_size=4, **options)
    message = str(info.value)
    assert "another space" not in message and "coupling.fields.n" not in message
    assert "the 11 stored labels along coupling are the first of the new ones" in message
    assert "overwrite=True" in message and "new path" in message
    assert snapshot(path) == before


@pytest.mark.parametrize("grown", [
    lambda labels: ls.GridAxis(0.1, 1.3, 7),  # the same step: its float32 points round otherwise
    lambda labels: ls.DataAxis(np.concatenate([labels, [1.1, 1.3]])),  # the labels, as data
])
def test_a_grid_whose_labels_grow_but_whose_values_round_otherwise_says_so(tmp_path, grown):
    path = tmp_path / "sweep.zarr"

    def grid(coupling):
        return ls.Space({"coupling": coupling, "b": ls.GridAxis(1.0, 2.0, 3), "dt": 0.5},
                        mode="product")

    stored = run(path, grid(ls.GridAxis(0.1, 0.9, 5))).to_xarray()["coupling"].values
    before = snapshot(path)
    with pytest.raises(ValueError, match=r"axes\.coupling\.values") as info:
        run(path, grid(grown(stored)))
    message = str(info.value)
    assert "the 5 stored labels along coupling are the first of the new ones" in message
    assert "differ in their last bits" in message and "sweep a DataAxis" in message
    assert snapshot(path) == before


@pytest.mark.filterwarnings("ignore:Consolidated metadata")  # zarr's, about xarray's copy
def test_a_growth_the_store_cannot_hold_is_refused_before_anything_is_written(tmp_path):
    # a variable added to the store with xarray would keep the old length: refused
    path = tmp_path / "sweep.zarr"
    run(path, space(11), chunk_size=4)
    group = zarr.open_group(str(path), mode="r+")
    group.create_array("note", shape=(5, 11), dtype="f4", dimension_names=("b", "coupling"))
    zarr.consolidate_metadata(str(path))
    assert "labeled_spaces:identity" in zarr.open_group(str(path), mode="r").attrs
    before = snapshot(path)
    with pytest.raises(ValueError, match=r"holds variables this run does not make \(note\)"):
        run(path, space(21))
    assert snapshot(path) == before
    # dates along the grown dimension are written only whole by xarray: refused too
    dated = tmp_path / "dated.zarr"
    days = np.arange("2024-01-01", "2024-01-21", dtype="datetime64[D]").astype("datetime64[ns]")

    def days_space(n):
        return ls.Space({"d": ls.DataAxis(np.arange(n, dtype=np.float32), labels=days[:n])},
                        mode="product")

    fn = lambda s: {"m": s["d"] * 2}  # noqa: E731
    ls.ParallelExecution(fn, days_space(10), progress=False, store=dated).run()
    before = snapshot(dated)
    with pytest.raises(ValueError, match=r"coordinate d .* written only whole"):
        ls.ParallelExecution(fn, days_space(20), progress=False, store=dated).run()
    assert snapshot(dated) == before


class Crash(OSError):
    """A write that fails, as a full disk or a killed process would leave the store."""


# the growth writes 9 files: a chunk of the coupling coordinate, 7 arrays' and groups'
# metadata, then the root's
@pytest.mark.parametrize("fail_at", [0, 1, 4, 8])
def test_a_growth_stopped_at_any_write_leaves_a_store_that_resumes(tmp_path, monkeypatch,
                                                                     fail_at):
    path = tmp_path / "sweep.zarr"
    old = run(path, space(11), chunk_size=4).to_xarray().compute()  # a partial block to refill
    writes = []
    original = store_growth.replace_file

    def failing(target, data):
        if len(writes) == fail_at:
            raise Crash(28, "No space left on device", target)
        writes.append(target)
        original(target, data)

    monkeypatch.setattr(store_growth, "replace_file", failing)
    with pytest.raises(OSError, match="cannot grow the store"):
        run(path, space(21))
    monkeypatch.undo()
    committed = any(w.endswith(f"{path.name}/zarr.json") for w in writes)
    assert not committed  # the root is written last, so it never was here
    # the store is the old one, readable; the refilled block is no longer marked done
    again = ls.open_results(path)
    assert again.space.sizes == {"b": 5, "coupling": 11}
    done = again.done
    assert done is not None and done.sum() == 5 * 8  # 2 of 3 blocks along coupling
    np.testing.assert_array_equal(again.to_xarray()["m"].values[:, :8], old["m"].values[:, :8])
    # and the grown run grows it, as if nothing had happened
    grown = run(path, space(21))
    xr.testing.assert_identical(grown.to_xarray().compute(),
                                fresh(space(21), chunk_size=4).to_xarray())


def test_dask_workers_write_the_new_blocks_of_a_grown_store(tmp_path):
    from distributed import Client, LocalCluster

    path = tmp_path / "sweep.zarr"
    run(path, space(11), chunk_size=4)
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        grown = run(path, space(21), ls.DaskExecution, client=client)
    xr.testing.assert_identical(grown.to_xarray().compute(),
                                fresh(space(21), chunk_size=4).to_xarray())


def test_explain_previews_a_growth_without_making_it(tmp_path):
    path = tmp_path / "sweep.zarr"
    run(path, space(11), chunk_size=4)
    before = snapshot(path)
    preview = ls.ParallelExecution(model, space(21), progress=False, store=path,
                                   **LABELS).explain()
    assert preview.store_state == "growing coupling: 11 -> 21"
    assert (preview.blocks, preview.blocks_done) == (30, 10)  # the partial blocks are redone
    assert preview.size_on_disk == sum(len(b) for b, _ in before.values())
    assert snapshot(path) == before


def keyed(n=11, trials=3, mode="product"):
    """Coupling in steps of 0.1 with replicate keys and a key per combination."""
    state = {"coupling": ls.GridAxis(0.0, (n - 1) / 10, n), "jitter": ls.PointKey()}
    if mode == "product":
        state["trial"] = ls.KeyAxis(trials)
    return ls.Space(state, mode=mode, key=jax.random.key(3))


def keyed_model(state):
    jitter = jax.random.normal(state["jitter"], (3,))
    trial = jax.random.normal(state["trial"], (3,)) if "trial" in state else 0.0
    return {"y": state["coupling"] * trial + jitter, "m": jitter.sum()}


@pytest.mark.parametrize("small, big, chunk_size", [
    (keyed(11), keyed(21), 4),                            # coupling grows, keys beside it
    (keyed(11, trials=3), keyed(11, trials=7), 5),        # the KeyAxis's own dimension grows
    (keyed(11, mode="zip"), keyed(21, mode="zip"), 4),    # one dimension: fold_in(key, i)
], ids=["grow-coupling", "grow-key-axis", "zip"])
def test_a_store_of_keyed_combinations_grows_to_the_fresh_runs_keys(tmp_path, caplog, small,
                                                                    big, chunk_size):
    # a grown prefix keeps every combination's position, so its keys and results
    path = tmp_path / "sweep.zarr"
    run(path, small, fn=keyed_model, chunk_size=chunk_size)
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        grown = run(path, big, fn=keyed_model)
    assert "growing" in caplog.text
    want = fresh(big, chunk_size=chunk_size, fn=keyed_model).to_xarray()
    xr.testing.assert_identical(grown.to_xarray().compute(), want)
    xr.testing.assert_identical(ls.open_results(path).to_xarray().compute(), want)
    # and the keys are those of a fresh run with other blocks: no artefact of the chunking
    other = ls.ParallelExecution(keyed_model, big, progress=False, chunk_size=3, n_vmap=2,
                                 **LABELS).run().to_xarray()
    np.testing.assert_array_equal(other["y"].values, want["y"].values)


@pytest.mark.parametrize("small, big", [
    (lambda s: s[2:5], lambda s: s[2:9]),                                    # a flat slice
    (lambda s: s.isel(coupling=[1, 2]), lambda s: s.isel(coupling=[1, 2, 6])),
    (lambda s: s.isel(trial=0, coupling=[0, 4]), lambda s: s.isel(trial=0, coupling=[0, 4, 5])),
], ids=["slice", "isel", "isel-with-a-scalar"])
def test_a_store_of_a_sub_space_grows_along_its_selected_positions(tmp_path, caplog, small,
                                                                   big):
    # a sub-space records its combinations' original positions (its selection, each
    # PointKey's); grown, they gain entries after the stored ones, which the prefix rule
    # refused as "fixed.jitter.fields.positions: [2, 3, 4] -> [2, ..., 8]"
    full = keyed(11, trials=3)
    path = tmp_path / "sweep.zarr"
    run(path, small(full), fn=keyed_model, chunk_size=2)
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        grown = run(path, big(full), fn=keyed_model)
    assert "growing" in caplog.text
    want = fresh(big(full), chunk_size=2, fn=keyed_model).to_xarray()
    xr.testing.assert_identical(grown.to_xarray().compute(), want)
    # positions that are not the stored ones followed by new ones are still refused
    before = snapshot(path)
    with pytest.raises(ValueError, match="was made for another space"):
        run(path, small(full.isel(trial=[2, 1, 0])), fn=keyed_model)
    assert snapshot(path) == before


def test_a_store_without_its_done_mask_is_refused_before_it_grows(tmp_path):
    # the growth was written first, and only then was the missing mask refused
    import shutil

    path = tmp_path / "s.zarr"
    run(path, space(11), chunk_size=20)
    shutil.rmtree(path / "labeled_spaces" / "done")
    before = snapshot(path)
    with pytest.raises(ValueError, match=r"has no done mask"):
        run(path, space(21), chunk_size=20)
    assert snapshot(path) == before


@pytest.mark.filterwarnings("ignore:The balance properties:UserWarning")
@pytest.mark.parametrize("mode", ["sobol", "halton"])
def test_a_sequence_design_grows_by_its_next_points(mode, tmp_path, caplog):
    """Sobol and Halton points of n are the first of 2n, bit for bit: a design store grows."""
    def design(n):
        return ls.Space({"coupling": ls.UniformAxis(0.0, 2.0, n),
                         "b": ls.LogGridAxis(1.0, 4.0, n)}, mode=mode, key=jax.random.key(3))

    def scalar(state):
        return {"m": state["coupling"] * state["b"]}

    path = tmp_path / "design.zarr"
    ls.ParallelExecution(scalar, design(40), store=path, progress=False, chunk_size=20).run()
    stored_chunks = {k: v for k, v in snapshot(path).items() if k.startswith("m/c/")}
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        grown = ls.ParallelExecution(scalar, design(300), store=path, progress=False,
                                     chunk_size=20).run()
    assert "growing sample: 40 -> 300" in caplog.text
    after = snapshot(path)
    assert all(after[k] == v for k, v in stored_chunks.items())
    want = ls.ParallelExecution(scalar, design(300), progress=False, chunk_size=20).run()
    xr.testing.assert_identical(grown.to_xarray().compute(), want.to_xarray())


@pytest.mark.parametrize("mode", ["sobol", "halton"])
def test_a_design_with_a_data_axis_does_not_grow_and_says_why(tmp_path, mode):
    # its size is the design's n and each point takes the value at floor(u * size): more
    # values move every stored point; the refusal named only the values that differ
    def design(n):
        return ls.Space({"u": ls.UniformAxis(0.0, 1.0, n), "d": ls.DataAxis(jnp.arange(n * 1.0))},
                        mode=mode)

    path = tmp_path / "d.zarr"
    ls.ParallelExecution(lambda s: s["u"] + s["d"], design(8), store=path, progress=False).run()
    before = snapshot(path)
    with pytest.raises(ValueError, match=rf"a {mode} design with a DataAxis \(d\) does not "
                                         r"grow: .* a larger design needs a new store"):
        ls.ParallelExecution(lambda s: s["u"] + s["d"], design(16), store=path,
                             progress=False).run()
    assert snapshot(path) == before


def test_a_latin_hypercube_does_not_grow_and_its_store_is_left_untouched(tmp_path):
    def design(n):
        return ls.Space({"coupling": ls.UniformAxis(0.0, 2.0, n)}, mode="lhs",
                        key=jax.random.key(3))

    path = tmp_path / "lhs.zarr"
    ls.SequentialExecution(lambda s: s["coupling"], design(8), store=path, progress=False).run()
    before = snapshot(path)
    with pytest.raises(ValueError, match="made for another space") as info:
        ls.SequentialExecution(lambda s: s["coupling"], design(16), store=path,
                               progress=False).run()
    assert snapshot(path) == before
    # the refusal says why, and what grows: not only which values differ
    assert ("a Latin hypercube, mode='lhs', draws a new design for each n: its 8 stored points "
            "are not the first of 16") in str(info.value)
    assert "mode='sobol' or 'halton', grows by its next points" in str(info.value)
    # the values named are the 8 stored points against the new design's first 8
    assert "coupling.fields.n" not in str(info.value) and "float32[16]" not in str(info.value)


def test_a_zeros_sign_is_a_difference_the_store_neither_grows_nor_resumes_over(tmp_path):
    """Labels and inputs compare bit for bit: -0.0 is not 0.0, in small arrays as in large."""
    fn = lambda s: {"m": s["c"] * s["w"]}  # noqa: E731

    def sweep(values, w=0.0):
        return ls.Space({"c": ls.DataAxis(np.asarray(values, np.float32)), "w": w},
                        mode="product")

    path = tmp_path / "sweep.zarr"
    ls.ParallelExecution(fn, sweep([0.0, 1.0]), progress=False, store=path).run()
    before = snapshot(path)
    for other, named in [(sweep([-0.0, 1.0, 2.0]), r"axes\.c\.values"),  # it would grow
                         (sweep([-0.0, 1.0]), r"axes\.c\.values"),  # it would resume
                         (sweep([0.0, 1.0], w=-0.0), r"fixed\.w: 0\.0 -> -0\.0")]:
        with pytest.raises(ValueError, match=named):
            ls.ParallelExecution(fn, other, progress=False, store=path).run()
        assert snapshot(path) == before
    # the same zeros grow, to a fresh run's bits
    grown = ls.ParallelExecution(fn, sweep([0.0, 1.0, -0.0]), progress=False, store=path).run()
    fresh = ls.ParallelExecution(fn, sweep([0.0, 1.0, -0.0]), progress=False).run()
    assert np.asarray(grown["m"]).tobytes() == np.asarray(fresh["m"]).tobytes()

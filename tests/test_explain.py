"""executor.explain(): the cost of a run before it runs, and n_vmap="auto" under max_memory."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import zarr

import labeled_spaces as ls

STEPS = 50
POINTS = 400


def simulate(state, n_steps=STEPS):
    """A trajectory kept whole, then averaged: temporaries of n_steps * POINTS per lane."""
    x = jnp.linspace(0.0, 1.0, POINTS) * state["k"]

    def step(c, _):
        nxt = jnp.sin(c) * state["g"] + 0.01 * c
        return nxt, nxt

    _, trajectory = jax.lax.scan(step, x, None, length=n_steps)
    return {"mean": trajectory.mean(), "last": trajectory[-1, :3]}


def space(n=16, g=4):
    return ls.Space({"k": ls.GridAxis(0.0, 1.0, n), "g": ls.GridAxis(0.5, 1.0, g)},
                    mode="product")


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_explain_describes_blocks_memory_and_results_before_anything_runs(tmp_path):
    path = tmp_path / "sweep.zarr"
    executor = ls.ParallelExecution(simulate, space(), progress=False, store=path,
                                    chunk_size=16)
    found = executor.explain()
    assert not path.exists()  # nothing written, nothing run
    assert isinstance(found, ls.Explanation) and found.executor == "ParallelExecution"
    assert (found.combinations, found.dims) == (64, {"g": 4, "k": 16})
    assert (found.blocks, found.block_shape, found.lanes) == (4, (1, 16), 16)
    assert (found.n_vmap, found.n_pmap) == (None, 1)
    lane = 4 + 3 * 4  # "mean" and "last", float32
    assert (found.bytes_per_block, found.total_bytes) == (16 * lane, 64 * lane)
    # XLA's analysis of the compiled block: its outputs are the block's lanes, its
    # temporaries hold the trajectories, and the peak is their sum with the arguments
    assert found.output_bytes >= 16 * lane
    assert found.temp_bytes >= 16 * STEPS * POINTS * 4
    assert found.argument_bytes >= (16 + 4) * 4  # the axes' tables
    total = found.argument_bytes + found.output_bytes + found.temp_bytes
    assert found.temp_bytes < found.peak_bytes <= total
    assert (found.store, found.store_state, found.blocks_done) == (str(path), "new", 0)
    assert found.seconds is None and found.seconds_per_block is None
    text = repr(found)
    for line in ("ParallelExecution, 64 combinations", "Dimensions:    (g: 4, k: 16)",
                 "Blocks:        4 of (1, 16) (16 lanes per call, n_vmap=whole block",
                 "Block memory:", "Results:", "Store:", "(new), 0 of 4 blocks done",
                 "Time:          not measured"):
        assert line in text


def test_the_peak_counts_every_buffer_and_grows_with_the_block():
    small = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=16).explain()
    big = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=64).explain()
    assert big.lanes == 4 * small.lanes
    assert big.peak_bytes == big.argument_bytes + big.output_bytes + big.temp_bytes
    assert 3 * small.temp_bytes < big.temp_bytes < 5 * small.temp_bytes


def test_explain_with_time_runs_one_block_and_extrapolates():
    found = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=16
                                 ).explain(time=True)
    assert found.seconds_per_block > 0
    assert found.seconds == pytest.approx(found.seconds_per_block * 4)
    assert "for 4 of 4 blocks" in repr(found)
    one = ls.SequentialExecution(simulate, space(4, 2), progress=False).explain(time=True)
    assert one.lanes == 1 and one.seconds > 0
    assert "one combination per call" in repr(one)


@pytest.mark.parametrize("store", [True, False], ids=["store", "memory"])
def test_the_timed_estimate_adds_what_writing_a_block_costs(tmp_path, monkeypatch, store):
    # a block's time is its computation plus its write: into the store's files, or into the
    # results' arrays; both are timed aside, so nothing is written where the run writes
    import labeled_spaces.results.sink as sink_module
    import labeled_spaces.results.store as store_module

    path = tmp_path / "sweep.zarr" if store else None
    seen = []

    def writes(name):
        def timed(*args):
            seen.append(name)
            return 7.0
        return timed

    import labeled_spaces.execution.explain as explain_module

    monkeypatch.setattr(store_module, "timed_write", writes("store"))
    monkeypatch.setattr(sink_module.MemorySink, "write_seconds",
                        lambda self, outputs, blocks: writes("memory")())
    monkeypatch.setattr(explain_module, "median_seconds", lambda run: 0.5)  # computing
    found = ls.ParallelExecution(simulate, space(), progress=False, store=path,
                                 chunk_size=16).explain(time=True)
    assert seen == ["store" if store else "memory"]
    assert found.seconds_per_block == 7.5 and found.seconds == 7.5 * 4
    assert path is None or not path.exists()


def test_a_timed_write_goes_to_a_scratch_store_that_it_removes(tmp_path, monkeypatch):
    import tempfile

    import labeled_spaces.results.store_writer as writer_module
    from labeled_spaces.grid import Blocks
    from labeled_spaces.results.sink import MemorySink, write_seconds
    from labeled_spaces.results.store_writer import timed_write

    written = []
    real = writer_module.StoreWriter.write

    def spy(self, block, leaves):
        written.append([leaf.shape for leaf in leaves])
        return real(self, block, leaves)

    monkeypatch.setattr(writer_module.StoreWriter, "write", spy)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    layout = [(np.dtype("float32"), (3,)), (np.dtype("bool"), ()), (np.dtype("int64"), (2, 2))]
    assert timed_write(["a", "b", "c"], (4, 5), layout) > 0
    assert written[0] == [(20, 3), (20,), (20, 2, 2)]  # the block's 20 combinations in a row
    assert timed_write(["a"], (), layout[:1]) > 0  # a single point: a block of no dimension
    assert written[-1] == [(1, 3)]
    assert list(tmp_path.iterdir()) == []
    # a block of more than TIMED_WRITE_BYTES is timed in part: a 1 GB block writes no 1 GB
    monkeypatch.setattr(writer_module, "TIMED_WRITE_BYTES", 4096)
    assert timed_write(["a"], (1000, 1000), [(np.dtype("float32"), (256,))]) > 0
    assert written[-1] == [(4, 256)]
    # nowhere to write the scratch store: no estimate of the writes, said so
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.warns(UserWarning, match=r"could not time writing a block .*leaves writing"):
        assert timed_write(["a"], (4,), layout[:1]) == 0.0
    # results in memory: one block becomes the results (nothing copied), more are copied
    sp = space()
    outputs = ls.results.Outputs.build(sp, jax.tree.structure(0.0), [(3,)], [np.float32])
    assert write_seconds(MemorySink(sp), outputs, Blocks(sp.shape, sp.shape)) == 0.0
    assert write_seconds(MemorySink(sp), outputs, Blocks(sp.shape, (4, 4))) > 0


def test_explain_reads_the_store_it_would_resume_and_refuses_another_run(tmp_path):
    path = tmp_path / "sweep.zarr"
    ls.ParallelExecution(simulate, space(), progress=False, store=path, chunk_size=16).run()
    group = zarr.open_group(str(path), mode="r+")
    group["labeled_spaces/done"][0, 0] = False  # one block to compute again
    before = snapshot(path)
    found = ls.ParallelExecution(simulate, space(), progress=False, store=path).explain(
        time=True)
    assert (found.store_state, found.blocks, found.blocks_done) == ("resumed", 4, 3)
    assert found.size_on_disk == sum(len(b) for b, _ in before.values())
    assert found.seconds == pytest.approx(found.seconds_per_block)  # one block to run
    with pytest.raises(ValueError, match=r"n_steps: \(none\) -> 60"):
        ls.ParallelExecution(simulate, space(), progress=False, store=path,
                             n_steps=60).explain()
    assert snapshot(path) == before
    replaced = ls.ParallelExecution(simulate, space(), progress=False, store=path,
                                    overwrite=True).explain()
    assert replaced.store_state == "replaced" and snapshot(path) == before


def test_explain_of_a_complete_store_says_there_is_nothing_to_run(tmp_path):
    path = tmp_path / "sweep.zarr"
    ls.ParallelExecution(simulate, space(), progress=False, store=path, chunk_size=16).run()
    found = ls.ParallelExecution(simulate, space(), progress=False, store=path).explain(
        time=True)
    assert (found.store_state, found.blocks_to_run, found.seconds) == ("complete", 0, 0.0)
    assert found.seconds_per_block > 0
    # not '~0.0 µs for 0 of 4 blocks'
    assert "Time:          nothing to run, every block is done (" in repr(found)


def test_explain_without_jit_reports_no_memory_and_times_the_plain_model():
    def plain(state):
        return float(np.sin(np.asarray(state["k"])))  # not traceable: numpy on the values

    found = ls.SequentialExecution(plain, space(4, 2), jit=False, progress=False
                                   ).explain(time=True)
    assert found.peak_bytes is None and found.temp_bytes is None
    assert found.seconds > 0
    assert "not reported" in repr(found)


def test_explain_of_dask_compiles_the_block_its_workers_compile():
    from distributed import Client, LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        found = ls.DaskExecution(simulate, space(), client=client, chunk_size=16,
                                 progress=False).explain(time=True)
    assert (found.blocks, found.lanes) == (4, 16)
    assert found.temp_bytes >= 16 * STEPS * POINTS * 4
    # two worker threads run the four blocks two at a time
    assert found.seconds == pytest.approx(found.seconds_per_block * 2)


def test_n_vmap_auto_takes_the_largest_batch_that_fits_max_memory():
    whole = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=64).explain()
    assert whole.lanes == 64
    limit = whole.peak_bytes // 3  # the whole block does not fit, a batch of 16 does
    auto = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=64,
                                n_vmap="auto", max_memory=limit)
    found = auto.explain()
    assert found.lanes == 64 and found.n_vmap is not None
    assert found.peak_bytes <= limit
    assert 2 * found.n_vmap >= 64 or ls.ParallelExecution(
        simulate, space(), progress=False, chunk_size=64, n_vmap=2 * found.n_vmap
    ).explain().peak_bytes > limit  # the next batch up would not fit
    got = auto.run()
    want = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=64).run()
    np.testing.assert_allclose(got["mean"].values, want["mean"].values, rtol=1e-6)
    # plenty of memory: the whole block at once
    roomy = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=64,
                                 n_vmap="auto", max_memory=10 * whole.peak_bytes).explain()
    assert roomy.n_vmap is None and roomy.peak_bytes == whole.peak_bytes


def test_n_vmap_auto_warns_when_not_even_one_combination_fits():
    with pytest.warns(UserWarning, match="even one combination"):
        found = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=64,
                                     n_vmap="auto", max_memory=1000).explain()
    assert found.n_vmap == 1


@pytest.mark.parametrize("options, error, match", [
    ({"n_vmap": "fast"}, TypeError, r"n_vmap must be a positive integer, None or 'auto', "
                                    r"got 'fast'"),
    ({"n_vmap": 0}, ValueError, r"n_vmap must be a positive integer, got 0"),
    ({"max_memory": 0}, ValueError, r"max_memory must be a positive integer, got 0"),
    ({"max_memory": "1GB"}, TypeError, r"max_memory must be a positive integer or None, a "
                                        r"number of bytes \(2e9, 2 \* 1024\*\*3\), got '1GB'"),
    ({"max_memory": np.float32(2.5)}, TypeError, r"max_memory must be a positive integer or "
                                                 r"None, got np\.float32\(2\.5\)"),
])
def test_bad_batch_and_memory_options_are_refused_naming_them(options, error, match):
    with pytest.raises(error, match=match):
        ls.ParallelExecution(simulate, space(), **options)


@pytest.mark.parametrize("budget", [2e9, np.float64(2e9), np.float32(2**31), np.int64(2e9)])
def test_max_memory_takes_a_whole_number_of_bytes_of_any_numeric_type(budget):
    # 2e9 is a count of bytes whether it is a Python, a float64 or a float32 number
    executor = ls.ParallelExecution(simulate, space(), n_vmap="auto", max_memory=budget)
    assert executor.max_memory == int(budget) and type(executor.max_memory) is int


@pytest.mark.parametrize("executor", [ls.SequentialExecution, ls.ParallelExecution])
@pytest.mark.parametrize("time", ["no", 1, None])
def test_explain_refuses_a_time_that_is_not_a_bool_naming_it(executor, time):
    # a truthy string would otherwise run and time a block the user asked not to run
    with pytest.raises(TypeError, match=r"time must be True or False, got"):
        executor(simulate, space(), progress=False).explain(time=time)


def test_the_explained_memory_is_what_the_kernel_compiles():
    # the same block compiled by hand: the analysis explain() reports is XLA's own
    found = ls.ParallelExecution(simulate, space(), progress=False, chunk_size=16).explain()
    lanes = jax.vmap(lambda k, g: simulate({"k": k, "g": g}))
    compiled = jax.jit(lanes).lower(jnp.ones(16), jnp.ones(16)).compile()
    stats = compiled.memory_analysis()
    assert math.isclose(found.temp_bytes, stats.temp_size_in_bytes, rel_tol=0.25)


def test_on_cpu_a_block_whose_scratch_outgrows_the_cache_runs_in_batches_that_fit(monkeypatch):
    from labeled_spaces.execution import plan

    def model(state):  # a model of its own: plans are cached per model
        return simulate(state)

    whole = ls.ParallelExecution(model, space(), progress=False, chunk_size=64).explain()
    assert whole.lanes == 64 and whole.n_vmap is None  # its scratch fits this CPU's cache
    want = ls.ParallelExecution(model, space(), progress=False, chunk_size=64).run()

    def batched(state):
        return simulate(state)

    per_lane = whole.temp_bytes / 64
    monkeypatch.setattr(plan, "CACHE_BYTES", int(16.5 * per_lane))
    executor = ls.ParallelExecution(batched, space(), progress=False, chunk_size=64)
    found = executor.explain()
    assert found.lanes == 64 and found.n_vmap == 16  # the largest power of two that fits
    assert "n_vmap=16" in repr(found) and found.temp_bytes < whole.temp_bytes / 2
    got = executor.run()
    for name in ("mean", "last"):
        np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-6)
    # a batch the user chose is theirs
    chosen = ls.ParallelExecution(batched, space(), progress=False, chunk_size=64, n_vmap=64)
    assert chosen.explain().n_vmap == 64


@pytest.mark.parametrize("temporaries, lanes, want", [
    (10 * 2**20, 256, None),  # fits
    (64 * 2**20, 256, 128),
    (33 * 2**20, 256, 128),  # 248 lanes fit: the power of two below
    (2**40, 256, 8),  # never fewer than eight lanes
    (2**40, 15, None),  # too few lanes to split
    (2**40, 8, None),
])
def test_cache_batch_is_the_largest_power_of_two_whose_share_fits(temporaries, lanes, want):
    from labeled_spaces.execution.plan import cache_batch

    assert cache_batch(temporaries, lanes, cache=32 * 2**20) == want


def test_scratch_that_every_lane_shares_is_not_batched(monkeypatch):
    from labeled_spaces.execution import plan

    table = np.sin(np.arange(256 * 256, dtype=np.float32)).reshape(256, 256)

    def shared(state):  # its scratch is one lane-free table, whatever the batch
        return {"y": jnp.cumsum(jnp.cos(state["t"]), axis=0).sum() * state["k"]}

    monkeypatch.setattr(plan, "CACHE_BYTES", 2**14)
    swept = ls.Space({"k": ls.GridAxis(0.0, 1.0, 16), "g": ls.GridAxis(0.5, 1.0, 4),
                      "t": table}, mode="product")
    found = ls.ParallelExecution(shared, swept, progress=False, chunk_size=64).explain()
    assert found.temp_bytes > 2**16 and found.n_vmap is None


class _Accelerator:
    """A device as JAX describes one, with the memory statistics a GPU reports."""

    platform = "gpu"

    def __init__(self, stats):
        self.stats = stats

    def memory_stats(self):
        if isinstance(self.stats, Exception):
            raise self.stats
        return self.stats


@pytest.mark.parametrize("stats, available", [
    ({"bytes_limit": 2**30, "bytes_in_use": 2**28}, 3 * 2**28),  # the device's free memory
    ({"bytes_limit": 2**50, "bytes_in_use": 0}, 2**40),  # more than the host: the host's
    ({"bytes_in_use": 5}, 2**40),  # no limit reported: the host's
    (None, 2**40),
    (RuntimeError("not on this backend"), 2**40),
])
def test_on_an_accelerator_the_default_budget_is_a_share_of_its_free_memory(
        monkeypatch, stats, available):
    from labeled_spaces.execution import plan

    monkeypatch.setattr(plan, "available_memory", lambda: 2**40)  # a large host
    monkeypatch.setattr(jax, "devices", lambda *args: [_Accelerator(stats)])
    assert plan.budget(None) == int(available * plan.MEMORY_FRACTION)
    assert plan.budget(12345) == 12345  # a max_memory given is the budget


@pytest.mark.parametrize("executor", [ls.ParallelExecution, ls.SequentialExecution])
def test_a_model_that_fails_when_timed_raises_the_model_error_run_raises(executor, tmp_path):
    # explain(time=True) runs one block as run() does, so it blames the combination alike
    def failing(state):
        def check(k):
            if k >= 0.0:  # every combination: Sequential times combination 0
                raise RuntimeError("diverges for k >= 0")
            return np.float32(k)

        return jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), state["k"],
                                 vmap_method="sequential")

    swept = ls.Space({"k": ls.GridAxis(0.0, 1.0, 8)}, mode="product")
    store = tmp_path / "never.zarr"
    with pytest.raises(ls.ModelError, match="diverges for k >= 0") as timed:
        executor(failing, swept, progress=False, store=str(store)).explain(time=True)
    with pytest.raises(ls.ModelError) as ran:
        executor(failing, swept, progress=False).run()
    assert timed.value.index == ran.value.index == 0 and timed.value.params is not None
    assert not store.exists()  # explain writes nothing


def test_auto_n_vmap_under_a_budget_too_small_for_one_combination_says_what_takes_it():
    table = ls.DataAxis(np.zeros((64, 4096), np.float32), name="row")  # 1 MiB of axis values

    def model(state):
        return {"y": state["row"].sum() * state["k"]}

    swept = ls.Space({"row": table, "k": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    executor = ls.ParallelExecution(model, swept, progress=False, n_vmap="auto",
                                    max_memory=2**16, chunk_size=64)
    with pytest.warns(UserWarning, match=r"even one combination at a time needs .* "
                                         r"\(the block's arguments, the axes' values and "
                                         r"fixed arrays: 1\.0[0-9]* MB"):
        found = executor.explain()
    assert found.n_vmap == 1

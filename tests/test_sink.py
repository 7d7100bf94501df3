"""The Sink seam: sinks from store=, a minimal recording sink, workers' writers and their errors."""

from __future__ import annotations

import errno
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster

import labeled_spaces as ls
from labeled_spaces.results import MemorySink
from labeled_spaces.results.sink import make_sink, persistent, preferred_step, worker_writer


def space():
    """6 x 5 = 30 combinations: blocks of 4 tile it raggedly."""
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 6), "b": ls.GridAxis(-1.0, 2.0, 5)},
                    mode="product")


def model(state):
    return {"y": state["a"] + 10 * state["b"] * jnp.ones(3), "s": state["a"] * state["b"]}


class RecordingSink:
    """The five required methods only (no optional hooks), recording every write."""

    def __init__(self, space):
        self.memory = MemorySink(space, ls.ParallelResult)
        self.writes = []  # (block index, count)

    def open(self, outputs, blocks):
        self.writes.clear()
        self.blocks = blocks
        return self.memory.open(outputs, blocks)

    def write(self, block, leaves, count=None):
        self.writes.append((block.index, count))
        self.memory.write(block, leaves, count)

    def done(self):
        return self.memory.done()

    def close(self):
        return self.memory.close()

    def partial(self):
        return self.memory.partial()


@pytest.fixture(scope="module")
def client():
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


def executors(client):
    return [(ls.SequentialExecution, {}), (ls.ParallelExecution, {"chunk_size": 4}),
            (ls.DaskExecution, {"chunk_size": 4, "client": client})]


def test_a_minimal_sink_gets_every_block_once_from_every_executor(client):
    want = ls.ParallelExecution(model, space(), progress=False).run().to_xarray()
    sink = RecordingSink(space())
    assert not persistent(sink) and preferred_step(sink, None) is None
    assert worker_writer(sink) is None  # dask workers send their blocks back to the client
    for executor, options in executors(client):
        got = executor(model, space(), store=sink, progress=False, **options).run()
        indices = sorted(index for index, _ in sink.writes)
        assert indices == list(range(len(sink.blocks))), executor
        assert all(count is None for _, count in sink.writes)
        np.testing.assert_allclose(got.to_xarray()["y"], want["y"], rtol=1e-6)


def test_a_failure_part_way_through_a_block_writes_what_finished():
    def raising(state):
        if float(state["a"]) > 0.5:
            raise RuntimeError("too large")
        return state["a"]

    sink = RecordingSink(space())
    with pytest.raises(ls.ModelError) as info:
        ls.SequentialExecution(raising, space(), jit=False, store=sink, progress=False).run()
    assert info.value.index == 15  # a = 0.6, the first point over 0.5
    index, count = sink.writes[-1]  # the failing block: its first points only
    assert count == 15 - sink.blocks[index].start
    assert int(info.value.partial.done.sum()) == 15
    np.testing.assert_allclose(info.value.partial.to_xarray()["result"].values.ravel()[:15],
                               np.repeat([0.0, 0.2, 0.4], 5), atol=1e-6)


def test_store_option_makes_the_sink(tmp_path):
    sp = space()
    assert isinstance(make_sink(None, sp), MemorySink)
    stored = make_sink(tmp_path / "x.zarr", sp)
    assert persistent(stored) and type(stored).__name__ == "ZarrSink"
    recording = RecordingSink(sp)
    assert make_sink(recording, sp) is recording
    with pytest.raises(TypeError, match="store must be None or the path of a .zarr directory, "
                                        "or a Sink object, got 3"):
        ls.ParallelExecution(model, sp, store=3)


def test_overwrite_replaces_a_store_made_for_other_outputs(tmp_path):
    path = tmp_path / "sweep.zarr"
    ls.ParallelExecution(model, space(), progress=False, store=path).run()

    def other(state):
        return state["a"] - state["b"]

    with pytest.raises(ValueError, match="holds other outputs"):
        ls.ParallelExecution(other, space(), progress=False, store=path).run()
    replaced = ls.ParallelExecution(other, space(), progress=False, store=path,
                                    overwrite=True).run().to_xarray()
    assert list(replaced.data_vars) == ["result"] and replaced["result"].shape == (6, 5)
    plain = tmp_path / "plain.zarr"
    plain.mkdir()
    (plain / "data.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a zarr store"):
        ls.ParallelExecution(other, space(), progress=False, store=plain,
                             overwrite=True).run()
    assert (plain / "data.txt").read_text() == "mine"  # never removed
    with pytest.raises(TypeError, match="overwrite must be"):
        ls.ParallelExecution(other, space(), overwrite="yes")


class FullDisk:
    """A worker's writer whose disk is full."""

    path = "/mnt/full/sweep.zarr"

    def write(self, block, leaves):
        raise OSError(errno.ENOSPC, "No space left on device")


class FullDiskSink(RecordingSink):
    persistent = True

    def worker_writer(self):
        return FullDisk()


def test_a_worker_that_cannot_write_its_block_is_an_os_error_naming_the_path(client):
    with pytest.raises(OSError, match=r"could not write it into /mnt/full/sweep.zarr.*"
                                      r"No space left") as info:
        ls.DaskExecution(model, space(), client=client, chunk_size=4, progress=False,
                         store=FullDiskSink(space())).run()
    assert not isinstance(info.value, ls.ModelError)
    assert info.value.errno == errno.ENOSPC and info.value.filename == FullDisk.path


def test_a_worker_that_cannot_write_into_a_real_store_names_it(client, tmp_path):
    path = tmp_path / "sweep.zarr"
    ls.ParallelExecution(model, space(), chunk_size=4, progress=False, store=path).run()
    zarr.open_group(str(path), mode="r+")["labeled_spaces/done"][...] = False  # to redo
    chunks = path / "y" / "c"
    shutil.rmtree(chunks)
    chunks.write_text("not a folder")  # the workers cannot make their chunks' folders
    with pytest.raises(OSError, match=rf"could not write it into {path}") as info:
        ls.DaskExecution(model, space(), client=client, progress=False, store=path).run()
    assert not isinstance(info.value, ls.ModelError)
    assert info.value.partial is not None

"""DaskExecution on a LocalCluster: results, sockets, the per-worker compile cache, failures.

One two-worker cluster (module scope) serves most tests; the test of
``client=None`` starts its own. Models that must run slowly, fail or kill
their worker call back into Python (``jax.pure_callback``) from the compiled
block, as a model wrapping an external simulator would.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import psutil
import pytest
import xarray as xr
import zarr
from distributed import Client

import labeled_spaces as ls
from labeled_spaces.execution.cluster import compilations, local_cluster

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as cluster, Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2)
        yield c


def sweep_space():
    """6 x 5 = 30 combinations: blocks of 4 tile it raggedly."""
    return ls.Space({"a": ls.GridAxis(0.0, 1.0, 6), "b": ls.UniformAxis(-1.0, 2.0, 5),
                     "w": np.arange(3.0, dtype=np.float32)}, mode="product")


def sweep(state, scale=1.0):
    """Every combination's own values, recognisable in the results."""
    return {"trace": jnp.sin(state["a"] * state["w"]) * state["b"] * scale,
            "total": state["a"] + 10 * state["b"], "index": jnp.int32(7)}


LABELS = {"output_dims": {"trace": ("node",)},
          "output_coords": {"node": (np.array([10, 20, 30]), {"units": "id"})},
          "output_attrs": {"total": {"units": "mV"}}}


def slowly(seconds):
    """``x -> x`` in a callback that sleeps ``seconds`` per combination, on the worker."""
    def wait(x):
        time.sleep(seconds)
        return np.asarray(x, np.float32)

    return lambda x: jax.pure_callback(wait, jax.ShapeDtypeStruct((), jnp.float32), x,
                                       vmap_method="sequential")


def worker_pids(client):
    return client.run(os.getpid)


def listening(pids):
    """The (ip, port) on which the processes ``pids`` accept connections."""
    found = set()
    for pid in pids:
        with _gone_is_fine():
            for conn in psutil.Process(pid).net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port))
    return found


class _gone_is_fine:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, psutil.NoSuchProcess)


# -- results ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_store", [False, True], ids=["memory", "store"])
def test_results_equal_parallel_execution(client, tmp_path, with_store):
    space = sweep_space()
    store = {"store": tmp_path / "dask.zarr"} if with_store else {}
    ours = ls.DaskExecution(sweep, space, client=client, chunk_size=4, progress=False,
                            scale=2.0, **store, **LABELS).run()
    theirs = ls.ParallelExecution(sweep, space, chunk_size=4, progress=False, scale=2.0,
                                  **LABELS).run()
    assert isinstance(ours, ls.ParallelResult)
    want = theirs.to_xarray()
    got = ours.to_xarray().load()
    if with_store:  # the store's attrs, encoding and done mask are the store's own
        reference = ls.ParallelExecution(sweep, space, chunk_size=4, progress=False, scale=2.0,
                                         store=tmp_path / "parallel.zarr", **LABELS).run()
        xr.testing.assert_identical(got, reference.to_xarray().load())
        assert ours.complete
        opened = xr.open_zarr(tmp_path / "dask.zarr")
        np.testing.assert_array_equal(opened["trace"].values, want["trace"].values)
    else:
        xr.testing.assert_identical(got, want)
    xr.testing.assert_identical(got[list(want.data_vars)].reset_coords(drop=True),
                                want.reset_coords(drop=True))
    assert got["trace"].dims == ("a", "b", "node") and got["node"].attrs == {"units": "id"}
    assert got["total"].attrs["units"] == "mV"
    for i in (0, 13, 29):  # every combination's own values
        s = space[i]
        np.testing.assert_allclose(ours[i]["total"], float(s["a"]) + 10 * float(s["b"]),
                                   rtol=1e-6)
    assert client.status == "running"  # a given client is left open


def test_default_blocks_give_every_worker_several(client, caplog):
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 32), "b": ls.GridAxis(0.0, 1.0, 40)},
                     mode="product")
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        results = ls.DaskExecution(lambda s: s["a"] * s["b"], space, client=client,
                                   progress=False).run()
    # 1,280 combinations on 2 workers, 4 blocks each: 160 combinations, 4 rows of 40
    assert "1280 combinations in 8 blocks of (4, 40)" in caplog.text
    np.testing.assert_allclose(results.to_xarray()["result"].values,
                               np.outer(np.linspace(0, 1, 32), np.linspace(0, 1, 40)),
                               rtol=1e-6)


def test_each_worker_is_pinned_to_a_core_of_its_own(client):
    cores = sorted(os.sched_getaffinity(0))
    pinned = sorted(tuple(c) for c in client.run(lambda: sorted(os.sched_getaffinity(0)))
                    .values())
    assert pinned == [(cores[0],), (cores[1 % len(cores)],)]


def test_each_worker_compiles_once(client):
    space = sweep_space()

    def model(state):  # a new model: a new token
        return state["a"] * state["b"]

    before = client.run(compilations)
    ls.DaskExecution(model, space, client=client, chunk_size=2, progress=False).run()  # 15 tasks
    after = client.run(compilations)
    grew = {w: after[w] - before.get(w, 0) for w in after}
    assert set(grew.values()) <= {0, 1} and sum(grew.values()) >= 1
    # a second run of the same model and structure compiles nothing anywhere
    again = ls.DaskExecution(model, space, client=client, chunk_size=2, progress=False).run()
    assert client.run(compilations) == after
    np.testing.assert_array_equal(again.to_xarray()["result"].values,
                                  ls.ParallelExecution(model, space, chunk_size=2,
                                                       progress=False).run().to_xarray()
                                  ["result"].values)


def test_own_cluster_listens_on_loopback_only_and_is_closed(client):
    shared = set(worker_pids(client).values())
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}  # workers, a resource tracker
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 8)}, mode="product")
    wait = slowly(0.4)
    workers: set = set()
    sockets: dict = {"client": set(), "workers": set()}
    finished = threading.Event()

    def watch():  # while the run goes: this process (scheduler, nannies) and its workers
        while not finished.is_set():
            workers.update(p.pid for p in me.children(recursive=True) if p.pid not in before)
            sockets["client"] |= listening([me.pid])
            sockets["workers"] |= listening(workers)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        results = ls.DaskExecution(lambda s: wait(s["a"]), space, chunk_size=1,
                                   progress=False).run()
    finally:
        finished.set()
        watcher.join()
    np.testing.assert_allclose(results.to_xarray()["result"].values, np.linspace(0, 1, 8),
                               rtol=1e-6)
    # two workers at least (a nanny may restart one on a loaded machine; multiprocessing may
    # start its resource tracker): what matters is where they listen and that they end
    assert len(workers) >= 2 and sockets["workers"] and sockets["client"]
    assert {ip for ip, _ in sockets["client"] | sockets["workers"]} == {"127.0.0.1"}
    # closed at the end: its workers have exited, the given client's cluster still runs
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                   for p in workers)
    assert client.status == "running" and set(worker_pids(client).values()) == shared


# -- failures -----------------------------------------------------------------------------


def test_a_killed_worker_loses_nothing(client, tmp_path):
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 16), "b": ls.GridAxis(1.0, 2.0, 3)},
                     mode="product")
    marker = str(tmp_path / "killed")
    victim = float(space[25]["a"])

    def die_once(x):  # the first worker to reach combination 25 is killed there
        if float(x) == victim and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.02)
        return np.asarray(x, np.float32)

    def model(state):
        a = jax.pure_callback(die_once, jax.ShapeDtypeStruct((), jnp.float32), state["a"],
                              vmap_method="sequential")
        return {"y": jnp.cos(a * state["b"]) * jnp.arange(4.0), "a": a}

    before = set(worker_pids(client).values())
    killed = ls.DaskExecution(model, space, client=client, chunk_size=6, progress=False,
                              store=tmp_path / "killed.zarr").run()
    assert os.path.exists(marker)
    client.wait_for_workers(2, timeout=60)
    assert set(worker_pids(client).values()) != before  # the nanny started a new one
    reference = ls.DaskExecution(model, space, client=client, chunk_size=6,
                                 progress=False).run()  # the marker is there: nobody dies
    got, want = killed.to_xarray().load(), reference.to_xarray()
    assert killed.complete
    for name in ("y", "a"):
        assert got[name].values.tobytes() == want[name].values.tobytes()  # bit-identical


@pytest.mark.parametrize("with_store", [False, True], ids=["memory", "store"])
def test_a_model_error_names_the_combination_and_keeps_what_finished(client, tmp_path,
                                                                     with_store):
    # 6 x 5 combinations in blocks of (1, 3): only combination 29 (a = 1, b = 2) fails
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 6), "b": ls.GridAxis(0.0, 2.0, 5)},
                     mode="product")
    blocks = space.layout.blocks(4)
    failing = next(b for b in blocks if b.start <= 29 < b.start + b.size)
    seen = tmp_path / "seen"
    seen.mkdir()

    def check(a, b):
        (seen / f"{a:.2f}-{b:.2f}").touch()
        if b > 1.9 and a > 0.9:  # once every other block has computed (it runs last)
            deadline = time.monotonic() + 30
            while len(list(seen.iterdir())) < 30 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # and has come back
            raise ValueError("b too large")
        return np.asarray(b, np.float32)

    def model(state):
        b = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), state["a"],
                              state["b"], vmap_method="sequential")
        return {"y": b + state["a"]}

    store = {"store": tmp_path / "failed.zarr"} if with_store else {}
    with pytest.raises(ls.ModelError, match="combination 29") as info:
        ls.DaskExecution(model, space, client=client, chunk_size=4, progress=False,
                         **store).run()
    err = info.value
    assert err.index == 29 and "b too large" in str(err)
    assert float(err.params["b"]) == 2.0 and float(err.params["a"]) == 1.0
    done = err.partial.done.ravel()
    assert done[:failing.start].all() and not done[failing.start:].any()  # all but that block
    values = err.partial.to_xarray()["y"].values.ravel()
    np.testing.assert_allclose(values[:failing.start],
                               [float(space[i]["a"]) + float(space[i]["b"])
                                for i in range(failing.start)])
    assert np.isnan(values[failing.start:]).all()
    if with_store:  # on disk too
        mask = zarr.open_group(str(tmp_path / "failed.zarr"), mode="r")["labeled_spaces/done"]
        assert np.asarray(mask[...]).sum() == len(blocks) - 1


def test_a_killed_worker_error_names_the_block_that_was_running(tmp_path):
    # the scheduler blames every task it had sent the dead worker, a queued one too; the
    # error names the block that was running when it died
    import dask

    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 8), "b": ls.GridAxis(1.0, 2.0, 2)},
                     mode="product")
    blocks = space.layout.blocks(4)
    victim = float(space[5]["a"])  # in block 1: block 0 finishes first, block 2 is queued

    def die(x):
        time.sleep(0.3)  # block 2 reaches the worker while block 1 runs
        if float(x) == victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return np.asarray(x, np.float32)

    def model(state):
        a = jax.pure_callback(die, jax.ShapeDtypeStruct((), jnp.float32), state["a"],
                              vmap_method="sequential")
        return a * state["b"]

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            local_cluster(1) as cluster, Client(cluster, set_as_default=False) as c:
        with pytest.raises(ls.ModelError, match="killed every worker") as info:
            ls.DaskExecution(model, space, client=c, chunk_size=4, progress=False).run()
    killer = blocks[1]
    assert f"combinations {killer.start} to {killer.start + killer.size - 1} (block 1)" in str(
        info.value)
    assert info.value.partial.done.ravel()[:blocks[1].start].all()


CLIENT_SCRIPT = """
import sys, time
import jax, jax.numpy as jnp, numpy as np
from distributed import Client
import labeled_spaces as ls

def pause(x):
    time.sleep(0.15)
    return np.asarray(x, np.float32)

def model(state):
    a = jax.pure_callback(pause, jax.ShapeDtypeStruct((), jnp.float32), state["a"],
                          vmap_method="sequential")
    return {"y": a * state["b"]}

space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 24), "b": ls.GridAxis(1.0, 2.0, 2)},
                 mode="product")
with Client(sys.argv[1], set_as_default=False) as client:
    try:
        ls.DaskExecution(model, space, client=client, chunk_size=2, store=sys.argv[2],
                         progress=False).run()
    except ls.Interrupted as err:
        print("interrupted:", int(err.partial.done.sum()), "finished", flush=True)
        sys.exit(3)
"""


def pause(x):
    """The callback of CLIENT_SCRIPT's model, without its wait."""
    return np.asarray(x, np.float32)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_run_stopped_as_a_whole_resumes_from_the_store(client, tmp_path, how, caplog):
    path = tmp_path / "stopped.zarr"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CLIENT_SCRIPT), client.scheduler_info()["address"],
         str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            with _missing_is_fine():
                mask = zarr.open_group(str(path), mode="r")["labeled_spaces/done"]
                if np.asarray(mask[...]).sum() >= 2:
                    break
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()
        child.send_signal(getattr(signal, how))
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    if how == "SIGINT":
        assert child.returncode == 3 and "interrupted:" in out, err
    else:
        assert child.returncode == -signal.SIGKILL
    stored = int(np.asarray(zarr.open_group(str(path), mode="r")["labeled_spaces/done"][...])
                 .sum())
    assert 2 <= stored < 24

    def fast(state):  # the same model (to JAX, a store), without the wait
        a = jax.pure_callback(pause, jax.ShapeDtypeStruct((), jnp.float32), state["a"],
                              vmap_method="sequential")
        return {"y": a * state["b"]}

    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 24), "b": ls.GridAxis(1.0, 2.0, 2)},
                     mode="product")
    with caplog.at_level(logging.INFO, logger="labeled_spaces"):
        resumed = ls.DaskExecution(fast, space, client=client, chunk_size=2, store=path,
                                   progress=False).run()
    assert any(m.startswith("resuming: ") and m.endswith(f"of 24 blocks already stored in "
                                                          f"{path}")
               for m in caplog.messages)
    assert resumed.complete
    np.testing.assert_allclose(resumed.to_xarray()["y"].values,
                               np.outer(np.linspace(0, 1, 24), [1.0, 2.0]), rtol=1e-6)


class _missing_is_fine:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, (FileNotFoundError, KeyError))


# -- refusals before anything runs ----------------------------------------------------------


def test_refusals_come_before_any_cluster_starts():
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 10**6), "b": ls.GridAxis(0.0, 1.0, 10**3)},
                     mode="product")
    big = ls.DaskExecution(lambda s: jnp.ones(100_000) * s["a"], space, progress=False)
    with pytest.raises(MemoryError, match="would need 400 TB of memory.*store='results.zarr'"):
        big.run()
    with pytest.raises(TypeError, match="client must be None or a distributed.Client, "
                                        "got 'tcp://127.0.0.1:8786'"):
        ls.DaskExecution(sweep, space, client="tcp://127.0.0.1:8786")
    with pytest.raises(TypeError, match="did you mean chunk_size"):
        ls.DaskExecution(sweep, space, chunk_sise=4)

    def untraceable(state):
        return 1.0 if state["a"] > 0.5 else 0.0

    with pytest.raises(ls.ModelError, match="could not be compiled"):
        ls.DaskExecution(untraceable, space, progress=False).run()


def test_an_unpicklable_argument_is_named():
    space = ls.Space({"a": ls.GridAxis(0.0, 1.0, 4)}, mode="product")
    lock = threading.Lock()
    with pytest.raises(TypeError, match="pickling the keyword arguments failed"):
        ls.DaskExecution(lambda s, lock: s["a"], space, lock=lock, progress=False).run()
    with pytest.raises(TypeError, match="pickling the model failed"):
        ls.DaskExecution(lambda s: s["a"] * (lock is not None), space, progress=False).run()

"""What runs on a dask cluster: the job, its program compiled once per worker, the block task.

A :class:`Job` is a run's set-up (the model, the Program, the space's
layout, the extra arguments, the block shape) pickled once in the client with cloudpickle,
and its token, the SHA-256 of those bytes. Every block of the run is one
task, :func:`run_block`. A worker compiles a job the first time it sees its
token and reuses the program for all the run's blocks and for later runs
of the same model over the same structure: a job arrives unpickled as a new
object, so a cache keyed by the model object would never hit (a model
jitted per task compiled 16 times per worker, ``FINDINGS.md``).
:func:`compilations` counts the compilations of a process.
:func:`local_cluster` starts the cluster that ``DaskExecution`` uses when
given no client.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import math
import os
import pickle
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from .._caches import ProgramCache
from .._checks import check_bool, check_positive_int
from ..grid import Block
from ..space import Layout
from .compiled import PreparedModel
from .kernel import origin_input
from .plan import plan_blocks
from .program import MODEL, Program

if TYPE_CHECKING:
    from distributed import LocalCluster

__all__ = ["BlockWriteError", "Job", "WORKER_XLA_FLAGS", "WorkerSetupError", "announce",
           "compilations", "dask_setup", "events_topic", "local_cluster", "run_block"]

#: XLA flags added for the workers that :func:`local_cluster` starts: Eigen's matrix products
#: on the worker's one thread. (``intra_op_parallelism_threads=1`` is no XLA flag: ignored
#: without ``--``, fatal with it; XLA sizes its thread pool by the cores a process may use,
#: hence :func:`dask_setup`.)
WORKER_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false"
# jobs a worker keeps compiled (and runs whose store it keeps open); beyond, it starts afresh
MAX_WORKER_ENTRIES = 8

# per process (a worker): compiled jobs by token, and the sinks' writers of the latest runs
WORKER_PROGRAMS = ProgramCache("dask worker programs")
_WRITERS: dict[str, Any] = {}
_PROGRAM_LOCK = threading.Lock()  # held while a job compiles
_WRITER_LOCK = threading.Lock()  # not: a finished block need not wait for a compile
_COUNTS = {"compilations": 0}


class WorkerSetupError(RuntimeError):
    """A worker could not unpickle or compile a job: no combination is to blame."""


class BlockWriteError(OSError):
    """A worker computed its block but could not write it (disk full, no permission).

    An ``OSError`` (with the ``errno`` of the cause and the store's path as
    ``filename``), not a model error: the block was computed. ``partial``
    holds what finished (set in the client).
    """

    partial: Any = None


@dataclasses.dataclass(frozen=True)
class Job:
    """What every task of a run receives: the pickled set-up, its token, the store's writer.

    Attributes
    ----------
    token : str
        SHA-256 of ``payload``: the key of the worker's compiled program.
    payload : bytes
        ``(model, layout, args, kwargs, step, expected, program)`` pickled with
        cloudpickle.
    run : str
        The run's id (a worker keeps the run's writer open under it).
    writer : object or None
        A sink's picklable writer (``write(block, leaves)``, ``path``) with
        which the workers write their blocks; None returns them to the client.
    """

    token: str
    payload: bytes
    run: str
    writer: Any = None

    @classmethod
    def pack(cls, model: Any, layout: Layout, args: tuple, kwargs: dict,
             step: Sequence[int], expected: list[tuple[tuple[int, ...], str]], run: str,
             writer: Any = None, program: Program = MODEL) -> Job:
        """A job for blocks of ``step``, whose outputs must be ``expected`` (own shape, dtype)."""
        import cloudpickle

        # the layout without the arrays it cached on this process's devices
        portable = Layout(**{f.name: getattr(layout, f.name) for f in dataclasses.fields(layout)
                             if f.init and not f.name.startswith("_")})
        try:
            payload = cloudpickle.dumps((model, portable, args, kwargs, tuple(step), expected,
                                         program))
        except Exception as err:
            parts = {"the model": model, "the space": portable, "the extra arguments": args,
                     "the keyword arguments": kwargs, "the program": program}
            culprit = next((name for name, part in parts.items() if not _picklable(part)),
                           "the job")
            raise TypeError(
                "model, space and extra arguments must be picklable with cloudpickle to run on "
                f"dask workers; pickling {culprit} failed: {type(err).__name__}: {err}"
            ) from err
        return cls(hashlib.sha256(payload).hexdigest(), payload, run, writer)


@dataclasses.dataclass(frozen=True)
class _Program:
    inputs: tuple
    executable: Any
    compiled: tuple[int, ...]


def _picklable(value: Any) -> bool:
    import cloudpickle

    try:
        cloudpickle.dumps(value)
    except Exception:
        return False
    return True


def _build(job: Job) -> _Program:
    try:
        model, layout, args, kwargs, step, expected, program = pickle.loads(job.payload)
    except Exception as err:
        raise WorkerSetupError(
            f"a dask worker could not unpickle the job: {type(err).__name__}: {err} (are "
            "labeled_spaces and the model's modules importable on the workers?)") from err
    prepared = PreparedModel(model, layout, args, kwargs, program)
    state_arrays, extra_arrays = jax.device_put((prepared.state_arrays, prepared.extra_arrays))
    inputs = (layout.device_tables(), state_arrays, extra_arrays)
    blocks, executable, _ = plan_blocks(prepared, inputs, math.prod(step), None, 1, None, None,
                                        step)
    got = [(tuple(x.shape[1:]), str(x.dtype)) for x in jax.tree.leaves(executable.out_info)]
    if got != list(expected):
        raise TypeError(f"this worker computes outputs of shapes and dtypes {got}, the client "
                        f"expects {expected}: configure JAX alike in both (jax_enable_x64)")
    _COUNTS["compilations"] += 1
    return _Program(inputs, executable, blocks.compiled)


def _program(job: Job) -> _Program:
    """The job's compiled block: built once per process and token."""
    with _PROGRAM_LOCK:  # a worker with several threads compiles a job once
        if len(WORKER_PROGRAMS) >= MAX_WORKER_ENTRIES:
            WORKER_PROGRAMS.clear()
        try:
            return WORKER_PROGRAMS.get(None, ("job", job.token), lambda: _build(job))
        except WorkerSetupError:
            raise
        except Exception as err:
            raise WorkerSetupError(f"a dask worker could not prepare the model: "
                                   f"{type(err).__name__}: {err}") from err


def run_block(block: Block, job: Job) -> list[np.ndarray] | None:
    """One task: compute ``block``; write it with the job's writer (returning None), or return it.

    The leaves returned have shape ``(*block.extent, *own_shape)``.

    Raises
    ------
    WorkerSetupError
        When the job cannot be unpickled or compiled here.
    BlockWriteError
        When the block cannot be written (an ``OSError`` naming the path).

    Examples
    --------
    In this process, as a worker would:

    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.execution.cluster import Job, run_block
    >>> space = Space({"k": GridAxis(0.0, 1.0, 5)}, mode="product")
    >>> blocks = space.layout.blocks(2)
    >>> job = Job.pack(lambda p: p["k"] * 2, space.layout, (), {}, blocks.step,
    ...                [((), "float32")], run="example")
    >>> [run_block(b, job)[0].tolist() for b in blocks]
    [[0.0, 0.5], [1.0, 1.5], [2.0]]
    """
    announce(job.run, block)
    program = _program(job)
    out = program.executable(*program.inputs, origin_input(block.origin, 1))
    cut = tuple(slice(0, e) for e in block.extent)
    leaves = [np.asarray(x).reshape(program.compiled + x.shape[1:])[cut]
              for x in jax.tree.leaves(out)]
    if job.writer is None:
        return leaves
    with _WRITER_LOCK:  # the store stays open for the run's later blocks
        if job.run not in _WRITERS:
            if len(_WRITERS) >= MAX_WORKER_ENTRIES:
                _WRITERS.clear()
            _WRITERS[job.run] = job.writer
        writer = _WRITERS[job.run]
    try:
        writer.write(block, leaves)
    except OSError as err:
        path = getattr(writer, "path", None)
        code = err.errno if err.errno is not None else errno.EIO
        raise BlockWriteError(
            code, f"a dask worker computed block {block.index} (combinations from "
            f"{block.start}) but could not write it into {path}: {type(err).__name__}: "
            f"{err}", path) from err
    return None


def events_topic(run: str) -> str:
    """The scheduler's event topic on which the tasks of ``run`` say where they start."""
    return f"labeled-spaces-{run}"


def announce(run: str, block: Block) -> None:
    """Tell the scheduler that ``block`` starts on this worker (nothing outside a worker).

    A worker that dies takes down every task the scheduler had sent it, and
    each is reported as the one that killed it (``KilledWorker``); the last
    block that started on that worker is the one that was running.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not in a dask worker
        return
    worker.log_event(events_topic(run), {"block": block.index, "worker": worker.address})


def compilations() -> int:
    """How many block programs this process has compiled for :func:`run_block`.

    Ask the workers with ``client.run(compilations)``: a worker compiles once
    per model, space structure and block shape, however many blocks it runs.

    Examples
    --------
    >>> from labeled_spaces.execution.cluster import compilations
    >>> compilations() >= 0
    True
    """
    return _COUNTS["compilations"]


def worker_env(xla_flags: str | None) -> dict[str, str]:
    """Environment of spawned workers: ``xla_flags`` added to ``XLA_FLAGS``, and x64.

    A flag the client's ``XLA_FLAGS`` sets already is kept as it is (spawned
    workers inherit the client's environment).

    Examples
    --------
    >>> from labeled_spaces.execution.cluster import worker_env
    >>> worker_env("--xla_cpu_multi_thread_eigen=false").get("XLA_FLAGS", "")[-5:]
    'false'
    """
    current = os.environ.get("XLA_FLAGS", "").split()
    given = {f.split("=")[0] for f in current}
    extra = [f for f in (xla_flags or "").split() if f.split("=")[0] not in given]
    env = {"XLA_FLAGS": " ".join(current + extra)} if extra else {}
    # the workers compute the dtypes the client planned (jax's Config stub lacks its options)
    if jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        env["JAX_ENABLE_X64"] = "1"
    return env


def dask_setup(worker: Any) -> None:
    """Pin a one-thread worker to one core (``distributed`` calls it as the worker starts).

    Worker ``k`` (the number that ends its name: ``3`` for a LocalCluster's
    worker 3, or dask-jobqueue's ``SLURMCluster-0-3``) takes the ``k``-th of the
    cores this process may use, modulo their number. XLA:CPU sizes its thread
    pool by those cores, so a pinned worker keeps one busy thread. The calling
    thread is pinned, and the threads it starts afterwards (the worker's task
    thread, XLA's) inherit it. Workers of several threads are left alone. Used
    by :func:`local_cluster`; on other clusters, ``--preload
    labeled_spaces.execution.cluster`` on the worker's command line.

    Examples
    --------
    >>> import os, threading
    >>> from types import SimpleNamespace
    >>> from labeled_spaces.execution.cluster import dask_setup
    >>> seen = []
    >>> def start():  # a thread of its own: only it is pinned
    ...     dask_setup(SimpleNamespace(name="SLURMCluster-0-1", state=SimpleNamespace(nthreads=1)))
    ...     seen.append(os.sched_getaffinity(0))
    >>> thread = threading.Thread(target=start)
    >>> thread.start(); thread.join()
    >>> len(seen[0])
    1
    """
    threads = getattr(getattr(worker, "state", worker), "nthreads", 1)  # Worker.state.nthreads
    if not hasattr(os, "sched_setaffinity") or threads != 1:
        return  # not Linux (the operating system places threads), or several threads
    try:
        k = int(str(worker.name).rsplit("-", 1)[-1])
    except ValueError:
        return
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[k % len(cores)]})


def local_cluster(n_workers: int | None = None, xla_flags: str | None = WORKER_XLA_FLAGS,
                  pin_cores: bool = True, **kwargs: Any) -> LocalCluster:
    """The ``LocalCluster`` that ``DaskExecution(client=None)`` starts, to keep for several runs.

    Worker processes are spawned (a fork of a process in which JAX has
    started hangs), one thread each, each pinned to a core of its own, and
    every socket listens on 127.0.0.1 only, the dashboard's included (at
    ``client.dashboard_link`` if bokeh is installed).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default one per core (``dask.system.CPU_COUNT``).
    xla_flags : str or None, default :data:`WORKER_XLA_FLAGS`
        Added to the workers' ``XLA_FLAGS`` (see :func:`worker_env`); None
        adds nothing.
    pin_cores : bool, default True
        Pin worker ``k`` to the ``k``-th core (:func:`dask_setup`), so that its
        XLA runs on one thread. On 2 cores (``benchmarks/distributed.py``, two
        runs) pinned workers ran a matmul-heavy sweep 3-8% and the Kuramoto
        sweep 1-7% faster; on a machine where other programs hold some cores,
        a pinned worker cannot move away from them: pass False there.
    **kwargs
        Passed to ``distributed.LocalCluster``, overriding the above.

    Examples
    --------
    >>> from distributed import Client
    >>> with local_cluster(2) as cluster, Client(cluster) as client:  # doctest: +SKIP
    ...     results = DaskExecution(model, space, client=client).run()

    (Skipped: spawning worker processes takes seconds; the tests do it.)
    """
    import dask
    from dask.system import CPU_COUNT
    from distributed import LocalCluster

    n = CPU_COUNT if n_workers is None else check_positive_int("n_workers", n_workers)
    options: dict[str, Any] = {
        "n_workers": n, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
        "scheduler_port": 0, "env": worker_env(xla_flags),
        # without a port, the scheduler's web server (even with no dashboard) takes 8787
        "dashboard_address": "127.0.0.1:0",
    }
    if check_bool("pin_cores", pin_cores):
        options["preload"] = [__name__]  # runs dask_setup in each worker as it starts
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):
        return LocalCluster(**{**options, **kwargs})

"""DaskExecution: the grid's blocks as tasks on a ``dask.distributed`` cluster.

How a block is computed here; the run sequence (output labels, sink, block
tiling, resume) is the core's (:mod:`labeled_spaces.execution.core`). The
client submits one task holding the run's
:class:`~labeled_spaces.execution.cluster.Job` (the model, the Program and
the space's layout, pickled once) and one task per block,
:func:`~labeled_spaces.execution.cluster.run_block`, that depends on it, so
the job travels once per worker, not once per task; each worker compiles it
once (:mod:`labeled_spaces.execution.cluster`).

A sink that hands out a writer (a store: ``worker_writer()``, see
:mod:`labeled_spaces.results.sink`) has the workers write their own blocks
and return nothing; the client reads the done mask at the end. Otherwise
finished blocks come back to the client's sink. Either way blocks go
through :func:`~labeled_spaces.execution.loop.run_blocks` in the order they
finish, so a failure or Ctrl-C keeps what finished. A worker that dies
loses nothing: the scheduler runs its blocks again elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
from tqdm import tqdm

from ..grid import Block, Blocks
from ..results import Outputs, ParallelResult, Results, Sink
from ..results.sink import worker_writer
from ..space import Space
from .cluster import (
    BlockWriteError,
    Job,
    WorkerSetupError,
    events_topic,
    local_cluster,
    run_block,
)
from .compiled import PreparedModel
from .core import Executor, Started, traced
from .errors import ModelError, block_failure
from .explain import Probe, on_host
from .kernel import origin_input
from .options import COMMON_OPTIONS
from .plan import initial_lanes, plan_blocks
from .program import Program

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["DaskExecution"]

logger = logging.getLogger("labeled_spaces")

OPTIONS = ("client", "chunk_size", "max_memory", *COMMON_OPTIONS)


class _WrittenByWorkers:
    """The store's sink as the client sees it: the workers write the blocks themselves."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def __getattr__(self, name: str) -> Any:  # open, done, close, partial: the store's
        return getattr(self.sink, name)

    def write(self, block: Block, leaves: Any, count: int | None = None) -> None:
        """Nothing to do: the worker wrote the block and marked it done."""


class _TaskRunner:
    """The blocks' futures for :func:`run_blocks`, in the order they finish."""

    def __init__(self, client: Client, futures: dict[int, Future], blocks: Blocks, sink: Sink,
                 prepared: PreparedModel, space: Space, bar: Any, run: str) -> None:
        self.client, self.futures, self.blocks, self.sink = client, futures, blocks, sink
        self.prepared, self.space, self.bar, self.run = prepared, space, bar, run
        self.by_key = {f.key: index for index, f in futures.items()}

    def killer(self, err: Any, block: Block) -> Block:
        """The block that was running when the worker of ``err`` (a KilledWorker) died.

        The scheduler blames every task it had sent that worker, queued ones
        too, so ``block`` may be innocent. Of the blocks killed with it, the
        one that was running is the last that started there (see
        :func:`~labeled_spaces.execution.cluster.announce`), else the first
        submitted (a worker runs its tasks in that order).
        """
        killed = {block.index} | {k for k, f in self.futures.items() if f.status == "error"}
        address = getattr(getattr(err, "last_worker", None), "address", None)
        try:
            events = self.client.get_events(events_topic(self.run))
        except Exception:  # noqa: BLE001 - no events: by the order of submission
            events = ()
        started = [msg["block"] for _, msg in sorted(events, key=lambda e: e[0])
                   if isinstance(msg, dict) and msg.get("worker") == address
                   and msg.get("block") in killed]
        return self.blocks[started[-1] if started else min(killed)]

    def finished(self) -> Iterator[Block]:
        from distributed import as_completed

        try:
            for future in as_completed(list(self.futures.values()), loop=self.client.loop):
                yield self.blocks[self.by_key[future.key]]
        except KeyboardInterrupt:
            self.keep_finished()
            raise

    def dispatch(self, block: Block) -> Any:
        # the task has finished: its result (or the worker's exception) is there to take
        leaves = self.futures.pop(block.index).result()
        self.bar.update(block.size)
        return leaves

    def fetch(self, block: Block, handle: Any) -> Any:
        return handle

    def ready(self, handle: Any) -> bool:
        return True

    def keep_finished(self) -> bool:
        """Write the blocks finished but not yet taken, cancel the others; whether any was."""
        kept = False
        for index, future in list(self.futures.items()):
            if future.status == "finished":
                with contextlib.suppress(Exception):
                    self.sink.write(self.blocks[index], self.dispatch(self.blocks[index]))
                    kept = True
        self.cancel()
        return kept

    def cancel(self) -> None:
        if self.futures:
            self.client.cancel(list(self.futures.values()))
            self.futures.clear()

    def blame(self, err: BaseException, block: Block, partial: Results | None) -> Exception:
        from distributed import KilledWorker

        killer = self.killer(err, block) if isinstance(err, KilledWorker) else block
        if self.keep_finished():  # blocks that finished while this one failed
            partial = self.sink.partial()
        if isinstance(err, KilledWorker):
            return ModelError(
                f"the block of combinations {killer.start} to {killer.start + killer.size - 1} "
                f"(block {killer.index}) killed every worker that ran it (a crash, or out of "
                f"memory); the scheduler: {err}", partial=partial)
        if isinstance(err, BlockWriteError):  # not the model's failure: the disk's
            error = BlockWriteError(err.errno, err.strerror, err.filename)
            error.partial = partial
            return error
        if isinstance(err, WorkerSetupError):
            return ModelError(str(err), partial=partial)
        # which combination failed: the block's points, one by one without jit, here
        return block_failure(self.prepared, self.space, err, self.blocks.flat_indices(block),
                             partial)


class _Tasks:
    """DaskExecution's :class:`~labeled_spaces.execution.core.Computation`."""

    one_at_a_time = False

    def __init__(self, execution: DaskExecution, prepared: PreparedModel) -> None:
        self.execution, self.prepared = execution, prepared

    def structure(self) -> tuple[Any, str]:
        prepared = self.prepared
        shapes, print_, _ = traced(prepared, prepared.layout.device_tables(),
                                   prepared.state_arrays, prepared.extra_arrays,
                                   self.execution.space)
        return shapes, print_

    def plan(self, outputs: Outputs, persistent: bool, step: tuple[int, ...] | None) -> Blocks:
        """Several blocks per worker, each big enough to vectorise (nothing compiles here)."""
        self.outputs = outputs
        ex = self.execution
        space = ex.space
        if step is not None:
            return Blocks(space.shape, step)
        threads = self.threads()
        lane_bytes = outputs.lane_bytes() + space.layout.lane_bytes() + 8 * len(space.shape)
        return space.layout.blocks(initial_lanes(space.N, lane_bytes, 1, ex.chunk_size,
                                                 ex.max_memory, persistent, workers=threads))

    def threads(self) -> int:
        """The worker threads: the client's, or this machine's cores for a local cluster."""
        if self.execution.client is None:
            from dask.system import CPU_COUNT

            return CPU_COUNT
        return max(1, sum(self.execution.client.nthreads().values()))

    def probe(self, blocks: Blocks) -> Probe:
        """The block as every worker compiles it, here, for ``explain()``."""
        prepared = self.prepared
        arrays = jax.device_put((prepared.state_arrays, prepared.extra_arrays))
        inputs = (prepared.layout.device_tables(), *arrays)
        _, executable, batch = plan_blocks(prepared, inputs, math.prod(blocks.step), None, 1,
                                           None, None, blocks.step)
        origin = origin_input(blocks[0].origin, 1)
        return Probe(executable, lambda: on_host(executable(*inputs, origin)),
                     math.prod(blocks.step), n_vmap=batch, parallel=self.threads())

    @contextlib.contextmanager
    def _cluster(self) -> Iterator[Client]:
        """The given client, or one of a local cluster started for the run."""
        if self.execution.client is not None:
            yield self.execution.client
            return
        import dask
        from distributed import Client

        # workers restarted after one died are spawned too, whatever the user's config says
        with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}), \
                local_cluster() as cluster, Client(cluster, set_as_default=False) as client:
            logger.info("started a local dask cluster of %d workers at %s",
                        len(cluster.workers), cluster.scheduler_address)
            yield client

    @contextlib.contextmanager
    def start(self, blocks: Blocks, todo: Iterable[Block], sink: Sink, bar: tqdm
              ) -> Iterator[Started]:
        ex, outputs = self.execution, self.outputs
        todo = list(todo)
        run = uuid.uuid4().hex[:12]
        writer = worker_writer(sink)
        if writer is not None:  # the workers write their blocks themselves
            sink = _WrittenByWorkers(sink)
        expected = [(tuple(s), str(d)) for s, d in zip(outputs.shapes, outputs.dtypes,
                                                      strict=True)]
        job = Job.pack(ex.model, self.prepared.layout, ex.args, ex.kwargs, blocks.step,
                       expected, run, writer, self.prepared.program)
        logger.info("%d combinations in %d blocks of %s (%d to run) as dask tasks",
                    ex.space.N, len(blocks), blocks.step, len(todo))
        with self._cluster() as client:
            from toolz import identity

            held = client.submit(identity, job, key=f"labeled-spaces-job-{run}", pure=False)
            # on every worker, so that the scheduler does not send the blocks to the one
            # holding it: 2 blocks of 512 took 2.1 s on one worker, 1.2 s on two
            client.replicate([held])
            futures = client.map(run_block, todo, job=held, pure=False,
                                 key=[f"labeled-spaces-block-{run}-{b.index}" for b in todo])
            runner = _TaskRunner(client, {b.index: f for b, f in zip(todo, futures, strict=True)},
                                 blocks, sink, self.prepared, ex.space, bar, run)
            try:
                yield Started(runner, runner.finished(), sink)
            finally:
                runner.cancel()
                client.cancel([held])


class DaskExecution(Executor):
    """Run a model over a Space as block tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)``, traceable by JAX, returning a pytree
        of arrays or numbers; pickled with cloudpickle (a model from an
        importable module must be importable on the workers too).
    space : Space
        The combinations to run.
    *args
        Extra positional arguments for the model.
    client : distributed.Client, optional
        The cluster to use, left open at the end (e.g. one of dask-jobqueue's
        on SLURM). Default: a :func:`~labeled_spaces.execution.cluster.local_cluster`
        for the run, closed at its end.
    chunk_size : int, optional
        Combinations per task. Default: ``plan.BLOCKS_PER_WORKER`` or more
        blocks per worker thread (at least 64 blocks for large runs), of at
        least ``plan.MIN_TASK_LANES`` combinations, within ``max_memory``
        (:func:`labeled_spaces.execution.plan.initial_lanes`).
    max_memory : int, optional
        Bytes the blocks in flight may use. Default a quarter of the memory
        available to the client.
    progress : bool, default True
        A tqdm progress bar over finished tasks.
    store : str or path-like, optional
        A ``.zarr`` directory that the workers write their blocks into
        (created by the client, resumed when it exists); every worker must
        reach it at the same path (a shared file system on a cluster). A
        worker that cannot write its block raises an ``OSError`` naming the
        path (``BlockWriteError``), not a ``ModelError``.
    overwrite, output_dims, output_coords, output_attrs, program
        As for :class:`~labeled_spaces.ParallelExecution` (a Program is
        pickled with the model).
    **kwargs
        Extra keyword arguments for the model; a keyword that is neither an
        option nor a parameter of the model is a ``TypeError``.

    Notes
    -----
    Without a store the results come back to the client and must fit its
    memory (checked before anything runs). They equal ParallelExecution's
    with the same blocks (``chunk_size``); other block sizes may vectorise a
    floating-point reduction differently.

    Examples
    --------
    A cluster of threads in this process starts quickly (a real run uses the
    processes of ``client=None`` or of a given cluster):

    >>> import jax.numpy as jnp
    >>> from distributed import Client, LocalCluster
    >>> from labeled_spaces import DaskExecution, GridAxis, Space
    >>> space = Space({"k": GridAxis(0.0, 1.0, 4), "s": GridAxis(0.0, 1.0, 3)}, mode="product")
    >>> with LocalCluster(processes=False, n_workers=1, dashboard_address=None) as cluster, \\
    ...         Client(cluster, set_as_default=False) as client:
    ...     results = DaskExecution(lambda p: {"y": p["k"] * p["s"] * jnp.ones(2)}, space,
    ...                             client=client, progress=False).run()
    >>> results.to_xarray()["y"].shape
    (4, 3, 2)
    """

    name = "DaskExecution"
    OPTIONS = OPTIONS
    result_type = ParallelResult

    def __init__(
        self,
        model: Callable[..., Any],
        space: Space,
        *args: Any,
        client: Client | None = None,
        chunk_size: int | None = None,
        max_memory: int | None = None,
        progress: bool = True,
        store: Any = None,
        overwrite: bool = False,
        output_dims: Mapping[str, Sequence[str]] | None = None,
        output_coords: Mapping[str, Any] | None = None,
        output_attrs: Mapping[str, Mapping[str, Any]] | None = None,
        program: Program | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, space, args, kwargs, client=client, chunk_size=chunk_size,
                         max_memory=max_memory, progress=progress, store=store,
                         overwrite=overwrite, output_dims=output_dims,
                         output_coords=output_coords, output_attrs=output_attrs,
                         program=program)

    def computation(self, prepared: PreparedModel) -> _Tasks:
        """Block tasks on the cluster (the core runs them)."""
        return _Tasks(self, prepared)

    def run(self) -> Results:
        """Run every combination on the cluster.

        Returns
        -------
        ParallelResult

        Raises
        ------
        ModelError
            When the model fails on a worker: names the first combination of
            the failed block that fails when run without jit in the client,
            and keeps the finished blocks in ``.partial`` (a store: on disk).
        Interrupted
            On Ctrl-C (a ``KeyboardInterrupt``), with ``.partial``; running
            again with the same store resumes.
        """
        return super().run()

"""DaskExecution: the grid's blocks as tasks on a ``dask.distributed`` cluster.

The client plans a run as ParallelExecution does (output labels, sink, block
tiling), then submits one task holding the run's
:class:`~labeled_spaces.execution.cluster.Job` (the model and the space's
layout, pickled once) and one task per block,
:func:`~labeled_spaces.execution.cluster.run_block`, that depends on it, so
the job travels once per worker, not once per task; each worker compiles it
once (:mod:`labeled_spaces.execution.cluster`).

With a store, the client creates it before any task runs; workers write
their own blocks (:class:`~labeled_spaces.results.store.StoreWriter`) and
return nothing; the client reads the done mask at the end. Without one,
finished blocks come back to the client's ``MemorySink``. Either way blocks
go through :func:`~labeled_spaces.execution.loop.run_blocks` in the order
they finish, so a failure or Ctrl-C keeps what finished. A worker that dies
loses nothing: the scheduler runs its blocks again elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._checks import check_bool, check_callable, check_positive_int, fail
from ..grid import Block, Blocks
from ..results import Outputs, ParallelResult, Results, Sink
from ..results.store import StoreWriter
from ..space import Space
from .cluster import Job, WorkerSetupError, local_cluster, run_block
from .compiled import PreparedModel
from .errors import ModelError, block_failure, interruptible
from .loop import run_blocks
from .options import COMMON_OPTIONS, check_model_kwargs, check_space
from .plan import initial_lanes
from .setup import check_store, output_structure, progress_bar, sink_for

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["DaskExecution"]

logger = logging.getLogger("labeled_spaces")

OPTIONS = ("client", "chunk_size", "max_memory", *COMMON_OPTIONS)

# blocks per worker thread, at least: one that finishes early finds more work. The
# Kuramoto sweep of benchmarks/distributed.py on 2 workers: 1.11 s in 8 blocks of 128,
# 1.13 s in 4 of 256, 1.20 s in 2 of 512 (one thread alone runs it 14% faster per
# combination in blocks of 512 than of 128, but two workers do not)
BLOCKS_PER_WORKER = 4
# combinations per task, at least: a task costs ~5 ms of worker time (benchmarks/
# distributed.py (b)), and that model's cost per combination on one thread falls by 3%
# from 64 to 128 combinations per block
MIN_TASK_LANES = 128


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
                 prepared: PreparedModel, space: Space, bar: Any) -> None:
        self.client, self.futures, self.blocks, self.sink = client, futures, blocks, sink
        self.prepared, self.space, self.bar = prepared, space, bar
        self.by_key = {f.key: index for index, f in futures.items()}

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

    def blame(self, err: BaseException, block: Block, partial: Results | None) -> ModelError:
        from distributed import KilledWorker

        if self.keep_finished():  # blocks that finished while this one failed
            partial = self.sink.partial()
        if isinstance(err, KilledWorker):
            return ModelError(f"the block starting at combination {block.start} killed every "
                              f"worker that ran it (a crash, or out of memory): {err}",
                              partial=partial)
        if isinstance(err, WorkerSetupError):
            return ModelError(str(err), partial=partial)
        # which combination failed: the block's points, one by one without jit, here
        return block_failure(self.prepared, self.space, err, self.blocks.flat_indices(block),
                             partial)


class DaskExecution:
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
        Combinations per task. Default: :data:`BLOCKS_PER_WORKER` or more
        blocks per worker thread (at least 64 blocks for large runs), of at
        least :data:`MIN_TASK_LANES` combinations, within ``max_memory``.
    max_memory : int, optional
        Bytes the blocks in flight may use. Default a quarter of the memory
        available to the client.
    progress : bool, default True
        A tqdm progress bar over finished tasks.
    store : str or path-like, optional
        A ``.zarr`` directory that the workers write their blocks into
        (created by the client, resumed when it exists); every worker must
        reach it at the same path (a shared file system on a cluster).
    overwrite : bool, default False
        Replace an existing store instead of resuming it (the new store is
        made beside it and swapped in). Without ``overwrite``, a store made
        by another run (other inputs) is refused with a ``ValueError``.
    output_dims, output_coords, output_attrs : dict, optional
        Labels of the outputs, as for :class:`~labeled_spaces.ParallelExecution`.
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
        **kwargs: Any,
    ) -> None:
        self.model = check_callable("model", model)
        self.space = check_space(space, "space")
        check_model_kwargs("DaskExecution", model, kwargs, OPTIONS)
        if client is not None:
            from distributed import Client

            if not isinstance(client, Client):
                fail("client", "None or a distributed.Client", client, TypeError)
        self.client, self.args, self.kwargs = client, args, kwargs
        self.chunk_size = check_positive_int("chunk_size", chunk_size, allow_none=True)
        self.max_memory = check_positive_int("max_memory", max_memory, allow_none=True)
        self.progress = check_bool("progress", progress)
        self.store = store
        self.overwrite = overwrite
        self.output_dims = output_dims
        self.output_coords = output_coords
        self.output_attrs = output_attrs
        self._sink = sink_for(store, self.space, ParallelResult, self.max_memory,
                              overwrite=overwrite)

    @contextlib.contextmanager
    def _cluster(self) -> Iterator[Client]:
        """The given client, or one of a local cluster started for the run."""
        if self.client is not None:
            yield self.client
            return
        import dask
        from distributed import Client

        # workers restarted after one died are spawned too, whatever the user's config says
        with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}), \
                local_cluster() as cluster, Client(cluster, set_as_default=False) as client:
            logger.info("started a local dask cluster of %d workers at %s",
                        len(cluster.workers), cluster.scheduler_address)
            yield client

    def _lanes(self, outputs: Outputs) -> int:
        """Combinations per block: several blocks per worker, each big enough to vectorise."""
        space = self.space
        if self.chunk_size is not None:
            return min(self.chunk_size, space.N)
        if self.client is None:
            from dask.system import CPU_COUNT

            threads = CPU_COUNT
        else:
            threads = max(1, sum(self.client.nthreads().values()))
        lane_bytes = outputs.lane_bytes() + space.layout.lane_bytes() + 8 * len(space.shape)
        memory = initial_lanes(space.N, lane_bytes, 1, None, self.max_memory)
        many = initial_lanes(space.N, lane_bytes, 1, None, self.max_memory, single_block=False)
        per_worker = -(-space.N // (threads * BLOCKS_PER_WORKER))
        return max(1, min(space.N, memory, max(MIN_TASK_LANES, min(many, per_worker))))

    @interruptible
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
        space, layout = self.space, self.space.layout
        prepared = PreparedModel(self.model, layout, self.args, self.kwargs)
        outputs = output_structure(self, prepared, layout.device_tables(),
                                   prepared.state_arrays, prepared.extra_arrays)
        sink = self._sink()
        step = sink.preferred_step(outputs)
        blocks = (Blocks(space.shape, step) if step is not None
                  else layout.blocks(self._lanes(outputs)))
        done = sink.open(outputs, blocks)
        if len(done) == len(blocks):
            return sink.close()
        todo = [b for b in blocks if b.index not in done]
        run, writer = uuid.uuid4().hex[:12], None
        if not sink.single_block:  # a store: the workers write their blocks into it
            # by its absolute path: a worker need not share the client's working directory
            writer = StoreWriter(os.path.abspath(check_store(self.store)), outputs.var_names,
                                 blocks.step)
            sink = _WrittenByWorkers(sink)
        expected = [(tuple(s), str(d)) for s, d in zip(outputs.shapes, outputs.dtypes,
                                                      strict=True)]
        job = Job.pack(self.model, layout, self.args, self.kwargs, blocks.step, expected, run,
                       writer)
        logger.info("%d combinations in %d blocks of %s (%d to run) as dask tasks", space.N,
                    len(blocks), blocks.step, len(todo))
        with self._cluster() as client, \
                progress_bar(self.progress and len(blocks) > 1, space.N, done, blocks) as bar:
            from toolz import identity

            held = client.submit(identity, job, key=f"labeled-spaces-job-{run}", pure=False)
            # on every worker, so that the scheduler does not send the blocks to the one
            # holding it: 2 blocks of 512 took 2.1 s on one worker, 1.2 s on two
            client.replicate([held])
            futures = client.map(run_block, todo, job=held, pure=False,
                                 key=[f"labeled-spaces-block-{run}-{b.index}" for b in todo])
            runner = _TaskRunner(client, {b.index: f for b, f in zip(todo, futures, strict=True)},
                                 blocks, sink, prepared, space, bar)
            try:
                return run_blocks(runner, runner.finished(), sink)
            finally:
                runner.cancel()
                client.cancel([held])

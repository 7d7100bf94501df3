"""The Sink seam: where an executor's finished blocks go, and the factory that picks one.

An executor computes blocks of the grid and hands each finished one to a
sink; it never knows where results go. :func:`make_sink` makes the sink
of a run from its ``store=`` option: memory (None), the zarr store at a
path, or a sink object given as it is. The protocol, required:

``open(outputs, blocks) -> done``
    Prepare for outputs labelled by :class:`~labeled_spaces.results.names.Outputs`
    over the tiling ``blocks``; return the numbers of the blocks that are
    already finished (a store being resumed), which the executor skips.
``write(block, leaves, count=None)``
    Store one block: ``leaves[k]`` has shape ``(*block.extent, *own_shape)``.
    With ``count``, only the first ``count`` points (in flat order) are
    valid: a block interrupted half-way (sinks that keep whole blocks only
    may ignore it).
``done() -> mask``
    Grid-shaped boolean mask of the finished combinations (NumPy; a store
    of a big grid gives a lazy dask array built per block).
``close() -> Results``
    The results of a complete run.
``partial() -> Results | None``
    What is finished, after a failure or an interrupt (None before ``open``).

Optional hooks, read through the functions of the same names here (which
give the defaults for a sink without them):

``persistent`` (default False)
    Whether the results live outside the process (on disk): the executor
    then cuts the run into many small blocks, so that a crash or Ctrl-C
    loses little, where a sink in memory may take a small run as one block.
``preferred_step(outputs) -> step or None`` (default None)
    The block shape the sink needs (an existing store's chunks), asked
    before the executor plans its blocks.
``worker_writer() -> writer or None`` (default None)
    A picklable object with ``write(block, leaves)`` and ``path`` that dask
    workers use to write their blocks themselves (None: the blocks come back
    to the client, which writes them to the sink).
``preview(outputs, blocks) -> StorePreview`` (default: a state "unknown")
    What a run would find there, read without writing anything (for
    ``executor.explain()``).
``write_seconds(outputs, blocks) -> float`` (default 0)
    Seconds writing one block takes, measured without touching the store
    (``executor.explain(time=True)`` adds it to each block's time).

:class:`MemorySink` fills NumPy arrays; the zarr store
(:class:`~labeled_spaces.results.store.ZarrSink`) writes regions of a store
on disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._checks import fail
from .._format import format_bytes
from .._memory import available_memory
from .._timing import median_seconds
from ..grid import Block, Blocks
from ..space import Space
from .names import Outputs
from .preview import StorePreview
from .results import Results
from .store import ZarrSink

__all__ = ["MemorySink", "Sink", "StorePreview", "blank_undone", "check_store", "make_sink",
           "persistent", "preferred_step", "preview", "worker_writer", "write_seconds"]


@runtime_checkable
class Sink(Protocol):
    """Where an executor's finished blocks go (see the module documentation)."""

    def open(self, outputs: Outputs, blocks: Blocks) -> set[int]: ...

    def write(self, block: Block, leaves: Sequence[np.ndarray], count: int | None = None
              ) -> None: ...

    def done(self) -> np.ndarray: ...

    def close(self) -> Results: ...

    def partial(self) -> Results | None: ...


def persistent(sink: Sink) -> bool:
    """Whether ``sink`` keeps its results outside the process (default False).

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results.sink import MemorySink, persistent
    >>> persistent(MemorySink(Space({"k": GridAxis(0.0, 1.0, 2)}, mode="product")))
    False
    """
    return bool(getattr(sink, "persistent", False))


def preferred_step(sink: Sink, outputs: Outputs) -> tuple[int, ...] | None:
    """The block shape ``sink`` needs for ``outputs`` (an existing store's), else None."""
    hook = getattr(sink, "preferred_step", None)
    return None if hook is None else hook(outputs)


def worker_writer(sink: Sink) -> Any:
    """A picklable writer for dask workers (see the module documentation), or None."""
    hook = getattr(sink, "worker_writer", None)
    return None if hook is None else hook()


def write_seconds(sink: Sink, outputs: Outputs, blocks: Blocks) -> float:
    """Seconds ``sink`` takes to write one block (see the module documentation).

    Examples
    --------
    >>> from labeled_spaces.results.sink import write_seconds
    >>> class Elsewhere:  # a sink without the hook: its writes cost nothing to the estimate
    ...     pass
    >>> write_seconds(Elsewhere(), None, None)
    0.0
    """
    hook = getattr(sink, "write_seconds", None)
    return 0.0 if hook is None else float(hook(outputs, blocks))


def preview(sink: Sink, outputs: Outputs, blocks: Blocks) -> StorePreview:
    """What a run over ``blocks`` would find in ``sink`` (see the module documentation).

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.grid import Blocks
    >>> from labeled_spaces.results import MemorySink, Outputs
    >>> from labeled_spaces.results.sink import preview
    >>> space = Space({"k": GridAxis(0.0, 1.0, 4)}, mode="product")
    >>> outputs = Outputs.build(space, jax.tree.structure(0.0), [()], [np.float32])
    >>> preview(MemorySink(space), outputs, Blocks((4,), (2,))).state
    'memory'
    """
    hook = getattr(sink, "preview", None)
    if hook is not None:
        return hook(outputs, blocks)
    return StorePreview(type(sink).__name__, "unknown (the sink says nothing of its state)")


def check_store(store: Any) -> str | Sink | None:
    """None, the path of a ``.zarr`` directory as a string, or a :class:`Sink` object.

    Examples
    --------
    >>> from labeled_spaces.results.sink import check_store
    >>> check_store("out/sweep.zarr"), check_store(None)
    ('out/sweep.zarr', None)
    """
    if store is None or isinstance(store, Sink):
        return store
    try:
        path = os.fspath(store)
    except TypeError:
        fail("store", "None or the path of a .zarr directory, or a Sink object", store, TypeError)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path.rstrip("/").endswith(".zarr"):
        fail("store", "the path of a .zarr directory (ending in .zarr)", store)
    return path


def make_sink(store: Any, space: Space, result_type: type[Results] = Results, *,
              overwrite: bool = False) -> Sink:
    """The sink a run writes to, from its ``store=`` option.

    Parameters
    ----------
    store : None, str, path-like or Sink
        None: a :class:`MemorySink`; the path of a ``.zarr`` directory: the
        zarr store there (created, or resumed); a Sink object: itself.
    space : Space
        The space being run.
    result_type : type, default Results
        The class of the Results the sink builds.
    overwrite : bool, default False
        Replace an existing store rather than resume it.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.results.sink import make_sink
    >>> space = Space({"k": GridAxis(0.0, 1.0, 2)}, mode="product")
    >>> type(make_sink(None, space)).__name__, type(make_sink("a.zarr", space)).__name__
    ('MemorySink', 'ZarrSink')
    """
    store = check_store(store)
    if store is None:
        return MemorySink(space, result_type)
    if isinstance(store, str):
        return ZarrSink(store, space, result_type, overwrite=overwrite)
    return store


def blank_undone(arrays: Sequence[np.ndarray], done: np.ndarray) -> None:
    """Fill what was not computed with NaN (floats) or 0 (others), for partial results."""
    for array in arrays:
        fill = np.nan if np.issubdtype(array.dtype, np.inexact) else 0
        array[~done] = fill


class MemorySink:
    """Results in NumPy arrays, one per output leaf over the whole grid.

    Parameters
    ----------
    space : Space
        The space being run.
    result_type : type, default Results
        The class of the Results built at the end (an executor's own).
    limit : int, optional
        Bytes the results may take; ``open`` refuses larger results with a
        ``MemoryError`` that suggests a store. Default: the memory available.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces import GridAxis, Space
    >>> from labeled_spaces.grid import Blocks
    >>> from labeled_spaces.results import MemorySink, Outputs
    >>> space = Space({"k": GridAxis(0.0, 1.0, 4)}, mode="product")
    >>> outputs = Outputs.build(space, jax.tree.structure(0.0), [()], [np.float32])
    >>> sink, blocks = MemorySink(space), Blocks((4,), (2,))
    >>> sink.open(outputs, blocks)
    set()
    >>> for block in blocks:
    ...     sink.write(block, [np.full(block.extent, float(block.index), np.float32)])
    >>> sink.close().to_xarray()["result"].values.tolist()
    [0.0, 0.0, 1.0, 1.0]
    """

    def __init__(self, space: Space, result_type: type[Results] = Results,
                 limit: int | None = None) -> None:
        self.space = space
        self.result_type = result_type
        self.limit = limit
        self.outputs: Outputs | None = None
        self.arrays: list[np.ndarray] = []

    def _check_fits(self, outputs: Outputs) -> None:
        total = self.space.N * outputs.lane_bytes()
        limit = available_memory() if self.limit is None else self.limit
        if total > limit:
            raise MemoryError(
                f"the results of {self.space.N:,} combinations would need "
                f"{format_bytes(total)} of memory, more than the {format_bytes(limit)} "
                "available; stream them to disk with store='results.zarr' (zarr, chunk by "
                "chunk, resumable)"
            )

    def preview(self, outputs: Outputs, blocks: Blocks) -> StorePreview:
        """Results in memory; a ``MemoryError`` where they would not fit, as :meth:`open`."""
        self._check_fits(outputs)
        return StorePreview("memory", "memory")

    def open(self, outputs: Outputs, blocks: Blocks) -> set[int]:
        self._check_fits(outputs)
        self.outputs = outputs
        self.blocks = blocks
        # finished blocks, and how much of a block a failure left (no mask of size N:
        # a bool per point would be a quarter of float32 scalar results)
        self._done_blocks: set[int] = set()
        self._started: dict[int, int] = {}
        self.arrays = []
        if len(blocks) > 1:
            self._allocate()
        return set()

    def _allocate(self) -> None:
        # np.empty touches no page until written: memory grows block by block
        space, outputs = self.space, self.outputs
        assert outputs is not None, "open() comes first"
        self.arrays = [np.empty(space.shape + s, dtype=d)
                       for s, d in zip(outputs.shapes, outputs.dtypes, strict=True)]
        self._flat = [a.reshape((space.N, *a.shape[len(space.shape):])) for a in self.arrays]

    def write(self, block: Block, leaves: Sequence[np.ndarray], count: int | None = None
              ) -> None:
        if not self.arrays:  # one block for the whole grid: its arrays become the results
            self.arrays = [np.asarray(leaf, order="C") for leaf in leaves]  # 0-d stays 0-d
            self._flat = [a.reshape((self.space.N, *a.shape[len(self.space.shape):]))
                          for a in self.arrays]
        elif count is None:
            region = block.region
            for array, leaf in zip(self.arrays, leaves, strict=True):
                array[region] = leaf
        else:
            # a block is a contiguous run of the flat index (see grid.block_shape)
            stop = block.start + count
            for flat, leaf in zip(self._flat, leaves, strict=True):
                flat[block.start:stop] = leaf.reshape((-1, *flat.shape[1:]))[:count]
        if count is None:
            self._done_blocks.add(block.index)
        else:
            self._started[block.index] = count

    def write_seconds(self, outputs: Outputs, blocks: Blocks) -> float:
        """Seconds one block takes to copy into the results' arrays, timed on scratch ones.

        Memory the results have not touched yet costs its first write (the
        arrays are ``np.empty``), so each timed copy goes into new memory.
        """
        if len(blocks) == 1:  # one block: its arrays become the results, nothing is copied
            return 0.0
        step = tuple(blocks.step)
        leaves = [np.ones(step + s, dtype=d) for s, d in zip(outputs.shapes, outputs.dtypes,
                                                              strict=True)]
        def copy() -> None:
            for leaf in leaves:
                np.empty_like(leaf)[...] = leaf

        return median_seconds(copy)

    def done(self) -> np.ndarray:
        done = self.blocks.done_mask(sorted(self._done_blocks))
        flat = done.reshape(-1)
        for index, count in self._started.items():
            start = self.blocks[index].start
            flat[start:start + count] = True
        return done

    def _results(self, done: np.ndarray | None) -> Results:
        assert self.outputs is not None, "open() comes first"
        return self.result_type.from_outputs(self.space, self.outputs, self.arrays, done)

    def close(self) -> Results:
        return self._results(None)

    def partial(self) -> Results | None:
        if self.outputs is None:
            return None
        if not self.arrays:
            self._allocate()
        done = self.done().copy()
        if not all(a.flags.writeable for a in self.arrays):  # adopted, read-only buffers
            self.arrays = [np.array(a) for a in self.arrays]
        blank_undone(self.arrays, done)
        return self._results(done)

"""What every run sets up before its loop: the outputs' labels, the sink and the progress bar."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from .._checks import fail
from ..grid import Blocks
from ..results import MemorySink, Outputs, Results, Sink
from ..space import Space
from .compiled import PreparedModel
from .errors import check_outputs, failed_at, trace_failure

__all__ = ["check_store", "output_structure", "progress_bar", "sink_for"]


def check_store(store: Any) -> str | None:
    """None, or the path of a ``.zarr`` directory as a string."""
    if store is None:
        return None
    try:
        path = os.fspath(store)
    except TypeError:
        fail("store", "None or the path of a .zarr directory", store, TypeError)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path.rstrip("/").endswith(".zarr"):
        fail("store", "the path of a .zarr directory (ending in .zarr)", store)
    return path


def sink_for(store: Any, space: Space, result_type: type[Results],
             max_memory: int | None = None) -> Callable[[], Sink]:
    """A factory of the sink a run writes to: the zarr store at ``store``, else memory.

    ``store`` is checked now (at construction), the sink made at each run.
    """
    path = check_store(store)
    if path is None:
        return lambda: MemorySink(space, result_type)
    from ..results.store import ZarrSink

    return lambda: ZarrSink(path, space, result_type)


def output_structure(executor: Any, prepared: PreparedModel, tables: tuple,
                     state_arrays: Any, extra_arrays: Any) -> Outputs:
    """The labels of the outputs, from one combination's output shape (nothing runs).

    The shape comes from ``jax.eval_shape`` (cached with the compiled
    programs); the executor's ``output_dims``, ``output_coords`` and
    ``output_attrs`` are checked against it before anything runs.
    """
    lane = [jax.ShapeDtypeStruct(t.shape[1:], t.dtype) for t in tables]
    key = ("output", tuple((a.shape, str(a.dtype)) for a in lane))
    try:
        one = prepared.cached(key, lambda: jax.eval_shape(prepared.call, lane, state_arrays,
                                                          extra_arrays))
    except Exception as err:
        raise trace_failure(prepared, executor.space, err) from err
    leaves, treedef = jax.tree.flatten(one)
    try:
        check_outputs(one)
    except TypeError as err:
        raise failed_at(executor.space, 0, f"TypeError: {err}") from err
    return outputs_for(executor, treedef, [x.shape for x in leaves], [x.dtype for x in leaves])


def outputs_for(executor: Any, treedef: Any, shapes: list, dtypes: list) -> Outputs:
    """:class:`Outputs` with the executor's output options."""
    return Outputs.build(executor.space, treedef, shapes, [np.dtype(d) for d in dtypes],
                         executor.output_dims, executor.output_coords, executor.output_attrs)


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, done: set[int] | None, blocks: Blocks
                 ) -> Iterator[tqdm]:
    """A tqdm bar over combinations, starting at those already done (a resumed store).

    It appears only once a run has taken a second: quick runs stay quiet.
    """
    initial = sum(blocks[k].size for k in done) if done else 0
    bar = tqdm(total=total, initial=initial, disable=not enabled, unit="combination",
               delay=1.0)
    try:
        yield bar
    finally:
        bar.close()

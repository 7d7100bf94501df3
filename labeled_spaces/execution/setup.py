"""What every run sets up before its loop: the outputs' labels, the sink and the progress bar."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from .._checks import fail
from ..grid import Blocks
from ..results import MemorySink, Outputs, Results, Sink
from ..results.identity import describe_arguments, program_fingerprint
from ..space import Space
from .compiled import PreparedModel
from .errors import check_outputs, failed_at, trace_failure

__all__ = [
    "check_store", "fingerprint", "output_structure", "progress_bar", "sink_for", "traced",
    "with_fingerprint",
]


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
             max_memory: int | None = None, overwrite: bool = False) -> Callable[[], Sink]:
    """A factory of the sink a run writes to: the zarr store at ``store``, else memory.

    ``store`` and ``overwrite`` (replace the store, not resume it) are
    checked now (at construction), the sink made at each run.
    """
    path = check_store(store)
    if not isinstance(overwrite, (bool, np.bool_)):
        fail("overwrite", "True or False", overwrite, TypeError)
    if path is None:
        if overwrite:
            raise ValueError("overwrite=True replaces a store: give store='results.zarr' too "
                             "(results in memory have nothing to overwrite)")
        return lambda: MemorySink(space, result_type)
    from ..results.store import ZarrSink

    return lambda: ZarrSink(path, space, result_type, overwrite=bool(overwrite))


def output_structure(executor: Any, prepared: PreparedModel, tables: tuple,
                     state_arrays: Any, extra_arrays: Any) -> Outputs:
    """The labels of the outputs, from one combination's output shape (nothing runs).

    The shape comes from tracing the model once (cached with the compiled
    programs); the executor's ``output_dims``, ``output_coords`` and
    ``output_attrs`` are checked against it before anything runs. The traced
    program's fingerprint goes with the labels, so a store can tell when it
    is resumed by another model.
    """
    try:
        one, print_, _ = traced(prepared, tables, state_arrays, extra_arrays)
    except Exception as err:
        raise trace_failure(prepared, executor.space, err) from err
    leaves, treedef = jax.tree.flatten(one)
    try:
        check_outputs(one)
    except TypeError as err:
        raise failed_at(executor.space, 0, f"TypeError: {err}") from err
    outputs = outputs_for(executor, treedef, [x.shape for x in leaves],
                          [x.dtype for x in leaves])
    return with_fingerprint(executor, outputs, prepared, print_)


def with_fingerprint(executor: Any, outputs: Outputs, prepared: PreparedModel,
                     print_: str | None) -> Outputs:
    """``outputs`` carrying what the run identity needs from the executor.

    The model's extra arguments (described, see
    :func:`labeled_spaces.results.identity.describe_arguments`) and the
    traced program's fingerprint ``print_`` (see :func:`traced`; None for a
    model that was not traced). The run identity itself is
    :func:`labeled_spaces.results.identity.run_identity`.
    """
    return dataclasses.replace(outputs, fingerprint=print_ or "",
                               arguments=describe_arguments(executor.args, executor.kwargs))


def traced(prepared: PreparedModel, tables: Sequence[Any], state_arrays: Any,
           extra_arrays: Any) -> tuple[Any, str, Any]:
    """One combination's output shapes, the traced model's fingerprint, and its program.

    The model is traced once per structure: shapes and fingerprint are
    cached with the compiled programs. The program (a ``ClosedJaxpr``) is
    returned only when it was traced by this call (else None); it is not
    kept, so the cache holds nothing that could keep the model alive.
    """
    lane = [jax.ShapeDtypeStruct(np.shape(t)[1:], t.dtype) for t in tables]
    key = ("output", tuple((a.shape, str(a.dtype)) for a in lane))
    made: dict[str, Any] = {}

    def trace() -> tuple[Any, str]:
        program, shapes = jax.make_jaxpr(prepared.call, return_shape=True)(
            lane, state_arrays, extra_arrays)
        made["program"] = program
        return shapes, fingerprint(program)

    shapes, print_ = prepared.cached(key, trace)
    return shapes, print_, made.get("program")


def fingerprint(program: Any, arrays: Sequence[Any] = ()) -> str:
    """The traced program's fingerprint.

    See :func:`labeled_spaces.results.identity.program_fingerprint`.
    """
    return program_fingerprint(program, arrays)


def outputs_for(executor: Any, treedef: Any, shapes: list, dtypes: list) -> Outputs:
    """:class:`Outputs` with the executor's output options."""
    return Outputs.build(executor.space, treedef, shapes, [np.dtype(d) for d in dtypes],
                         executor.output_dims, executor.output_coords, executor.output_attrs)


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, done: set[int] | None, blocks: Blocks
                 ) -> Iterator[tqdm]:
    """A tqdm bar over combinations, starting at those already done (a resumed store)."""
    initial = sum(blocks[k].size for k in done) if done else 0
    bar = tqdm(total=total, initial=initial, disable=not enabled, unit="combination")
    try:
        yield bar
    finally:
        bar.close()

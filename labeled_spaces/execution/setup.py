"""What every run sets up before its loop: the outputs' labels, the sink and the progress bar."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
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
                     print_: str) -> Outputs:
    """``outputs`` carrying the run's fingerprint, for a store to tell another model apart.

    ``print_`` is the traced program's (see :func:`traced`); the arrays the
    run gives the model are digested with it. Without a store nothing
    compares fingerprints, and none is computed.
    """
    if executor.store is None:
        return outputs
    arrays = jax.tree.leaves((prepared.state_arrays, prepared.extra_arrays))
    return dataclasses.replace(outputs, fingerprint=fingerprint(print_, arrays))


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
    """A short digest of what the model computes: a traced program and the values it is given.

    The text of ``program`` (a ``ClosedJaxpr``, lowered text, or an earlier
    fingerprint) shows the operations and the Python scalars the model
    closes over, but not the values of arrays: those of the program's
    closed-over constants (``program.consts``) and of ``arrays`` (the fixed
    leaves and extra arguments of a run) are digested too.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from labeled_spaces.execution.setup import fingerprint
    >>> one = fingerprint(jax.make_jaxpr(lambda x: x + 1.0)(0.0))
    >>> one == fingerprint(jax.make_jaxpr(lambda x: x + 1.0)(0.0)), len(one)
    (True, 16)
    >>> one == fingerprint(jax.make_jaxpr(lambda x: x - 1.0)(0.0))
    False
    >>> fingerprint(one, [np.ones(3)]) == fingerprint(one, [np.full(3, 5.0)])
    False
    """
    digest = hashlib.sha256(str(program).encode())
    for array in [*getattr(program, "consts", ()), *arrays]:
        if isinstance(array, jax.Array) and jax.dtypes.issubdtype(array.dtype,
                                                                 jax.dtypes.prng_key):
            array = jax.random.key_data(array)
        value = np.asarray(array)
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        if value.dtype.kind == "O":  # the bytes of an object array are addresses
            digest.update(repr(value.tolist()).encode())
        else:
            digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]


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

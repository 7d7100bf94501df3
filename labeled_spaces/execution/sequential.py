"""SequentialExecution: one combination at a time, compiled once (or plain Python).

How a combination is computed here; the run sequence is the core's
(:mod:`labeled_spaces.execution.core`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.extend.core import jaxpr_as_fun
from tqdm import tqdm

from ..grid import Block, Blocks
from ..results import Outputs, Results, SequentialResult, Sink
from .compiled import PreparedModel, signature
from .core import Executor, Started, traced
from .errors import ModelError, check_outputs, failed_at, locate_failure
from .explain import Probe, on_host
from .loop import BlockFailure
from .options import COMMON_OPTIONS
from .plan import initial_lanes
from .program import Program, is_model

__all__ = ["SequentialExecution"]

OPTIONS = ("jit", "space", "collect", *COMMON_OPTIONS)


class OutputMismatch(Exception):
    """A plain-Python model whose output at one combination differs from the first one's."""


def _host_leaves(out: Any, outputs: Outputs, i: int) -> list[np.ndarray]:
    """The output leaves of combination ``i`` as arrays, checked against the first output."""
    arrays = [np.asarray(x) for x in check_outputs(out)]
    treedef = jax.tree.structure(out)
    got = [(a.shape, a.dtype) for a in arrays]
    want = list(zip(outputs.shapes, outputs.dtypes, strict=True))
    if treedef != outputs.treedef or got != want or any(a.dtype == object for a in arrays):
        raise OutputMismatch(
            f"the model's output changed at combination {i}: expected structure "
            f"{outputs.treedef} with leaves {want}, got {treedef} with {got}"
        )
    return arrays


def _block_points(grid: Any, block: Block) -> tuple[np.ndarray, Callable[[int], int]]:
    """A block's grid positions in its C order, and the flat index of its ``k``-th point.

    A block laid out by :func:`~labeled_spaces.grid.block_shape` is a
    contiguous run of the flat index; one of a grown store (whose blocks keep
    their shape while a faster dimension gains positions) may not be.
    """
    start, n = block.start, block.size
    inner = [e == s for e, s in zip(block.extent, grid.shape, strict=True)]
    split = next((j for j, e in enumerate(block.extent) if e > 1), len(inner))
    if all(inner[split + 1:]):  # a contiguous run
        if grid.N < 2**63:
            digits = grid.unravel_many(np.arange(start, start + n, dtype=np.int64))
        else:
            digits = np.array([grid.unravel(start + k) for k in range(n)], dtype=np.int64)
        return digits, lambda k: start + k
    positions = np.indices(block.extent).reshape(len(block.extent), -1).T
    digits = (positions + np.asarray(block.origin, dtype=np.int64)).astype(np.int64)
    return digits, lambda k: grid.ravel(digits[k])


class _PointRunner:
    """Runs a block's combinations one by one, each output copied out while the next runs."""

    def __init__(self, execution: SequentialExecution, prepared: PreparedModel, fn: Callable,
                 outputs: Outputs, first: Any, bar: Any) -> None:
        self.execution, self.prepared, self.fn = execution, prepared, fn
        self.outputs, self.first, self.bar = outputs, first, bar
        self.state_arrays, self.extra_arrays = prepared.state_arrays, prepared.extra_arrays
        if execution.options.jit:  # fixed arrays go to the device once, not at every call
            self.state_arrays, self.extra_arrays = jax.device_put(
                (self.state_arrays, self.extra_arrays))

    def _steps(self, index: Callable[[int], int], digits: np.ndarray,
               buffers: list[np.ndarray]
               ) -> tuple[Callable[[int], Any], Callable[[int, Any], None]]:
        """``call(k)`` runs the block's ``k``-th combination, ``store(k, out)`` keeps its output.

        ``index(k)`` is the flat index of the block's ``k``-th combination,
        ``digits[k]`` its grid position.

        The compiled path is kept lean (its overhead per combination is what
        a hand-written loop of ``jax.jit(f)`` would not pay): the block's
        values are gathered per axis once, and outputs go straight into the
        buffers.
        """
        ex, layout = self.execution, self.prepared.layout
        if not ex.options.jit:
            def call_plain(k: int) -> Any:
                i = index(k)
                if i == 0 and self.first is not None:  # run already, for the output structure
                    return self.first
                return plain_call(ex, self.prepared, i)

            def store_plain(k: int, out: Any) -> None:
                for buffer, leaf in zip(buffers, _host_leaves(out, self.outputs, index(k)),
                                        strict=True):
                    buffer[k] = leaf

            return call_plain, store_plain
        fn = self.fn
        fixed = (*self.state_arrays, *self.extra_arrays)
        values = [t[digits[:, j]] for t, j in zip(layout.lane_tables, layout.lane_dims,
                                                  strict=True)]
        # one tuple of positional arguments per combination: the compiled program takes
        # its arrays flat (a nested call costs ~0.3 us more, a third of the budget)
        arguments = [(*row, *fixed) for row in zip(*values, strict=True)] if values else [
            fixed] * len(digits)  # a single point (no axis): the fixed arrays alone

        def call(k: int) -> Any:
            return fn(*arguments[k])

        # the compiled program returns its outputs as a flat list
        if len(buffers) == 1:
            only = buffers[0]

            def store(k: int, out: Any) -> None:
                only[k] = out[0]
        else:
            def store(k: int, out: Any) -> None:
                for buffer, leaf in zip(buffers, out, strict=True):
                    buffer[k] = leaf

        return call, store

    def dispatch(self, block: Block) -> list[np.ndarray]:
        outputs, grid = self.outputs, self.prepared.layout.grid
        n = block.size
        buffers = [np.empty((n, *s), dtype=d) for s, d in zip(outputs.shapes, outputs.dtypes,
                                                               strict=True)]
        digits, index = _block_points(grid, block)
        call, store = self._steps(index, digits, buffers)
        update = None if self.bar.disable else self.bar.update
        pending: Any = None
        stored = k = 0  # combinations of the block in the buffers; the one running
        try:
            for k in range(n):
                out = call(k)
                if pending is not None:
                    store(k - 1, pending)
                    stored = k
                    if update is not None:
                        update(1)
                pending = out
            store(n - 1, pending)
            if update is not None:
                update(1)
        except (Exception, KeyboardInterrupt) as err:
            failed, cause = index(stored), err
            if pending is not None and stored < k:  # the output before the failure
                try:
                    store(k - 1, pending)
                    stored, failed = k, index(k)
                except Exception as late:  # that output was bad itself
                    cause = late
            raise BlockFailure(cause, failed, stored, self.fetch(block, buffers)) from cause
        return buffers

    def fetch(self, block: Block, handle: list[np.ndarray]) -> list[np.ndarray]:
        return [b.reshape(block.extent + b.shape[1:]) for b in handle]

    def ready(self, handle: Any) -> bool:
        return True

    def blame(self, err: BaseException, block: Block, partial: Results | None) -> ModelError:
        space = self.execution.space
        if not isinstance(err, BlockFailure):
            return ModelError(f"the run failed at block {block.index}: {err}", partial=partial)
        i, cause = err.index, err.cause
        message = f"{type(cause).__name__}: {cause}"
        if isinstance(cause, OutputMismatch):
            return ModelError(str(cause), index=i, params=space[i], partial=partial)
        if self.execution.options.jit and locate_failure(self.prepared, [i]) is None:
            message = ("it fails only when compiled (run it with jit=False if it is not "
                       f"traceable by JAX): {message}")
        return failed_at(space, i, message, partial)


def plain_call(execution: SequentialExecution, prepared: PreparedModel, i: int) -> Any:
    """Combination ``i`` run as plain Python (``jit=False``).

    The model receives ``space[i]`` (JAX arrays, as in TVB-Optim); another
    Program's lane receives that combination's axis values.
    """
    if is_model(prepared.program):
        return execution.model(execution.space[i], *execution.args, **execution.kwargs)
    layout = prepared.layout
    values = [jax.numpy.asarray(v) for v in layout.values_at(layout.grid.unravel(i))]
    return prepared.call(values, prepared.state_arrays, prepared.extra_arrays)


class _Points:
    """SequentialExecution's :class:`~labeled_spaces.execution.core.Computation`."""

    one_at_a_time = True

    def __init__(self, execution: SequentialExecution, prepared: PreparedModel) -> None:
        self.execution, self.prepared = execution, prepared
        self.first: Any = None  # combination 0's output, run for the structure (jit=False)
        self.outputs: Outputs | None = None
        self.fn: Callable = prepared.call

    def structure(self) -> tuple[Any, str | None]:
        """One combination's output structure: traced, or (``jit=False``) run at combination 0.

        The model is traced once: the compiled program is made from the traced
        one (see :meth:`plan`).
        """
        prepared, space = self.prepared, self.execution.space
        if self.execution.options.jit:
            layout = prepared.layout
            self.state_arrays, self.extra_arrays = jax.device_put(
                (prepared.state_arrays, prepared.extra_arrays))
            info, print_, self.program = traced(prepared, layout.lane_tables, self.state_arrays,
                                                self.extra_arrays, space)
            return info, print_
        try:
            self.first = plain_call(self.execution, prepared, 0)
            leaves = [np.asarray(x) for x in check_outputs(self.first)]
        except Exception as err:
            raise failed_at(space, 0, f"{type(err).__name__}: {err}") from err
        return jax.tree.unflatten(jax.tree.structure(self.first), leaves), None

    def plan(self, outputs: Outputs, persistent: bool, step: tuple[int, ...] | None) -> Blocks:
        space = self.execution.space
        self.outputs = outputs
        if step is not None:
            blocks = Blocks(space.shape, step)
        else:
            lane_bytes = outputs.lane_bytes() + space.layout.lane_bytes()
            # a store keeps whole blocks only: small ones, so a failure loses little
            blocks = space.layout.blocks(initial_lanes(space.N, lane_bytes, 1, None, None,
                                                       persistent, min_lanes=1))
        if self.execution.options.jit:
            self.fn = self.compiled()
        return blocks

    def compiled(self) -> Any:
        """The lane compiled from its traced program, taking its arrays flat.

        The arguments are the values, then the state's arrays, then the extra
        arguments'; the outputs come back as a flat list.
        """
        prepared, layout = self.prepared, self.prepared.layout
        first = [t[0] for t in layout.lane_tables]
        state_arrays, extra_arrays = self.state_arrays, self.extra_arrays
        shapes = signature([*first, *jax.tree.leaves((state_arrays, extra_arrays))])
        program = self.program

        def build() -> Any:
            nonlocal program
            if program is None:  # traced by an earlier run, whose program was not kept
                program = jax.make_jaxpr(prepared.call)(first, state_arrays, extra_arrays)
            # the compiled executable keeps no reference to the model or the space
            flat = jax.jit(jaxpr_as_fun(program))
            return flat.lower(*first, *state_arrays, *extra_arrays).compile()

        return prepared.cached(("sequential", shapes), build)

    def probe(self, blocks: Blocks) -> Probe:
        """One combination, compiled or plain, for ``explain()`` (after :meth:`plan`)."""
        if not self.execution.options.jit:
            return Probe(None, lambda: on_host(
                plain_call(self.execution, self.prepared, 0)), 1)
        fn, layout = self.fn, self.prepared.layout
        first = layout.values_at((0,) * len(layout.shape))  # combination 0's lane values
        arguments = (*first, *self.state_arrays, *self.extra_arrays)
        return Probe(fn, lambda: on_host(fn(*arguments)), 1)

    @contextlib.contextmanager
    def start(self, blocks: Blocks, todo: Iterable[Block], sink: Sink, bar: tqdm
              ) -> Iterator[Started]:
        assert self.outputs is not None, "plan() comes first"
        runner = _PointRunner(self.execution, self.prepared, self.fn, self.outputs, self.first,
                              bar)
        yield Started(runner, todo, sink)


class SequentialExecution(Executor):
    """Run a model on one combination at a time.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)`` returning a pytree of arrays or numbers.
    statespace : Space
        The combinations to run (also accepted as ``space=``).
    *args
        Extra positional arguments, passed to the model unchanged.
    jit : bool, default True
        Compile the model once (the state has the same structure at every
        combination) and reuse it. ``False`` calls it as plain Python, e.g. a
        model that runs an external simulator; it receives JAX arrays for the
        varying leaves, as in TVB-Optim.
    progress : bool, default True
        A tqdm progress bar when there is more than one combination.
    store, overwrite, output_dims, output_coords, output_attrs, program
        As for :class:`labeled_spaces.ParallelExecution`.
    collect : optional
        TVB-Optim's argument, accepted and ignored (it has no effect there
        either).
    **kwargs
        Extra keyword arguments, passed to the model unchanged; a keyword that
        is neither an option nor a parameter of the model is a ``TypeError``.

    Notes
    -----
    Arrays in the state and in the extra arguments are passed to the compiled
    function; other values (``dt=0.1``, strings) stay Python constants, as
    the model would see them without ``jit``. Each output is copied to the
    host while the next combination runs. A failing combination raises
    :class:`ModelError` naming its index and parameters, with the results
    finished so far in ``.partial``.

    Examples
    --------
    >>> from labeled_spaces import GridAxis, SequentialExecution, Space
    >>> space = Space({"k": GridAxis(0.0, 1.0, 3)}, mode="product")
    >>> results = SequentialExecution(lambda s, c: s["k"] + c, space, 10.0, progress=False).run()
    >>> [float(r) for r in results]
    [10.0, 10.5, 11.0]
    """

    name = "SequentialExecution"
    OPTIONS = OPTIONS
    result_type = SequentialResult

    def __init__(
        self,
        model: Callable[..., Any],
        statespace: Any = None,
        *args: Any,
        jit: bool = True,
        progress: bool = True,
        store: Any = None,
        overwrite: bool = False,
        output_dims: Mapping[str, Sequence[str]] | None = None,
        output_coords: Mapping[str, Any] | None = None,
        output_attrs: Mapping[str, Mapping[str, Any]] | None = None,
        program: Program | None = None,
        space: Any = None,
        collect: Any = None,
        **kwargs: Any,
    ) -> None:
        if statespace is not None and space is not None:
            raise TypeError("give the space once: as statespace (positional) or as space=")
        super().__init__(model, statespace if statespace is not None else space, args, kwargs,
                         "statespace", jit=jit, progress=progress, store=store,
                         overwrite=overwrite, output_dims=output_dims,
                         output_coords=output_coords, output_attrs=output_attrs,
                         program=program)
        self.statespace = self.space

    def computation(self, prepared: PreparedModel) -> _Points:
        """One combination at a time (the core runs them)."""
        return _Points(self, prepared)

    def run(self) -> Results:
        """Run every combination in flat order.

        Returns
        -------
        SequentialResult

        Raises
        ------
        ModelError
            When the model fails, with the finished combinations in ``.partial``.
        Interrupted
            On Ctrl-C (a ``KeyboardInterrupt``), with ``.partial``.
        """
        return super().run()

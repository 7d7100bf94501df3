"""The cost preview: ``executor.explain()``, what a run would do and cost before it runs.

:func:`explain` goes through the run sequence of the core up to the point
where blocks would be computed: it traces one lane, labels the outputs,
checks the store (a store made by another run is refused here as the run
would refuse it; a growth is planned, not made), plans and compiles the
blocks, and reads XLA's memory analysis of one compiled block. With
``time=True`` it computes one block (one combination for
``SequentialExecution``) and extrapolates. Nothing is written.

Each executor's :class:`~labeled_spaces.execution.core.Computation` says
how one unit of its work is run and which executable it compiles, as a
:class:`Probe`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from .._checks import check_bool
from .._format import format_bytes, format_count, format_duration, format_sizes, table
from .._timing import median_seconds
from ..results.sink import make_sink, persistent, preferred_step, preview, write_seconds
from .compiled import PreparedModel
from .errors import ModelError, block_failure, trace_failure
from .plan import block_memory

__all__ = ["Explanation", "Probe", "explain", "on_host"]


def on_host(value: Any) -> list[np.ndarray]:
    """``value``'s arrays copied to the host, as a run fetches each block (a probe's unit).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces.execution.explain import on_host
    >>> on_host({"y": jnp.ones(2)})[0].tolist()
    [1.0, 1.0]
    """
    return [np.asarray(leaf) for leaf in jax.tree.leaves(value)]


@dataclass(frozen=True)
class Probe:
    """How an executor computes one unit of its work, for :func:`explain`.

    Attributes
    ----------
    executable : compiled executable or None
        What XLA compiled for one unit (``memory_analysis()``); None where
        nothing is compiled (``jit=False``).
    run : callable
        Computes one unit and copies it to the host (:func:`on_host`), as
        a run does.
    lanes : int
        Combinations one unit computes (a block's compiled lanes; 1 for one
        combination at a time).
    parallel : int
        Units computed at once (dask worker threads).
    n_vmap : int or None
        The batch vectorised at once (None: the whole block).
    n_pmap : int
        Devices sharing a block.
    """

    executable: Any
    run: Callable[[], Any]
    lanes: int
    parallel: int = 1
    n_vmap: int | None = None
    n_pmap: int = 1


@dataclass(frozen=True, repr=False)
class Explanation:
    """What a run would do and cost (see :meth:`Executor.explain`); its repr is a table.

    Attributes
    ----------
    executor : str
        The executor's name.
    combinations : int
        Combinations of the space.
    dims : dict
        ``{dimension: size}``.
    blocks : int
        Blocks the grid is cut into.
    block_shape : tuple of int
        The shape of a block over the dimensions (the store's chunks).
    lanes : int
        Combinations one compiled call computes (1 for ``SequentialExecution``).
    n_vmap : int or None
        Combinations vectorised together (None: a whole block; ``"auto"``
        shows what it chose).
    n_pmap : int
        Devices sharing each block.
    argument_bytes, output_bytes, temp_bytes : int or None
        XLA's memory analysis of one compiled call: its arguments (the axis
        tables, fixed arrays), its outputs and its temporaries (None where
        the backend reports none, or ``jit=False``).
    peak_bytes : int or None
        What one compiled call holds at once: the three, less the outputs
        that reuse an argument's buffer.
    bytes_per_block, total_bytes : int
        The results of one block, and of the whole run.
    store : str
        The store's path, or ``"memory"``.
    store_state : str
        ``"memory"``, ``"new"``, ``"replaced"``, ``"resumed"``,
        ``"complete"`` or ``"growing coupling: 11 -> 21"``.
    size_on_disk : int or None
        Bytes the store holds now.
    blocks_done : int
        Blocks already in the store (they are not computed again).
    seconds_per_block : float or None
        With ``time=True``: the measured wall time of one block.
    seconds : float or None
        With ``time=True``: the estimated wall time of the blocks to run
        (compilation apart: it is done, and cached, by ``explain``).
    """

    executor: str
    combinations: int
    dims: dict[str, int]
    blocks: int
    block_shape: tuple[int, ...]
    lanes: int
    n_vmap: int | None
    n_pmap: int
    argument_bytes: int | None
    output_bytes: int | None
    temp_bytes: int | None
    peak_bytes: int | None
    bytes_per_block: int
    total_bytes: int
    store: str
    store_state: str
    size_on_disk: int | None
    blocks_done: int
    seconds_per_block: float | None = None
    seconds: float | None = None

    @property
    def blocks_to_run(self) -> int:
        """Blocks a run would compute (those not in the store yet)."""
        return self.blocks - self.blocks_done

    def __repr__(self) -> str:
        def size(n: int | None) -> str:
            return "?" if n is None else format_bytes(n)

        if self.lanes == 1:
            calls = "one combination per call"
        else:
            batch = "whole block" if self.n_vmap is None else str(self.n_vmap)
            calls = f"{self.lanes} lanes per call, n_vmap={batch}, n_pmap={self.n_pmap}"
        if self.peak_bytes is None:
            memory = "not reported (nothing compiled, or the backend gives no analysis)"
        else:
            memory = (f"{size(self.peak_bytes)} peak (arguments {size(self.argument_bytes)}, "
                      f"outputs {size(self.output_bytes)}, temporaries "
                      f"{size(self.temp_bytes)})")
        store = self.store_state if self.store == "memory" else (
            f"{self.store} ({self.store_state}), {self.blocks_done} of "
            f"{format_count(self.blocks, 'block')} "
            f"done, {size(self.size_on_disk)} on disk")
        if self.seconds is None or self.seconds_per_block is None:
            timed = "not measured (explain(time=True) runs one block)"
        elif not self.blocks_to_run:
            timed = (f"nothing to run, every block is done "
                     f"({format_duration(self.seconds_per_block)} per block)")
        else:
            timed = (f"~{format_duration(self.seconds)} for {self.blocks_to_run} of "
                     f"{format_count(self.blocks, 'block')} "
                     f"({format_duration(self.seconds_per_block)} per block)")
        rows = [
            ("Dimensions:", f"({format_sizes(self.dims)})"),
            ("Blocks:", f"{self.blocks} of {self.block_shape} ({calls})"),
            ("Block memory:", memory),
            ("Results:", f"{size(self.bytes_per_block)} per block, {size(self.total_bytes)} "
                         "in total"),
            ("Store:", store),
            ("Time:", timed),
        ]
        head = (f"<labeled_spaces.Explanation> {self.executor}, "
                f"{format_count(self.combinations, 'combination')}")
        return "\n".join([head, *table(rows, indent="")])


def explain(executor: Any, time: bool = False) -> Explanation:
    """The :class:`Explanation` of ``executor``'s run (see :meth:`Executor.explain`).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, SequentialExecution, Space
    >>> from labeled_spaces.execution.explain import explain
    >>> space = Space({"k": GridAxis(0.0, 1.0, 10)}, mode="product")
    >>> found = explain(SequentialExecution(lambda p: jnp.sin(p["k"]), space), time=True)
    >>> found.lanes, found.store_state, found.seconds > 0
    (1, 'memory', True)
    """
    time = check_bool("time", time)  # explain(time="no") must not time a block
    space, options = executor.space, executor.options
    prepared = PreparedModel(executor.model, space.layout, executor.args, executor.kwargs,
                             options.program)
    computation = executor.computation(prepared)
    outputs = executor.outputs_of(prepared, computation)
    sink = make_sink(options.store, space, executor.result_type, overwrite=options.overwrite)
    step = preferred_step(sink, outputs)  # a store of another run is refused here, as by run()
    try:
        blocks = computation.plan(outputs, persistent(sink), step)
        probe = computation.probe(blocks)
    except ModelError:
        raise
    except Exception as err:
        raise trace_failure(prepared, space, err) from err
    found = preview(sink, outputs, blocks)
    memory = None if probe.executable is None else block_memory(probe.executable)
    per_block = math.prod(blocks.step)
    lane_bytes = outputs.lane_bytes()
    seconds_per_block = seconds = None
    if time:
        try:
            unit = median_seconds(probe.run)
        except Exception as err:  # the model failed on the block: name its combination
            indices = [0] if probe.lanes == 1 else blocks.flat_indices(blocks[0])
            raise block_failure(prepared, space, err, indices, None) from err
        todo = len(blocks) - found.done
        written = write_seconds(sink, outputs, blocks)  # a store's files, timed aside
        if probe.lanes == 1 and per_block > 1:  # one combination at a time
            seconds_per_block = unit * per_block + written
            seconds = unit * space.N * todo / len(blocks) + written * todo
        else:
            seconds_per_block = unit + written
            seconds = (unit + written) * math.ceil(todo / probe.parallel)
    return Explanation(
        executor=executor.name, combinations=space.N, dims=dict(space.sizes),
        blocks=len(blocks), block_shape=tuple(blocks.step), lanes=probe.lanes,
        n_vmap=probe.n_vmap, n_pmap=probe.n_pmap,
        argument_bytes=None if memory is None else memory.arguments,
        output_bytes=None if memory is None else memory.outputs,
        temp_bytes=None if memory is None else memory.temporaries,
        peak_bytes=None if memory is None else memory.peak,
        bytes_per_block=per_block * lane_bytes, total_bytes=space.N * lane_bytes,
        store=found.where, store_state=found.state, size_on_disk=found.size_on_disk,
        blocks_done=found.done, seconds_per_block=seconds_per_block, seconds=seconds)

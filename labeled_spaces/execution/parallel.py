"""ParallelExecution: the grid in N-D blocks, each one compiled ``jit(vmap(lane))`` call.

How a block is computed here; the run sequence is the core's
(:mod:`labeled_spaces.execution.core`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from ..grid import Block, Blocks
from ..results import Outputs, ParallelResult, Results, Sink
from ..space import Space
from .compiled import PreparedModel
from .core import Executor, Started, traced
from .errors import ModelError, block_failure
from .explain import Probe, on_host
from .kernel import origin_input, replicated
from .options import COMMON_OPTIONS
from .plan import initial_lanes, plan_auto, plan_blocks
from .program import Program

__all__ = ["ParallelExecution"]

OPTIONS = ("n_vmap", "n_pmap", "chunk_size", "max_memory", *COMMON_OPTIONS)


class _BlockRunner:
    """Dispatches compiled blocks and copies them out, for :func:`run_blocks`."""

    def __init__(self, computation: _Blocks, blocks: Blocks, bar: Any) -> None:
        self.computation, self.blocks, self.bar = computation, blocks, bar
        self.fn, self.inputs, self.n_pmap = computation.fn, computation.inputs, computation.n_pmap

    def dispatch(self, block: Block) -> Any:
        return self.fn(*self.inputs, origin_input(block.origin, self.n_pmap))

    def fetch(self, block: Block, handle: Any) -> list[np.ndarray]:
        compiled = self.blocks.compiled
        cut = tuple(slice(0, e) for e in block.extent)
        leaves = []
        for leaf in jax.tree.leaves(handle):
            host = np.asarray(leaf)
            leaves.append(host.reshape(compiled + host.shape[1:])[cut])
        self.bar.update(block.size)
        return leaves

    def ready(self, handle: Any) -> bool:
        return all(leaf.is_ready() for leaf in jax.tree.leaves(handle))

    def blame(self, err: BaseException, block: Block, partial: Results | None) -> ModelError:
        # the compiled block also runs the first rows of the next one (see grid.block_shape)
        rows = tuple(min(c, s - o) for c, s, o in zip(self.blocks.compiled,
                                                     self.blocks.shape, block.origin,
                                                     strict=True))
        borrowed = Block(block.index, block.origin, rows, block.start)
        return block_failure(self.computation.prepared, self.computation.space, err,
                             self.blocks.flat_indices(borrowed), partial)


class _Blocks:
    """ParallelExecution's :class:`~labeled_spaces.execution.core.Computation`."""

    one_at_a_time = False

    def __init__(self, prepared: PreparedModel, space: Space, n_vmap: int | str | None,
                 n_pmap: int,
                 chunk_size: int | None, max_memory: int | None) -> None:
        self.prepared, self.space = prepared, space
        self.n_vmap, self.n_pmap = n_vmap, n_pmap
        self.chunk_size, self.max_memory = chunk_size, max_memory
        layout = prepared.layout
        # fixed arrays go to the device(s) once, not at every call
        target = replicated(n_pmap) if n_pmap > 1 else None
        tables = layout.device_tables(target)
        state_arrays, extra_arrays = jax.device_put(
            (prepared.state_arrays, prepared.extra_arrays), target)
        self.inputs = (tables, state_arrays, extra_arrays)
        self.fn: Callable = lambda *inputs: None
        self.batch: int | None = None  # n_vmap, as given or as the plan chose it

    def structure(self) -> tuple[Any, str]:
        shapes, print_, _ = traced(self.prepared, *self.inputs, space=self.space)
        return shapes, print_

    def plan(self, outputs: Outputs, persistent: bool, step: tuple[int, ...] | None) -> Blocks:
        space = self.space
        lane_bytes = outputs.lane_bytes() + space.layout.lane_bytes() + 8 * len(space.shape)
        n_vmap = self.n_vmap
        batch = 1 if isinstance(n_vmap, str) else n_vmap or 1
        lanes = initial_lanes(space.N, lane_bytes, self.n_pmap * batch, self.chunk_size,
                              self.max_memory, persistent)
        if isinstance(n_vmap, str):  # "auto"
            blocks, self.fn, self.batch = plan_auto(self.prepared, self.inputs, lanes,
                                                    self.n_pmap, self.max_memory, step)
        else:
            blocks, self.fn, self.batch = plan_blocks(self.prepared, self.inputs, lanes, n_vmap,
                                                      self.n_pmap, self.chunk_size,
                                                      self.max_memory, step)
        return blocks

    def probe(self, blocks: Blocks) -> Probe:
        """One compiled block, for ``explain()`` (after :meth:`plan`)."""
        fn, inputs, origin = self.fn, self.inputs, origin_input(blocks[0].origin, self.n_pmap)
        return Probe(fn, lambda: on_host(fn(*inputs, origin)),
                     math.prod(blocks.compiled), n_vmap=self.batch, n_pmap=self.n_pmap)

    @contextlib.contextmanager
    def start(self, blocks: Blocks, todo: Iterable[Block], sink: Sink, bar: tqdm
              ) -> Iterator[Started]:
        yield Started(_BlockRunner(self, blocks, bar), todo, sink)


class ParallelExecution(Executor):
    """Run a model over a Space in vectorised, compiled blocks, across devices.

    Parameters
    ----------
    model : callable
        ``model(state, *args, **kwargs)``, traceable by JAX, returning a pytree
        of arrays or numbers.
    space : Space
        The combinations to run.
    *args
        Extra positional arguments for the model.
    n_vmap : int or "auto", optional
        Combinations vectorised together (``lax.map`` over batches of
        ``n_vmap`` inside a block). Default: the whole block at once, which is
        fastest unless one combination's intermediates are large; on one CPU
        device a block whose scratch outgrows 8 MiB (about what a couple of
        cores' caches hold) runs in batches whose scratch fits (at least 8 lanes;
        :func:`labeled_spaces.execution.plan.cache_batch`), and ``explain()``
        shows the batch. ``"auto"``:
        the largest batch whose compiled peak memory (XLA's memory analysis)
        fits in ``max_memory`` (:func:`labeled_spaces.execution.plan.plan_auto`).
    n_pmap : int, default 1
        Devices sharing every block (``jit`` with a ``NamedSharding`` over a
        1-D mesh of the first ``n_pmap`` devices).
    chunk_size : int, optional
        Combinations per compiled call. Default: chosen from the output size
        and ``max_memory`` (blocks in flight stay within a few percent of the
        results, so peak memory is about the results themselves). ``n_vmap``
        batches inside such a call: one above ``chunk_size`` does nothing
        (a warning says so).
    max_memory : int, optional
        Bytes the blocks in flight may use. Default a quarter of the memory
        available when the run starts: the host's, and on an accelerator the
        smaller of it and the device's free memory.
    progress : bool, default True
        A tqdm progress bar when there is more than one block.
    store : str or path-like, optional
        A ``.zarr`` directory to stream the results into, block by block
        (resumed when it exists); see :mod:`labeled_spaces.results.store`. A
        :class:`~labeled_spaces.results.sink.Sink` object is used as it is.
    output_dims : dict, optional
        ``{output name: (dim, ...)}`` names for the outputs' own dimensions.
    output_coords : dict, optional
        ``{dim: values}`` coordinates of the outputs' own dimensions (array,
        ``(values, attrs)`` or ``xarray.DataArray``; lengths checked first).
    output_attrs : dict, optional
        ``{output name: attrs}``, e.g. units.
    overwrite : bool, default False
        Replace an existing ``store`` instead of resuming it (the new store
        is made beside it and swapped in). Without ``overwrite``, a store
        made by another run (other inputs) is refused with a ``ValueError``
        naming what differs (see :mod:`labeled_spaces.results.identity`).
    program : Program, optional
        What each combination computes: by default the model; see
        :mod:`labeled_spaces.execution.program` (e.g. derivatives of the model
        with respect to some axes, with the labels of what it returns).
    **kwargs
        Extra keyword arguments for the model; a keyword that is neither an
        option nor a parameter of the model is a ``TypeError``.

    Notes
    -----
    The grid is cut into N-D blocks (contiguous flat ranges); each block's
    parameters are gathered inside the compiled call from the per-axis
    tables at its origin, so nothing of size N but the results is ever
    built. Blocks at the grid's edge are padded by repeating real points,
    which are computed and dropped. The next block is dispatched before the
    previous one is copied out. The compiled program is cached per (model,
    structure of the state and arguments, block, ``n_vmap``, devices) and
    reused by later runs and executors (:func:`labeled_spaces.clear_caches`
    empties it).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from labeled_spaces import GridAxis, ParallelExecution, Space, UniformAxis
    >>> space = Space({"k": GridAxis(0.0, 1.0, 4), "s": UniformAxis(0.0, 1.0, 3)}, mode="product")
    >>> results = ParallelExecution(lambda p: {"y": p["k"] * jnp.ones(2)}, space,
    ...                             progress=False).run()
    >>> results.to_xarray()["y"].shape
    (4, 3, 2)
    """

    name = "ParallelExecution"
    OPTIONS = OPTIONS
    result_type = ParallelResult

    def __init__(
        self,
        model: Callable[..., Any],
        space: Space,
        *args: Any,
        n_vmap: int | str | None = None,
        n_pmap: int = 1,
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
        super().__init__(model, space, args, kwargs, n_vmap=n_vmap, n_pmap=n_pmap,
                         chunk_size=chunk_size, max_memory=max_memory, progress=progress,
                         store=store, overwrite=overwrite, output_dims=output_dims,
                         output_coords=output_coords, output_attrs=output_attrs,
                         program=program)

    def computation(self, prepared: PreparedModel) -> _Blocks:
        """Vectorised compiled blocks (the core runs them)."""
        return _Blocks(prepared, self.space, self.n_vmap, self.n_pmap, self.chunk_size,
                       self.max_memory)

    def run(self) -> Results:
        """Run every combination.

        Returns
        -------
        ParallelResult

        Raises
        ------
        ModelError
            When the model fails; names the first failing combination and
            keeps the finished ones in ``.partial``.
        Interrupted
            On Ctrl-C (a ``KeyboardInterrupt``), with ``.partial``.
        """
        return super().run()

    @property
    def diff_state(self) -> tuple[Any, ...]:
        """Every varying leaf's values batched ``(n_pmap, ceil(N / n_pmap), ...)``, as TVB-Optim.

        TVB-Optim builds these mapped inputs when its executor is made; here
        they are built when asked for (arrays of size N), never to run:
        :meth:`run` gathers each block's values inside the compiled call.

        Examples
        --------
        >>> from labeled_spaces import GridAxis, ParallelExecution, Space
        >>> space = Space({"k": GridAxis(0.0, 1.0, 4), "dt": 0.1}, mode="product")
        >>> [a.shape for a in ParallelExecution(lambda s: s["k"], space, n_pmap=1).diff_state]
        [(1, 4)]
        """
        n_pmap = self.n_pmap if isinstance(self.n_pmap, int) else 1
        axis_tree, _ = self.space.collect(n_pmap=n_pmap, combine=False)
        return tuple(jax.tree.leaves(axis_tree))

"""ParallelExecution: the grid in N-D blocks, each one compiled ``jit(vmap(model))`` call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from .._checks import check_bool, check_callable, check_positive_int
from ..grid import Block, Blocks
from ..results import ParallelResult, Results
from ..space import Space
from .compiled import PreparedModel
from .errors import ModelError, block_failure, interruptible, trace_failure
from .kernel import origin_input, replicated
from .loop import run_blocks
from .options import COMMON_OPTIONS, check_model_kwargs, check_space
from .plan import initial_lanes, plan_blocks
from .setup import output_structure, progress_bar, sink_for

__all__ = ["ParallelExecution"]

OPTIONS = ("n_vmap", "n_pmap", "chunk_size", "max_memory", *COMMON_OPTIONS)


class _BlockRunner:
    """Dispatches compiled blocks and copies them out, for :func:`run_blocks`."""

    def __init__(self, execution: ParallelExecution, prepared: PreparedModel, fn: Callable,
                 inputs: tuple, blocks: Blocks, bar: Any) -> None:
        self.execution, self.prepared, self.fn = execution, prepared, fn
        self.inputs, self.blocks, self.bar = inputs, blocks, bar

    def dispatch(self, block: Block) -> Any:
        return self.fn(*self.inputs, origin_input(block.origin, self.execution.n_pmap))

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
        return block_failure(self.prepared, self.execution.space, err,
                             self.blocks.flat_indices(borrowed), partial)


class ParallelExecution:
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
    n_vmap : int, optional
        Combinations vectorised together (``lax.map`` over batches of
        ``n_vmap`` inside a block). Default: the whole block at once, which is
        fastest unless one combination's intermediates are large.
    n_pmap : int, default 1
        Devices sharing every block (``jit`` with a ``NamedSharding`` over a
        1-D mesh of the first ``n_pmap`` devices).
    chunk_size : int, optional
        Combinations per compiled call. Default: chosen from the output size
        and ``max_memory`` (blocks in flight stay within a few percent of the
        results, so peak memory is about the results themselves).
    max_memory : int, optional
        Bytes the blocks in flight may use. Default a quarter of the memory
        available when the run starts.
    progress : bool, default True
        A tqdm progress bar when there is more than one block.
    store : str or path-like, optional
        A ``.zarr`` directory to stream the results into, block by block
        (resumed when it exists); see :mod:`labeled_spaces.results.store`.
    overwrite : bool, default False
        Replace an existing store instead of resuming it (the new store is
        made beside it and swapped in). Without ``overwrite``, a store made
        by another run (other inputs) is refused with a ``ValueError``.
    output_dims : dict, optional
        ``{output name: (dim, ...)}`` names for the outputs' own dimensions.
    output_coords : dict, optional
        ``{dim: values}`` coordinates of the outputs' own dimensions (array,
        ``(values, attrs)`` or ``xarray.DataArray``; lengths checked first).
    output_attrs : dict, optional
        ``{output name: attrs}``, e.g. units.
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

    def __init__(
        self,
        model: Callable[..., Any],
        space: Space,
        *args: Any,
        n_vmap: int | None = None,
        n_pmap: int = 1,
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
        check_model_kwargs("ParallelExecution", model, kwargs, OPTIONS)
        self.args = args
        self.kwargs = kwargs
        self.n_vmap = check_positive_int("n_vmap", n_vmap, allow_none=True)
        self.n_pmap = check_positive_int("n_pmap", n_pmap)
        if self.n_pmap > jax.device_count():
            raise ValueError(
                f"n_pmap={self.n_pmap} exceeds the {jax.device_count()} available device(s); "
                "on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=K (set before jax "
                "is imported) gives K devices"
            )
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

    @interruptible
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
        space = self.space
        layout = space.layout
        prepared = PreparedModel(self.model, layout, self.args, self.kwargs)
        # fixed arrays go to the device(s) once, not at every call
        target = replicated(self.n_pmap) if self.n_pmap > 1 else None
        tables = layout.device_tables(target)
        state_arrays, extra_arrays = jax.device_put(
            (prepared.state_arrays, prepared.extra_arrays), target)
        inputs = (tables, state_arrays, extra_arrays)
        outputs = output_structure(self, prepared, tables, state_arrays, extra_arrays)
        sink = self._sink()
        step = sink.preferred_step(outputs)
        lane_bytes = outputs.lane_bytes() + layout.lane_bytes() + 8 * len(space.shape)
        lanes = initial_lanes(space.N, lane_bytes, self.n_pmap * (self.n_vmap or 1),
                              self.chunk_size, self.max_memory, sink.single_block)
        done: set[int] = set()
        if step is not None:  # a store being resumed: nothing to compile if it is complete
            done = sink.open(outputs, Blocks(space.shape, step))
            if len(done) == len(Blocks(space.shape, step)):
                return sink.close()
        try:
            blocks, fn = plan_blocks(prepared, inputs, lanes, self.n_vmap, self.n_pmap,
                                     self.chunk_size, self.max_memory, step)
        except Exception as err:
            raise trace_failure(prepared, space, err) from err
        if step is None:
            done = sink.open(outputs, blocks)
        todo = [b for b in blocks if b.index not in done] if done else blocks
        with progress_bar(self.progress and len(blocks) > 1, space.N, done, blocks) as bar:
            runner = _BlockRunner(self, prepared, fn, inputs, blocks, bar)
            return run_blocks(runner, todo, sink)

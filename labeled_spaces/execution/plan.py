"""How big a block is: from the output size, the memory budget and XLA's memory analysis.

A small sweep (up to 64 MB) runs as one block, whose output becomes the
results without a copy. Otherwise blocks in flight hold a small share of
the results (so peak memory is about the results themselves), at least a
megabyte (so a compiled call's fixed cost is amortised), and at most a
fraction of ``max_memory``. A
model whose intermediates are large (a stored time series it then averages)
gets smaller blocks: XLA reports the scratch memory of a compiled block,
and the block shrinks until that fits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from .._checks import warn_user
from .._format import format_bytes
from .._memory import available_memory, device_memory
from ..grid import Blocks, block_shape
from .compiled import PreparedModel, signature
from .kernel import block_program, origin_input

__all__ = ["BLOCKS_PER_WORKER", "MEMORY_FRACTION", "MIN_CACHE_BATCH",
           "CACHE_BYTES", "MIN_TASK_LANES", "BlockMemory", "budget", "block_memory",
           "cache_batch", "initial_lanes", "plan_auto", "plan_blocks"]

logger = logging.getLogger("labeled_spaces")

# default share of the available memory that one run may use for blocks in flight
MEMORY_FRACTION = 0.25
# blocks in flight hold at most this share of the results (so peak <= 1.1x results)
BLOCK_SHARE = 0.015
MIN_BLOCK_BYTES = 2**20
MAX_BLOCK = 2**22
# a sweep this small runs as one block, whose output becomes the results without a copy:
# five 1 MB blocks instead of one cost 0.6 ms more on a 2 ms sweep of 10,000 combinations
# (benchmarks/execution.py (d)), and the copy of one block 0.3 ms
SINGLE_BLOCK_BYTES = 64 * 2**20
# a store's blocks: at least this many for a large sweep (a crash loses at most one of them),
# each of at least this many combinations (XLA:CPU spreads a big block over the cores: the
# Kuramoto sweep of benchmarks/execution.py ran 1.4x slower in two blocks of 512 than in one
# of 1,024), and of at most this many bytes in flight (the results are on disk)
STORE_BLOCKS = 64
STORE_MIN_LANES = 4096
STORE_BLOCK_BYTES = 64 * 2**20
# dask tasks: blocks per worker thread, at least: one that finishes early finds more work.
# The Kuramoto sweep of benchmarks/distributed.py on 2 workers: 1.11 s in 8 blocks of 128,
# 1.13 s in 4 of 256, 1.20 s in 2 of 512 (one thread alone runs it 14% faster per
# combination in blocks of 512 than of 128, but two workers do not)
BLOCKS_PER_WORKER = 4
# combinations per task, at least: a task costs ~5 ms of worker time (benchmarks/
# distributed.py (b)), and that model's cost per combination on one thread falls by 3%
# from 64 to 128 combinations per block
MIN_TASK_LANES = 128
# On CPU, a block whose scratch outgrows CACHE_BYTES runs its lanes (at the default
# n_vmap=None) in batches whose scratch fits in it, but never fewer than MIN_CACHE_BATCH:
# XLA:CPU streams a block's intermediates through memory once they outgrow the caches (its
# threefry runs five rounds over the whole array: 10.6 ns per value from 64 lanes on,
# against 2.8 ns up to 16, on a 32 MB L3). A model whose scratch fits is not touched.
MIN_CACHE_BATCH = 8
# The scratch a batch may take. Not the last-level cache the OS reports: on a VM that is the
# host's whole L3, shared with every other core (a 2-core VM here reads 480 MiB). Measured
# on that VM, warm, CPU time (benchmarks/keys.py and README's explain() example): a sweep
# drawing 2,000 x 32 normals per combination over 256 lanes took 1,003 ms whole (the
# batching rule reading 480 MiB), 617 ms in batches of 8 MiB or 32 MiB; a scan keeping its
# 300-wide trajectory over 1,024 lanes 123 ms whole, 94 ms at 32 MiB, 70 ms at 8 MiB; five
# models whose scratch fits, or that share it across lanes, changed by under 3%. On a
# machine with a 32 MB L3, batches of 8 to 16 lanes of ~1 MB (above) ran fastest too.
CACHE_BYTES = 8 * 2**20


def budget(max_memory: int | None) -> int:
    """Bytes the blocks in flight may use: ``max_memory``, else a share of what is available.

    What is available is the host's memory, and on an accelerator the
    smaller of it and the device's free memory
    (:func:`labeled_spaces._memory.device_memory`): a block's scratch and
    results live on the device first.
    """
    if max_memory is not None:
        return max_memory
    available = available_memory()
    device = device_memory()
    if device is not None:
        available = min(available, device)
    return int(available * MEMORY_FRACTION)


def initial_lanes(n: int, lane_bytes: int, multiple: int, chunk_size: int | None,
                  max_memory: int | None, persistent: bool = False,
                  min_lanes: int = STORE_MIN_LANES, workers: int | None = None) -> int:
    """Combinations per block from the output size (refined by :func:`plan_blocks`).

    The one block-size policy of every executor. ``persistent=True`` (a
    store, whose results are on disk) aims at :data:`STORE_BLOCKS` blocks, so
    a crash loses little, of at least ``min_lanes`` combinations each
    (:data:`STORE_MIN_LANES` for vectorised blocks; one combination at a
    time loses nothing to small blocks) and at most
    :data:`STORE_BLOCK_BYTES` (and half of ``max_memory``). ``workers``
    (the threads of a dask cluster) gives each at least
    :data:`BLOCKS_PER_WORKER` blocks of at least :data:`MIN_TASK_LANES`.

    Examples
    --------
    >>> from labeled_spaces.execution.plan import initial_lanes
    >>> initial_lanes(10_000, 400, 1, None, None)  # a small sweep: one block
    10000
    >>> initial_lanes(10_000, 400, 1, None, None, workers=2)  # 4 blocks per worker
    1250
    """
    if workers is not None and chunk_size is None:
        memory = initial_lanes(n, lane_bytes, multiple, None, max_memory)
        many = initial_lanes(n, lane_bytes, multiple, None, max_memory, persistent=True)
        per_worker = -(-n // (workers * BLOCKS_PER_WORKER))
        return max(1, min(n, memory, max(MIN_TASK_LANES, min(many, per_worker))))
    if chunk_size is not None:
        lanes = chunk_size
    elif persistent:
        cap = min(STORE_BLOCK_BYTES, budget(max_memory) / 2) // max(lane_bytes, 1)
        by_count = max(min(n, min_lanes), -(-n // STORE_BLOCKS))
        lanes = int(max(multiple, min(MAX_BLOCK, cap, by_count)))
    elif n * lane_bytes <= min(SINGLE_BLOCK_BYTES, budget(max_memory) / 2):
        lanes = n
    else:
        limit = budget(max_memory) / 2
        if max_memory is not None and lane_bytes > limit:
            warn_user(
                f"max_memory={max_memory} bytes leaves {format_bytes(limit)} per block in "
                f"flight, less than one combination's {format_bytes(lane_bytes)}; running one "
                "combination per block")
        share = max(BLOCK_SHARE * lane_bytes * n, MIN_BLOCK_BYTES)
        lanes = int(min(MAX_BLOCK, max(multiple, min(share, limit) // max(lane_bytes, 1))))
    return max(1, min(lanes, n))


class BlockMemory(NamedTuple):
    """XLA's memory analysis of a compiled block, in bytes.

    ``peak`` is what the call holds at once: its arguments, outputs and
    temporaries, less the outputs that reuse an argument's buffer.
    """

    arguments: int
    outputs: int
    temporaries: int
    aliased: int

    @property
    def peak(self) -> int:
        return self.arguments + self.outputs + self.temporaries - self.aliased


def block_memory(executable: Any) -> BlockMemory | None:
    """The memory analysis of a compiled executable (None where the backend gives none).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from labeled_spaces.execution.plan import block_memory
    >>> compiled = jax.jit(lambda x: jnp.sin(x) * 2).lower(jnp.ones(1000)).compile()
    >>> block_memory(compiled).arguments
    4000
    """
    try:
        stats = executable.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None
    if stats is None:
        return None
    return BlockMemory(int(stats.argument_size_in_bytes), int(stats.output_size_in_bytes),
                       int(stats.temp_size_in_bytes), int(stats.alias_size_in_bytes))


def _compiled(prepared: PreparedModel, inputs: tuple, block: tuple[int, ...],
              n_vmap: int | None, n_pmap: int) -> Any:
    """The compiled program of ``block`` (cached with the model's programs)."""
    layout = prepared.layout
    devices = tuple(d.id for d in jax.devices()[:n_pmap])
    shapes = signature(jax.tree.leaves(inputs))

    def build() -> Any:
        program = block_program(prepared.call, layout, block, n_vmap, n_pmap)
        return program.lower(*inputs, origin_input((0,) * len(block), n_pmap)).compile()

    return prepared.cached(("block", layout.grid, layout.axis_dim, block, n_vmap, devices,
                            shapes), build)


def cache_batch(temporaries: int, lanes: int, cache: int | None = None) -> int | None:
    """The batch (``n_vmap``) whose scratch fits in ``cache``, None for the whole block.

    ``temporaries`` is the scratch of a block of ``lanes`` combinations run
    as one ``vmap`` (XLA's memory analysis); it grows about linearly with
    the lanes. A block whose scratch fits in ``cache`` (default:
    :data:`CACHE_BYTES`, about what a couple of cores' caches hold; not the
    last-level cache the OS reports, which on a VM is the host's, shared)
    runs whole; otherwise the largest power of two of lanes whose share fits,
    but at least :data:`MIN_CACHE_BATCH`.

    Examples
    --------
    >>> from labeled_spaces.execution.plan import cache_batch
    >>> cache_batch(264_000_000, 256, cache=32 * 2**20)  # ~1 MB per lane: 32.5 fit
    32
    >>> cache_batch(3 * 2**20, 256, cache=32 * 2**20) is None  # fits: the whole block
    True
    >>> cache_batch(2**30, 256, cache=32 * 2**20)  # never fewer than 8 lanes
    8
    """
    cache = CACHE_BYTES if cache is None else cache
    if temporaries <= cache or lanes < 2 * MIN_CACHE_BATCH:
        return None
    fitting = lanes * cache / temporaries
    batch = max(MIN_CACHE_BATCH, 1 << max(0, int(math.log2(max(fitting, 1.0)))))
    return batch if batch < lanes else None


def plan_blocks(
    prepared: PreparedModel,
    inputs: tuple,
    lanes: int,
    n_vmap: int | None,
    n_pmap: int,
    chunk_size: int | None,
    max_memory: int | None,
    step: tuple[int, ...] | None = None,
) -> tuple[Blocks, jax.stages.Compiled, int | None]:
    """The block tiling, its compiled program and batch; blocks whose scratch does not fit shrink.

    ``step`` (the chunks of an existing store) fixes the tiling. With
    ``n_vmap=None`` on one CPU device a block whose scratch outgrows the
    cache runs in batches that fit (:func:`cache_batch`); the batch is
    returned (None: the whole block at once).
    """
    layout = prepared.layout
    devices = tuple(d.id for d in jax.devices()[:n_pmap])
    shapes = signature(jax.tree.leaves(inputs))

    def compiled(block: tuple[int, ...]) -> Any:
        return _compiled(prepared, inputs, block, n_vmap, n_pmap)

    def scratch(executable: Any) -> int:
        memory = block_memory(executable)
        return 0 if memory is None else memory.temporaries

    def tile() -> tuple[Blocks, Any]:
        if step is not None:
            _, rounded = block_shape(step, math.prod(step), n_pmap)
            blocks = Blocks(layout.shape, step, rounded)
            return blocks, compiled(blocks.compiled)
        limit = budget(max_memory) / 2
        current = lanes
        for _ in range(8):
            blocks = layout.blocks(current, n_pmap)
            executable = compiled(blocks.compiled)
            temp = scratch(executable)
            smaller = max(1, int(current * limit / max(temp, 1) / 2))
            if chunk_size is not None or temp <= limit or smaller >= current or current == 1:
                break
            logger.info("block of %d lanes needs %s of scratch; trying %d", current,
                        format_bytes(temp), smaller)
            current = smaller
        return blocks, executable

    def choose() -> tuple[Blocks, Any, int | None]:
        blocks, executable = tile()
        # one CPU device only: batches on several devices nest a (devices, lanes) vmap,
        # which XLA:CPU runs slower (see kernel.block_program)
        if n_vmap is not None or n_pmap > 1 or jax.devices()[0].platform != "cpu":
            return blocks, executable, n_vmap
        temp = scratch(executable)
        batch = cache_batch(temp, math.prod(blocks.compiled))
        if batch is None:
            return blocks, executable, None
        batched = _compiled(prepared, inputs, blocks.compiled, batch, n_pmap)
        if scratch(batched) > temp / 2:  # scratch that every lane shares: batches buy nothing
            return blocks, executable, None
        logger.info("block of %d lanes needs %s of scratch, more than the CPU's caches hold: "
                    "running it in batches of %d", math.prod(blocks.compiled),
                    format_bytes(temp), batch)
        return blocks, batched, batch

    # the plan (and its memory analysis) is reused by later runs of the same structure
    blocks, executable, batch = prepared.cached(
        ("plan", layout.grid, layout.axis_dim, lanes, step, n_vmap, devices, shapes,
         chunk_size, max_memory, CACHE_BYTES), choose)
    logger.info(
        "%d combinations in blocks of %s (%d lanes per call), n_vmap=%s, n_pmap=%d",
        layout.N, blocks.compiled, math.prod(blocks.compiled), batch, n_pmap,
    )
    return blocks, executable, batch


def plan_auto(
    prepared: PreparedModel,
    inputs: tuple,
    lanes: int,
    n_pmap: int,
    max_memory: int | None,
    step: tuple[int, ...] | None = None,
) -> tuple[Blocks, Callable, int | None]:
    """``n_vmap="auto"``: the largest batch whose compiled block fits in ``max_memory``.

    The blocks are those of the output size (as :func:`plan_blocks` plans
    them, or ``step``); the block is first compiled as one ``vmap`` of all
    its lanes, and when XLA's peak memory of it (:func:`block_memory`)
    exceeds :func:`budget` of ``max_memory``, as ``lax.map`` over batches of
    powers of two: the largest that fits (a batch's temporaries grow about
    linearly with it, which gives the first guess). Powers of two only: a
    batch that does not divide the block adds a second program for the
    remainder, whose temporaries are live beside the batches', so XLA's
    peak is not monotonic in other batches (measured on a block of 64
    lanes: 1.31 MB at 16, 2.43 MB at 17, 1.80 MB at 21, 3.24 MB at 24, 2.61
    MB at 32). Returns the blocks, the compiled block and the batch (None:
    the whole block at once).
    """
    layout = prepared.layout
    limit = budget(max_memory)
    if step is not None:
        _, rounded = block_shape(step, math.prod(step), n_pmap)
        blocks = Blocks(layout.shape, step, rounded)
    else:
        blocks = layout.blocks(lanes, n_pmap)
    per_device = max(1, math.prod(blocks.compiled) // n_pmap)

    def fits(n_vmap: int | None) -> tuple[bool, Any, BlockMemory | None]:
        executable = _compiled(prepared, inputs, blocks.compiled, n_vmap, n_pmap)
        memory = block_memory(executable)
        return memory is None or memory.peak <= limit, executable, memory

    def choose() -> tuple[Any, int | None]:
        ok, executable, memory = fits(None)
        if ok or per_device == 1 or memory is None:
            return executable, None
        fixed = memory.arguments + memory.outputs - memory.aliased
        guess = per_device * max(limit - fixed, 0) / max(memory.temporaries, 1)
        n = 1 << max(0, int(math.log2(max(1.0, min(guess, per_device - 1)))))
        best: tuple[Any, int] | None = None
        while True:
            ok, executable, memory = fits(n)
            if ok:
                best = (executable, n)
                if 2 * n >= per_device:
                    break
                n *= 2  # the guess may be low: the largest batch that fits
            elif best is not None or n == 1:
                break
            else:
                n //= 2
        if best is None:
            parts = "" if memory is None else (
                f" (the block's arguments, the axes' values and fixed arrays: "
                f"{format_bytes(memory.arguments)}; outputs {format_bytes(memory.outputs)}; "
                f"scratch {format_bytes(memory.temporaries)})")
            warn_user(f"max_memory={max_memory} bytes: even one combination at a time "
                      f"needs {format_bytes(memory.peak if memory else 0)} per block{parts}; "
                      "running one at a time")
            return executable, 1
        return best

    executable, n_vmap = prepared.cached(
        ("auto", layout.grid, layout.axis_dim, lanes, step, n_pmap, max_memory,
         tuple(d.id for d in jax.devices()[:n_pmap]), signature(jax.tree.leaves(inputs))),
        choose)
    logger.info("%d combinations in blocks of %s, n_vmap=%s chosen for %s of memory",
                layout.N, blocks.compiled, n_vmap, format_bytes(limit))
    return blocks, executable, n_vmap

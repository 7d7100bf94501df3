"""The compiled block: a Program's lane vectorised (vmap, lax.map) and sharded over a block.

The kernel runs whatever lane it is given (:mod:`labeled_spaces.execution.program`;
the model by default) and never calls the model by name. A block's
parameter values are computed inside the program from its origin (a few
int32 digits, see :func:`labeled_spaces.grid.block_values`), so no array of
size N exists on the host or on a device but the results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ..space import Layout

__all__ = ["block_program", "mesh", "origin_input", "replicated"]


def mesh(n_pmap: int) -> jax.sharding.Mesh:
    """A 1-D mesh over the first ``n_pmap`` devices."""
    return jax.sharding.Mesh(np.array(jax.devices()[:n_pmap]), ("devices",))


def replicated(n_pmap: int) -> jax.sharding.NamedSharding:
    """The placement of arguments every device of the mesh holds whole."""
    return jax.sharding.NamedSharding(mesh(n_pmap), jax.sharding.PartitionSpec())


def origin_input(origin: Sequence[int], n_pmap: int) -> Any:
    """A block's origin as the int32 argument the block program takes."""
    array = np.asarray(origin, dtype=np.int32)
    return jax.device_put(array, replicated(n_pmap)) if n_pmap > 1 else array


def block_program(lane: Callable[[Sequence[Any], Sequence[Any], Sequence[Any]], Any],
                  layout: Layout, block: tuple[int, ...], n_vmap: int | None,
                  n_pmap: int) -> jax.stages.Wrapped:
    """``jit`` of ``lane`` over the N-D block ``block`` of ``layout``'s grid at a given origin.

    ``lane(axis_values, state_arrays, extra_arrays)`` computes one
    combination (a bound Program, ``PreparedModel.call``). The program takes
    ``(tables, state_arrays, extra_arrays, origin)`` and returns the output
    pytree with ``prod(block)`` lanes first, in C order of the block.
    """
    lanes = math.prod(block)
    device_mesh = mesh(n_pmap) if n_pmap > 1 else None
    per_device = lanes // n_pmap
    # axis_size: a 0-dimensional grid (a single point) has no axis values to map over
    vectorised = jax.vmap(lane, in_axes=(0, None, None), axis_size=lanes)

    def on_device(values, state_arrays, extra_arrays):
        return jax.lax.map(lambda v: lane(v, state_arrays, extra_arrays), values,
                           batch_size=n_vmap)

    def run_block(tables, state_arrays, extra_arrays, origin):
        values = layout.block_values(tables, origin, block)
        spec = None
        if device_mesh is not None:
            spec = jax.sharding.NamedSharding(device_mesh, jax.sharding.PartitionSpec("devices"))
        if n_vmap is None or n_vmap >= per_device:
            # one flat vmap over all lanes (sharded across devices if n_pmap > 1):
            # a nested (devices, lanes) vmap makes XLA:CPU transpose inside the
            # model's loops (1.5x slower on the Kuramoto benchmark)
            if spec is not None:
                values = [jax.lax.with_sharding_constraint(v, spec) for v in values]
            return vectorised(values, state_arrays, extra_arrays)
        # batches of n_vmap run one after another on each device
        values = [v.reshape((n_pmap, per_device, *v.shape[1:])) for v in values]
        if spec is not None:
            values = [jax.lax.with_sharding_constraint(v, spec) for v in values]
        out = jax.vmap(on_device, in_axes=(0, None, None))(values, state_arrays, extra_arrays)
        return jax.tree.map(lambda x: x.reshape((lanes, *x.shape[2:])), out)

    return jax.jit(run_block)
